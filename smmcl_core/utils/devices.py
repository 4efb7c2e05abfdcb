"""The one device resolver: ``'auto'`` and device names -> ``torch.device``."""

from typing import Union

import torch


def resolve_device(device: Union[str, torch.device] = 'auto', local_rank: int = 0
                   ) -> torch.device:
    """``'auto'`` -> the local CUDA device when there is one, else CPU; others as given.

    Args:
        device: ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ... or a ``torch.device``.
        local_rank: CUDA index for ``'auto'`` and a bare ``'cuda'`` (the DDP rank's GPU).

    Raises:
        ValueError: a CUDA device is requested but CUDA is not available.
    """
    if isinstance(device, str) and device == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda', local_rank)
        return torch.device('cpu')
    resolved = torch.device(device)
    if resolved.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {str(device)!r} requested but CUDA is not available '
                             "(use device='auto' or 'cpu')")
        if resolved.index is None:
            resolved = torch.device('cuda', local_rank)
    return resolved

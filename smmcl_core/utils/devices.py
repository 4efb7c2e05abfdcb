"""The one device resolver: ``'auto'`` and device names -> a device.

:func:`resolve_device` returns a ``torch.device`` (training, the torch engine).
:func:`resolve_engine_device` serves the inference engines and imports torch only when it has
to: ``'cpu'`` (and ``'auto'`` on a machine without a CUDA driver) become a torch-free
:class:`Device`, so a node running OpenVINO or ONNX Runtime never loads torch to learn that it
runs on the CPU.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
import functools
from typing import Any, Optional, Union

from smmcl_core.utils.optional import import_torch


@dataclass(frozen=True)
class Device:
    """A torch-free device name with the attributes code reads from ``torch.device``."""

    type: str  # 'cpu' or 'cuda'
    index: Optional[int] = None

    def __str__(self) -> str:
        return self.type if self.index is None else f'{self.type}:{self.index}'


CPU = Device('cpu')


@functools.lru_cache(maxsize=None)
def cuda_driver_present() -> bool:
    """Whether the CUDA driver loads and reports a device (no torch).

    ``CUDA_VISIBLE_DEVICES`` applies. False means torch would not find CUDA either.
    """
    try:
        lib = ctypes.CDLL('libcuda.so.1')
    except OSError:
        return False
    count = ctypes.c_int(0)
    try:
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 \
            and count.value > 0
    except AttributeError:  # not a CUDA driver library
        return False


def resolve_engine_device(device: Any = 'auto') -> Union[Device, Any]:
    """:func:`resolve_device` without torch where the answer is the CPU.

    ``'cpu'``, and ``'auto'`` without a CUDA driver, give :data:`CPU`; CUDA names (and
    ``'auto'`` with a driver, where torch decides) give a ``torch.device``; a ``torch.device``
    or :class:`Device` is returned as is.

    Raises:
        ValueError: a CUDA device is requested but CUDA is not available.
    """
    if not isinstance(device, str):
        return device
    if device == 'cpu' or (device == 'auto' and not cuda_driver_present()):
        return CPU
    return resolve_device(device)


def resolve_device(device: Any = 'auto', local_rank: int = 0) -> Any:
    """``'auto'`` -> the local CUDA device when there is one, else CPU; others as given.

    Args:
        device: ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ... or a ``torch.device``
            (or :class:`Device`).
        local_rank: CUDA index for ``'auto'`` and a bare ``'cuda'`` (the DDP rank's GPU).

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: a CUDA device is requested but CUDA is not available.
        MissingExtraError: (an ``ImportError``) torch is not installed.
    """
    torch = import_torch(f'device {str(device)!r}')
    if isinstance(device, str) and device == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda', local_rank)
        return torch.device('cpu')
    resolved = torch.device(str(device) if isinstance(device, Device) else device)
    if resolved.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {str(device)!r} requested but CUDA is not available '
                             "(use device='auto' or 'cpu')")
        if resolved.index is None:
            resolved = torch.device('cuda', local_rank)
    return resolved

"""Network input as torch tensors: the numpy preprocessing of ``preprocess`` plus ``from_numpy``.

Kept apart from :mod:`smmcl_core.data.preprocess` so that the numpy path (the ROS node, the
bag tools, non-torch engines) does not import torch.
"""

from typing import Sequence, Tuple

import numpy as np
import torch

from smmcl_core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_input_arrays


def hwc_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H,W,C) float numpy -> contiguous (C,H,W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))


def to_input_tensors(rgb: np.ndarray, aux: np.ndarray, modality: str,
                     mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD, **kwargs
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`~smmcl_core.data.preprocess.to_input_arrays` as tensors (same arguments).

    Returns:
        ``(rgb (3,H,W), aux (3,H,W))`` float32 tensors (sharing memory with the arrays).

    Raises:
        ValueError: Unsupported encodings or mismatched image sizes.
    """
    rgb_a, aux_a = to_input_arrays(rgb, aux, modality, mean, std, **kwargs)
    return torch.from_numpy(rgb_a), torch.from_numpy(aux_a)

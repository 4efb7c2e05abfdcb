"""``data.resize``: run the network at a fixed input size, score and publish at native size.

A checkpoint trained with ``data.resize: [H, W]`` stores ``meta['resize'] = [H, W]``. Every
consumer then resizes the normalised inputs to that size before the network and brings the
logits back to the image's own size afterwards, so labels, masks and metrics stay at the
camera's resolution:

- training: the raw sample (RGB, aux unit map, label) is resized before augmentation
  (:func:`resize_sample`; area interpolation when shrinking, bilinear when enlarging, nearest
  for labels), so random scales and crops act on the resized image;
- evaluation (``smmcl-train``'s validation, ``smmcl-evaluate``) and ``Segmenter`` (node, bag
  tools): :func:`resize_inputs` on the normalised tensors, :func:`restore_logits` on the
  output.

Checkpoints without the key (all earlier ones) run at native size, as before.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

Size = Tuple[int, int]


def check_resize(value: Any, key: str = 'data.resize') -> Optional[Size]:
    """``None``/``[]`` -> None; ``[H, W]`` of positive ints -> ``(H, W)``.

    Raises:
        ValueError: Anything else (the message names ``key``).
    """
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2 \
            or not all(isinstance(v, (int, np.integer)) and v > 0 for v in value):
        raise ValueError(f'{key} must be [] or [height, width] positive integers, got {value!r}')
    return int(value[0]), int(value[1])


def resize_inputs(rgb: torch.Tensor, aux: torch.Tensor, size: Optional[Sequence[int]]
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Resize normalised ``(B,C,H,W)`` inputs to ``size`` (antialiased bilinear).

    ``size`` None or equal to the input size returns the tensors unchanged.
    """
    if size is None or tuple(rgb.shape[-2:]) == tuple(size):
        return rgb, aux
    size = (int(size[0]), int(size[1]))
    out = [F.interpolate(t.float(), size=size, mode='bilinear', align_corners=False,
                         antialias=True).to(t.dtype) for t in (rgb, aux)]
    return out[0], out[1]  # (B,C,h,w) each


def restore_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear ``(B,K,h,w)`` -> ``(B,K,H,W)`` at the image's own ``size``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=(int(size[0]), int(size[1])), mode='bilinear',
                         align_corners=False)


def resize_sample(rgb_unit: np.ndarray, aux_unit: np.ndarray, label: np.ndarray,
                  size: Optional[Sequence[int]]
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-side resize of float unit maps ``(H,W,C)`` and the ``uint8 (H,W)`` label."""
    if size is None or tuple(label.shape[:2]) == tuple(size):
        return rgb_unit, aux_unit, label
    h, w = int(size[0]), int(size[1])
    shrink = h * w < label.shape[0] * label.shape[1]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    rgb_unit = cv2.resize(np.ascontiguousarray(rgb_unit), (w, h), interpolation=mode)
    aux_out = cv2.resize(np.ascontiguousarray(aux_unit), (w, h), interpolation=mode)
    if aux_unit.ndim == 3 and aux_out.ndim == 2:
        aux_out = aux_out[:, :, None]
    label = cv2.resize(np.ascontiguousarray(label), (w, h), interpolation=cv2.INTER_NEAREST)
    return rgb_unit, aux_out, label

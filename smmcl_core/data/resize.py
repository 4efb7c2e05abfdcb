"""``data.resize``: run the network at a smaller input size, score and publish at native size.

Two forms:

- ``data.resize: 240`` (or ``[240]``): the short side becomes 240 pixels and the aspect ratio
  is kept (a 400x400 frame runs at 240x240, a 480x640 one at 240x320);
- ``data.resize: [H, W]``: exactly ``H x W``, stretching frames of another aspect ratio
  (``smmcl-check-data`` says so, see :func:`aspect_note`).

A checkpoint trained with it stores ``meta['resize']`` (``[S]`` or ``[H, W]``). Every
consumer then resizes the normalised inputs to that size before the network and brings the
logits back to the image's own size afterwards, so labels, masks and metrics stay at the
camera's resolution:

- training: the raw sample (RGB, aux unit map, label) is resized before augmentation
  (:func:`resize_sample`; area interpolation when shrinking, bilinear when enlarging, nearest
  for labels), so random scales and crops act on the resized image;
- evaluation (``smmcl-train``'s validation, ``smmcl-evaluate``) and ``Segmenter`` (node, bag
  tools): :func:`resize_inputs` on the normalised tensors, :func:`restore_logits` on the
  output; the numpy inference path uses :func:`resize_input_arrays` and
  :func:`restore_logit_arrays`, the same resampling in numpy (``data.resample``).

This module imports torch only inside the two tensor functions.

Checkpoints without the key (all earlier ones) run at native size, as before.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Optional, Sequence, Tuple, TYPE_CHECKING, Union

import cv2
import numpy as np

from smmcl_core.data.resample import bilinear, bilinear_antialias

if TYPE_CHECKING:
    import torch

Size = Tuple[int, int]
# A checked resize: an int = the short side (aspect kept), a pair = exact (H, W).
ResizeSpec = Union[int, Size]

# Relative difference of width/height ratios below which frames count as the same aspect.
ASPECT_TOLERANCE = 0.01


def _positive_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0


def check_resize(value: Any, key: str = 'data.resize') -> Optional[ResizeSpec]:
    """``None``/``[]`` -> None; ``S`` or ``[S]`` -> ``S`` (short side); ``[H, W]`` -> ``(H, W)``.

    Raises:
        ValueError: Anything else (the message names ``key``).
    """
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if _positive_int(value):
        return int(value)
    if isinstance(value, (list, tuple)) and len(value) in (1, 2) \
            and all(_positive_int(v) for v in value):
        return int(value[0]) if len(value) == 1 else (int(value[0]), int(value[1]))
    raise ValueError(f'{key} must be [] (native size), a short side S (or [S]; keeps the '
                     f'aspect ratio) or [height, width] (exact), positive integers; got '
                     f'{value!r}')


def target_size(spec: Optional[ResizeSpec], height: int, width: int) -> Size:
    """The network input size of a ``height x width`` frame under ``spec`` (None = native)."""
    if spec is None:
        return int(height), int(width)
    if isinstance(spec, (tuple, list)):
        return int(spec[0]), int(spec[1])
    scale = float(spec) / min(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def aspect_note(sizes: Iterable[Sequence[int]], spec: Optional[ResizeSpec],
                key: str = 'data.resize') -> Optional[str]:
    """A sentence when frames of ``sizes`` (``(H, W)`` each) would be stretched by ``spec``.

    Only an exact ``[H, W]`` stretches; None when every frame has its aspect ratio.
    """
    if spec is None or not isinstance(spec, (tuple, list)):
        return None
    counts = Counter(tuple(int(v) for v in s[:2]) for s in sizes)
    want = spec[1] / spec[0]
    off = {s: n for s, n in counts.items() if abs(s[1] / s[0] - want) > ASPECT_TOLERANCE * want}
    if not off:
        return None
    total = sum(counts.values())
    shown = ', '.join(f'{h}x{w} (width/height {w / h:.2f}) x{n}'
                      for (h, w), n in sorted(off.items(), key=lambda item: -item[1])[:3])
    return (f'{key} [{spec[0]}, {spec[1]}] has width/height {want:.2f} but {sum(off.values())} '
            f'of {total} sampled frames differ: {shown}; the network would see them '
            f'stretched. {key}: {min(spec)} resizes the short side to {min(spec)} and keeps '
            'the aspect ratio')


def resize_inputs(rgb: torch.Tensor, aux: torch.Tensor, size: Optional[ResizeSpec]
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Resize normalised ``(B,C,H,W)`` inputs to ``size`` (antialiased bilinear).

    ``size``: a short side or ``(H, W)`` (see :func:`check_resize`); None or the input's own
    size returns the tensors unchanged.
    """
    if size is None:
        return rgb, aux
    size = target_size(size, int(rgb.shape[-2]), int(rgb.shape[-1]))
    if tuple(rgb.shape[-2:]) == size:
        return rgb, aux
    import torch.nn.functional as F

    out = [F.interpolate(t.float(), size=size, mode='bilinear', align_corners=False,
                         antialias=True).to(t.dtype) for t in (rgb, aux)]
    return out[0], out[1]  # (B,C,h,w) each


def restore_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear ``(B,K,h,w)`` -> ``(B,K,H,W)`` at the image's own ``size``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    import torch.nn.functional as F

    return F.interpolate(logits, size=(int(size[0]), int(size[1])), mode='bilinear',
                         align_corners=False)


def resize_input_arrays(rgb: np.ndarray, aux: np.ndarray, size: Optional[ResizeSpec]
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`resize_inputs` on ``(B,C,H,W)`` float32 numpy arrays (antialiased bilinear)."""
    if size is None:
        return rgb, aux
    size = target_size(size, int(rgb.shape[-2]), int(rgb.shape[-1]))
    if tuple(rgb.shape[-2:]) == size:
        return rgb, aux
    return bilinear_antialias(rgb, size), bilinear_antialias(aux, size)  # (B,C,h,w) each


def restore_logit_arrays(logits: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """:func:`restore_logits` in numpy: bilinear ``(B,K,h,w)`` -> ``(B,K,H,W)``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return bilinear(logits, size)


def resize_sample(rgb_unit: np.ndarray, aux_unit: np.ndarray, label: np.ndarray,
                  size: Optional[ResizeSpec]
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-side resize of float unit maps ``(H,W,C)`` and the ``uint8 (H,W)`` label."""
    if size is None:
        return rgb_unit, aux_unit, label
    h, w = target_size(size, label.shape[0], label.shape[1])
    if (h, w) == tuple(label.shape[:2]):
        return rgb_unit, aux_unit, label
    shrink = h * w < label.shape[0] * label.shape[1]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    rgb_unit = cv2.resize(np.ascontiguousarray(rgb_unit), (w, h), interpolation=mode)
    aux_out = cv2.resize(np.ascontiguousarray(aux_unit), (w, h), interpolation=mode)
    if aux_unit.ndim == 3 and aux_out.ndim == 2:
        aux_out = aux_out[:, :, None]
    label = cv2.resize(np.ascontiguousarray(label), (w, h), interpolation=cv2.INTER_NEAREST)
    return rgb_unit, aux_out, label

"""``predict_logits`` in numpy: the inference of an engine that runs numpy arrays, no torch.

Public API:

- ``predict_logits_np(run, rgb, aux, num_classes, crop=None, stride=None, scales=(1.0,),
  flip=False, size_divisor=32) -> (B,K,H,W) float32``: ``run(rgb, aux) -> logits`` on
  ``(B,3,h,w)`` float32 arrays (``Engine.run_numpy``); the same padding (zeros on the
  bottom/right to a multiple of ``size_divisor``), sliding windows (logits averaged),
  scales (bilinear) and flip (log of the averaged softmax) as
  :func:`smmcl_core.inference.predict_logits`, whose module docstring defines the output.
- ``labels_from_logits(logits (K,H,W), return_confidence) -> labels uint8 (H,W)`` or
  ``(labels, confidence float32 (H,W))`` (max softmax probability).
- ``check_plan(...)`` and ``tta_passes(scales, flip)``: the argument checks and the list of
  forward passes both implementations share.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from smmcl_core.data.resample import bilinear

Run = Callable[[np.ndarray, np.ndarray], np.ndarray]
Pair = Optional[Tuple[int, int]]


def pair(value: Optional[Union[Sequence[int], int]]) -> Pair:
    """An int or ``(h, w)`` -> ``(h, w)``; None or ``[]`` -> None."""
    if value is None:
        return None
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    if len(value) == 0:
        return None
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f'expected a positive (h, w) pair, got {value}')
    return value


def tta_passes(scales: Sequence[float], flip: bool) -> List[Tuple[float, bool]]:
    """The ``(scale, flipped)`` forward passes of one prediction, in the order they run."""
    return [(s, f) for s in scales for f in ((False, True) if flip else (False,))]


def check_plan(rgb_shape: Sequence[int], aux_shape: Sequence[int], crop, stride,
               scales: Sequence[float]) -> Tuple[Pair, Pair, Tuple[float, ...]]:
    """Validate shapes and options -> ``(crop, stride, scales)`` (stride defaults to 2/3 crop).

    Raises:
        ValueError: Bad shapes, crop/stride or scales.
    """
    rgb_shape, aux_shape = tuple(rgb_shape), tuple(aux_shape)
    if len(rgb_shape) != 4 or len(aux_shape) != 4:
        raise ValueError(f'rgb and aux must be (B,C,H,W), got {rgb_shape} and {aux_shape}')
    if rgb_shape[0] != aux_shape[0] or rgb_shape[-2:] != aux_shape[-2:]:
        raise ValueError(f'rgb {rgb_shape} and aux {aux_shape} differ in batch or size')
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f'scales must be positive, got {scales}')
    crop_hw, stride_hw = pair(crop), pair(stride)
    if crop_hw is not None and stride_hw is None:
        stride_hw = (math.ceil(crop_hw[0] * 2 / 3), math.ceil(crop_hw[1] * 2 / 3))
    return crop_hw, stride_hw, scales


def _pad(x: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    if not (pad_h or pad_w):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)))  # zeros = the normalised mean


def _forward_padded(run: Run, rgb: np.ndarray, aux: np.ndarray, num_classes: int,
                    size_divisor: int) -> np.ndarray:
    h, w = rgb.shape[-2:]
    pad_h, pad_w = (-h) % size_divisor, (-w) % size_divisor
    rgb, aux = _pad(rgb, pad_h, pad_w), _pad(aux, pad_h, pad_w)  # (B,3,H',W')
    logits = run(rgb, aux)  # (B,K,H',W') (or another size: resized)
    if logits.shape[1] != num_classes:
        raise ValueError(f'model returned {logits.shape[1]} channels, expected num_classes='
                         f'{num_classes}')
    if logits.shape[-2:] != rgb.shape[-2:]:
        logits = bilinear(logits, rgb.shape[-2:])
    return logits[..., :h, :w]


def _sliding(run: Run, rgb: np.ndarray, aux: np.ndarray, num_classes: int,
             crop: Tuple[int, int], stride: Tuple[int, int], size_divisor: int) -> np.ndarray:
    b, _, h, w = rgb.shape
    (ch, cw), (sh, sw) = crop, stride
    rgb, aux = _pad(rgb, max(ch - h, 0), max(cw - w, 0)), _pad(aux, max(ch - h, 0),
                                                               max(cw - w, 0))
    ph, pw = rgb.shape[-2:]
    rows = max(math.ceil((ph - ch) / sh), 0) + 1
    cols = max(math.ceil((pw - cw) / sw), 0) + 1
    total = np.zeros((b, num_classes, ph, pw), np.float32)
    count = np.zeros((1, 1, ph, pw), np.float32)
    for r in range(rows):
        y0 = min(r * sh, ph - ch)
        for c in range(cols):
            x0 = min(c * sw, pw - cw)
            total[..., y0:y0 + ch, x0:x0 + cw] += _forward_padded(
                run, rgb[..., y0:y0 + ch, x0:x0 + cw], aux[..., y0:y0 + ch, x0:x0 + cw],
                num_classes, size_divisor)
            count[..., y0:y0 + ch, x0:x0 + cw] += 1
    return (total / count)[..., :h, :w]


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float32)."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32, copy=False)


def predict_logits_np(run: Run, rgb: np.ndarray, aux: np.ndarray, num_classes: int,
                      crop: Optional[Union[Sequence[int], int]] = None,
                      stride: Optional[Union[Sequence[int], int]] = None,
                      scales: Sequence[float] = (1.0,), flip: bool = False,
                      size_divisor: int = 32) -> np.ndarray:
    """Class scores for a batch (see the module docstring; arguments as ``predict_logits``).

    Args:
        run: ``(rgb (B,3,h,w), aux (B,3,h,w)) -> (B,K,h',w')`` float32 logits.
        rgb: ``(B,3,H,W)`` normalised RGB, float32.
        aux: ``(B,3,H,W)`` normalised auxiliary modality, float32.
        num_classes: K, checked against the output.
        crop: Sliding-window size ``(h, w)`` (or one int); ``None``/``[]`` = whole image.
        stride: Window step; default ``ceil(2/3 crop)``.
        scales: Input rescale factors; predictions are resized back to ``(H, W)``.
        flip: Also predict the horizontally flipped input and average.
        size_divisor: Each pass pads its input to a multiple of this.

    Returns:
        ``(B,K,H,W)`` float32 logits (single pass) or log averaged probabilities.

    Raises:
        ValueError: Bad shapes, crop/stride or scales, or the wrong class count.
    """
    crop_hw, stride_hw, scales = check_plan(rgb.shape, aux.shape, crop, stride, scales)
    h, w = rgb.shape[-2:]

    def one(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if crop_hw is None:
            return _forward_padded(run, x, y, num_classes, size_divisor)
        return _sliding(run, x, y, num_classes, crop_hw, stride_hw, size_divisor)

    passes = tta_passes(scales, flip)
    if len(passes) == 1 and scales[0] == 1.0:
        return one(rgb, aux).astype(np.float32, copy=False)
    prob_sum = None
    for scale, flipped in passes:
        x, y = rgb, aux
        if scale != 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x, y = bilinear(x, size), bilinear(y, size)  # (B,3,h*s,w*s)
        if flipped:
            x, y = x[..., ::-1], y[..., ::-1]
        logits = one(x, y)
        if flipped:
            logits = logits[..., ::-1]
        if logits.shape[-2:] != (h, w):
            logits = bilinear(logits, (h, w))
        probs = softmax(logits, 1)
        prob_sum = probs if prob_sum is None else prob_sum + probs
    # log of the mean probability: softmax() of it gives back exactly that mean.
    return np.log(np.maximum(prob_sum / len(passes), np.float32(1e-12)))


def labels_from_logits(logits: np.ndarray, return_confidence: bool = False
                       ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """``(K,H,W)`` scores -> labels ``uint8 (H,W)`` (and the max softmax probability)."""
    if not return_confidence:
        return logits.argmax(0).astype(np.uint8)
    probs = softmax(logits, 0)  # (K,H,W)
    return probs.argmax(0).astype(np.uint8), probs.max(0).astype(np.float32)

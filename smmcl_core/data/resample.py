"""Bilinear resampling of ``(..., H, W)`` float arrays in numpy, as torch's ``F.interpolate``.

The numpy inference path (``smmcl_core.inference_np``, ``data.resize``) must give the masks
the torch path gives, so these follow torch's index and weight rules (``align_corners=False``):

- :func:`bilinear`: ``mode='bilinear'`` (source ``(i + 0.5) * in / out - 0.5``, clamped at 0;
  two taps per output pixel);
- :func:`bilinear_antialias`: ``mode='bilinear', antialias=True`` (PIL's triangle filter
  widened by the shrink factor, weights normalised per output pixel; the same as
  :func:`bilinear` when enlarging).

Both are separable: one pass along W, one along H, each a sum over a few taps gathered with
``np.take``. Results equal torch's up to float32 rounding (about 1e-6).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

Taps = Tuple[np.ndarray, np.ndarray]  # indices (out, T) int64, weights (out, T) float32


def bilinear_taps(in_size: int, out_size: int) -> Taps:
    """Two taps per output index: torch's ``upsample_bilinear2d`` (``align_corners=False``)."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0).astype(np.float32)
    return np.stack([i0, i1], 1), np.stack([1 - lam, lam], 1)


def antialias_taps(in_size: int, out_size: int) -> Taps:
    """Triangle-filter taps: torch's ``_upsample_bilinear2d_aa`` weights."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0  # interp_size / 2 = 1, widened when shrinking
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(out_size) + 0.5)
    lo = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centers + support + 0.5).astype(np.int64), in_size)
    width = int((hi - lo).max())
    idx = lo[:, None] + np.arange(width)[None, :]  # (out, T)
    weights = np.clip(1.0 - np.abs((idx - centers[:, None] + 0.5) * invscale), 0.0, None)
    weights[idx >= hi[:, None]] = 0.0
    total = weights.sum(1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total != 0)
    return np.minimum(idx, in_size - 1), weights.astype(np.float32)


def apply_taps(x: np.ndarray, taps: Taps, axis: int) -> np.ndarray:
    """Resample ``x`` along ``axis`` with ``taps`` (the axis gets ``len(indices)`` entries)."""
    idx, weights = taps
    shape = [1] * x.ndim
    shape[axis] = idx.shape[0]
    out = None
    for t in range(idx.shape[1]):
        term = np.take(x, idx[:, t], axis=axis) * weights[:, t].reshape(shape)
        out = term if out is None else out + term
    return out


def _resize(x: np.ndarray, size: Sequence[int], taps_of) -> np.ndarray:
    h, w = int(size[0]), int(size[1])
    x = np.asarray(x, np.float32)
    if x.shape[-1] != w:
        x = apply_taps(x, taps_of(x.shape[-1], w), x.ndim - 1)  # (..., H, w)
    if x.shape[-2] != h:
        x = apply_taps(x, taps_of(x.shape[-2], h), x.ndim - 2)  # (..., h, w)
    return x


def bilinear(x: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``(..., H, W)`` -> ``(..., h, w)`` float32, as ``F.interpolate(mode='bilinear')``."""
    return _resize(x, size, bilinear_taps)


def bilinear_antialias(x: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``(..., H, W)`` -> ``(..., h, w)`` float32, as ``F.interpolate(..., antialias=True)``."""
    return _resize(x, size, antialias_taps)

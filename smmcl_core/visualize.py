"""Label colouring, overlays and a confusion-matrix figure (matplotlib Agg, no display needed).

Public API (frozen):

- ``colorize_labels(labels uint8/int (H,W), palette (K,3)) -> uint8 (H,W,3)``; labels outside
  ``[0, K)`` (e.g. 255 = ignore) are black. (``colorize`` is the old name, kept until
  smmcl_ros calls ``colorize_labels``; intensity through a colour map is
  ``smmcl_core.data.thermal.apply_colormap``.)
- ``overlay(rgb uint8 (H,W,3), color uint8 (H,W,3), alpha=0.5, mask=None) -> uint8 (H,W,3)``:
  ``(1 - alpha) * rgb + alpha * color``, only where ``mask`` is true when a mask is given.
- ``save_confusion_matrix(matrix (K,K), class_names, path, normalize=True, title='')``: PNG with
  rows = ground truth, columns = prediction (row-normalised when ``normalize``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np


def colorize_labels(labels: np.ndarray, palette: Any) -> np.ndarray:
    """Map a label image to colours; out-of-range labels (ignore) become black.

    Raises:
        ValueError: labels not 2-D integer, or palette not ``(K,3)``.
    """
    labels = np.asarray(labels)
    palette = np.asarray(palette)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'labels must be an integer (H,W) array, got dtype={labels.dtype}, '
                         f'shape={labels.shape}')
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f'palette must be (K,3), got shape {palette.shape}')
    if labels.dtype == np.uint8:
        # 256-entry lookup table: one gather, no masking.
        lut = np.zeros((256, 3), np.uint8)
        k = min(len(palette), 256)
        lut[:k] = palette[:k].astype(np.uint8)
        return lut[labels]
    out = np.zeros(labels.shape + (3,), np.uint8)
    valid = (labels >= 0) & (labels < len(palette))
    out[valid] = palette.astype(np.uint8)[labels[valid]]
    return out


colorize = colorize_labels  # old name (smmcl_ros); use colorize_labels


def overlay(rgb: np.ndarray, color: np.ndarray, alpha: float = 0.5,
            mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend a colour image over RGB: ``(1 - alpha) * rgb + alpha * color``.

    Raises:
        ValueError: shapes differ, not ``(H,W,3)``, or ``alpha`` outside [0, 1].
    """
    rgb = np.asarray(rgb)
    color = np.asarray(color)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape != color.shape:
        raise ValueError(f'rgb {rgb.shape} and color {color.shape} must both be (H,W,3)')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    # One fused saturating pass (the node calls this per frame at camera rate).
    blended = cv2.addWeighted(np.ascontiguousarray(rgb, dtype=np.uint8), 1.0 - alpha,
                              np.ascontiguousarray(color, dtype=np.uint8), alpha, 0.0)
    if mask is None:
        return blended
    mask = np.asarray(mask, bool)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f'mask shape {mask.shape} differs from image size {rgb.shape[:2]}')
    out = rgb.astype(np.uint8).copy()
    out[mask] = blended[mask]
    return out


def save_confusion_matrix(matrix: Any, class_names: Sequence[str],
                          path: Union[str, os.PathLike], normalize: bool = True,
                          title: str = '') -> Path:
    """Write a confusion-matrix heat map to PNG (uses the Agg canvas directly, no pyplot).

    Args:
        matrix: ``(K,K)`` counts (numpy, list or tensor); rows = ground truth.
        class_names: K names.
        path: Output PNG.
        normalize: Divide each row by its sum (rows without pixels stay 0).
        title: Figure title.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if hasattr(matrix, 'detach'):
        matrix = matrix.detach().cpu().numpy()
    counts = np.asarray(matrix, np.float64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f'matrix shape {counts.shape} does not match {k} class names')
    values = counts
    if normalize:
        rows = counts.sum(1, keepdims=True)
        values = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(4.0, 0.5 * k + 2.0)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, cmap='Blues', vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(class_names, rotation=90)
    ax.set_yticklabels(class_names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('ground truth')
    if title:
        ax.set_title(title)
    if k <= 20:
        threshold = values.max() / 2 if values.size else 0
        for r in range(k):
            for c in range(k):
                text = f'{values[r, c]:.2f}' if normalize else f'{int(counts[r, c])}'
                ax.text(c, r, text, ha='center', va='center', fontsize=7,
                        color='white' if values[r, c] > threshold else 'black')
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path

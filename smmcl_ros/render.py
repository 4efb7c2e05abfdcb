"""Label maps to pictures: palette colouring and RGB overlay, plus the labels JSON."""

import json
from typing import Sequence

import cv2
import numpy as np


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map ``uint8 (H,W)`` class ids to ``uint8 (H,W,3)`` palette colours.

    Ids outside the palette (e.g. 255 = ignore) become black.
    """
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)[:256]
    return lut[labels]  # (H,W) -> (H,W,3)


def overlay(rgb: np.ndarray, color: np.ndarray, alpha: float) -> np.ndarray:
    """Blend the colour map over the RGB image: ``(1 - alpha) * rgb + alpha * color``."""
    return cv2.addWeighted(np.ascontiguousarray(rgb), 1.0 - alpha,
                           np.ascontiguousarray(color), alpha, 0.0)


def labels_json(class_names: Sequence[str], palette: np.ndarray) -> str:
    """``{"0": {"name": ..., "color": [r, g, b]}, ...}`` for the latched labels topic."""
    palette = np.asarray(palette, np.uint8)
    return json.dumps({str(i): {'name': str(name), 'color': [int(c) for c in palette[i]]}
                       for i, name in enumerate(class_names)})

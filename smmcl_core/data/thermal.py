"""Pseudo-colour thermal images back to intensity.

Many thermal cameras and datasets store thermal frames rendered through a colour map
(ironbow, inferno, jet, ...). The network wants the underlying intensity, so a colour image
is inverted through the named map: every pixel takes the position (0..255) of the nearest
colour (Euclidean RGB distance) in the map's 256-entry table. Without a named map the
Rec. 601 luminance is used, with a warning: luminance is not monotonic in temperature for
most colour maps (jet's yellow is brighter than its red).

Inversion runs per frame (training, ``Segmenter``, the ROS node, bag tools), so it is a table
look-up: colours are quantised to 6 bits per channel and a 64^3 table, built once per map,
holds the nearest map position and the distance to it.

Named maps: OpenCV's built-in tables (``inferno``, ``magma``, ``plasma``, ``viridis``,
``cividis``, ``jet``, ``turbo``, ``hot``, ``rainbow``, ``parula``, ``bone``), ``ironbow``
(a piecewise-linear approximation of the FLIR palette: black, indigo, magenta, red, orange,
yellow, white) and ``luminance`` (grey-level conversion, no warning).
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple
import warnings

import cv2
import numpy as np

_OPENCV_MAPS: Dict[str, int] = {
    'inferno': cv2.COLORMAP_INFERNO, 'magma': cv2.COLORMAP_MAGMA,
    'plasma': cv2.COLORMAP_PLASMA, 'viridis': cv2.COLORMAP_VIRIDIS,
    'cividis': cv2.COLORMAP_CIVIDIS, 'jet': cv2.COLORMAP_JET, 'turbo': cv2.COLORMAP_TURBO,
    'hot': cv2.COLORMAP_HOT, 'rainbow': cv2.COLORMAP_RAINBOW, 'parula': cv2.COLORMAP_PARULA,
    'bone': cv2.COLORMAP_BONE,
}

# (position in [0, 1], RGB) anchors of the ironbow approximation, interpolated linearly.
_IRONBOW_ANCHORS = (
    (0.00, (0, 0, 0)), (0.15, (30, 0, 100)), (0.35, (140, 0, 150)), (0.55, (220, 40, 60)),
    (0.72, (250, 120, 0)), (0.88, (255, 210, 20)), (1.00, (255, 255, 255)))

LUMINANCE = 'luminance'
COLORMAPS: Tuple[str, ...] = tuple(sorted(_OPENCV_MAPS)) + ('ironbow', LUMINANCE)

# Mean distance (RGB units) from the map above which an image is reported as not rendered
# with it (6-bit quantisation alone contributes at most about 3.5).
MISMATCH_DISTANCE = 20.0

_QUANT_BITS = 6


def check_colormap(name: str) -> str:
    """Return ``name`` if it is a known map ('' = none); raise ``ValueError`` listing them."""
    if name and name not in COLORMAPS:
        raise ValueError(f'unknown thermal_colormap {name!r}; valid: {", ".join(COLORMAPS)}')
    return name


@functools.lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """The map's 256 colours, ``uint8 (256, 3)`` RGB, index = intensity.

    Raises:
        ValueError: Unknown name.
    """
    check_colormap(name)
    if not name:
        raise ValueError('thermal_colormap is empty: no colour table')
    if name == LUMINANCE:
        lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    elif name == 'ironbow':
        positions = np.array([a[0] for a in _IRONBOW_ANCHORS]) * 255.0
        colours = np.array([a[1] for a in _IRONBOW_ANCHORS], np.float64)
        grid = np.arange(256, dtype=np.float64)
        lut = np.stack([np.interp(grid, positions, colours[:, c]) for c in range(3)], axis=1)
        lut = np.round(lut).astype(np.uint8)
    else:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        lut = cv2.applyColorMap(ramp, _OPENCV_MAPS[name])[:, 0, ::-1]  # BGR -> RGB
    lut = np.ascontiguousarray(lut)
    lut.setflags(write=False)
    return lut


def apply_colormap(intensity: np.ndarray, name: str) -> np.ndarray:
    """Render ``uint8 (H,W)`` intensity through a map: ``uint8 (H,W,3)`` RGB."""
    return colormap_lut(name)[np.asarray(intensity, np.uint8)]


@functools.lru_cache(maxsize=None)
def _inverse_table(name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(nearest map position uint8, distance float32), each ``(64**3,)`` by quantised colour."""
    lut = colormap_lut(name).astype(np.float32)  # (256,3)
    levels = 1 << _QUANT_BITS
    step = 256 // levels
    centres = np.arange(levels, dtype=np.float32) * step + (step - 1) / 2.0
    r, g, b = np.meshgrid(centres, centres, centres, indexing='ij')
    colours = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)  # (64^3, 3)
    lut_sq = (lut ** 2).sum(1)
    index = np.empty(len(colours), np.uint8)
    distance = np.empty(len(colours), np.float32)
    for start in range(0, len(colours), 16384):
        chunk = colours[start:start + 16384]
        # |c - l|^2 = |c|^2 - 2 c.l + |l|^2, (chunk, 256)
        d2 = (chunk ** 2).sum(1, keepdims=True) - 2.0 * chunk @ lut.T + lut_sq[None]
        best = d2.argmin(1)
        index[start:start + len(chunk)] = best
        distance[start:start + len(chunk)] = np.sqrt(np.maximum(
            d2[np.arange(len(chunk)), best], 0.0))
    index.setflags(write=False)
    distance.setflags(write=False)
    return index, distance


def _quantised_codes(rgb: np.ndarray) -> np.ndarray:
    shift = 8 - _QUANT_BITS
    q = (rgb >> shift).astype(np.int32)
    return (q[..., 0] << (2 * _QUANT_BITS)) | (q[..., 1] << _QUANT_BITS) | q[..., 2]


def invert_colormap(rgb: np.ndarray, name: str) -> Tuple[np.ndarray, float]:
    """Intensity of a pseudo-colour image rendered with map ``name``.

    Args:
        rgb: ``uint8 (H,W,3)`` in RGB order.
        name: One of :data:`COLORMAPS`.

    Returns:
        ``(intensity uint8 (H,W), mean distance to the map in RGB units)``; a large distance
        (above :data:`MISMATCH_DISTANCE`) means the image was not rendered with this map.
    """
    if name == LUMINANCE:
        return luminance(rgb), 0.0
    index, distance = _inverse_table(check_colormap(name))
    codes = _quantised_codes(rgb)
    return index[codes], float(distance[codes].mean()) if codes.size else 0.0


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an ``uint8 (H,W,3)`` RGB image, ``uint8 (H,W)``."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def color_thermal_to_intensity(rgb: np.ndarray, colormap: Optional[str] = '') -> np.ndarray:
    """A colour thermal image as ``uint8 (H,W)`` intensity.

    Args:
        rgb: ``uint8 (H,W,3)`` (or ``(H,W,4)``, alpha ignored), RGB order.
        colormap: Map the image was rendered with; ``''`` falls back to luminance and warns.

    Raises:
        ValueError: Not an 8-bit colour image, or an unknown map name.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f'colour thermal image must be uint8 (H,W,3), got dtype={rgb.dtype}, '
                         f'shape={tuple(rgb.shape)}')
    rgb = rgb[:, :, :3]
    if not colormap:
        warnings.warn(
            'colour (pseudo-colour) thermal image with no thermal_colormap: using luminance, '
            'which is not monotonic in temperature for most colour maps; name the map in '
            f'classes.yaml (thermal_colormap: one of {", ".join(COLORMAPS)})',
            RuntimeWarning, stacklevel=3)
        return luminance(rgb)
    return invert_colormap(rgb, colormap)[0]

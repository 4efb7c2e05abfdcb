"""Organised semantic point cloud from a registered depth image, ``K`` and the mask (numpy).

The cloud has one point per mask pixel (or per ``stride``-th pixel in both directions), in the
camera's optical frame, as depth_image_proc's ``point_cloud_xyz`` computes it: for the kept
pixel ``(u, v)`` (its coordinates in the full image) with depth ``z`` in metres,
``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``. Pixels without a usable point get NaN
``x, y, z`` (an organised cloud keeps them, ``is_dense`` false): depth 0, NaN or inf, depth
beyond ``max_range`` (metres along the optical axis, 0 = no limit), or a class not in
``classes``. ``label``, ``rgb`` and ``confidence`` are kept for every pixel, NaN or not, so
the cloud stays pixel-aligned with the (subsampled) mask.

Point layout (:data:`FIELDS`, :data:`POINT_STEP` = 24 bytes, native byte order)::

    offset  0 x  FLOAT32 | 4 y FLOAT32 | 8 z FLOAT32 | 12 rgb FLOAT32
    offset 16 confidence FLOAT32 | 20 label UINT8 | 21..23 zero padding

Six 4-byte words per point: every float column is written with one vectorised numpy call
into a ``(h, w, 6)`` float32 buffer, and ``label`` with its zero padding as one uint32 word
(``benchmarks/bench_points.py`` measures it against the other layouts tried). ``rgb`` is the
class palette colour packed as ``0x00RRGGBB`` and stored bit-for-bit as a float32, the
convention rviz (and PCL's ``PointXYZRGB``) read; with the top byte 0 it is never a NaN.

No ROS import: :mod:`smmcl_ros.messages.pointcloud` turns :class:`SemanticCloud` into a
``sensor_msgs/PointCloud2``.
"""

from dataclasses import dataclass
import sys
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

# sensor_msgs/PointField datatypes used here.
UINT8 = 2
FLOAT32 = 7


class Field(NamedTuple):
    """One ``sensor_msgs/PointField``: name, byte offset, datatype, count."""

    name: str
    offset: int
    datatype: int
    count: int = 1


FIELDS: Tuple[Field, ...] = (
    Field('x', 0, FLOAT32), Field('y', 4, FLOAT32), Field('z', 8, FLOAT32),
    Field('rgb', 12, FLOAT32), Field('confidence', 16, FLOAT32), Field('label', 20, UINT8))
POINT_STEP = 24
_WORDS = POINT_STEP // 4  # float32 words per point
_X, _Y, _Z, _RGB, _CONF, _LABEL = range(_WORDS)
# label is the byte at offset 20, i.e. the low byte of word 5 on little-endian machines.
_LABEL_SHIFT = 0 if sys.byteorder == 'little' else 24

# Structured view of one point (native byte order), e.g. ``cloud.points['label']``.
POINT_DTYPE = np.dtype({'names': [f.name for f in FIELDS],
                        'formats': ['u1' if f.datatype == UINT8 else '=f4' for f in FIELDS],
                        'offsets': [f.offset for f in FIELDS], 'itemsize': POINT_STEP})

DEPTH_DTYPES = ('uint16 (millimetres, 16UC1)', 'float32 (metres, 32FC1)')
MM_PER_M = 1000.0


@dataclass(frozen=True)
class PointsConfig:
    """Validated cloud settings (see :func:`points_config`).

    Attributes:
        stride: Keep every ``stride``-th row and column (1 = every pixel).
        max_range: Depth beyond which points are NaN, metres (0 = no limit).
        classes: Class ids whose points are kept (empty = all classes).
    """

    stride: int = 1
    max_range: float = 0.0
    classes: Tuple[int, ...] = ()


def points_config(stride: int, max_range: float, classes: Sequence[str],
                  class_names: Sequence[str]) -> PointsConfig:
    """Check the ``points_*`` node parameters against the checkpoint's classes.

    Args:
        stride: ``points_stride``, an integer >= 1.
        max_range: ``points_max_range`` in metres, >= 0 (0 = no limit).
        classes: ``points_classes``, class names to keep (empty = all).
        class_names: The checkpoint's class names, index = class id.

    Returns:
        The settings with class names resolved to ids (in the order given).

    Raises:
        ValueError: Naming the parameter, and for an unknown class the valid names.
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"parameter 'points_stride' must be an integer >= 1, got {stride!r}")
    try:
        max_range = float(max_range)
    except (TypeError, ValueError):
        raise ValueError(f"parameter 'points_max_range' must be a number of metres >= 0 "
                         f'(0 = no limit), got {max_range!r}') from None
    if not (np.isfinite(max_range) and max_range >= 0.0):
        raise ValueError(f"parameter 'points_max_range' must be a number of metres >= 0 "
                         f'(0 = no limit), got {max_range!r}')
    names = list(class_names)
    ids = []
    for name in classes:
        if name not in names:
            raise ValueError(f"parameter 'points_classes': unknown class {name!r}; valid: "
                             f'{names}')
        ids.append(names.index(name))
    return PointsConfig(int(stride), max_range, tuple(dict.fromkeys(ids)))


def pack_rgb(palette: np.ndarray) -> np.ndarray:
    """``(K, 3)`` uint8 colours as ``(K,)`` float32 holding the bits ``0x00RRGGBB``."""
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f'palette must be (K, 3) RGB, got shape {palette.shape}')
    rgb = palette.astype(np.uint32)
    return ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).view(np.float32)


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: float32 ``(...)`` -> uint8 ``(..., 3)``."""
    bits = np.ascontiguousarray(rgb, np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1).astype(np.uint8)


class SemanticCloud(NamedTuple):
    """An organised cloud: ``buffer`` is ``(height, width, 6)`` float32 words of 24-byte points.

    ``points`` is the same memory as a structured ``(height, width)`` array of
    :data:`POINT_DTYPE` (``cloud.points['x']``, ``cloud.points['label']``).
    """

    buffer: np.ndarray

    @property
    def height(self) -> int:
        """Rows of the cloud."""
        return self.buffer.shape[0]

    @property
    def width(self) -> int:
        """Points per row."""
        return self.buffer.shape[1]

    @property
    def points(self) -> np.ndarray:
        """Structured ``(height, width)`` view of :data:`POINT_DTYPE`."""
        return self.buffer.view(POINT_DTYPE)[..., 0]


class CloudBuilder:
    """Builds :class:`SemanticCloud` s for one class palette and :class:`PointsConfig`.

    Keeps the per-configuration tables (palette colours, kept classes, the uint16 depth to
    metres table with its invalid entries NaN) and the last pixel rays, so a frame costs a
    few vectorised passes.
    """

    def __init__(self, palette: np.ndarray, config: PointsConfig = PointsConfig()) -> None:
        self.config = config
        self._rgb = pack_rgb(palette)  # (K,) float32
        num_classes = len(self._rgb)
        bad = [c for c in config.classes if not 0 <= c < num_classes]
        if bad:
            raise ValueError(f'points classes {bad} are not ids of the {num_classes}-colour '
                             'palette')
        self._keep: Optional[np.ndarray] = None  # (K,) bool, None = keep every class
        if config.classes:
            self._keep = np.zeros(num_classes, bool)
            self._keep[list(config.classes)] = True
        # uint16 millimetres -> float32 metres, NaN for 0 and beyond max_range: one gather.
        self._mm_to_m = np.arange(65536, dtype=np.float32) / np.float32(MM_PER_M)
        self._mm_to_m[0] = np.nan
        if config.max_range > 0:
            self._mm_to_m[self._mm_to_m > np.float32(config.max_range)] = np.nan
        self._rays_key = None
        self._rays: Tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))

    def build(self, depth: np.ndarray, K: np.ndarray, labels: np.ndarray,
              confidence: np.ndarray) -> SemanticCloud:
        """The cloud of one frame.

        Args:
            depth: ``(H, W)`` depth registered to the mask: uint16 millimetres or float32
                metres (0 / NaN / inf = no measurement).
            K: ``(3, 3)`` pinhole intrinsics of the ``(H, W)`` depth image.
            labels: ``(H, W)`` class ids (uint8 or any integer type), < palette length.
            confidence: ``(H, W)`` float confidence of each label.

        Raises:
            ValueError: Shapes, dtypes, intrinsics or class ids that do not fit, naming which.
        """
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f'labels must be (H, W), got shape {labels.shape}')
        for name, array in (('depth', depth), ('confidence', confidence)):
            if np.shape(array) != labels.shape:
                raise ValueError(f'{name} shape {np.shape(array)} != labels shape '
                                 f'{labels.shape} (register and resize it to the mask first)')
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f'labels must be integer class ids, got dtype {labels.dtype}')
        if labels.size and (int(labels.max()) >= len(self._rgb) or int(labels.min()) < 0):
            raise ValueError(f'labels hold ids {int(labels.min())}..{int(labels.max())} but the '
                             f'palette has {len(self._rgb)} colours')
        s = self.config.stride
        labels = labels[::s, ::s]  # (h, w) views from here on
        depth = depth[::s, ::s]
        confidence = confidence[::s, ::s]
        xs, ys = self._pixel_rays(K, depth.shape, s)  # (w,), (h, 1)

        z = self._metres(depth)  # (h, w) float32, NaN = no point
        if self._keep is not None:
            np.copyto(z, np.float32(np.nan), where=~self._keep[labels])
        buf = np.empty(z.shape + (_WORDS,), np.float32)  # (h, w, 6)
        np.multiply(z, xs, out=buf[..., _X])
        np.multiply(z, ys, out=buf[..., _Y])
        buf[..., _Z] = z
        buf[..., _RGB] = np.take(self._rgb, labels)
        buf[..., _CONF] = confidence
        words = buf.view(np.uint32)[..., _LABEL]  # label byte + zero padding
        if _LABEL_SHIFT:
            words[...] = labels.astype(np.uint32) << _LABEL_SHIFT
        else:
            np.copyto(words, labels, casting='unsafe')
        return SemanticCloud(buf)

    def _metres(self, depth: np.ndarray) -> np.ndarray:
        """``(h, w)`` float32 depth in metres, NaN where there is no usable point."""
        if depth.dtype == np.uint16:
            return np.take(self._mm_to_m, depth)
        if depth.dtype in (np.float32, np.float64):
            z = depth.astype(np.float32)  # a copy: NaNs are written into it
            usable = z > 0  # False for 0, negative and NaN
            usable &= (z <= np.float32(self.config.max_range)) if self.config.max_range > 0 \
                else (z < np.inf)
            np.copyto(z, np.float32(np.nan), where=~usable)
            return z
        raise ValueError(f'depth dtype {depth.dtype} is not supported; valid: '
                         f'{list(DEPTH_DTYPES)}')

    def _pixel_rays(self, K: np.ndarray, shape: Tuple[int, int], stride: int
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """``(u - cx) / fx`` of the kept columns ``(w,)`` and ``(v - cy) / fy`` ``(h, 1)``."""
        K = np.asarray(K, np.float64)
        key = (K.tobytes(), shape, stride)
        if key != self._rays_key:
            if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
                raise ValueError(f'K must be a finite 3x3 pinhole matrix with fx, fy > 0, got '
                                 f'{K.tolist()}')
            fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
            u = np.arange(shape[1], dtype=np.float64) * stride
            v = np.arange(shape[0], dtype=np.float64) * stride
            self._rays = (((u - cx) / fx).astype(np.float32),
                          ((v - cy) / fy).astype(np.float32)[:, None])
            self._rays_key = key
        return self._rays


def semantic_cloud(depth: np.ndarray, K: np.ndarray, labels: np.ndarray,
                   confidence: np.ndarray, palette: np.ndarray,
                   config: PointsConfig = PointsConfig()) -> SemanticCloud:
    """One-off :meth:`CloudBuilder.build` (a node keeps one :class:`CloudBuilder`)."""
    return CloudBuilder(palette, config).build(depth, K, labels, confidence)

"""Pinhole intrinsics from ``sensor_msgs/CameraInfo``: parsing, validation and caching.

Shared by the node (:class:`IntrinsicsCache`: the latest ``aux/camera_info``) and
``smmcl-bag-eval`` (:class:`IntrinsicsTimeline`: the camera_info recorded nearest in time to
each depth image). Both answer :meth:`~IntrinsicsCache.at` ``(stamp_ns, height, width) -> K``,
the interface :class:`smmcl_ros.pipeline.aux.AuxPreparer` uses. No rclpy import: rclpy and
rosbags messages both work; numpy only at import time.

The matrix ``K`` follows REP 104: it describes the full-resolution sensor. ``binning_x/y``
and a non-empty ``roi`` give the image actually published, as ``image_geometry`` computes it
(``fx / binning_x``, ``(cx - roi.x_offset) / binning_x``, ...). An image whose size still
differs from that (a driver resizing without updating its camera_info) gets ``K`` scaled to
its size, and :attr:`IntrinsicsCache.size_mismatch` says so.

Errors are :class:`CameraInfoError` with a machine-readable ``reason``
(``malformed_camera_info``, ``no_camera_info``) for logs and diagnostics counts.
"""

import bisect
import threading
from typing import Any, List, NamedTuple, Optional, Tuple

import numpy as np


class CameraInfoError(ValueError):
    """Intrinsics that cannot be used (or none yet); ``reason`` is a short token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f'{reason}: {detail}')
        self.reason = reason
        self.detail = detail


class Intrinsics(NamedTuple):
    """``K`` (3x3 float64, 0-based pixels) of an image of ``height x width`` pixels."""

    K: np.ndarray
    height: int
    width: int

    def for_size(self, height: int, width: int) -> np.ndarray:
        """``K`` for an image of ``height x width`` (scaled when the sizes differ)."""
        if (height, width) == (self.height, self.width) or self.height <= 0 \
                or self.width <= 0:
            return self.K
        # Imported here: on a main without the torch-free hha package, importing
        # smmcl_core.data loads torch, and `import smmcl_ros.node` must not.
        from smmcl_core.data.hha import scale_intrinsics

        return scale_intrinsics(self.K, (self.height, self.width), (height, width))


def intrinsics_from_msg(msg: Any) -> Intrinsics:
    """Parse and check one ``CameraInfo`` (rclpy or rosbags).

    Raises:
        CameraInfoError: ``malformed_camera_info`` naming the bad field.
    """
    try:
        k = np.asarray(msg.k, np.float64).reshape(-1)
        height, width = int(msg.height), int(msg.width)
    except (AttributeError, TypeError, ValueError) as err:
        raise CameraInfoError('malformed_camera_info', f'not a CameraInfo: {err}') from err
    if k.shape != (9,):
        raise CameraInfoError('malformed_camera_info', f'k has {k.size} values, expected 9')
    if not np.isfinite(k).all():
        raise CameraInfoError('malformed_camera_info', 'k contains NaN or inf')
    if not (k[0] > 0 and k[4] > 0 and k[8] == 1.0):
        raise CameraInfoError(
            'malformed_camera_info',
            f'k is not a calibrated pinhole matrix (fx={k[0]}, fy={k[4]}, k[8]={k[8]}; an '
            'uncalibrated camera publishes zeros)')
    if height < 0 or width < 0:
        raise CameraInfoError('malformed_camera_info', f'size {width}x{height}')
    K = k.reshape(3, 3).copy()
    bx = max(int(getattr(msg, 'binning_x', 0) or 0), 1)
    by = max(int(getattr(msg, 'binning_y', 0) or 0), 1)
    roi = getattr(msg, 'roi', None)
    roi_w, roi_h = (int(roi.width), int(roi.height)) if roi is not None else (0, 0)
    if roi_w > 0 and roi_h > 0 and (roi_w, roi_h) != (width, height):
        K[0, 2] -= float(roi.x_offset)
        K[1, 2] -= float(roi.y_offset)
        width, height = roi_w, roi_h
    if bx > 1 or by > 1:
        K[0, 0] /= bx
        K[0, 2] /= bx
        K[1, 1] /= by
        K[1, 2] /= by
        width, height = width // bx, height // by
    return Intrinsics(K, height, width)


class IntrinsicsCache:
    """The latest valid camera_info of one camera, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Optional[Intrinsics] = None
        self.size_mismatch: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None

    def update(self, msg: Any) -> bool:
        """Store ``msg``'s intrinsics; True when they differ from the cached ones.

        Raises:
            CameraInfoError: Malformed message (the cache keeps the previous intrinsics).
        """
        new = intrinsics_from_msg(msg)
        with self._lock:
            old = self._current
            self._current = new
        return old is None or not (np.array_equal(old.K, new.K)
                                   and (old.height, old.width) == (new.height, new.width))

    @property
    def current(self) -> Optional[Intrinsics]:
        """The cached intrinsics (None before the first valid message)."""
        with self._lock:
            return self._current

    def lookup(self, height: int, width: int) -> np.ndarray:
        """``K`` for an image of ``height x width``.

        Raises:
            CameraInfoError: ``no_camera_info`` when no valid message arrived yet.
        """
        current = self.current
        if current is None:
            raise CameraInfoError('no_camera_info', 'no valid camera_info received yet')
        mismatch = current.height > 0 and (current.height, current.width) != (height, width)
        self.size_mismatch = (((current.height, current.width), (height, width)) if mismatch
                              else None)
        return current.for_size(height, width)

    def at(self, stamp_ns: int, height: int, width: int) -> np.ndarray:
        """:meth:`lookup` (the latest intrinsics serve every stamp)."""
        return self.lookup(height, width)


class IntrinsicsTimeline:
    """Recorded camera_info messages by header stamp (for offline evaluation of a bag)."""

    def __init__(self) -> None:
        self._stamps: List[int] = []
        self._values: List[Intrinsics] = []
        self.malformed = 0
        self.size_mismatch: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int, msg: Any) -> None:
        """Add one message (malformed ones are counted in :attr:`malformed` and skipped)."""
        try:
            value = intrinsics_from_msg(msg)
        except CameraInfoError:
            self.malformed += 1
            return
        index = bisect.bisect_right(self._stamps, stamp_ns)
        self._stamps.insert(index, stamp_ns)
        self._values.insert(index, value)

    def lookup(self, stamp_ns: int, height: int, width: int) -> np.ndarray:
        """``K`` of the camera_info nearest in time to ``stamp_ns`` for that image size.

        Raises:
            CameraInfoError: ``no_camera_info`` when nothing valid was recorded.
        """
        if not self._stamps:
            raise CameraInfoError('no_camera_info', 'the bag holds no valid camera_info')
        index = bisect.bisect_left(self._stamps, stamp_ns)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(self._stamps)]
        best = self._values[min(candidates, key=lambda i: abs(self._stamps[i] - stamp_ns))]
        mismatch = best.height > 0 and (best.height, best.width) != (height, width)
        self.size_mismatch = (((best.height, best.width), (height, width)) if mismatch
                              else None)
        return best.for_size(height, width)

    at = lookup

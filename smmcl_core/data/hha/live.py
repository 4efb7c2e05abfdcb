"""HHA for a depth stream: raw sensor frames in, HHA out, one encoder per camera.

:class:`HHAEncoder` is what the ROS node and ``smmcl-bag-eval`` call per frame, so both
encode exactly as :func:`smmcl_core.data.hha.depth_to_hha` (and ``smmcl-make-hha``) do for
training data. It adds what a stream needs: raw depth units (``uint16`` millimetres as in
``16UC1``, or float metres as in ``32FC1``), the choice of device (OpenCV on the CPU, torch
on a CUDA model's GPU) and optional smoothing of the gravity estimate over frames.

Gravity smoothing: HHA's height and angle channels depend on the gravity direction estimated
from each frame's normals. For a camera rigidly mounted on a robot that drives on flat floors
the true direction is fixed, and a frame dominated by one wall or a close object can tilt the
estimate. ``gravity_smoothing = m`` in [0, 1) keeps an exponential average
``g_t = normalise(m * g_{t-1} + (1 - m) * estimate_t)``; 0 (the default) uses every frame's
own estimate, as the original MATLAB code and the NYUDv2 HHA files do. The history is
forgotten when the intrinsics change (another camera mode). Do not smooth for a camera that
tilts (pan-tilt heads, handheld, legged robots on stairs).
"""

from typing import Any, Optional

import numpy as np

from smmcl_core.data.hha.encode import encode_hha, unit_vector
from smmcl_core.data.hha.intrinsics import check_intrinsics

# What an image with no depth at all encodes to (disparity 31000/100 saturated, the assumed
# 130 cm camera height, no normal: 180 + 38 degrees); depth_to_hha(zeros) gives the same.
MISSING_DEPTH_HHA = (255, 130, 218)


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """Raw depth as float32 metres: ``uint16`` millimetres (ROS ``16UC1``) or float metres.

    Raises:
        ValueError: Any other dtype or shape (named in the message).
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise ValueError(f'depth for HHA must be a single-channel (H,W) image, got shape '
                         f'{depth.shape}')
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) / np.float32(1000.0)
    if np.issubdtype(depth.dtype, np.floating):
        return depth.astype(np.float32, copy=False)
    raise ValueError(f'depth for HHA must be uint16 millimetres or float metres, got dtype '
                     f'{depth.dtype}')


def missing_depth_hha(height: int, width: int) -> np.ndarray:
    """The HHA of an image without any depth reading, ``uint8 (H,W,3)``."""
    out = np.empty((height, width, 3), np.uint8)
    out[:] = MISSING_DEPTH_HHA
    return out


class GravitySmoother:
    """Exponential average of unit gravity directions (see the module docstring).

    Args:
        momentum: Weight of the previous direction, in [0, 1); 0 = no smoothing.
    """

    def __init__(self, momentum: float = 0.0) -> None:
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f'gravity smoothing must be in [0, 1), got {momentum}')
        self.momentum = float(momentum)
        self.gravity: Optional[np.ndarray] = None

    def update(self, estimate: np.ndarray) -> np.ndarray:
        """Fold in one frame's unit estimate; returns the direction to use for that frame."""
        estimate = unit_vector(estimate)
        if self.gravity is None or self.momentum == 0.0:
            self.gravity = estimate
        else:
            self.gravity = unit_vector(self.momentum * self.gravity
                                       + (1.0 - self.momentum) * estimate)
        return self.gravity

    def reset(self) -> None:
        """Forget the history."""
        self.gravity = None


class HHAEncoder:
    """Per-camera HHA encoder for a depth stream.

    Args:
        gravity_smoothing: See :class:`GravitySmoother` (0 = per-frame estimate).
        device: ``None``/``'cpu'`` encodes with numpy + OpenCV; a CUDA device (e.g. the
            model's) encodes with torch there and copies only the ``uint8`` result back.

    Attributes:
        gravity: The direction used for the last frame (camera coordinates, unit), or None.
    """

    def __init__(self, gravity_smoothing: float = 0.0, device: Any = None) -> None:
        self.smoother = GravitySmoother(gravity_smoothing)
        self.device = None if device is None or str(device) == 'cpu' else device
        self.gravity: Optional[np.ndarray] = None
        self._K: Optional[np.ndarray] = None

    def encode(self, depth: np.ndarray, K: Any, raw_depth: Optional[np.ndarray] = None
               ) -> np.ndarray:
        """Encode one raw depth frame.

        Args:
            depth: ``uint16`` millimetres or float metres, ``(H,W)``; 0/NaN = missing.
            K: 3x3 intrinsics of this image (0-based pixels, ``CameraInfo.k``).
            raw_depth: Optional unfilled depth (same units rules) for the missing mask.

        Returns:
            ``uint8 (H,W,3)`` HHA (disparity, height, angle) on the CPU.

        Raises:
            ValueError: Bad depth dtype/shape or intrinsics.
        """
        K = check_intrinsics(K)
        if self._K is None or not np.array_equal(K, self._K):
            self.smoother.reset()  # another camera (mode): its gravity history does not apply
            self._K = K
        metres = depth_to_metres(depth)
        raw = None if raw_depth is None else depth_to_metres(raw_depth)
        if self.device is None:
            out, self.gravity = encode_hha(metres, K, raw, self.smoother.update)
            return out
        import torch  # only for a CUDA encoder: the CPU path stays torch-free

        from smmcl_core.data.hha.torch_encode import encode_hha_torch
        depth_t = torch.from_numpy(np.ascontiguousarray(metres)).to(self.device)
        raw_t = None if raw is None else torch.from_numpy(np.ascontiguousarray(raw))
        out_t, self.gravity = encode_hha_torch(depth_t, K, raw_t, self.smoother.update,
                                               device=self.device)
        return out_t.cpu().numpy()

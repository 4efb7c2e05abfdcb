"""Pinhole intrinsics for HHA: build, check, scale, and the NYU Depth v2 colour camera.

``K`` is the 3x3 pinhole matrix in the ROS/OpenCV convention (``sensor_msgs/CameraInfo.k``):
pixel ``(u, v)`` counted from 0. MATLAB calibrations count from 1: subtract 1 from their
``cx, cy``. numpy only (the ROS node imports this module).
"""

from typing import Any, Sequence, Tuple

import numpy as np

# The NYU Depth v2 colour camera (Silberman et al.; the intrinsics NYUDv2 HHA files were
# made with), principal point converted from MATLAB's 1-based to 0-based pixels. 640x480.
NYU_DEPTH_V2_K = np.array([[518.85790117450188, 0.0, 325.58244941119034 - 1.0],
                           [0.0, 519.46961112127485, 253.73616633400465 - 1.0],
                           [0.0, 0.0, 1.0]])
NYU_DEPTH_V2_SIZE = (480, 640)  # (height, width) the NYU intrinsics belong to


def camera_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 pinhole matrix (0-based pixel coordinates, as ``sensor_msgs/CameraInfo.k``)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


def scale_intrinsics(K: Sequence[Sequence[float]], from_size: Tuple[int, int],
                     to_size: Tuple[int, int]) -> np.ndarray:
    """``K`` of a camera at ``from_size = (H, W)`` for the image resized to ``to_size``.

    Pixel centres map as ``u' = (u + 0.5) * W'/W - 0.5`` (OpenCV ``resize``), so focal
    lengths scale with the size ratio and the principal point moves with the centres.
    """
    K = check_intrinsics(K)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return camera_matrix(K[0, 0] * sx, K[1, 1] * sy, (K[0, 2] + 0.5) * sx - 0.5,
                         (K[1, 2] + 0.5) * sy - 0.5)


def nyu_intrinsics(height: int = NYU_DEPTH_V2_SIZE[0],
                   width: int = NYU_DEPTH_V2_SIZE[1]) -> np.ndarray:
    """:data:`NYU_DEPTH_V2_K` for NYU frames resized to ``height x width``."""
    return scale_intrinsics(NYU_DEPTH_V2_K, NYU_DEPTH_V2_SIZE, (height, width))


def check_intrinsics(K: Any) -> np.ndarray:
    """Return ``K`` as a float64 3x3 array, or raise ``ValueError`` saying what is wrong.

    Accepts a 3x3 nested sequence/array or the 9 row-major values of ``CameraInfo.k``.
    """
    try:
        arr = np.asarray(K, np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f'intrinsics are not numeric: {exc}') from exc
    if arr.shape == (9,):
        arr = arr.reshape(3, 3)
    if arr.shape != (3, 3):
        raise ValueError(f'intrinsics must be a 3x3 matrix (or 9 values), got shape '
                         f'{arr.shape}')
    if not np.isfinite(arr).all():
        raise ValueError('intrinsics contain NaN or inf')
    if not (arr[0, 0] > 0 and arr[1, 1] > 0):
        raise ValueError(f'intrinsics need positive focal lengths, got fx={arr[0, 0]}, '
                         f'fy={arr[1, 1]}')
    return arr

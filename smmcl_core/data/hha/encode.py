"""HHA: depth encoded as horizontal disparity, height above ground and angle with gravity.

Gupta, Girshick, Arbelaez and Malik, "Learning Rich Features from RGB-D Images for Object
Detection and Segmentation", ECCV 2014. The NYUDv2 experiments of SMMCL (and the released
NYUDv2 weights) take HHA images written by the authors' MATLAB code (``saveHHA`` ->
``processDepthImage``). This module computes the same encoding, vectorised, fast enough for a
live depth stream:

1. Point cloud in centimetres from the pinhole model (``getPointCloudFromZ``).
2. Surface normals by least-squares plane fits over square windows (``computeNormalsSquare
   Support``): the inverse depth ``w = 1/z`` of the valid pixels in a ``(2r+1)^2`` window
   is fitted as ``n . (x/z, y/z, 1) = w``; normals of radius 3 give the angle channel,
   normals of radius 10 the gravity estimate. Missing pixels take no part in any fit but
   still get the normal of their window.
3. Gravity (``getYDir``): starting from the camera's y axis, five iterations at 45 degrees
   then five at 15 degrees; each takes the normals within the threshold of the current
   direction ("floor", parallel to gravity) and those within it of the perpendicular plane
   ("wall"), and picks the eigenvector of ``sum_wall n n^T - sum_floor n n^T`` with the
   smallest eigenvalue.
4. Height above the lowest point: ``h = -gravity . p`` minus its minimum over the image, or
   minus -130 cm when the lowest point is less than 90 cm below the camera.
5. Channels: ``31000 / max(z_cm, 100)``, ``h``, ``acosd(n . gravity) + 38`` (180 + 38 where
   a window has no normal), each rounded half away from zero and saturated to 0..255 (MATLAB
   ``uint8``).

Implementation notes (same numbers, different route):

- Window sums are separable correlations of the validity mask and the inverse depth with
  the kernels ``1``, ``d`` and ``d^2`` (``d`` = pixel offset from the window centre), with
  zero padding (MATLAB ``filter2``). Solving in these window-centred pixel offsets instead of
  the MATLAB ray coordinates ``x/z, y/z`` is an exact change of variables (the adjugate
  solve transforms with the positive factor ``1 / (fx fy)^2``), so it keeps MATLAB's normal
  also for rank-deficient windows, and it is well conditioned in float32: MATLAB's raw sums
  need float64.
- ``h = -gravity . p`` is the y coordinate after MATLAB's ``rotatePC(pc, R')`` with ``R``
  rotating the y axis onto gravity (identity when they are within 0.1 degree).

Conventions:

- Depth in metres, float; 0, negative, NaN and inf are missing. Pixels missing in
  ``raw_depth`` (when given: the sensor's depth before hole filling, as NYUDv2 ships it) are
  left out of the normal fits too, as ``saveHHA(..., D, RD)`` does with ``RD == 0``. A
  missing depth pixel encodes as disparity 255 (MATLAB's ``max(0, 100)`` clamp) and the
  camera's own height.
- ``K`` is the 3x3 pinhole matrix in the ROS/OpenCV convention: pixel ``(u, v)`` counted from
  0. MATLAB calibrations count from 1: subtract 1 from their ``cx, cy``
  (``intrinsics.NYU_DEPTH_V2_K`` is the NYUv2 colour camera converted this way).
- The result is ``uint8 (H,W,3)`` with channels (disparity, height, angle): the order
  ``smmcl_core.data.io.read_aux(path, 'hha')`` returns for an HHA PNG (file R, G, B), so a
  live encoding equals what a model trained on HHA files read. Write it with
  :func:`write_hha` (OpenCV wants BGR).
- This module is the numpy + OpenCV path (CPU). :mod:`smmcl_core.data.hha.torch_encode`
  computes the same with torch on a tensor's device; :func:`smmcl_core.data.hha.depth_to_hha`
  picks between them by the input's type.
"""


from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from smmcl_core.data.hha.intrinsics import check_intrinsics

NORMAL_RADIUS = 3  # window radius of the normals in the angle channel (7x7)
GRAVITY_RADIUS = 10  # window radius of the normals that estimate gravity (21x21)
GRAVITY_THRESHOLDS_DEG = (45.0, 15.0)
GRAVITY_ITERATIONS = (5, 5)
CAMERA_Y = (0.0, 1.0, 0.0)  # initial gravity guess: the camera's y axis (image down)
MIN_DEPTH_CM = 100.0  # disparity clamp: 31000 / 100 = 310 saturates
DISPARITY_SCALE = 31000.0
ANGLE_OFFSET_DEG = 128.0 - 90.0  # "keeping some slack"
NO_NORMAL_ANGLE_DEG = 180.0  # MATLAB's max(-1, NaN) = -1 -> acosd = 180
LOW_FLOOR_CM = -90.0  # lowest point above this (cm below the camera) -> assume ...
DEFAULT_FLOOR_CM = -130.0  # ... the floor 1.3 m below the camera
ROTATION_EPS_DEG = 0.1  # getRMatrix: smaller rotations are the identity


def _check_depth(depth: np.ndarray, name: str = 'depth') -> np.ndarray:
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2 or depth.shape[0] < 1 or depth.shape[1] < 1:
        raise ValueError(f'{name} must be a non-empty (H,W) image, got shape {depth.shape}')
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise ValueError(f'{name} must be numeric (metres), got dtype {depth.dtype}')
    return depth


def encode_hha(depth: np.ndarray, K: Any, raw_depth: Optional[np.ndarray] = None,
               gravity_filter: Optional[Callable[[np.ndarray], np.ndarray]] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
    """HHA of one depth image with numpy, also returning the gravity direction it used.

    Args:
        depth: ``(H,W)`` depth in metres.
        K: 3x3 intrinsics.
        raw_depth: Optional raw depth (see ``depth_to_hha``).
        gravity_filter: Called with this frame's gravity estimate (unit ``(3,)`` float64);
            its return value is used instead (e.g. ``GravitySmoother.update``).

    Returns:
        ``(hha uint8 (H,W,3), gravity float64 (3,))``.
    """
    depth = _check_depth(np.asarray(depth))
    K = check_intrinsics(K)
    z_cm, valid = depth_cm_and_valid(depth, raw_depth)
    height, width = z_cm.shape
    u = np.arange(width, dtype=np.float32) - np.float32(K[0, 2])  # (W,) offsets from cx
    v = np.arange(height, dtype=np.float32) - np.float32(K[1, 2])  # (H,)
    x_cm = z_cm * (u / np.float32(K[0, 0]))[None, :]  # (H,W)
    y_cm = z_cm * (v / np.float32(K[1, 1]))[:, None]

    mask = valid.astype(np.float32)
    inv_depth = np.zeros_like(z_cm)
    np.divide(1.0, z_cm, out=inv_depth, where=valid)
    normals_g = plane_normals(mask, inv_depth, K, GRAVITY_RADIUS, x_cm, y_cm, z_cm)
    gravity = estimate_gravity(normals_g)
    if gravity_filter is not None:
        gravity = unit_vector(gravity_filter(gravity))
    normals = plane_normals(mask, inv_depth, K, NORMAL_RADIUS, x_cm, y_cm, z_cm)

    hha = np.empty((height, width, 3), np.uint8)
    disparity = np.float32(DISPARITY_SCALE) / np.maximum(z_cm, np.float32(MIN_DEPTH_CM))
    hha[:, :, 0] = _to_uint8(disparity)
    hha[:, :, 1] = _to_uint8(height_above_floor(x_cm, y_cm, z_cm, gravity))
    hha[:, :, 2] = _to_uint8(angle_with_gravity(normals, gravity))
    return hha, gravity


def depth_cm_and_valid(depth: np.ndarray, raw_depth: Optional[np.ndarray] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Depth in centimetres (missing = 0) and the mask of pixels the normals may use."""
    z = np.asarray(depth, np.float32) * np.float32(100.0)
    valid = np.isfinite(z) & (z > 0)
    z[~valid] = 0.0
    if raw_depth is not None:
        raw = _check_depth(np.asarray(raw_depth), 'raw_depth')
        if raw.shape != z.shape:
            raise ValueError(f'raw_depth size {raw.shape} differs from depth size {z.shape}')
        with np.errstate(invalid='ignore'):
            valid &= np.isfinite(raw) & (raw > 0)
    return z, valid


def _window_sums(image: np.ndarray, radius: int, orders: Sequence[Tuple[int, int]]
                 ) -> dict:
    """``{(p, q): sum over the window of image * du^p * dv^q}`` with zero padding."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernels = [np.ones_like(offsets), offsets, offsets * offsets]
    rows = {}  # horizontal passes, shared between the vertical ones
    sums = {}
    for p, q in orders:
        if p not in rows:
            rows[p] = cv2.sepFilter2D(image, cv2.CV_32F, kernels[p], np.ones(1, np.float32),
                                      borderType=cv2.BORDER_CONSTANT)
        sums[(p, q)] = cv2.sepFilter2D(rows[p], cv2.CV_32F, np.ones(1, np.float32),
                                       kernels[q], borderType=cv2.BORDER_CONSTANT)
    return sums


def plane_normals(mask: np.ndarray, inv_depth: np.ndarray, K: np.ndarray, radius: int,
                  x_cm: np.ndarray, y_cm: np.ndarray, z_cm: np.ndarray) -> np.ndarray:
    """Unit normals ``(3,H,W)`` of the planes fitted over ``(2r+1)^2`` windows (NaN: none).

    Oriented as MATLAB does: first towards +z, then away from the camera (``n . p > 0``).
    """
    m = _window_sums(mask, radius, ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)))
    t = _window_sums(inv_depth, radius, ((0, 0), (1, 0), (0, 1)))
    s00, s10, s01, s20, s11, s02 = (m[k] for k in ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1),
                                                   (0, 2)))
    t00, t10, t01 = t[(0, 0)], t[(1, 0)], t[(0, 1)]
    (x1, x2, x3), (a, b, c) = adjugate_solve(s00, s10, s01, s20, s11, s02, t00, t10, t01)
    # Fewer than three valid pixels, or all on one image line: the window's rays span no
    # plane, and in exact arithmetic the adjugate solve gives the zero vector (MATLAB: 0/0
    # -> NaN, or rounding noise). The sums are integers, so the float64 determinant is
    # exact; it is only needed where the float32 one is within rounding of zero.
    det = s20 * a + s11 * b + s10 * c
    bound = np.abs(s20 * a)
    bound += np.abs(s11 * b)
    bound += np.abs(s10 * c)
    suspect = np.flatnonzero(det <= np.float32(1e-4) * bound)
    if suspect.size:
        s64 = [s.ravel()[suspect].astype(np.float64) for s in (s00, s10, s01, s20, s11, s02)]
        degenerate = suspect[determinant(*s64) == 0]
        for x in (x1, x2, x3):
            x.ravel()[degenerate] = 0.0
    # Back from window-centred pixel offsets to MATLAB's (x/z, y/z, 1) coordinates.
    height, width = mask.shape
    u = np.arange(width, dtype=np.float32) - np.float32(K[0, 2])
    v = np.arange(height, dtype=np.float32) - np.float32(K[1, 2])
    normals = np.empty((3, height, width), np.float32)
    nx, ny, nz = normals
    np.multiply(x1, np.float32(K[0, 0]), out=nx)
    np.multiply(x2, np.float32(K[1, 1]), out=ny)
    np.multiply(x1, u[None, :], out=nz)
    np.subtract(x3, nz, out=nz)
    x2 *= v[:, None]
    nz -= x2
    with np.errstate(invalid='ignore', divide='ignore'):
        # Sign: n_z >= 0, then n . p >= 0 (a NaN or zero product keeps the sign).
        sign = np.where(nz < 0, np.float32(-1.0), np.float32(1.0))
        facing = nx * x_cm
        facing += ny * y_cm
        facing += nz * z_cm
        facing *= sign
        sign[facing < 0] *= -1.0
        norm = nx * nx
        norm += ny * ny
        norm += nz * nz
        np.sqrt(norm, out=norm)
        sign /= norm  # norm 0 (no fit) -> inf, times 0 below -> NaN
        normals *= sign
    return normals


def adjugate_solve(s00, s10, s01, s20, s11, s02, t00, t10, t01):
    """``adj(M) t`` per pixel for ``M = [[s20 s11 s10] [s11 s02 s01] [s10 s01 s00]]``.

    ``t = (t10, t01, t00)``. Plain arithmetic, so numpy arrays and torch tensors both work.

    Returns:
        ``((x1, x2, x3), (a, b, c))``: the solution times ``det(M)``, and the cofactors of
        M's first row (``det(M) = s20 a + s11 b + s10 c``).
    """
    a = s02 * s00 - s01 * s01
    b = s10 * s01 - s11 * s00
    c = s11 * s01 - s10 * s02
    e = s20 * s00 - s10 * s10
    f = s11 * s10 - s20 * s01
    i = s20 * s02 - s11 * s11
    x1 = a * t10 + b * t01 + c * t00
    x2 = b * t10 + e * t01 + f * t00
    x3 = c * t10 + f * t01 + i * t00
    return (x1, x2, x3), (a, b, c)


def determinant(s00, s10, s01, s20, s11, s02):
    """Determinant of the window's normal matrix [[s20 s11 s10] [s11 s02 s01] [s10 s01 s00]]."""
    return (s20 * (s02 * s00 - s01 * s01) + s11 * (s10 * s01 - s11 * s00)
            + s10 * (s11 * s01 - s10 * s02))


def unit_vector(vector: Any) -> np.ndarray:
    """``vector / |vector|`` as float64 ``(3,)``; raises ``ValueError`` for zero/NaN/bad shape."""
    vector = np.asarray(vector, np.float64).reshape(-1)
    norm = np.linalg.norm(vector) if vector.shape == (3,) else np.nan
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f'gravity must be a non-zero finite 3-vector, got {vector}')
    return vector / norm


def estimate_gravity(normals: np.ndarray,
                     thresholds_deg: Sequence[float] = GRAVITY_THRESHOLDS_DEG,
                     iterations: Sequence[int] = GRAVITY_ITERATIONS,
                     initial: Sequence[float] = CAMERA_Y) -> np.ndarray:
    """Gravity direction (unit, camera coordinates, pointing down) from a normal field.

    MATLAB ``getYDir``: per threshold, ``iterations`` hard assignments of the normals to
    "floor" (within the threshold of the current direction, either sign) and "wall" (within
    it of the perpendicular plane); the new direction is the eigenvector of
    ``sum_wall n n^T - sum_floor n n^T`` with the smallest eigenvalue, signed like the old.
    With no valid normal the initial direction (the camera's y axis) is returned.
    """
    flat = normals.reshape(3, -1)
    nn = flat[:, ~np.isnan(flat[0])].astype(np.float32)  # (3,N) valid normals
    y = np.asarray(initial, np.float64)
    if nn.shape[1] == 0:
        return y
    # The six distinct products n_i n_j: each scatter matrix is one matrix-vector product.
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    products = np.stack([nn[i] * nn[j] for i, j in pairs])  # (6,N)
    count_n = nn.shape[1]
    sim = np.empty(count_n, np.float32)
    wall, floor = np.empty(count_n, bool), np.empty(count_n, bool)
    weight = np.empty(count_n, np.float32)
    for thresh, count in zip(thresholds_deg, iterations):
        cos_t = np.float32(np.cos(np.deg2rad(thresh)))
        sin_t = np.float32(np.sin(np.deg2rad(thresh)))
        for _ in range(int(count)):
            np.dot(y.astype(np.float32), nn, out=sim)
            np.abs(sim, out=sim)
            np.less(sim, sin_t, out=wall)
            np.greater(sim, cos_t, out=floor)
            np.subtract(wall, floor, out=weight, dtype=np.float32)  # wall +1, floor -1
            y = min_eigenvector(products @ weight, y)
    return y


def min_eigenvector(six: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Eigenvector of the smallest eigenvalue of the symmetric matrix given by 6 entries."""
    s = six.astype(np.float64)
    scatter = np.array([[s[0], s[1], s[2]], [s[1], s[3], s[4]], [s[2], s[4], s[5]]])
    _, vectors = np.linalg.eigh(scatter)  # ascending eigenvalues
    new = vectors[:, 0]
    return new * (-1.0 if float(previous @ new) < 0 else 1.0)


def height_above_floor(x_cm: np.ndarray, y_cm: np.ndarray, z_cm: np.ndarray,
                       gravity: np.ndarray) -> np.ndarray:
    """Height (cm) of every point above the lowest one, along ``-gravity``."""
    y_axis = np.asarray(CAMERA_Y)
    cos_angle = float(np.clip(gravity @ y_axis, -1.0, 1.0))
    if np.degrees(np.arccos(cos_angle)) > ROTATION_EPS_DEG:
        g = gravity.astype(np.float32)
        h = -(g[0] * x_cm + g[1] * y_cm + g[2] * z_cm)
    else:
        h = -y_cm
    lowest = float(h.min())
    if lowest > LOW_FLOOR_CM:
        lowest = DEFAULT_FLOOR_CM
    h -= np.float32(lowest)
    return h


def angle_with_gravity(normals: np.ndarray, gravity: np.ndarray) -> np.ndarray:
    """``acosd(n . gravity) + 38`` in degrees; 218 where there is no normal."""
    g = gravity.astype(np.float32)
    cos = normals[0] * g[0]
    cos += normals[1] * g[1]
    cos += normals[2] * g[2]
    np.nan_to_num(cos, copy=False, nan=-1.0)
    np.clip(cos, -1.0, 1.0, out=cos)
    angle = np.degrees(np.arccos(cos))
    angle += np.float32(ANGLE_OFFSET_DEG)
    return angle


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """MATLAB ``uint8``: round half away from zero, saturate, NaN -> 0."""
    out = np.floor(values + np.float32(0.5))
    np.clip(out, 0, 255, out=out)
    return np.nan_to_num(out, nan=0.0).astype(np.uint8)


def write_hha(path: Union[str, Path], hha: np.ndarray) -> None:
    """Write an HHA image as an 8-bit PNG with file channels R, G, B = disparity, height, angle.

    Raises:
        ValueError: ``hha`` is not ``uint8 (H,W,3)`` or OpenCV cannot write ``path``.
    """
    if hha.dtype != np.uint8 or hha.ndim != 3 or hha.shape[2] != 3:
        raise ValueError(f'hha must be uint8 (H,W,3), got {hha.dtype} {hha.shape}')
    if not cv2.imwrite(str(path), np.ascontiguousarray(hha[:, :, ::-1])):
        raise ValueError(f'cannot write HHA image {path}')

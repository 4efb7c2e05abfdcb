"""HHA encoding with torch, on the tensor's device (a robot's GPU next to the model).

The same computation as :mod:`smmcl_core.data.hha.encode` (read that module for the algorithm and
its conventions), step for step: window sums with zero padding, the adjugate solve in
window-centred pixel offsets, MATLAB's normal orientation, the ``getYDir`` iterations and
MATLAB's ``uint8`` rounding. Only the 3x3 eigen-problems of the gravity iterations run on the
CPU (ten tiny solves per frame).

Window sums come from float64 integral images (``cumsum``) of the mask and inverse depth times
pixel coordinates, expanded around each window's centre: exact integers for the mask
moments, so the rank test of a window is exact, and no ``conv2d`` whose algorithm (FFT,
Winograd, TF32 on Ampere GPUs) the backend picks.

On the CPU the two paths agree to float32 rounding (``test/core/test_hha.py`` compares them);
use the numpy path there, it is faster.
"""

from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from smmcl_core.data.hha import encode as hha_np
from smmcl_core.data.hha.intrinsics import check_intrinsics


def _as_tensor(image: Any, name: str, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(image, device=device)
    if tensor.dim() == 3 and tensor.shape[2] == 1:
        tensor = tensor[:, :, 0]
    if tensor.dim() != 2 or tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise ValueError(f'{name} must be a non-empty (H,W) image, got shape '
                         f'{tuple(tensor.shape)}')
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f'{name} must be numeric (metres), got dtype {tensor.dtype}')
    return tensor.to(torch.float32)


class WindowSums:
    """Window sums of one frame from float64 integral images (O(1) per pixel and radius).

    Channels (float64, exact for the integer ones): ``m, m u, m v, m u^2, m u v, m v^2, w,
    w u, w v`` with ``m`` the mask, ``w`` the inverse depth and ``u, v`` pixel coordinates.
    """

    def __init__(self, mask: torch.Tensor, inv_depth: torch.Tensor) -> None:
        height, width = mask.shape
        device = mask.device
        self.u = torch.arange(width, dtype=torch.float64, device=device)[None, :]  # (1,W)
        self.v = torch.arange(height, dtype=torch.float64, device=device)[:, None]  # (H,1)
        m, w = mask.double(), inv_depth.double()
        self.channels = torch.stack([m, m * self.u, m * self.v, m * self.u * self.u,
                                     m * self.u * self.v, m * self.v * self.v,
                                     w, w * self.u, w * self.v])  # (9,H,W)

    def box(self, radius: int) -> torch.Tensor:
        """``(9,H,W)`` sums over the ``(2r+1)^2`` windows, zero outside the image."""
        size = 2 * radius + 1
        # Zero border of r (+1 leading row/column for the integral image's origin).
        padded = F.pad(self.channels, (radius + 1, radius, radius + 1, radius))
        s = padded.cumsum(1).cumsum(2)  # (9,H+2r+1,W+2r+1)
        return (s[:, size:, size:] - s[:, :-size, size:] - s[:, size:, :-size]
                + s[:, :-size, :-size])

    def moments(self, radius: int) -> Tuple[torch.Tensor, ...]:
        """``(s00, s10, s01, s20, s11, s02, t00, t10, t01)`` float32, each ``(H,W)``.

        ``s_pq = sum mask du^p dv^q``, ``t_pq = sum inv_depth du^p dv^q`` with ``du, dv`` the
        offsets from the window centre (MATLAB ``filter2`` with zero padding).
        """
        a00, a10, a01, a20, a11, a02, b00, b10, b01 = self.box(radius).unbind(0)
        u, v = self.u, self.v
        sums = (a00, a10 - u * a00, a01 - v * a00, a20 - 2 * u * a10 + u * u * a00,
                a11 - u * a01 - v * a10 + u * v * a00, a02 - 2 * v * a01 + v * v * a00,
                b00, b10 - u * b00, b01 - v * b00)
        return tuple(s.float() for s in sums)


def plane_normals(sums: WindowSums, K: np.ndarray, radius: int, points: torch.Tensor
                  ) -> torch.Tensor:
    """Unit normals ``(3,H,W)`` (NaN where a window has no plane); see the numpy path."""
    moments = sums.moments(radius)
    (x1, x2, x3), _ = hha_np.adjugate_solve(*moments)
    s00, s10, s01, s20, s11, s02 = moments[:6]
    # Windows whose valid rays span no plane give zero (then NaN), as in exact arithmetic.
    degenerate = hha_np.determinant(*(s.double() for s in (s00, s10, s01, s20, s11, s02))) == 0
    x1, x2, x3 = (torch.where(degenerate, 0.0, x) for x in (x1, x2, x3))
    height, width = s00.shape
    u = torch.arange(width, dtype=torch.float32, device=s00.device) - float(K[0, 2])
    v = torch.arange(height, dtype=torch.float32, device=s00.device) - float(K[1, 2])
    n = torch.stack([x1 * float(K[0, 0]), x2 * float(K[1, 1]),
                     x3 - x1 * u[None, :] - x2 * v[:, None]])  # (3,H,W)
    sign = torch.where(n[2] < 0, -1.0, 1.0)
    facing = (n * points).sum(0) * sign
    sign = torch.where(facing < 0, -sign, sign)
    norm = torch.linalg.vector_norm(n, dim=0)
    return n * (sign / norm)  # norm 0 -> 0 * inf = NaN, as MATLAB's 0/0


def estimate_gravity(normals: torch.Tensor) -> np.ndarray:
    """MATLAB ``getYDir`` on a ``(3,H,W)`` normal field; see ``hha.estimate_gravity``."""
    flat = normals.reshape(3, -1)
    nn = flat[:, ~torch.isnan(flat[0])]  # (3,N)
    y = np.asarray(hha_np.CAMERA_Y, np.float64)
    if nn.shape[1] == 0:
        return y
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    products = torch.stack([nn[i] * nn[j] for i, j in pairs])  # (6,N)
    for thresh, count in zip(hha_np.GRAVITY_THRESHOLDS_DEG, hha_np.GRAVITY_ITERATIONS):
        cos_t = float(np.cos(np.deg2rad(thresh)))
        sin_t = float(np.sin(np.deg2rad(thresh)))
        for _ in range(int(count)):
            y_t = torch.as_tensor(y, dtype=torch.float32, device=nn.device)
            sim = (y_t @ nn).abs()
            weight = (sim < sin_t).to(torch.float32) - (sim > cos_t).to(torch.float32)
            six = (products @ weight).double().cpu().numpy()
            y = hha_np.min_eigenvector(six, y)
    return y


def _to_uint8(values: torch.Tensor) -> torch.Tensor:
    out = torch.floor(values + 0.5).clamp(0, 255)
    return torch.nan_to_num(out, nan=0.0).to(torch.uint8)


def encode_hha_torch(depth: Any, K: Any, raw_depth: Optional[Any] = None,
                     gravity_filter: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                     device: Optional[Any] = None) -> Tuple[torch.Tensor, np.ndarray]:
    """``hha.encode_hha`` with torch: ``(hha uint8 (H,W,3) tensor, gravity (3,))``.

    Args:
        depth: ``(H,W)`` depth in metres (tensor or array).
        K: 3x3 intrinsics (0-based pixels).
        raw_depth: Optional raw depth whose missing pixels stay out of the normal fits.
        gravity_filter: As in ``hha.encode_hha``.
        device: Where to compute; default the device of ``depth`` (CPU for arrays).
    """
    if device is None:
        device = depth.device if isinstance(depth, torch.Tensor) else torch.device('cpu')
    device = torch.device(device)
    K = check_intrinsics(K)
    z = _as_tensor(depth, 'depth', device) * 100.0  # centimetres
    valid = torch.isfinite(z) & (z > 0)
    z = torch.where(valid, z, torch.zeros((), device=device))
    if raw_depth is not None:
        raw = _as_tensor(raw_depth, 'raw_depth', device)
        if raw.shape != z.shape:
            raise ValueError(f'raw_depth size {tuple(raw.shape)} differs from depth size '
                             f'{tuple(z.shape)}')
        valid = valid & torch.isfinite(raw) & (raw > 0)
    height, width = z.shape
    u = torch.arange(width, dtype=torch.float32, device=device) - float(K[0, 2])
    v = torch.arange(height, dtype=torch.float32, device=device) - float(K[1, 2])
    points = torch.stack([z * (u / float(K[0, 0]))[None, :], z * (v / float(K[1, 1]))[:, None],
                          z])  # (3,H,W) centimetres
    mask = valid.to(torch.float32)
    inv_depth = torch.where(valid, 1.0 / torch.where(valid, z, torch.ones_like(z)),
                            torch.zeros_like(z))

    sums = WindowSums(mask, inv_depth)
    gravity = estimate_gravity(plane_normals(sums, K, hha_np.GRAVITY_RADIUS, points))
    if gravity_filter is not None:
        gravity = hha_np.unit_vector(gravity_filter(gravity))
    normals = plane_normals(sums, K, hha_np.NORMAL_RADIUS, points)

    disparity = hha_np.DISPARITY_SCALE / torch.clamp(z, min=hha_np.MIN_DEPTH_CM)
    cos_y = float(np.clip(gravity[1], -1.0, 1.0))  # gravity . camera y axis
    if np.degrees(np.arccos(cos_y)) > hha_np.ROTATION_EPS_DEG:
        g = torch.as_tensor(gravity, dtype=torch.float32, device=device)
        h = -(points * g[:, None, None]).sum(0)
    else:
        h = -points[1]
    lowest = float(h.min())
    if lowest > hha_np.LOW_FLOOR_CM:
        lowest = hha_np.DEFAULT_FLOOR_CM
    h = h - lowest
    g = torch.as_tensor(gravity, dtype=torch.float32, device=device)
    cos = torch.nan_to_num((normals * g[:, None, None]).sum(0), nan=-1.0).clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.arccos(cos)) + hha_np.ANGLE_OFFSET_DEG
    hha = torch.stack([_to_uint8(disparity), _to_uint8(h), _to_uint8(angle)], dim=-1)
    return hha, gravity


def depth_to_hha_torch(depth: Any, K: Any, raw_depth: Optional[Any] = None) -> torch.Tensor:
    """``hha.depth_to_hha`` for tensors: ``uint8 (H,W,3)`` on the device of ``depth``."""
    return encode_hha_torch(depth, K, raw_depth)[0]

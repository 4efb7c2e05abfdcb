"""Virtual cameras of the registration tests: a thermal camera (homography), a depth camera.

Both re-image real registered frames (MSRS thermal, NYUv2 depth) so that the registration
under test has a known answer: the original registered image.
"""

import cv2
import numpy as np

# NYUv2 colour camera (shared/data README, hha_reference), principal point 0-based.
NYU_K = np.array([[518.85790117450188, 0.0, 324.58244941119034],
                  [0.0, 519.46961112127485, 252.73616633400465], [0.0, 0.0, 1.0]])


def rgb_to_aux(scale: float, degrees: float, dx: float, dy: float) -> np.ndarray:
    """RGB pixel -> pixel of a virtual thermal camera (scale, rotation, offset)."""
    a = np.deg2rad(degrees)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), dx],
                     [scale * np.sin(a), scale * np.cos(a), dy], [0.0, 0.0, 1.0]])


def virtual_depth(depth_mm: np.ndarray, K: np.ndarray, Kv: np.ndarray, size, rotation,
                  translation) -> np.ndarray:
    """Depth seen by a virtual camera at ``rotation, translation`` in the RGB optical frame.

    Ray casting against the bilinear surface of ``depth_mm`` (inverse mapping, fixed-point
    iteration along each virtual ray), not the forward z-buffer under test.
    """
    R, t = rotation.as_matrix(), np.asarray(translation)
    metres = depth_mm.astype(np.float32) / 1000.0
    v, u = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
    rays = np.stack([(u - Kv[0, 2]) / Kv[0, 0], (v - Kv[1, 2]) / Kv[1, 1], np.ones_like(u)], -1)
    z = np.full(size, 2.0)
    for _ in range(8):
        points = (rays * z[..., None]) @ R.T + t  # (h,w,3) in the RGB frame
        map_u = (K[0, 0] * points[..., 0] / points[..., 2] + K[0, 2]).astype(np.float32)
        map_v = (K[1, 1] * points[..., 1] / points[..., 2] + K[1, 2]).astype(np.float32)
        sampled = cv2.remap(metres, map_u, map_v, cv2.INTER_LINEAR, borderValue=0)
        z = np.where(sampled > 0, (sampled - t[2]) / (rays @ R[2]), z)
    # Invalid where any of the 2x2 source pixels is a hole (no bilinear surface there).
    solid = cv2.remap(cv2.erode(metres, np.ones((2, 2))), map_u, map_v, cv2.INTER_NEAREST)
    return np.rint(np.where(solid > 0, z, 0) * 1000).astype(np.uint16)

"""Estimating ``aux_homography`` (aux pixel -> RGB pixel) from correspondences or checkerboards.

Used by ``smmcl-calibrate-aux``. Correspondences are fitted with RANSAC
(``cv2.findHomography``); the reprojection error of the inliers is the figure of merit. A
checkerboard seen by both cameras gives its inner corners as correspondences (thermal cameras
see heated or back-lit boards; ``invert`` turns a board that looks dark in thermal the RGB way
round before detection). Numpy + OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

MIN_POINTS = 4


@dataclass(frozen=True)
class HomographyFit:
    """A fitted homography and how well it explains the correspondences.

    Attributes:
        homography: ``(3,3)`` aux pixel -> RGB pixel, ``H[2,2] = 1``.
        inliers: ``bool (N,)`` RANSAC inliers.
        errors: ``(N,)`` reprojection error of every correspondence, RGB pixels.
    """

    homography: np.ndarray
    inliers: np.ndarray
    errors: np.ndarray

    @property
    def rms(self) -> float:
        """Root-mean-square reprojection error of the inliers (RGB pixels)."""
        return float(np.sqrt(np.mean(self.errors[self.inliers] ** 2)))

    @property
    def max_error(self) -> float:
        """Largest inlier reprojection error (RGB pixels)."""
        return float(self.errors[self.inliers].max())


def apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N,2)`` pixel coordinates mapped through ``(3,3)`` ``homography`` -> ``(N,2)``."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    mapped = np.c_[points, np.ones(len(points))] @ np.asarray(homography, np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]


def reprojection_errors(homography: np.ndarray, aux_points: np.ndarray,
                        rgb_points: np.ndarray) -> np.ndarray:
    """``(N,)`` distances in RGB pixels between ``H(aux_points)`` and ``rgb_points``."""
    return np.linalg.norm(apply_homography(homography, aux_points)
                          - np.asarray(rgb_points, np.float64).reshape(-1, 2), axis=1)


def fit_homography(aux_points: np.ndarray, rgb_points: np.ndarray,
                   ransac_px: float = 3.0) -> HomographyFit:
    """RANSAC homography from ``(N,2)`` aux pixels to ``(N,2)`` RGB pixels (N >= 4).

    Raises:
        ValueError: Too few or mismatched points, or a degenerate configuration (collinear).
    """
    aux = np.asarray(aux_points, np.float64).reshape(-1, 2)
    rgb = np.asarray(rgb_points, np.float64).reshape(-1, 2)
    if len(aux) != len(rgb):
        raise ValueError(f'{len(aux)} aux points but {len(rgb)} rgb points')
    if len(aux) < MIN_POINTS:
        raise ValueError(f'a homography needs at least {MIN_POINTS} correspondences, '
                         f'got {len(aux)}')
    if not (np.isfinite(aux).all() and np.isfinite(rgb).all()):
        raise ValueError('correspondences contain non-finite coordinates')
    for name, points in (('aux', aux), ('rgb', rgb)):
        spread = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)  # (2,)
        if spread[0] <= 1e-9 or spread[1] / spread[0] < 1e-3:
            raise ValueError(f'no homography fits these {len(aux)} correspondences: the {name} '
                             f'points are collinear (spread them over the view)')
    homography, mask = cv2.findHomography(aux, rgb, cv2.RANSAC, float(ransac_px))
    if homography is None or mask is None or int(mask.sum()) < MIN_POINTS:
        raise ValueError(f'no homography fits these {len(aux)} correspondences (collinear or '
                         f'too few within {ransac_px} px)')
    inliers = mask.ravel().astype(bool)
    # Refine on the inliers with all of them (least squares, no RANSAC).
    refined, _ = cv2.findHomography(aux[inliers], rgb[inliers], 0)
    if refined is not None:
        homography = refined
    homography = homography / homography[2, 2]
    errors = reprojection_errors(homography, aux, rgb)
    if not np.isfinite(homography).all() or not np.isfinite(errors[inliers]).all():
        raise ValueError(f'no homography fits these {len(aux)} correspondences (degenerate)')
    return HomographyFit(homography, inliers, errors)


def _grey(image: np.ndarray, invert: bool) -> np.ndarray:
    """8-bit grey ``(H,W)`` of a grey or ``(H,W,3)`` RGB image.

    Non-8-bit input (raw thermal counts) is min-max stretched.
    """
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY) \
            if image.dtype == np.uint8 else image.mean(axis=2)
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        finite = np.isfinite(image)
        low, high = (image[finite].min(), image[finite].max()) if finite.any() else (0, 1)
        image = np.clip((np.where(finite, image, low) - low) / max(high - low, 1e-9) * 255,
                        0, 255).astype(np.uint8)
    return 255 - image if invert else image


def find_checkerboard(image: np.ndarray, pattern: Tuple[int, int], invert: bool = False,
                      name: str = 'image') -> np.ndarray:
    """Inner corners ``(N,2)`` (sub-pixel, OpenCV's row order) of a checkerboard.

    Args:
        image: Grey or RGB image.
        pattern: Inner corners ``(columns, rows)``.
        invert: Detect on the negative (boards that look dark in thermal).
        name: Named in the error.

    Raises:
        ValueError: The board is not found.
    """
    grey = _grey(image, invert)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, tuple(int(p) for p in pattern), flags=flags)
    if not found:
        hint = '' if invert else ' (a board that looks dark in thermal needs --invert)'
        raise ValueError(f'no {pattern[0]}x{pattern[1]} checkerboard found in {name}{hint}')
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.01)
    corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return corners.reshape(-1, 2).astype(np.float64)


def match_order(aux_corners: np.ndarray, rgb_corners: np.ndarray) -> np.ndarray:
    """``aux_corners`` in the order of ``rgb_corners``.

    A board whose black and white squares swap (an inverted thermal view) may be detected
    from the opposite corner: both orders fit a homography, one of them rotated by 180
    degrees. Cameras mounted side by side see the board the same way up, so the order whose
    first-to-last corner direction agrees with the RGB one is kept.
    """
    aux_dir = aux_corners[-1] - aux_corners[0]
    rgb_dir = rgb_corners[-1] - rgb_corners[0]
    return aux_corners[::-1].copy() if float(aux_dir @ rgb_dir) < 0 else aux_corners


def checkerboard_correspondences(pairs: Sequence[Tuple[np.ndarray, np.ndarray]],
                                 pattern: Tuple[int, int], invert: bool = False,
                                 names: Sequence[str] = ()) -> Tuple[np.ndarray, np.ndarray,
                                                                     List[int]]:
    """Corners of every ``(aux, rgb)`` image pair: ``(N,2)`` aux, ``(N,2)`` rgb, corners/pair.

    Raises:
        ValueError: A board not found; the message names the image.
    """
    aux_all, rgb_all, counts = [], [], []
    for i, (aux, rgb) in enumerate(pairs):
        label = names[i] if i < len(names) else f'pair {i}'
        rgb_corners = find_checkerboard(rgb, pattern, False, f'rgb image of {label}')
        aux_corners = find_checkerboard(aux, pattern, invert, f'aux image of {label}')
        aux_all.append(match_order(aux_corners, rgb_corners))
        rgb_all.append(rgb_corners)
        counts.append(len(rgb_corners))
    if not aux_all:
        raise ValueError('no checkerboard image pairs given')
    return np.concatenate(aux_all), np.concatenate(rgb_all), counts


def corner_error(estimated: np.ndarray, truth: np.ndarray, aux_shape: Tuple[int, int]) -> float:
    """Largest distance (RGB pixels) between the aux image corners mapped by both homographies."""
    height, width = aux_shape[:2]
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
                       np.float64)
    return float(np.linalg.norm(apply_homography(estimated, corners)
                                - apply_homography(truth, corners), axis=1).max())

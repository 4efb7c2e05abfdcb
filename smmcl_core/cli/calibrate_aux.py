"""``smmcl-calibrate-aux``: estimate ``aux_homography`` for a thermal (or depth) camera rig.

Usage::

    smmcl-calibrate-aux points POINTS.csv --out aux_registration.yaml
        [--aux AUX_IMAGE --rgb RGB_IMAGE --overlay overlay.png] [--ransac-px 3]
    smmcl-calibrate-aux checkerboard --pair AUX1 RGB1 [--pair AUX2 RGB2 ...] --pattern 9x6
        [--invert] --out aux_registration.yaml [--overlay overlay.png]

``points``: a CSV of correspondences, one per line ``aux_u,aux_v,rgb_u,rgb_v`` (pixels,
0-based; a header line and ``#`` comments are skipped), at least 4, spread over the view (pick
them in any image viewer: corners of windows, lamp posts, people's heads at several distances).
``checkerboard``: image pairs of a checkerboard seen by both cameras at once (a heated or
back-lit board for thermal; ``--invert`` when its dark squares look bright in thermal, so both
views look alike); ``--pattern`` counts inner corners (columns x rows).

The homography (aux pixel -> RGB pixel) is fitted with RANSAC (``--ransac-px``) and refined on
the inliers; the reprojection error (RMS and max, RGB pixels) is printed. ``--out`` writes the
parameters fragment for the node / launch file::

    aux_registration: homography
    aux_homography: [h11, h12, ..., h33]

``--overlay`` writes a PNG: the RGB image with the edges of the warped aux image drawn on it
(green) and the aux view's outline (yellow): the edges must sit on the RGB outlines of the same
objects everywhere, near and far. Exit status: 0 written, 2 bad input (one line on stderr).

Numpy + OpenCV only (no torch, no ROS).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
import sys
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from smmcl_core.data import homography_fit as fit
from smmcl_core.data.io import read_raw
from smmcl_core.data.registration import coverage, warp_homography

PROG = 'smmcl-calibrate-aux'


def read_points(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """``(N,2)`` aux and ``(N,2)`` RGB pixels from a correspondence CSV.

    Raises:
        FileNotFoundError: No such file.
        ValueError: A line that is not 4 numbers (file and line named), or fewer than 4.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'missing correspondence file: {path}')
    rows: List[List[float]] = []
    with path.open(newline='') as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith('#'):
                continue
            try:
                values = [float(c) for c in cells]
            except ValueError:
                if not rows and number == 1:
                    continue  # header line
                raise ValueError(f'{path}:{number}: expected aux_u,aux_v,rgb_u,rgb_v numbers, '
                                 f'got {",".join(cells)!r}') from None
            if len(values) != 4:
                raise ValueError(f'{path}:{number}: expected 4 values (aux_u,aux_v,rgb_u,'
                                 f'rgb_v), got {len(values)}')
            rows.append(values)
    if len(rows) < fit.MIN_POINTS:
        raise ValueError(f'{path}: {len(rows)} correspondences; a homography needs at least '
                         f'{fit.MIN_POINTS}')
    table = np.asarray(rows, np.float64)
    return table[:, :2], table[:, 2:]


def parse_pattern(text: str) -> Tuple[int, int]:
    """``'9x6'`` -> ``(9, 6)`` inner corners (columns, rows)."""
    try:
        columns, rows = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--pattern must be COLUMNSxROWS, got {text!r}')
    if columns < 2 or rows < 2:
        raise argparse.ArgumentTypeError(f'--pattern needs at least 2x2 inner corners: {text!r}')
    return columns, rows


def read_image(path: Path) -> np.ndarray:
    """An image as stored; colour in RGB order."""
    image = read_raw(path)
    if image.ndim == 3 and image.shape[2] >= 3:
        image = np.ascontiguousarray(image[:, :, 2::-1])
    return image


def parameters_yaml(homography: np.ndarray) -> str:
    """The parameters fragment ``aux_registration`` + ``aux_homography`` (row-major)."""
    values = [float(f'{v:.10g}') for v in np.asarray(homography, np.float64).ravel()]
    return yaml.safe_dump({'aux_registration': 'homography', 'aux_homography': values},
                          default_flow_style=None, sort_keys=False)


def overlay(rgb: np.ndarray, aux: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """The check image: edges of the warped aux image over the RGB image.

    Returns:
        ``uint8 (H,W,3)`` RGB: the dimmed RGB image, the edges of the aux image warped into
        the RGB frame in green, the outline of the aux view in yellow.
    """
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = rgb[:, :, :3]
    if rgb.dtype != np.uint8:
        rgb = cv2.normalize(rgb, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    grey = fit._grey(aux, False)
    height, width = rgb.shape[:2]
    warped = warp_homography(grey, homography, (height, width), 'thermal')
    edges = cv2.Canny(cv2.GaussianBlur(warped, (0, 0), 1.0), 40, 100) > 0
    seen = coverage(aux.shape, homography, (height, width)).astype(np.uint8)
    outline = cv2.morphologyEx(seen, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edges &= cv2.erode(seen, np.ones((5, 5), np.uint8)) > 0  # not the view's own border
    out = (rgb.astype(np.float32) * 0.7).astype(np.uint8)
    out[edges] = (0, 255, 0)
    out[outline] = (255, 255, 0)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='source', required=True)
    points = sub.add_parser('points', help='correspondences from a CSV')
    points.add_argument('csv', type=Path, help='aux_u,aux_v,rgb_u,rgb_v per line')
    points.add_argument('--aux', type=Path, help='an aux image, for --overlay')
    points.add_argument('--rgb', type=Path, help='the RGB image of the same instant')
    board = sub.add_parser('checkerboard', help='checkerboard image pairs')
    board.add_argument('--pair', nargs=2, action='append', type=Path, required=True,
                       metavar=('AUX', 'RGB'), help='one image pair (repeat for more)')
    board.add_argument('--pattern', type=parse_pattern, required=True,
                       help='inner corners COLUMNSxROWS, e.g. 9x6')
    board.add_argument('--invert', action='store_true',
                       help='detect the board on the negative of the aux image')
    for p in (points, board):
        p.add_argument('--out', type=Path, required=True, help='parameters YAML fragment')
        p.add_argument('--overlay', type=Path, help='overlay PNG to check the result by eye')
        p.add_argument('--ransac-px', type=float, default=3.0,
                       help='RANSAC inlier threshold, RGB pixels (default 3)')
    return parser


def _run(args: argparse.Namespace) -> int:
    images: Optional[Tuple[np.ndarray, np.ndarray]] = None
    if args.source == 'points':
        aux_pts, rgb_pts = read_points(args.csv)
        if (args.aux is None) != (args.rgb is None):
            raise ValueError('--aux and --rgb go together (the overlay needs both)')
        if args.aux is not None:
            images = read_image(args.aux), read_image(args.rgb)
        elif args.overlay is not None:
            raise ValueError('--overlay needs --aux and --rgb images')
    else:
        pairs = [(read_image(a), read_image(r)) for a, r in args.pair]
        names = [f'pair {a} + {r}' for a, r in args.pair]
        aux_pts, rgb_pts, counts = fit.checkerboard_correspondences(
            pairs, args.pattern, args.invert, names)
        images = pairs[0]
        print(f'{PROG}: {len(pairs)} pair(s), {sum(counts)} corners')
    result = fit.fit_homography(aux_pts, rgb_pts, args.ransac_px)
    print(f'{PROG}: {int(result.inliers.sum())}/{len(aux_pts)} inliers, reprojection error '
          f'rms {result.rms:.3f} px, max {result.max_error:.3f} px (RGB pixels)')
    for i in np.flatnonzero(~result.inliers):
        print(f'{PROG}: outlier {i}: aux {aux_pts[i].tolist()} -> rgb {rgb_pts[i].tolist()} '
              f'({result.errors[i]:.1f} px off)')
    text = parameters_yaml(result.homography)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f'# {PROG}: aux pixel -> RGB pixel, rms {result.rms:.3f} px\n{text}')
    print(f'{PROG}: wrote {args.out}')
    if args.overlay is not None and images is not None:
        args.overlay.parent.mkdir(parents=True, exist_ok=True)
        picture = overlay(images[1], images[0], result.homography)
        if not cv2.imwrite(str(args.overlay), picture[:, :, ::-1]):
            raise ValueError(f'cannot write overlay {args.overlay}')
        print(f'{PROG}: wrote {args.overlay}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())

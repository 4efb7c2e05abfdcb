"""``smmcl-make-hha``: encode a folder of depth images as HHA images, in parallel.

Usage::

    smmcl-make-hha DEPTH_DIR OUT_DIR --camera nyu
    smmcl-make-hha data/mine/depth data/mine/hha --intrinsics 615.2 615.4 321.7 238.9
        [--intrinsics-size 480 640] [--raw-depth-dir DIR] [--depth-scale 1000] [--workers 8]

Every depth file (``.png``/``.tif`` 16-bit integers in ``1/depth-scale`` metres, default
millimetres; ``.npy``/``.tif`` float metres; 0/NaN = missing) becomes ``OUT_DIR/NAME.png``, the
8-bit HHA image with file channels R, G, B = disparity, height, angle, as the original MATLAB
code writes them and as every reader of this package expects. The encoding is
``smmcl_core.data.hha.depth_to_hha``, the same function the ROS node and ``smmcl-bag-eval``
apply to live depth, so a model trained on these files sees the robot's encoding.

Intrinsics: ``--camera nyu`` (the NYUv2 colour camera, NYUDv2's own HHA) or ``--intrinsics
FX FY CX CY`` in pixels counted from 0 (subtract 1 from MATLAB calibrations' ``cx, cy``),
for images of ``--intrinsics-size H W`` (default: the size of each image). Images of another
size get the intrinsics scaled to theirs.

Existing outputs are kept (the run resumes) unless ``--overwrite``. Exit codes: 0 all files
encoded, 1 some failed (each named on stderr, the others written), 2 bad arguments.
"""

import argparse
from concurrent.futures import as_completed, ProcessPoolExecutor
import multiprocessing
import os
from pathlib import Path
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from smmcl_core.data import hha
from smmcl_core.data.io import read_raw

PROG = 'smmcl-make-hha'
DEPTH_EXTENSIONS = ('.png', '.tif', '.tiff', '.npy')


def read_depth_metres(path: Path, depth_scale: float) -> np.ndarray:
    """A depth file as float32 metres (integers divided by ``depth_scale``).

    Raises:
        FileNotFoundError, ValueError: Unreadable file, or not a single-channel depth image.
    """
    image = read_raw(path)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2:
        raise ValueError(f'depth file {path} has shape {image.shape}; expected one channel')
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    if image.dtype in (np.uint16, np.int32, np.uint32):
        return image.astype(np.float32) / np.float32(depth_scale)  # as HHAEncoder for mm
    raise ValueError(f'depth file {path} has dtype {image.dtype}; expected 16/32-bit integer '
                     f'depth or float metres (8-bit images carry no metric depth)')


def _intrinsics_for(args: argparse.Namespace, height: int, width: int) -> np.ndarray:
    if args.camera == 'nyu':
        return hha.nyu_intrinsics(height, width)
    K = hha.camera_matrix(*args.intrinsics)
    if args.intrinsics_size is None:
        return K
    return hha.scale_intrinsics(K, tuple(args.intrinsics_size), (height, width))


def encode_file(path: Path, out: Path, args: argparse.Namespace) -> Tuple[str, str]:
    """Encode one file; returns ``(name, 'written' | 'skipped' | error message)``."""
    target = out / f'{path.stem}.png'
    if target.exists() and not args.overwrite:
        return path.name, 'skipped'
    try:
        depth = read_depth_metres(path, args.depth_scale)
        raw = None
        if args.raw_depth_dir is not None:
            candidates = [args.raw_depth_dir / f'{path.stem}{ext}' for ext in DEPTH_EXTENSIONS]
            raw_path = next((p for p in candidates if p.is_file()), None)
            if raw_path is None:
                raise FileNotFoundError(f'no raw depth for {path.name} in {args.raw_depth_dir}')
            raw = read_depth_metres(raw_path, args.depth_scale)
        image = hha.depth_to_hha(depth, _intrinsics_for(args, *depth.shape), raw)
        tmp = target.with_name(f'.{target.stem}.tmp.png')
        hha.write_hha(tmp, image)
        os.replace(tmp, target)  # a killed run leaves no half-written image
    except (OSError, ValueError) as err:
        return path.name, f'{type(err).__name__}: {err}'
    return path.name, 'written'


def _worker_init() -> None:
    import cv2
    cv2.setNumThreads(1)  # one process per core already


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-make-hha``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='Encode a folder of depth images as HHA images.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('depth_dir', type=Path, help='folder of depth images')
    parser.add_argument('out_dir', type=Path, help='folder for the HHA PNGs (created)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--camera', choices=('nyu',), help='known camera intrinsics')
    source.add_argument('--intrinsics', type=float, nargs=4, metavar=('FX', 'FY', 'CX', 'CY'),
                        help='pinhole intrinsics, pixels counted from 0')
    parser.add_argument('--intrinsics-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size --intrinsics belong to (default: each image)')
    parser.add_argument('--raw-depth-dir', type=Path, default=None,
                        help='unfilled sensor depth with the same names (missing-data mask)')
    parser.add_argument('--depth-scale', type=float, default=1000.0,
                        help='integer depth units per metre (1000 = millimetres)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--overwrite', action='store_true', help='re-encode existing outputs')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> List[Path]:
    if args.camera is None and args.intrinsics is None:
        parser.error('give the camera: --intrinsics FX FY CX CY or --camera nyu')
    if args.intrinsics is not None:
        try:
            hha.check_intrinsics(hha.camera_matrix(*args.intrinsics))
        except ValueError as err:
            parser.error(f'--intrinsics: {err}')
    if args.intrinsics_size is not None and min(args.intrinsics_size) < 1:
        parser.error(f'--intrinsics-size must be positive, got {args.intrinsics_size}')
    if not args.depth_scale > 0:
        parser.error(f'--depth-scale must be > 0, got {args.depth_scale}')
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')
    if not args.depth_dir.is_dir():
        parser.error(f'depth folder not found: {args.depth_dir}')
    if args.raw_depth_dir is not None and not args.raw_depth_dir.is_dir():
        parser.error(f'raw depth folder not found: {args.raw_depth_dir}')
    files = sorted(p for p in args.depth_dir.iterdir()
                   if p.suffix.lower() in DEPTH_EXTENSIONS and not p.name.startswith('.'))
    if not files:
        parser.error(f'no depth images ({", ".join(DEPTH_EXTENSIONS)}) in {args.depth_dir}')
    return files


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    files = _check_args(parser, args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    bar = tqdm(total=len(files), unit='img', desc=PROG, disable=args.no_progress)
    if args.workers == 1:
        for path in files:
            name, status = encode_file(path, args.out_dir, args)
            results[name] = status
            bar.update(1)
    else:
        # spawn, not fork: forking a process that already runs OpenMP/torch threads (main()
        # called from Python, a notebook, a test) can deadlock the children.
        context = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context,
                                 initializer=_worker_init) as pool:
            futures = [pool.submit(encode_file, path, args.out_dir, args) for path in files]
            for future in as_completed(futures):
                name, status = future.result()
                results[name] = status
                bar.update(1)
    bar.close()
    failed = {n: s for n, s in results.items() if s not in ('written', 'skipped')}
    for name, message in sorted(failed.items()):
        print(f'{PROG}: error: {name}: {message}', file=sys.stderr)
    written = sum(s == 'written' for s in results.values())
    skipped = sum(s == 'skipped' for s in results.values())
    print(f'{PROG}: wrote {written}, skipped {skipped} existing, failed {len(failed)} '
          f'-> {args.out_dir}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

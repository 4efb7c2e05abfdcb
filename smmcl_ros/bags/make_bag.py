"""``smmcl-make-bag``: turn an image dataset or SYNTHETIC scenes into a rosbag2 bag.

Sources:

- ``--dataset NAME --root DIR [--split test]``: any layout ``smmcl_core.data.build_dataset``
  reads (``nyudv2``, ``mfnet``, ``llrgbd``, ``folder``), through its raw samples.
- ``--synthetic N --modality depth|thermal --size H W --seed S``: the procedural SYNTHETIC
  dark scenes of ``smmcl_core.data.synthetic`` (test split of that seed).

Per frame ``i`` one message on each topic, all with header stamp ``start + i / rate`` (also
the bag time) and the same ``frame_id`` (the aux image is registered to the colour camera):

=========================== ============================ ==================================
topic (default)             type                         content
=========================== ============================ ==================================
/camera/color/image_raw     sensor_msgs/Image            ``rgb8``
/camera/aux/image_raw       sensor_msgs/Image            as the raw data is: depth
                                                         ``16UC1`` mm / ``32FC1`` m, thermal
                                                         ``mono8`` / ``mono16``, HHA ``rgb8``
/segmentation/label         sensor_msgs/Image            ``mono8`` train ids (255 = ignore)
/camera/color/camera_info   sensor_msgs/CameraInfo       pinhole ``K``, no distortion
=========================== ============================ ==================================

``K``: for ``--dataset nyudv2`` the NYUv2 colour camera (scaled to the image size), the
intrinsics its HHA images are made with, so ``smmcl-bag-eval`` encodes depth frames to HHA as
training did; otherwise ``--focal`` (default ``0.81 * width``) with the centre pixel.

Unregistered aux cameras (README "Unregistered cameras"): the samples are registered (a folder
whose ``classes.yaml`` names ``aux_registration`` is registered when read). ``--aux-homography
H11 .. H33 --aux-size H W`` writes each aux image as a raw aux camera of ``H x W`` pixels sees
it instead: warped with the inverse of the homography (aux pixel -> RGB pixel), with the
``--aux-frame-id`` of its own; the ``smmcl-bag-eval`` flags that register it back are printed
on stdout.
"""

import argparse
from pathlib import Path
import sys
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from smmcl_core.data.fixed_registration import registration_modality
from smmcl_core.data.registration import check_homography, warp_homography
from smmcl_ros import cli, topics
from smmcl_ros.bags.messages import camera_info_message, image_message, make_header, STORAGES
from smmcl_ros.bags.writer import BagWriter

PROG = 'smmcl-make-bag'
RGB_TOPIC = topics.CAMERA_RGB
AUX_TOPIC = topics.CAMERA_AUX
LABEL_TOPIC = topics.BAG_LABEL
INFO_TOPIC = topics.CAMERA_RGB_INFO
FRAME_ID = 'camera_color_optical_frame'
AUX_FRAME_ID = 'camera_aux_optical_frame'  # the aux camera's frame when written unregistered
START_TIME_S = 1_700_000_000.0
# fx / width of a ~63 degree horizontal field of view (the Kinect of NYUv2: 518.9 / 640).
FOCAL_PER_WIDTH = 0.81

RawSample = Tuple[np.ndarray, np.ndarray, np.ndarray]


def aux_encoding(aux: np.ndarray, modality: str, depth_encoding: str = 'raw'
                 ) -> Tuple[np.ndarray, str]:
    """Choose the ROS encoding for a raw aux image, converting depth units if asked.

    Args:
        aux: Raw aux image (see ``smmcl_core.data.preprocess``).
        modality: ``depth``, ``thermal`` or ``hha``.
        depth_encoding: ``raw`` (keep), ``16UC1`` (millimetres) or ``32FC1`` (metres).

    Returns:
        ``(array, encoding)`` ready for ``image_message``.

    Raises:
        ValueError: A dtype/shape with no ROS encoding for ``modality``.
    """
    if modality == 'hha':
        if aux.dtype == np.uint8 and aux.ndim == 3 and aux.shape[2] == 3:
            return aux, 'rgb8'
    elif aux.ndim == 2:
        if modality == 'depth':
            if depth_encoding == '32FC1' and aux.dtype == np.uint16:
                return aux.astype(np.float32) / np.float32(1000.0), '32FC1'
            if depth_encoding == '16UC1' and np.issubdtype(aux.dtype, np.floating):
                metres = np.nan_to_num(aux.astype(np.float64), nan=0.0, posinf=0.0)
                return np.clip(np.rint(metres * 1000.0), 0, 65535).astype(np.uint16), '16UC1'
            if aux.dtype == np.uint16:
                return aux, '16UC1'
            if np.issubdtype(aux.dtype, np.floating):
                return aux.astype(np.float32), '32FC1'
            if aux.dtype == np.uint8:
                return aux, 'mono8'
        elif modality == 'thermal':
            if aux.dtype == np.uint8:
                return aux, 'mono8'
            if aux.dtype == np.uint16:
                return aux, 'mono16'
    raise ValueError(f'no ROS image encoding for {modality} aux of dtype {aux.dtype}, shape '
                     f'{aux.shape}')


def dataset_samples(name: str, root: Optional[Path], split: str,
                    aux_modality: Optional[str] = None, **kwargs) -> Tuple[int, Any, str]:
    """``(count, raw_sample(i) callable, aux modality)`` of a dataset (see build_dataset)."""
    from smmcl_core.data import build_dataset
    dataset = build_dataset(name, root, split, aux_modality=aux_modality, **kwargs)
    return len(dataset), dataset.raw_sample, dataset.aux_modality


def write_bag(out: Path, samples: Iterator[RawSample], count: int, modality: str,
              rate: float = 10.0, storage: str = 'sqlite3', start_time: float = START_TIME_S,
              frame_id: str = FRAME_ID, rgb_topic: str = RGB_TOPIC, aux_topic: str = AUX_TOPIC,
              label_topic: str = LABEL_TOPIC, info_topic: str = INFO_TOPIC,
              depth_encoding: str = 'raw', focal: Optional[float] = None,
              aux_offset_ms: float = 0.0, progress: Optional[bool] = None,
              intrinsics: Optional[Callable[[int, int], np.ndarray]] = None,
              aux_frame_id: Optional[str] = None) -> Path:
    """Write ``samples`` as a bag (see the module docstring for topics and stamps).

    Args:
        out: New bag directory.
        samples: Raw ``(rgb, aux, label)`` samples (``label`` may be ``None``).
        count: Number of samples (for the progress bar).
        modality: Aux modality of the samples.
        rate: Frames per second (stamps ``start_time + i / rate``).
        storage: ``sqlite3`` or ``mcap``.
        start_time: Stamp of frame 0 in seconds since the epoch.
        frame_id: ``header.frame_id`` of every message (the aux too unless ``aux_frame_id``).
        rgb_topic: RGB topic.
        aux_topic: Aux topic.
        label_topic: Label topic (``''`` = no labels).
        info_topic: CameraInfo topic (``''`` = none).
        depth_encoding: ``raw``, ``16UC1`` or ``32FC1`` (depth only).
        focal: Focal length in pixels (default ``0.81 * width``).
        aux_offset_ms: Added to the aux stamps (to exercise the synchroniser's slop).
        progress: tqdm bar (``None`` = only on a terminal).
        intrinsics: ``K`` of a ``height x width`` frame for the camera_info (overrides
            ``focal``).
        aux_frame_id: ``header.frame_id`` of the aux images (default ``frame_id``).

    Returns:
        ``out``.
    """
    if not rate > 0:
        raise ValueError(f'--rate must be > 0, got {rate}')
    period_ns = int(round(1e9 / rate))
    start_ns = int(round(start_time * 1e9))
    offset_ns = int(round(aux_offset_ms * 1e6))
    bar = tqdm(total=count, unit='frame', desc=Path(out).name, disable=progress is False
               or (progress is None and not sys.stderr.isatty()))
    with BagWriter(out, storage) as writer:
        store = writer.typestore
        for i, (rgb, aux, label) in enumerate(samples):
            stamp = start_ns + i * period_ns
            header = make_header(store, stamp, frame_id)
            height, width = rgb.shape[:2]
            writer.write(rgb_topic, image_message(store, rgb, 'rgb8', header), stamp)
            aux_array, encoding = aux_encoding(aux, modality, depth_encoding)
            aux_header = make_header(store, stamp + offset_ns, aux_frame_id or frame_id)
            writer.write(aux_topic, image_message(store, aux_array, encoding, aux_header),
                         stamp + offset_ns)
            if label_topic and label is not None:
                writer.write(label_topic, image_message(store, label, 'mono8', header), stamp)
            if info_topic:
                if intrinsics is not None:
                    K = intrinsics(height, width)
                    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
                else:
                    fx = fy = float(focal) if focal else FOCAL_PER_WIDTH * width
                    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
                writer.write(info_topic, camera_info_message(
                    store, header, height, width, fx, fy, cx, cy), stamp)
            bar.update(1)
    bar.close()
    return Path(out)


def unregister_samples(samples: Iterator[RawSample], homography: np.ndarray,
                       size: Tuple[int, int], modality: str) -> Iterator[RawSample]:
    """Registered samples -> the aux image as an aux camera of ``size`` (h, w) sees it.

    ``homography`` maps aux pixels to RGB pixels (``aux_homography``); its inverse warps the
    registered aux into the aux camera (nearest for depth and HHA, linear for thermal).
    """
    to_aux = np.linalg.inv(homography)
    kind = registration_modality(modality)
    for rgb, aux, label in samples:
        yield rgb, warp_homography(aux, to_aux, size, kind), label


def bag_eval_flags(homography: np.ndarray) -> str:
    """The ``smmcl-bag-eval`` flags that register an aux written by :func:`unregister_samples`."""
    return '--aux-registration homography --aux-homography ' + ' '.join(
        repr(float(v)) for v in np.asarray(homography).ravel())


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-make-bag``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('out', type=Path, help='new bag directory')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--dataset', help='nyudv2, mfnet, llrgbd, folder or synthetic')
    source.add_argument('--synthetic', type=int, metavar='N',
                        help='N SYNTHETIC procedural scenes')
    parser.add_argument('--root', type=Path, help='dataset folder (with --dataset)')
    parser.add_argument('--split', default='test')
    parser.add_argument('--aux-modality', default=None,
                        help='dataset aux modality (e.g. nyudv2 depth|hha); default: dataset')
    parser.add_argument('--modality', choices=('depth', 'thermal'), default='depth',
                        help='aux modality of --synthetic')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), default=(120, 160),
                        help='image size of --synthetic')
    parser.add_argument('--seed', type=int, default=0, help='seed of --synthetic')
    parser.add_argument('--limit', type=int, default=None, help='at most this many frames')
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second')
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3')
    parser.add_argument('--start-time', type=float, default=START_TIME_S,
                        help='stamp of the first frame (seconds since the epoch)')
    parser.add_argument('--frame-id', default=FRAME_ID)
    parser.add_argument('--depth-encoding', choices=('raw', '16UC1', '32FC1'), default='raw')
    parser.add_argument('--focal', type=float, default=None,
                        help=f'focal length in pixels (default {FOCAL_PER_WIDTH} * width)')
    parser.add_argument('--aux-offset-ms', type=float, default=0.0,
                        help='shift the aux stamps (tests the synchroniser slop)')
    parser.add_argument('--rgb-topic', default=RGB_TOPIC)
    parser.add_argument('--aux-topic', default=AUX_TOPIC)
    parser.add_argument('--label-topic', default=LABEL_TOPIC, help="'' = no labels")
    parser.add_argument('--info-topic', default=INFO_TOPIC, help="'' = no camera_info")
    parser.add_argument('--aux-homography', type=float, nargs=9, default=None,
                        metavar='H', help='write the aux unregistered: the raw aux camera of '
                        '--aux-size under this homography (aux pixel -> RGB pixel, row-major)')
    parser.add_argument('--aux-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='image size of the unregistered aux camera (--aux-homography)')
    parser.add_argument('--aux-frame-id', default=None,
                        help=f'frame_id of the aux images (default --frame-id; '
                        f'{AUX_FRAME_ID} with --aux-homography)')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def _unregistered(args: argparse.Namespace) -> Optional[Tuple[np.ndarray, Tuple[int, int]]]:
    """``(homography, (h, w))`` of ``--aux-homography`` / ``--aux-size``, or None."""
    if (args.aux_homography is None) != (args.aux_size is None):
        raise ValueError('--aux-homography and --aux-size go together (the unregistered aux '
                         'camera: its homography to the RGB image and its size)')
    if args.aux_homography is None:
        return None
    if min(args.aux_size) < 1:
        raise ValueError(f'--aux-size must be positive, got {args.aux_size}')
    return check_homography(args.aux_homography, '--aux-homography'), tuple(args.aux_size)


def _dataset_intrinsics(args: argparse.Namespace) -> Optional[Callable[[int, int], Any]]:
    if args.dataset == 'nyudv2' and not args.focal:
        from smmcl_core.data.hha import nyu_intrinsics
        return nyu_intrinsics
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: 0 on success, 2 on bad arguments or unreadable data (:mod:`smmcl_ros.cli`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.synthetic is not None:
            if args.synthetic < 1:
                raise ValueError(f'--synthetic needs N >= 1, got {args.synthetic}')
            count, raw_sample, modality = dataset_samples(
                'synthetic', None, 'test', args.modality, length=args.synthetic,
                height=args.size[0], width=args.size[1], seed=args.seed)
        else:
            if args.root is None and args.dataset != 'synthetic':
                raise ValueError(f'--dataset {args.dataset} needs --root')
            count, raw_sample, modality = dataset_samples(
                args.dataset, args.root, args.split, args.aux_modality)
        if args.limit is not None:
            count = min(count, max(args.limit, 0))
        if count == 0:
            raise ValueError('no frames to write')
        unregistered = _unregistered(args)
        samples = (raw_sample(i) for i in range(count))
        aux_frame_id = args.aux_frame_id
        if unregistered is not None:
            samples = unregister_samples(samples, *unregistered, modality)
            aux_frame_id = aux_frame_id or AUX_FRAME_ID
        out = write_bag(
            args.out, samples, count, modality, args.rate,
            args.storage, args.start_time, args.frame_id, args.rgb_topic, args.aux_topic,
            args.label_topic, args.info_topic, args.depth_encoding, args.focal,
            args.aux_offset_ms, progress=False if args.no_progress else None,
            intrinsics=_dataset_intrinsics(args), aux_frame_id=aux_frame_id)
    except (OSError, ValueError, KeyError) as err:
        return cli.fail(PROG, err)
    cli.status(PROG, f'wrote {count} frames ({modality}) to {out} ({args.storage})')
    if unregistered is not None:
        height, width = unregistered[1]
        cli.status(PROG, f'aux written unregistered ({width}x{height}); evaluate with:')
        print(f'smmcl-bag-eval {out} {bag_eval_flags(unregistered[0])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

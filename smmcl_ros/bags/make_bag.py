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

Unregistered aux cameras (README "Unregistered cameras", :mod:`smmcl_ros.bags.unregistered`):
the samples are registered (a folder whose ``classes.yaml`` names ``aux_registration`` is
registered when read); these options write the aux as a raw aux camera beside the RGB camera
sees it, with the ``--aux-frame-id`` of its own, and print on stdout the ``smmcl-bag-eval``
line that registers it back:

- ``--aux-homography H11 .. H33 --aux-size H W`` (a thermal camera): each aux image warped
  with the inverse of the homography (aux pixel -> RGB pixel) into ``H x W`` pixels; frame
  ``camera_aux_optical_frame``.
- ``--aux-depth-camera FX FY CX CY --aux-size H W [--aux-to-rgb X Y Z QX QY QZ QW]`` (a depth
  camera, as a RealSense without ``align_depth`` publishes it; depth only): each depth image
  re-projected from the RGB camera (the ``K`` of its camera_info) into a pinhole camera of
  these intrinsics at ``H x W`` whose optical frame sits at ``--aux-to-rgb`` (metres, the
  depth optical frame in the RGB optical frame, as ``aux_to_rgb``; default identity):
  ``register_depth`` the other way round, the nearest surface on collisions, holes 0 (``16UC1``)
  or NaN (``32FC1``); frame ``camera_depth_optical_frame``. The bag then also holds what the
  driver publishes beside it:

  =========================== ============================ ==============================
  /camera/depth/camera_info   sensor_msgs/CameraInfo       the depth camera's ``K`` at its
                                                           size, the aux header
                                                           (``--aux-info-topic``)
  /tf_static                  tf2_msgs/TFMessage           one message before frame 0:
                                                           parent ``--frame-id``, child the
                                                           aux frame, ``aux_to_rgb``
  =========================== ============================ ==============================

  so ``smmcl-bag-eval --aux-registration depth`` registers it with ``--aux-to-rgb`` or, left
  out, from the bag's ``/tf_static``.
"""

import argparse
from functools import partial
from pathlib import Path
import sys
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from smmcl_core.data.hha.intrinsics import camera_matrix as pinhole_matrix
from smmcl_ros import cli, topics
from smmcl_ros.bags import unregistered
from smmcl_ros.bags.bag_tf import TF_STATIC
from smmcl_ros.bags.messages import (camera_info_message, image_message, make_header, STORAGES,
                                     tf_message)
from smmcl_ros.bags.unregistered import AUX_FRAME_ID, DEPTH_FRAME_ID  # noqa: F401 (re-exported)
from smmcl_ros.bags.writer import BagWriter

PROG = 'smmcl-make-bag'
RGB_TOPIC = topics.CAMERA_RGB
AUX_TOPIC = topics.CAMERA_AUX
LABEL_TOPIC = topics.BAG_LABEL
INFO_TOPIC = topics.CAMERA_RGB_INFO
FRAME_ID = 'camera_color_optical_frame'
START_TIME_S = 1_700_000_000.0
# fx / width of a ~63 degree horizontal field of view (the Kinect of NYUv2: 518.9 / 640).
FOCAL_PER_WIDTH = 0.81

RawSample = Tuple[np.ndarray, np.ndarray, np.ndarray]
Transform = Tuple[str, str, Sequence[float]]  # (parent, child, [x, y, z, qx, qy, qz, qw])


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


def camera_matrix(height: int, width: int, focal: Optional[float] = None,
                  intrinsics: Optional[Callable[[int, int], np.ndarray]] = None) -> np.ndarray:
    """``K`` of the RGB camera_info of a ``height x width`` frame (see :func:`write_bag`)."""
    if intrinsics is not None:
        return np.asarray(intrinsics(height, width), np.float64).reshape(3, 3)
    f = float(focal) if focal else FOCAL_PER_WIDTH * width
    return pinhole_matrix(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def write_bag(out: Path, samples: Iterator[RawSample], count: int, modality: str,
              rate: float = 10.0, storage: str = 'sqlite3', start_time: float = START_TIME_S,
              frame_id: str = FRAME_ID, rgb_topic: str = RGB_TOPIC, aux_topic: str = AUX_TOPIC,
              label_topic: str = LABEL_TOPIC, info_topic: str = INFO_TOPIC,
              depth_encoding: str = 'raw', focal: Optional[float] = None,
              aux_offset_ms: float = 0.0, progress: Optional[bool] = None,
              intrinsics: Optional[Callable[[int, int], np.ndarray]] = None,
              aux_frame_id: Optional[str] = None, aux_info_topic: str = '',
              aux_K: Optional[np.ndarray] = None,
              static_transforms: Sequence[Transform] = ()) -> Path:
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
        aux_info_topic: CameraInfo topic of the aux camera (``''`` = none), with ``aux_K``
            at the aux image's size and the aux header.
        aux_K: ``K`` of the aux camera (with ``aux_info_topic``).
        static_transforms: ``(parent, child, pose)`` written as one ``/tf_static`` message
            before the first frame (``()`` = no ``/tf_static``).

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
        if static_transforms:  # latched by the driver: once, before every frame
            first = start_ns + min(offset_ns, 0)
            writer.write(TF_STATIC, tf_message(store, make_header(store, first, ''),
                                               static_transforms), first)
        for i, (rgb, aux, label) in enumerate(samples):
            stamp = start_ns + i * period_ns
            header = make_header(store, stamp, frame_id)
            height, width = rgb.shape[:2]
            writer.write(rgb_topic, image_message(store, rgb, 'rgb8', header), stamp)
            aux_array, encoding = aux_encoding(aux, modality, depth_encoding)
            aux_header = make_header(store, stamp + offset_ns, aux_frame_id or frame_id)
            writer.write(aux_topic, image_message(store, aux_array, encoding, aux_header),
                         stamp + offset_ns)
            if aux_info_topic and aux_K is not None:
                writer.write(aux_info_topic, camera_info_message(
                    store, aux_header, aux_array.shape[0], aux_array.shape[1], aux_K[0, 0],
                    aux_K[1, 1], aux_K[0, 2], aux_K[1, 2]), stamp + offset_ns)
            if label_topic and label is not None:
                writer.write(label_topic, image_message(store, label, 'mono8', header), stamp)
            if info_topic:
                K = camera_matrix(height, width, focal, intrinsics)
                writer.write(info_topic, camera_info_message(
                    store, header, height, width, K[0, 0], K[1, 1], K[0, 2], K[1, 2]), stamp)
            bar.update(1)
    bar.close()
    return Path(out)


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
    unregistered.add_arguments(parser)
    parser.add_argument('--aux-frame-id', default=None,
                        help=f'frame_id of the aux images (default --frame-id; '
                        f'{AUX_FRAME_ID} with --aux-homography, {DEPTH_FRAME_ID} with '
                        '--aux-depth-camera)')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def _dataset_intrinsics(args: argparse.Namespace) -> Optional[Callable[[int, int], Any]]:
    if args.dataset == 'nyudv2' and not args.focal:
        from smmcl_core.data.hha import nyu_intrinsics
        return nyu_intrinsics
    return None


def _aux_camera(args: argparse.Namespace, camera: unregistered.AuxCamera,
                samples: Iterator[RawSample], modality: str,
                intrinsics: Optional[Callable[[int, int], Any]]
                ) -> Tuple[Iterator[RawSample], Dict[str, Any]]:
    """The samples as ``camera`` sees them, and the :func:`write_bag` options it adds.

    Raises:
        ValueError: A depth camera with another modality, no RGB camera_info, or the aux frame
            equal to the RGB frame (the message names the option).
    """
    frame_id = args.aux_frame_id or camera.default_frame_id
    options: Dict[str, Any] = {'aux_frame_id': frame_id}
    if isinstance(camera, unregistered.DepthCamera):
        unregistered.check_depth_modality(modality)
        if not args.info_topic:
            raise ValueError('--aux-depth-camera is registered back with the RGB camera_info: '
                             "--info-topic must not be ''")
        if frame_id.lstrip('/') == args.frame_id.lstrip('/'):
            raise ValueError(f'--aux-depth-camera: --aux-frame-id {frame_id!r} must differ from '
                             f'--frame-id (the /tf_static transform joins the two)')
        # Encoded first, so that the holes are those of the written encoding (0 or NaN).
        samples = ((rgb, aux_encoding(aux, modality, args.depth_encoding)[0], label)
                   for rgb, aux, label in samples)
        options.update(aux_info_topic=camera.info_topic, aux_K=camera.K,
                       static_transforms=camera.static_transforms(args.frame_id, frame_id))
    return camera.samples(samples, modality, partial(
        camera_matrix, focal=args.focal, intrinsics=intrinsics)), options


def _eval_line(args: argparse.Namespace, out: Path, camera: unregistered.AuxCamera) -> str:
    """The ``smmcl-bag-eval`` command that registers ``camera`` back (topics when not default)."""
    line = f'smmcl-bag-eval {out}'
    for option, value, default in (('--rgb-topic', args.rgb_topic, RGB_TOPIC),
                                   ('--aux-topic', args.aux_topic, AUX_TOPIC)):
        if value != default:
            line += f' {option} {value}'
    if isinstance(camera, unregistered.DepthCamera):
        return f'{line} {camera.eval_flags(args.info_topic)}'
    return f'{line} {camera.eval_flags()}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: 0 on success, 2 on bad arguments or unreadable data (:mod:`smmcl_ros.cli`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        camera = unregistered.from_arguments(args)
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
        samples = (raw_sample(i) for i in range(count))
        intrinsics = _dataset_intrinsics(args)
        options: Dict[str, Any] = {'aux_frame_id': args.aux_frame_id}
        if camera is not None:
            samples, options = _aux_camera(args, camera, samples, modality, intrinsics)
        out = write_bag(
            args.out, samples, count, modality, args.rate,
            args.storage, args.start_time, args.frame_id, args.rgb_topic, args.aux_topic,
            args.label_topic, args.info_topic, args.depth_encoding, args.focal,
            args.aux_offset_ms, progress=False if args.no_progress else None,
            intrinsics=intrinsics, **options)
    except (OSError, ValueError, KeyError) as err:
        return cli.fail(PROG, err)
    cli.status(PROG, f'wrote {count} frames ({modality}) to {out} ({args.storage})')
    if camera is not None:
        height, width = camera.size
        cli.status(PROG, f'aux written unregistered ({width}x{height}); evaluate with:')
        print(_eval_line(args, out, camera))
        if isinstance(camera, unregistered.DepthCamera):
            cli.status(PROG, f"(or without --aux-to-rgb: the bag's {TF_STATIC} holds it, "
                       f'{args.frame_id} -> {options["aux_frame_id"]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""``smmcl-bag-eval``: run the node's frame pipeline over a rosbag2 bag and report.

The bag is read with ``rosbags`` (sqlite3 ``.db3`` or MCAP, no ROS needed); frames go through
the code the node runs (:mod:`smmcl_ros.bags.evaluator`), so a bag evaluates what the node
would publish. HHA checkpoints (meta ``aux_modality: hha``) take the aux topic as HHA images
(``rgb8``) or as depth (``16UC1`` mm / ``32FC1`` m), encoded with the intrinsics of the
``--camera-info-topic`` message nearest in time (``smmcl-make-bag`` records
``/camera/color/camera_info``, the camera the aux image is registered to). ``--aux-registration``
(default ``auto``), ``--aux-homography`` and ``--aux-to-rgb`` register an aux camera that is not
registered to the RGB camera, as the node's parameters of those names do (``depth`` without
``--aux-to-rgb``: the extrinsic from the bag's ``/tf_static``, between the two images'
``frame_id``s; a bag without it is an error naming ``/tf_static`` and the frames). With
``--label-topic`` the report holds the confusion-matrix metrics
(:mod:`smmcl_ros.bags.report`).

Exit codes (:mod:`smmcl_ros.cli`): 0 all good; 1 the bag is damaged or nothing could be
evaluated (the report is still written, with every frame readable before the damage
evaluated); 2 bad arguments, unknown topic, unsupported encoding or unreadable checkpoint.
"""

import argparse
from pathlib import Path
import sys
from typing import Any, Optional, Sequence

from smmcl_ros import cli, topics
from smmcl_ros.bags.errors import UnknownTopicError
from smmcl_ros.bags.evaluator import evaluate_bag
from smmcl_ros.bags.messages import STORAGES
from smmcl_ros.bags.report import summary, write_report
from smmcl_ros.node.params import DEFAULTS

PROG = 'smmcl-bag-eval'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-bag-eval``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('bag', type=Path, help='rosbag2 directory, .db3 or .mcap file')
    parser.add_argument('--checkpoint', type=Path, required=True, help='smmcl checkpoint')
    parser.add_argument('--rgb-topic', default=topics.CAMERA_RGB)
    parser.add_argument('--aux-topic', default=topics.CAMERA_AUX)
    parser.add_argument('--label-topic', default='',
                        help='mono8 ground-truth topic (train ids); empty = no metrics')
    parser.add_argument('--label-match', choices=('exact', 'sync'), default='exact',
                        help='labels matched by exactly the RGB stamp, or by the synchroniser')
    parser.add_argument('--output-bag', type=Path, default=None,
                        help='write masks (mono8) and colour masks (rgb8) to this new bag')
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3',
                        help='storage of --output-bag')
    parser.add_argument('--mask-topic', default=topics.BAG_MASK)
    parser.add_argument('--color-topic', default=topics.BAG_COLOR, help="'' = no colour masks")
    parser.add_argument('--points', action='store_true',
                        help='also write the semantic PointCloud2 of each frame to the output '
                        'bag (depth / HHA checkpoints; K from --camera-info-topic)')
    parser.add_argument('--points-topic', default=topics.BAG_POINTS)
    parser.add_argument('--report', type=Path, default=None,
                        help='JSON report path (default: print to stdout)')
    parser.add_argument('--slop', type=float, default=DEFAULTS['sync_slop'],
                        help='synchroniser slop in seconds (node parameter sync_slop)')
    parser.add_argument('--queue-size', type=int, default=DEFAULTS['sync_queue_size'],
                        help='synchroniser queue size (node parameter sync_queue_size)')
    parser.add_argument('--camera-info-topic', default=topics.CAMERA_RGB_INFO,
                        help='intrinsics of the aux depth, for HHA checkpoints')
    parser.add_argument('--hha-gravity-smoothing', type=float, default=0.0,
                        help='HHA checkpoints: as the node parameter hha_gravity_smoothing')
    parser.add_argument('--aux-registration', default='auto',
                        choices=('auto', 'none', 'resize', 'homography', 'depth'),
                        help="as the node parameter aux_registration (README 'Unregistered "
                             "cameras')")
    parser.add_argument('--aux-homography', type=float, nargs=9, default=(), metavar='H',
                        help='9 numbers, row-major, aux pixel -> RGB pixel (homography)')
    parser.add_argument('--aux-to-rgb', type=float, nargs=7, default=(),
                        metavar=('X', 'Y', 'Z', 'QX', 'QY', 'QZ', 'QW'),
                        help='depth optical frame in the RGB optical frame (depth; default: '
                        "the bag's /tf_static between the images' frame_ids)")
    parser.add_argument('--aux-camera-info-topic', default='',
                        help="depth registration: the depth camera's camera_info")
    parser.add_argument('--device', default='auto')
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'bf16'), default='fp32')
    parser.add_argument('--backend', default='auto',
                        help='inference engine: auto (fastest installed), torch, openvino, '
                        'onnxruntime, tensorrt')
    parser.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')
    return parser


def _registration(args: argparse.Namespace) -> Any:
    """The ``--aux-*`` options, checked before the model loads (modality set later)."""
    from smmcl_ros.pipeline.registration import AuxRegistration

    if args.aux_registration == 'depth' and not args.aux_camera_info_topic:
        raise ValueError('--aux-registration depth needs --aux-camera-info-topic (the depth '
                         "camera's camera_info)")
    return AuxRegistration(args.aux_registration, 'depth', args.aux_homography,
                           args.aux_to_rgb)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    base = {'bag': str(args.bag), 'checkpoint': str(args.checkpoint)}
    try:
        if args.slop <= 0 or args.queue_size < 1:
            raise ValueError(f'--slop must be > 0 and --queue-size >= 1, got {args.slop} and '
                             f'{args.queue_size}')
        if args.output_bag is not None and args.output_bag.exists():
            raise FileExistsError(f'--output-bag {args.output_bag} exists already')
        registration = _registration(args)
        if args.points and args.output_bag is None:
            raise ValueError('--points writes the clouds to --output-bag: give one')
        from smmcl_core.segmenter import Segmenter  # torch import only past argument checks
        segmenter = Segmenter.from_checkpoint(args.checkpoint, device=args.device,
                                              precision=args.precision, backend=args.backend)
        base.update(backend=segmenter.backend, precision=segmenter.precision)
        if args.points and segmenter.aux_modality not in ('depth', 'hha'):
            raise ValueError(f'--points needs a depth or HHA checkpoint; {args.checkpoint} '
                             f'takes {segmenter.aux_modality}')
        report = evaluate_bag(
            args.bag, segmenter, args.rgb_topic, args.aux_topic, args.label_topic or None,
            args.output_bag, args.storage, args.slop, args.queue_size, args.label_match,
            args.mask_topic, args.color_topic, progress=False if args.no_progress else None,
            camera_info_topic=args.camera_info_topic,
            hha_gravity_smoothing=args.hha_gravity_smoothing,
            registration=registration.for_modality(segmenter.aux_modality),
            aux_camera_info_topic=args.aux_camera_info_topic,
            points_topic=args.points_topic if args.points else '')
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        # UnknownTopicError / BagOpenError are RuntimeErrors; checkpoint errors ValueErrors.
        kind = 'unknown_topic' if isinstance(err, UnknownTopicError) else type(err).__name__
        if args.report is not None:
            write_report(dict(base, error=cli.message_of(err), error_kind=kind,
                              truncated=False), args.report)
        return cli.fail(PROG, err)
    report = dict(base, **report)
    write_report(report, args.report)
    cli.status(PROG, summary(report))
    if report['error'] is not None:
        return cli.fail(PROG, report['error'], cli.FAILED if report['truncated'] else cli.USAGE)
    if report['frames']['evaluated'] == 0:
        return cli.fail(PROG, 'no frame could be evaluated (check the topics, --slop and the '
                        'rejected reasons in the report)', cli.FAILED)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""``smmcl-bag-eval``: run the node's segmenter over a rosbag2 bag and report.

The bag is read with ``rosbags`` (sqlite3 ``.db3`` or MCAP, no ROS needed). Messages go
through the same path as in the node: decoded with :mod:`smmcl_ros.image_codec`, paired by
header stamp with the node's :class:`~smmcl_ros.sync.ApproximateTimeSynchronizer` (same
``--slop``/``--queue-size`` defaults as the node parameters), aux resized nearest-neighbour
to the RGB size when they differ, then segmented by ``Segmenter.predict``.

HHA checkpoints (meta ``aux_modality: hha``) take the aux topic either as HHA images
(``rgb8``) or as depth (``16UC1`` mm / ``32FC1`` m); depth is encoded to HHA exactly as the node
does (``HHAEncoder``), with the intrinsics of the ``--camera-info-topic`` message nearest in
time (``smmcl-make-bag`` records ``/camera/color/camera_info``, the camera the aux image is
registered to).

Labels (``--label-topic``, mono8 train ids, ``ignore_index`` skipped) are matched to pairs
either by exactly the RGB header stamp (``--label-match exact``, the default) or as a third
synchroniser input (``--label-match sync``). With labels the report holds the confusion-matrix
metrics (per-class IoU, mIoU, accuracies).

Report (JSON): message counts, frames paired / evaluated / unpaired / rejected with reasons,
metrics, inference latency percentiles, and ``truncated`` + ``error`` for damaged bags.

Exit codes: 0 all good; 1 the bag is damaged or nothing could be evaluated (the report is
still written, with every frame readable before the damage evaluated); 2 bad arguments,
unknown topic, unsupported encoding or unreadable checkpoint.
"""

import argparse
from collections import Counter, OrderedDict
import contextlib
import json
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from smmcl_core.visualize import colorize
from smmcl_ros import image_codec
from smmcl_ros.bag_io import (BagReader, BagReadError, BagWriter, image_message, IMAGE_TYPE,
                              MessageDecodeError, STORAGES, UnknownTopicError)
from smmcl_ros.camera_info import CameraInfoError, IntrinsicsTimeline
from smmcl_ros.params import DEFAULTS
from smmcl_ros.sync import ApproximateTimeSynchronizer, stamp_ns

MASK_TOPIC = '/segmentation/mask'
COLOR_TOPIC = '/segmentation/color'
CAMERA_INFO_TOPIC = '/camera/color/camera_info'  # what smmcl-make-bag records
LABEL_ENCODINGS = ('mono8', '8UC1')
FATAL_REASONS = ('unknown_encoding', 'wrong_encoding')
RGB, AUX, LABEL = 'rgb', 'aux', 'label'


class EvalError(RuntimeError):
    """Fatal problem (unsupported encoding, ...); frames before it are in the report."""


class _Frame:
    """One decoded image with its message and bag time."""

    __slots__ = ('msg', 'image', 'timestamp')

    def __init__(self, msg: Any, image: np.ndarray, timestamp: int) -> None:
        self.msg, self.image, self.timestamp = msg, image, timestamp


def percentile_ms(values: Sequence[float], q: float) -> Optional[float]:
    """``q``-th percentile of seconds ``values`` in milliseconds (``None`` when empty)."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, np.float64), q) * 1000.0)


class BagEvaluator:
    """Streams bag messages through decode -> synchroniser -> segmenter -> metrics/output.

    Args:
        segmenter: A ``Segmenter`` (anything with ``predict``, ``aux_modality``,
            ``num_classes``, ``ignore_index``, ``class_names`` and ``palette``).
        topics: ``{'rgb': topic, 'aux': topic}`` plus optionally ``'label'``.
        slop: Synchroniser slop in seconds.
        queue_size: Synchroniser queue size per input.
        label_match: ``'exact'`` (label stamp == RGB stamp) or ``'sync'``.
        writer: Optional :class:`BagWriter` for the masks.
        mask_topic: Output topic for the mono8 masks.
        color_topic: Output topic for the rgb8 colour masks (``''`` = none).
        intrinsics: Camera_info by stamp, for HHA checkpoints fed depth (None: none recorded).
        hha_gravity_smoothing: As the node parameter of that name.
    """

    def __init__(self, segmenter: Any, topics: Dict[str, str], slop: float, queue_size: int,
                 label_match: str = 'exact', writer: Optional[BagWriter] = None,
                 mask_topic: str = MASK_TOPIC, color_topic: str = COLOR_TOPIC,
                 intrinsics: Optional[IntrinsicsTimeline] = None,
                 hha_gravity_smoothing: float = 0.0) -> None:
        if label_match not in ('exact', 'sync'):
            raise ValueError(f'label_match must be exact or sync, got {label_match!r}')
        self.segmenter = segmenter
        self.topics = dict(topics)
        self.role_of = {topic: role for role, topic in self.topics.items()}
        self.has_labels = LABEL in self.topics
        self.label_match = label_match
        self.writer, self.mask_topic, self.color_topic = writer, mask_topic, color_topic
        self.ports = [RGB, AUX] + ([LABEL] if self.has_labels and label_match == 'sync' else [])
        self.sync = ApproximateTimeSynchronizer(len(self.ports), queue_size, slop,
                                                self._on_set)
        self.queue_size = int(queue_size)
        self.received: Counter = Counter()
        self.used: Counter = Counter()
        self.rejected: Dict[str, Counter] = {role: Counter() for role in self.topics}
        self.warnings: Counter = Counter()
        self.paired = 0
        self.evaluated = 0
        self.with_label = 0
        self.labels_unmatched = 0
        self.latencies: List[float] = []
        self.intrinsics = intrinsics
        self.hha = None
        if segmenter.aux_modality == 'hha':
            from smmcl_core.data.hha import HHAEncoder
            device = getattr(segmenter, 'device', None)
            self.hha = HHAEncoder(hha_gravity_smoothing,
                                  device if str(device).startswith('cuda') else None)
        self.confusion = None
        if self.has_labels:
            from smmcl_core.metrics import ConfusionMatrix
            self.confusion = ConfusionMatrix(int(segmenter.num_classes),
                                             int(segmenter.ignore_index))
        self._last_stamp: Dict[str, int] = {}
        # exact label matching: pairs waiting for their label and labels waiting for a pair
        self._pending_pairs: 'OrderedDict[int, Tuple[_Frame, _Frame]]' = OrderedDict()
        self._pending_labels: 'OrderedDict[int, _Frame]' = OrderedDict()
        if writer is not None:
            writer.add_topic(mask_topic, IMAGE_TYPE)
            if color_topic:
                writer.add_topic(color_topic, IMAGE_TYPE)

    # ---- input -------------------------------------------------------------------------
    def _decode(self, role: str, msg: Any) -> np.ndarray:
        if role == RGB:
            return image_codec.decode_rgb(msg)
        if role == AUX:
            return image_codec.decode_aux(msg, self.segmenter.aux_modality)
        image_codec.check_encoding(msg, LABEL_ENCODINGS, 'label')
        return image_codec.image_to_array(msg)

    def add(self, role: str, msg: Any, timestamp: int) -> None:
        """Feed one deserialised message of ``role`` recorded at bag time ``timestamp``.

        Raises:
            EvalError: The message's encoding cannot be used for ``role`` at all.
        """
        self.received[role] += 1
        try:
            image = self._decode(role, msg)
        except image_codec.ImageDecodeError as err:
            if err.reason in FATAL_REASONS:
                raise EvalError(f'unsupported encoding on {self.topics[role]} ({role}): '
                                f'{err}') from err
            self.rejected[role][err.reason] += 1
            return
        frame = _Frame(msg, image, timestamp)
        stamp = stamp_ns(msg)
        last = self._last_stamp.get(role)
        if last is not None and stamp < last:
            # As the node: a loop in the recording drops the old timeline's queued messages but
            # keeps those already on the new one (the other input's first looped frame).
            self.warnings['stamp_backwards'] += 1
            self.sync.discard_after(stamp)
        self._last_stamp[role] = stamp
        if role == LABEL and self.label_match == 'exact':
            self._add_exact_label(stamp, frame)
        else:
            self.sync.add(self.ports.index(role), stamp, frame)

    def _add_exact_label(self, stamp: int, label: _Frame) -> None:
        pair = self._pending_pairs.pop(stamp, None)
        if pair is not None:
            self._evaluate(pair[0], pair[1], label)
            return
        self._pending_labels[stamp] = label
        while len(self._pending_labels) > self.queue_size:
            self._pending_labels.popitem(last=False)
            self.labels_unmatched += 1

    def _on_set(self, *frames: _Frame) -> None:
        self.paired += 1
        for role in self.ports:
            self.used[role] += 1
        rgb, aux = frames[0], frames[1]
        if len(frames) == 3:
            self._evaluate(rgb, aux, frames[2])
        elif self.has_labels:
            stamp = stamp_ns(rgb.msg)
            label = self._pending_labels.pop(stamp, None)
            if label is not None:
                self._evaluate(rgb, aux, label)
                return
            self._pending_pairs[stamp] = (rgb, aux)
            while len(self._pending_pairs) > self.queue_size:
                _, (old_rgb, old_aux) = self._pending_pairs.popitem(last=False)
                self._evaluate(old_rgb, old_aux, None)
        else:
            self._evaluate(rgb, aux, None)

    def finish(self) -> None:
        """Evaluate pairs still waiting for a label (without one)."""
        while self._pending_pairs:
            _, (rgb, aux) = self._pending_pairs.popitem(last=False)
            self._evaluate(rgb, aux, None)
        self.labels_unmatched += len(self._pending_labels)
        self._pending_labels.clear()

    # ---- inference -----------------------------------------------------------------------
    def _evaluate(self, rgb: _Frame, aux: _Frame, label: Optional[_Frame]) -> None:
        height, width = rgb.image.shape[:2]
        aux_image = aux.image
        if self.hha is not None and aux_image.ndim == 2:  # depth for an HHA checkpoint
            aux_image = self._encode_hha(aux)
            if aux_image is None:
                return
        if aux_image.shape[:2] != (height, width):
            self.warnings['aux_resized'] += 1
            aux_image = image_codec.resize_to(aux_image, height, width)
        if label is not None and label.image.shape[:2] != (height, width):
            self.rejected[LABEL]['label_size_mismatch'] += 1
            label = None
        start = time.perf_counter()
        mask = self.segmenter.predict(np.ascontiguousarray(rgb.image), aux_image)
        self.latencies.append(time.perf_counter() - start)
        self.evaluated += 1
        if label is not None:
            import torch  # the metrics work on tensors; torch is loaded with the segmenter
            self.confusion.update(torch.from_numpy(mask.astype(np.int64)),
                                  torch.from_numpy(np.asarray(label.image, np.int64)))
            self.with_label += 1
        if self.writer is not None:
            header = rgb.msg.header
            store = self.writer.typestore
            self.writer.write(self.mask_topic, image_message(store, mask, 'mono8', header),
                              rgb.timestamp)
            if self.color_topic:
                color = colorize(mask, self.segmenter.palette)
                self.writer.write(self.color_topic,
                                  image_message(store, color, 'rgb8', header), rgb.timestamp)

    def _encode_hha(self, aux: _Frame) -> Optional[np.ndarray]:
        if self.intrinsics is None:
            raise EvalError(f'the checkpoint takes HHA and {self.topics[AUX]} carries depth, '
                            'but the bag has no camera_info topic for it (--camera-info-topic)')
        try:
            K = self.intrinsics.lookup(stamp_ns(aux.msg), *aux.image.shape)
        except CameraInfoError as err:
            self.warnings[err.reason] += 1  # the pair is not evaluated
            return None
        return self.hha.encode(aux.image, K)

    # ---- report -------------------------------------------------------------------------
    def report(self) -> Dict[str, Any]:
        """The JSON-ready summary of everything fed so far."""
        unpaired = {role: self.received[role] - self.used[role]
                    - sum(self.rejected[role].values())
                    for role in self.ports}
        rejected = {self.topics[role]: dict(reasons)
                    for role, reasons in self.rejected.items() if reasons}
        frames = {
            'paired': self.paired,
            'evaluated': self.evaluated,
            'with_label': self.with_label,
            'unpaired': unpaired,
            'rejected': sum(sum(r.values()) for r in self.rejected.values()),
            'rejected_reasons': rejected,
        }
        if self.has_labels:
            frames['labels_unmatched'] = self.labels_unmatched
        metrics = None
        if self.confusion is not None and self.with_label:
            metrics = self.confusion.to_dict(list(self.segmenter.class_names))
        return {
            'messages': {self.topics[role]: self.received[role] for role in self.topics},
            'frames': frames,
            'warnings': dict(self.warnings),
            'metrics': metrics,
            'miou': None if metrics is None else metrics['miou'],
            'latency_ms': {
                'count': len(self.latencies),
                'p50': percentile_ms(self.latencies, 50),
                'p95': percentile_ms(self.latencies, 95),
                'mean': (float(np.mean(self.latencies) * 1000.0) if self.latencies
                         else None),
            },
        }


def _feed(reader: BagReader, evaluator: BagEvaluator, bar: Any) -> Tuple[bool, Optional[str]]:
    """Feed the evaluator's topics from ``reader``; returns ``(hit damage, error or None)``."""
    try:
        for message in reader.messages(evaluator.topics.values()):
            bar.update(1)
            role = evaluator.role_of[message.topic]
            try:
                msg = reader.deserialize(message)
            except MessageDecodeError:
                evaluator.received[role] += 1
                evaluator.rejected[role]['deserialize_error'] += 1
                continue
            evaluator.add(role, msg, message.timestamp)
    except BagReadError as err:
        return True, str(err)
    except EvalError as err:
        return False, str(err)
    return False, None


def read_intrinsics(reader: BagReader, topic: str) -> Optional[IntrinsicsTimeline]:
    """Every camera_info on ``topic`` by header stamp (None when the bag lacks the topic).

    A damaged bag yields the messages readable before the damage.
    """
    if not topic or topic not in reader.topics:
        return None
    timeline = IntrinsicsTimeline()
    try:
        for message in reader.messages([topic]):
            try:
                msg = reader.deserialize(message)
            except MessageDecodeError:
                timeline.malformed += 1
                continue
            timeline.add(stamp_ns(msg), msg)
    except BagReadError:
        pass  # the main pass reports the damage
    return timeline


def evaluate_bag(bag: Path, segmenter: Any, rgb_topic: str, aux_topic: str,
                 label_topic: Optional[str] = None, output_bag: Optional[Path] = None,
                 storage: str = 'sqlite3', slop: float = DEFAULTS['sync_slop'],
                 queue_size: int = DEFAULTS['sync_queue_size'], label_match: str = 'exact',
                 mask_topic: str = MASK_TOPIC, color_topic: str = COLOR_TOPIC,
                 progress: Optional[bool] = None,
                 camera_info_topic: str = CAMERA_INFO_TOPIC,
                 hha_gravity_smoothing: float = 0.0) -> Dict[str, Any]:
    """Evaluate ``segmenter`` on a bag; never raises for a damaged bag.

    Returns:
        The report dict; ``report['error']`` is set (and ``truncated`` for damage) when the
        run could not finish, with every frame read before the problem evaluated.

    Raises:
        FileNotFoundError: The bag does not exist.
        BagOpenError: The bag cannot be opened at all.
        UnknownTopicError: A topic is not in the bag (the message lists the bag's topics).
        FileExistsError: ``output_bag`` exists.
    """
    topics = {RGB: rgb_topic, AUX: aux_topic}
    if label_topic:
        topics[LABEL] = label_topic
    if len(set(topics.values())) != len(topics):
        raise ValueError(f'topics must differ, got {topics}')
    with BagReader(bag) as reader:
        reader.require_topics(topics.values(), IMAGE_TYPE)
        # The writer closes on every path, so a failing run still leaves a complete bag.
        with (BagWriter(output_bag, storage) if output_bag is not None
              else contextlib.nullcontext()) as writer:
            intrinsics = (read_intrinsics(reader, camera_info_topic)
                          if segmenter.aux_modality == 'hha' else None)
            evaluator = BagEvaluator(segmenter, topics, slop, queue_size, label_match, writer,
                                     mask_topic, color_topic, intrinsics, hha_gravity_smoothing)
            total = sum(reader.counts.get(t, 0) for t in topics.values())
            with tqdm(total=total, unit='msg', desc=Path(bag).name, disable=progress is False
                      or (progress is None and not sys.stderr.isatty())) as bar:
                damaged, error = _feed(reader, evaluator, bar)
            evaluator.finish()
        truncated = damaged or reader.damage is not None
        if truncated and error is None:
            error = f'bag {bag} is damaged: {reader.damage}'
        report = {
            'bag': str(bag),
            'storage': reader.storage,
            'topics': topics,
            'truncated': truncated,
            'error': error,
        }
        report.update(evaluator.report())
        report['output_bag'] = None if output_bag is None else {
            'path': str(output_bag), 'storage': storage,
            'topics': dict(writer.counts)}
        return report


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-bag-eval``."""
    parser = argparse.ArgumentParser(
        prog='smmcl-bag-eval', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('bag', type=Path, help='rosbag2 directory, .db3 or .mcap file')
    parser.add_argument('--checkpoint', type=Path, required=True, help='smmcl checkpoint')
    parser.add_argument('--rgb-topic', default='/camera/color/image_raw')
    parser.add_argument('--aux-topic', default='/camera/aux/image_raw')
    parser.add_argument('--label-topic', default='',
                        help='mono8 ground-truth topic (train ids); empty = no metrics')
    parser.add_argument('--label-match', choices=('exact', 'sync'), default='exact',
                        help='labels matched by exactly the RGB stamp, or by the synchroniser')
    parser.add_argument('--output-bag', type=Path, default=None,
                        help='write masks (mono8) and colour masks (rgb8) to this new bag')
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3',
                        help='storage of --output-bag')
    parser.add_argument('--mask-topic', default=MASK_TOPIC)
    parser.add_argument('--color-topic', default=COLOR_TOPIC, help="'' = no colour masks")
    parser.add_argument('--report', type=Path, default=None,
                        help='JSON report path (default: print to stdout)')
    parser.add_argument('--slop', type=float, default=DEFAULTS['sync_slop'],
                        help='synchroniser slop in seconds (node parameter sync_slop)')
    parser.add_argument('--queue-size', type=int, default=DEFAULTS['sync_queue_size'],
                        help='synchroniser queue size (node parameter sync_queue_size)')
    parser.add_argument('--camera-info-topic', default=CAMERA_INFO_TOPIC,
                        help='intrinsics of the aux depth, for HHA checkpoints')
    parser.add_argument('--hha-gravity-smoothing', type=float, default=0.0,
                        help='HHA checkpoints: as the node parameter hha_gravity_smoothing')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'bf16'), default='fp32')
    parser.add_argument('--backend', default='auto',
                        help='inference engine: auto (fastest installed), torch, openvino, '
                        'onnxruntime, tensorrt')
    parser.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')
    return parser


def _write_report(report: Dict[str, Any], path: Optional[Path]) -> None:
    text = json.dumps(report, indent=2)
    if path is None:
        print(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + '\n')


def _summary(report: Dict[str, Any]) -> str:
    frames = report['frames']
    latency = report['latency_ms']
    parts = [f"{frames['evaluated']} frames evaluated ({frames['paired']} paired, "
             f"{frames['rejected']} rejected)"]
    if report['miou'] is not None:
        parts.append(f"mIoU {report['miou']:.4f} over {frames['with_label']} labelled frames")
    if latency['p50'] is not None:
        parts.append(f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    return '; '.join(parts)


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
        from smmcl_core.segmenter import Segmenter  # torch import only past argument checks
        segmenter = Segmenter.from_checkpoint(args.checkpoint, device=args.device,
                                              precision=args.precision, backend=args.backend)
        base.update(backend=segmenter.backend, precision=segmenter.precision)
        report = evaluate_bag(
            args.bag, segmenter, args.rgb_topic, args.aux_topic, args.label_topic or None,
            args.output_bag, args.storage, args.slop, args.queue_size, args.label_match,
            args.mask_topic, args.color_topic, progress=False if args.no_progress else None,
            camera_info_topic=args.camera_info_topic,
            hha_gravity_smoothing=args.hha_gravity_smoothing)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        # UnknownTopicError / BagOpenError are RuntimeErrors; checkpoint errors ValueErrors.
        message = str(err) if not isinstance(err, KeyError) else str(err.args[0])
        print(f'smmcl-bag-eval: error: {message}', file=sys.stderr)
        kind = 'unknown_topic' if isinstance(err, UnknownTopicError) else type(err).__name__
        if args.report is not None:
            _write_report(dict(base, error=message, error_kind=kind, truncated=False),
                          args.report)
        return 2
    report = dict(base, **report)
    _write_report(report, args.report)
    print(f'smmcl-bag-eval: {_summary(report)}', file=sys.stderr)
    if report['error'] is not None:
        print(f"smmcl-bag-eval: error: {report['error']}", file=sys.stderr)
        return 1 if report['truncated'] else 2
    if report['frames']['evaluated'] == 0:
        print('smmcl-bag-eval: error: no frame could be evaluated (check the topics, --slop '
              'and the rejected reasons in the report)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

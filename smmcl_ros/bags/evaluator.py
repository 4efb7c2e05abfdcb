"""``smmcl-bag-eval``'s engine: a bag's messages through the node's frame pipeline, scored.

Messages go through the same code as in the node: decoded with
:mod:`smmcl_ros.messages.image_codec`, paired by header stamp by
:class:`~smmcl_ros.pipeline.assemble.FrameAssembler` (the node's stamp guard and synchroniser,
same ``--slop``/``--queue-size`` defaults as the node parameters), then segmented by
:class:`~smmcl_ros.pipeline.process.FrameProcessor` (the node's aux step: HHA encoding with the
recorded camera_info nearest in time, nearest-neighbour resize to the RGB size). Input problems
are counted under the node's reason names (``report['warnings']``).

Labels (mono8 train ids, ``ignore_index`` skipped) are matched to pairs either by exactly the
RGB header stamp (``exact``, the default) or as a third synchroniser input (``sync``).

With a points topic (``--points``) the output bag also gets each frame's semantic
``PointCloud2`` (:mod:`smmcl_ros.pipeline.cloud`, depth and HHA checkpoints fed depth, ``K``
from the camera_info topic), as the node publishes it with default parameters.
"""

from collections import Counter, OrderedDict
import contextlib
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from smmcl_ros import topics as names
from smmcl_ros.bags.bag_tf import check_extrinsic
from smmcl_ros.bags.errors import BagReadError, MessageDecodeError
from smmcl_ros.bags.messages import image_message, IMAGE_TYPE
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.bags.report import evaluator_report
from smmcl_ros.bags.writer import BagWriter
from smmcl_ros.messages import image_codec
from smmcl_ros.messages.pointcloud import pointcloud_bag_message, POINTCLOUD_TYPE
from smmcl_ros.node.params import DEFAULTS
from smmcl_ros.pipeline.assemble import AUX, FrameAssembler, RGB
from smmcl_ros.pipeline.aux import AuxPreparer, make_hha_encoder, MissingIntrinsicsError
from smmcl_ros.pipeline.cloud import CloudSource, NoCloud
from smmcl_ros.pipeline.frame import Frame, Stamped
from smmcl_ros.pipeline.intrinsics import IntrinsicsTimeline
from smmcl_ros.pipeline.points import CloudBuilder
from smmcl_ros.pipeline.process import FrameProcessor
from smmcl_ros.pipeline.stamps import header_ns

LABEL = 'label'
LABEL_ENCODINGS = ('mono8', '8UC1')
FATAL_REASONS = ('unknown_encoding', 'wrong_encoding')


class EvalError(RuntimeError):
    """Fatal problem (unsupported encoding, ...); frames before it are in the report."""


class BagEvaluator:
    """Streams bag messages through decode -> frame pipeline -> metrics/output bag.

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
        registration: ``smmcl_ros.pipeline.registration.AuxRegistration`` (None: aux taken as
            registered, resized nearest-neighbour when its size differs).
        points_topic: Output topic for the semantic clouds (``''`` = none; needs a writer and
            a depth or HHA checkpoint).
    """

    def __init__(self, segmenter: Any, topics: Dict[str, str], slop: float, queue_size: int,
                 label_match: str = 'exact', writer: Optional[BagWriter] = None,
                 mask_topic: str = names.BAG_MASK, color_topic: str = names.BAG_COLOR,
                 intrinsics: Optional[IntrinsicsTimeline] = None,
                 hha_gravity_smoothing: float = 0.0, registration: Any = None,
                 points_topic: str = '') -> None:
        if label_match not in ('exact', 'sync'):
            raise ValueError(f'label_match must be exact or sync, got {label_match!r}')
        if points_topic and (writer is None or segmenter.aux_modality not in ('depth', 'hha')):
            raise ValueError(f'--points needs --output-bag and a depth or HHA checkpoint, got '
                             f'a {segmenter.aux_modality} checkpoint'
                             + ('' if writer is not None else ' and no output bag'))
        self.points_topic = points_topic
        self.segmenter = segmenter
        self.topics = dict(topics)
        self.role_of = {topic: role for role, topic in self.topics.items()}
        self.has_labels = LABEL in self.topics
        self.label_match = label_match
        self.writer, self.mask_topic, self.color_topic = writer, mask_topic, color_topic
        extras = (LABEL,) if self.has_labels and label_match == 'sync' else ()
        self.ports = [RGB, AUX] + list(extras)
        self.assembler = FrameAssembler(slop, queue_size, self._on_set, self._warn,
                                        sources=self.topics, extras=extras)
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
        hha = None
        if segmenter.aux_modality == 'hha':
            hha = make_hha_encoder(hha_gravity_smoothing, getattr(segmenter, 'device', None))
        cloud = (CloudSource(CloudBuilder(np.asarray(segmenter.palette, np.uint8)), intrinsics)
                 if points_topic else None)
        self.processor = FrameProcessor(
            segmenter, AuxPreparer(segmenter.aux_modality, self._warn, intrinsics, hha,
                                   registration),
            cloud=cloud)
        self.confusion = None
        if self.has_labels:
            from smmcl_core.metrics import ConfusionMatrix
            self.confusion = ConfusionMatrix(int(segmenter.num_classes),
                                             int(segmenter.ignore_index))
        # exact label matching: pairs waiting for their label and labels waiting for a pair
        self._pending_pairs: 'OrderedDict[int, Frame]' = OrderedDict()
        self._pending_labels: 'OrderedDict[int, Stamped]' = OrderedDict()
        if writer is not None:
            writer.add_topic(mask_topic, IMAGE_TYPE)
            if color_topic:
                writer.add_topic(color_topic, IMAGE_TYPE)
            if points_topic:
                writer.add_topic(points_topic, POINTCLOUD_TYPE)

    def _warn(self, source: str, reason: str, detail: str, once: bool = False) -> None:
        self.warnings[reason] += 1

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
        item = Stamped(image, header_ns(msg), msg.header, timestamp)  # received: bag time
        if role == LABEL and self.label_match == 'exact':
            self.assembler.check_stamp(role, item.stamp_ns)
            self._add_exact_label(item)
        else:
            self.assembler.add(role, item)

    def _add_exact_label(self, label: Stamped) -> None:
        frame = self._pending_pairs.pop(label.stamp_ns, None)
        if frame is not None:
            self._evaluate(frame, label)
            return
        self._pending_labels[label.stamp_ns] = label
        while len(self._pending_labels) > self.queue_size:
            self._pending_labels.popitem(last=False)
            self.labels_unmatched += 1

    def _on_set(self, frame: Frame, *extras: Stamped) -> None:
        self.paired += 1
        for role in self.ports:
            self.used[role] += 1
        if extras:
            self._evaluate(frame, extras[0])
        elif self.has_labels:
            label = self._pending_labels.pop(frame.stamp_ns, None)
            if label is not None:
                self._evaluate(frame, label)
                return
            self._pending_pairs[frame.stamp_ns] = frame
            while len(self._pending_pairs) > self.queue_size:
                _, old = self._pending_pairs.popitem(last=False)
                self._evaluate(old, None)
        else:
            self._evaluate(frame, None)

    def finish(self) -> None:
        """Evaluate pairs still waiting for a label (without one)."""
        while self._pending_pairs:
            _, frame = self._pending_pairs.popitem(last=False)
            self._evaluate(frame, None)
        self.labels_unmatched += len(self._pending_labels)
        self._pending_labels.clear()

    # ---- inference -----------------------------------------------------------------------
    def _evaluate(self, frame: Frame, label: Optional[Stamped]) -> None:
        if label is not None and label.image.shape[:2] != frame.size:
            self.rejected[LABEL]['label_size_mismatch'] += 1
            label = None
        try:
            outputs = self.processor.run(frame, confidence=bool(self.points_topic))
        except MissingIntrinsicsError as err:
            raise EvalError(f'the checkpoint takes HHA and {self.topics[AUX]} carries depth, '
                            'but the bag has no camera_info topic for it '
                            f'(--camera-info-topic): {err}') from err
        if outputs is None:
            return  # the aux could not be prepared (counted in warnings)
        mask = outputs.get('mask')
        self.latencies.append(outputs.result.inference_s)
        self.evaluated += 1
        if label is not None:
            import torch  # the metrics work on tensors; torch is loaded with the segmenter
            self.confusion.update(torch.from_numpy(mask.astype(np.int64)),
                                  torch.from_numpy(np.asarray(label.image, np.int64)))
            self.with_label += 1
        if self.writer is not None:
            store, timestamp = self.writer.typestore, int(frame.received)
            self.writer.write(self.mask_topic,
                              image_message(store, mask, 'mono8', frame.header), timestamp)
            if self.color_topic:
                self.writer.write(self.color_topic, image_message(
                    store, outputs.get('color'), 'rgb8', frame.header), timestamp)
            if self.points_topic:
                self._write_points(outputs, frame, timestamp)

    def _write_points(self, outputs: Any, frame: Frame, timestamp: int) -> None:
        try:
            cloud = outputs.get('points')
        except NoCloud as err:
            self._warn(self.points_topic, err.reason, err.detail)
            return
        self.writer.write(self.points_topic, pointcloud_bag_message(
            self.writer.typestore, cloud, frame.header), timestamp)

    def report(self) -> Dict[str, Any]:
        """The JSON-ready summary of everything fed so far."""
        return evaluator_report(self)


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
            timeline.add(header_ns(msg), msg)
    except BagReadError:
        pass  # the main pass reports the damage
    return timeline


def evaluate_bag(bag: Path, segmenter: Any, rgb_topic: str, aux_topic: str,
                 label_topic: Optional[str] = None, output_bag: Optional[Path] = None,
                 storage: str = 'sqlite3', slop: float = DEFAULTS['sync_slop'],
                 queue_size: int = DEFAULTS['sync_queue_size'], label_match: str = 'exact',
                 mask_topic: str = names.BAG_MASK, color_topic: str = names.BAG_COLOR,
                 progress: Optional[bool] = None,
                 camera_info_topic: str = names.CAMERA_RGB_INFO,
                 hha_gravity_smoothing: float = 0.0, registration: Any = None,
                 aux_camera_info_topic: str = '', points_topic: str = '') -> Dict[str, Any]:
    """Evaluate ``segmenter`` on a bag; never raises for a damaged bag.

    ``registration`` (an ``AuxRegistration``) brings the aux image into the RGB frame as the
    node's ``aux_registration`` does; depth registration reads the depth camera's intrinsics
    from ``aux_camera_info_topic`` and the RGB camera's from ``camera_info_topic``, and, without
    ``aux_to_rgb``, the extrinsic from the bag's ``/tf_static`` (:mod:`smmcl_ros.bags.bag_tf`).

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
                          if segmenter.aux_modality == 'hha' or points_topic else None)
            if registration is not None and registration.needs_intrinsics:
                intrinsics, rgb_intrinsics = (read_intrinsics(reader, aux_camera_info_topic),
                                              read_intrinsics(reader, camera_info_topic))
                for topic, found in ((aux_camera_info_topic, intrinsics),
                                     (camera_info_topic, rgb_intrinsics)):
                    if found is None:
                        raise ValueError(f'aux registration depth needs camera_info of both '
                                         f'cameras; the bag has no topic {topic!r} '
                                         '(--aux-camera-info-topic, --camera-info-topic)')
                registration.rgb_intrinsics = rgb_intrinsics
                if registration.needs_tf_static:  # no --aux-to-rgb: the bag's /tf_static
                    check_extrinsic(reader, registration, rgb_topic, aux_topic)
            evaluator = BagEvaluator(segmenter, topics, slop, queue_size, label_match, writer,
                                     mask_topic, color_topic, intrinsics, hha_gravity_smoothing,
                                     registration, points_topic)
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

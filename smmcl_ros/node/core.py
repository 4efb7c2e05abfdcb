"""``smmcl_segmentation``'s rclpy wiring around :mod:`smmcl_ros.pipeline` (docs/DESIGN.md).

Subscription callbacks decode images (bad input is counted and logged, never reaches the
synchroniser) and hand them to the pipeline's ``FrameAssembler``; its frames go to a
``LatestFrameWorker`` whose thread runs ``FrameProcessor`` and publishes the outputs with the
RGB header, plus ``rgb/camera_info`` relayed as ``segmentation/camera_info``. Input QoS follows
the publishers (:mod:`smmcl_ros.node.qos`); outputs are reliable with a small depth.
``segmentation/points`` (depth and HHA checkpoints, ``K`` from ``aux/camera_info``) is built,
like the optional images, only while someone subscribes; ``segmentation/label_info``
(``vision_msgs``, when installed) and the JSON ``segmentation/labels`` are latched.

:class:`SegmentationCore` has configure / activate / deactivate / cleanup steps;
:class:`smmcl_ros.node.node.SegmentationNode` runs them all at start-up,
:class:`smmcl_ros.node.lifecycle.SegmentationLifecycleNode` on lifecycle transitions.
"""

import time
from typing import Any, Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from smmcl_core.utils.memory import release_free_memory
from smmcl_ros import topics
from smmcl_ros.messages import image_codec
from smmcl_ros.messages.camera_info import restamped
from smmcl_ros.node.camera_models import CameraModelInputs, tf_message_type
from smmcl_ros.node.diagnostics import diagnostic_array
from smmcl_ros.node.model import (load_segmenter, resolve_class_names, resolve_modality,
                                  resolve_points, resolve_registration)
from smmcl_ros.node.params import declare, NodeParams, read
from smmcl_ros.node.problems import ProblemLog
from smmcl_ros.node.published import CLOUD_MODALITIES, latched_messages, PUBLISHED
from smmcl_ros.node.qos import AdaptiveSubscription, output_profile, reliable
from smmcl_ros.pipeline.assemble import AUX, AuxWatch, FrameAssembler, RGB
from smmcl_ros.pipeline.aux import AuxPreparer, make_hha_encoder
from smmcl_ros.pipeline.cloud import CloudSource, NoCloud
from smmcl_ros.pipeline.frame import Frame, Stamped
from smmcl_ros.pipeline.intrinsics import IntrinsicsCache
from smmcl_ros.pipeline.points import CloudBuilder
from smmcl_ros.pipeline.process import FrameProcessor
from smmcl_ros.pipeline.relay import StampedStore
from smmcl_ros.pipeline.slot import LatestFrameWorker
from smmcl_ros.pipeline.stamps import header_ns
from smmcl_ros.pipeline.stats import NodeStats

QOS_REFRESH_S = 0.25  # how often inputs re-check their publishers (a local graph query)


class SegmentationCore(CameraModelInputs):
    """Synchronises RGB + aux images, segments the newest pair, publishes masks.

    A mixin for an rclpy ``Node`` or ``LifecycleNode`` (it calls their ``create_*`` methods):
    call :meth:`_init_core` from ``__init__``, then :meth:`configure` (read parameters, load the
    model), :meth:`activate` (publishers, subscriptions, timers, inference thread),
    :meth:`deactivate` (undo activate: nothing is published afterwards) and :meth:`cleanup`
    (free the model). Transitions run in the executor thread, like the message callbacks.
    """

    def _init_core(self) -> None:
        declare(self)
        self.params: Optional[NodeParams] = None
        self.segmenter = None
        self.stats = NodeStats()
        self._inputs: Dict[str, AdaptiveSubscription] = {}
        self._core_timers: List[Any] = []
        self._core_publishers: List[Any] = []
        self._worker: Optional[LatestFrameWorker] = None
        self._tf_subscription = None

    @property
    def active(self) -> bool:
        """Subscribed and publishing."""
        return self._worker is not None

    # ---- transitions -----------------------------------------------------------------------

    def configure(self) -> None:
        """Read the parameters and load the model.

        Raises:
            ParameterError, ValueError, OSError, KeyError, RuntimeError: Bad parameters or
                checkpoint; nothing is kept loaded.
        """
        self.params = read(self)
        self._problem = ProblemLog(self.get_logger(), lambda: self.stats,
                                   self.params.log_throttle_sec)
        segmenter = load_segmenter(self.params)
        self.modality = resolve_modality(self.params, segmenter)
        self.class_names = resolve_class_names(self.params, segmenter)
        self.registration = resolve_registration(self.params, self.modality)
        if self.registration.needs_tf_static:
            tf_message_type()  # fail at configure when tf2_msgs is missing
        # None: no segmentation/points
        self.points = resolve_points(self.params, self.modality, self.class_names)
        self.segmenter = segmenter
        self.palette = np.asarray(segmenter.palette, np.uint8)  # (K,3)
        self.device = str(segmenter.device)

    def cleanup(self) -> None:
        """Free the model (after :meth:`deactivate`)."""
        cuda = self.segmenter is not None and str(self.segmenter.device).startswith('cuda')
        self.segmenter = None
        release_free_memory(cuda)  # freed heap (and CUDA cache) back (smmcl_core.utils.memory)

    def activate(self) -> None:
        """Create publishers, the pipeline, subscriptions and timers; start inference."""
        params = self.params
        self.stats = NodeStats()
        qos = output_profile(params.output_qos)
        self._pubs = {name: self._publisher(msg_type, topic, qos)
                      for name, (msg_type, topic, _, flag) in PUBLISHED.items()
                      if (not flag or getattr(params, flag))
                      and (name != 'points' or self.points is not None)}
        if params.publish_points and self.points is None:
            self.get_logger().info(
                f'{topics.POINTS}: not published: the checkpoint takes {self.modality} '
                f'images, a cloud needs depth ({"/".join(CLOUD_MODALITIES)} checkpoints)')
        self._pub_info = self._publisher(CameraInfo, topics.CAMERA_INFO, qos)
        latched = reliable(1, latched=True)
        for msg_type, topic, msg in latched_messages(
                self.class_names, self.palette, params.label_info_threshold,
                self.get_clock().now().to_msg(), self.get_logger().info):
            self._publisher(msg_type, topic, latched).publish(msg)
        self._pub_diag = self._publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)

        self._pipeline_setup()
        log = self.get_logger().info
        self._inputs = {
            topic: AdaptiveSubscription(self, msg_type, topic, callback, params.qos, log)
            for topic, msg_type, callback in ((topics.RGB, Image, self._on_rgb),
                                              (topics.AUX, Image, self._on_aux),
                                              (topics.RGB_INFO, CameraInfo, self._on_info))}
        if self.modality == 'hha' or self.registration.needs_intrinsics or self.points is not None:
            # HHA, depth registration and the point cloud need the depth camera's intrinsics
            self._inputs[topics.AUX_INFO] = AdaptiveSubscription(
                self, CameraInfo, topics.AUX_INFO, self._on_aux_info, params.qos, log)
        if self.registration.needs_tf_static:
            self._subscribe_tf_static()
        # The refresh also keeps the publisher counts in /diagnostics current for fixed QoS.
        self._core_timers = [
            self.create_timer(params.diagnostics_period, self._publish_diagnostics),
            self.create_timer(QOS_REFRESH_S, self._refresh_inputs)]
        self.get_logger().info(
            f'ready: {len(self.class_names)} classes, aux={self.modality}, device={self.device}, '
            f'backend={self.segmenter.backend}, precision={self.segmenter.precision}, '
            f'qos={params.qos}, output_qos={params.output_qos}, '
            f'on_missing_aux={params.on_missing_aux}, aux_registration={params.aux_registration}')

    def _pipeline_setup(self) -> None:
        """The ROS-free pipeline of this activation (:mod:`smmcl_ros.pipeline`)."""
        params = self.params
        self._watch = AuxWatch(params.aux_timeout)
        self._assembler = FrameAssembler(params.sync_slop, params.sync_queue_size,
                                         self._on_frame, self._problem,
                                         sources={RGB: topics.RGB, AUX: topics.AUX})
        self._infos = StampedStore()  # rgb/camera_info by stamp
        self._intrinsics = IntrinsicsCache()  # aux/camera_info
        self._rgb_intrinsics = IntrinsicsCache()  # rgb/camera_info (depth registration)
        self.registration.rgb_intrinsics = self._rgb_intrinsics
        hha = (make_hha_encoder(params.hha_gravity_smoothing, self.segmenter.device)
               if self.modality == 'hha' else None)
        aux = AuxPreparer(self.modality, self._problem, self._intrinsics, hha,
                          self.registration)
        cloud = (CloudSource(CloudBuilder(self.palette, self.points), self._intrinsics)
                 if self.points is not None else None)
        self._processor = FrameProcessor(self.segmenter, aux, params.overlay_alpha,
                                         self.palette, self.stats, cloud,
                                         params.confidence_encoding)
        self._worker = LatestFrameWorker(self._process, self._on_inference_error,
                                         lambda: self.stats.count('dropped'))
        self._worker.start()

    def deactivate(self) -> None:
        """Stop subscriptions, timers and the inference thread, then destroy the publishers.

        The frame being segmented is finished but not published.
        """
        for subscription in self._inputs.values():
            subscription.destroy()
        self._inputs = {}
        if self._tf_subscription is not None:
            self.destroy_subscription(self._tf_subscription)
            self._tf_subscription = None
        for timer in self._core_timers:
            self.destroy_timer(timer)
        self._core_timers = []
        if self._worker is not None:
            self._worker.stop(timeout=30.0)
            self._worker = None
        for pub in self._core_publishers:
            self.destroy_publisher(pub)
        self._core_publishers = []

    # ---- helpers ---------------------------------------------------------------------------

    def _publisher(self, msg_type: Any, topic: str, qos: Any) -> Any:
        pub = self.create_publisher(msg_type, topic, qos)
        self._core_publishers.append(pub)
        return pub

    def _refresh_inputs(self) -> None:
        for subscription in self._inputs.values():
            subscription.refresh()

    # ---- callbacks (executor thread) -------------------------------------------------------

    def _on_rgb(self, msg: Image) -> None:
        now = time.monotonic()
        self._watch.rgb_arrived(now)
        self.stats.count('rgb_in')
        try:
            rgb = image_codec.decode_rgb(msg)
        except image_codec.ImageDecodeError as err:
            self._problem(topics.RGB, err.reason, err.detail)
            return
        item = Stamped(rgb, header_ns(msg), msg.header, now)
        if self.params.on_missing_aux == 'rgb_only' and self._watch.stale(now):
            self._assembler.add_rgb_only(item)
        else:
            self._assembler.add(RGB, item)

    def _on_aux(self, msg: Image) -> None:
        now = time.monotonic()
        self.stats.count('aux_in')
        try:
            aux = image_codec.decode_aux(msg, self.modality)
        except image_codec.ImageDecodeError as err:
            self._problem(topics.AUX, err.reason, err.detail)
            return
        self._watch.aux_arrived(now)
        self._assembler.add(AUX, Stamped(aux, header_ns(msg), msg.header, now))

    def _on_frame(self, frame: Frame) -> None:
        """Assembler callback: only hand the frame to the worker (runs under the sync lock)."""
        self.stats.count('pairs')
        self._worker.offer(frame)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        if self._watch.became_silent(now):
            policy = ('segmenting RGB with an invalid aux image'
                      if self.params.on_missing_aux == 'rgb_only' else 'waiting for aux')
            self._problem(topics.AUX, 'aux_silent',
                          f'no valid aux image for > {self.params.aux_timeout} s; {policy}')
        self._pub_diag.publish(diagnostic_array(
            f'{self.get_name()}: segmentation', self.stats, self._watch, now, self.segmenter,
            self._inputs, self.get_clock().now().to_msg(),
            extra=[('aux_registration', self.registration.mode)]))

    # ---- inference thread ------------------------------------------------------------------

    def _on_inference_error(self, err: Exception) -> bool:
        if not self.context.ok():
            return False  # shutting down (SIGINT): the publishers are gone
        self._problem(topics.MODEL, 'inference_error', f'{type(err).__name__}: {err}')
        return True

    def _process(self, frame: Frame) -> None:
        wanted = [name for name, pub in self._pubs.items()
                  if name == 'mask' or pub.get_subscription_count() > 0]
        outputs = self._processor.run(
            frame, confidence='confidence' in wanted or 'points' in wanted)
        if outputs is None or self._worker is None or self._worker.stopping:
            return  # aux not ready (reported), or deactivating: publish nothing more
        header = frame.header
        for name in wanted:  # mask first: the camera_info relay follows it
            if name == 'points':
                self._publish_points(outputs, header)
                continue
            self._pubs[name].publish(PUBLISHED[name][2](outputs.get(name), header))
            if name == 'mask':
                info = self._infos.for_stamp(frame.stamp_ns)
                if info is not None:
                    self._pub_info.publish(restamped(info, header))
        self.stats.frame_done(time.monotonic() - frame.received, outputs.result.inference_s)

    def _publish_points(self, outputs: Any, header: Any) -> None:
        start = time.monotonic()
        try:
            cloud = outputs.get('points')
        except NoCloud as err:  # e.g. no aux/camera_info yet, an RGB-only frame
            self._problem(topics.POINTS, err.reason, f'{err.detail}; no cloud for this frame',
                          once=err.reason == 'no_depth')
            return
        msg = PUBLISHED['points'][2](cloud, header)
        self.stats.stage_done('points', time.monotonic() - start)
        self._pubs['points'].publish(msg)

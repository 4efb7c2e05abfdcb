"""``smmcl_segmentation``: RGB + depth/thermal semantic segmentation node.

Data flow::

    rgb/image --decode--+                                   +--> segmentation/mask (mono8)
                        +--> ApproximateTimeSynchronizer --> |   segmentation/color (rgb8)
    aux/image --decode--+        (newest pair slot)          +--> segmentation/overlay (rgb8)
                                  inference thread ---------->    segmentation/confidence (32FC1)

Images are decoded in the subscription callbacks (a strided view, no copy), so bad input is
rejected before it can reach the synchroniser. The synchroniser callback only stores the newest
pair in a one-slot mailbox; the inference thread takes it when it is free. A pair overwritten
before the thread took it is counted as dropped: frames are never queued, so latency stays
bounded by one inference when the model is slower than the cameras.

Every output copies the RGB header exactly and has the RGB resolution. An optional
``rgb/camera_info`` is republished as ``segmentation/camera_info`` with each mask's header.

Input QoS follows the publishers (``qos: auto``, see :mod:`smmcl_ros.qos`); outputs are reliable
with a small depth by default (``output_qos``), so default-QoS viewers such as rviz match them.

:class:`SegmentationCore` holds the model, publishers, subscriptions and inference thread with
configure / activate / deactivate / cleanup steps; :class:`SegmentationNode` runs them all at
start-up, :class:`smmcl_ros.lifecycle.SegmentationLifecycleNode` on lifecycle transitions.
"""

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from smmcl_core.visualize import colorize, overlay
from smmcl_ros import image_codec
from smmcl_ros.camera_info import CameraInfoError, IntrinsicsCache
from smmcl_ros.diagnostics import NodeStats
from smmcl_ros.params import declare, NodeParams, ParameterError, read
from smmcl_ros.qos import AdaptiveSubscription, output_profile
from smmcl_ros.render import labels_json
from smmcl_ros.shutdown import run_node
from smmcl_ros.sync import ApproximateTimeSynchronizer, stamp_ns

NODE_NAME = 'smmcl_segmentation'
RGB_TOPIC = 'rgb/image'
AUX_TOPIC = 'aux/image'
INFO_TOPIC = 'rgb/camera_info'
AUX_INFO_TOPIC = 'aux/camera_info'  # intrinsics of aux/image, for HHA checkpoints
RGB, AUX = 0, 1  # synchroniser ports
QOS_REFRESH_S = 0.25  # how often inputs re-check their publishers (a local graph query)
INFO_KEEP = 16  # camera_info messages kept, by stamp, to match the masks' stamps


def _load_segmenter(params: NodeParams):
    # Imported here so that --help style failures and parameter errors do not pay for torch.
    from smmcl_core.segmenter import Segmenter

    return Segmenter.from_checkpoint(params.checkpoint, device=params.device,
                                     precision=params.precision, backend=params.backend)


class _Frame:
    """A synchronised (or RGB-only) input waiting for inference."""

    __slots__ = ('rgb_msg', 'rgb', 'aux_msg', 'aux', 'received')

    def __init__(self, rgb_msg, rgb, aux_msg, aux, received):
        self.rgb_msg, self.rgb = rgb_msg, rgb  # rgb: uint8 (H,W,3) view of rgb_msg.data
        self.aux_msg, self.aux = aux_msg, aux  # aux: raw (H',W') or None (RGB only)
        self.received = received  # monotonic time the RGB message arrived


class SegmentationCore:
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
        self._loggers: Dict[Tuple[str, str], Any] = {}
        self._inputs: Dict[str, AdaptiveSubscription] = {}
        self._core_timers: List[Any] = []
        self._core_publishers: List[Any] = []
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()

    @property
    def active(self) -> bool:
        """Subscribed and publishing."""
        return self._worker is not None

    def configure(self) -> None:
        """Read the parameters and load the model.

        Raises:
            ParameterError, ValueError, OSError, KeyError, RuntimeError: Bad parameters or
                checkpoint; nothing is kept loaded.
        """
        self.params = read(self)
        segmenter = _load_segmenter(self.params)
        self.segmenter = segmenter
        try:
            self.modality = self._resolve_modality()
            self.class_names = self._resolve_class_names()
        except ParameterError:
            self.segmenter = None
            raise
        self.palette = np.asarray(self.segmenter.palette, np.uint8)  # (K,3)
        self.device = str(self.segmenter.device)

    def cleanup(self) -> None:
        """Free the model (after :meth:`deactivate`)."""
        device = None if self.segmenter is None else str(self.segmenter.device)
        self.segmenter = None
        import gc

        gc.collect()
        if device is not None and device.startswith('cuda'):
            import torch

            torch.cuda.empty_cache()

    def _publisher(self, msg_type: Any, topic: str, qos: Any) -> Any:
        pub = self.create_publisher(msg_type, topic, qos)
        self._core_publishers.append(pub)
        return pub

    def activate(self) -> None:
        """Create publishers, subscriptions and timers; start the inference thread."""
        self.stats = NodeStats()
        qos = output_profile(self.params.output_qos)
        self._pub_mask = self._publisher(Image, 'segmentation/mask', qos)
        self._pub_color = (self._publisher(Image, 'segmentation/color', qos)
                           if self.params.publish_color else None)
        self._pub_overlay = (self._publisher(Image, 'segmentation/overlay', qos)
                             if self.params.publish_overlay else None)
        self._pub_conf = (self._publisher(Image, 'segmentation/confidence', qos)
                          if self.params.publish_confidence else None)
        self._pub_info = self._publisher(CameraInfo, 'segmentation/camera_info', qos)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_labels = self._publisher(String, 'segmentation/labels', latched)
        self._pub_labels.publish(String(data=labels_json(self.class_names, self.palette)))
        self._publish_label_info(latched)
        self._pub_diag = self._publisher(DiagnosticArray, '/diagnostics', 10)

        self._sync = ApproximateTimeSynchronizer(
            2, self.params.sync_queue_size, self.params.sync_slop, self._on_pair)
        self._last_stamp = {RGB_TOPIC: None, AUX_TOPIC: None}
        self._start = time.monotonic()
        self._last_aux: Optional[float] = None  # monotonic receive time of the last good aux
        self._last_rgb: Optional[float] = None
        self._aux_was_stale = False
        self._infos: Dict[int, CameraInfo] = {}  # stamp -> rgb/camera_info
        self._info_lock = threading.Lock()
        self._intrinsics = IntrinsicsCache()  # aux/camera_info, HHA checkpoints
        self._hha = None  # HHA checkpoints: depth is encoded per frame in the inference thread
        if self.modality == 'hha':
            from smmcl_core.data.hha import HHAEncoder
            self._hha = HHAEncoder(self.params.hha_gravity_smoothing,
                                   self.segmenter.device if self.device.startswith('cuda')
                                   else None)

        self._slot: Optional[_Frame] = None
        self._slot_cv = threading.Condition()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run_inference, name='smmcl_inference',
                                        daemon=True)
        self._worker.start()

        log = self.get_logger().info
        self._inputs = {
            topic: AdaptiveSubscription(self, msg_type, topic, callback, self.params.qos, log)
            for topic, msg_type, callback in ((RGB_TOPIC, Image, self._on_rgb),
                                              (AUX_TOPIC, Image, self._on_aux),
                                              (INFO_TOPIC, CameraInfo, self._on_info))}
        if self._hha is not None:  # HHA checkpoints: the depth camera's intrinsics
            self._inputs[AUX_INFO_TOPIC] = AdaptiveSubscription(
                self, CameraInfo, AUX_INFO_TOPIC, self._on_aux_info, self.params.qos, log)
        # The refresh also keeps the publisher counts in /diagnostics current for fixed QoS.
        self._core_timers = [
            self.create_timer(self.params.diagnostics_period, self._publish_diagnostics),
            self.create_timer(QOS_REFRESH_S, self._refresh_inputs)]
        self.get_logger().info(
            f'ready: {len(self.class_names)} classes, aux={self.modality}, device={self.device}, '
            f'backend={self.segmenter.backend}, precision={self.segmenter.precision}, '
            f'qos={self.params.qos}, '
            f'output_qos={self.params.output_qos}, on_missing_aux={self.params.on_missing_aux}')

    def deactivate(self) -> None:
        """Stop subscriptions, timers and the inference thread, then destroy the publishers.

        The frame being segmented is finished but not published.
        """
        for subscription in self._inputs.values():
            subscription.destroy()
        self._inputs = {}
        for timer in self._core_timers:
            self.destroy_timer(timer)
        self._core_timers = []
        if self._worker is not None:
            self._stop.set()
            with self._slot_cv:
                self._slot_cv.notify_all()
            self._worker.join(timeout=30.0)
            self._worker = None
        for pub in self._core_publishers:
            self.destroy_publisher(pub)
        self._core_publishers = []

    def _refresh_inputs(self) -> None:
        for subscription in self._inputs.values():
            subscription.refresh()

    # ---- configuration -------------------------------------------------------------------

    def _resolve_modality(self) -> str:
        checkpoint_modality = str(self.segmenter.aux_modality)
        wanted = self.params.aux_modality or checkpoint_modality
        if wanted not in image_codec.AUX_ENCODINGS:
            raise ParameterError(
                f'aux modality {wanted!r} (checkpoint {self.params.checkpoint}) is not supported '
                f'by the node; valid: {list(image_codec.AUX_ENCODINGS)}')
        if self.params.aux_modality and wanted != checkpoint_modality:
            raise ParameterError(
                f"parameter 'aux_modality' = {wanted!r} but checkpoint {self.params.checkpoint} "
                f'was trained on {checkpoint_modality!r}')
        return wanted

    def _resolve_class_names(self) -> Tuple[str, ...]:
        names = tuple(self.segmenter.class_names)
        if self.params.class_names:
            if len(self.params.class_names) != len(names):
                raise ParameterError(
                    f"parameter 'class_names' has {len(self.params.class_names)} names but "
                    f'checkpoint {self.params.checkpoint} has {len(names)} classes')
            names = tuple(self.params.class_names)
        return names

    def _publish_label_info(self, qos: QoSProfile) -> None:
        try:
            from vision_msgs.msg import LabelInfo, VisionClass
        except ImportError:
            return  # optional: the JSON labels topic carries the same information
        info = LabelInfo()
        info.class_map = [VisionClass(class_id=i, class_name=n)
                          for i, n in enumerate(self.class_names)]
        self._pub_label_info = self._publisher(LabelInfo, 'segmentation/label_info', qos)
        self._pub_label_info.publish(info)

    # ---- input problems --------------------------------------------------------------------

    def _problem(self, topic: str, reason: str, detail: str, once: bool = False) -> None:
        """Count an input problem and log it, throttled per (topic, reason)."""
        self.stats.issue(topic, reason)
        key = (topic, reason)
        if key not in self._loggers:
            # rclpy throttles per logger object and call site: one child logger per key keeps
            # one noisy reason from hiding another.
            self._loggers[key] = self.get_logger().get_child(
                f'{topic.replace("/", "_")}_{reason}')
        logger = self._loggers[key]
        if once:
            logger.warning(f'{topic}: {reason}: {detail}', once=True)
        else:
            logger.warning(f'{topic}: {reason}: {detail}',
                           throttle_duration_sec=self.params.log_throttle_sec)

    def _check_stamp(self, topic: str, msg: Any) -> int:
        stamp = stamp_ns(msg)
        last = self._last_stamp[topic]
        if last is not None and stamp < last:
            # A looping bag or a restarted driver: accept the new timeline instead of stalling.
            dropped = self._sync.discard_after(stamp)
            self._problem(topic, 'stamp_backwards',
                          f'stamp went back {(last - stamp) / 1e9:.3f} s; dropped {dropped} '
                          'queued message(s) from the old timeline')
        self._last_stamp[topic] = stamp
        return stamp

    # ---- callbacks (executor thread) -------------------------------------------------------

    def _aux_stale(self, now: float) -> bool:
        since = self._last_aux if self._last_aux is not None else self._start
        return now - since > self.params.aux_timeout

    def _on_rgb(self, msg: Image) -> None:
        now = time.monotonic()
        self._last_rgb = now
        self.stats.count('rgb_in')
        try:
            rgb = image_codec.decode_rgb(msg)
        except image_codec.ImageDecodeError as err:
            self._problem(RGB_TOPIC, err.reason, err.detail)
            return
        stamp = self._check_stamp(RGB_TOPIC, msg)
        if self.params.on_missing_aux == 'rgb_only' and self._aux_stale(now):
            self.stats.count('pairs')
            self._offer(_Frame(msg, rgb, None, None, now))
            return
        self._sync.add(RGB, stamp, (msg, rgb, now))

    def _on_aux(self, msg: Image) -> None:
        now = time.monotonic()
        self.stats.count('aux_in')
        try:
            aux = image_codec.decode_aux(msg, self.modality)
        except image_codec.ImageDecodeError as err:
            self._problem(AUX_TOPIC, err.reason, err.detail)
            return
        stamp = self._check_stamp(AUX_TOPIC, msg)
        self._last_aux = now
        self._sync.add(AUX, stamp, (msg, aux, now))

    def _on_aux_info(self, msg: CameraInfo) -> None:
        try:
            changed = self._intrinsics.update(msg)
        except CameraInfoError as err:
            self._problem(AUX_INFO_TOPIC, err.reason, err.detail)
            return
        if changed:
            K = self._intrinsics.current.K
            self.get_logger().info(
                f'{AUX_INFO_TOPIC}: intrinsics fx={K[0, 0]:.2f} fy={K[1, 1]:.2f} '
                f'cx={K[0, 2]:.2f} cy={K[1, 2]:.2f} for HHA encoding')

    def _on_info(self, msg: CameraInfo) -> None:
        self.stats.count('camera_info_in')
        with self._info_lock:
            self._infos[stamp_ns(msg)] = msg
            while len(self._infos) > INFO_KEEP:
                del self._infos[min(self._infos)]

    def _info_for(self, header: Any) -> Optional[CameraInfo]:
        """rgb/camera_info for a mask: the one with the RGB stamp, else the newest one."""
        with self._info_lock:
            if not self._infos:
                return None
            stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
            source = self._infos.get(stamp, self._infos[max(self._infos)])
        info = CameraInfo()
        for name in info.get_fields_and_field_types():
            setattr(info, name, getattr(source, name))
        info.header = header
        return info

    def _on_pair(self, rgb_item, aux_item) -> None:
        """Synchroniser callback: only store the newest pair (runs under the sync lock)."""
        rgb_msg, rgb, received = rgb_item
        aux_msg, aux, _ = aux_item
        self.stats.count('pairs')
        self._offer(_Frame(rgb_msg, rgb, aux_msg, aux, received))

    def _offer(self, frame: _Frame) -> None:
        with self._slot_cv:
            if self._slot is not None:
                self.stats.count('dropped')  # the model was busy: keep only the newest
            self._slot = frame
            self._slot_cv.notify()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        aux_age = None if self._last_aux is None else now - self._last_aux
        # Silence only matters while RGB flows; with no camera at all there is nothing to say.
        rgb_flowing = (self._last_rgb is not None
                       and now - self._last_rgb <= self.params.aux_timeout)
        stale = rgb_flowing and self._aux_stale(now)
        if stale and not self._aux_was_stale:
            policy = ('segmenting RGB with an invalid aux image'
                      if self.params.on_missing_aux == 'rgb_only' else 'waiting for aux')
            self._problem(AUX_TOPIC, 'aux_silent',
                          f'no valid aux image for > {self.params.aux_timeout} s; {policy}')
        self._aux_was_stale = stale
        level, message, values = self.stats.snapshot(aux_age, stale, self.device)
        values += [('backend', self.segmenter.backend), ('precision', self.segmenter.precision)]
        for topic, subscription in self._inputs.items():
            values += [(f'qos.{topic}', subscription.describe()),
                       (f'publishers.{topic}', str(subscription.publishers))]
        status = DiagnosticStatus(level=bytes([level]), name=f'{self.get_name()}: segmentation',
                                  message=message, hardware_id=self.device,
                                  values=[KeyValue(key=k, value=v) for k, v in values])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(array)

    # ---- inference thread ------------------------------------------------------------------

    def _run_inference(self) -> None:
        while not self._stop.is_set():
            with self._slot_cv:
                if self._slot is None:
                    self._slot_cv.wait(timeout=0.1)
                frame, self._slot = self._slot, None
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception as err:  # never let one frame kill the thread
                if not self.context.ok():
                    break  # shutting down (SIGINT): the publishers are gone
                self._problem('model', 'inference_error', f'{type(err).__name__}: {err}')

    def _aux_for(self, frame: _Frame) -> Optional[np.ndarray]:
        """The raw aux image at RGB resolution (an all-invalid one in RGB-only mode).

        None when an HHA checkpoint's depth cannot be encoded (no valid camera_info yet).
        """
        height, width = frame.rgb.shape[:2]
        if frame.aux is None:
            self.stats.count('rgb_only')
            if self._hha is not None:
                from smmcl_core.data.hha import missing_depth_hha
                return missing_depth_hha(height, width)
            dtype = np.uint16 if self.modality == 'depth' else np.uint8
            return np.zeros((height, width), dtype)  # 0 = invalid depth / coldest thermal
        aux = frame.aux
        if aux.dtype.kind == 'f' and not np.isfinite(aux).all():
            self._problem(AUX_TOPIC, 'nonfinite_depth',
                          'NaN/inf pixels treated as invalid (0)')
        if self._hha is not None and aux.ndim == 2:  # depth: HHA at its own resolution
            try:
                K = self._intrinsics.lookup(*aux.shape)
            except CameraInfoError as err:
                self._problem(AUX_INFO_TOPIC, err.reason, f'{err.detail}; frame skipped')
                return None
            if self._intrinsics.size_mismatch is not None:
                (ih, iw), (dh, dw) = self._intrinsics.size_mismatch
                self._problem(AUX_INFO_TOPIC, 'camera_info_size_mismatch',
                              f'camera_info is {iw}x{ih}, depth {dw}x{dh}; intrinsics scaled',
                              once=True)
            aux = self._hha.encode(aux, K)
        if aux.shape != (height, width):
            self._problem(AUX_TOPIC, 'size_mismatch',
                          f'aux {aux.shape[1]}x{aux.shape[0]} != rgb {width}x{height}; '
                          'resized nearest-neighbour to the RGB size', once=True)
            aux = image_codec.resize_to(aux, height, width)
        return aux

    def _process(self, frame: _Frame) -> None:
        aux = self._aux_for(frame)
        if aux is None:
            return
        rgb = frame.rgb
        want_conf = self._pub_conf is not None and self._pub_conf.get_subscription_count() > 0
        start = time.monotonic()
        if want_conf:
            labels, conf = self.segmenter.predict(rgb, aux, return_confidence=True)
        else:
            labels, conf = self.segmenter.predict(rgb, aux), None
        inference = time.monotonic() - start
        if self._stop.is_set():
            return  # deactivating: publish nothing more
        header = frame.rgb_msg.header
        self._pub_mask.publish(image_codec.fill_image(Image(), labels, 'mono8', header))
        info = self._info_for(header)
        if info is not None:
            self._pub_info.publish(info)
        color = None
        if self._pub_color is not None and self._pub_color.get_subscription_count() > 0:
            color = colorize(labels, self.palette)
            self._pub_color.publish(image_codec.fill_image(Image(), color, 'rgb8', header))
        if self._pub_overlay is not None and self._pub_overlay.get_subscription_count() > 0:
            color = colorize(labels, self.palette) if color is None else color
            blended = overlay(rgb, color, self.params.overlay_alpha)
            self._pub_overlay.publish(image_codec.fill_image(Image(), blended, 'rgb8', header))
        if conf is not None:
            self._pub_conf.publish(image_codec.fill_image(
                Image(), np.asarray(conf, np.float32), '32FC1', header))
        self.stats.frame_done(time.monotonic() - frame.received, inference)


class SegmentationNode(SegmentationCore, Node):
    """The segmentation node, configured and active from construction until :meth:`close`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._init_core()
        self.configure()
        self.activate()

    def close(self) -> None:
        """Stop the inference thread (waits for the frame in progress) and the I/O."""
        self.deactivate()


def _teardown(node: SegmentationNode) -> None:
    node.close()
    node.destroy_node()


def main(args=None) -> int:
    """Run the node until SIGINT / shutdown; 0 on a clean exit, 1 on a configuration error."""
    return run_node(SegmentationNode, rclpy.spin, _teardown, NODE_NAME, args)


if __name__ == '__main__':
    raise SystemExit(main())

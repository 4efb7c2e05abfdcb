"""camera_info and ``/tf_static`` callbacks: the intrinsics and extrinsics the pipeline needs.

A mixin of :class:`smmcl_ros.node.core.SegmentationCore` (it uses the core's ``stats``,
``registration``, ``_infos``, ``_intrinsics``, ``_rgb_intrinsics`` and ``_problem``).
"""

from typing import Any

from sensor_msgs.msg import CameraInfo

from smmcl_ros import topics
from smmcl_ros.node.qos import reliable
from smmcl_ros.pipeline.intrinsics import CameraInfoError
from smmcl_ros.pipeline.stamps import header_ns

TF_STATIC = '/tf_static'  # absolute, as tf2 publishes it


class CameraModelInputs:
    """``rgb/camera_info`` (relay, depth registration), ``aux/camera_info``, ``/tf_static``."""

    def _on_info(self, msg: CameraInfo) -> None:
        self.stats.count('camera_info_in')
        self._infos.add(header_ns(msg), msg)
        if self.registration.needs_intrinsics:
            try:
                self._rgb_intrinsics.update(msg)
            except CameraInfoError as err:
                self._problem(topics.RGB_INFO, err.reason, err.detail)

    def _subscribe_tf_static(self) -> None:
        """``/tf_static`` (transient local) into the registration's static transforms."""
        self._tf_subscription = self.create_subscription(
            tf_message_type(), TF_STATIC, self._on_tf_static, reliable(100, latched=True))

    def _on_tf_static(self, msg: Any) -> None:
        try:
            self.registration.tf.add_message(msg)
        except ValueError as err:
            self._problem(TF_STATIC, 'bad_transform', str(err))

    def _on_aux_info(self, msg: CameraInfo) -> None:
        try:
            changed = self._intrinsics.update(msg)
        except CameraInfoError as err:
            self._problem(topics.AUX_INFO, err.reason, err.detail)
            return
        if changed:
            K = self._intrinsics.current.K
            self.get_logger().info(
                f'{topics.AUX_INFO}: intrinsics fx={K[0, 0]:.2f} fy={K[1, 1]:.2f} '
                f'cx={K[0, 2]:.2f} cy={K[1, 2]:.2f} for '
                f'{"HHA encoding" if self.modality == "hha" else topics.POINTS}')


def tf_message_type() -> Any:
    """``tf2_msgs/TFMessage``, or a ValueError saying what to do without it."""
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as err:
        raise ValueError("aux_registration is 'depth' and aux_to_rgb is empty, so the extrinsic "
                         'comes from /tf_static, but tf2_msgs is not installed; set aux_to_rgb '
                         '[x, y, z, qx, qy, qz, qw]') from err
    return TFMessage

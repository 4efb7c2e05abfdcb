"""``sensor_msgs/CameraInfo`` relay: a copy of a camera_info with another header."""

from typing import Any


def restamped(msg: Any, header: Any) -> Any:
    """A copy of the rclpy message ``msg`` (every field) carrying ``header``.

    The segmentation node republishes ``rgb/camera_info`` with each mask's header this way, so
    consumers of the mask find intrinsics with exactly its stamp and frame.
    """
    copy = type(msg)()
    for name in msg.get_fields_and_field_types():
        setattr(copy, name, getattr(msg, name))
    copy.header = header
    return copy

"""rosbags messages: the type store, headers, ``Image``, ``CameraInfo`` and ``TFMessage`` builders.

The rosbags counterparts of :mod:`smmcl_ros.messages` (which fills rclpy messages); both lay
images out with :func:`smmcl_ros.messages.image_codec.pack_image`.
"""

from typing import Any, Sequence, Tuple

import numpy as np
from rosbags.typesys import get_typestore, Stores

from smmcl_ros.messages.image_codec import pack_image
from smmcl_ros.pipeline.stamps import split_ns

STORAGES: Tuple[str, ...] = ('sqlite3', 'mcap')
IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


def new_typestore() -> Any:
    """The ROS 2 Jazzy type store (``sensor_msgs``, ``std_msgs``, ... definitions)."""
    return get_typestore(Stores.ROS2_JAZZY)


def make_header(typestore: Any, stamp: int, frame_id: str) -> Any:
    """A rosbags ``std_msgs/Header`` for int-nanosecond ``stamp``."""
    time_type = typestore.types['builtin_interfaces/msg/Time']
    header_type = typestore.types['std_msgs/msg/Header']
    sec, nanosec = split_ns(stamp)
    return header_type(stamp=time_type(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(typestore: Any, image: np.ndarray, encoding: str, header: Any) -> Any:
    """A rosbags ``sensor_msgs/Image`` holding ``image`` (packed rows, native byte order).

    rosbags serialises ``data`` from a ``uint8`` numpy array, so this builds the message
    directly instead of through ``image_codec.fill_image`` (which fills rclpy messages with an
    ``array.array``); both lay the array out with ``image_codec.pack_image``.

    Raises:
        ValueError: ``encoding`` unknown or not matching the array's dtype/channels.
    """
    packed = pack_image(image, encoding)
    return typestore.types[IMAGE_TYPE](
        header=header, height=packed.height, width=packed.width, encoding=encoding,
        is_bigendian=packed.is_bigendian, step=packed.step,
        data=packed.data.copy())  # the message must not alias the caller's array


def camera_info_message(typestore: Any, header: Any, height: int, width: int,
                        fx: float, fy: float, cx: float, cy: float) -> Any:
    """A rosbags ``sensor_msgs/CameraInfo`` for an undistorted pinhole camera."""
    info_type = typestore.types[CAMERA_INFO_TYPE]
    roi_type = typestore.types['sensor_msgs/msg/RegionOfInterest']
    k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], np.float64)
    p = np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0], np.float64)
    return info_type(header=header, height=int(height), width=int(width),
                     distortion_model='plumb_bob', d=np.zeros(5, np.float64), k=k,
                     r=np.eye(3, dtype=np.float64).ravel(), p=p, binning_x=0, binning_y=0,
                     roi=roi_type(x_offset=0, y_offset=0, height=0, width=0,
                                  do_rectify=False))


def tf_message(typestore: Any, header: Any, transforms: Sequence[Tuple[str, str, Sequence[float]]]
               ) -> Any:
    """A rosbags ``tf2_msgs/TFMessage`` of ``(parent, child, [x, y, z, qx, qy, qz, qw])``.

    Each ``TransformStamped`` maps points of ``child`` into ``parent`` (``header.frame_id``),
    stamped with ``header.stamp``.
    """
    types = typestore.types
    stamped = []
    for parent, child, pose in transforms:
        x, y, z, qx, qy, qz, qw = (float(v) for v in pose)
        stamped.append(types['geometry_msgs/msg/TransformStamped'](
            header=types['std_msgs/msg/Header'](stamp=header.stamp, frame_id=parent),
            child_frame_id=child, transform=types['geometry_msgs/msg/Transform'](
                translation=types['geometry_msgs/msg/Vector3'](x=x, y=y, z=z),
                rotation=types['geometry_msgs/msg/Quaternion'](x=qx, y=qy, z=qz, w=qw))))
    return types['tf2_msgs/msg/TFMessage'](transforms=stamped)

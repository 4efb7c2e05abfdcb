"""``sensor_msgs/PointCloud2`` from a :class:`~smmcl_ros.pipeline.points.SemanticCloud`, and back.

:func:`fill_pointcloud` fills an rclpy message (the node), :func:`pointcloud_bag_message`
builds a rosbags one (``smmcl-bag-eval --output-bag --points``); both describe the cloud the
same way (:func:`layout`): organised ``height x width``, ``point_step`` 24, packed rows
(``row_step = width * point_step``), ``is_dense`` false (NaN points), native byte order, and
the fields of :data:`smmcl_ros.pipeline.points.FIELDS`. :func:`read_pointcloud` decodes any
``PointCloud2`` (rclpy or rosbags, any field layout) into a structured numpy array, for tests
and tools. The message packages are imported inside the functions that need them.
"""

import array
import sys
from typing import Any, Dict, NamedTuple

import numpy as np

from smmcl_ros.pipeline.points import FIELDS, POINT_STEP, SemanticCloud

POINTCLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
POINT_FIELD_TYPE = 'sensor_msgs/msg/PointField'
# sensor_msgs/PointField datatype -> numpy scalar type (byte order added per message).
NUMPY_TYPES: Dict[int, str] = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4',
                               8: 'f8'}


class Layout(NamedTuple):
    """The ``PointCloud2`` scalars of a cloud."""

    height: int
    width: int
    point_step: int
    row_step: int
    is_bigendian: bool
    is_dense: bool


def layout(cloud: SemanticCloud) -> Layout:
    """Size fields of the message for ``cloud`` (organised, packed rows, NaN points)."""
    return Layout(cloud.height, cloud.width, POINT_STEP, cloud.width * POINT_STEP,
                  sys.byteorder == 'big', False)


def fill_pointcloud(msg: Any, cloud: SemanticCloud, header: Any) -> Any:
    """Fill an rclpy ``sensor_msgs/PointCloud2`` with ``cloud`` (returned for chaining).

    Args:
        msg: The message to fill.
        cloud: The points.
        header: Header to copy (the caller's object is assigned: the mask's header).
    """
    from sensor_msgs.msg import PointField

    msg.header = header
    for name, value in layout(cloud)._asdict().items():
        setattr(msg, name, value)
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in FIELDS]
    data = array.array('B')
    # One copy; assigning an array.array skips rclpy's per-element checks.
    data.frombytes(np.ascontiguousarray(cloud.buffer).view(np.uint8).data)
    msg.data = data
    return msg


def pointcloud_bag_message(typestore: Any, cloud: SemanticCloud, header: Any) -> Any:
    """A rosbags ``sensor_msgs/PointCloud2`` of ``cloud`` with ``header`` (a rosbags Header)."""
    field_type = typestore.types[POINT_FIELD_TYPE]
    fields = [field_type(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
              for f in FIELDS]
    data = np.frombuffer(np.ascontiguousarray(cloud.buffer).tobytes(), np.uint8)  # own copy
    return typestore.types[POINTCLOUD_TYPE](header=header, fields=fields, data=data,
                                            **layout(cloud)._asdict())


def point_dtype(msg: Any) -> np.dtype:
    """Structured dtype of one point of ``msg`` from its ``fields`` and ``point_step``.

    Raises:
        ValueError: A datatype or count this reader does not handle, naming the field.
    """
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if int(field.datatype) not in NUMPY_TYPES:
            raise ValueError(f'PointCloud2 field {field.name!r} has unknown datatype '
                             f'{field.datatype}; valid: {sorted(NUMPY_TYPES)}')
        count = int(field.count)
        scalar = order + NUMPY_TYPES[int(field.datatype)]
        names.append(field.name)
        formats.append(scalar if count == 1 else (scalar, (count,)))
        offsets.append(int(field.offset))
    return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                     'itemsize': int(msg.point_step)})


def read_pointcloud(msg: Any) -> np.ndarray:
    """The points of a ``PointCloud2`` as a ``(height, width)`` structured array (a copy).

    Raises:
        ValueError: ``data`` shorter than ``height * row_step`` or rows shorter than
            ``width * point_step``.
    """
    dtype = point_dtype(msg)
    height, width = int(msg.height), int(msg.width)
    row_step, point_step = int(msg.row_step), int(msg.point_step)
    raw = np.frombuffer(memoryview(msg.data).cast('B') if isinstance(msg.data, array.array)
                        else np.asarray(msg.data, np.uint8), np.uint8)
    if raw.size < height * row_step or row_step < width * point_step:
        raise ValueError(f'PointCloud2 data has {raw.size} bytes, row_step {row_step}, for '
                         f'{height} x {width} points of {point_step} bytes')
    rows = raw[:height * row_step].reshape(height, row_step)[:, :width * point_step]
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width).copy()

"""``/tf_static`` of a bag: the extrinsic of depth registration when ``--aux-to-rgb`` is empty.

Camera drivers publish their extrinsics on ``/tf_static`` (``tf2_msgs/msg/TFMessage``, in the
rosbags ROS 2 Jazzy type store) once, at start-up, so a recorded bag holds them near its
beginning. :func:`read_static_transforms` collects every transform of the topic into a
:class:`~smmcl_ros.pipeline.tf_static.StaticTransforms` (chains composed as the node does);
:func:`check_extrinsic` looks up the transform between the ``header.frame_id`` of the first
RGB and aux images before any frame is evaluated, so a bag that cannot be registered is one
clear error naming ``/tf_static`` and both frames.
"""

from typing import Any, Optional

from smmcl_ros.bags.errors import BagReadError, MessageDecodeError
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.pipeline.registration import AuxRefused
from smmcl_ros.pipeline.tf_static import StaticTransforms

TF_STATIC = '/tf_static'
TF_MESSAGE_TYPE = 'tf2_msgs/msg/TFMessage'


def read_static_transforms(reader: BagReader, topic: str = TF_STATIC) -> StaticTransforms:
    """Every transform on ``topic`` (a damaged bag: those readable before the damage).

    Raises:
        ValueError: The bag has no ``topic``, or a transform on it is unusable (named).
    """
    if topic not in reader.topics:
        raise ValueError(f'--aux-registration depth without --aux-to-rgb takes the extrinsic from '
                         f'{topic}, but the bag has no {topic} topic (topics: '
                         f'{", ".join(sorted(reader.topics))}); give --aux-to-rgb X Y Z QX QY QZ '
                         'QW')
    transforms = StaticTransforms()
    try:
        for message in reader.messages([topic]):
            try:
                transforms.add_message(reader.deserialize(message))
            except MessageDecodeError:
                continue
    except BagReadError:
        pass  # the main pass reports the damage
    return transforms


def _first_frame_id(reader: BagReader, topic: str) -> Optional[str]:
    try:
        for message in reader.messages([topic]):
            try:
                return str(reader.deserialize(message).header.frame_id)
            except MessageDecodeError:
                continue
    except BagReadError:
        pass
    return None


def check_extrinsic(reader: BagReader, registration: Any, rgb_topic: str, aux_topic: str,
                    topic: str = TF_STATIC) -> None:
    """Fill ``registration.tf`` from the bag and look the aux -> RGB transform up once.

    Raises:
        ValueError: No ``/tf_static`` topic, or no transform between the two images'
            ``frame_id``s (the message names ``/tf_static``, both frames and the known ones).
    """
    registration.tf = read_static_transforms(reader, topic)
    rgb_frame, aux_frame = _first_frame_id(reader, rgb_topic), _first_frame_id(reader, aux_topic)
    if rgb_frame is None or aux_frame is None:
        return  # no readable image: nothing to register (the main pass reports it)
    try:
        registration.extrinsic(aux_frame, rgb_frame)
    except AuxRefused as err:
        raise ValueError(f'--aux-registration depth: no {topic} transform from the aux frame '
                         f'{aux_frame!r} ({aux_topic}) to the RGB frame {rgb_frame!r} '
                         f'({rgb_topic}) in the bag: {err}; give --aux-to-rgb X Y Z QX QY QZ '
                         'QW') from err

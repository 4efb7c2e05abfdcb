"""``vision_msgs/LabelInfo`` of the checkpoint's classes, when ``vision_msgs`` is installed.

``vision_msgs`` (``ros-<distro>-vision-msgs``) is on every ROS 2 robot but not on PyPI, so it
is optional: :func:`label_info_types` returns ``None`` and says why when it cannot be imported,
and the node then publishes only the JSON ``segmentation/labels``. The message is published
once, reliable + transient local (:data:`LATCHED_DEPTH`), as Nav2's semantic segmentation
layer subscribes to it.
"""

from typing import Any, NamedTuple, Optional, Sequence, Tuple

LATCHED_DEPTH = 1
MAX_CLASS_ID = 65535  # VisionClass.class_id is uint16


class LabelInfoTypes(NamedTuple):
    """The message classes: ``vision_msgs.msg.LabelInfo`` and ``VisionClass``."""

    label_info: Any
    vision_class: Any


def label_info_types() -> Tuple[Optional[LabelInfoTypes], str]:
    """``(types, '')`` when ``vision_msgs`` imports, else ``(None, reason)``."""
    try:
        from vision_msgs.msg import LabelInfo, VisionClass
    except ImportError as err:  # includes a package built without LabelInfo
        return None, f'vision_msgs is not importable ({err})'
    return LabelInfoTypes(LabelInfo, VisionClass), ''


def check_threshold(threshold: float) -> float:
    """``label_info_threshold`` as a float in [0, 1].

    Raises:
        ValueError: Naming the parameter.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float('nan')
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"parameter 'label_info_threshold' must be in [0, 1], got "
                         f'{threshold!r}')
    return value


def build_label_info(types: LabelInfoTypes, class_names: Sequence[str], threshold: float,
                     header: Any = None) -> Any:
    """A ``LabelInfo``: ``class_map`` = (class id = index, name), ``threshold``.

    Args:
        types: From :func:`label_info_types`.
        class_names: Names by class id.
        threshold: Confidence threshold in [0, 1].
        header: Optional header to copy (stamp / frame of the camera).

    Raises:
        ValueError: Bad threshold, or more classes than a uint16 id can number.
    """
    threshold = check_threshold(threshold)
    if len(class_names) > MAX_CLASS_ID + 1:
        raise ValueError(f'{len(class_names)} classes do not fit VisionClass.class_id (uint16)')
    msg = types.label_info()
    if header is not None:
        msg.header = header
    msg.class_map = [types.vision_class(class_id=i, class_name=str(name))
                     for i, name in enumerate(class_names)]
    msg.threshold = threshold
    return msg

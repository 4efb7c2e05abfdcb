"""The node's published outputs: one row per pipeline output (message type, topic, builder).

Plus the latched class descriptions published once per activation.
"""

from typing import Any, Callable, List, Sequence, Tuple

import numpy as np
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import String

from smmcl_ros import topics
from smmcl_ros.messages import image_codec
from smmcl_ros.messages.label_info import build_label_info, label_info_types
from smmcl_ros.messages.labels import labels_json
from smmcl_ros.messages.pointcloud import fill_pointcloud
from smmcl_ros.pipeline.outputs import ENCODINGS


def _image(name: str) -> Tuple[Any, str, Callable[[Any, Any], Any]]:
    encoding = ENCODINGS[name]
    if name == 'confidence':  # confidence_encoding: float32 probability or mono8 (uint8)
        return (Image, topics.IMAGE_OUTPUTS[name], lambda value, header: image_codec.fill_image(
            Image(), value, 'mono8' if value.dtype == np.uint8 else encoding, header))
    return (Image, topics.IMAGE_OUTPUTS[name],
            lambda value, header: image_codec.fill_image(Image(), value, encoding, header))


# Published outputs (pipeline.outputs.OUTPUTS names): (message type, topic, build(value,
# header)) and the parameter that enables it ('' = always). A new output is one more row.
PUBLISHED = {
    'mask': _image('mask') + ('',),
    'color': _image('color') + ('publish_color',),
    'overlay': _image('overlay') + ('publish_overlay',),
    'confidence': _image('confidence') + ('publish_confidence',),
    # depth / HHA checkpoints only (SegmentationCore.points); NoCloud frames publish none
    'points': (PointCloud2, topics.POINTS,
               lambda cloud, header: fill_pointcloud(PointCloud2(), cloud, header),
               'publish_points'),
}
CLOUD_MODALITIES = ('depth', 'hha')  # checkpoints fed depth: segmentation/points


def latched_messages(class_names: Sequence[str], palette: np.ndarray, threshold: float,
                     stamp: Any, log: Callable[[str], None]) -> List[Tuple[Any, str, Any]]:
    """``(message type, topic, message)`` of the class descriptions (reliable, latched).

    The JSON ``segmentation/labels`` always; ``segmentation/label_info`` (``vision_msgs``)
    when that package is installed, else ``log`` says why not (the JSON carries the same).
    """
    out = [(String, topics.LABELS, String(data=labels_json(class_names, palette)))]
    types, reason = label_info_types()
    if types is None:
        log(f'{topics.LABEL_INFO}: not published: {reason}')
        return out
    info = build_label_info(types, class_names, threshold)
    info.header.stamp = stamp
    return out + [(types.label_info, topics.LABEL_INFO, info)]

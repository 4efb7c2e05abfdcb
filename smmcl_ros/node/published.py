"""The node's published outputs: one row per pipeline output (message type, topic, builder)."""

from typing import Any, Callable, Tuple

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from smmcl_ros import topics
from smmcl_ros.messages import image_codec
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

"""The node with an HHA checkpoint: depth + ``aux/camera_info`` in, HHA encoded per frame.

Real rclpy, the node in its own process with DEFAULT parameters (only the checkpoint set: a
seeded, untrained ``smmcl_mit_b0`` whose meta says ``aux_modality: hha``), a reliable camera
driver publishing 640x480 depth and camera_info from this process, a default-QoS viewer. The
masks must equal ``Segmenter.predict`` on the HHA that
:class:`~smmcl_core.data.hha.HHAEncoder` makes of the same depth and intrinsics.
"""

import numpy as np
import pytest
from ros_harness import (camera_info_msg, image_msg, make_checkpoint, NodeProcess,
                         RosClient)

from smmcl_core.data.hha import NYU_DEPTH_V2_K

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp('ckpt') / 'mit_b0_hha.pt', modality='hha')


def _mask(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


def _expected(segmenter, rgb, depth, K):
    from smmcl_core.data.hha import HHAEncoder

    return segmenter.predict(rgb, HHAEncoder().encode(depth, K))


def test_hha_node_encodes_depth_with_camera_info(ros_env, tmp_path, checkpoint, segmenter,
                                                 frame):
    rgb, depth = frame
    other_K = NYU_DEPTH_V2_K.copy()
    other_K[1, 2] -= 120.0  # principal point far from the true one: another horizon
    expected = _expected(segmenter, rgb, depth, NYU_DEPTH_V2_K)
    expected_other = _expected(segmenter, rgb, depth, other_K)
    assert np.mean(expected != expected_other) > 0.01  # the intrinsics matter to the masks

    node = NodeProcess(ros_env, dict(checkpoint=checkpoint), tmp_path / 'node.log')
    client = RosClient()
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    info_pub = client.node.create_publisher(
        CameraInfo, 'aux/camera_info', QoSProfile(depth=10,
                                                  reliability=ReliabilityPolicy.RELIABLE))
    masks = client.received['mask']

    def send(sec, aux_msg, info=None, timeout=30.0):
        if info is not None:
            info_pub.publish(info)
            client.spin_for(0.2)
        want = len(masks) + 1
        client.rgb_pub.publish(image_msg(rgb, 'rgb8', sec))
        client.aux_pub.publish(aux_msg)
        return client.spin_until(lambda: len(masks) >= want, timeout)

    def diag(key, value):
        return client.spin_until(lambda: (client.last_diagnostics() or {}).get(key) == value,
                                 8.0)

    try:
        client.wait_ready(node)
        client.spin_until(lambda: info_pub.get_subscription_count() > 0, 10.0)
        # 1) Depth before any camera_info: skipped, counted, the node keeps running.
        send(1, image_msg(depth, '16UC1', 1), timeout=0.0)
        assert diag('input.aux/camera_info.no_camera_info', '1'), client.last_diagnostics()
        # 2) A malformed camera_info (an uncalibrated driver's zeros) is rejected too.
        send(2, image_msg(depth, '16UC1', 2), camera_info_msg(np.zeros((3, 3))), timeout=0.0)
        assert diag('input.aux/camera_info.malformed_camera_info', '1')
        assert diag('input.aux/camera_info.no_camera_info', '2')
        assert masks == []
        assert node.proc.poll() is None, node.output()
        # 3) Valid intrinsics: 16UC1 millimetres and 32FC1 metres give predict's masks.
        info = camera_info_msg(NYU_DEPTH_V2_K)
        assert send(3, image_msg(depth, '16UC1', 3), info), node.output()
        metres = depth.astype(np.float32) / np.float32(1000.0)
        assert send(4, image_msg(metres, '32FC1', 4)), node.output()
        # 4) Changed intrinsics are picked up from the next frame on.
        assert send(5, image_msg(depth, '16UC1', 5), camera_info_msg(other_K)), node.output()
        assert [m.header.stamp.sec for m in masks] == [3, 4, 5]
        # As test_node: predict in another process may differ in a few boundary pixels.
        assert np.mean(_mask(masks[0]) != expected) < 1e-3
        assert np.mean(_mask(masks[1]) != expected) < 1e-3
        assert np.mean(_mask(masks[2]) != expected_other) < 1e-3
        assert (masks[0].height, masks[0].width, masks[0].encoding) == (480, 640, 'mono8')
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()
    log = node.output()
    assert 'no_camera_info' in log and 'malformed_camera_info' in log
    assert 'cy=132.74 for HHA encoding' in log  # the change was noticed and logged

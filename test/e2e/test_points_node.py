"""The node's 3-D outputs: segmentation/points, mono8 confidence, LabelInfo (issue 17).

Real rclpy: the node in its own process on DEFAULT parameters plus the ones each test names,
a real NYUv2 frame (433: RGB, 16UC1 depth with holes) and the NYU colour camera's
``aux/camera_info`` published from this process, and the test-only ``vision_msgs`` package
(``msgs_fixture``) in both processes so LabelInfo crosses DDS. Every point is checked against
an independent pinhole back-projection of the depth and the mask received with the same stamp.
"""

from pathlib import Path

from msgs_fixture import vision_msgs  # noqa: F401  (session fixture)
import numpy as np
import pytest
from ros_harness import (camera_info_msg, image_msg, make_checkpoint, NodeProcess,
                         RosClient)

from smmcl_core.data.classes import voc_palette
from smmcl_core.data.hha import nyu_intrinsics
from smmcl_core.data.io import read_aux, read_rgb

pytestmark = pytest.mark.ros
SAMPLES = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'nyuv2_samples'
MAX_ERROR_M = 1e-4
SEC = 7


@pytest.fixture(scope='module')
def nyu433():
    if not SAMPLES.is_dir():
        pytest.skip(f'real sample data not found at {SAMPLES}')
    depth = read_aux(SAMPLES / 'Depth' / '433.png', 'depth')
    return read_rgb(SAMPLES / 'RGB' / '433.png'), depth, nyu_intrinsics(*depth.shape)


def _image(msg, dtype=np.uint8) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def _reference_xyz(depth_mm: np.ndarray, K: np.ndarray, stride: int) -> np.ndarray:
    v, u = np.mgrid[0:depth_mm.shape[0]:stride, 0:depth_mm.shape[1]:stride].astype(np.float64)
    z = depth_mm[::stride, ::stride] / 1000.0
    z = np.where(z > 0, z, np.nan)
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)


class _Run:
    """The node + a client with a points subscription and the aux/camera_info publisher."""

    def __init__(self, env, params, log: Path) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, PointCloud2

        self.node = NodeProcess(env, params, log)
        self.client = RosClient()
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.points = []
        self.client.node.create_subscription(PointCloud2, 'segmentation/points',
                                             self.points.append, reliable)
        self.info_pub = self.client.node.create_publisher(CameraInfo, 'aux/camera_info',
                                                          reliable)

    def send(self, rgb, depth, K, want_points: bool = True) -> None:
        client = self.client
        client.wait_ready(self.node)
        if K is not None:
            assert client.spin_until(lambda: self.info_pub.get_subscription_count() > 0, 20), \
                f'node does not subscribe aux/camera_info:\n{self.node.output()}'
            self.info_pub.publish(camera_info_msg(K, sec=SEC))
            client.spin_for(0.3)
        if want_points:
            assert client.spin_until(
                lambda: client.node.count_subscribers('segmentation/points') >= 1
                and client.node.count_publishers('segmentation/points') >= 1, 20)
            client.spin_for(0.3)
        client.rgb_pub.publish(image_msg(rgb, 'rgb8', SEC))
        client.aux_pub.publish(image_msg(depth, '16UC1', SEC))
        ok = client.spin_until(lambda: client.received['mask']
                               and (self.points or not want_points), 90)
        assert ok, f'no mask / cloud:\n{self.node.output()}'
        client.spin_for(0.5)

    def close(self) -> int:
        self.client.close()
        return self.node.stop()


def test_cloud_matches_the_mask_of_the_same_stamp_and_label_info_is_latched(
        ros_env, tmp_path, checkpoint, vision_msgs, nyu433):  # noqa: F811
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import LabelInfo

    from smmcl_ros.messages.pointcloud import read_pointcloud
    from smmcl_ros.pipeline.points import unpack_rgb

    rgb, depth, K = nyu433
    run = _Run(vision_msgs.env(ros_env), dict(checkpoint=checkpoint), tmp_path / 'node.log')
    try:
        run.send(rgb, depth, K)
        mask_msg, cloud_msg = run.client.received['mask'][0], run.points[0]
        assert cloud_msg.header == mask_msg.header
        assert mask_msg.header.stamp.sec == SEC
        mask = _image(mask_msg)
        points = read_pointcloud(cloud_msg)
        assert points.shape == mask.shape == depth.shape and not cloud_msg.is_dense
        got = np.stack([points[n] for n in ('x', 'y', 'z')], -1).astype(np.float64)
        np.testing.assert_array_equal(np.isnan(got).all(-1), depth == 0)
        np.testing.assert_array_equal(np.isnan(got).any(-1), depth == 0)
        assert np.nanmax(np.abs(got - _reference_xyz(depth, K, 1))) < MAX_ERROR_M
        np.testing.assert_array_equal(points['label'], mask)
        np.testing.assert_array_equal(unpack_rgb(points['rgb']), voc_palette(40)[mask])
        assert 0 < points['confidence'].min() and points['confidence'].max() <= 1
        assert run.client.spin_until(
            lambda: (run.client.last_diagnostics() or {}).get('points_ms_p50', 'nan') != 'nan',
            5.0), run.client.last_diagnostics()

        late = []  # subscribes long after the node published its LabelInfo
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        run.client.node.create_subscription(LabelInfo, 'segmentation/label_info',
                                            late.append, latched)
        assert run.client.spin_until(lambda: bool(late), 10.0), run.node.output()
        assert [(c.class_id, c.class_name) for c in late[0].class_map] == \
            [(i, f'class_{i}') for i in range(40)]
        assert late[0].threshold == 0.0
    finally:
        assert run.close() == 0


def test_stride_range_classes_and_mono8(ros_env, tmp_path, checkpoint, segmenter, nyu433):
    from smmcl_ros.messages.pointcloud import read_pointcloud

    rgb, depth, K = nyu433
    expected = segmenter.predict(rgb, depth)
    ids, counts = np.unique(expected, return_counts=True)
    kept_ids = sorted(ids[np.argsort(counts)[-2:]].tolist())  # the two largest classes
    stride, limit = 2, 2.5
    params = dict(checkpoint=checkpoint, points_stride=stride, points_max_range=limit,
                  points_classes=str([f'class_{i}' for i in kept_ids]),
                  publish_confidence=True, confidence_encoding='mono8')
    run = _Run(ros_env, params, tmp_path / 'node.log')
    try:
        run.send(rgb, depth, K)
        assert run.client.spin_until(lambda: bool(run.client.received['confidence']), 10)
        mask = _image(run.client.received['mask'][0])
        conf_msg = run.client.received['confidence'][0]
        assert conf_msg.encoding == 'mono8'
        points = read_pointcloud(run.points[0])
        assert points.shape == (240, 320)
        sub_mask, sub_depth = mask[::stride, ::stride], depth[::stride, ::stride]
        np.testing.assert_array_equal(points['label'], sub_mask)
        keep = (sub_depth > 0) & (sub_depth / 1000.0 <= limit) & np.isin(sub_mask, kept_ids)
        assert keep.sum() > 100 and (~keep & (sub_depth > 0)).sum() > 100
        got = np.stack([points[n] for n in ('x', 'y', 'z')], -1).astype(np.float64)
        np.testing.assert_array_equal(~np.isnan(got[..., 2]), keep)
        want = _reference_xyz(depth, K, stride)
        assert np.abs(got[keep] - want[keep]).max() < MAX_ERROR_M
        mono8 = _image(conf_msg)[::stride, ::stride]
        p = points['confidence'].astype(np.float64)  # the 32-bit probability of the same frame
        np.testing.assert_array_equal(mono8, np.vectorize(round)(255 * p))
    finally:
        assert run.close() == 0


def test_thermal_checkpoint_publishes_no_cloud_and_says_why_once(ros_env, tmp_path,
                                                                 tmp_path_factory, nyu433):
    rgb = nyu433[0]
    thermal = make_checkpoint(tmp_path_factory.mktemp('thermal') / 'thermal.pt', 'thermal')
    run = _Run(ros_env, dict(checkpoint=thermal), tmp_path / 'node.log')
    try:
        heat = (rgb.mean(-1)).astype(np.uint8)  # a real-scene single-channel image as mono8
        run.client.wait_ready(run.node)
        run.client.rgb_pub.publish(image_msg(rgb, 'rgb8', SEC))
        run.client.aux_pub.publish(image_msg(heat, 'mono8', SEC))
        assert run.client.spin_until(lambda: bool(run.client.received['mask']), 90)
        run.client.spin_for(0.5)
        assert run.client.node.count_publishers('segmentation/points') == 0
        assert not run.points
    finally:
        assert run.close() == 0
    log = run.node.output()
    assert log.count('segmentation/points: not published: the checkpoint takes thermal') == 1

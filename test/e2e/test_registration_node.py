"""The node with an unregistered thermal camera: real MSRS pairs, real rclpy, the demo model.

Real MSRS night pairs (registered, 640x480) are made unregistered by re-imaging the thermal
with a virtual 320x256 camera (0.5x, 1.5 degree rotation, offset). With
``aux_registration: homography`` and the inverse mapping the node's masks must agree with the
masks of the registered pair; with the default (``auto``) the pair is refused, counted, and the
node keeps serving registered pairs; a half-size thermal image of the same view is resized. A
real NYUv2 depth frame re-imaged by a virtual depth camera is registered with
``aux_registration: depth`` and the extrinsic the node composes from a chain of two transforms
on a transient-local ``/tf_static`` (the test-only ``tf2_msgs``).
"""

from conftest import SHARED_DATA
import cv2
from msgs_fixture import tf2_msgs  # noqa: F401  (session fixture)
import numpy as np
import pytest
from ros_harness import camera_info_msg, image_msg, NodeProcess, RosClient
from scipy.spatial.transform import Rotation
from virtual_cameras import NYU_K, virtual_depth

from smmcl_core.data.registration import coverage

pytestmark = pytest.mark.ros

NAMES = ('00004N', '00008N')
AUX_SIZE = (320, 256)  # (width, height) of the virtual thermal camera


def _rgb_to_aux() -> np.ndarray:
    a = np.deg2rad(1.5)
    return np.array([[0.5 * np.cos(a), -0.5 * np.sin(a), -6.0],
                     [0.5 * np.sin(a), 0.5 * np.cos(a), 9.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope='module')
def pairs():
    """(rgb, registered thermal, unregistered 320x256 thermal) per MSRS frame."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real sample data not found at {SHARED_DATA}')
    shared_data = SHARED_DATA
    out = []
    for name in NAMES:
        rgb = cv2.imread(str(shared_data / 'msrs_night/visible' / f'{name}.png'))[:, :, ::-1]
        thermal = cv2.imread(str(shared_data / 'msrs_night/thermal' / f'{name}.png'),
                             cv2.IMREAD_UNCHANGED)
        aux = cv2.warpPerspective(thermal, _rgb_to_aux(), AUX_SIZE, flags=cv2.INTER_LINEAR)
        out.append((np.ascontiguousarray(rgb), thermal, aux))
    return out


@pytest.fixture(scope='module')
def demo():
    """The bundled demo model (RGB-thermal) on the CPU, as the node runs it."""
    import torch

    from smmcl_core.segmenter import Segmenter
    from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

    torch.set_num_threads(1)
    return Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend='torch')


def _mask(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


def _node(ros_env, tmp_path, name, **params):
    params = dict(checkpoint='demo', device='cpu', backend='torch', qos='reliable',
                  publish_color=False, publish_overlay=False, **params)
    return NodeProcess(ros_env, params, tmp_path / f'{name}.log')


def _send(client, rgb, aux, sec):
    client.rgb_pub.publish(image_msg(rgb, 'rgb8', sec, 0, 'rgb_optical'))
    client.aux_pub.publish(image_msg(aux, 'mono8', sec, 0, 'thermal_optical'))


def test_homography_registers_unregistered_thermal(ros_env, tmp_path, pairs, demo):
    H = np.linalg.inv(_rgb_to_aux())  # aux pixel -> RGB pixel
    values = '[' + ','.join(repr(float(v)) for v in H.ravel()) + ']'  # floats: 1.0, not 1
    node = _node(ros_env, tmp_path, 'homography', aux_registration='homography',
                 aux_homography=values)
    client = RosClient()
    try:
        client.wait_ready(node)
        for i, (rgb, _, aux) in enumerate(pairs):
            _send(client, rgb, aux, 10 + i)
            assert client.spin_until(lambda: len(client.received['mask']) > i, 60.0), \
                node.output()
        seen = coverage(AUX_SIZE[::-1], H, (480, 640))
        for (rgb, thermal, aux), msg in zip(pairs, client.received['mask']):
            got, registered = _mask(msg), demo.predict(rgb, thermal)
            assert got.shape == (480, 640)
            agree = got == registered
            either = seen & ((got != 0) | (registered != 0))  # class 0 (floor): background
            assert agree[seen].mean() >= 0.99, agree[seen].mean()
            assert agree[either].mean() >= 0.90, agree[either].mean()
            # What the node did before issue 18 (stretching) is measurably worse.
            stretched = demo.predict(rgb, cv2.resize(aux, (640, 480),
                                                     interpolation=cv2.INTER_NEAREST))
            assert (stretched == registered)[either].mean() < agree[either].mean() - 0.1
        # /diagnostics comes once per diagnostics_period: wait for one, do not race it.
        assert client.spin_until(lambda: (client.last_diagnostics() or {}).get(
            'aux_registration') == 'homography', 10.0), client.last_diagnostics()
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()


def test_default_refuses_unregistered_pair_and_keeps_serving(ros_env, tmp_path, pairs, demo):
    node = _node(ros_env, tmp_path, 'auto', log_throttle_sec=60.0)
    client = RosClient()
    try:
        client.wait_ready(node)
        rgb, thermal, aux = pairs[0]
        for sec in (20, 21, 22):
            _send(client, rgb, aux, sec)
            client.spin_for(0.3)
        ok = client.spin_until(lambda: (client.last_diagnostics() or {}).get(
            'input.aux/image.aspect_mismatch') == '3', 15.0)
        assert ok, (client.last_diagnostics(), node.output())
        assert client.received['mask'] == []  # refused, not stretched
        diag = client.last_diagnostics()
        assert diag['aux_registration'] == 'auto' and int(diag['inputs_rejected_total']) >= 3
        _send(client, rgb, thermal, 23)  # a registered pair: served
        assert client.spin_until(lambda: client.received['mask'], 60.0), node.output()
        got = _mask(client.received['mask'][0])
        assert client.received['mask'][0].header.stamp.sec == 23
        assert np.mean(got != demo.predict(rgb, thermal)) < 1e-3
        # A half-size thermal camera with the same view (same aspect ratio): auto resizes it.
        half = cv2.resize(thermal, (320, 240), interpolation=cv2.INTER_AREA)
        _send(client, rgb, half, 24)
        assert client.spin_until(lambda: len(client.received['mask']) > 1, 60.0), node.output()
        got, registered = _mask(client.received['mask'][1]), demo.predict(rgb, thermal)
        assert client.received['mask'][1].header.stamp.sec == 24 and got.shape == (480, 640)
        agree = got == registered
        either = (got != 0) | (registered != 0)
        assert agree.mean() >= 0.99 and agree[either].mean() >= 0.90, \
            (agree.mean(), agree[either].mean())
        ok = client.spin_until(lambda: (client.last_diagnostics() or {}).get(
            'input.aux/image.size_mismatch') == '1', 15.0)
        assert ok, client.last_diagnostics()
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()
    log = node.output()
    lines = [line for line in log.splitlines() if 'aux/image: aspect_mismatch' in line]
    assert len(lines) == 1, log  # throttled: one line for three refusals
    assert 'aux 320x256, rgb 640x480' in log and 'aux_registration' in log


def _transform(parent: str, child: str, matrix: np.ndarray):
    """A geometry_msgs/TransformStamped: points of ``child`` -> ``parent`` by ``matrix``."""
    from geometry_msgs.msg import TransformStamped

    from smmcl_ros.pipeline.tf_static import matrix_to_pose

    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    x, y, z, qx, qy, qz, qw = matrix_to_pose(matrix)
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z, q.x, q.y, q.z, q.w = x, y, z, qx, qy, qz, qw
    return msg


def test_depth_registration_with_the_extrinsic_from_tf_static(
        ros_env, tmp_path, tf2_msgs, checkpoint, segmenter, frame):  # noqa: F811
    """aux_registration depth, empty aux_to_rgb: the node composes /tf_static and registers."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    from smmcl_core.data.registration import pose_matrix
    from smmcl_core.segmenter import Segmenter

    rgb, depth = frame
    Kv = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
    rotation = Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True)
    aux_to_rgb = [0.025, -0.004, 0.003] + list(rotation.as_quat())
    virtual = virtual_depth(depth, NYU_K, Kv, (600, 800), rotation, aux_to_rgb[:3])
    # Chain: colour optical -> depth link -> depth optical (the two compose to aux_to_rgb).
    to_link = pose_matrix([0.0, 0.02, 0.0, 0.0, 0.0, 0.0087, 0.99996])
    tree = TFMessage(transforms=[
        _transform('camera_color_optical_frame', 'camera_depth_frame', to_link),
        _transform('camera_depth_frame', 'camera_depth_optical_frame',
                   np.linalg.inv(to_link) @ pose_matrix(aux_to_rgb))])

    client = RosClient()
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    tf_pub = client.node.create_publisher(TFMessage, '/tf_static', latched)
    tf_pub.publish(tree)  # once, before the node exists: it must come from the latch
    aux_info = client.node.create_publisher(CameraInfo, 'aux/camera_info', QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE))
    node = NodeProcess(tf2_msgs.env(ros_env), dict(
        checkpoint=checkpoint, device='cpu', backend='torch', qos='reliable',
        publish_color=False, publish_overlay=False, aux_registration='depth'),
        tmp_path / 'depth.log')
    try:
        client.wait_ready(node)
        assert client.spin_until(lambda: aux_info.get_subscription_count() > 0
                                 and tf_pub.get_subscription_count() > 0, 30), node.output()
        aux_info.publish(camera_info_msg(Kv, 600, 800, sec=40))
        client.info_pub.publish(camera_info_msg(NYU_K, 480, 640, sec=40))
        client.spin_for(0.5)
        client.rgb_pub.publish(image_msg(rgb, 'rgb8', 40, 0, 'camera_color_optical_frame'))
        client.aux_pub.publish(image_msg(virtual, '16UC1', 40, 0, 'camera_depth_optical_frame'))
        assert client.spin_until(lambda: client.received['mask'], 90), node.output()
        got = _mask(client.received['mask'][0])
        given = Segmenter.from_checkpoint(checkpoint, device='cpu', aux_registration='depth',
                                          aux_K=Kv, rgb_K=NYU_K, aux_to_rgb=aux_to_rgb)
        assert (got == given.predict(rgb, virtual)).mean() >= 0.999  # the composed chain
        registered = segmenter.predict(rgb, depth)
        same = (got == registered).mean()
        assert same >= 0.97, same  # measured 97.8%
        assert same > (segmenter.predict(rgb, virtual) == registered).mean() + 0.02  # resized
        # /diagnostics comes once per diagnostics_period: wait for one, do not race it.
        assert client.spin_until(lambda: (client.last_diagnostics() or {}).get(
            'aux_registration') == 'depth', 10.0), client.last_diagnostics()
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()

"""The node with an unregistered thermal camera: real MSRS pairs, real rclpy, the demo model.

Real MSRS night pairs (registered, 640x480) are made unregistered by re-imaging the thermal
with a virtual 320x256 camera (0.5x, 1.5 degree rotation, offset). With
``aux_registration: homography`` and the inverse mapping the node's masks must agree with the
masks of the registered pair; with the default (``auto``) the pair is refused, counted, and the
node keeps serving registered pairs.
"""

from conftest import SHARED_DATA
import cv2
import numpy as np
import pytest
from ros_harness import image_msg, NodeProcess, RosClient

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
        diag = client.last_diagnostics()
        assert diag is not None and diag['aux_registration'] == 'homography'
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
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()
    log = node.output()
    lines = [line for line in log.splitlines() if 'aux/image: aspect_mismatch' in line]
    assert len(lines) == 1, log  # throttled: one line for three refusals
    assert 'aux 320x256, rgb 640x480' in log and 'aux_registration' in log

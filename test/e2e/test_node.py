"""The segmentation node end to end: real rclpy, the node in its own process, a real model.

The checkpoint is a seeded, untrained ``smmcl_mit_b0`` (robot-sized preset) written with
``smmcl_core.checkpoint``; its predictions are arbitrary but deterministic, so the node's masks
must equal ``Segmenter.predict`` on the same images.
"""

import json

import numpy as np
import pytest
from ros_harness import image_msg, NodeProcess, RosClient

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def expected(segmenter, frame):
    rgb, depth = frame
    return segmenter.predict(rgb, depth, return_confidence=True)


def _mismatch(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a != b))


def _as_array(msg, dtype, channels=1):
    arr = np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width, channels)
    return arr[:, :, 0] if channels == 1 else arr


def _run(ros_env, tmp_path, checkpoint, **params):
    params = dict(checkpoint=checkpoint, qos='reliable', device='cpu', **params)
    node = NodeProcess(ros_env, params, tmp_path / 'node.log')
    client = RosClient()
    return node, client


def _send_and_wait(client, rgb_msg, aux_msg=None, count=None, timeout=20.0):
    want = (len(client.received['mask']) + 1) if count is None else count
    client.rgb_pub.publish(rgb_msg)
    if aux_msg is not None:
        client.aux_pub.publish(aux_msg)
    return client.spin_until(lambda: len(client.received['mask']) >= want, timeout)


def test_outputs_match_segmenter(ros_env, tmp_path, checkpoint, frame, expected):
    rgb, depth = frame
    labels, conf = expected
    node, client = _run(ros_env, tmp_path, checkpoint, publish_confidence=True)
    try:
        client.wait_ready(node)
        table = json.loads(client.labels[0].data)
        assert len(table) == 40 and table['0']['name'] == 'class_0'
        assert len(table['39']['color']) == 3
        # 1) rgb8 + 16UC1 millimetres; 2) bgr8 with odd row padding + 32FC1 metres.
        inputs = [
            (image_msg(rgb, 'rgb8', 10, 5, 'cam_a'), image_msg(depth, '16UC1', 10, 5)),
            (image_msg(np.ascontiguousarray(rgb[:, :, ::-1]), 'bgr8', 11, 7, 'cam_b', pad=3),
             image_msg(depth.astype(np.float32) / np.float32(1000.0), '32FC1', 11, 9_000_007)),
        ]
        for i, (rgb_msg, aux_msg) in enumerate(inputs):
            assert _send_and_wait(client, rgb_msg, aux_msg), node.output()
            client.spin_until(lambda: all(len(client.received[k]) > i for k in client.received),
                              10.0)
        for name in ('mask', 'color', 'overlay', 'confidence'):
            assert len(client.received[name]) == 2, name
        for i, (rgb_msg, _) in enumerate(inputs):
            mask = client.received['mask'][i]
            for name, encoding in (('mask', 'mono8'), ('color', 'rgb8'), ('overlay', 'rgb8'),
                                   ('confidence', '32FC1')):
                out = client.received[name][i]
                assert out.header == rgb_msg.header, name  # stamp and frame_id copied exactly
                assert (out.height, out.width, out.encoding) == (480, 640, encoding)
            got = _as_array(mask, np.uint8)
            assert _mismatch(got, labels) < 1e-3, f'frame {i}: mask differs from predict'
            color = _as_array(client.received['color'][i], np.uint8, 3)
            palette = np.array([table[str(k)]['color'] for k in range(40)], np.uint8)
            np.testing.assert_array_equal(color, palette[got])
            overlay = _as_array(client.received['overlay'][i], np.uint8, 3).astype(int)
            blend = (rgb.astype(int) + palette[got].astype(int)) / 2
            assert np.abs(overlay - blend).max() <= 1
            got_conf = _as_array(client.received['confidence'][i], np.float32)
            np.testing.assert_allclose(got_conf, conf, atol=1e-3)
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()  # SIGINT: clean shutdown


def _diag_until(client, check, timeout=8.0):
    ok = client.spin_until(lambda: client.last_diagnostics() is not None
                           and check(client.last_diagnostics()), timeout)
    return ok, client.last_diagnostics()


def test_overload_rgb_only_bounded_latency(ros_env, tmp_path, checkpoint, frame, segmenter):
    """RGB at 20 Hz, no aux, model ~0.5 s/frame: newest frame wins, drops counted."""
    rgb, _ = frame
    node, client = _run(ros_env, tmp_path, checkpoint, on_missing_aux='rgb_only',
                        aux_timeout=0.3, publish_color=False, publish_overlay=False)
    try:
        client.wait_ready(node)
        client.spin_for(0.4)  # past aux_timeout: RGB-only mode
        import time
        sent = {}
        n = 50
        for k in range(n):
            sent[k] = time.monotonic()
            client.rgb_pub.publish(image_msg(rgb, 'rgb8', 100 + k))
            client.spin_for(0.05)
        client.spin_until(lambda: client.received['mask']
                          and client.received['mask'][-1].header.stamp.sec == 100 + n - 1,
                          15.0)
        masks = client.received['mask']
        latencies = [arrived - sent[m.header.stamp.sec - 100]
                     for m, arrived in zip(masks, client.arrival['mask'])]
        assert 2 <= len(masks) < n
        assert masks[-1].header.stamp.sec == 100 + n - 1  # the newest frame is served
        stamps = [m.header.stamp.sec for m in masks]
        assert stamps == sorted(stamps)
        # Queued frames would wait ~n * inference; the latest-frame slot bounds it by ~2.
        ok, diag = _diag_until(client, lambda d: int(d['frames_out_total']) == len(masks))
        assert ok, diag
        inference_s = float(diag['inference_ms_max']) / 1e3 if diag['inference_ms_max'] != \
            'nan' else 1.0
        assert max(latencies) < 3 * max(inference_s, 0.2) + 1.0, (latencies, diag)
        assert int(diag['pairs_total']) == n
        assert int(diag['frames_dropped_total']) == n - len(masks)
        assert int(diag['frames_rgb_only_total']) == len(masks)
        zero_aux = np.zeros(rgb.shape[:2], np.uint16)
        assert _mismatch(_as_array(masks[-1], np.uint8), segmenter.predict(rgb, zero_aux)) < 1e-3
        print(f'overload: {len(masks)}/{n} frames out, latency max {max(latencies):.3f} s')
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()


def test_bad_configuration_exits_with_message(ros_env, tmp_path):
    missing = tmp_path / 'nope.pt'
    node = NodeProcess(ros_env, {'checkpoint': missing}, tmp_path / 'node.log')
    code = node.proc.wait(60)
    node.stop()
    assert code == 1
    assert str(missing) in node.output()
    node = NodeProcess(ros_env, {'checkpoint': missing, 'qos': 'fast'}, tmp_path / 'n2.log')
    assert node.proc.wait(60) == 1
    node.stop()
    assert "'qos'" in node.output() and 'sensor_data' in node.output()
    # A wrongly typed override (int for a double) is a clean configuration error too.
    node = NodeProcess(ros_env, {'checkpoint': missing, 'sync_slop': 1}, tmp_path / 'n3.log')
    assert node.proc.wait(60) == 1
    node.stop()
    assert 'cannot start' in node.output() and 'sync_slop' in node.output()
    assert 'Traceback' not in node.output()
    # No checkpoint at all: an error naming the parameter, never the demo model silently.
    node = NodeProcess(ros_env, {}, tmp_path / 'n4.log')
    assert node.proc.wait(60) == 1
    node.stop()
    assert "parameter 'checkpoint'" in node.output() and "'demo'" in node.output()

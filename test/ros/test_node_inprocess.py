"""The node's wiring in-process: SegmentationNode and a client in one rclpy context.

No subprocess and no inter-process DDS: the node's subscriptions, decode step, problem counts,
diagnostics and publishers are exercised on small images, with the model of ``conftest.py``
(torch backend). What only processes show (QoS between processes, SIGINT, lifecycle services,
camera-sized images on default parameters) stays in test/e2e.
"""

import numpy as np
import pytest
from ros_harness import image_msg, raw_msg, spin_until

pytestmark = pytest.mark.ros

H, W = 60, 80


class InProcess:
    def __init__(self, checkpoint, **params):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image

        from smmcl_ros.node.node import SegmentationNode
        from smmcl_ros.node.qos import reliable

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        values = dict(checkpoint=str(checkpoint), device='cpu', backend='torch',
                      qos='reliable', diagnostics_period=0.2, **params)
        self.node = SegmentationNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.client = rclpy.create_node('client', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in (self.node, self.client):
            self.executor.add_node(node)
        qos = reliable(10)
        self.rgb = self.client.create_publisher(Image, 'rgb/image', qos)
        self.aux = self.client.create_publisher(Image, 'aux/image', qos)
        self.masks, self.diagnostics = [], []
        self.client.create_subscription(Image, 'segmentation/mask', self.masks.append, qos)
        self.client.create_subscription(DiagnosticArray, '/diagnostics',
                                        self.diagnostics.append, 10)
        assert self.spin_until(lambda: self.rgb.get_subscription_count() > 0
                               and self.aux.get_subscription_count() > 0, 10.0)

    def spin_until(self, predicate, timeout):
        return spin_until(self.executor, predicate, timeout)

    def diag(self):
        if not self.diagnostics:
            return {}
        status = self.diagnostics[-1].status[0]
        return {kv.key: kv.value for kv in status.values}

    def close(self):
        self.node.close()
        self.executor.shutdown()
        self.client.destroy_node()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


@pytest.fixture
def small(frame):
    import cv2
    rgb, depth = frame
    return (cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA),
            cv2.resize(depth, (W, H), interpolation=cv2.INTER_NEAREST))


def test_bad_inputs_are_counted_and_good_frames_keep_coming(ros_env, checkpoint, segmenter,
                                                            small, capfd):
    rgb, depth = small
    ros = InProcess(checkpoint, publish_color=False, publish_overlay=False)
    try:
        good = rgb.tobytes()
        for pub, msg in [
                (ros.rgb, raw_msg('yuv422', H, W, 2 * W, good[:2 * W * H], 20)),
                (ros.rgb, raw_msg('16UC1', H, W, 2 * W, good[:2 * W * H], 20)),
                (ros.rgb, raw_msg('rgb8', H, W, 3 * W, good[:-1], 20)),
                (ros.rgb, raw_msg('rgb8', 0, 0, 0, b'', 20)),
                (ros.aux, raw_msg('16UC1', H, W, 2 * W, b'\x00' * 100, 20)),
                (ros.aux, raw_msg('rgb8', H, W, 3 * W, good, 20))]:
            pub.publish(msg)
        for sec in (30, 31):
            ros.rgb.publish(image_msg(rgb, 'rgb8', sec))
            ros.aux.publish(image_msg(depth, '16UC1', sec))
            assert ros.spin_until(lambda: len(ros.masks) == sec - 29, 30.0)
        expected = {'input.rgb/image.unknown_encoding': '1',
                    'input.rgb/image.wrong_encoding': '1', 'input.rgb/image.short_data': '1',
                    'input.rgb/image.zero_size': '1', 'input.aux/image.short_data': '1',
                    'input.aux/image.wrong_encoding': '1', 'inputs_rejected_total': '6',
                    'frames_out_total': '2'}
        assert ros.spin_until(lambda: all(ros.diag().get(k) == v for k, v in expected.items()),
                              10.0), ros.diag()
        labels = segmenter.predict(rgb, depth)
        for mask in ros.masks:
            got = np.frombuffer(bytes(mask.data), np.uint8).reshape(H, W)
            np.testing.assert_array_equal(got, labels)
        assert [m.header.stamp.sec for m in ros.masks] == [30, 31]
        assert (ros.diag()['device'], ros.diag()['backend']) == ('cpu', 'torch')
    finally:
        ros.close()
    log = capfd.readouterr().err
    for line in ('rgb/image: unknown_encoding', 'rgb/image: zero_size', 'aux/image: short_data'):
        assert line in log  # a log line names topic and reason


def test_rgb_only_after_aux_timeout(ros_env, checkpoint, segmenter, small):
    rgb, _ = small
    ros = InProcess(checkpoint, publish_color=False, publish_overlay=False,
                    on_missing_aux='rgb_only', aux_timeout=0.2)
    try:
        ros.spin_until(lambda: False, 0.3)
        ros.rgb.publish(image_msg(rgb, 'rgb8', 40))
        assert ros.spin_until(lambda: ros.masks, 30.0)
        got = np.frombuffer(bytes(ros.masks[0].data), np.uint8).reshape(H, W)
        np.testing.assert_array_equal(got, segmenter.predict(rgb, np.zeros((H, W), np.uint16)))
        assert ros.spin_until(lambda: ros.diag().get('frames_rgb_only_total') == '1', 10.0)
    finally:
        ros.close()

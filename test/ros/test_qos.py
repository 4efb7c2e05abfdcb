"""Input QoS decisions (smmcl_ros.node.qos) against real rclpy publishers in one context."""

import time

import pytest

pytestmark = pytest.mark.ros


def test_decide_follows_ros2_topic_echo():
    from rclpy.qos import ReliabilityPolicy

    from smmcl_ros.node.qos import BEST_EFFORT, decide, RELIABLE

    assert decide([]) == RELIABLE  # nothing yet: a reliable camera then matches at once
    assert decide([ReliabilityPolicy.RELIABLE] * 2) == RELIABLE
    assert decide([ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT]) == BEST_EFFORT
    assert decide([ReliabilityPolicy.BEST_EFFORT]) == BEST_EFFORT


def test_output_profiles():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy

    from smmcl_ros.node.qos import output_profile, OUTPUT_DEPTH

    reliable = output_profile('reliable')
    assert reliable.reliability == ReliabilityPolicy.RELIABLE
    assert reliable.history == HistoryPolicy.KEEP_LAST and reliable.depth == OUTPUT_DEPTH <= 2
    assert reliable.durability == DurabilityPolicy.VOLATILE
    assert output_profile('sensor_data').reliability == ReliabilityPolicy.BEST_EFFORT
    with pytest.raises(ValueError, match='fast.*reliable'):
        output_profile('fast')


@pytest.fixture
def context(ros_env):
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def _spin_until(executor, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        executor.spin_once(timeout_sec=0.02)
    return predicate()


def test_auto_subscription_follows_publishers_and_keeps_receiving(context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from smmcl_ros.node.qos import AdaptiveSubscription, BEST_EFFORT, RELIABLE

    node = rclpy.create_node('qos_node', context=context)
    camera = rclpy.create_node('qos_camera', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(camera)
    got, log = [], []
    sub = AdaptiveSubscription(node, String, 'in', lambda m: got.append(m.data), 'auto',
                               log.append)
    assert sub.reliability == RELIABLE and sub.publishers == 0 and sub.resolved == '/in'
    assert 'none yet' in log[-1] and 'subscribing reliable' in log[-1]

    def refresh_until(state, publishers):
        return _spin_until(executor, lambda: (sub.refresh() or True)
                           and (sub.reliability, sub.publishers) == (state, publishers))

    reliable_pub = camera.create_publisher(String, 'in', QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE))
    assert refresh_until(RELIABLE, 1)
    assert sub.changes == 0 and 'keeping reliable' in log[-1]  # no re-creation needed
    assert _spin_until(executor, lambda: reliable_pub.get_subscription_count() == 1)
    reliable_pub.publish(String(data='a'))
    assert _spin_until(executor, lambda: got == ['a'])

    # A best-effort publisher joins: one best-effort publisher makes the input best effort.
    best_effort_pub = camera.create_publisher(String, 'in', qos_profile_sensor_data)
    assert best_effort_pub.get_subscription_count() == 0  # reliable sub never matches it
    assert refresh_until(BEST_EFFORT, 2)
    assert sub.changes == 1 and 'subscribing best_effort' in log[-1]
    assert '[best_effort, reliable]' in log[-1]
    assert _spin_until(executor, lambda: best_effort_pub.get_subscription_count() == 1
                       and reliable_pub.get_subscription_count() == 1)
    best_effort_pub.publish(String(data='b'))
    reliable_pub.publish(String(data='c'))
    assert _spin_until(executor, lambda: got == ['a', 'b', 'c'])

    # It leaves: back to reliable.
    camera.destroy_publisher(best_effort_pub)
    assert refresh_until(RELIABLE, 1)
    assert sub.changes == 2
    assert _spin_until(executor, lambda: reliable_pub.get_subscription_count() == 1)
    reliable_pub.publish(String(data='d'))
    assert _spin_until(executor, lambda: got[-1] == 'd')

    fixed = AdaptiveSubscription(node, String, 'in', lambda m: None, 'sensor_data', log.append)
    assert fixed.reliability == BEST_EFFORT
    assert not fixed.refresh()
    with pytest.raises(ValueError, match="'fast'.*auto"):
        AdaptiveSubscription(node, String, 'in', lambda m: None, 'fast', log.append)
    sub.destroy()
    fixed.destroy()
    executor.shutdown()
    camera.destroy_node()
    node.destroy_node()

"""LabelInfo over DDS: built by messages.label_info in one process, received late in another.

Uses the test-only vision_msgs package built by ``msgs_fixture`` (skips with the reason where the
build tools are missing).
"""

import os
from pathlib import Path
import subprocess
import sys
import time

from msgs_fixture import vision_msgs  # noqa: F401  (session fixture)
import pytest

from smmcl_core.data.classes import NYU40_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = """
import sys, time
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from smmcl_ros.messages.label_info import build_label_info, label_info_types, LATCHED_DEPTH
types, reason = label_info_types()
assert types is not None, reason
rclpy.init()
node = rclpy.create_node('label_info_publisher')
qos = QoSProfile(depth=LATCHED_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
pub = node.create_publisher(types.label_info, 'segmentation/label_info', qos)
pub.publish(build_label_info(types, sys.argv[1].split(','), float(sys.argv[2])))
print('published', flush=True)
sys.stdin.read()  # until the test closes stdin
"""


@pytest.mark.ros
def test_label_info_reaches_a_late_subscriber(ros_env, vision_msgs):  # noqa: F811
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import LabelInfo

    env = vision_msgs.env(ros_env)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), env['PYTHONPATH']])
    names = list(NYU40_CLASSES)
    proc = subprocess.Popen([sys.executable, '-c', PUBLISHER, ','.join(names), '0.25'],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    try:
        line = proc.stdout.readline()
        assert line.strip() == 'published', line + proc.stdout.read()
        time.sleep(0.5)  # the message is out before this subscriber exists
        rclpy.init(context=context)
        node = rclpy.create_node('label_info_late_subscriber', context=context)
        got = []
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(LabelInfo, 'segmentation/label_info', got.append, latched)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 20.0
        while not got and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert got, 'no LabelInfo within 20 s (transient local)'
        msg = got[0]
        assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(names))
        assert msg.threshold == pytest.approx(0.25)
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        rclpy.try_shutdown(context=context)


def test_label_info_threshold_is_checked(vision_msgs):  # noqa: F811
    from smmcl_ros.messages.label_info import build_label_info, label_info_types

    types, reason = label_info_types()
    assert types is not None, reason
    with pytest.raises(ValueError, match=r"'label_info_threshold' must be in \[0, 1\], got 1.5"):
        build_label_info(types, ['a'], 1.5)


def test_missing_build_tools_are_named(monkeypatch, tmp_path):
    """Without colcon/cmake on PATH the build refuses, naming them (the fixture then skips)."""
    from msgs_fixture import build_msgs

    monkeypatch.setenv('PATH', str(tmp_path))
    missing = build_msgs.missing_tools()
    assert 'colcon (executable)' in missing and 'cmake (executable)' in missing
    with pytest.raises(build_msgs.MsgsUnavailable, match='missing colcon'):
        build_msgs.build(tmp_path / 'cache')
    assert not (tmp_path / 'cache').exists()

"""The lifecycle node through repeated configure -> activate -> frames -> deactivate -> cleanup.

Each cycle creates and releases a Segmenter and its engine (OpenVINO compiled models and core,
an ONNX Runtime session, or the torch network) inside one long-lived rclpy process, beside
torch and rclpy, as a robot's lifecycle manager would do. The process must survive every cycle
and serve real frames in each; its resident memory is recorded after each cleanup.
``benchmarks/bench_node_cycles.py`` runs the long version (>= 20 cycles per backend).
"""

from pathlib import Path
from typing import List

import pytest
from ros_harness import image_msg, LifecycleManager, NodeProcess, RosClient, rss_mib

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CYCLES = 4
FRAMES = 2  # pairs answered per active phase
BACKENDS = ('auto', 'openvino', 'onnxruntime', 'torch')


def _cycle(manager: LifecycleManager, client: RosClient, node: NodeProcess, frame,
           first_sec: int) -> None:
    """One configure -> activate -> FRAMES masks -> deactivate -> cleanup cycle."""
    from lifecycle_msgs.msg import Transition

    rgb, depth = frame
    assert manager.transition(Transition.TRANSITION_CONFIGURE), node.output()
    assert manager.transition(Transition.TRANSITION_ACTIVATE), node.output()
    assert client.spin_until(lambda: client.rgb_pub.get_subscription_count() > 0
                             and client.aux_pub.get_subscription_count() > 0
                             and client.node.count_publishers('segmentation/mask') > 0,
                             30.0), node.output()
    client.spin_for(0.3)  # let the output subscriptions match too
    for sec in range(first_sec, first_sec + FRAMES):
        client.rgb_pub.publish(image_msg(rgb, 'rgb8', sec))
        client.aux_pub.publish(image_msg(depth, '16UC1', sec))
        assert client.spin_until(
            lambda: sec in [m.header.stamp.sec for m in client.received['mask']]
            or node.proc.poll() is not None, 60.0), node.output()
        assert node.proc.poll() is None, f'node died (code {node.proc.returncode}):\n' \
            f'{node.output()}'
    assert manager.transition(Transition.TRANSITION_DEACTIVATE), node.output()
    assert manager.transition(Transition.TRANSITION_CLEANUP), node.output()
    assert manager.state() == 'unconfigured'


@pytest.fixture(scope='module')
def engine_cache(tmp_path_factory) -> Path:
    """One export cache for the module's node processes (not the user's ~/.cache/smmcl)."""
    return tmp_path_factory.mktemp('engine_cache')


@pytest.mark.parametrize('backend', BACKENDS)
def test_lifecycle_cycles_serve_frames_and_release_the_engine(
        backend, ros_env, tmp_path, checkpoint, frame, engine_cache):
    from smmcl_core.engines import available

    if backend != 'auto' and not available(backend):
        pytest.skip(f'{backend} is not installed here')
    env = dict(ros_env, SMMCL_CACHE_DIR=str(engine_cache))
    node = NodeProcess(env, {'checkpoint': checkpoint, 'backend': backend},
                       tmp_path / 'node.log', module='smmcl_ros.node.lifecycle')
    client = RosClient(camera=True)
    manager = LifecycleManager(client)
    rss: List[float] = []
    try:
        manager.wait(node)
        for cycle in range(CYCLES):
            _cycle(manager, client, node, frame, 10 * (cycle + 1))
            rss.append(rss_mib(node.proc.pid))
        served = sorted({m.header.stamp.sec for m in client.received['mask']})
        assert served == [10 * (c + 1) + i for c in range(CYCLES) for i in range(FRAMES)]
    finally:
        code = node.stop()
        client.close()
    log = node.output()
    print(f'{backend}: RSS after each cleanup (MiB): ' + ', '.join(f'{r:.0f}' for r in rss))
    assert code == 0, log
    assert 'Traceback' not in log
    expected = backend if backend != 'auto' else next(
        n for n in ('openvino', 'onnxruntime', 'torch') if available(n))
    assert log.count(f'backend={expected},') == CYCLES, log
    assert log.count('model released') == CYCLES
    # The first cycle loads the runtimes and warms the allocators; later cycles add nothing
    # that stays: a leak of one engine (graph, compiled model, session) per cycle is far
    # above this bound. Cleanup returns freed heap to the system (malloc_trim), yet the
    # allocator still shows a passing spike now and then (torch: +57 MiB in 1 of 12 cycles),
    # so the claim is on the lowest RSS after cycle 2: a leak raises every later cycle.
    assert min(rss[2:]) - rss[1] < 40, f'RSS grew after cycle 2: {rss} MiB'

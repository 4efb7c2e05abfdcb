"""``ros2 launch`` as users run it: node processes started with the launch file's arguments.

Each node is started as launch_ros starts it: the arguments the launch file passes
(``launch_args.node_command``), then launch_ros's own ``--ros-args -r __node:=... -r __ns:=...``,
with the large-image Fast DDS profile in its environment (the launch file's default). Checked as
a robot integrator would: a changed copy of config/segmentation.yaml applies in a namespace, the
inputs are remapped, ``~`` paths work, a node that cannot start says so in one FATAL line and
exits 1, and Ctrl-C from a terminal (SIGINT twice: the terminal's and the one launch forwards)
ends the node with code 0, no traceback and none of its shared-memory segments left in /dev/shm.
"""

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Set

from conftest import SHARED_DATA
import pytest
from ros_harness import NodeProcess, REPO_ROOT, RosClient
import yaml

from smmcl_ros.launch_args import FASTDDS_PROFILE, node_command, node_env, NODE_NAME

pytestmark = pytest.mark.ros

MODULES = {'plain': 'smmcl_ros.node', 'lifecycle': 'smmcl_ros.node.lifecycle'}
CONFIG = REPO_ROOT / 'config' / 'segmentation.yaml'
PROFILE = REPO_ROOT / 'config' / FASTDDS_PROFILE
CAMERA = REPO_ROOT / 'test' / 'e2e' / 'camera_driver.py'
# Parameter values that differ from the defaults: the shipped file equals the defaults, so a file
# that is silently not applied would go unnoticed with it.
CHANGED = {'overlay_alpha': 0.25, 'log_throttle_sec': 2.5, 'sync_slop': 0.08,
           'publish_confidence': True, 'aux_timeout': 3.0}


class LaunchedNode(NodeProcess):
    """``python -m module <arguments> --ros-args -r __node:=... [-r __ns:=...]``, as launch_ros."""

    def __init__(self, env: Dict[str, str], arguments: List[str], log: Path, module: str,
                 namespace: Optional[str] = None) -> None:
        ros = ['--ros-args', '-r', f'__node:={NODE_NAME}']
        if namespace:
            ros += ['-r', f'__ns:={namespace}']
        env = dict(env, **node_env(True, str(PROFILE), env))
        env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), env.get('PYTHONPATH', '')])
        env.setdefault('OMP_NUM_THREADS', '1')
        self.log = log
        self._log_file = open(log, 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', module, *arguments, *ros],
                                     cwd=REPO_ROOT, env=env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT)


def _call(client: RosClient, srv_type, name: str, request, timeout: float = 60.0):
    service = client.node.create_client(srv_type, name)
    assert client.spin_until(service.service_is_ready, timeout), f'no service {name}'
    future = service.call_async(request)
    assert client.spin_until(future.done, timeout), f'no reply from {name}'
    return future.result()


def _parameters(client: RosClient, node: str, names: List[str]) -> Dict[str, object]:
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    reply = _call(client, GetParameters, f'{node}/get_parameters',
                  GetParameters.Request(names=names))
    return {name: parameter_value_to_python(value) for name, value in zip(names, reply.values)}


def _configure_and_activate(client: RosClient, node: str, process: NodeProcess) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        reply = _call(client, ChangeState, f'{node}/change_state',
                      ChangeState.Request(transition=Transition(id=transition)))
        assert reply.success, process.output()


def _start_serving(client: RosClient, kind: str, node: str, process: NodeProcess) -> None:
    """Until the node is active and its latched labels arrived.

    The plain node is active from the start, the lifecycle one after configure + activate.
    """
    if kind == 'lifecycle':
        _configure_and_activate(client, node, process)
    ok = client.spin_until(lambda: ('ready:' in process.output() and bool(client.labels))
                           or process.proc.poll() is not None, 120.0)
    assert ok and process.proc.poll() is None, f'node not active:\n{process.output()}'


def _node_env(ros_env: Dict[str, str], home: Path) -> Dict[str, str]:
    """``ros_env`` with HOME moved to ``home``; the engine cache stays where it was."""
    from smmcl_core.engines.cache import default_cache_dir

    home.mkdir(exist_ok=True)
    return dict(ros_env, HOME=str(home), SMMCL_CACHE_DIR=str(default_cache_dir()))


def _changed_params_file(path: Path) -> Path:
    """config/segmentation.yaml with CHANGED written under its own top key."""
    config = yaml.safe_load(CONFIG.read_text())
    (key,) = config
    config[key]['ros__parameters'].update(CHANGED)
    path.write_text(yaml.safe_dump(config))
    return path


def _subscribers(client: RosClient, topic: str) -> Set[str]:
    return {f'{info.node_namespace.rstrip("/")}/{info.node_name}'
            for info in client.node.get_subscriptions_info_by_topic(topic)}


@pytest.mark.parametrize('kind', ['plain', 'lifecycle'])
def test_namespaced_node_with_a_changed_params_file_remaps_and_home_paths(
        ros_env, tmp_path, checkpoint, kind):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    home = tmp_path / 'home'
    env = _node_env(ros_env, home)
    (home / 'models').mkdir()
    shutil.copy(checkpoint, home / 'models' / 'depth.pt')
    arguments = node_command(
        params_file=str(_changed_params_file(tmp_path / 'mine.yaml')),
        rgb_topic='/cam/color/image_raw', aux_topic='/cam/depth/image_rect_raw',
        rgb_info_topic='/cam/color/camera_info', aux_info_topic='/cam/depth/camera_info',
        checkpoint='~/models/depth.pt', device='cpu')
    process = LaunchedNode(env, arguments, tmp_path / 'node.log', MODULES[kind], '/robot1')
    client = RosClient(camera=False)
    fqn = f'/robot1/{NODE_NAME}'
    try:
        # Outputs are relative: the latched labels come on /robot1/segmentation/labels.
        labels = []
        client.node.create_subscription(
            String, '/robot1/segmentation/labels', labels.append,
            QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        client.labels = labels
        _start_serving(client, kind, fqn, process)
        got = _parameters(client, fqn, [*CHANGED, 'checkpoint', 'device'])
        assert got == dict(CHANGED, checkpoint='~/models/depth.pt', device='cpu'), \
            process.output()
        # Every input on its remapped topic; aux/camera_info only for HHA checkpoints.
        for topic in ('/cam/color/image_raw', '/cam/depth/image_rect_raw',
                      '/cam/color/camera_info'):
            assert client.spin_until(lambda: fqn in _subscribers(client, topic), 10.0), topic
        assert fqn not in _subscribers(client, '/robot1/rgb/camera_info')
        assert client.node.count_publishers('/robot1/segmentation/mask') == 1
        assert client.node.count_publishers('/segmentation/mask') == 0
    finally:
        code = process.stop()
        client.close()
    assert code == 0, process.output()
    log = process.output()
    assert 'Traceback' not in log
    if kind == 'lifecycle':  # the expanded checkpoint path is logged on configure
        assert f'configured: checkpoint {home}/models/depth.pt' in log


@pytest.mark.parametrize('kind, ros_args, named', [
    ('plain', ['-p', 'checkpoint:=~/models/missing.pt'], 'models/missing.pt'),
    ('lifecycle', ['-p', 'sync_slop:=fast'], 'sync_slop'),
])
def test_node_that_cannot_start_logs_one_fatal_line_and_exits_1(
        ros_env, tmp_path, kind, ros_args, named):
    home = tmp_path / 'home'
    arguments = node_command(params_file=str(CONFIG)) + ros_args
    process = LaunchedNode(_node_env(ros_env, home), arguments, tmp_path / 'node.log',
                           MODULES[kind])
    try:
        code = process.proc.wait(60)
    finally:
        process.stop()
    log = process.output()
    assert code == 1, log
    fatal = [line for line in log.splitlines() if '[FATAL]' in line]
    assert len(fatal) == 1, log
    assert 'cannot start:' in fatal[0] and named in fatal[0] and 'exit code 1' in fatal[0]
    if kind == 'plain':  # ~ expanded in the message too: the path the node looked for
        assert str(home / 'models' / 'missing.pt') in fatal[0]
    assert 'Traceback' not in log


def _own_segments(pid: int) -> Set[str]:
    """The Fast DDS shared-memory segments process ``pid`` owns, with their lock files.

    A participant keeps its segment's lock file (``<segment>_el``) open for as long as it
    lives: its own segment (``fastrtps_<16 hex>``, 16 MB with the large-image profile). The
    segments of other participants that it maps to read from, and the port segments
    (``fastrtps_port<N>``, shared by every participant on the port) are not its own.
    """
    own = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        name = Path(target).name
        if (target.startswith('/dev/shm/fast') and name.endswith('_el')
                and not name.startswith('fastrtps_port')):
            own |= {target, target[:-len('_el')]}
    return own


def _camera(env: Dict[str, str], count: int) -> subprocess.Popen:
    """test/e2e/camera_driver.py: 640x480 RGB-D pairs at 10 Hz, large-image profile.

    Real NYUv2 pairs when ``../shared`` is there, else a synthetic scene: what these tests
    check (signals during teardown) does not depend on the image content.
    """
    env = dict(env, **node_env(True, str(PROFILE), env), OMP_NUM_THREADS='1')
    source = [] if (SHARED_DATA / 'nyuv2_samples').is_dir() else ['--synthetic']
    return subprocess.Popen([sys.executable, str(CAMERA), '--count', str(count), '--period',
                             '0.1', *source], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize('kind, frames, first', [
    ('plain', False, signal.SIGINT),
    ('plain', True, signal.SIGINT),
    ('lifecycle', False, signal.SIGINT),
    ('lifecycle', True, signal.SIGINT),
    ('plain', False, signal.SIGTERM),
])
def test_second_signal_during_teardown(ros_env, tmp_path, checkpoint, kind, frames, first):
    """Ctrl-C under ``ros2 launch``: the first signal, then SIGINT again as teardown starts."""
    arguments = node_command(params_file=str(CONFIG), checkpoint=str(checkpoint))
    process = LaunchedNode(ros_env, arguments, tmp_path / 'node.log', MODULES[kind])
    client = RosClient(camera=False)
    camera = None
    try:
        _start_serving(client, kind, f'/{NODE_NAME}', process)
        if frames:
            camera = _camera(ros_env, count=600)
            ok = client.spin_until(lambda: len(client.received['mask']) >= 3
                                   or process.proc.poll() is not None
                                   or camera.poll() is not None, 120.0)
            assert camera.poll() is None, f'camera driver exited:\n{camera.communicate()[0]}'
            assert ok and process.proc.poll() is None, process.output()
        own = _own_segments(process.proc.pid)
        assert own and all(os.path.exists(p) for p in own), own
        process.proc.send_signal(first)
        sent = time.monotonic()
        # The second SIGINT as soon as the teardown has begun (the node logs it first).
        while (time.monotonic() - sent < 30.0 and process.proc.poll() is None
               and 'shutting down' not in process.output()):
            time.sleep(0.002)
        gap = time.monotonic() - sent
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGINT)
        code = process.proc.wait(60)
    finally:
        stopped = process.stop()
        if camera is not None and camera.poll() is None:
            camera.send_signal(signal.SIGINT)
            camera.communicate(timeout=30)
        client.close()
    log = process.output()
    print(f'{kind}, frames={frames}: second SIGINT {gap * 1e3:.0f} ms after {first.name}; '
          f'{len(client.received["mask"])} masks; own segments {sorted(own)}')
    assert code == 0 and stopped == 0, log
    assert 'Traceback' not in log and 'KeyboardInterrupt' not in log, log
    assert 'Failed to publish' not in log, log  # nothing logged through a dead context
    assert log.count(f'{first.name}: shutting down') == 1, log
    left = sorted(p for p in own if os.path.exists(p))
    assert not left, f'shared-memory segments left behind: {left}'


@pytest.mark.parametrize('kind', ['plain', 'lifecycle'])
def test_signal_storm_during_teardown(ros_env, tmp_path, checkpoint, kind):
    """SIGINT every 2 ms from the first one until the node has exited: still exit code 0.

    A terminal's Ctrl-C held down, or a supervisor that repeats its signal. rclpy's own signal
    handlers triggered executor guard conditions from a native thread while the teardown
    destroyed them (a use after free, SIGSEGV); the node installs none of them.
    """
    arguments = node_command(params_file=str(CONFIG), checkpoint=str(checkpoint))
    process = LaunchedNode(ros_env, arguments, tmp_path / 'node.log', MODULES[kind])
    client = RosClient(camera=False)
    camera = None
    sent = 0
    try:
        _start_serving(client, kind, f'/{NODE_NAME}', process)
        camera = _camera(ros_env, count=600)
        ok = client.spin_until(lambda: len(client.received['mask']) >= 3
                               or process.proc.poll() is not None
                               or camera.poll() is not None, 120.0)
        assert ok and process.proc.poll() is None, process.output()
        deadline = time.monotonic() + 60.0
        while process.proc.poll() is None and time.monotonic() < deadline:
            process.proc.send_signal(signal.SIGINT)
            sent += 1
            time.sleep(0.002)
        code = process.proc.wait(30)
    finally:
        stopped = process.stop()
        if camera is not None and camera.poll() is None:
            camera.send_signal(signal.SIGINT)
            camera.communicate(timeout=30)
        client.close()
    log = process.output()
    print(f'{kind}: {sent} SIGINTs until exit')
    assert code == 0 and stopped == 0, log
    assert 'Traceback' not in log and 'KeyboardInterrupt' not in log, log
    assert log.count('SIGINT: shutting down') == 1, log

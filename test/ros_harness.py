"""Helpers for the ROS tests: a tiny real checkpoint, the node in its own process, a test node.

Not a test module (no ``test_`` prefix). The node runs as ``python -m smmcl_ros.node`` in a
subprocess on the loopback-only DDS domain given by the ``ros_env`` fixture.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESET = 'smmcl_mit_b0'  # robot-sized preset
NUM_CLASSES = 40


def make_checkpoint(path: Path, modality: str = 'depth') -> Path:
    """Save a randomly initialised (seeded) robot-sized model as a real smmcl checkpoint."""
    import torch

    from smmcl_core.checkpoint import build_checkpoint, build_meta, save_checkpoint
    from smmcl_core.data.classes import voc_palette
    from smmcl_core.models import create_model

    torch.manual_seed(0)
    model = create_model(PRESET, NUM_CLASSES).eval()
    meta = build_meta(PRESET, NUM_CLASSES, [f'class_{i}' for i in range(NUM_CLASSES)],
                      voc_palette(NUM_CLASSES), modality)
    save_checkpoint(path, build_checkpoint(model, {}, meta))
    return path


def spin_until(executor, predicate: Callable[[], bool], timeout: float) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` s pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.02)
    return predicate()


class NodeProcess:
    """``python -m smmcl_ros.node`` (or ``module`` with ``module_args``) with ROS parameters.

    Stopped with SIGINT. ``module='no_torch', module_args=['smmcl_ros.node']`` runs the node
    in a process where torch is not importable (``test/no_torch.py``).
    """

    def __init__(self, env: Dict[str, str], params: Dict[str, object], log: Path,
                 module: str = 'smmcl_ros.node', module_args: Sequence[str] = ()) -> None:
        args = [sys.executable, '-m', module, *module_args, '--ros-args']
        for key, value in params.items():
            value = str(value).lower() if isinstance(value, bool) else value
            args += ['-p', f'{key}:={value}']
        env = dict(env)
        env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), env.get('PYTHONPATH', '')])
        env.setdefault('OMP_NUM_THREADS', '1')  # the machine is shared; keep timings stable
        self.log = log
        self._log_file = open(log, 'w')
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT and wait; returns the exit code (kills and raises if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f'node did not exit within {timeout} s of SIGINT')
        finally:
            self._log_file.close()
        return code

    def output(self) -> str:
        return self.log.read_text()


class RosClient:
    """A test-side rclpy node in its own context: publishers for the inputs, output recorders."""

    def __init__(self, reliable: bool = True, camera: bool = True) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import (DurabilityPolicy, qos_profile_sensor_data, QoSProfile,
                               ReliabilityPolicy)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('smmcl_test_client', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = (QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if reliable
               else qos_profile_sensor_data)
        self.rgb_pub = self.aux_pub = self.info_pub = None
        if camera:
            self.add_camera(reliable)
        self.received: Dict[str, List] = {k: [] for k in
                                          ('mask', 'color', 'overlay', 'confidence')}
        self.arrival: Dict[str, List[float]] = {k: [] for k in self.received}
        for name in self.received:
            self.node.create_subscription(Image, f'segmentation/{name}',
                                          self._recorder(name), qos)
        self.labels: List = []
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, 'segmentation/labels', self.labels.append, latched)
        self.diagnostics: List = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics.append, 10)

    def add_camera(self, reliable: bool, depth: int = 10) -> None:
        """Camera-driver publishers for rgb/image, aux/image and rgb/camera_info."""
        from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        qos = (QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE) if reliable
               else qos_profile_sensor_data)
        self.rgb_pub = self.node.create_publisher(Image, 'rgb/image', qos)
        self.aux_pub = self.node.create_publisher(Image, 'aux/image', qos)
        self.info_pub = self.node.create_publisher(CameraInfo, 'rgb/camera_info', qos)

    def remove_camera(self) -> None:
        """Destroy the camera publishers (the driver went away)."""
        for pub in (self.rgb_pub, self.aux_pub, self.info_pub):
            if pub is not None:
                self.node.destroy_publisher(pub)
        self.rgb_pub = self.aux_pub = self.info_pub = None

    def _recorder(self, name: str) -> Callable:
        def record(msg) -> None:
            self.received[name].append(msg)
            self.arrival[name].append(time.monotonic())
        return record

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def wait_ready(self, node: NodeProcess, timeout: float = 60.0) -> None:
        """Until the node's latched labels arrived and both inputs are matched."""
        ok = self.spin_until(
            lambda: (bool(self.labels) and self.rgb_pub.get_subscription_count() > 0
                     and self.aux_pub.get_subscription_count() > 0
                     and self.node.count_publishers('segmentation/mask') > 0)
            or node.proc.poll() is not None, timeout)
        assert ok and node.proc.poll() is None, f'node not ready:\n{node.output()}'
        self.spin_for(0.3)  # let the output subscriptions match too

    def last_diagnostics(self) -> Optional[Dict[str, str]]:
        if not self.diagnostics:
            return None
        status = self.diagnostics[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        values['_level'] = int.from_bytes(status.level, 'little') \
            if isinstance(status.level, bytes) else int(status.level)
        values['_message'] = status.message
        return values

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def image_msg(array: np.ndarray, encoding: str, sec: int, nanosec: int = 0,
              frame_id: str = 'camera', pad: int = 0):
    """A sensor_msgs/Image built by hand (rows optionally padded), native byte order."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(sec), int(nanosec)
    msg.header.frame_id = frame_id
    height, width = array.shape[:2]
    rows = np.ascontiguousarray(array).reshape(height, -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((height, pad), np.uint8)], axis=1)
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = rows.shape[1]
    msg.data = rows.tobytes()
    return msg


def camera_info_msg(K: np.ndarray, height: int = 480, width: int = 640, sec: int = 0):
    """A pinhole sensor_msgs/CameraInfo (no distortion) with intrinsics ``K`` (3x3)."""
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.stamp.sec = sec
    msg.header.frame_id = 'camera'
    msg.height, msg.width = height, width
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in np.asarray(K, np.float64).ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [msg.k[0], 0.0, msg.k[2], 0.0, 0.0, msg.k[4], msg.k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def raw_msg(encoding: str, height: int, width: int, step: int, data: bytes, sec: int):
    """A deliberately inconsistent sensor_msgs/Image for the bad-input tests."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec = sec
    msg.height, msg.width, msg.encoding, msg.step = height, width, encoding, step
    msg.data = data
    return msg


class LifecycleManager:
    """Lifecycle and parameter service clients for a managed node.

    Calls ``~/change_state``, ``~/get_state`` and ``~/set_parameters`` as Nav2 or
    ``ros2 lifecycle`` would.
    """

    def __init__(self, client: RosClient, node_name: str = '/smmcl_segmentation') -> None:
        from lifecycle_msgs.srv import ChangeState, GetState
        from rcl_interfaces.srv import SetParameters

        self.client = client
        self.change = client.node.create_client(ChangeState, f'{node_name}/change_state')
        self.get = client.node.create_client(GetState, f'{node_name}/get_state')
        self.set = client.node.create_client(SetParameters, f'{node_name}/set_parameters')

    def _call(self, service, request, timeout: float = 60.0):
        future = service.call_async(request)
        assert self.client.spin_until(future.done, timeout), f'no reply from {service.srv_name}'
        return future.result()

    def wait(self, node: NodeProcess, timeout: float = 60.0) -> None:
        """Until the lifecycle services answer (fails if the node process exited)."""
        ok = self.client.spin_until(
            lambda: (self.change.service_is_ready() and self.get.service_is_ready())
            or node.proc.poll() is not None, timeout)
        assert ok and node.proc.poll() is None, node.output()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(self.change, request).success

    def set_string(self, name: str, value: str) -> bool:
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        return self._call(self.set, request).results[0].successful


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (``VmRSS`` of /proc/PID/status)."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f'no VmRSS in /proc/{pid}/status')

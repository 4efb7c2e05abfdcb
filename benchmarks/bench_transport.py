"""How many 640x480 best-effort images arrive between two processes, per Fast DDS transport set-up.

A camera-like publisher process sends ``--frames`` images (``rgb8`` 640x480, 921,600 bytes, and
optionally ``16UC1`` depth) best effort at ``--rate`` Hz to a subscriber in another process, as a
camera driver and the segmentation node would be. Three set-ups, each with the same environment
on both processes:

- ``default``: Fast DDS's built-in transports (shared memory with its default segment, UDPv4);
- ``large_data``: ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``;
- ``shm_profile``: ``config/fastdds_large_images.xml`` (a shared-memory segment that holds
  several frames) via ``FASTRTPS_DEFAULT_PROFILES_FILE``.

Prints received / sent, the loss rate and publish -> receive latency per set-up and topic
(``--reliable`` for reliable QoS)::

    python benchmarks/bench_transport.py --frames 100 --rate 10
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np
REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / 'config' / 'fastdds_large_images.xml'
HEIGHT, WIDTH = 480, 640

SETUPS: Dict[str, Dict[str, str]] = {
    'default': {},
    'large_data': {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'},
    'shm_profile': {'FASTRTPS_DEFAULT_PROFILES_FILE': str(PROFILE),
                    'FASTDDS_DEFAULT_PROFILES_FILE': str(PROFILE)},
}


def _qos(reliable: bool):
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy

    if reliable:
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def _topics(depth: bool) -> List[str]:
    return ['rgb', 'depth'] if depth else ['rgb']


def publish(args: argparse.Namespace) -> None:
    """Child process: wait for the subscriber, then send the frames at the requested rate."""
    import rclpy
    from sensor_msgs.msg import Image

    from smmcl_ros.node.shutdown import init_rclpy

    init_rclpy([])  # no rclpy signal handlers, as every process of the package (see there)
    node = rclpy.create_node('bench_camera')
    qos = _qos(args.reliable)
    pubs = {'rgb': node.create_publisher(Image, 'bench/rgb', qos),
            'depth': node.create_publisher(Image, 'bench/depth', qos)}
    rng = np.random.default_rng(0)
    payload = {'rgb': ('rgb8', 3, rng.integers(0, 255, (HEIGHT, WIDTH * 3), np.uint8)),
               'depth': ('16UC1', 2, rng.integers(0, 255, (HEIGHT, WIDTH * 2), np.uint8))}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            pubs[t].get_subscription_count() == 0 for t in _topics(args.depth)):
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the match settle on both sides
    period = 1.0 / args.rate
    start = time.monotonic()
    for k in range(args.frames):
        for topic in _topics(args.depth):
            encoding, size, data = payload[topic]
            msg = Image(height=HEIGHT, width=WIDTH, encoding=encoding, step=WIDTH * size)
            now = time.time()  # the subscriber measures latency against it (same clock)
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int(now % 1 * 1e9)
            msg.header.frame_id = str(k)
            msg.data = data.tobytes()
            pubs[topic].publish(msg)
        rclpy.spin_once(node, timeout_sec=0)
        time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


def subscribe(args: argparse.Namespace) -> None:
    """Child process: count distinct frames per topic until the publisher has gone."""
    import rclpy
    from sensor_msgs.msg import Image

    from smmcl_ros.node.shutdown import init_rclpy

    init_rclpy([])  # no rclpy signal handlers, as every process of the package (see there)
    node = rclpy.create_node('bench_viewer')
    got: Dict[str, Dict[str, float]] = {t: {} for t in _topics(args.depth)}

    def record(msg, topic):
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        got[topic][msg.header.frame_id] = time.time() - sent

    for topic in got:
        node.create_subscription(Image, f'bench/{topic}', lambda m, t=topic: record(m, t),
                                 _qos(args.reliable))
    deadline = time.monotonic() + 40 + args.frames / args.rate
    seen = False
    quiet_since = None
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        present = node.count_publishers('bench/rgb') > 0
        seen = seen or present
        if seen and not present:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                break
    print(json.dumps({t: sorted(s.values()) for t, s in got.items()}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def run_setup(name: str, args: argparse.Namespace, domain: int) -> Dict[str, List[float]]:
    """Start a subscriber and a publisher process with the set-up's environment."""
    env = dict(os.environ)
    for key in ('FASTDDS_BUILTIN_TRANSPORTS', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                'FASTDDS_DEFAULT_PROFILES_FILE'):
        env.pop(key, None)
    env.update(SETUPS[name])
    env.update(ROS_DOMAIN_ID=str(domain), PYTHONPATH=str(REPO))
    if args.localhost:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    common = ['--frames', str(args.frames), '--rate', str(args.rate)]
    common += ['--depth'] if args.depth else []
    common += ['--reliable'] if args.reliable else []
    sub = subprocess.Popen([sys.executable, __file__, '--role', 'sub'] + common, env=env,
                           stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen([sys.executable, __file__, '--role', 'pub'] + common, env=env)
    pub.wait()
    out, _ = sub.communicate(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Run every set-up in turn and print the loss rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second')
    parser.add_argument('--depth', action='store_true', help='also send 16UC1 depth')
    parser.add_argument('--reliable', action='store_true', help='reliable instead of best effort')
    parser.add_argument('--setups', nargs='+', default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument('--localhost', action=argparse.BooleanOptionalAction, default=True,
                        help='ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (as the tests)')
    parser.add_argument('--domain', type=int, default=93)
    parser.add_argument('--role', choices=('main', 'pub', 'sub'), default='main',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == 'pub':
        return publish(args)
    if args.role == 'sub':
        return subscribe(args)
    kind = 'reliable' if args.reliable else 'best effort'
    print(f'{args.frames} frames 640x480 {kind} at {args.rate:g} Hz, publisher and subscriber in '
          f'separate processes (discovery {"LOCALHOST" if args.localhost else "default"})')
    for i, name in enumerate(args.setups):
        latencies = run_setup(name, args, args.domain + i)
        for topic, values in latencies.items():
            n = len(values)
            loss = 100.0 * (1 - n / args.frames)
            ms = np.percentile(values, [50, 95, 100]) * 1e3 if values else [np.nan] * 3
            print(f'{name:12s} {topic:5s} received {n:4d}/{args.frames}  loss {loss:5.1f}%  '
                  f'latency ms p50 {ms[0]:6.1f} p95 {ms[1]:6.1f} max {ms[2]:6.1f}', flush=True)


if __name__ == '__main__':
    main()

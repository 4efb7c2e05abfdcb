"""Long lifecycle run: many configure -> activate -> frames -> deactivate -> cleanup cycles.

One lifecycle node process per backend (``auto`` and each installed CPU engine by name) goes
through ``--cycles`` cycles on a real 640x480 NYUv2 RGB-D frame (robot-sized preset, seeded
random weights); the node's RSS is printed after every cleanup. Then the plain node
(``backend: auto``) gets frames whose size changes every ``--per-size`` frames, more sizes
than the OpenVINO engine keeps compiled, so every change compiles the graph again; its RSS is
printed after each size::

    nice python benchmarks/bench_node_cycles.py --cycles 20

The process must survive all of it; a crash ends the run with the node's log.
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]

# (H, W) crops of the 640x480 frame; padded to multiples of 32 they are 6 distinct engine
# shapes, more than OpenVINO keeps compiled (openvino_engine.MAX_SHAPES = 2).
SIZES = [(480, 640), (240, 320), (360, 480), (480, 352), (200, 600), (416, 416)]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cycles', type=int, default=20)
    parser.add_argument('--frames', type=int, default=2, help='masks per active phase')
    parser.add_argument('--backends', nargs='+',
                        default=['auto', 'openvino', 'onnxruntime', 'torch'])
    parser.add_argument('--size-rounds', type=int, default=3,
                        help='passes over the frame sizes for the plain node')
    parser.add_argument('--per-size', type=int, default=2, help='frames per size')
    parser.add_argument('--domain', default='98', help='ROS_DOMAIN_ID for the run')
    args = parser.parse_args()

    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=args.domain,
                      RMW_IMPLEMENTATION='rmw_fastrtps_cpp', OMP_NUM_THREADS='1')
    import ros_harness
    from smmcl_core.data.io import read_aux, read_rgb
    from smmcl_core.engines import available

    data = REPO.parent / 'shared' / 'data' / 'nyuv2_samples'
    frame = read_rgb(data / 'RGB' / '0.png'), read_aux(data / 'Depth' / '0.png', 'depth')
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ['SMMCL_CACHE_DIR'] = str(tmp / 'cache')
        ckpt = ros_harness.make_checkpoint(tmp / 'bench.pt')
        for backend in args.backends:
            if backend != 'auto' and not available(backend):
                print(f'{backend}: not installed, skipped')
                continue
            _lifecycle_run(args, ros_harness, ckpt, backend, frame, tmp / f'{backend}.log')
        _size_run(args, ros_harness, ckpt, frame, tmp / 'plain.log')


def _lifecycle_run(args, ros_harness, ckpt: Path, backend: str, frame, log: Path) -> None:
    from lifecycle_msgs.msg import Transition

    node = ros_harness.NodeProcess(dict(os.environ), {'checkpoint': ckpt, 'backend': backend},
                                   log, module='smmcl_ros.node.lifecycle')
    client = ros_harness.RosClient(camera=True)
    manager = ros_harness.LifecycleManager(client)
    rss: List[float] = []
    seconds: List[float] = []
    try:
        manager.wait(node)
        base = ros_harness.rss_mib(node.proc.pid)
        for cycle in range(args.cycles):
            start = time.monotonic()
            _check(manager.transition(Transition.TRANSITION_CONFIGURE), node, 'configure')
            _check(manager.transition(Transition.TRANSITION_ACTIVATE), node, 'activate')
            _check(client.spin_until(lambda: client.rgb_pub.get_subscription_count() > 0
                                     and client.node.count_publishers('segmentation/mask') > 0,
                                     30.0), node, 'inputs matched')
            client.spin_for(0.3)
            for i in range(args.frames):
                _serve(client, node, frame, 1000 * (cycle + 1) + i)
            _check(manager.transition(Transition.TRANSITION_DEACTIVATE), node, 'deactivate')
            _check(manager.transition(Transition.TRANSITION_CLEANUP), node, 'cleanup')
            seconds.append(time.monotonic() - start)
            rss.append(ros_harness.rss_mib(node.proc.pid))
    finally:
        code = node.stop()
        client.close()
    engine = next((line.split('backend=')[1].split(',')[0] for line in
                   node.output().splitlines() if 'backend=' in line), '?')
    print(f'lifecycle backend={backend} ({engine}): {len(rss)} cycles, exit code {code}, '
          f'RSS before the first configure {base:.0f} MiB')
    print('  RSS after each cleanup (MiB): ' + ' '.join(f'{r:.0f}' for r in rss))
    print(f'  cycle 2 -> {len(rss)}: {rss[-1] - rss[1]:+.1f} MiB; '
          f'median cycle {np.median(seconds):.1f} s')


def _size_run(args, ros_harness, ckpt: Path, frame, log: Path) -> None:
    node = ros_harness.NodeProcess(dict(os.environ), {'checkpoint': ckpt, 'backend': 'auto'},
                                   log)
    client = ros_harness.RosClient(camera=True)
    rows = []
    sec = 1
    try:
        client.wait_ready(node)
        for _ in range(args.size_rounds):
            for h, w in SIZES:
                crop = frame[0][:h, :w], frame[1][:h, :w]
                start = time.monotonic()
                for _ in range(args.per_size):
                    _serve(client, node, crop, sec)
                    sec += 1
                rows.append((h, w, time.monotonic() - start,
                             ros_harness.rss_mib(node.proc.pid)))
    finally:
        code = node.stop()
        client.close()
    print(f'plain node backend=auto: {len(rows)} size changes over {len(SIZES)} sizes, '
          f'exit code {code}')
    print('  HxW: seconds for the frames of that size, RSS after (MiB)')
    for h, w, seconds, rss in rows:
        print(f'  {h}x{w}: {seconds:.1f} s, {rss:.0f}')
    ends = [row[3] for row in rows[len(SIZES) - 1::len(SIZES)]]
    print('  RSS after each round (MiB): ' + ' '.join(f'{r:.0f}' for r in ends))
    if len(ends) > 2:  # round 1 compiles every shape for the first time; then it must be flat
        print(f'  RSS after round 2 -> after round {len(ends)}: {ends[-1] - ends[1]:+.1f} MiB')


def _serve(client, node, frame, sec: int) -> None:
    """Publish one pair stamped ``sec`` and wait for its mask."""
    from ros_harness import image_msg

    client.rgb_pub.publish(image_msg(frame[0], 'rgb8', sec))
    client.aux_pub.publish(image_msg(frame[1], '16UC1', sec))
    _check(client.spin_until(
        lambda: any(m.header.stamp.sec == sec for m in client.received['mask'][-4:])
        or node.proc.poll() is not None, 120.0), node, f'mask {sec}')


def _check(ok: bool, node, what: str) -> None:
    if not ok or node.proc.poll() is not None:
        raise SystemExit(f'{what} failed (node exit code {node.proc.poll()}):\n{node.output()}')


if __name__ == '__main__':
    main()

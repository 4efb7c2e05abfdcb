"""Cost of the semantic point cloud per 640x480 frame against one ``Segmenter.predict``.

Real NYUv2 frame 433 (16UC1 depth with holes, its intrinsics), the mask and confidence of a
robot-sized model (random seeded weights, CPU). Prints p50/p95 of: predict (with confidence),
``CloudBuilder.build``, build + ``fill_pointcloud`` (the rclpy message the node publishes), the
mono8 confidence, and the cloud's share of a predict (goal: under 5% for mit_b0). Also times the
point layouts that were tried for the buffer (``--layouts``)::

    python benchmarks/bench_points.py --frames 10 --preset smmcl_mit_b0 --layouts
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time
from typing import Callable, List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]


def timed(fn: Callable[[], object], repeats: int) -> List[float]:
    """Seconds of each of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def layouts(depth, K, labels, conf, palette, repeats: int) -> None:
    """The cloud written three ways: 6 float32 words (used), structured 24 B, PCL-like 32 B."""
    from smmcl_ros.pipeline.points import CloudBuilder, pack_rgb

    builder = CloudBuilder(palette)
    rgb = pack_rgb(palette)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    xs = ((np.arange(depth.shape[1]) - cx) / fx).astype(np.float32)
    ys = ((np.arange(depth.shape[0]) - cy) / fy).astype(np.float32)[:, None]

    def structured(itemsize: int, offsets: List[int]):
        dtype = np.dtype({'names': ['x', 'y', 'z', 'rgb', 'confidence', 'label'],
                          'formats': ['f4'] * 5 + ['u1'], 'offsets': offsets,
                          'itemsize': itemsize})

        def run():
            cloud = np.zeros(depth.shape, dtype)
            z = depth.astype(np.float32) / np.float32(1000.0)
            z[depth == 0] = np.nan
            cloud['x'], cloud['y'], cloud['z'] = z * xs, z * ys, z
            cloud['rgb'], cloud['confidence'], cloud['label'] = rgb[labels], conf, labels
            return cloud
        return run

    candidates = {
        'words 24 B (CloudBuilder)': lambda: builder.build(depth, K, labels, conf),
        'structured 24 B': structured(24, [0, 4, 8, 12, 16, 20]),
        'structured 32 B (PCL XYZRGB-like)': structured(32, [0, 4, 8, 16, 20, 24]),
    }
    for name, fn in candidates.items():
        t = np.array(timed(fn, repeats)) * 1e3
        print(f'  layout {name:36s} p50 {np.percentile(t, 50):6.2f} ms')


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=10, help='timed predict calls')
    parser.add_argument('--repeats', type=int, default=50, help='timed cloud builds')
    parser.add_argument('--preset', default='smmcl_mit_b0')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--layouts', action='store_true', help='also time the layouts tried')
    args = parser.parse_args()

    import torch

    import ros_harness
    from sensor_msgs.msg import PointCloud2

    from smmcl_core.data.hha import nyu_intrinsics
    from smmcl_core.data.io import read_aux, read_rgb
    from smmcl_core.segmenter import Segmenter
    from smmcl_ros.messages.pointcloud import fill_pointcloud
    from smmcl_ros.pipeline.confidence import encode_confidence
    from smmcl_ros.pipeline.points import CloudBuilder

    torch.set_num_threads(args.threads)
    ros_harness.PRESET = args.preset
    data = REPO.parent / 'shared' / 'data' / 'nyuv2_samples'
    rgb = read_rgb(data / 'RGB' / '433.png')
    depth = read_aux(data / 'Depth' / '433.png', 'depth')
    K = nyu_intrinsics(*depth.shape)
    with tempfile.TemporaryDirectory() as tmp:
        segmenter = Segmenter.from_checkpoint(
            ros_harness.make_checkpoint(Path(tmp) / 'bench.pt'), device='cpu',
            backend='torch')
    labels, conf = segmenter.predict(rgb, depth, return_confidence=True)
    palette = np.asarray(segmenter.palette, np.uint8)
    builder = CloudBuilder(palette)
    header = PointCloud2().header

    figures = {
        'predict (+confidence)': timed(
            lambda: segmenter.predict(rgb, depth, return_confidence=True), args.frames),
        'cloud build': timed(lambda: builder.build(depth, K, labels, conf), args.repeats),
        'cloud build + PointCloud2': timed(
            lambda: fill_pointcloud(PointCloud2(), builder.build(depth, K, labels, conf),
                                    header), args.repeats),
        'mono8 confidence': timed(lambda: encode_confidence(conf, 'mono8'), args.repeats),
    }
    print(f'preset {args.preset}, 640x480 NYUv2 frame 433, CPU, {args.threads} torch '
          f'thread(s); predict x{args.frames}, others x{args.repeats}')
    p50 = {}
    for name, times in figures.items():
        t = np.array(times) * 1e3
        p50[name] = np.percentile(t, 50)
        print(f'  {name:28s} p50 {p50[name]:8.2f} ms  p95 {np.percentile(t, 95):8.2f} ms')
    share = p50['cloud build + PointCloud2'] / p50['predict (+confidence)'] * 100
    print(f'  cloud (build + message) = {share:.2f}% of a predict (goal < 5%)')
    if args.layouts:
        layouts(depth, K, labels, conf, palette, args.repeats)


if __name__ == '__main__':
    main()

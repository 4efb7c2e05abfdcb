"""End-to-end node latency (publish -> mask received) vs ``Segmenter.predict`` alone.

Same images (a real 640x480 NYUv2 RGB-D frame), same run, CPU, robot-sized preset with random
(seeded) weights; each pair is published only after the previous mask arrived, so the figure is
per-frame latency without drops. Prints p50/p95 of both and their ratio, per inference
backend (the node's ``backend`` parameter; ``auto`` = the fastest installed engine), and the
end-to-end ratio of each backend to ``torch``::

    python benchmarks/bench_node.py --frames 20 --preset smmcl_mit_b0 --backends torch auto

Backends run one after the other (one node process each, the engine cache warmed first).
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--preset', default='smmcl_mit_b0')
    parser.add_argument('--threads', type=int, default=1, help='torch threads on both sides')
    parser.add_argument('--domain', default='97', help='ROS_DOMAIN_ID for the run')
    parser.add_argument('--backends', nargs='+', default=['torch', 'auto'],
                        help='node backend parameter values to compare (first = reference)')
    args = parser.parse_args()

    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=args.domain,
                      OMP_NUM_THREADS=str(args.threads))
    import torch

    import ros_harness
    from smmcl_core.data.io import read_aux, read_rgb
    from smmcl_core.segmenter import Segmenter

    torch.set_num_threads(args.threads)
    ros_harness.PRESET = args.preset
    data = REPO.parent / 'shared' / 'data' / 'nyuv2_samples'
    rgb, depth = read_rgb(data / 'RGB' / '0.png'), read_aux(data / 'Depth' / '0.png', 'depth')

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = ros_harness.make_checkpoint(Path(tmp) / 'bench.pt')
        results = {}
        for backend in args.backends:
            results[backend] = _run_backend(args, ros_harness, Segmenter, ckpt, backend, rgb,
                                            depth, Path(tmp) / f'node_{backend}.log')
    print(f'preset {args.preset}, 640x480, CPU, {args.threads} thread(s), {args.frames} frames')
    reference = None
    for backend, (engine, predict_s, end_to_end_s, windows) in results.items():
        p = np.percentile(np.array(predict_s) * 1e3, [50, 95])
        e = np.percentile(np.array(end_to_end_s) * 1e3, [50, 95])
        reference = e if reference is None else reference
        print(f'backend={backend} ({engine})')
        print(f'  Segmenter.predict   p50 {p[0]:8.1f} ms   p95 {p[1]:8.1f} ms')
        print(f'  node end-to-end     p50 {e[0]:8.1f} ms   p95 {e[1]:8.1f} ms')
        print(f'  ratio end-to-end / predict: p50 {e[0] / p[0]:.2f}   p95 {e[1] / p[1]:.2f}')
        print(f'  ratio end-to-end / backend={args.backends[0]}: p50 '
              f'{e[0] / reference[0]:.2f}   p95 {e[1] / reference[1]:.2f}')
        # The node's own /diagnostics split its time: predict inside the node vs
        # receive -> publish.
        inside = [(float(w['inference_ms_p50']), float(w['latency_ms_p50'])) for w in windows
                  if w.get('inference_ms_p50', 'nan') != 'nan']
        if inside:
            infer, total = np.median(np.array(inside), axis=0)
            print(f'  inside the node (median of 1 s windows): predict {infer:.1f} ms, '
                  f'receive -> publish {total:.1f} ms, node overhead {total - infer:.1f} ms '
                  f'({100 * (total - infer) / infer:.1f}%)')


def _run_backend(args, ros_harness, segmenter_cls, ckpt, backend, rgb, depth, log):
    """(engine used, predict seconds, end-to-end seconds, diagnostics windows)."""
    segmenter = segmenter_cls.from_checkpoint(ckpt, device='cpu', backend=backend)
    engine = f'{segmenter.backend} {segmenter.precision}'
    segmenter.predict(rgb, depth)  # warm-up (and the engine's export, cached for the node)
    predict_s = []
    for _ in range(args.frames):
        start = time.perf_counter()
        segmenter.predict(rgb, depth)
        predict_s.append(time.perf_counter() - start)
    del segmenter

    node = ros_harness.NodeProcess(
        dict(os.environ), dict(checkpoint=ckpt, qos='reliable', device='cpu', backend=backend,
                               publish_color=False, publish_overlay=False), log)
    client = ros_harness.RosClient()
    end_to_end_s = []
    try:
        client.wait_ready(node)
        for k in range(args.frames + 1):
            want = len(client.received['mask']) + 1
            rgb_msg = ros_harness.image_msg(rgb, 'rgb8', 1000 + k)
            aux_msg = ros_harness.image_msg(depth, '16UC1', 1000 + k)
            start = time.perf_counter()
            client.rgb_pub.publish(rgb_msg)
            client.aux_pub.publish(aux_msg)
            if not client.spin_until(lambda: len(client.received['mask']) >= want, 30.0):
                raise RuntimeError(f'no mask for frame {k}:\n{node.output()}')
            if k:  # the first frame warms the node up
                end_to_end_s.append(time.perf_counter() - start)
    finally:
        client.spin_for(1.5)  # one more diagnostics period
        windows = [{kv.key: kv.value for kv in array.status[0].values}
                   for array in client.diagnostics]
        code = node.stop()
        client.close()
    if code != 0:
        print(node.output())
    if windows and windows[-1].get('backend'):
        engine = f"{windows[-1]['backend']} {windows[-1]['precision']}"  # as the node reports
    return engine, predict_s, end_to_end_s, windows


if __name__ == '__main__':
    main()

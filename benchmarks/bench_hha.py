"""Live HHA cost per 640x480 frame, next to the model it feeds.

Real NYUv2 depth (the HHA reference frame, 640x480). In one run, interleaved round by round so
that load on a shared machine hits all alike, it times:

- ``depth_to_hha`` (numpy + OpenCV, the node's CPU path) with the given thread counts,
- the torch path on the CPU (the CUDA path's code; on a GPU it runs on the model's device),
- ``Segmenter.predict`` of an HHA checkpoint (seeded random weights) on the encoded frame,

and prints the medians (and the fastest round, the least disturbed on a shared machine) and
the HHA / predict ratio of the medians::

    python benchmarks/bench_hha.py --rounds 10 --threads 1 2 --preset smmcl_mit_b0
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='OpenCV/torch thread counts to time the encoding with')
    parser.add_argument('--preset', default='smmcl_mit_b0', help='model timed alongside')
    parser.add_argument('--model-threads', type=int, default=2)
    parser.add_argument('--no-torch', action='store_true', help='skip the torch CPU path')
    args = parser.parse_args()

    import cv2
    import torch

    import ros_harness
    from smmcl_core.data import hha
    from smmcl_core.data.hha.torch_encode import depth_to_hha_torch
    from smmcl_core.data.io import read_rgb
    from smmcl_core.segmenter import Segmenter

    ref = REPO.parent / 'shared' / 'data' / 'hha_reference'
    depth = cv2.imread(str(ref / 'depth.png'), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1e4
    rgb = read_rgb(REPO.parent / 'shared' / 'data' / 'nyuv2_samples' / 'RGB' / '0.png')
    K = hha.NYU_DEPTH_V2_K
    depth_t = torch.from_numpy(depth)

    ros_harness.PRESET = args.preset
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = ros_harness.make_checkpoint(Path(tmp) / 'hha.pt', modality='hha')
        segmenter = Segmenter.from_checkpoint(ckpt, device='cpu')
    encoded = hha.depth_to_hha(depth, K)
    segmenter.predict(rgb, encoded)  # warm-up
    depth_to_hha_torch(depth_t, K)

    times = {f'hha numpy, {n} thread(s)': [] for n in args.threads}
    if not args.no_torch:
        times.update({f'hha torch cpu, {n} thread(s)': [] for n in args.threads})
    predict_key = f'predict {args.preset}, {args.model_threads} thread(s)'
    times[predict_key] = []
    for _ in range(args.rounds):
        for n in args.threads:
            cv2.setNumThreads(n)
            torch.set_num_threads(n)
            times[f'hha numpy, {n} thread(s)'].append(_timed(lambda: hha.depth_to_hha(depth, K)))
            if not args.no_torch:
                times[f'hha torch cpu, {n} thread(s)'].append(
                    _timed(lambda: depth_to_hha_torch(depth_t, K)))
        torch.set_num_threads(args.model_threads)
        times[predict_key].append(_timed(lambda: segmenter.predict(rgb, encoded)))

    predict_ms = float(np.median(times[predict_key])) * 1e3
    print(f'640x480 NYUv2 frame, {args.rounds} rounds: median (fastest) per frame')
    for name, values in times.items():
        ms, best = float(np.median(values)) * 1e3, float(np.min(values)) * 1e3
        ratio = '' if name == predict_key else f'   {ms / predict_ms:.2f} x predict'
        print(f'  {name:34s} {ms:8.1f} ms ({best:7.1f} ms){ratio}')


if __name__ == '__main__':
    main()

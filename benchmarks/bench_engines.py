r"""Inference engines vs torch eager: ``Segmenter.predict`` on a real 640x480 frame.

For each preset, one checkpoint (seeded random weights, NYUv2 meta, 40 classes, depth; or
``--checkpoint``) is loaded by each engine in its own process (as in the node: one engine per
process; in one process the runtimes' idle thread pools slow each other down many times
over); every iteration then times ``predict`` of each engine in turn on the same real NYUv2
RGB-D frame (interleaved, so load on a shared machine hits all engines alike). Prints median
ms, the ratio to torch eager in the same run, and the agreement of the engine's mask with
torch's (fraction of equal pixels, over every NYUv2 sample frame; MSRS night RGB-thermal
frames for a thermal ``--checkpoint``)::

    python -m benchmarks.bench_engines --presets smmcl_mscan_b smmcl_mscan_t smmcl_mit_b0 \\
        --iters 5 --threads 2

Engines: ``torch`` (the reference, the Segmenter default: fp32, NCHW), ``openvino`` fp32 and
bf16 (bf16 only where the CPU has it), ``onnxruntime`` fp32; missing runtimes are skipped.
The export happens before timing (cached in ``--cache-dir``).
"""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path
import sys
import tempfile
import time
from typing import List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]


def _checkpoint(preset: str, folder: Path) -> Path:
    import torch

    from smmcl_core.checkpoint import build_checkpoint, build_meta, save_checkpoint
    from smmcl_core.data.classes import voc_palette
    from smmcl_core.models import create_model

    torch.manual_seed(0)
    model = create_model(preset, 40).eval()
    meta = build_meta(preset, 40, [f'class_{i}' for i in range(40)], voc_palette(40), 'depth')
    return save_checkpoint(folder / f'{preset}.pth', build_checkpoint(model, {}, meta))


def _engines() -> List[tuple]:
    from smmcl_core.engines import available

    rows = [('torch', 'fp32')]
    if available('openvino'):
        from smmcl_core.engines.openvino_engine import supported_precision

        rows.append(('openvino', 'fp32'))
        if supported_precision('bf16') is None:  # refused for now (issue 21)
            rows.append(('openvino', 'bf16'))
    if available('onnxruntime'):
        rows.append(('onnxruntime', 'fp32'))
    return rows


def _worker(conn, ckpt, backend, precision, cache, threads, frames) -> None:
    """One engine in its own process: load, warm up, then time ``predict`` on request."""
    import torch

    from smmcl_core.segmenter import Segmenter

    torch.set_num_threads(threads)
    start = time.perf_counter()
    seg = Segmenter.from_checkpoint(ckpt, device='cpu', backend=backend, precision=precision,
                                    cache_dir=cache)
    rgb, depth = frames[0]
    seg.predict(rgb, depth)  # warm-up: compile for this shape
    masks = [seg.predict(r, d) for r, d in frames]
    conn.send((seg.meta['preset'], time.perf_counter() - start, masks))
    while conn.recv() == 'run':
        start = time.perf_counter()
        seg.predict(rgb, depth)
        conn.send(time.perf_counter() - start)


def main() -> None:
    """Run the benchmark and print one table per preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--presets', nargs='+',
                        default=['smmcl_mscan_b', 'smmcl_mscan_t', 'smmcl_mit_b0'])
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='benchmark this checkpoint instead (one preset)')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cache-dir', type=Path, default=None,
                        help='engine cache (default: a temporary folder)')
    args = parser.parse_args()

    import torch

    from smmcl_core.checkpoint import load_checkpoint
    from smmcl_core.data.io import read_aux, read_rgb
    torch.set_num_threads(args.threads)
    ctx = multiprocessing.get_context('spawn')
    shared = REPO.parent / 'shared' / 'data'
    if args.checkpoint and load_checkpoint(args.checkpoint)['meta']['aux_modality'] == 'thermal':
        data, what = shared / 'msrs_night', 'MSRS night RGB-thermal'
        names = sorted(p.name for p in (data / 'visible').iterdir())[:3]
        frames = [(read_rgb(data / 'visible' / n), read_aux(data / 'thermal' / n, 'thermal'))
                  for n in names]
    else:
        data, what = shared / 'nyuv2_samples', 'NYUv2 RGB-D'
        names = (data / 'test.txt').read_text().split()
        frames = [(read_rgb(data / 'RGB' / f'{n}.png'),
                   read_aux(data / 'Depth' / f'{n}.png', 'depth')) for n in names]
    rgb, depth = frames[0]
    print(f'CPU, {args.threads} thread(s), 640x480 {what} frame, {args.iters} interleaved '
          f'iterations, agreement over {len(frames)} frames, torch {torch.__version__}')
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp) / 'cache'
        checkpoints = ([args.checkpoint] if args.checkpoint else
                       [_checkpoint(p, Path(tmp)) for p in args.presets])
        for ckpt in checkpoints:
            workers = {}
            for key in _engines():  # one at a time: exports must not compete for the CPU
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, ckpt, *key, cache, args.threads,
                                                         frames))
                proc.start()
                preset, ready_s, masks = parent.recv()
                workers[key] = (proc, parent, masks)
                print(f'  {preset}: {" ".join(key)} ready in {ready_s:.1f} s (first run '
                      'includes the export)', flush=True)
            times = {key: [] for key in workers}
            for _ in range(args.iters):
                for key, (_, conn, _) in workers.items():
                    conn.send('run')
                    times[key].append(conn.recv())
            for proc, conn, _ in workers.values():
                conn.send('stop')
                proc.join()
            reference = workers[('torch', 'fp32')][2]
            base = float(np.median(times[('torch', 'fp32')]))
            print(f'\n{preset}')
            print(f'{"engine":<20} {"ms (median)":>12} {"/ torch":>8} {"agreement %":>12}')
            for key, (_, _, masks) in workers.items():
                median = float(np.median(times[key]))
                agree = np.mean([np.mean(m == ref) for m, ref in zip(masks, reference)])
                print(f'{" ".join(key):<20} {median * 1e3:12.1f} {median / base:8.2f} '
                      f'{100 * agree:12.3f}', flush=True)


if __name__ == '__main__':
    main()

"""CPU eval-forward benchmark of the SMMCL presets against the machine's fp32 GEMM rate.

For each preset: median eval-forward time at HxW (warm-up, ``torch.inference_mode``, optional
channels_last), the model's FLOPs (FlopCounterMode, 2 x MACs, inference path without
projectors), the FLOP-derived lower bound FLOPs / GEMM rate, and time / bound.

Example:
    python benchmarks/bench_models.py --presets smmcl_mscan_t smmcl_mscan_b --iters 5
"""

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from smmcl_core.models import create_model, PRESETS


def gemm_gflops(n: int = 2048, iters: int = 5) -> float:
    """Measured fp32 matmul rate (GFLOP/s) of an n x n x n product, median of ``iters``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def model_flops(name: str, height: int, width: int) -> float:
    """Inference FLOPs (2 x MACs) of a preset, counted on the meta device (no compute)."""
    with torch.device('meta'):
        model = create_model(name, num_classes=14).eval()
        x = torch.randn(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x, x)
    return float(counter.get_total_flops())


def time_forward(name: str, height: int, width: int, iters: int, warmup: int,
                 channels_last: bool) -> float:
    """Median seconds of one eval forward (batch 1, 3-channel RGB and 1-channel aux)."""
    model = create_model(name, num_classes=14, drop_path_rate=0.0,
                         channels_last=channels_last).eval()
    rgb, aux = torch.randn(1, 3, height, width), torch.randn(1, 1, height, width)
    if channels_last:
        rgb = rgb.contiguous(memory_format=torch.channels_last)
        aux = aux.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(rgb, aux)
        for _ in range(iters):
            t0 = time.perf_counter()
            model(rgb, aux)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Parse the CLI, measure the GEMM rate, then time each preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--presets', nargs='+', default=sorted(PRESETS), choices=sorted(PRESETS))
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--memory-format', choices=('nchw', 'channels_last', 'both'),
                        default='both')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rate = gemm_gflops()
    print(f'torch {torch.__version__}, {args.threads} threads, {args.height}x{args.width}, '
          f'fp32 GEMM 2048^3: {rate:.1f} GFLOP/s')
    formats = {'nchw': [False], 'channels_last': [True], 'both': [False, True]}
    print(f"{'preset':18s} {'format':13s} {'GFLOPs':>8s} {'time ms':>9s} {'bound ms':>9s} "
          f"{'ratio':>6s}")
    for name in args.presets:
        flops = model_flops(name, args.height, args.width)
        bound = flops / (rate * 1e9)
        for cl in formats[args.memory_format]:
            t = time_forward(name, args.height, args.width, args.iters, args.warmup, cl)
            fmt = 'channels_last' if cl else 'nchw'
            print(f'{name:18s} {fmt:13s} {flops / 1e9:8.1f} {t * 1e3:9.1f} '
                  f'{bound * 1e3:9.1f} {t / bound:6.2f}', flush=True)


if __name__ == '__main__':
    main()

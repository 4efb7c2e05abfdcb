"""Training-step cost of the SMMCL contrastive terms against cross-entropy only.

Synthetic mode (default) times forward+backward of
  1. cross-entropy on logits (B, K, H, W),
  2. the same plus ``SMMCLLoss`` on (B, 256, H/32, W/32) embeddings (Eq. 7 with lambda 0.2),
  3. ``SMMCLLoss`` alone,
and prints milliseconds per step and the ratio 2/1. With ``--model PRESET`` (needs
``smmcl_core.models.create_model``) it also times a full training step (forward, backward,
AdamW step) of the real network with CE only against CE + SMMCL.

Examples:
  python -m benchmarks.bench_loss --device cpu --iters 5
  python -m benchmarks.bench_loss --device cuda --batch 16 --labels worst --amp bf16
  python -m benchmarks.bench_loss --device cuda --model smmcl_mscan_t --model-size 256 320
"""

import argparse
import contextlib
import statistics
import sys
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from smmcl_core.losses import SMMCLLoss

IGNORE = 255
LAMBDA = 0.2  # Eq. (7) weight used for low-light indoor scenes


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--classes', type=int, default=14)
    p.add_argument('--dim', type=int, default=256, help='embedding channels D')
    p.add_argument('--labels', choices=('blocks', 'worst'), default='blocks',
                   help="'blocks': piecewise-constant random scene; 'worst': two halves per "
                        'image, so every grid pixel is sampled (largest similarity matrix)')
    p.add_argument('--amp', choices=('none', 'bf16', 'fp16'), default='none')
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--model', default=None, metavar='PRESET',
                   help='also time a full training step of this model preset')
    p.add_argument('--model-size', type=int, nargs=2, default=(256, 320), metavar=('H', 'W'),
                   help='input resolution for --model')
    return p.parse_args(argv)


def pick_device(name: str) -> torch.device:
    """Resolve ``auto`` to CUDA when available."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device {name}: CUDA is not available')
    return device


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``--amp``."""
    if amp == 'none':
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == 'bf16' else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_labels(kind: str, batch: int, height: int, width: int, classes: int,
                gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Synthetic (B, H, W) labels with some ignore pixels."""
    if kind == 'worst':
        labels = torch.zeros(batch, height, width, dtype=torch.long)
        labels[:, :, width // 2:] = 1
        for b in range(batch):  # different class pairs per image
            labels[b] += (2 * b) % max(classes - 1, 1)
        labels.clamp_(max=classes - 1)
    else:
        coarse = torch.randint(0, classes, (batch, 1, 6, 8), generator=gen).float()
        labels = F.interpolate(coarse, size=(height, width), mode='nearest')[:, 0].long()
        labels[:, : height // 20] = IGNORE  # a thin unlabelled band, as in real annotations
    return labels.to(device)


def time_ms(fn: Callable[[], None], iters: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in milliseconds (CUDA synchronised)."""
    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench_synthetic(args: argparse.Namespace, device: torch.device) -> None:
    """CE only vs CE + SMMCL vs SMMCL alone on leaf tensors."""
    gen = torch.Generator().manual_seed(args.seed)
    b, k, h, w = args.batch, args.classes, args.height, args.width
    grid = (h // 32, w // 32)
    labels = make_labels(args.labels, b, h, w, k, gen, device)
    logits = torch.randn(b, k, h, w, generator=gen).to(device).requires_grad_()
    emb_vis = torch.randn(b, args.dim, *grid, generator=gen).to(device).requires_grad_()
    emb_aux = torch.randn(b, args.dim, *grid, generator=gen).to(device).requires_grad_()
    loss_fn = SMMCLLoss(num_classes=k)
    samples = loss_fn.sample(labels, grid)
    pairs = torch.unique(samples.batch_idx * k + samples.cls).numel()
    views = samples.cls.numel() // max(pairs, 1)

    def clear() -> None:
        logits.grad = emb_vis.grad = emb_aux.grad = None

    def ce_step() -> None:
        clear()
        with autocast(device, args.amp):
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE)
        loss.backward()

    def ce_smmcl_step() -> None:
        clear()
        with autocast(device, args.amp):
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE)
            terms = loss_fn(emb_vis, emb_aux, labels)
            loss = loss + LAMBDA * (terms['cm'] + terms['vis'] + terms['aux'])
        loss.backward()

    def smmcl_step() -> None:
        clear()
        with autocast(device, args.amp):
            terms = loss_fn(emb_vis, emb_aux, labels)
        (terms['cm'] + terms['vis'] + terms['aux']).backward()

    print(f'device={device} amp={args.amp} B={b} K={k} input {h}x{w} embeddings '
          f'({b},{args.dim},{grid[0]},{grid[1]}) labels={args.labels}: '
          f'{pairs} (image,class) pairs x V={views} = {samples.cls.numel()} samples')
    t_ce = time_ms(ce_step, args.iters, args.warmup, device)
    t_both = time_ms(ce_smmcl_step, args.iters, args.warmup, device)
    t_smmcl = time_ms(smmcl_step, args.iters, args.warmup, device)
    print(f'  CE fwd+bwd            {t_ce:9.2f} ms')
    print(f'  CE + SMMCL fwd+bwd    {t_both:9.2f} ms   ratio {t_both / t_ce:5.2f}x')
    print(f'  SMMCL alone fwd+bwd   {t_smmcl:9.2f} ms')


def bench_model(args: argparse.Namespace, device: torch.device) -> None:
    """Full training step of a real preset: CE only vs CE + SMMCL."""
    try:
        from smmcl_core.models import create_model
    except ImportError as exc:
        raise SystemExit(f'--model {args.model}: smmcl_core.models.create_model is not '
                         f'available ({exc})')
    gen = torch.Generator().manual_seed(args.seed)
    b, k = args.batch, args.classes
    h, w = args.model_size
    model = create_model(args.model, num_classes=k).to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=6e-5)
    rgb = torch.randn(b, 3, h, w, generator=gen).to(device)
    aux = torch.randn(b, 3, h, w, generator=gen).to(device)
    labels = make_labels(args.labels, b, h, w, k, gen, device)
    loss_fn = SMMCLLoss(num_classes=k)

    def step(with_smmcl: bool) -> None:
        optim.zero_grad(set_to_none=True)
        with autocast(device, args.amp):
            if with_smmcl:
                logits, emb_vis, emb_aux = model(rgb, aux, return_embeddings=True)
                terms = loss_fn(emb_vis, emb_aux, labels)
                extra = LAMBDA * (terms['cm'] + terms['vis'] + terms['aux'])
            else:
                logits = model(rgb, aux)
                extra = 0.0
            loss = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE) + extra
        loss.backward()
        optim.step()

    print(f'model {args.model}: B={b} input {h}x{w} amp={args.amp} device={device}')
    t_ce = time_ms(lambda: step(False), args.iters, args.warmup, device)
    t_both = time_ms(lambda: step(True), args.iters, args.warmup, device)
    print(f'  train step CE         {t_ce:9.2f} ms')
    print(f'  train step CE + SMMCL {t_both:9.2f} ms   ratio {t_both / t_ce:5.2f}x')


def main(argv: Optional[list] = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    bench_synthetic(args, device)
    if args.model:
        bench_model(args, device)
    return 0


if __name__ == '__main__':
    sys.exit(main())

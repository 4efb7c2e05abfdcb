"""Small CPU ablation: cross-entropy only against SMMCL with two contrastive weights.

Trains ``training/configs/synthetic_cpu.yaml`` (SYNTHETIC dark scenes, a robot-sized preset,
no pretrained weights) once per (setting, seed), selects nothing (the last epoch is scored),
and evaluates ``last.pth`` on the synthetic ``test`` split, which training never sees (the
runs validate on ``val``). Prints a Markdown table of mean and sample standard deviation over
seeds. Every run is a separate ``smmcl-train`` process; finished runs are skipped when the
script is started again with the same ``--out``.

The seed sets both the network initialisation and the synthetic scenes (the synthetic
dataset is seeded by ``train.seed``), so every setting sees the same data for a given seed.

Example (the README table)::

    OMP_NUM_THREADS=1 python -m benchmarks.ablation_lambda --seeds 1 2 3 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

CONFIG = 'training/configs/synthetic_cpu.yaml'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='runs/ablation_lambda', help='folder for all runs')
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    p.add_argument('--lambdas', type=float, nargs='+', default=[0.05, 0.2],
                   help='SMMCL weights (lambda_cm = lambda_vis = lambda_aux)')
    p.add_argument('--delay', type=float, default=0.0,
                   help='with --ramp-lambdas: loss.lambda_delay_epochs of the extra runs')
    p.add_argument('--ramp', type=float, default=0.0,
                   help='with --ramp-lambdas: loss.lambda_ramp_epochs of the extra runs')
    p.add_argument('--ramp-lambdas', type=float, nargs='*', default=[],
                   help='also run these weights with the --delay/--ramp warm-up')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--train-size', type=int, default=64, help='synthetic training scenes')
    p.add_argument('--val-size', type=int, default=16, help='synthetic val and test scenes')
    p.add_argument('--size', type=int, nargs=2, default=[96, 128], metavar=('H', 'W'))
    p.add_argument('--preset', default='smmcl_mscan_t')
    p.add_argument('--no-ce', action='store_true', help='skip the cross-entropy-only runs')
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> List[Tuple[str, str, List[str]]]:
    """(folder name, label, overrides) per compared setting."""
    out: List[Tuple[str, str, List[str]]] = []
    if not args.no_ce:
        out.append(('ce', 'CE only (loss.mode=none)', ['loss.mode=none']))
    for value in args.lambdas:
        out.append((f'lambda{value:g}', f'SMMCL lambda {value:g}', ['loss.mode=both'] + [
            f'loss.lambda_{k}={value}' for k in ('cm', 'vis', 'aux')]))
    for value in args.ramp_lambdas:
        out.append((f'lambda{value:g}_delay{args.delay:g}_ramp{args.ramp:g}',
                    f'SMMCL lambda {value:g}, delay {args.delay:g} + ramp {args.ramp:g} epochs',
                    ['loss.mode=both'] + [f'loss.lambda_{k}={value}' for k in
                                          ('cm', 'vis', 'aux')]
                    + [f'loss.lambda_delay_epochs={args.delay}',
                       f'loss.lambda_ramp_epochs={args.ramp}']))
    return out


def run_one(args: argparse.Namespace, run_dir: Path, overrides: List[str], seed: int) -> Dict:
    """Train one run and score its last epoch on the test split (cached in result.json)."""
    result_file = run_dir / 'result.json'
    if result_file.is_file():
        return json.loads(result_file.read_text())
    h, w = args.size
    common = [
        f'model.name={args.preset}', f'train.seed={seed}', f'train.epochs={args.epochs}',
        f'train.out_dir={run_dir}', 'train.eval_every=0', 'train.ckpt_every=0',
        'train.progress=false', 'train.device=cpu', 'data.val_split=val',
        f'data.synthetic_train={args.train_size}', f'data.synthetic_val={args.val_size}',
        f'data.synthetic_size=[{h},{w}]', f'data.crop_size=[{h},{w}]',
    ]
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'smmcl_core.cli.train', '--config', CONFIG,
                    *common, *overrides], check=True)
    seconds = time.perf_counter() - start
    subprocess.run([sys.executable, '-m', 'smmcl_core.cli.evaluate', '--checkpoint',
                    str(run_dir / 'last.pth'), '--split', 'test', '--max-images', '0',
                    '--workers', '0', '--no-progress', '--device', 'cpu',
                    '--out', str(run_dir / 'eval_test')], check=True)
    report = json.loads((run_dir / 'eval_test' / 'report.json').read_text())
    records = [json.loads(line) for line in (run_dir / 'metrics.jsonl').read_text().splitlines()]
    last = records[-1]
    result = {'seed': seed, 'overrides': overrides, 'train_seconds': seconds,
              'test_miou': report['metrics']['miou'], 'val_miou': last.get('miou'),
              'final_ce': last['ce'], 'final_cm': last['cm'], 'final_vis': last['vis'],
              'final_aux': last['aux']}
    result_file.write_text(json.dumps(result, indent=2))
    return result


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the grid and print the table."""
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    out = Path(args.out)
    rows = []
    for folder, label, overrides in settings(args):
        results = [run_one(args, out / f'{folder}_seed{seed}', overrides, seed)
                   for seed in args.seeds]
        rows.append((label, results))
    print(f'\n{args.preset}, synthetic {args.size[0]}x{args.size[1]}, {args.train_size} train '
          f'scenes, {args.epochs} epochs, seeds {args.seeds}; last epoch scored on '
          f'{args.val_size} test scenes\n')
    print('| setting | test mIoU % mean +- std | per seed | final CE | final cm / vis / aux |')
    print('|---|---|---|---|---|')
    summary = []
    for label, results in rows:
        mious = [100 * r['test_miou'] for r in results]
        mean, std = mean_std(mious)
        ce = statistics.mean(r['final_ce'] for r in results)
        terms = ' / '.join(f'{statistics.mean(r[f"final_{k}"] for r in results):.2f}'
                           for k in ('cm', 'vis', 'aux'))
        print(f'| {label} | {mean:.2f} +- {std:.2f} | '
              f'{", ".join(f"{m:.1f}" for m in mious)} | {ce:.3f} | {terms} |')
        summary.append({'setting': label, 'mean': mean, 'std': std, 'per_seed': mious})
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

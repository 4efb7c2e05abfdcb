"""``smmcl-check-data``: scan dataset splits and report every damaged sample with its reason.

Usage::

    smmcl-check-data --config training/configs/folder_cpu.yaml data.root=/data/mine
    smmcl-check-data --dataset folder --root /data/mine --split train val
                     [--report check.json]

With ``--config`` the splits of the experiment are checked (train, validation as resolved by
``data.val_split``, and ``data.test_split`` if set) with its preprocessing settings, exactly as
``smmcl-train`` will read them (training runs the same scan first unless
``data.check=false``). Exit status 0 = clean, 1 = problems found, 2 = the dataset itself
cannot be opened (missing root, split file or ``classes.yaml``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import List, Optional

from smmcl_core.cli.args import add_data_args, apply_data_args
from smmcl_core.cli.common import run_cli
from smmcl_core.config import ExperimentConfig, load_config
from smmcl_core.data.check import check_datasets, format_report
from smmcl_core.data.experiment import dataset_from_config

PROG = 'smmcl-check-data'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-check-data``."""
    parser = argparse.ArgumentParser(prog=PROG, description=(
        'Scan dataset splits for missing, unreadable or inconsistent files.'))
    parser.add_argument('overrides', nargs='*', metavar='key.sub=value',
                        help='config overrides (YAML values)')
    add_data_args(parser, 'experiment YAML (checks its train/val/test splits)',
                  'splits to check (default: train and the validation split)',
                  multiple_splits=True)
    parser.add_argument('--report', help='also write the report as JSON here')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def run(args: argparse.Namespace) -> int:
    """Check and print; returns 0 (clean) or 1 (problems)."""
    cfg = load_config(args.config, args.overrides) if args.config else \
        ExperimentConfig.from_dict({})
    apply_data_args(args, cfg)
    if args.split:
        splits = {name: name for name in args.split}
    else:
        splits = {'train': cfg.data.train_split, 'val': cfg.data.val_split}
        if cfg.data.test_split:
            splits['test'] = cfg.data.test_split
    datasets = {label: dataset_from_config(cfg, split, train=False)
                for label, split in splits.items()}
    report = check_datasets(datasets, progress=not args.no_progress)
    print(format_report(report))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=2)
    return 1 if report['problems'] else 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-check-data``."""
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(args))


if __name__ == '__main__':
    raise SystemExit(main())

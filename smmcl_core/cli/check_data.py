"""``smmcl-check-data``: scan dataset splits and report every damaged sample with its reason.

Usage::

    smmcl-check-data /data/mine                       # a folder holding classes.yaml
    smmcl-check-data --config training/configs/folder_cpu.yaml data.root=/data/mine
    smmcl-check-data --config training/configs/folder_cpu.yaml /data/mine
    smmcl-check-data --dataset folder --root /data/mine --split train val
                     [--report check.json]

A folder given alone is checked as a ``folder`` dataset with the default settings: its
``train`` split, its validation split (``val.txt``, else the carve of ``data.val_split:
auto``) and ``test.txt`` if it has one; with ``--config`` the folder replaces ``data.root``.
``key.sub=value`` overrides need ``--config`` or a folder (the defaults alone describe the
synthetic dataset), and something must name the data: a folder, ``--config`` or
``--dataset``.

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
from typing import List, Optional, Tuple

from smmcl_core.cli.args import add_data_args
from smmcl_core.cli.common import run_cli
from smmcl_core.config import ExperimentConfig, load_config, require_config
from smmcl_core.data.check import check_datasets, format_report
from smmcl_core.data.experiment import dataset_from_config
from smmcl_core.data.resize import check_resize

CLASS_FILES = ('classes.yaml', 'classes.yml', 'classes.json')

PROG = 'smmcl-check-data'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-check-data``."""
    parser = argparse.ArgumentParser(prog=PROG, description=(
        'Scan dataset splits for missing, unreadable or inconsistent files.'))
    parser.add_argument('overrides', nargs='*', metavar='FOLDER | key.sub=value',
                        help='a dataset folder (holding classes.yaml) and/or config overrides '
                             '(YAML values; need --config or a folder)')
    add_data_args(parser, 'experiment YAML (checks its train/val/test splits)',
                  'splits to check (default: train and the validation split)',
                  multiple_splits=True)
    parser.add_argument('--report', help='also write the report as JSON here')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def split_positionals(items: List[str]) -> Tuple[Optional[Path], List[str]]:
    """``(dataset folder or None, key=value overrides)`` from the positional arguments.

    Raises:
        ValueError: An argument that is neither an override nor a dataset folder, a folder
            without a class file, or two folders.
    """
    folders, overrides = [], []
    for item in items:
        if '=' in item:
            overrides.append(item)
            continue
        path = Path(item)
        if not path.is_dir():
            raise ValueError(f'{item!r} is neither a key.sub=value override nor a dataset '
                             'folder (no such directory)')
        if not any((path / name).is_file() for name in CLASS_FILES):
            raise ValueError(f'{item!r} is not a dataset folder: it holds none of '
                             f'{", ".join(CLASS_FILES)} (README "Training on your own data")')
        folders.append(path)
    if len(folders) > 1:
        raise ValueError(f'give one dataset folder, got {", ".join(map(str, folders))}')
    return (folders[0] if folders else None), overrides


def resolve_config(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment to check: ``--config``, a folder, the flags; never the bare defaults."""
    folder, overrides = split_positionals(list(args.overrides))
    if folder is None:
        require_config(args.config, overrides, PROG)
    if not (args.config or folder is not None or args.dataset):
        raise ValueError('name the data to check: a dataset folder (smmcl-check-data '
                         '/data/mine), --config FILE [key.sub=value ...], or --dataset NAME '
                         '--root DIR')
    if folder is not None and args.root:
        raise ValueError(f'give the dataset folder once: {folder} and --root {args.root}')
    cfg = load_config(args.config, overrides)
    if folder is not None:
        cfg.data.dataset = 'folder'
        cfg.data.root = str(folder)
        if not args.config and (folder / 'test.txt').is_file():
            cfg.data.test_split = cfg.data.test_split or 'test'
    if args.dataset:
        cfg.data.dataset = args.dataset
    if args.root:
        cfg.data.root = args.root
    if args.aux_modality:
        cfg.data.aux_modality = args.aux_modality
    return cfg


def run(args: argparse.Namespace) -> int:
    """Check and print; returns 0 (clean) or 1 (problems)."""
    cfg = resolve_config(args)
    if args.split:
        splits = {name: name for name in args.split}
    else:
        splits = {'train': cfg.data.train_split, 'val': cfg.data.val_split}
        if cfg.data.test_split:
            splits['test'] = cfg.data.test_split
    datasets = {label: dataset_from_config(cfg, split, train=False)
                for label, split in splits.items()}
    print(f'{PROG}: {cfg.data.dataset} dataset'
          f'{" at " + cfg.data.root if cfg.data.root else ""}, splits '
          f'{", ".join(f"{label} ({len(d)} samples)" for label, d in datasets.items())}',
          flush=True)
    report = check_datasets(datasets, progress=not args.no_progress,
                            resize=check_resize(cfg.data.resize))
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

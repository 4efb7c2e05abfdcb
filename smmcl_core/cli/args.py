"""Argument groups the command-line tools share, each declared once.

- :func:`add_data_args` / :func:`apply_data_args`: which dataset and split to read
  (``--config``, ``--dataset``, ``--root``, ``--aux-modality``, ``--split``), patched onto an
  experiment config the same way by every tool.
- :func:`add_runtime_args`: ``--device``, ``--precision``, ``--backend``, with the choices taken
  from the engine table (``smmcl_core.engines.BACKENDS``) and the precision table
  (``smmcl_core.engines.PRECISIONS``).

Defaults (:data:`RUNTIME_DEFAULTS`): ``--device auto`` (CUDA when there is one), ``--precision
fp32`` and ``--backend auto`` (the fastest installed engine, what the ROS node uses). Tools
whose numbers must equal the training run's (``smmcl-evaluate``, ``smmcl-tsne``) pass
``exact=True``: their ``--backend`` default is ``torch``, the training run's own arithmetic.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Optional

from smmcl_core.config import ExperimentConfig, load_config
from smmcl_core.data.factory import DATASETS
from smmcl_core.data.preprocess import AUX_MODALITIES
from smmcl_core.engines import BACKENDS, PRECISIONS

RUNTIME_DEFAULTS: Dict[str, str] = {'device': 'auto', 'precision': 'fp32', 'backend': 'auto'}
EXACT_BACKEND = 'torch'  # the backend of exact=True tools


def add_data_args(parser: argparse.ArgumentParser, config_help: str,
                  split_help: str = "split (default: the config's val_split)",
                  multiple_splits: bool = False) -> None:
    """Add the data selection flags (see :func:`apply_data_args`).

    Args:
        parser: Parser to extend.
        config_help: What ``--config`` is for in this tool (and what it defaults to).
        split_help: Help of ``--split``.
        multiple_splits: ``--split`` takes one or more names (a list) instead of one.
    """
    parser.add_argument('--config', help=config_help)
    parser.add_argument('--dataset', choices=tuple(DATASETS),
                        help='dataset name; overrides the config')
    parser.add_argument('--root', help='dataset root folder')
    parser.add_argument('--aux-modality', choices=AUX_MODALITIES,
                        help="aux modality (default: the dataset's)")
    parser.add_argument('--split', nargs='+' if multiple_splits else None, help=split_help)


def apply_data_args(args: argparse.Namespace, cfg: ExperimentConfig) -> ExperimentConfig:
    """Patch ``cfg.data`` with the data flags (a single ``--split`` becomes ``val_split``).

    Another ``--dataset`` than the config's drops the config's root and aux modality (they
    belong to the old dataset).
    """
    if args.dataset:
        if args.dataset != cfg.data.dataset:
            cfg.data.aux_modality = ''
            cfg.data.root = ''
        cfg.data.dataset = args.dataset
    if args.root:
        cfg.data.root = args.root
    if args.aux_modality:
        cfg.data.aux_modality = args.aux_modality
    if isinstance(args.split, str):
        cfg.data.val_split = args.split
    return cfg


def config_for_checkpoint(args: argparse.Namespace, state: Dict[str, Any]) -> ExperimentConfig:
    """The checkpoint's config, replaced by ``--config`` and patched by the data flags."""
    if args.config:
        cfg = load_config(args.config)
    else:
        cfg = ExperimentConfig.from_dict(state.get('config') or {})
    return apply_data_args(args, cfg)


def add_runtime_args(parser: argparse.ArgumentParser, exact: bool = False,
                     precision: bool = True, backend: bool = True,
                     defaults: Optional[Dict[str, str]] = None) -> None:
    """Add ``--device`` and, unless turned off, ``--precision`` and ``--backend``.

    Args:
        parser: Parser to extend.
        exact: Default ``--backend`` to ``torch`` (see the module docstring).
        precision: Add ``--precision``.
        backend: Add ``--backend``.
        defaults: Tool-specific defaults replacing :data:`RUNTIME_DEFAULTS` entries (state
            the reason in the tool's docstring).
    """
    values = dict(RUNTIME_DEFAULTS, **({'backend': EXACT_BACKEND} if exact else {}))
    values.update(defaults or {})
    parser.add_argument('--device', default=values['device'],
                        help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1' "
                             f'(default: {values["device"]})')
    if precision:
        parser.add_argument('--precision', choices=tuple(PRECISIONS),
                            default=values['precision'],
                            help=f'network precision (default: {values["precision"]})')
    if backend:
        parser.add_argument('--backend', choices=BACKENDS, default=values['backend'],
                            help='inference engine: auto = the fastest installed one, torch = '
                                 'the training arithmetic, or an engine of '
                                 f'smmcl_core.engines (default: {values["backend"]})')

"""``smmcl-train``: train an SMMCL network from a YAML experiment (single process or DDP).

Usage::

    smmcl-train --config training/configs/mfnet_mscan_b.yaml [key.sub=value ...]
                [--resume auto|PATH]
    torchrun --nproc_per_node 4 -m smmcl_core.cli.train --config ... # DDP, one GPU per rank

What a run writes into ``train.out_dir`` and how it stays deterministic:
``smmcl_core.training.trainer``. Every checkpoint alone is enough for inference (``meta``
holds the preset, classes, palette, normalisation and aux modality).
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from smmcl_core.cli.common import run_cli
from smmcl_core.config import load_config, require_config
from smmcl_core.training.trainer import PROG, train


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-train``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='Train an SMMCL RGB-X segmentation network.',
        epilog='Overrides are dotted config keys, e.g. optim.lr=1e-4 train.epochs=50 '
               'data.crop_size=[240,320].')
    parser.add_argument('--config', help='YAML experiment file (training/configs/*.yaml)')
    parser.add_argument('overrides', nargs='*', metavar='key.sub=value',
                        help='config overrides (YAML values)')
    parser.add_argument('--resume', default='',
                        help="'auto' = out_dir/last.pth if it exists, or a checkpoint path")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-train``."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        require_config(args.config, args.overrides, PROG)
        cfg = load_config(args.config, args.overrides)
        train(cfg, args.resume)
        return 0

    return run_cli(PROG, body)


if __name__ == '__main__':
    raise SystemExit(main())

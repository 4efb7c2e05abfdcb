"""``smmcl-import-release``: the authors' released weights -> a self-describing smmcl checkpoint.

Usage::

    smmcl-import-release epoch-500.pth --dataset llrgbd --out llrgbd_mscan_b.pth
    python -m smmcl_core.cli.import_release epoch-300.pth --dataset mfnet --out mfnet.pth
    ros2 run smmcl_ros import_release epoch-600.pth --dataset nyudv2 --out nyu.pth

Reads the released ``epoch-N.pth`` (palmdong/SMMCL training engine layout, ``module.`` prefix
or not) with ``torch.load(weights_only=True)`` on the CPU, detects MSCAN-B / MSCAN-L and the
class count from the tensor shapes, maps every released tensor onto this package's network
(strictly: an error lists every unmatched name) and writes a checkpoint whose meta holds the
dataset's classes and palette, the released input conventions (BGR colour, 8-bit grey aux)
and the released evaluation protocol. Segmenter, the ROS node, smmcl-bag-eval,
smmcl-evaluate and smmcl-export then use it like any other checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from smmcl_core.cli.common import run_cli
from smmcl_core.release.layout import RELEASE_DATASETS

PROG = 'smmcl-import-release'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-import-release``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Convert the authors' released SMMCL weights (epoch-N.pth) into "
                               'an smmcl checkpoint.')
    parser.add_argument('release', type=Path, help='released checkpoint (epoch-N.pth)')
    parser.add_argument('--dataset', required=True, choices=RELEASE_DATASETS,
                        help='dataset the weights were trained on (classes, palette, modality)')
    parser.add_argument('--out', required=True, type=Path, help='smmcl checkpoint to write')
    return parser


def run(args: argparse.Namespace) -> Path:
    """Import and save; returns the path written."""
    from smmcl_core.checkpoint import save_checkpoint
    from smmcl_core.release.importer import import_release

    if args.out.resolve() == args.release.resolve():
        raise ValueError(f'--out {args.out} would overwrite the released file')
    state = import_release(args.release, args.dataset)
    out = save_checkpoint(args.out, state)
    meta = state['meta']
    params = sum(v.numel() for k, v in state['model'].items() if not k.endswith(
        ('running_mean', 'running_var', 'num_batches_tracked', '.bases')))
    source = meta['source']
    print(f"{PROG}: {args.release}: {source['variant']} + LightHamHead, "
          f"{meta['num_classes']} classes ({args.dataset}), {source['tensors']} tensors, "
          f'{params / 1e6:.2f}M parameters, epoch {source["epoch"]}'
          + (", 'module.' prefix stripped" if source['module_prefix'] else ''))
    print(f"{PROG}: input conventions: channel_order={meta['channel_order']}, "
          f"aux_encoding={meta['aux_encoding']}, aux={meta['aux_modality']}")
    print(f'{PROG}: wrote {out} ({out.stat().st_size / 1e6:.1f} MB)')
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-import-release``."""
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(args) and 0)


if __name__ == '__main__':
    raise SystemExit(main())

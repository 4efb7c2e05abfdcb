"""``smmcl-export``: a checkpoint as TorchScript or ONNX (logits of normalised inputs).

Usage::

    smmcl-export --checkpoint runs/x/best.pth --format onnx --out model.onnx
                 [--height 480 --width 640] [--dynamic-hw] [--opset 17] [--verify]

The exported graph maps ``rgb (B,3,H,W)`` and ``aux (B,3,H,W)``, both normalised as in
``smmcl_core.data.tensors.to_input_tensors``, to ``logits (B,K,H,W)``. The batch axis is
always dynamic; ``--dynamic-hw`` also makes height and width dynamic (ONNX). The checkpoint
``meta`` (the whole dict: classes, palette, mean/std, aux modality and ranges, and any key
added later) travels with the file: ONNX ``metadata_props['smmcl_meta']`` and the TorchScript
extra file ``smmcl_meta.json``. It is the graph the inference engines run
(``smmcl_core.engines.graph``: the all-MLP head's fused 1x1 weights folded), so an exported
``.onnx`` can be given to ``Segmenter.from_checkpoint`` / the node as the checkpoint.

``--verify`` runs the exported file (ONNX: through the ``onnxruntime`` engine of
``smmcl_core.engines``, as ``Segmenter`` would) on a batch of two random inputs and
fails unless its output matches PyTorch's within ``--tolerance`` (default 1e-3).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Tuple
import warnings

import numpy as np
import torch
from torch import nn

from smmcl_core.cli.common import run_cli
from smmcl_core.engines import create_engine, resolve_backend
from smmcl_core.engines.graph import example_inputs, InferenceGraph, MIN_OPSET, write_onnx
from smmcl_core.segmenter import Segmenter
from smmcl_core.utils.files import sha256_file

PROG = 'smmcl-export'
FORMATS = ('torchscript', 'onnx')
VERIFY_ENGINE = 'onnxruntime'  # the engine --verify runs an ONNX export with


# ``(rgb, aux) -> logits`` without the training options, head weights folded.
LogitsOnly = InferenceGraph


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-export``."""
    parser = argparse.ArgumentParser(prog=PROG, description='Export an SMMCL checkpoint.')
    parser.add_argument('--checkpoint', required=True, help='checkpoint (.pth)')
    parser.add_argument('--format', required=True, choices=FORMATS)
    parser.add_argument('--out', required=True, help='output file (.pt / .onnx)')
    parser.add_argument('--height', type=int, default=480, help='example input height')
    parser.add_argument('--width', type=int, default=640, help='example input width')
    parser.add_argument('--dynamic-hw', action='store_true',
                        help='ONNX: dynamic height/width axes too (batch is always dynamic)')
    parser.add_argument('--opset', type=int, default=MIN_OPSET,
                        help=f'ONNX opset (>= {MIN_OPSET})')
    parser.add_argument('--verify', action='store_true',
                        help='check the exported file against PyTorch on random inputs')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='max abs logit difference accepted by --verify')
    return parser


def export_torchscript(module: nn.Module, inputs: Tuple[torch.Tensor, torch.Tensor],
                       out: Path, meta: Dict[str, Any]) -> None:
    """Trace (the network has no data-dependent control flow) and save with the meta."""
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarning and torch.jit's deprecation FutureWarnings: TorchScript still works.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', FutureWarning)
        traced = torch.jit.trace(module, inputs, check_trace=False)
        torch.jit.save(traced, str(out), _extra_files={'smmcl_meta.json': json.dumps(meta)})


def export_onnx(module: nn.Module, inputs: Tuple[torch.Tensor, torch.Tensor], out: Path,
                meta: Dict[str, Any], opset: int, dynamic_hw: bool,
                graph_info: Optional[Dict[str, Any]] = None) -> None:
    """ONNX export with the meta as metadata (see ``smmcl_core.engines.graph.write_onnx``)."""
    write_onnx(module, inputs, out, meta, opset, dynamic_hw, graph_info)


def run_exported(fmt: str, path: Path, rgb: torch.Tensor, aux: torch.Tensor,
                 num_classes: int) -> np.ndarray:
    """Logits from the exported file (ONNX: the onnxruntime engine; TorchScript: torch.jit)."""
    if fmt == 'onnx':
        device = torch.device('cpu')
        name = resolve_backend(VERIFY_ENGINE, device)
        engine = create_engine(name, path, device, 'fp32', num_classes)
        with torch.no_grad():
            return engine(rgb, aux).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        loaded = torch.jit.load(str(path), map_location='cpu')
    with torch.no_grad():
        return loaded(rgb, aux).numpy()


def verify(fmt: str, path: Path, module: nn.Module, height: int, width: int,
           tolerance: float) -> float:
    """Max abs difference exported vs PyTorch on a batch of two (checks the dynamic batch).

    Raises:
        RuntimeError: the difference exceeds ``tolerance`` or the exported file fails to run.
    """
    rgb, aux = example_inputs(2, height, width, seed=1)
    with torch.no_grad():
        expected = module(rgb, aux).numpy()
    try:
        actual = run_exported(fmt, path, rgb, aux, int(expected.shape[1]))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise RuntimeError(f'{path}: the exported {fmt} model failed on a batch of 2 '
                           f'({height}x{width}): {exc}') from exc
    if actual.shape != expected.shape:
        raise RuntimeError(f'{path}: output shape {actual.shape}, PyTorch gives '
                           f'{expected.shape}')
    diff = float(np.abs(actual - expected).max())
    if not diff <= tolerance:
        raise RuntimeError(f'{path}: max abs logit difference {diff:.3g} exceeds '
                           f'{tolerance:g}')
    return diff


def export(checkpoint: str, fmt: str, out: str, height: int = 480, width: int = 640,
           opset: int = MIN_OPSET, dynamic_hw: bool = False, check: bool = False,
           tolerance: float = 1e-3) -> Optional[float]:
    """Export ``checkpoint``; returns the verified max difference (None without check)."""
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; valid: {", ".join(FORMATS)}')
    if height < 1 or width < 1:
        raise ValueError(f'--height/--width must be positive, got {height}x{width}')
    segmenter = Segmenter.from_checkpoint(checkpoint, device='cpu', channels_last=False)
    module = InferenceGraph(segmenter.model).eval()
    meta = dict(segmenter.meta)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(1, height, width)
    if fmt == 'onnx':
        export_onnx(module, inputs, out_path, meta, opset, dynamic_hw,
                    {'checkpoint_sha256': sha256_file(checkpoint)})
    else:
        export_torchscript(module, inputs, out_path, meta)
    print(f'{PROG}: wrote {out_path} ({fmt}, {out_path.stat().st_size / 1e6:.1f} MB)')
    if not check:
        return None
    # Against the unfolded network: checks the export and the head folding together.
    diff = verify(fmt, out_path, segmenter.model.float().eval(), height, width, tolerance)
    print(f'{PROG}: verified: max abs logit difference {diff:.2e} <= {tolerance:g}')
    return diff


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-export``; exit status 1 when ``--verify`` fails."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        try:
            export(args.checkpoint, args.format, args.out, args.height, args.width,
                   args.opset, args.dynamic_hw, args.verify, args.tolerance)
        except RuntimeError as exc:
            print(f'{PROG}: error: {exc}', file=sys.stderr)
            return 1
        return 0

    return run_cli(PROG, body)


if __name__ == '__main__':
    raise SystemExit(main())

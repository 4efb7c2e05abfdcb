"""Checkpoint files: atomic writes, safe loading (``weights_only``) and the smmcl layout.

Public API (frozen):

- ``FORMAT_VERSION`` (int), ``META_KEYS`` (tuple), ``CheckpointError(ValueError)``.
- ``build_meta(preset, num_classes, class_names, palette, aux_modality, mean=IMAGENET_MEAN,
  std=IMAGENET_STD, aux_ranges=None, ignore_index=255) -> dict`` (plain, validated);
  ``meta_from_dataset_info(preset, info: DatasetInfo) -> dict``.
- ``unwrap_model(model)``: the module inside DDP/DataParallel.
- ``build_checkpoint(model, config, meta, optimizer=None, scheduler=None, scaler=None,
  epoch=None, extra=None) -> dict``.
- ``save_checkpoint(path, state)``: temp file in the same folder + fsync + ``os.replace``.
- ``load_checkpoint(path, map_location='cpu', require=('model', 'meta')) -> dict``.
- ``capture_rng() -> dict`` and ``restore_rng(state)`` (python, numpy, torch, cuda).
- ``slim_checkpoint(state, half=True) -> dict``: inference-only copy (model, config, meta),
  floating tensors in fp16 to halve the file; ``python -m smmcl_core.checkpoint slim IN OUT``.

Layout (every value loads with ``torch.load(weights_only=True)``)::

    format_version: int
    model:          state_dict (DDP ``module.`` prefix never stored)
    config:         plain nested dict (ExperimentConfig.to_dict())
    meta:           {preset, num_classes, class_names, palette [[r,g,b],...], mean, std,
                     aux_modality, aux_ranges {depth_max_m | thermal_range | ...}, ignore_index}
    rng:            {python: [version, [ints], gauss], numpy: {...}, torch: uint8 tensor,
                     cuda: [uint8 tensors]}
    optimizer, scheduler, scaler, epoch, extra   (only those given)
"""

from __future__ import annotations

import os
from pathlib import Path
import random
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from smmcl_core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from smmcl_core.meta import META_KEYS
from smmcl_core.release.layout import is_release_state, release_hint
from smmcl_core.utils.files import atomic_write
from smmcl_core.utils.torch_load import load_weights_only

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, unsafe, not an smmcl checkpoint, or lacks keys."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP/DataParallel wrapper (the model itself otherwise)."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model


def build_meta(preset: str, num_classes: int, class_names: Sequence[str],
               palette: Any, aux_modality: str,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
               aux_ranges: Optional[Mapping[str, Any]] = None,
               ignore_index: int = 255) -> Dict[str, Any]:
    """Everything inference needs besides the weights, as plain Python values.

    Raises:
        ValueError: class names or palette rows do not match ``num_classes``.
    """
    palette_list = [[int(c) for c in row] for row in np.asarray(palette).tolist()]
    if len(class_names) != num_classes:
        raise ValueError(f'meta: {len(class_names)} class_names for num_classes={num_classes}')
    if len(palette_list) < num_classes or any(len(row) != 3 for row in palette_list):
        raise ValueError(f'meta: palette must have {num_classes} rows of 3 values, got '
                         f'{np.asarray(palette).shape}')
    ranges = {}
    for key, value in dict(aux_ranges or {}).items():
        if isinstance(value, str):  # e.g. thermal_colormap
            ranges[str(key)] = value
        else:
            ranges[str(key)] = [float(v) for v in value] if isinstance(value, (list, tuple)) \
                else float(value)
    return {
        'preset': str(preset),
        'num_classes': int(num_classes),
        'class_names': [str(n) for n in class_names],
        'palette': palette_list[:num_classes],
        'mean': [float(v) for v in mean],
        'std': [float(v) for v in std],
        'aux_modality': str(aux_modality),
        'aux_ranges': ranges,
        'ignore_index': int(ignore_index),
    }


def meta_from_dataset_info(preset: str, info: Any) -> Dict[str, Any]:
    """:func:`build_meta` from a ``smmcl_core.data.classes.DatasetInfo``."""
    return build_meta(preset, info.num_classes, info.class_names, info.palette,
                      info.aux_modality, mean=info.mean, std=info.std,
                      aux_ranges=info.aux_ranges, ignore_index=info.ignore_index)


def capture_rng() -> Dict[str, Any]:
    """RNG states of python, numpy, torch and CUDA as weights_only-loadable values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        'python': [version, list(internal), gauss],
        'numpy': {'name': str(name), 'keys': torch.from_numpy(keys.astype(np.int64)),
                  'pos': int(pos), 'has_gauss': int(has_gauss), 'cached': float(cached)},
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore RNG states from :func:`capture_rng` output (or a checkpoint holding ``rng``).

    CUDA states are restored only when the device count matches the saved one.
    """
    if 'rng' in state:
        state = state['rng']
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np_state = state['numpy']
    np.random.set_state((np_state['name'], np_state['keys'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['cached']))
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def build_checkpoint(model: nn.Module, config: Any, meta: Mapping[str, Any],
                     optimizer: Optional[torch.optim.Optimizer] = None,
                     scheduler: Optional[Any] = None,
                     scaler: Optional[Any] = None,
                     epoch: Optional[int] = None,
                     extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Assemble the checkpoint dict (see the module docstring for the layout).

    Args:
        model: The network (DDP wrappers are unwrapped).
        config: ``ExperimentConfig`` (anything with ``to_dict()``) or a plain dict.
        meta: Output of :func:`build_meta` (or a dict with all ``META_KEYS``).
        optimizer, scheduler, scaler: Stored by ``state_dict()`` when given.
        epoch: Number of completed epochs (resume starts at this epoch).
        extra: Further plain values (e.g. best mIoU, global step).

    Raises:
        CheckpointError: ``meta`` lacks keys.
    """
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f'checkpoint meta lacks key(s): {", ".join(missing)}')
    config_dict = config.to_dict() if hasattr(config, 'to_dict') else dict(config or {})
    state: Dict[str, Any] = {
        'format_version': FORMAT_VERSION,
        'model': unwrap_model(model).state_dict(),
        'config': config_dict,
        'meta': dict(meta),
        'rng': capture_rng(),
    }
    if optimizer is not None:
        state['optimizer'] = optimizer.state_dict()
    if scheduler is not None:
        state['scheduler'] = scheduler.state_dict()
    if scaler is not None:
        state['scaler'] = scaler.state_dict()
    if epoch is not None:
        state['epoch'] = int(epoch)
    if extra is not None:
        state['extra'] = dict(extra)
    return state


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically: a crash or error never leaves a half-written ``path``.

    The bytes go to a temporary file in the same folder (same filesystem), are fsynced, and
    then ``os.replace`` swaps it in; the folder is fsynced so the rename itself is durable.

    Returns:
        The path written.
    """
    return atomic_write(path, lambda tmp: torch.save(dict(state), tmp), durable=True)


def load_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu',
                    require: Sequence[str] = ('model', 'meta')) -> Dict[str, Any]:
    """Load an smmcl checkpoint with ``torch.load(weights_only=True)`` (never runs code).

    Args:
        path: Checkpoint file.
        map_location: Passed to ``torch.load``.
        require: Top-level keys that must be present (e.g. add ``'optimizer'`` for resume).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: corrupt/truncated file, pickled code (refused), not an smmcl
            checkpoint (the authors' released ``epoch-N.pth`` gets a message naming
            ``smmcl-import-release``), unsupported ``format_version``, or missing keys; the
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    state = load_weights_only(path, CheckpointError, 'checkpoint', map_location)
    if not isinstance(state, dict) or 'format_version' not in state:
        if is_release_state(state):
            raise CheckpointError(release_hint(path))
        raise CheckpointError(f'{path} is not an smmcl checkpoint (no format_version key; '
                              'plain state_dicts are not accepted)')
    version = state['format_version']
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f'checkpoint {path} has format_version {version!r}; this code '
                              f'reads up to {FORMAT_VERSION}')
    missing = [k for k in require if k not in state]
    if missing:
        raise CheckpointError(f'checkpoint {path} lacks key(s): {", ".join(missing)}')
    if 'meta' in state:
        meta_missing = [k for k in META_KEYS if k not in state['meta']]
        if meta_missing:
            raise CheckpointError(f'checkpoint {path}: meta lacks key(s): '
                                  f'{", ".join(meta_missing)}')
    return state


def slim_checkpoint(state: Mapping[str, Any], half: bool = True) -> Dict[str, Any]:
    """An inference-only copy: no optimizer/scheduler/RNG, optionally fp16 weights.

    ``load_state_dict`` casts back to the model's dtype, so a slim file loads like any other;
    fp16 storage changes predictions only where two classes are within fp16 rounding.
    """
    model = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in state['model'].items()}
    return {'format_version': state['format_version'], 'model': model,
            'config': state.get('config', {}), 'meta': dict(state['meta'])}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m smmcl_core.checkpoint slim IN OUT [--fp32]``."""
    import argparse

    parser = argparse.ArgumentParser(prog='python -m smmcl_core.checkpoint')
    sub = parser.add_subparsers(dest='command', required=True)
    slim = sub.add_parser('slim', help='write an inference-only (fp16) copy of a checkpoint')
    slim.add_argument('src', type=Path)
    slim.add_argument('dst', type=Path)
    slim.add_argument('--fp32', action='store_true', help='keep fp32 weights')
    args = parser.parse_args(argv)
    out = save_checkpoint(args.dst, slim_checkpoint(load_checkpoint(args.src), not args.fp32))
    print(f'{out}: {out.stat().st_size / 1e6:.1f} MB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

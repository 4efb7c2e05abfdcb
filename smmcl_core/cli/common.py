"""Glue shared by the command-line tools: errors, devices, DDP context, datasets, seeding."""

from __future__ import annotations

from dataclasses import dataclass
import datetime
import json
import os
from pathlib import Path
import random
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from smmcl_core.config import ExperimentConfig
from smmcl_core.data import build_dataset, RGBXDataset
from smmcl_core.data.factory import default_modality
from smmcl_core.data.resize import check_resize
from smmcl_core.data.splits import AUTO, carve_validation

# Exceptions that mean "the user asked for something invalid" (bad key, file, value): the
# tools print them as one line and exit with status 2 instead of a traceback.
USER_ERRORS = (KeyError, ValueError, TypeError, FileNotFoundError)


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and turn user errors into ``prog: error: message`` and exit status 2."""
    try:
        return int(body() or 0)
    except USER_ERRORS as exc:
        # KeyError wraps its message in quotes; show the bare text.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f'{prog}: error: {message}', file=sys.stderr)
        return 2


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local CUDA device if there is one, else CPU; anything else as given."""
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda', local_rank)
        return torch.device('cpu')
    device = torch.device(name)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {name!r} requested but CUDA is not available')
        if device.index is None:
            device = torch.device('cuda', local_rank)
    return device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when started by ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes logs, metrics and checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op without a process group)."""
        if self.distributed:
            dist.barrier()


def distributed_env() -> DistContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by ``torchrun``."""
    try:
        rank = int(os.environ.get('RANK', '0'))
        world = int(os.environ.get('WORLD_SIZE', '1'))
        local = int(os.environ.get('LOCAL_RANK', str(rank)))
    except ValueError as exc:
        raise ValueError(f'bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}') from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f'bad torchrun environment: RANK={rank}, WORLD_SIZE={world}')
    return DistContext(rank, world, local)


def init_distributed(ctx: DistContext, device: torch.device) -> None:
    """Start the process group: NCCL for CUDA devices, gloo on CPU."""
    if not ctx.distributed or dist.is_initialized():
        return
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    # Rank 0 evaluates and writes checkpoints while the others wait; allow for a long pause.
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size,
                            timeout=datetime.timedelta(hours=2))


def shutdown_distributed() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    seed = int(seed) % (2 ** 32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def discrete_scales(scale_range: Sequence[float], step: float = 0.25) -> List[float]:
    """``[lo, hi]`` -> the released-style list ``lo, lo + 0.25, ..., hi`` (hi included)."""
    if len(scale_range) != 2:
        raise ValueError(f'data.scale_range must be [low, high], got {list(scale_range)}')
    lo, hi = float(scale_range[0]), float(scale_range[1])
    if not 0 < lo <= hi:
        raise ValueError(f'data.scale_range must satisfy 0 < low <= high, got {[lo, hi]}')
    count = int(np.floor((hi - lo) / step + 1e-6))
    scales = [round(lo + i * step, 6) for i in range(count + 1)]
    if abs(scales[-1] - hi) > 1e-6:
        scales.append(hi)
    return scales


def _build_split(cfg: ExperimentConfig, split: str, train: bool,
                 conventions: Optional[Dict[str, str]] = None) -> RGBXDataset:
    data = cfg.data
    kwargs: Dict[str, Any] = dict(
        train=train, crop_size=tuple(data.crop_size), scales=discrete_scales(data.scale_range),
        flip=data.hflip, seed=cfg.train.seed, resize=check_resize(data.resize))
    if conventions:
        kwargs['conventions'] = dict(conventions)
    modality = data.aux_modality or None
    if data.dataset == 'synthetic':
        kwargs.update(length=data.synthetic_train if train else data.synthetic_val,
                      height=data.synthetic_size[0], width=data.synthetic_size[1])
    if data.dataset != 'folder' and (modality or default_modality(data.dataset)) == 'depth':
        # A folder dataset states its own depth range in classes.yaml.
        kwargs['aux_ranges'] = {'depth_max_m': float(data.max_depth_m)}
    return build_dataset(data.dataset, data.root or None, split, aux_modality=modality,
                         **kwargs)


@dataclass(frozen=True)
class ValPlan:
    """Where the validation samples come from (see ``smmcl_core.data.splits``)."""

    split: str  # the dataset split read for validation
    carved: bool  # True: a carved part of ``split`` (the training split)
    description: str


def validation_plan(cfg: ExperimentConfig) -> ValPlan:
    """Resolve ``data.val_split`` (``auto`` -> the dataset's ``val`` or a carve of train)."""
    data = cfg.data
    if data.val_split != AUTO:
        return ValPlan(data.val_split, False, f'dataset split {data.val_split!r}')
    try:
        _build_split(cfg, 'val', train=False)
    except (ValueError, FileNotFoundError):
        return ValPlan(data.train_split, True,
                       f'{data.val_fraction:g} of split {data.train_split!r} carved out '
                       f'(data.split_seed {data.split_seed}); the dataset has no val split')
    return ValPlan('val', False, "dataset split 'val' (data.val_split: auto)")


def dataset_from_config(cfg: ExperimentConfig, split: str, train: bool,
                        conventions: Optional[Dict[str, str]] = None) -> RGBXDataset:
    """Build the dataset of an experiment for one split.

    Training and evaluation (``smmcl-train`` and ``smmcl-evaluate``) both come through here,
    so a checkpoint is always evaluated with the preprocessing it was trained with;
    ``conventions`` (the checkpoint's ``input_conventions``) carries e.g. the released
    weights' BGR input into evaluation. ``split == 'auto'`` is the validation split of
    :func:`validation_plan`; the training split loses the samples a carved validation split
    takes.
    """
    data = cfg.data
    if split == AUTO or split == data.train_split:
        plan = validation_plan(cfg) if data.val_split == AUTO else None
        if plan is not None and plan.carved:
            dataset = _build_split(cfg, data.train_split, train, conventions)
            kept, val = carve_validation(dataset.names, data.val_fraction, data.split_seed)
            dataset.names = val if split == AUTO else kept
            return dataset
        if split == AUTO:
            split = plan.split if plan is not None else data.val_split
    return _build_split(cfg, split, train, conventions)


def append_jsonl(path: Path, record: Dict[str, Any]) -> None:
    """Append one JSON line (flushed, so a killed run keeps every finished record)."""
    with open(path, 'a') as f:
        f.write(json.dumps(record, sort_keys=False) + '\n')
        f.flush()


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    """All records of a JSON-lines file ([] if it does not exist); a torn last line is skipped."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def parse_pair(values: Optional[Sequence[int]], what: str) -> Optional[List[int]]:
    """Validate an optional ``H W`` pair from the command line."""
    if values is None:
        return None
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f'{what} needs two positive integers H W, got {list(values)}')
    return [int(v) for v in values]

"""The datasets of an experiment config: one split, the validation plan, training scales.

Training and evaluation (``smmcl-train``, ``smmcl-evaluate``, ``smmcl-tsne``,
``smmcl-check-data``) all build their datasets here, so a checkpoint is always evaluated with
the preprocessing it was trained with. What each dataset reads from the config besides the
shared options is ``smmcl_core.data.factory.config_options``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from smmcl_core.config import ExperimentConfig
from smmcl_core.data.datasets import RGBXDataset
from smmcl_core.data.factory import build_dataset, config_options
from smmcl_core.data.resize import check_resize
from smmcl_core.data.splits import AUTO, carve_validation


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


def build_split(cfg: ExperimentConfig, split: str, train: bool,
                conventions: Optional[Dict[str, str]] = None) -> RGBXDataset:
    """Dataset ``split`` of the experiment as it stands in the config (no carving)."""
    data = cfg.data
    kwargs: Dict[str, Any] = dict(
        train=train, crop_size=tuple(data.crop_size), scales=discrete_scales(data.scale_range),
        flip=data.hflip, seed=cfg.train.seed, resize=check_resize(data.resize))
    if conventions:
        kwargs['conventions'] = dict(conventions)
    modality = data.aux_modality or None
    kwargs.update(config_options(data.dataset, data, train))
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
        build_split(cfg, 'val', train=False)
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
            dataset = build_split(cfg, data.train_split, train, conventions)
            kept, val = carve_validation(dataset.names, data.val_fraction, data.split_seed)
            dataset.names = val if split == AUTO else kept
            return dataset
        if split == AUTO:
            split = plan.split if plan is not None else data.val_split
    return build_split(cfg, split, train, conventions)


def check_compatible(meta: Dict[str, Any], dataset: RGBXDataset, checkpoint: str) -> None:
    """The checkpoint must predict the dataset's classes from the dataset's modality."""
    if list(meta['class_names']) != list(dataset.class_names):
        raise ValueError(
            f'checkpoint {checkpoint} was trained on classes {list(meta["class_names"])}, the '
            f'dataset has {list(dataset.class_names)}')
    if meta['aux_modality'] != dataset.aux_modality:
        raise ValueError(
            f'checkpoint {checkpoint} expects aux modality {meta["aux_modality"]!r}, the '
            f'dataset provides {dataset.aux_modality!r} (see --aux-modality)')
    trained = (meta.get('aux_ranges') or {}).get('thermal_colormap', '')
    now = dataset.info.aux_ranges.get('thermal_colormap', '')
    if trained != now:  # e.g. thermal_colormap: auto fitted again on changed files
        raise ValueError(
            f'checkpoint {checkpoint} was trained with thermal_colormap {trained!r}, the '
            f'dataset now converts its thermal with {now!r}')

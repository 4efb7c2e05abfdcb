"""Typed experiment configuration: dataclasses loaded from YAML, overridable from the CLI.

The resolved configuration is saved with every run (``config.yaml`` in the run folder) and
inside every checkpoint as a plain dict, so a checkpoint alone describes how it was made.

Overrides use dotted keys, as in ``optim.lr=1e-4 data.crop_size=[240,320]``; values are
parsed as YAML scalars/lists and then checked against the field's type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import os
from pathlib import Path
import types
import typing
from typing import Any

import yaml


@dataclass
class ModelConfig:
    """Network preset and its overrides (see ``smmcl_core.models.PRESETS``)."""

    name: str = 'smmcl_mscan_t'
    pretrained: str = ''  # ImageNet file for both encoders, 'timm' (ResNet, online), '' = none
    drop_path_rate: float | None = None  # None keeps the preset's value
    sync_bn: bool = True  # convert BatchNorm to SyncBatchNorm under DDP


@dataclass
class DataConfig:
    """Dataset, modality and augmentation."""

    dataset: str = 'synthetic'  # see smmcl_core.data.DATASETS
    root: str = ''
    aux_modality: str = ''  # '' = the dataset's default (folder: classes.yaml's)
    train_split: str = 'train'
    # Split that validates during training and chooses best.pth. 'auto' = the dataset's
    # 'val' split, or, when it has none, val_fraction of train_split carved out reproducibly
    # (split_seed). The test split is scored only when named in test_split.
    val_split: str = 'auto'
    val_fraction: float = 0.1
    split_seed: int = 0
    test_split: str = ''  # scored once at the end of training (never used for selection)
    # Network input: S (short side S, aspect kept), [H, W] (exact) or [] (native size);
    # S is stored as [S].
    resize: int | list[int] = field(default_factory=list)
    check: bool = True  # scan train/val files for damage before building the model
    crop_size: list[int] = field(default_factory=lambda: [480, 640])  # (H, W)
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.75])
    hflip: bool = True
    max_depth_m: float = 10.0  # depth beyond this maps to 1.0 in the network input
    workers: int = 4
    synthetic_train: int = 64  # only for dataset='synthetic'
    synthetic_val: int = 16
    synthetic_size: list[int] = field(default_factory=lambda: [120, 160])

    def __post_init__(self):
        if isinstance(self.resize, int):
            self.resize = [self.resize]  # one form in saved configs and checkpoints


@dataclass
class LossConfig:
    """Eq. (7): L = L_ce + lambda_cm L_cm + lambda_vis L_vis + lambda_aux L_aux."""

    mode: str = 'both'  # none | cross | intra | both (Table 5)
    temperature: float = 0.1
    lambda_cm: float = 0.2
    lambda_vis: float = 0.2
    lambda_aux: float = 0.2
    # Contrastive weights scaled by 0 for lambda_delay_epochs, then linearly up to 1 over
    # lambda_ramp_epochs (both 0 = the paper's constant weights).
    lambda_delay_epochs: float = 0.0
    lambda_ramp_epochs: float = 0.0
    max_views: int = 300
    max_samples: int = 4800
    min_pixels: int = 5


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then poly decay (paper §4.1)."""

    lr: float = 6e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    warmup_epochs: float = 10.0
    warmup_ratio: float = 1e-6  # lr at step 0 = lr * warmup_ratio
    poly_power: float = 0.9
    min_lr: float = 0.0
    grad_clip: float = 0.0  # 0 = off


@dataclass
class TrainConfig:
    """Loop, checkpointing, logging and evaluation settings."""

    epochs: int = 500
    batch_size: int = 16  # global batch (split across DDP ranks)
    amp: bool = True  # only takes effect on CUDA
    seed: int = 12345
    device: str = 'auto'
    out_dir: str = 'runs/experiment'
    ckpt_every: int = 10  # epochs
    keep_every: int = 0  # also keep epoch_NNNN.pth (weights only) every N epochs; 0 = none
    eval_every: int = 10  # epochs; 0 = only at the end
    # Keep best.pth, chosen by mIoU on data.val_split. False = no selection (the authors'
    # protocol: report the last epoch).
    select_best: bool = True
    log_every: int = 20  # iterations
    max_iters_per_epoch: int = 0  # 0 = the whole loader (for smoke runs)
    eval_crop: list[int] = field(default_factory=list)  # sliding window (H, W); [] = whole image
    eval_scales: list[float] = field(default_factory=lambda: [1.0])
    eval_flip: bool = False
    progress: bool = True


@dataclass
class ExperimentConfig:
    """Everything one training run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (safe for YAML and ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> 'ExperimentConfig':
        """Build from a nested dict; unknown keys raise ``KeyError`` naming the key."""
        return _build(cls, data or {}, prefix='')


def _build(cls: type, data: dict, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f'config section {prefix or "<root>"!r} must be a mapping, '
                        f'got {type(data).__name__}')
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise KeyError(f'unknown config key(s) {", ".join(prefix + k for k in unknown)}; '
                       f'valid keys under {prefix or "<root>"!r}: {", ".join(sorted(names))}')
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, prefix + name + '.')
        else:
            kwargs[name] = _coerce(value, hint, prefix + name)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for alternative in inner[:-1]:
            try:
                return _coerce(value, alternative, key)
            except TypeError:
                continue
        return _coerce(value, inner[-1], key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f'config key {key!r} expects a list, got {value!r}')
        return [_coerce(v, args[0], key) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f'config key {key!r} expects true/false, got {value!r}')
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TypeError(f'config key {key!r} expects a number, got {value!r}')
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f'config key {key!r} expects an integer, got {value!r}')
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError(f'config key {key!r} expects a string, got {value!r}')
    return value


def _not_an_override(item: str) -> str:
    hint = (f' ({item!r} is a folder: data.root={item} with data.dataset=folder, e.g. from '
            '--config training/configs/folder_cpu.yaml)' if Path(item).is_dir() else '')
    return f'override {item!r} must look like key.sub=value{hint}'


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` overrides (YAML-parsed values) to a nested dict in place."""
    for item in overrides:
        if '=' not in item:
            raise ValueError(_not_an_override(item))
        key, raw = item.split('=', 1)
        value = yaml.safe_load(raw) if raw != '' else ''
        node = data
        parts = key.strip().split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise KeyError(f'override {key!r}: {part!r} is not a section')
        node[parts[-1]] = value
    return data


def require_config(path: str | os.PathLike | None, overrides: list[str] | None,
                   prog: str) -> None:
    """Refuse ``key.sub=value`` overrides without the experiment file they modify.

    The tools' defaults describe the synthetic dataset: an override such as
    ``data.root=mine`` on them would be dropped by a dataset that has no root, and the run
    would go on with something the user did not ask for.

    Raises:
        ValueError: Overrides were given and ``path`` is empty.
    """
    if overrides and not path:
        for item in overrides:
            if '=' not in item:
                raise ValueError(_not_an_override(item))
        raise ValueError(
            f'{" ".join(overrides)}: overrides modify an experiment file; give it with '
            f'--config (e.g. {prog} --config training/configs/folder_cpu.yaml '
            f'data.root=/data/mine)')


def load_config(path: str | os.PathLike | None = None,
                overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment file (optional) and apply command-line overrides."""
    data: dict = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'config file not found: {path}')
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise TypeError(f'config file {path} must hold a mapping at the top level')
    apply_overrides(data, list(overrides or []))
    return ExperimentConfig.from_dict(data)


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> None:
    """Write the resolved configuration as YAML."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)

"""AdamW with decay-free norms/biases, and a per-iteration warm-up + poly schedule (paper §4.1).

Public API (frozen):

- ``param_groups(model, weight_decay) -> list[dict]``: two groups, ``decay`` (weights of
  conv/linear layers, ndim >= 2) and ``no_decay`` (biases, norm weights and every other 1-D or
  0-D parameter such as layer-scale gammas); every trainable parameter is in exactly one group.
- ``build_optimizer(model, cfg: OptimConfig) -> torch.optim.AdamW``.
- ``lr_factor(iteration, total_iters, warmup_iters, power=0.9, warmup_ratio=1e-6,
  min_ratio=0.0) -> float``: the multiplier of the base lr at an iteration.
- ``build_scheduler(optimizer, cfg: OptimConfig, iters_per_epoch, epochs) -> LambdaLR``;
  call ``scheduler.step()`` after every optimizer step. Resume: build it again with the same
  arguments and ``load_state_dict`` (the state is plain values).
"""

from __future__ import annotations

import functools
from typing import Dict, List

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from smmcl_core.config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict]:
    """Split trainable parameters into a decayed and a decay-free AdamW group."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():  # shared parameters are yielded once
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith('.bias'):
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {'params': decay, 'weight_decay': float(weight_decay), 'name': 'decay'},
        {'params': no_decay, 'weight_decay': 0.0, 'name': 'no_decay'},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW(lr, betas, weight_decay) with norms, biases and 1-D parameters not decayed."""
    if len(cfg.betas) != 2:
        raise ValueError(f'optim.betas must have two values, got {cfg.betas}')
    groups = param_groups(model, cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]),
                             weight_decay=cfg.weight_decay)


def lr_factor(iteration: int, total_iters: int, warmup_iters: int, power: float = 0.9,
              warmup_ratio: float = 1e-6, min_ratio: float = 0.0) -> float:
    """Multiplier of the base lr: poly decay, scaled by a linear warm-up at the start.

    ``poly = (1 - it / total) ** power`` (mapped into ``[min_ratio, 1]``); during warm-up the
    poly value is multiplied by a ramp going linearly from ``warmup_ratio`` at iteration 0 to
    1 at ``warmup_iters``, so the curve is continuous where the warm-up ends.
    """
    progress = min(max(iteration, 0), total_iters) / max(total_iters, 1)
    poly = (1.0 - progress) ** power
    factor = min_ratio + (1.0 - min_ratio) * poly
    if warmup_iters > 0 and iteration < warmup_iters:
        factor *= warmup_ratio + (1.0 - warmup_ratio) * iteration / warmup_iters
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, iters_per_epoch: int,
                    epochs: int) -> LambdaLR:
    """Per-iteration LambdaLR: ``cfg.warmup_epochs`` of linear warm-up, then poly decay.

    Raises:
        ValueError: non-positive ``iters_per_epoch`` or ``epochs``.
    """
    if iters_per_epoch < 1 or epochs < 1:
        raise ValueError(f'iters_per_epoch ({iters_per_epoch}) and epochs ({epochs}) must be '
                         '>= 1')
    total = int(iters_per_epoch * epochs)
    warmup = int(round(cfg.warmup_epochs * iters_per_epoch))
    min_ratio = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
    # functools.partial (not a lambda) keeps the factor a plain function of the iteration.
    fn = functools.partial(lr_factor, total_iters=total, warmup_iters=warmup,
                           power=cfg.poly_power, warmup_ratio=cfg.warmup_ratio,
                           min_ratio=min_ratio)
    return LambdaLR(optimizer, lr_lambda=fn)

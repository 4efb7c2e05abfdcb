"""Weight initialisation shared by the encoders, interaction modules and projectors."""

import math

from timm.layers import trunc_normal_
import torch.nn as nn


def init_segformer_style(module: nn.Module) -> None:
    """Initialise one module the way SegFormer / SegNeXt / the released SMMCL code do.

    Linear: truncated normal (std 0.02), zero bias; conv: normal with std sqrt(2 / fan_out),
    zero bias; LayerNorm: unit weight, zero bias. Meant for ``model.apply``.
    """
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        fan_out //= module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_head(module: nn.Module, bn_eps: float = 1e-3, bn_momentum: float = 0.1) -> None:
    """Initialise a decoder head as the released code does (Kaiming fan-in, BN eps 1e-3).

    Only BatchNorm layers get the eps/momentum; GroupNorm keeps its defaults (the released
    ``init_weight`` only touches the configured ``norm_layer``, BatchNorm2d).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='relu')
        elif isinstance(m, nn.BatchNorm2d):
            m.eps = bn_eps
            m.momentum = bn_momentum
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def drop_path_schedule(rate: float, n: int) -> list:
    """Stochastic depth rates rising linearly from 0 to ``rate`` over ``n`` blocks.

    Plain Python (not torch.linspace) so models can also be built on the meta device.
    """
    if n <= 1:
        return [0.0] * n
    return [rate * i / (n - 1) for i in range(n)]

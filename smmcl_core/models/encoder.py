"""The encoder interface the dual-stream network is built on.

An encoder is four NCHW -> NCHW stages with known output channels and strides, so that
:class:`~smmcl_core.models.network.SMMCLNet` can run two of them stage by stage, put the
interaction module (Eq. 1-2) between stages and size everything downstream from ``channels``.
"""

import torch
import torch.nn as nn


class StagedEncoder(nn.Module):
    """Base class of one encoder stream.

    Subclasses set ``channels``, ``strides`` (one entry per stage) and ``stages``
    (an ``nn.ModuleList`` of NCHW -> NCHW modules).
    """

    channels: tuple
    strides: tuple
    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list:
        """Run all stages; returns the per-stage feature maps (single-stream use)."""
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

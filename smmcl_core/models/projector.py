"""Projection head mapping stage-4 features to the contrastive embedding space."""

import torch.nn as nn


class Projector(nn.Sequential):
    """1x1 conv c->c, GELU, BN, c->c, GELU, BN, c->out (released ``projector``)."""

    def __init__(self, in_dim: int, out_dim: int = 256) -> None:
        super().__init__(
            nn.Conv2d(in_dim, in_dim, 1), nn.GELU(), nn.BatchNorm2d(in_dim),
            nn.Conv2d(in_dim, in_dim, 1), nn.GELU(), nn.BatchNorm2d(in_dim),
            nn.Conv2d(in_dim, out_dim, 1))

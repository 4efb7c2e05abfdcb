"""Decoder heads sized from the encoder channels: SegNeXt LightHamHead and SegFormer MLP head."""

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from smmcl_core.models.ham import Hamburger


class ConvGNReLU(nn.Sequential):
    """1x1 conv (no bias) -> GroupNorm(32) -> ReLU (mmcv ConvModule with GN, ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.gn = nn.GroupNorm(groups, out_ch)
        self.activate = nn.ReLU(inplace=True)


class LightHamHead(nn.Module):
    """SegNeXt head: concat stages 2-4 at 1/8, squeeze, Hamburger (NMF), align, classify."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 512,
                 ham_channels: int = 512, rank: int = 64, in_index: Sequence[int] = (1, 2, 3),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.in_index = tuple(in_index)
        self.in_channels = tuple(in_channels[i] for i in self.in_index)
        self.squeeze = ConvGNReLU(sum(self.in_channels), ham_channels)
        self.hamburger = Hamburger(ham_channels, rank)
        self.align = ConvGNReLU(ham_channels, channels)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-stage features -> logits (B, K, H/8, W/8) at the first selected stage's size."""
        feats = [feats[i] for i in self.in_index]
        size = feats[0].shape[2:]
        feats = [feats[0]] + [F.interpolate(f, size=size, mode='bilinear', align_corners=False)
                              for f in feats[1:]]
        x = self.squeeze(torch.cat(feats, dim=1))  # (B, ham, H/8, W/8)
        x = self.align(self.hamburger(x))
        return self.conv_seg(self.dropout(x))


class MLPHead(nn.Module):
    """SegFormer all-MLP head (as in CMX's ``DecoderHead``).

    Per stage a linear embedding to ``embed_dim``, upsampling to 1/4, concatenation, a 1x1
    fuse conv with BN and ReLU, dropout and a 1x1 classifier. The per-stage embedding and the
    matching slice of the fuse conv are both linear, and bilinear upsampling commutes with
    per-pixel affine maps (its weights sum to one), so they are composed into one 1x1 conv
    applied *before* upsampling: the same function, without the (B, 4E, H/4, W/4) concat and
    its 4E x E conv at 1/4 resolution. Parameters keep the original layout.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, embed_dim: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.in_channels = tuple(in_channels)
        self.embed_dim = embed_dim
        # linear_c{i}: Linear(C_i, E), stored as 1x1 conv weights.
        self.linear_c = nn.ModuleList(nn.Conv2d(c, embed_dim, 1) for c in self.in_channels)
        n = len(self.in_channels)
        self.linear_fuse = nn.Conv2d(n * embed_dim, embed_dim, 1)
        self.fuse_norm = nn.BatchNorm2d(embed_dim)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.linear_pred = nn.Conv2d(embed_dim, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-stage features -> logits (B, K, H/4, W/4) at the first stage's size."""
        size = feats[0].shape[2:]
        n = len(self.in_channels)
        # The fuse conv sees the concat in reverse stage order [c4, c3, c2, c1], as CMX.
        fuse_w = self.linear_fuse.weight.flatten(1).split(self.embed_dim, dim=1)[::-1]
        out = self.linear_fuse.bias.view(1, -1, 1, 1)
        for i in range(n):
            lin = self.linear_c[i]
            w = fuse_w[i] @ lin.weight.flatten(1)  # (E, C_i)
            b = fuse_w[i] @ lin.bias  # (E,)
            y = F.conv2d(feats[i], w[:, :, None, None], b)  # (B, E, h_i, w_i)
            if y.shape[2:] != size:
                y = F.interpolate(y, size=size, mode='bilinear', align_corners=False)
            out = out + y
        x = F.relu(self.fuse_norm(out))
        return self.linear_pred(self.dropout(x))

"""MSCAN encoder of SegNeXt (T/S/B/L), four NCHW stages.

Module names inside each stage (``patch_embed``, ``blocks``, ``norm``) map one-to-one onto the
official ImageNet checkpoint keys ``patch_embed{i}``, ``block{i}``, ``norm{i}``
(see :mod:`smmcl_core.models.pretrained`).
"""

from typing import Optional, Sequence

from timm.layers import DropPath, LayerNorm2d
import torch
import torch.nn as nn

from smmcl_core.models.encoder import StagedEncoder
from smmcl_core.models.init import drop_path_schedule, init_segformer_style
from smmcl_core.models.layers import DWConv, OverlapPatchEmbed

# name -> (dims, depths, mlp_ratios, default drop path); B uses 0.2 as the released code.
MSCAN_VARIANTS = {
    't': ((32, 64, 160, 256), (3, 3, 5, 2), (8, 8, 4, 4), 0.1),
    's': ((64, 128, 320, 512), (2, 2, 4, 2), (8, 8, 4, 4), 0.1),
    'b': ((64, 128, 320, 512), (3, 3, 12, 3), (8, 8, 4, 4), 0.2),
    'l': ((64, 128, 320, 512), (3, 5, 27, 3), (8, 8, 4, 4), 0.3),
}


class StemConv(nn.Module):
    """Two stride-2 3x3 convs with BN (stride 4 in total)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, dim // 2, 3, 2, 1), nn.BatchNorm2d(dim // 2), nn.GELU(),
            nn.Conv2d(dim // 2, dim, 3, 2, 1), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, C, H/4, W/4)."""
        return self.proj(x)


class ConvMlp(nn.Module):
    """1x1 conv, depthwise 3x3, GELU, 1x1 conv (MSCAN feed-forward)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape preserving (B, C, H, W)."""
        x = self.drop(self.act(self.dwconv(self.fc1(x))))  # (B, hidden, H, W)
        return self.drop(self.fc2(x))


class AttentionModule(nn.Module):
    """Multi-scale convolutional attention: 5x5 depthwise + strip convs 7, 11, 21."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv0_1 = nn.Conv2d(dim, dim, (1, 7), padding=(0, 3), groups=dim)
        self.conv0_2 = nn.Conv2d(dim, dim, (7, 1), padding=(3, 0), groups=dim)
        self.conv1_1 = nn.Conv2d(dim, dim, (1, 11), padding=(0, 5), groups=dim)
        self.conv1_2 = nn.Conv2d(dim, dim, (11, 1), padding=(5, 0), groups=dim)
        self.conv2_1 = nn.Conv2d(dim, dim, (1, 21), padding=(0, 10), groups=dim)
        self.conv2_2 = nn.Conv2d(dim, dim, (21, 1), padding=(10, 0), groups=dim)
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention-weighted input, shape preserving (no clone of x: nothing is in-place)."""
        attn = self.conv0(x)
        attn = (attn + self.conv0_2(self.conv0_1(attn)) + self.conv1_2(self.conv1_1(attn))
                + self.conv2_2(self.conv2_1(attn)))
        return self.conv3(attn) * x


class SpatialAttention(nn.Module):
    """1x1 conv, GELU, multi-scale conv attention, 1x1 conv, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = AttentionModule(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape preserving (B, C, H, W)."""
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class MSCANBlock(nn.Module):
    """BN -> attention and BN -> MLP residual branches, each scaled by a learnable layer scale."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float = 0.0,
                 drop_path: float = 0.0, layer_scale_init: float = 1e-2) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)
        # Trainable (the released code's optimiser groups silently skip these).
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape preserving (B, C, H, W)."""
        ls1 = self.layer_scale_1.view(-1, 1, 1)
        ls2 = self.layer_scale_2.view(-1, 1, 1)
        x = x + self.drop_path(ls1 * self.attn(self.norm1(x)))
        return x + self.drop_path(ls2 * self.mlp(self.norm2(x)))


class MSCANStage(nn.Module):
    """Downsampling embed, ``depth`` blocks, channel LayerNorm; NCHW in and out."""

    def __init__(self, patch_embed: nn.Module, blocks: Sequence[nn.Module], dim: int) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.Sequential(*blocks)
        self.norm = LayerNorm2d(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, C, H/s, W/s)."""
        return self.norm(self.blocks(self.patch_embed(x)))


class MSCAN(StagedEncoder):
    """One MSCAN stream.

    Attributes:
        channels: output channels of the four stages.
        strides: output strides of the four stages.
        stages: the four NCHW stages.
    """

    def __init__(self, variant: str = 'b', in_chans: int = 3,
                 drop_path_rate: Optional[float] = None, drop_rate: float = 0.0) -> None:
        super().__init__()
        if variant not in MSCAN_VARIANTS:
            raise KeyError(f'unknown MSCAN variant {variant!r}; valid: {sorted(MSCAN_VARIANTS)}')
        dims, depths, mlp_ratios, default_dpr = MSCAN_VARIANTS[variant]
        drop_path_rate = default_dpr if drop_path_rate is None else drop_path_rate
        dpr = drop_path_schedule(drop_path_rate, sum(depths))
        self.channels = tuple(dims)
        self.strides = (4, 8, 16, 32)
        stages = []
        cur = 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            embed = StemConv(in_chans, dim) if i == 0 else OverlapPatchEmbed(dims[i - 1], dim)
            blocks = [MSCANBlock(dim, mlp_ratios[i], drop_rate, dpr[cur + j])
                      for j in range(depth)]
            stages.append(MSCANStage(embed, blocks, dim))
            cur += depth
        self.stages = nn.ModuleList(stages)
        self.apply(init_segformer_style)

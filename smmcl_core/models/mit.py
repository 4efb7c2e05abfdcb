"""Mix Transformer (MiT, SegFormer) encoder B0-B5 with four NCHW stages.

Inside a stage the features are tokens (B, N, C); the stage boundary is NCHW so the dual
encoder can interleave the interaction module. Token <-> NCHW conversions are views (no copy)
when the tensors are channels_last. Module names map onto the official ``mit_b*.pth`` keys
(``patch_embed{i}``, ``block{i}``, ``norm{i}``).
"""

from typing import Optional, Sequence

from timm.layers import DropPath
import torch
import torch.nn as nn
import torch.nn.functional as F

from smmcl_core.models.encoder import StagedEncoder
from smmcl_core.models.init import drop_path_schedule, init_segformer_style
from smmcl_core.models.layers import DWConv, nchw_to_tokens, OverlapPatchEmbed, tokens_to_nchw

# name -> (dims, depths, default drop path); heads (1,2,5,8), sr (8,4,2,1), mlp ratio 4 for all.
MIT_VARIANTS = {
    'b0': ((32, 64, 160, 256), (2, 2, 2, 2), 0.1),
    'b1': ((64, 128, 320, 512), (2, 2, 2, 2), 0.1),
    'b2': ((64, 128, 320, 512), (3, 4, 6, 3), 0.1),
    'b3': ((64, 128, 320, 512), (3, 4, 18, 3), 0.1),
    'b4': ((64, 128, 320, 512), (3, 8, 27, 3), 0.1),
    'b5': ((64, 128, 320, 512), (3, 6, 40, 3), 0.1),
}
MIT_HEADS = (1, 2, 5, 8)
MIT_SR_RATIOS = (8, 4, 2, 1)
MIT_MLP_RATIO = 4
LN_EPS = 1e-6


class EfficientAttention(nn.Module):
    """Multi-head self-attention with spatial reduction of keys/values (ratio ``sr_ratio``)."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Tokens (B, N, C) -> (B, N, C)."""
        b, n, c = x.shape
        q = self.q(x).view(b, n, self.num_heads, -1).transpose(1, 2)  # (B, heads, N, d)
        if self.sr_ratio > 1:
            kv_in = self.norm(nchw_to_tokens(self.sr(tokens_to_nchw(x, h, w))))  # (B, M, C)
        else:
            kv_in = x
        kv = self.kv(kv_in).view(b, -1, 2, self.num_heads, c // self.num_heads)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, M, d)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)  # (B, heads, N, d)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class MixFFN(nn.Module):
    """Linear, depthwise 3x3, GELU, linear."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Tokens (B, N, C) -> (B, N, C)."""
        x = self.fc1(x)  # (B, N, hidden)
        x = nchw_to_tokens(self.dwconv(tokens_to_nchw(x, h, w)))
        x = self.drop(self.act(x))
        return self.drop(self.fc2(x))


class MiTBlock(nn.Module):
    """Pre-norm transformer block: efficient attention and Mix-FFN."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = EfficientAttention(dim, num_heads, sr_ratio, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = MixFFN(dim, dim * MIT_MLP_RATIO, drop)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Tokens (B, N, C) -> (B, N, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MiTStage(nn.Module):
    """Patch embed, blocks on tokens, LayerNorm; NCHW in and out."""

    def __init__(self, patch_embed: nn.Module, blocks: Sequence[nn.Module], dim: int) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, C, H/s, W/s) (channels_last strides)."""
        x = self.patch_embed(x)  # (B, C, h, w), a channels_last view of the tokens
        h, w = x.shape[2:]
        x = nchw_to_tokens(x)  # (B, N, C)
        for blk in self.blocks:
            x = blk(x, h, w)
        return tokens_to_nchw(self.norm(x), h, w)


class MiT(StagedEncoder):
    """One MiT stream.

    Attributes:
        channels: output channels of the four stages.
        strides: output strides of the four stages.
        stages: the four NCHW stages.
    """

    def __init__(self, variant: str = 'b2', in_chans: int = 3,
                 drop_path_rate: Optional[float] = None, drop_rate: float = 0.0) -> None:
        super().__init__()
        if variant not in MIT_VARIANTS:
            raise KeyError(f'unknown MiT variant {variant!r}; valid: {sorted(MIT_VARIANTS)}')
        dims, depths, default_dpr = MIT_VARIANTS[variant]
        drop_path_rate = default_dpr if drop_path_rate is None else drop_path_rate
        dpr = drop_path_schedule(drop_path_rate, sum(depths))
        self.channels = tuple(dims)
        self.strides = (4, 8, 16, 32)
        stages = []
        cur = 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            embed = (OverlapPatchEmbed(in_chans, dim, 7, 4, 'layer', LN_EPS) if i == 0
                     else OverlapPatchEmbed(dims[i - 1], dim, 3, 2, 'layer', LN_EPS))
            blocks = [MiTBlock(dim, MIT_HEADS[i], MIT_SR_RATIOS[i], drop_rate, dpr[cur + j])
                      for j in range(depth)]
            stages.append(MiTStage(embed, blocks, dim))
            cur += depth
        self.stages = nn.ModuleList(stages)
        self.apply(init_segformer_style)

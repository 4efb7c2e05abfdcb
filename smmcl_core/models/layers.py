"""Layers shared by the encoders (MiT, MSCAN): token <-> NCHW views, patch embedding, DWConv.

Attribute names follow the official weight files (``proj``, ``norm``, ``dwconv.dwconv``), so
pretrained and released state dicts load without renaming.
"""

import torch
import torch.nn as nn

NORMS = ('batch', 'layer')


def tokens_to_nchw(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) -> (B, C, H, W), a channels_last view of the same memory.

    transpose + reshape rather than ``unflatten``: the ONNX exporter folds ``unflatten``'s
    sizes into constants, which bakes the example batch into the graph.
    """
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def nchw_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C); a view when x is channels_last."""
    return x.flatten(2).transpose(1, 2)


class OverlapPatchEmbed(nn.Module):
    """Overlapping strided convolution followed by a normalisation, NCHW in and out.

    Args:
        in_chans: Input channels.
        dim: Output channels.
        patch_size: Convolution kernel (padding ``patch_size // 2``).
        stride: Convolution stride (the downsampling factor).
        norm: ``'batch'`` (BatchNorm2d, MSCAN) or ``'layer'`` (LayerNorm over the channels of
            each token, MiT); the output is then a channels_last view of the tokens.
        eps: LayerNorm epsilon.
    """

    def __init__(self, in_chans: int, dim: int, patch_size: int = 3, stride: int = 2,
                 norm: str = 'batch', eps: float = 1e-6) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f'unknown norm {norm!r}; valid: {", ".join(NORMS)}')
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride, patch_size // 2)
        self.tokens = norm == 'layer'
        self.norm = nn.LayerNorm(dim, eps=eps) if self.tokens else nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, C, H/stride, W/stride)."""
        x = self.proj(x)
        if not self.tokens:
            return self.norm(x)
        h, w = x.shape[2:]
        return tokens_to_nchw(self.norm(nchw_to_tokens(x)), h, w)  # norm over C of (B,N,C)


class DWConv(nn.Module):
    """3x3 depthwise convolution, shape preserving (wrapped: key ``dwconv.dwconv``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.dwconv(x)

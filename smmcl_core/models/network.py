"""SMMCL network: two-stream encoder with per-stage interaction, decoder, projectors."""

from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from smmcl_core.models.init import init_segformer_style
from smmcl_core.models.interaction import FusionConv, InteractionModule
from smmcl_core.models.projector import Projector


class DualEncoder(nn.Module):
    """Two encoders with separate weights, an interaction module and a fusion conv per stage.

    After stage i the pair (vis, aux) is updated by ``interactions[i]`` and the updated pair
    feeds stage i+1; ``fusions[i]`` turns the updated pair into the decoder's stage-i feature.
    """

    def __init__(self, build_stream: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.vis = build_stream()
        self.aux = build_stream()
        self.channels = tuple(self.vis.channels)
        self.strides = tuple(self.vis.strides)
        self.interactions = nn.ModuleList(InteractionModule(c) for c in self.channels)
        self.fusions = nn.ModuleList(FusionConv(c) for c in self.channels)
        self.interactions.apply(init_segformer_style)
        self.fusions.apply(init_segformer_style)

    def forward(self, vis: torch.Tensor, aux: torch.Tensor,
                fuse_stages: Optional[Sequence[int]] = None) -> tuple:
        """Return (fused features per stage, stage-4 vis, stage-4 aux before interaction).

        Stages not in ``fuse_stages`` (default: all) get ``None`` instead of a fusion feature:
        LightHamHead reads stages 2-4 only, so the stage-1 fusion, which the released model
        has (and the parameter count includes), is never computed.
        """
        fused = []
        for i, (stage_vis, stage_aux, interact, fuse) in enumerate(zip(
                self.vis.stages, self.aux.stages, self.interactions, self.fusions)):
            vis = stage_vis(vis)  # (B, C_i, H/s_i, W/s_i)
            aux = stage_aux(aux)
            last_vis, last_aux = vis, aux
            vis, aux = interact(vis, aux)
            wanted = fuse_stages is None or i in fuse_stages
            fused.append(fuse(vis, aux) if wanted else None)
        return fused, last_vis, last_aux


class SMMCLNet(nn.Module):
    """Dual-stream segmentation network of SMMCL.

    Attributes:
        num_classes: number of output classes K.
        preset: the preset name it was built from (or ``'custom'``).
        encoder_channels: channels of the four encoder stages.
        encoder_strides: output strides of the four encoder stages.
    """

    def __init__(self, encoder: DualEncoder, decoder: nn.Module, num_classes: int,
                 embed_dim: int = 256, preset: str = 'custom') -> None:
        super().__init__()
        self.num_classes = num_classes
        self.preset = preset
        self.encoder = encoder
        self.decoder = decoder
        self.encoder_channels = encoder.channels
        self.encoder_strides = encoder.strides
        self.embed_dim = embed_dim
        self.projector_vis = Projector(encoder.channels[-1], embed_dim)
        self.projector_aux = Projector(encoder.channels[-1], embed_dim)
        self.projector_vis.apply(init_segformer_style)
        self.projector_aux.apply(init_segformer_style)

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor,
                return_embeddings: bool = False):
        """Segment an RGB / auxiliary pair.

        Args:
            rgb: (B, 3, H, W) normalised RGB.
            aux: (B, 1 or 3, H, W) normalised auxiliary modality; one channel is replicated.
            return_embeddings: also return the projector embeddings (training only).

        Returns:
            logits (B, K, H, W), or (logits, emb_vis, emb_aux) with embeddings
            (B, embed_dim, H/32, W/32) from the stage-4 features before the last interaction
            (as the released code).
        """
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f'rgb must be (B, 3, H, W), got {tuple(rgb.shape)}')
        if aux.dim() != 4 or aux.shape[1] not in (1, 3):
            raise ValueError(f'aux must be (B, 1 or 3, H, W), got {tuple(aux.shape)}')
        if aux.shape[0] != rgb.shape[0] or aux.shape[2:] != rgb.shape[2:]:
            raise ValueError(f'rgb {tuple(rgb.shape)} and aux {tuple(aux.shape)} differ in '
                             'batch or spatial size')
        if aux.shape[1] == 1:
            aux = aux.expand(-1, 3, -1, -1)
        fused, last_vis, last_aux = self.encoder(rgb, aux,
                                                 getattr(self.decoder, 'in_index', None))
        logits = self.decoder(fused)  # (B, K, H/s, W/s)
        logits = F.interpolate(logits, size=rgb.shape[2:], mode='bilinear', align_corners=False)
        if not return_embeddings:
            return logits
        return logits, self.projector_vis(last_vis), self.projector_aux(last_aux)

    def encoder_streams(self) -> Sequence[nn.Module]:
        """The (vis, aux) encoder streams, e.g. for loading pretrained weights."""
        return self.encoder.vis, self.encoder.aux

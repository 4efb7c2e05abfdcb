"""Supervised multi-modal contrastive loss, SMMCL (paper §3.2, Eq. 3-6)."""

from typing import Dict, Optional

import torch
import torch.nn as nn

from smmcl_core.losses.infonce import pair_relations, supervised_infonce
from smmcl_core.losses.sampling import downscale_labels, sample_positions, Samples

MODES = ('none', 'cross', 'intra', 'both')


class SMMCLLoss(nn.Module):
    """Cross-modal (Eq. 3) and intra-modal (Eq. 5 and its auxiliary twin) contrastive terms.

    The terms are returned unweighted; the training engine applies the lambdas of Eq. (7).

    Args:
        num_classes: number of semantic classes K.
        temperature: tau of Eq. (4)/(6), shared by all three terms.
        ignore_index: label never sampled.
        max_views: cap on the views sampled per (image, class) pair.
        max_samples: cap on the total number of sampled positions per batch.
        min_pixels: (image, class) pairs with fewer pixels on the embedding grid are skipped.
        mode: Table 5 ablation: ``'none'`` (all zero), ``'cross'`` (only ``cm``),
            ``'intra'`` (``vis`` and ``aux``) or ``'both'``.
    """

    def __init__(self, num_classes: int, temperature: float = 0.1, ignore_index: int = 255,
                 max_views: int = 300, max_samples: int = 4800, min_pixels: int = 5,
                 mode: str = 'both') -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if max_views < 1 or max_samples < 1 or min_pixels < 1:
            raise ValueError('max_views, max_samples and min_pixels must be >= 1, got '
                             f'{max_views}, {max_samples}, {min_pixels}')
        self.num_classes = num_classes
        self.temperature = float(temperature)
        self.ignore_index = ignore_index
        self.max_views = max_views
        self.max_samples = max_samples
        self.min_pixels = min_pixels
        self.mode = mode

    def extra_repr(self) -> str:  # noqa: D102
        return (f'num_classes={self.num_classes}, temperature={self.temperature}, '
                f'mode={self.mode!r}, max_views={self.max_views}, '
                f'max_samples={self.max_samples}, min_pixels={self.min_pixels}')

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, grid_size: Optional[tuple] = None,
               generator: Optional[torch.Generator] = None) -> Samples:
        """Positions used for the contrast, shared by both modalities.

        Args:
            labels: ``(B, H, W)`` full-resolution labels.
            grid_size: ``(h, w)`` of the embeddings; default: the labels' own size.
            generator: optional ``torch.Generator`` on the labels' device.

        Returns:
            ``Samples(batch_idx, pos_idx, cls)``, pair-major, ``pos_idx`` flat on the grid.
        """
        size = tuple(labels.shape[-2:]) if grid_size is None else tuple(grid_size)
        small = downscale_labels(labels, size)  # (B, h, w)
        return sample_positions(small, self.num_classes, self.ignore_index, self.max_views,
                                self.max_samples, self.min_pixels, generator)

    def forward(self, emb_vis: torch.Tensor, emb_aux: torch.Tensor, labels: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Compute the contrastive terms.

        Args:
            emb_vis: ``(B, D, h, w)`` visible embeddings (not normalised).
            emb_aux: ``(B, D, h, w)`` auxiliary embeddings (not normalised).
            labels: ``(B, H, W)`` integer labels, ``ignore_index`` for unlabelled pixels.
            generator: optional ``torch.Generator`` for sampling (labels' device).

        Returns:
            ``{'cm', 'vis', 'aux'}`` float32 scalars. Disabled terms, and all terms when no
            (image, class) pair qualifies, are zeros attached to the graph so backward and DDP
            gradient reduction still see every parameter.
        """
        self._check_inputs(emb_vis, emb_aux, labels)
        # a zero that carries the graph of both embeddings
        zero = (emb_vis.flatten()[:1].float().sum() + emb_aux.flatten()[:1].float().sum()) * 0.0
        out = {'cm': zero, 'vis': zero, 'aux': zero}
        if self.mode == 'none':
            return out

        samples = self.sample(labels, tuple(emb_vis.shape[-2:]), generator)
        if samples.cls.numel() == 0:
            return out

        batch, dim = emb_vis.shape[:2]
        # (B, D, h, w) -> (B, h*w, D) -> (M, D); same positions for both modalities
        vis = emb_vis.reshape(batch, dim, -1).transpose(1, 2)[samples.batch_idx, samples.pos_idx]
        aux = emb_aux.reshape(batch, dim, -1).transpose(1, 2)[samples.batch_idx, samples.pos_idx]
        relations = pair_relations(samples.cls)  # (M, M) masks shared by the three terms
        tau = self.temperature
        if self.mode in ('cross', 'both'):
            out['cm'] = supervised_infonce(vis, aux, relations, tau) + zero
        if self.mode in ('intra', 'both'):
            out['vis'] = supervised_infonce(vis, vis, relations, tau) + zero
            out['aux'] = supervised_infonce(aux, aux, relations, tau) + zero
        return out

    @staticmethod
    def _check_inputs(emb_vis: torch.Tensor, emb_aux: torch.Tensor,
                      labels: torch.Tensor) -> None:
        if emb_vis.dim() != 4:
            raise ValueError(f'emb_vis must be (B, D, h, w), got shape {tuple(emb_vis.shape)}')
        if emb_aux.shape != emb_vis.shape:
            raise ValueError(f'emb_aux shape {tuple(emb_aux.shape)} differs from emb_vis '
                             f'shape {tuple(emb_vis.shape)}')
        if labels.dim() != 3 or labels.shape[0] != emb_vis.shape[0]:
            raise ValueError(f'labels must be (B, H, W) with B={emb_vis.shape[0]}, got shape '
                             f'{tuple(labels.shape)}')
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f'labels must be an integer tensor, got {labels.dtype}')
        if labels.device != emb_vis.device:
            raise ValueError(f'labels on {labels.device} but embeddings on {emb_vis.device}')

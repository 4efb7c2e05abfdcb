"""Class-balanced sampling of embedding positions (paper §3.2, "Embedding Generation").

Per (image, class) pair with at least ``min_pixels`` pixels on the embedding grid, the same
number ``V`` of random positions is drawn, so every present class contributes equally. The
positions are shared by both modalities: index i in §3.2 is a spatial position.
"""

from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F


class Samples(NamedTuple):
    """Sampled positions, pair-major: the ``V`` views of a pair are contiguous.

    Attributes:
        batch_idx: ``(M,)`` long, image index of each sample.
        pos_idx: ``(M,)`` long, flat position ``y * w + x`` on the embedding grid.
        cls: ``(M,)`` long, class label of each sample.
    """

    batch_idx: torch.Tensor
    pos_idx: torch.Tensor
    cls: torch.Tensor


def downscale_labels(labels: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour downscaling of ``labels`` (B, H, W) to ``size`` -> (B, h, w) long.

    Nearest keeps labels categorical (no mixed classes) and matches the released code.
    """
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels.long()
    # float is exact for any realistic label id (< 2**24)
    small = F.interpolate(labels[:, None].float(), size=size, mode='nearest')  # (B, 1, h, w)
    return small[:, 0].long()


def views_per_pair(min_count: int, num_pairs: int, max_views: int, max_samples: int) -> int:
    """Views per pair: the smallest pair count, capped by ``max_views`` and the total budget."""
    views = min(min_count, max_views)
    if views * num_pairs > max_samples:
        views = max_samples // num_pairs
    return views


def sample_positions(labels_small: torch.Tensor, num_classes: int, ignore_index: int = 255,
                     max_views: int = 300, max_samples: int = 4800, min_pixels: int = 5,
                     generator: Optional[torch.Generator] = None) -> Samples:
    """Draw ``V`` random positions per qualifying (image, class) pair, without replacement.

    Vectorised random-rank trick: every pixel gets a random key, pixels are ordered by key and
    then stably by pair id, so each pair's pixels come out contiguous and in random order; the
    first ``V`` of each qualifying pair are kept. No Python loop over pixels or pairs.

    Args:
        labels_small: ``(B, h, w)`` integer labels already on the embedding grid.
        num_classes: number of classes K; labels must be in ``[0, K)`` or ``ignore_index``.
        ignore_index: label never sampled.
        max_views: cap on views per pair.
        max_samples: cap on the total number of samples (all pairs together).
        min_pixels: pairs with fewer pixels on the grid are skipped.
        generator: optional ``torch.Generator`` on the labels' device; default: torch's
            global RNG for that device.

    Returns:
        ``Samples`` with ``M = num_pairs * V`` entries (``M = 0`` when no pair qualifies).

    Raises:
        ValueError: when a label is neither in ``[0, num_classes)`` nor ``ignore_index``.
    """
    if labels_small.dim() != 3:
        raise ValueError(f'labels must be (B, h, w), got shape {tuple(labels_small.shape)}')
    batch, height, width = labels_small.shape
    npix = height * width
    device = labels_small.device
    flat = labels_small.reshape(batch, npix).long()  # (B, N)

    valid = flat != ignore_index
    bad = valid & ((flat < 0) | (flat >= num_classes))
    if bool(bad.any()):
        values = torch.unique(flat[bad]).tolist()
        raise ValueError(f'labels contain values {values[:10]} outside [0, {num_classes}) '
                         f'that are not ignore_index={ignore_index}')

    num_pairs_all = batch * num_classes
    image_ids = torch.arange(batch, device=device)[:, None]  # (B, 1)
    # ignore pixels go to a sentinel bucket past the last real pair
    pair_id = torch.where(valid, image_ids * num_classes + flat,
                          torch.full_like(flat, num_pairs_all)).reshape(-1)  # (B*N,)
    counts = torch.bincount(pair_id, minlength=num_pairs_all + 1)  # (B*K + 1,)
    qualifies = counts >= min_pixels
    qualifies[num_pairs_all] = False

    empty = torch.zeros(0, dtype=torch.long, device=device)
    num_pairs = int(qualifies.sum())
    if num_pairs == 0:
        return Samples(empty, empty, empty)
    min_count = int(counts[qualifies].min())
    views = views_per_pair(min_count, num_pairs, max_views, max_samples)
    if views <= 0:
        return Samples(empty, empty, empty)

    keys = torch.rand(pair_id.numel(), device=device, generator=generator)
    order = torch.argsort(keys)  # random permutation of all pixels
    sorted_pairs, regroup = torch.sort(pair_id[order], stable=True)
    order = order[regroup]  # (B*N,) pixels grouped by pair, random order inside a pair
    starts = torch.cumsum(counts, 0) - counts  # first slot of each pair in `order`
    rank = torch.arange(order.numel(), device=device) - starts[sorted_pairs]
    keep = qualifies[sorted_pairs] & (rank < views)

    chosen = order[keep]  # (M,) flat index into (B*N)
    pairs = sorted_pairs[keep]
    return Samples(batch_idx=chosen // npix, pos_idx=chosen % npix, cls=pairs % num_classes)

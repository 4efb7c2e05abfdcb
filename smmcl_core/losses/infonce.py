"""Supervised InfoNCE of Eq. (3)-(6): each positive against the anchor's negatives only."""

from typing import NamedTuple, Union

import torch
import torch.nn.functional as F


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 normalisation in float32 that survives huge inputs.

    Dividing by the row's max magnitude first keeps the squared norm finite (1e30 would
    overflow float32 when squared and normalise to zero).
    """
    x = x.float()
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return F.normalize(x / scale, p=2, dim=1)


class PairRelations(NamedTuple):
    """What Eq. (3)-(6) need to know about every (anchor i, sample j) pair.

    Attributes:
        weight: ``(M, M)`` float32: 1 / (|P_i| * #anchors with a positive) on positives,
            0 elsewhere, so the weighted sum is "mean over positives, then over anchors".
        neg_bias: ``(M, M)`` float32: 0 on negatives, the float32 minimum elsewhere, added to
            the logits to restrict the log-sum-exp to N_i.
    """

    weight: torch.Tensor
    neg_bias: torch.Tensor


def pair_relations(labels: torch.Tensor) -> PairRelations:
    """Positive weights and negative mask from the ``(M,)`` sample classes.

    Built once per batch and shared by the three terms (they contrast the same positions).
    Sample i of both modalities shares a spatial position, so j == i is neither positive nor
    negative (for intra-modal contrast this removes the self pair).
    """
    same = labels[:, None] == labels[None, :]  # (M, M)
    pos = same.clone()
    pos.fill_diagonal_(False)  # the diagonal is same-class, so j != i holds for negatives
    num_pos = pos.sum(dim=1, keepdim=True)  # (M, 1)
    num_anchors = (num_pos > 0).sum().clamp_min(1)
    weight = pos / (num_pos.clamp_min(1) * num_anchors).float()
    # a finite fill (not -inf) keeps logsumexp's backward NaN-free for rows without negatives
    neg_bias = torch.zeros(same.shape, dtype=torch.float32, device=labels.device)
    neg_bias.masked_fill_(same, torch.finfo(torch.float32).min)
    return PairRelations(weight, neg_bias)


def supervised_infonce(anchors: torch.Tensor, contrast: torch.Tensor,
                       labels: Union[torch.Tensor, PairRelations],
                       temperature: float) -> torch.Tensor:
    """Eq. (3)/(5): mean over anchors of the mean over positives of Eq. (4)/(6).

    For anchor i and positive j::

        l_ij = -log(exp(s_ij) / (exp(s_ij) + sum_{k in N_i} exp(s_ik)))
             = softplus(logsumexp_{k in N_i} s_ik - s_ij)

    which is evaluated without overflow for any temperature. Unlike SupCon, other positives
    are not in the denominator. Anchors without a positive are left out of the mean (the
    released code counts them as zero, which shrinks the loss as the batch gets more
    singleton classes).

    Args:
        anchors: ``(M, D)`` embeddings (any float dtype; normalised here in float32).
        contrast: ``(M, D)`` embeddings, same positions as ``anchors``.
        labels: ``(M,)`` class of each position, or their :func:`pair_relations`.
        temperature: tau of Eq. (4).

    Returns:
        Scalar float32 loss; an attached zero when no anchor has a positive.
    """
    relations = labels if isinstance(labels, PairRelations) else pair_relations(labels)
    # similarities and softmax in float32 even under fp16/bf16 autocast
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        a = l2_normalize(anchors)
        c = l2_normalize(contrast)
        logits = a @ c.t() / temperature  # (M, M)
        neg_lse = torch.logsumexp(logits + relations.neg_bias, dim=1, keepdim=True)  # (M, 1)
        return (F.softplus(neg_lse - logits) * relations.weight).sum()

"""Supervised InfoNCE of Eq. (3)-(6): each positive against the anchor's negatives only."""

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


def supervised_infonce(anchors: torch.Tensor, contrast: torch.Tensor, labels: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """Eq. (3)/(5): mean over anchors of the mean over positives of Eq. (4)/(6).

    Sample i of ``anchors`` and sample i of ``contrast`` share a spatial position, so index
    j == i is neither positive nor negative (for intra-modal contrast this removes the self
    pair). For anchor i and positive j::

        l_ij = -log(exp(s_ij) / (exp(s_ij) + sum_{k in N_i} exp(s_ik)))
             = softplus(logsumexp_{k in N_i} s_ik - s_ij)

    which is evaluated without overflow for any temperature. Unlike SupCon, other positives
    are not in the denominator. Anchors without a positive are left out of the mean (the
    released code counts them as zero, which shrinks the loss as the batch gets more
    singleton classes).

    Args:
        anchors: ``(M, D)`` embeddings (any float dtype; normalised here in float32).
        contrast: ``(M, D)`` embeddings, same positions as ``anchors``.
        labels: ``(M,)`` class of each position.
        temperature: tau of Eq. (4).

    Returns:
        Scalar float32 loss; an attached zero when no anchor has a positive.
    """
    device_type = anchors.device.type
    # similarities and softmax in float32 even under fp16/bf16 autocast
    with torch.autocast(device_type=device_type, enabled=False):
        a = l2_normalize(anchors)
        c = l2_normalize(contrast)
        logits = a @ c.t() / temperature  # (M, M)
        same = labels[:, None] == labels[None, :]  # (M, M)
        eye = torch.eye(labels.numel(), dtype=torch.bool, device=labels.device)
        pos = same & ~eye
        neg = ~same  # the diagonal is same-class, so j != i holds already
        # a finite fill (not -inf) keeps logsumexp's backward NaN-free for rows without negatives
        fill = torch.finfo(torch.float32).min
        neg_lse = torch.logsumexp(logits.masked_fill(~neg, fill), dim=1, keepdim=True)  # (M, 1)
        num_pos = pos.sum(dim=1, keepdim=True)  # (M, 1)
        num_anchors = (num_pos > 0).sum().clamp_min(1)
        # mean over each anchor's positives, then over anchors that have one, as one weighted
        # sum; rows of anchors without positives are all zero, so they drop out of the mean
        weight = pos / (num_pos.clamp_min(1) * num_anchors)  # (M, M), no grad
        return (F.softplus(neg_lse - logits) * weight).sum()

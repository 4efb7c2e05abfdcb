"""Whole-image / sliding-window inference with optional multi-scale and flip averaging.

Public API (frozen):

- ``predict_logits(model, rgb, aux, num_classes, crop=None, stride=None, scales=(1.0,),
  flip=False, size_divisor=32) -> (B,K,H,W) float tensor``

``rgb``/``aux`` are normalised network inputs ``(B,3,H,W)`` on the model's device. With one
scale and no flip the result is the model's logits (overlapping sliding windows averaged in
logit space). With several passes (scales and/or flip) it is the log of the averaged softmax
probabilities. In both cases ``softmax(result, 1)`` is the class probability map and
``argmax(1)`` the label map. Gradients are never tracked.

Any input size works: each forward pass pads its input (zeros = the normalised mean) on the
bottom/right to a multiple of ``size_divisor`` and crops the logits back.

``smmcl_core.inference_np.predict_logits_np`` is the same on numpy arrays (no torch), for
engines that run numpy; both share ``check_plan``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from smmcl_core.inference_np import check_plan, tta_passes


def _forward_padded(model: nn.Module, rgb: torch.Tensor, aux: torch.Tensor, num_classes: int,
                    size_divisor: int) -> torch.Tensor:
    """One forward pass on an arbitrary-sized input: pad to the divisor, crop the logits."""
    h, w = rgb.shape[-2:]
    pad_h = (-h) % size_divisor
    pad_w = (-w) % size_divisor
    if pad_h or pad_w:
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h))
        aux = F.pad(aux, (0, pad_w, 0, pad_h))
    logits = model(rgb, aux)  # (B,K,H',W')
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if logits.shape[1] != num_classes:
        raise ValueError(f'model returned {logits.shape[1]} channels, expected num_classes='
                         f'{num_classes}')
    if logits.shape[-2:] != rgb.shape[-2:]:
        logits = F.interpolate(logits, size=rgb.shape[-2:], mode='bilinear',
                               align_corners=False)
    return logits[..., :h, :w]


def _sliding(model: nn.Module, rgb: torch.Tensor, aux: torch.Tensor, num_classes: int,
             crop: Tuple[int, int], stride: Tuple[int, int], size_divisor: int) -> torch.Tensor:
    """Average the logits of overlapping crop-sized windows (image padded up to the crop)."""
    b, _, h, w = rgb.shape
    ch, cw = crop
    sh, sw = stride
    pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
    if pad_h or pad_w:
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h))
        aux = F.pad(aux, (0, pad_w, 0, pad_h))
    ph, pw = rgb.shape[-2:]
    rows = max(math.ceil((ph - ch) / sh), 0) + 1
    cols = max(math.ceil((pw - cw) / sw), 0) + 1
    total = None
    count = torch.zeros(1, 1, ph, pw, device=rgb.device, dtype=torch.float32)
    for r in range(rows):
        y0 = min(r * sh, ph - ch)
        for c in range(cols):
            x0 = min(c * sw, pw - cw)
            win = _forward_padded(model, rgb[..., y0:y0 + ch, x0:x0 + cw],
                                  aux[..., y0:y0 + ch, x0:x0 + cw], num_classes, size_divisor)
            if total is None:
                total = torch.zeros(b, num_classes, ph, pw, device=rgb.device, dtype=win.dtype)
            total[..., y0:y0 + ch, x0:x0 + cw] += win
            count[..., y0:y0 + ch, x0:x0 + cw] += 1
    return (total / count.to(total.dtype))[..., :h, :w]


@torch.no_grad()
def predict_logits(model: nn.Module, rgb: torch.Tensor, aux: torch.Tensor, num_classes: int,
                   crop: Optional[Sequence[int] | int] = None,
                   stride: Optional[Sequence[int] | int] = None,
                   scales: Sequence[float] = (1.0,), flip: bool = False,
                   size_divisor: int = 32) -> torch.Tensor:
    """Predict class scores for a batch, see the module docstring for the output meaning.

    Args:
        model: Network called as ``model(rgb, aux)`` returning ``(B,K,h,w)`` logits (a
            different ``h,w`` is resized bilinearly). It should be in eval mode.
        rgb: ``(B,3,H,W)`` normalised RGB.
        aux: ``(B,3,H,W)`` normalised auxiliary modality.
        num_classes: K, checked against the model output.
        crop: Sliding-window size ``(h, w)`` (or one int); ``None``/``[]`` = whole image.
        stride: Window step ``(h, w)``; default ``ceil(2/3 crop)``.
        scales: Input rescale factors; predictions are resized back to ``(H, W)``.
        flip: Also predict the horizontally flipped input and average.
        size_divisor: Each forward pass pads its input to a multiple of this.

    Returns:
        ``(B,K,H,W)`` logits (single pass) or log averaged probabilities (several passes).

    Raises:
        ValueError: Bad shapes, crop/stride or scales, or a model with the wrong class count.
    """
    crop_hw, stride_hw, scales = check_plan(rgb.shape, aux.shape, crop, stride, scales)
    h, w = rgb.shape[-2:]

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if crop_hw is None:
            return _forward_padded(model, x, y, num_classes, size_divisor)
        return _sliding(model, x, y, num_classes, crop_hw, stride_hw, size_divisor)

    passes = tta_passes(scales, flip)
    if len(passes) == 1 and scales[0] == 1.0:
        return run(rgb, aux)
    prob_sum = None
    for scale, flipped in passes:
        x, y = rgb, aux
        if scale != 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            y = F.interpolate(y, size=size, mode='bilinear', align_corners=False)
        if flipped:
            x, y = x.flip(-1), y.flip(-1)
        logits = run(x, y)
        if flipped:
            logits = logits.flip(-1)
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode='bilinear', align_corners=False)
        probs = logits.float().softmax(1)
        prob_sum = probs if prob_sum is None else prob_sum + probs
    # log of the mean probability: softmax() of it gives back exactly that mean.
    return (prob_sum / len(passes)).clamp_min(1e-12).log()

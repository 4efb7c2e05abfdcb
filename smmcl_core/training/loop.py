"""Training and evaluation loops (small plain functions, torchvision-references style).

Public API (frozen):

- ``train_one_epoch(model, criterion_ce, contrastive, loss_cfg, optimizer, scheduler, loader,
  device, epoch, scaler=None, amp=False, writer=None, log_every=20, max_iters=0,
  progress=True, grad_clip=0.0) -> dict`` with the mean ``loss``, ``ce``, ``cm``, ``vis``,
  ``aux`` over the epoch's iterations plus ``lr`` (last), ``iters`` and ``seconds``.
  Eq. (7): ``loss = ce + s * (lambda_cm * cm + lambda_vis * vis + lambda_aux * aux)`` with
  ``s = contrastive_scale(epoch + i / iters, loss_cfg.lambda_delay_epochs,
  loss_cfg.lambda_ramp_epochs)`` (1 by default; logged as ``train/lambda_scale``). The model is
  called with ``return_embeddings=True`` only when ``contrastive`` is given and
  ``loss_cfg.mode != 'none'``. ``scheduler.step()`` runs after every optimizer step. AMP
  (``torch.autocast`` fp16 + ``scaler``) only on CUDA. A ``DistributedSampler`` gets
  ``set_epoch(epoch)``. TensorBoard scalars ``train/*`` every ``log_every`` iterations at
  global step ``epoch * iters_per_epoch + i``. Raises ``FloatingPointError`` on a non-finite
  loss.
- ``evaluate(model, loader, device, num_classes, ignore_index, crop=None, scales=(1.0,),
  flip=False, progress=True, background_index=None) -> ConfusionMatrix`` (already reduced
  over DDP ranks; the model's train/eval mode is restored afterwards).
- ``is_main_process() -> bool``.

Loaders yield ``(rgb (B,3,H,W), aux (B,3,H,W), label (B,H,W) long)``.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from smmcl_core.config import LossConfig
from smmcl_core.data.resize import restore_logits
from smmcl_core.inference import predict_logits
from smmcl_core.losses.schedule import contrastive_scale
from smmcl_core.metrics import ConfusionMatrix

LOSS_KEYS = ('loss', 'ce', 'cm', 'vis', 'aux')


def is_main_process() -> bool:
    """True on rank 0 or when not distributed."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == 'cuda':
        return torch.autocast('cuda', dtype=torch.float16)
    return contextlib.nullcontext()


def train_one_epoch(model: nn.Module, criterion_ce: nn.Module, contrastive: Optional[nn.Module],
                    loss_cfg: LossConfig, optimizer: torch.optim.Optimizer, scheduler: Any,
                    loader: Any, device: torch.device, epoch: int,
                    scaler: Optional[torch.amp.GradScaler] = None, amp: bool = False,
                    writer: Any = None, log_every: int = 20, max_iters: int = 0,
                    progress: bool = True, grad_clip: float = 0.0) -> Dict[str, float]:
    """Train for one epoch (or ``max_iters`` iterations when > 0); see the module docstring."""
    device = torch.device(device)
    model.train()
    use_contrast = contrastive is not None and loss_cfg.mode != 'none'
    if isinstance(getattr(loader, 'sampler', None), DistributedSampler):
        loader.sampler.set_epoch(epoch)
    iters = len(loader) if max_iters <= 0 else min(len(loader), max_iters)
    sums = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=device)
    start = time.perf_counter()
    bar = tqdm(total=iters, desc=f'epoch {epoch}', leave=False, dynamic_ncols=True,
               disable=not (progress and is_main_process()))
    done = 0
    lr = optimizer.param_groups[0]['lr']
    for i, (rgb, aux, label) in enumerate(loader):
        if i >= iters:
            break
        rgb = rgb.to(device, non_blocking=True)
        aux = aux.to(device, non_blocking=True)
        label = label.to(device, non_blocking=True).long()
        with _autocast(device, amp):
            if use_contrast:
                logits, emb_vis, emb_aux = model(rgb, aux, return_embeddings=True)
            else:
                logits = model(rgb, aux)
            ce = criterion_ce(logits.float(), label)
        zero = ce.new_zeros(())
        terms = {'cm': zero, 'vis': zero, 'aux': zero}
        if use_contrast:
            # fp32 outside autocast: the temperature-scaled similarities are fp16-fragile.
            terms = contrastive(emb_vis.float(), emb_aux.float(), label)
        scale = contrastive_scale(epoch + i / iters,
                                  getattr(loss_cfg, 'lambda_delay_epochs', 0.0),
                                  getattr(loss_cfg, 'lambda_ramp_epochs', 0.0))
        loss = ce + scale * (loss_cfg.lambda_cm * terms['cm'] + loss_cfg.lambda_vis * terms['vis']
                             + loss_cfg.lambda_aux * terms['aux'])

        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        lr = optimizer.param_groups[0]['lr']  # the lr this step used
        if scheduler is not None:
            scheduler.step()

        values = torch.stack([loss.detach(), ce.detach(), terms['cm'].detach(),
                              terms['vis'].detach(), terms['aux'].detach()]).double()
        sums += values
        done += 1
        bar.update(1)
        if log_every > 0 and (i % log_every == 0 or i == iters - 1):
            current = values.tolist()  # one host sync per log step
            if not math.isfinite(current[0]):
                bar.close()
                raise FloatingPointError(
                    f'non-finite loss at epoch {epoch} iteration {i}: '
                    + ', '.join(f'{k}={v}' for k, v in zip(LOSS_KEYS, current)))
            bar.set_postfix(loss=f'{current[0]:.4f}', lr=f'{lr:.2e}')
            if writer is not None and is_main_process():
                step = epoch * iters + i
                for key, value in zip(LOSS_KEYS, current):
                    writer.add_scalar(f'train/{key}', value, step)
                writer.add_scalar('train/lr', lr, step)
                writer.add_scalar('train/lambda_scale', scale, step)
    bar.close()
    means = (sums / max(done, 1)).tolist()
    if not math.isfinite(means[0]):
        raise FloatingPointError(f'non-finite mean loss in epoch {epoch}: {means}')
    result = dict(zip(LOSS_KEYS, means))
    result.update(lr=lr, iters=done, seconds=time.perf_counter() - start)
    if done:
        result['lambda_scale'] = scale  # the last iteration's contrastive weight factor
    return result


def evaluate(model: nn.Module, loader: Any, device: torch.device, num_classes: int,
             ignore_index: int, crop: Optional[Sequence[int]] = None,
             scales: Sequence[float] = (1.0,), flip: bool = False, progress: bool = True,
             background_index: Optional[int] = None) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over ``loader`` (reduced across DDP ranks).

    Args:
        model: Network (DDP-wrapped or not); run in eval mode, previous mode restored.
        loader: Yields ``(rgb, aux, label)`` batches.
        device: Where to run.
        num_classes: K.
        ignore_index: Label value excluded from the counts.
        crop: Sliding-window size (``None``/``[]`` = whole image).
        scales: Multi-scale factors.
        flip: Horizontal-flip averaging.
        progress: tqdm bar on rank 0.
        background_index: Passed to :class:`ConfusionMatrix`.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index, background_index=background_index)
    crop = tuple(crop) if crop else None
    try:
        with torch.inference_mode():
            for rgb, aux, label in tqdm(loader, desc='eval', leave=False, dynamic_ncols=True,
                                        disable=not (progress and is_main_process())):
                rgb = rgb.to(device, non_blocking=True)
                aux = aux.to(device, non_blocking=True)
                label = label.to(device, non_blocking=True)
                logits = predict_logits(model, rgb, aux, num_classes, crop=crop,
                                        scales=scales, flip=flip)
                # data.resize: the network ran at the resized input, the label is native.
                logits = restore_logits(logits, label.shape[-2:])
                matrix.update(logits.argmax(1), label)
    finally:
        model.train(was_training)
    matrix.reduce()
    return matrix

"""Segmentation metrics from a confusion matrix (IoU, mIoU, pixel and mean accuracy).

Public API (frozen):

- ``ConfusionMatrix(num_classes, ignore_index=255, background_index=None)``
  - ``update(pred, target)``: integer tensors of equal shape (any device); pixels whose target
    is ``ignore_index`` (or outside ``[0, K)``) are skipped.
  - ``reduce()``: sums the matrix over DDP ranks; a no-op when not distributed.
  - ``reset()``, ``matrix`` (``(K, K)`` int64 tensor; rows = ground truth, columns = prediction).
  - ``iou()`` (per class, NaN where a class is neither present nor predicted), ``miou()``,
    ``miou_no_background()``, ``accuracy()`` (per class recall), ``pixel_accuracy()``,
    ``mean_accuracy()``; each mean is a NaN-mean over classes with a defined value.
  - ``to_dict(class_names=None)``: JSON-ready report (NaN written as ``None``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.distributed as dist


def _nanmean(values: torch.Tensor) -> float:
    valid = values[~torch.isnan(values)]
    return float(valid.mean()) if valid.numel() else float('nan')


def _json_float(value: float) -> Optional[float]:
    return None if math.isnan(value) else float(value)


class ConfusionMatrix:
    """Accumulates a ``(K, K)`` confusion matrix; rows are ground truth, columns predictions.

    Args:
        num_classes: Number of classes K.
        ignore_index: Target value that marks pixels to skip.
        background_index: Class left out of :meth:`miou_no_background` (``None`` = none left
            out, so it equals :meth:`miou`).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 background_index: Optional[int] = None):
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if background_index is not None and not 0 <= background_index < num_classes:
            raise ValueError(f'background_index {background_index} outside [0, {num_classes})')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.background_index = background_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        """Zero the counts (keeps the device)."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of predictions.

        Args:
            pred: Predicted labels, integer tensor (e.g. ``(B,H,W)``) in ``[0, K)``.
            target: Ground-truth labels, same shape; ``ignore_index`` pixels are skipped.

        Raises:
            ValueError: Shapes differ, non-integer tensors, or predictions outside ``[0, K)``.
        """
        if pred.shape != target.shape:
            raise ValueError(f'pred shape {tuple(pred.shape)} differs from target shape '
                             f'{tuple(target.shape)}')
        if pred.is_floating_point() or target.is_floating_point():
            raise ValueError('pred and target must be integer label tensors '
                             f'(got {pred.dtype} and {target.dtype}); take argmax first')
        k = self.num_classes
        if self.matrix.device != target.device:
            # A normal (not inference-mode) tensor, so reduce()/reset() may update it in place
            # later, outside torch.inference_mode.
            with torch.inference_mode(False):
                self.matrix = self.matrix.clone().to(target.device)
        target = target.reshape(-1).long()
        pred = pred.reshape(-1).long().to(target.device)
        valid = (target >= 0) & (target < k) & (target != self.ignore_index)
        pred = pred[valid]
        target = target[valid]
        if pred.numel() == 0:
            return
        if int(pred.min()) < 0 or int(pred.max()) >= k:
            raise ValueError(f'predicted labels must lie in [0, {k}), got range '
                             f'[{int(pred.min())}, {int(pred.max())}]')
        counts = torch.bincount(target * k + pred, minlength=k * k)
        self.matrix += counts.reshape(k, k)

    def reduce(self) -> None:
        """Sum the matrix over all DDP ranks (no-op when ``torch.distributed`` is not running)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        if dist.get_backend() == 'nccl' and self.matrix.device.type != 'cuda':
            self.matrix = self.matrix.to(torch.device('cuda', torch.cuda.current_device()))
        dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)

    # ---------------------------------------------------------------- results
    def _float(self) -> torch.Tensor:
        return self.matrix.detach().to('cpu', torch.float64)

    def iou(self) -> torch.Tensor:
        """Per-class intersection over union, float64 ``(K,)``.

        NaN where the class is neither present nor predicted.
        """
        m = self._float()
        inter = m.diag()
        union = m.sum(0) + m.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, math.nan))

    def accuracy(self) -> torch.Tensor:
        """Per-class recall, float64 ``(K,)``; NaN for classes absent in the targets."""
        m = self._float()
        total = m.sum(1)
        return torch.where(total > 0, m.diag() / total.clamp(min=1),
                           torch.full_like(total, math.nan))

    def miou(self) -> float:
        """Mean IoU over classes present in targets or predictions."""
        return _nanmean(self.iou())

    def miou_no_background(self) -> float:
        """Mean IoU without ``background_index`` (equals :meth:`miou` when it is ``None``)."""
        iou = self.iou()
        if self.background_index is None:
            return _nanmean(iou)
        keep = torch.ones(self.num_classes, dtype=torch.bool)
        keep[self.background_index] = False
        return _nanmean(iou[keep])

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels (NaN when nothing was counted)."""
        m = self._float()
        total = m.sum()
        return float(m.diag().sum() / total) if total > 0 else float('nan')

    def mean_accuracy(self) -> float:
        """Mean of the per-class accuracies over classes present in the targets."""
        return _nanmean(self.accuracy())

    def to_dict(self, class_names: Optional[Sequence[str]] = None) -> dict:
        """JSON-ready summary with per-class IoU/accuracy/pixel counts and the raw matrix.

        Args:
            class_names: K names; defaults to ``'class_<i>'``.

        Raises:
            ValueError: ``class_names`` does not have K entries.
        """
        k = self.num_classes
        if class_names is None:
            class_names = [f'class_{i}' for i in range(k)]
        if len(class_names) != k:
            raise ValueError(f'class_names has {len(class_names)} entries, expected {k}')
        iou = self.iou().tolist()
        acc = self.accuracy().tolist()
        pixels = self.matrix.sum(1).cpu().tolist()
        return {
            'num_classes': k,
            'ignore_index': self.ignore_index,
            'background_index': self.background_index,
            'miou': _json_float(self.miou()),
            'miou_no_background': _json_float(self.miou_no_background()),
            'pixel_accuracy': _json_float(self.pixel_accuracy()),
            'mean_accuracy': _json_float(self.mean_accuracy()),
            'per_class': {
                str(name): {'iou': _json_float(iou[i]), 'accuracy': _json_float(acc[i]),
                            'pixels': int(pixels[i])}
                for i, name in enumerate(class_names)
            },
            'confusion_matrix': self.matrix.cpu().tolist(),
        }

"""The torch engine: the network itself, eager, under CUDA autocast for fp16 / bf16.

Same interface as the ONNX engines (``Engine``: ``(rgb, aux) -> logits`` on tensors), so
``Segmenter`` never asks which backend it holds. ``network`` is the wrapped ``nn.Module``
(feature extraction, export and training-style evaluation use it directly). It is an
``nn.Module`` first (``.eval()``, ``.to()``, ``repr`` are the module's) and an ``Engine``
second; it runs tensors only (``runs_numpy`` is False).
"""

from __future__ import annotations

from typing import Optional
import warnings

import torch
from torch import nn

from smmcl_core.engines.base import Engine

# Precision -> autocast dtype (None: plain fp32).
TORCH_DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class TorchEngine(nn.Module, Engine):
    """Run an SMMCL network with torch on its device.

    Args:
        network: Network with the ``SMMCLNet`` forward contract.
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'``; the half precisions need CUDA and fall
            back to fp32 elsewhere with a ``RuntimeWarning`` (``precision`` then reads fp32).
        device: Resolved torch device; the network is moved there.
        num_classes: K (checked against ``network.num_classes`` when it has one).
        channels_last: Channels-last memory format; ``None`` = on CUDA only.

    Raises:
        ValueError: unknown precision, or the network predicts another class count.
    """

    name = 'torch'
    PRECISIONS = tuple(TORCH_DTYPES)

    def __init__(self, network: nn.Module, precision: str, device: torch.device,
                 num_classes: int, channels_last: Optional[bool] = None) -> None:
        if precision not in TORCH_DTYPES:
            raise ValueError(f'unknown precision {precision!r}; valid: '
                             f'{", ".join(TORCH_DTYPES)}')
        device = torch.device(str(device))  # a torch.device, or a torch-free Device
        if precision != 'fp32' and device.type != 'cuda':
            warnings.warn(f'precision {precision!r} needs CUDA; running fp32 on {device}',
                          RuntimeWarning, stacklevel=3)
            precision = 'fp32'
        nn.Module.__init__(self)
        Engine.__init__(self, precision, device, num_classes)
        network_classes = getattr(network, 'num_classes', self.num_classes)
        if network_classes != self.num_classes:
            raise ValueError(f'model has {network_classes} classes, meta says '
                             f'{self.num_classes}')
        if channels_last is None:
            channels_last = device.type == 'cuda'
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = network.to(device).eval()
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    @property
    def memory_format(self) -> torch.memory_format:
        """channels-last (CUDA by default) or contiguous."""
        return self._memory_format

    @property
    def network(self) -> nn.Module:
        """The wrapped network."""
        return self.net

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B,3,H,W)`` inputs on the device -> ``(B,K,H,W)`` logits."""
        dtype = TORCH_DTYPES[self.precision]
        if dtype is None:
            return self.net(rgb, aux)
        with torch.autocast(self.device.type, dtype=dtype):
            return self.net(rgb, aux)

    def describe(self) -> str:
        """One line for logs."""
        return f'torch {self.precision} on {self.device}'

"""What every inference engine offers ``Segmenter``: ``(rgb, aux) -> logits`` on tensors.

An engine runs the ONNX graph that ``smmcl-export`` writes (see ``smmcl_core.engines.graph``)
in another runtime. It consumes the tensors ``Segmenter.preprocess`` already made (so every
input convention of ``smmcl_core.data.preprocess`` reaches it unchanged) and is called like
the torch network, so ``smmcl_core.inference.predict_logits`` (padding, sliding windows,
multi-scale, flip) and ``smmcl_core.training.loop.evaluate`` work with it as they do with the
model. ``TorchEngine`` (``torch_engine``) is the network itself behind the same interface.

It is an ``nn.Module`` without parameters only so that code written for the network
(``.eval()``, ``.train(mode)``, ``.training``) accepts it.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn


class EngineUnavailableError(ValueError):
    """An engine was asked for explicitly but its runtime (or device) is missing."""


class Engine(nn.Module):
    """Base class: subclasses implement :meth:`run` on contiguous float32 numpy arrays.

    Attributes:
        name: Backend name (``'openvino'``, ``'onnxruntime'``, ``'tensorrt'``).
        precision: Arithmetic actually used: ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device: The torch device that inputs and outputs live on.
        num_classes: K, the logits' channel count.
    """

    name = 'engine'
    #: Precisions this engine can run (``'fp32'`` always first).
    PRECISIONS: Tuple[str, ...] = ('fp32',)
    #: ``(H, W)`` of a graph exported without dynamic height and width, else None.
    static_hw: Optional[Tuple[int, int]] = None
    path = None  # the ONNX file it runs
    memory_format = torch.contiguous_format  # of the inputs it wants

    def __init__(self, precision: str, device: torch.device, num_classes: int) -> None:
        super().__init__()
        self.precision = precision
        self.device = torch.device(device)
        self.num_classes = int(num_classes)

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """``(B,3,H,W)``, ``(B,3,H,W)`` float32 -> ``(B,K,H,W)`` float32 logits."""
        raise NotImplementedError

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B,3,H,W)`` RGB and ``(B,1|3,H,W)`` aux -> ``(B,K,H,W)`` logits.

        A one-channel aux is replicated to three channels here, as ``SMMCLNet.forward`` does,
        because the exported graph has a fixed three-channel aux input.
        """
        if self.static_hw is not None and tuple(rgb.shape[2:]) != self.static_hw:
            raise ValueError(
                f'{self.path} was exported for {self.static_hw[0]}x{self.static_hw[1]} input, '
                f'got {rgb.shape[2]}x{rgb.shape[3]}: export with --dynamic-hw for any size')
        if aux.dim() == 4 and aux.shape[1] == 1:
            aux = aux.expand(-1, 3, -1, -1)
        logits = self.run(_to_numpy(rgb), _to_numpy(aux))  # (B,K,H,W)
        return torch.from_numpy(logits).to(self.device)

    @property
    def network(self) -> nn.Module:
        """What runs the logits: the engine itself here, the torch network for TorchEngine."""
        return self

    def describe(self) -> str:
        """One line for logs: engine, precision, device and engine-specific details."""
        return f'{self.name} {self.precision} on {self.device}'

    def extra_repr(self) -> str:
        """Shown by ``repr``."""
        return self.describe()


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().to('cpu', torch.float32).numpy()
    return np.ascontiguousarray(array)

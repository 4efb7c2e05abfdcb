"""What every inference engine offers ``Segmenter``: ``(rgb, aux) -> logits``.

An engine runs the ONNX graph that ``smmcl-export`` writes (see ``smmcl_core.engines.graph``)
in another runtime. Its core is :meth:`Engine.run` on numpy arrays: the arrays
``smmcl_core.data.preprocess`` makes, so every input convention reaches it unchanged. An engine
with ``runs_numpy`` (OpenVINO, ONNX Runtime) lets ``Segmenter`` run the whole frame in numpy
(``smmcl_core.inference_np``) without importing torch.

For code written for the torch network it is also callable on tensors (:meth:`Engine.forward`;
torch is imported then), so ``smmcl_core.inference.predict_logits`` (padding, sliding windows,
multi-scale, flip) and ``smmcl_core.training.loop.evaluate`` work with it as they do with the
model, and it has the module methods they use (``.eval()``, ``.train(mode)``, ``.training``).
``TorchEngine`` (``torch_engine``) is the network itself behind the same interface.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, Tuple

import numpy as np

from smmcl_core.utils.optional import import_torch


class EngineUnavailableError(ValueError):
    """An engine was asked for explicitly but its runtime (or device) is missing."""


def default_threads() -> int:
    """Inference threads of an engine (0 = the runtime's default, one per physical core).

    torch's count when torch is already loaded (so ``torch.set_num_threads`` applies), else
    ``OMP_NUM_THREADS``, else 0.
    """
    if 'torch' in sys.modules:
        return int(sys.modules['torch'].get_num_threads())
    try:
        return max(int(os.environ.get('OMP_NUM_THREADS', '0')), 0)
    except ValueError:
        return 0


class Engine:
    """Base class: subclasses implement :meth:`run` on contiguous float32 numpy arrays.

    Attributes:
        name: Backend name (``'openvino'``, ``'onnxruntime'``, ``'tensorrt'``).
        precision: Arithmetic actually used: ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device: The device it runs on (``smmcl_core.utils.devices.Device`` or
            ``torch.device``); tensors given to :meth:`forward` come back there.
        num_classes: K, the logits' channel count.
        runs_numpy: :meth:`run` needs no torch (``Segmenter`` then predicts in numpy).
    """

    name = 'engine'
    #: Precisions this engine can run (``'fp32'`` always first).
    PRECISIONS: Tuple[str, ...] = ('fp32',)
    #: ``(H, W)`` of a graph exported without dynamic height and width, else None.
    static_hw: Optional[Tuple[int, int]] = None
    path = None  # the ONNX file it runs
    runs_numpy = False
    training = False

    def __init__(self, precision: str, device: Any, num_classes: int) -> None:
        self.precision = precision
        self.device = device
        self.num_classes = int(num_classes)

    @property
    def memory_format(self) -> Any:
        """The torch memory format of the tensors :meth:`forward` wants (imports torch)."""
        return import_torch('tensor inputs to an engine').contiguous_format

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """``(B,3,H,W)``, ``(B,3,H,W)`` float32 -> ``(B,K,H,W)`` float32 logits."""
        raise NotImplementedError

    def check_size(self, height: int, width: int) -> None:
        """Raise ``ValueError`` when a fixed-size graph cannot take ``height x width``."""
        if self.static_hw is not None and (height, width) != tuple(self.static_hw):
            raise ValueError(
                f'{self.path} was exported for {self.static_hw[0]}x{self.static_hw[1]} input, '
                f'got {height}x{width}: export with --dynamic-hw for any size')

    def run_numpy(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """:meth:`run` after the checks: size, one-channel aux replicated, float32 contiguous.

        Args:
            rgb: ``(B,3,H,W)`` normalised RGB.
            aux: ``(B,1|3,H,W)`` normalised aux (one channel is replicated, as
                ``SMMCLNet.forward`` does, because the graph has a three-channel aux input).

        Returns:
            ``(B,K,H,W)`` float32 logits.
        """
        self.check_size(int(rgb.shape[2]), int(rgb.shape[3]))
        if aux.ndim == 4 and aux.shape[1] == 1:
            aux = np.repeat(aux, 3, axis=1)
        return self.run(np.ascontiguousarray(rgb, np.float32),
                        np.ascontiguousarray(aux, np.float32))

    def forward(self, rgb: Any, aux: Any) -> Any:
        """Normalised ``(B,3,H,W)`` RGB, ``(B,1|3,H,W)`` aux tensors -> ``(B,K,H,W)`` logits.

        The logits are on :attr:`device`; see :meth:`run_numpy`.
        """
        torch = import_torch('tensor inputs to an engine')
        logits = self.run_numpy(_to_numpy(rgb), _to_numpy(aux))  # (B,K,H,W)
        return torch.from_numpy(logits).to(str(self.device))

    def __call__(self, rgb: Any, aux: Any) -> Any:
        """Called like the network: :meth:`forward`."""
        return self.forward(rgb, aux)

    def eval(self) -> 'Engine':
        """Inference mode (the only one an engine has); returns itself, as modules do."""
        return self.train(False)

    def train(self, mode: bool = True) -> 'Engine':
        """Record ``mode`` (an engine always infers); returns itself."""
        self.training = bool(mode)
        return self

    @property
    def network(self) -> Any:
        """What runs the logits: the engine itself here, the torch network for TorchEngine."""
        return self

    def describe(self) -> str:
        """One line for logs: engine, precision, device and engine-specific details."""
        return f'{self.name} {self.precision} on {self.device}'

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.describe()})'


def _to_numpy(tensor: Any) -> np.ndarray:
    import torch

    array = tensor.detach().to('cpu', torch.float32).numpy()
    return np.ascontiguousarray(array)

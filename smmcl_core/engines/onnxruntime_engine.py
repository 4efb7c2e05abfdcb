"""ONNX Runtime engine (CPU execution provider): runs the dynamic graph at any input size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from smmcl_core.engines.base import default_threads, Engine


class OnnxRuntimeEngine(Engine):
    """An ``onnxruntime.InferenceSession`` on the exported graph.

    Args:
        onnx_path: Graph written by ``smmcl-export`` / the engine cache.
        precision: ``'fp32'`` only.
        device: CPU only.
        num_classes: K.
        threads: Intra-op threads; ``None`` = ``engines.base.default_threads()``: the cores
            torch would use when torch is loaded (``torch.set_num_threads`` applies), else
            ``OMP_NUM_THREADS``, else ONNX Runtime's default.
        cache_dir: Unused (ONNX Runtime needs nothing beyond the cached graph).
    """

    name = 'onnxruntime'
    runs_numpy = True

    def __init__(self, onnx_path: os.PathLike, precision: str, device: object,
                 num_classes: int, threads: Optional[int] = None,
                 cache_dir: Optional[os.PathLike] = None) -> None:
        import onnxruntime as ort

        super().__init__(precision, device, num_classes)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or default_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # no per-node warnings on stderr
        self.path = Path(onnx_path)
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=['CPUExecutionProvider'])
        height, width = self.session.get_inputs()[0].shape[2:]
        if isinstance(height, int) and isinstance(width, int):
            self.static_hw = (height, width)

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """See :meth:`Engine.run`."""
        return self.session.run(['logits'], {'rgb': rgb, 'aux': aux})[0]

"""TensorRT engine (CUDA): one serialized plan per input shape, cached on disk.

UNTESTED: written against the TensorRT 10 Python API (``pip install tensorrt``) without a
GPU to run it on; see README ("Inference engines").

The plan is built from the cached ONNX graph with a single-shape optimisation profile for the
padded input size (a camera stream's size never changes; the first frame of a new size pays
the build, minutes for the large presets) and stored under ``<cache>/tensorrt/``, keyed by the
graph key plus the shape, precision, GPU name and TensorRT version, verified like the graph.
Inputs and outputs stay on the GPU: the plan reads the preprocessed CUDA tensors directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from smmcl_core.engines.base import Engine
from smmcl_core.engines.cache import artifact_path, cached_artifact, file_sha256

WORKSPACE_BYTES = 4 << 30


class TensorRTEngine(Engine):
    """TensorRT execution of the exported graph on a CUDA device.

    Args:
        onnx_path: Graph written by ``smmcl-export`` / the engine cache.
        precision: ``'fp32'`` or ``'fp16'`` (``BuilderFlag.FP16``: layers may run in fp16).
        device: A CUDA device.
        num_classes: K.
        cache_dir: Cache folder for the plans (None = the default cache folder).
    """

    name = 'tensorrt'
    PRECISIONS = ('fp32', 'fp16')

    def __init__(self, onnx_path: os.PathLike, precision: str, device: torch.device,
                 num_classes: int, cache_dir: Optional[os.PathLike] = None) -> None:
        import tensorrt as trt

        super().__init__(precision, torch.device(str(device)), num_classes)
        self.trt = trt
        self.path = Path(onnx_path)
        self.cache_dir = cache_dir
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self._onnx_sha256 = file_sha256(self.path)
        self._contexts: Dict[Tuple[int, ...], Any] = {}

    def _key(self, shape: Tuple[int, ...]) -> Dict[str, Any]:
        return {'onnx_sha256': self._onnx_sha256, 'shape': list(shape),
                'precision': self.precision, 'gpu': torch.cuda.get_device_name(self.device),
                'tensorrt': self.trt.__version__}

    def _build(self, shape: Tuple[int, ...], out: Path) -> None:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch (the only mode in TensorRT 10)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(self.path)):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f'TensorRT cannot parse {self.path}: {errors}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.precision == 'fp16':
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for name in ('rgb', 'aux'):
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f'TensorRT failed to build a plan for {self.path} at {shape}')
        out.write_bytes(bytes(plan))

    def _context(self, shape: Tuple[int, ...]):
        if shape not in self._contexts:
            key = self._key(shape)
            path = artifact_path(self.cache_dir, self.name, key, '.plan')
            path = cached_artifact(path, key, lambda tmp: self._build(shape, tmp))
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:  # a plan from another TensorRT build slipped through
                path = cached_artifact(path, key, lambda tmp: self._build(shape, tmp), True)
                engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            context = engine.create_execution_context()
            for name in ('rgb', 'aux'):
                context.set_input_shape(name, shape)
            self._contexts[shape] = (engine, context)
        return self._contexts[shape][1]

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """As :meth:`Engine.forward`, with the tensors kept on the GPU."""
        if aux.shape[1] == 1:
            aux = aux.expand(-1, 3, -1, -1)
        rgb = rgb.to(self.device, torch.float32).contiguous()
        aux = aux.to(self.device, torch.float32).contiguous()
        context = self._context(tuple(rgb.shape))
        out_shape = tuple(context.get_tensor_shape('logits'))
        logits = torch.empty(out_shape, device=self.device, dtype=torch.float32)
        for name, tensor in (('rgb', rgb), ('aux', aux), ('logits', logits)):
            context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f'TensorRT execution failed for input {tuple(rgb.shape)}')
        stream.synchronize()
        return logits

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """See :meth:`Engine.run` (numpy in and out, through the GPU)."""
        out = self.forward(torch.from_numpy(rgb), torch.from_numpy(aux))
        return out.cpu().numpy()

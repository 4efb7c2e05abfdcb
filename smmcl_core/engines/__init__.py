"""Inference engines behind ``Segmenter``: one explicit table, each runtime imported lazily.

``torch`` runs the network eagerly (no export). The others run the ONNX graph that
``smmcl-export`` writes, exported once per checkpoint and cached (``smmcl_core.engines.cache``):

============  ======  =================  ====================  ==================
backend       device  precisions         pip extra             runtime module
============  ======  =================  ====================  ==================
openvino      CPU     fp32, bf16 [1]     ``smmcl_ros[openvino]``     openvino
onnxruntime   CPU     fp32               ``smmcl_ros[onnxruntime]``  onnxruntime
tensorrt      CUDA    fp32, fp16         ``smmcl_ros[tensorrt]``     tensorrt
============  ======  =================  ====================  ==================

[1] bf16 where the CPU has native bf16 (AVX512-BF16 or AMX).

``auto`` picks the first usable entry of :data:`AUTO_ORDER` for the device: on CPU OpenVINO,
then ONNX Runtime, then torch; on CUDA TensorRT, then torch. An engine that cannot run the
requested precision is skipped by ``auto``. Nothing here imports a runtime until an engine of
that kind is created, so a missing runtime never affects torch users.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from smmcl_core.engines.base import Engine, EngineUnavailableError

__all__ = ['AUTO_ORDER', 'BACKENDS', 'ENGINES', 'Engine', 'EngineSpec', 'EngineUnavailableError',
           'available', 'create_engine', 'resolve_backend']


@dataclass(frozen=True)
class EngineSpec:
    """Where an engine lives and what it needs."""

    module: str  # smmcl module holding the engine class
    cls: str  # class name
    runtime: str  # third-party module that must be importable
    extra: str  # pip extra that installs it
    device: str  # 'cpu' or 'cuda'
    precisions: Tuple[str, ...]
    # 'function' in ``module`` returning why a listed precision cannot run here, or None.
    precision_check: Optional[str] = None


ENGINES: Dict[str, EngineSpec] = {
    'openvino': EngineSpec('smmcl_core.engines.openvino_engine', 'OpenVINOEngine', 'openvino',
                           'openvino', 'cpu', ('fp32', 'bf16'), 'supported_precision'),
    'onnxruntime': EngineSpec('smmcl_core.engines.onnxruntime_engine', 'OnnxRuntimeEngine',
                              'onnxruntime', 'onnxruntime', 'cpu', ('fp32',)),
    'tensorrt': EngineSpec('smmcl_core.engines.tensorrt_engine', 'TensorRTEngine', 'tensorrt',
                           'tensorrt', 'cuda', ('fp32', 'fp16')),
}
BACKENDS: Tuple[str, ...] = ('auto', 'torch') + tuple(ENGINES)
AUTO_ORDER: Dict[str, Tuple[str, ...]] = {
    'cpu': ('openvino', 'onnxruntime', 'torch'),
    'cuda': ('tensorrt', 'torch'),
}


def available(name: str) -> bool:
    """Whether the runtime of engine ``name`` is installed (``torch`` always is)."""
    if name == 'torch':
        return True
    return importlib.util.find_spec(ENGINES[name].runtime) is not None


def _unusable(name: str, device: torch.device, precision: str) -> Optional[str]:
    """Why engine ``name`` cannot serve (device, precision) here, or None."""
    spec = ENGINES[name]
    if device.type != spec.device:
        return f"backend {name!r} runs on {spec.device.upper()}, not on device '{device}'"
    if not available(name):
        return (f'backend {name!r} needs the {spec.runtime!r} package, which is not '
                f"installed: pip install 'smmcl_ros[{spec.extra}]' (or pip install "
                f'{spec.runtime})')
    if precision not in spec.precisions:
        return (f'backend {name!r} does not run precision {precision!r} '
                f'(it runs {", ".join(spec.precisions)})')
    if spec.precision_check:
        check = getattr(importlib.import_module(spec.module), spec.precision_check)
        return check(precision)
    return None


def resolve_backend(backend: str, device: torch.device, precision: str = 'fp32',
                    onnx_only: bool = False) -> str:
    """The concrete backend for ``backend`` (``'auto'`` or a name from :data:`BACKENDS`).

    Args:
        backend: Requested backend.
        device: Resolved torch device.
        precision: Requested precision; ``auto`` skips engines that cannot run it.
        onnx_only: The model is an ONNX file, so ``torch`` cannot run it.

    Raises:
        ValueError: Unknown name (the message lists the valid ones), or torch asked to run an
            ONNX file.
        EngineUnavailableError: An explicitly requested engine is not installed (the message
            names the pip extra), runs on another device or cannot run ``precision``; or
            ``auto`` found no engine for an ONNX file.
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown backend {backend!r}; valid: {", ".join(BACKENDS)}')
    device = torch.device(device)
    if backend == 'torch':
        if onnx_only:
            raise ValueError("backend 'torch' runs checkpoints (.pth), not ONNX files; use "
                             f'one of {", ".join(ENGINES)} or auto')
        return 'torch'
    if backend != 'auto':
        reason = _unusable(backend, device, precision)
        if reason is not None:
            raise EngineUnavailableError(reason)
        return backend
    reasons = []
    for name in AUTO_ORDER.get(device.type, ('torch',)):
        if name == 'torch':
            if not onnx_only:
                return 'torch'
            continue
        reason = _unusable(name, device, precision)
        if reason is None:
            return name
        reasons.append(reason)
    raise EngineUnavailableError('no engine can run this ONNX file here: ' + '; '.join(reasons))


def create_engine(name: str, onnx_path: Union[str, os.PathLike], device: torch.device,
                  precision: str, num_classes: int,
                  cache_dir: Optional[Union[str, os.PathLike]] = None) -> Engine:
    """Build engine ``name`` (already checked by :func:`resolve_backend`) on ``onnx_path``."""
    from smmcl_core.engines.cache import resolve_cache_dir

    spec = ENGINES[name]
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(Path(onnx_path), precision, torch.device(device), num_classes,
               cache_dir=resolve_cache_dir(cache_dir))

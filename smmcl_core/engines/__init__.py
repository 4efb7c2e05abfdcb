"""Inference engines behind ``Segmenter``: one explicit table, each runtime imported lazily.

``torch`` (:class:`~smmcl_core.engines.torch_engine.TorchEngine`) runs the network eagerly (no
export). The others run the ONNX graph that ``smmcl-export`` writes, exported once per
checkpoint and cached (``smmcl_core.engines.cache``). :func:`engine_from_checkpoint`
(``engines.load``) builds any of them from a checkpoint:

============  ======  =================  ====================  ==================
backend       device  precisions         pip extra             runtime module
============  ======  =================  ====================  ==================
torch         any     fp32, fp16, bf16   ``smmcl_ros[torch]``        torch [2]
openvino      CPU     fp32, bf16 [1]     ``smmcl_ros[openvino]``     openvino
onnxruntime   CPU     fp32               ``smmcl_ros[onnxruntime]``  onnxruntime
tensorrt      CUDA    fp32, fp16         ``smmcl_ros[tensorrt]``     tensorrt
============  ======  =================  ====================  ==================

[1] bf16 where the CPU has native bf16 (AVX512-BF16 or AMX).
[2] fp16 / bf16 as CUDA autocast; on CPU they fall back to fp32 with a warning.

``auto`` picks the first usable entry of :data:`AUTO_ORDER` for the device: on CPU OpenVINO,
then ONNX Runtime, then torch; on CUDA TensorRT, then torch. An engine that cannot run the
requested precision is skipped by ``auto``. Nothing here imports a runtime until an engine of
that kind is created, so a missing runtime never affects torch users, and nothing here imports
torch: OpenVINO and ONNX Runtime on an exported graph run without it (``Segmenter`` then
predicts in numpy, ``smmcl_core.inference_np``).
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from smmcl_core.engines.base import Engine, EngineUnavailableError
from smmcl_core.utils.devices import Device

__all__ = ['AUTO_ORDER', 'BACKENDS', 'ENGINES', 'Engine', 'EngineSpec', 'EngineUnavailableError',
           'ONNX_ENGINES', 'PRECISIONS', 'as_device', 'available', 'create_engine',
           'missing_runtime', 'resolve_backend']


@dataclass(frozen=True)
class EngineSpec:
    """Where an engine lives and what it needs."""

    module: str  # smmcl module holding the engine class
    cls: str  # class name
    runtime: str  # third-party module that must be importable
    extra: str  # pip extra that installs it
    device: str  # 'cpu', 'cuda' or 'any'
    precisions: Tuple[str, ...]
    # 'function' in ``module`` returning why a listed precision cannot run here, or None.
    precision_check: Optional[str] = None
    onnx: bool = True  # runs the exported ONNX graph (False: the torch network itself)


ENGINES: Dict[str, EngineSpec] = {
    'torch': EngineSpec('smmcl_core.engines.torch_engine', 'TorchEngine', 'torch', 'torch', 'any',
                        ('fp32', 'fp16', 'bf16'), onnx=False),
    'openvino': EngineSpec('smmcl_core.engines.openvino_engine', 'OpenVINOEngine', 'openvino',
                           'openvino', 'cpu', ('fp32', 'bf16'), 'supported_precision'),
    'onnxruntime': EngineSpec('smmcl_core.engines.onnxruntime_engine', 'OnnxRuntimeEngine',
                              'onnxruntime', 'onnxruntime', 'cpu', ('fp32',)),
    'tensorrt': EngineSpec('smmcl_core.engines.tensorrt_engine', 'TensorRTEngine', 'tensorrt',
                           'tensorrt', 'cuda', ('fp32', 'fp16')),
}
BACKENDS: Tuple[str, ...] = ('auto',) + tuple(ENGINES)
ONNX_ENGINES: Tuple[str, ...] = tuple(name for name, spec in ENGINES.items() if spec.onnx)
#: Every precision some engine runs (the ``--precision`` choices).
PRECISIONS: Tuple[str, ...] = ENGINES['torch'].precisions
AUTO_ORDER: Dict[str, Tuple[str, ...]] = {
    'cpu': ('openvino', 'onnxruntime', 'torch'),
    'cuda': ('tensorrt', 'torch'),
}


def available(name: str) -> bool:
    """Whether the runtime of engine ``name`` is installed (without importing it)."""
    try:
        return importlib.util.find_spec(ENGINES[name].runtime) is not None
    except (ImportError, ValueError):  # a broken or blocked package counts as missing
        return False


def as_device(device: Any) -> Any:
    """A device name -> a torch-free ``Device``; a ``torch.device`` or ``Device`` as is."""
    if not isinstance(device, str):
        return device
    kind, _, index = device.partition(':')
    return Device(kind, int(index) if index else None)


def missing_runtime(name: str) -> str:
    """The message for engine ``name`` whose runtime is not installed (names the extra)."""
    spec = ENGINES[name]
    return (f'backend {name!r} needs the {spec.runtime!r} package, which is not '
            f"installed: pip install 'smmcl_ros[{spec.extra}]' (or pip install "
            f'{spec.runtime})')


def _unusable(name: str, device: Any, precision: str) -> Optional[str]:
    """Why engine ``name`` cannot serve (device, precision) here, or None."""
    spec = ENGINES[name]
    if spec.device != 'any' and device.type != spec.device:
        return f"backend {name!r} runs on {spec.device.upper()}, not on device '{device}'"
    if not available(name):
        return missing_runtime(name)
    if precision not in spec.precisions:
        return (f'backend {name!r} does not run precision {precision!r} '
                f'(it runs {", ".join(spec.precisions)})')
    if spec.precision_check:
        check = getattr(importlib.import_module(spec.module), spec.precision_check)
        return check(precision)
    return None


def resolve_backend(backend: str, device: Any, precision: str = 'fp32',
                    onnx_only: bool = False) -> str:
    """The concrete backend for ``backend`` (``'auto'`` or a name from :data:`BACKENDS`).

    Args:
        backend: Requested backend.
        device: Resolved device (``torch.device``, ``utils.devices.Device`` or its name).
        precision: Requested precision; ``auto`` skips engines that cannot run it.
        onnx_only: The model is an ONNX file, so ``torch`` cannot run it.

    Raises:
        ValueError: Unknown name (the message lists the valid ones), or torch asked to run an
            ONNX file.
        EngineUnavailableError: An explicitly requested engine is not installed (the message
            names the pip extra), runs on another device or cannot run ``precision``; or
            ``auto`` found no engine for an ONNX file (or none at all: no torch either).
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown backend {backend!r}; valid: {", ".join(BACKENDS)}')
    device = as_device(device)
    if backend != 'auto' and not ENGINES[backend].onnx:
        if onnx_only:
            raise ValueError(f'backend {backend!r} runs checkpoints (.pth), not ONNX files; '
                             f'use one of {", ".join(ONNX_ENGINES)} or auto')
        if not available(backend):
            raise EngineUnavailableError(missing_runtime(backend))
        return backend  # torch: half precisions fall back to fp32 off CUDA (with a warning)
    if backend != 'auto':
        reason = _unusable(backend, device, precision)
        if reason is not None:
            raise EngineUnavailableError(reason)
        return backend
    reasons = []
    for name in AUTO_ORDER.get(device.type, ('torch',)):
        if not ENGINES[name].onnx:
            if not onnx_only:
                if available(name):
                    return name
                reasons.append(missing_runtime(name))
            continue
        reason = _unusable(name, device, precision)
        if reason is None:
            return name
        reasons.append(reason)
    what = 'this ONNX file' if onnx_only else 'this checkpoint'
    raise EngineUnavailableError(f'no engine can run {what} here: ' + '; '.join(reasons))


def create_engine(name: str, onnx_path: Union[str, os.PathLike], device: Any,
                  precision: str, num_classes: int,
                  cache_dir: Optional[Union[str, os.PathLike]] = None) -> Engine:
    """Build ONNX engine ``name`` (checked by :func:`resolve_backend`) on ``onnx_path``.

    The torch engine wraps a network instead: ``TorchEngine(network, ...)`` or
    ``engines.load.engine_from_checkpoint``.
    """
    from smmcl_core.engines.cache import resolve_cache_dir

    spec = ENGINES[name]
    if not spec.onnx:
        raise ValueError(f'backend {name!r} runs a network, not an ONNX file')
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(Path(onnx_path), precision, as_device(device), num_classes,
               cache_dir=resolve_cache_dir(cache_dir))

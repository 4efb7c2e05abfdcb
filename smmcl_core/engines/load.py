"""A ready engine from a checkpoint (``.pth``) or an exported graph (``.onnx``), any backend.

The one place that turns "this file, this backend" into an :class:`Engine`: the torch
network rebuilt from the checkpoint (``TorchEngine``), or an ONNX engine on the cached graph
(exported on first use) or on the given ``.onnx`` file.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple, Union

import torch

from smmcl_core.checkpoint import load_checkpoint
from smmcl_core.engines import create_engine, Engine, resolve_backend
from smmcl_core.engines.cache import cached_graph
from smmcl_core.engines.graph import read_onnx_props
from smmcl_core.engines.torch_engine import TorchEngine
from smmcl_core.models.loading import model_from_state

PathLike = Union[str, os.PathLike]


def engine_from_checkpoint(path: PathLike, backend: str, device: torch.device,
                           precision: str = 'fp32', cache_dir: Optional[PathLike] = None,
                           channels_last: Optional[bool] = None
                           ) -> Tuple[Engine, Dict[str, Any]]:
    """``(engine, meta)`` for ``path`` run by ``backend`` (``'auto'`` or a table name).

    Args:
        path: smmcl checkpoint, or an ONNX file written by ``smmcl-export`` (its metadata
            carries the meta; ONNX engines only).
        backend: See ``smmcl_core.engines.resolve_backend``.
        device: Resolved torch device.
        precision: Requested precision.
        cache_dir: Engine cache folder.
        channels_last: Memory format of the torch engine (ignored by the others).

    Raises:
        See ``Segmenter.from_checkpoint``.
    """
    if str(path).endswith('.onnx'):
        meta, _ = read_onnx_props(path)
        name = resolve_backend(backend, device, precision, onnx_only=True)
        return create_engine(name, path, device, precision, int(meta['num_classes']),
                             cache_dir), meta
    state = load_checkpoint(path, map_location='cpu', require=('model', 'meta'))
    meta = state['meta']
    num_classes = int(meta['num_classes'])
    name = resolve_backend(backend, device, precision)
    if name == TorchEngine.name:
        return TorchEngine(model_from_state(state, path), precision, device, num_classes,
                           channels_last), meta
    graph = cached_graph(path, name, cache_dir, state=state)
    try:
        engine = create_engine(name, graph, device, precision, num_classes, cache_dir)
    except Exception:  # noqa: B902 - a cached graph the runtime rejects: export again
        graph = cached_graph(path, name, cache_dir, state=state, rebuild=True)
        engine = create_engine(name, graph, device, precision, num_classes, cache_dir)
    return engine, meta

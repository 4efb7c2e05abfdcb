"""A ready engine from a checkpoint (``.pth``) or an exported graph (``.onnx``), any backend.

The one place that turns "this file, this backend" into an :class:`Engine`: the torch
network rebuilt from the checkpoint (``TorchEngine``), or an ONNX engine on the given
``.onnx`` file or on the checkpoint's cached graph.

torch is imported only where it is needed: for ``backend: torch``, and to export a checkpoint
whose graph is not cached yet (once; the network and the loaded weights are released right
after). An ``.onnx`` file, or a checkpoint with a cached graph, run by OpenVINO or ONNX Runtime
never imports it: the cache is found from the checkpoint's bytes and the meta read from the
graph's metadata.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any, Dict, Optional, Tuple, Union

from smmcl_core.engines import create_engine, Engine, ENGINES, resolve_backend
from smmcl_core.engines.cache import cached_graph, find_cached_graph
from smmcl_core.engines.onnx_meta import read_onnx_props
from smmcl_core.utils.devices import CPU, resolve_engine_device
from smmcl_core.utils.optional import import_torch

LOG = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
EXPORT_HINT = (', or use as the checkpoint the .onnx file smmcl-export writes (on a machine '
               'with torch)')


def engine_device(device: Any, backend: str) -> Any:
    """The device ``backend`` runs on: ``'auto'`` is the CPU for the CPU-only engines.

    Otherwise :func:`smmcl_core.utils.devices.resolve_engine_device` (torch only for CUDA).
    """
    if isinstance(device, str) and device == 'auto' and backend in ENGINES \
            and ENGINES[backend].device == 'cpu':
        return CPU
    return resolve_engine_device(device)


def engine_from_checkpoint(path: PathLike, backend: str, device: Any,
                           precision: str = 'fp32', cache_dir: Optional[PathLike] = None,
                           channels_last: Optional[bool] = None
                           ) -> Tuple[Engine, Dict[str, Any]]:
    """``(engine, meta)`` for ``path`` run by ``backend`` (``'auto'`` or a table name).

    Args:
        path: smmcl checkpoint, or an ONNX file written by ``smmcl-export`` (its metadata
            carries the meta; ONNX engines only).
        backend: See ``smmcl_core.engines.resolve_backend``.
        device: Device name (``'auto'``, ``'cpu'``, ``'cuda:1'``) or a resolved device (see
            :func:`engine_device`).
        precision: Requested precision.
        cache_dir: Engine cache folder.
        channels_last: Memory format of the torch engine (ignored by the others).

    Raises:
        See ``Segmenter.from_checkpoint``; ``MissingExtraError`` (an ``ImportError``) when a
        checkpoint must be exported and torch is not installed (names the ``export`` extra).
    """
    device = engine_device(device, backend)
    if str(path).endswith('.onnx'):
        meta, _ = read_onnx_props(path)
        name = resolve_backend(backend, device, precision, onnx_only=True)
        return create_engine(name, path, device, precision, int(meta['num_classes']),
                             cache_dir), meta
    name = resolve_backend(backend, device, precision)
    if not ENGINES[name].onnx:
        return _torch_engine(path, precision, device, channels_last)
    graph = find_cached_graph(path, name, cache_dir)
    if graph is not None:
        meta, _ = read_onnx_props(graph)
        try:
            return create_engine(name, graph, device, precision, int(meta['num_classes']),
                                 cache_dir), meta
        except Exception as exc:  # noqa: B902 - a cached graph the runtime rejects
            LOG.warning('engine cache %s: %s rejects it (%s); exporting again', graph, name, exc)
    return _exported_engine(path, name, device, precision, cache_dir, rebuild=graph is not None)


def _load(path: PathLike, purpose: str, extra: str, hint: str = '') -> Dict[str, Any]:
    import_torch(purpose, extra, hint)
    from smmcl_core.checkpoint import load_checkpoint

    return load_checkpoint(path, map_location='cpu', require=('model', 'meta'))


def _torch_engine(path: PathLike, precision: str, device: Any,
                  channels_last: Optional[bool]) -> Tuple[Engine, Dict[str, Any]]:
    state = _load(path, "backend 'torch'", 'torch')
    from smmcl_core.engines.torch_engine import TorchEngine
    from smmcl_core.models.loading import model_from_state

    meta = state['meta']
    return TorchEngine(model_from_state(state, path), precision, device,
                       int(meta['num_classes']), channels_last), meta


def _exported_engine(path: PathLike, name: str, device: Any, precision: str,
                     cache_dir: Optional[PathLike], rebuild: bool
                     ) -> Tuple[Engine, Dict[str, Any]]:
    """Export ``path`` (torch, once), build engine ``name`` on it, release the torch side."""
    state = _load(path, f'exporting {path} for backend {name!r} (no cached graph)', 'export',
                  EXPORT_HINT)
    meta = state['meta']
    num_classes = int(meta['num_classes'])
    graph = cached_graph(path, name, cache_dir, state=state, rebuild=rebuild)
    try:
        engine = create_engine(name, graph, device, precision, num_classes, cache_dir)
    except Exception:  # noqa: B902 - a cached graph the runtime rejects: export again
        graph = cached_graph(path, name, cache_dir, state=state, rebuild=True)
        engine = create_engine(name, graph, device, precision, num_classes, cache_dir)
    del state  # the weights; the exported network went with cached_graph's frame
    gc.collect()
    return engine, meta

"""Export once, reuse after: the ONNX graph of a checkpoint, cached on disk and verified.

Layout under the cache folder (``cache_dir`` argument, else ``$SMMCL_CACHE_DIR``, else
``$XDG_CACHE_HOME/smmcl`` or ``~/.cache/smmcl``)::

    graphs/<preset>-<key>.onnx   the graph smmcl-export writes (dynamic height and width)
    graphs/<preset>-<key>.json   manifest: the key's fields and the ONNX file's SHA-256
    <engine>/...                 engine artefacts (OpenVINO compiled blobs, TensorRT plans)

The key is a hash of the checkpoint's content (SHA-256 of the file bytes, not its name or
time), the graph's input size (``dynamic``: one graph serves every image size), the opset,
the graph version of this code and the engine that asked for it. A cached file is used only
when its manifest matches the key and the file's hash matches the manifest; anything else
(a missing, half-written, truncated, edited or foreign file) is rebuilt, never trusted.
Files are written to a temporary name and renamed into place, so concurrent processes
(several nodes on one robot) never see a partial file. The folder is bounded: after each
write the least recently used artefacts are deleted to stay under ``$SMMCL_CACHE_MAX_MB``
(:mod:`smmcl_core.engines.cache_size`).

:func:`find_cached_graph` looks a graph up from the checkpoint's bytes alone (no torch: the
checkpoint is not unpickled, the meta comes from the graph's metadata); only a miss loads the
checkpoint and exports (torch, the ``export`` extra).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
import time
from typing import Any, Callable, Dict, Optional, Union

from smmcl_core.engines.cache_size import touch, trim_cache
from smmcl_core.engines.onnx_meta import GRAPH_VERSION, MIN_OPSET
from smmcl_core.utils.files import atomic_write, sha256_file
from smmcl_core.utils.optional import import_torch

LOG = logging.getLogger(__name__)
CACHE_ENV = 'SMMCL_CACHE_DIR'
#: Size of the example input the dynamic graph is traced with (any size works afterwards).
TRACE_HW = (256, 320)


def default_cache_dir() -> Path:
    """``$SMMCL_CACHE_DIR``, else ``$XDG_CACHE_HOME/smmcl``, else ``~/.cache/smmcl``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base).expanduser() / 'smmcl'


def resolve_cache_dir(cache_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """``cache_dir`` if given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


# The engines' name for the one file hash (tensorrt_engine imports it from here).
file_sha256 = sha256_file


def graph_key(checkpoint_sha256: str, engine: str, opset: int = MIN_OPSET,
              size: str = 'dynamic') -> Dict[str, Any]:
    """The fields a cached graph must match."""
    return {'checkpoint_sha256': checkpoint_sha256, 'size': size, 'opset': int(opset),
            'graph_version': GRAPH_VERSION, 'engine': engine}


def _key_id(key: Dict[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:20]


def _valid(path: Path, manifest_path: Path, key: Dict[str, Any]) -> Optional[str]:
    """None when the cached file can be used, else why not."""
    if not path.is_file() or not manifest_path.is_file():
        return 'not cached'
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return f'unreadable manifest ({exc})'
    if not isinstance(manifest, dict) or manifest.get('key') != key:
        return 'manifest does not match the key'
    if file_sha256(path) != manifest.get('sha256'):
        return 'file does not match its manifest (corrupt or modified)'
    return None


def cached_artifact(path: Path, key: Dict[str, Any], build: Callable[[Path], None],
                    rebuild: bool = False) -> Path:
    """``path``, built by ``build(tmp_path)`` unless a file verified against ``key`` exists.

    The manifest ``path.with_suffix('.json')`` records the key and the file's SHA-256.
    ``path`` lies in a subfolder of the cache folder (``graphs/``, ``<engine>/``), which is
    trimmed to its size bound after a build.
    """
    manifest_path = path.with_suffix('.json')
    reason = 'rebuild requested' if rebuild else _valid(path, manifest_path, key)
    if reason is None:
        touch(path)
        return path
    if reason != 'not cached':
        LOG.warning('engine cache %s: %s; building it again', path, reason)
    began = time.time()
    atomic_write(path, build)
    manifest = {'key': key, 'sha256': file_sha256(path)}
    atomic_write(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
    trim_cache(path.parent.parent, used_since=began)
    return path


def find_cached_graph(checkpoint: Union[str, os.PathLike], engine: str,
                      cache_dir: Optional[Union[str, os.PathLike]] = None,
                      opset: int = MIN_OPSET) -> Optional[Path]:
    """The verified cached graph of ``checkpoint`` for ``engine``, or None (torch-free).

    Found by the key alone (the file name's preset part is not needed), so the checkpoint is
    hashed but never loaded.
    """
    key = graph_key(file_sha256(Path(checkpoint)), engine, opset)
    folder = resolve_cache_dir(cache_dir) / 'graphs'
    for path in sorted(folder.glob(f'*-{_key_id(key)}.onnx')):
        if _valid(path, path.with_suffix('.json'), key) is None:
            touch(path)
            return path
    return None


def cached_graph(checkpoint: Union[str, os.PathLike], engine: str,
                 cache_dir: Optional[Union[str, os.PathLike]] = None, opset: int = MIN_OPSET,
                 state: Optional[Dict[str, Any]] = None, rebuild: bool = False) -> Path:
    """The dynamic-size ONNX graph of ``checkpoint``, exported on first use.

    Args:
        checkpoint: smmcl checkpoint file.
        engine: Engine that will run the graph (part of the key).
        cache_dir: Cache folder (see the module docstring for the default).
        opset: ONNX opset.
        state: The already loaded checkpoint (saves loading it again on a cache miss).
        rebuild: Export even when a valid cached graph exists (e.g. the engine failed to
            load it).

    Returns:
        Path of the verified ONNX file.

    Raises:
        MissingExtraError: (an ``ImportError``) exporting needs torch and it is not installed
            (the message names the ``export`` extra).
    """
    checkpoint = Path(checkpoint)
    digest = file_sha256(checkpoint)
    key = graph_key(digest, engine, opset)
    if state is None:
        import_torch(f'exporting {checkpoint} for backend {engine!r} (no cached graph)',
                     'export')
        from smmcl_core.checkpoint import load_checkpoint

        state = load_checkpoint(checkpoint, map_location='cpu', require=('model', 'meta'))
    meta = state['meta']
    path = resolve_cache_dir(cache_dir) / 'graphs' / f'{meta["preset"]}-{_key_id(key)}.onnx'

    def build(tmp: Path) -> None:
        import_torch(f'exporting {checkpoint} for backend {engine!r} (no cached graph)',
                     'export')
        from smmcl_core.engines.graph import example_inputs, InferenceGraph, write_onnx
        from smmcl_core.models.loading import model_from_state

        model = model_from_state(state, checkpoint)
        LOG.info('exporting %s to %s (once; cached for later runs)', checkpoint, path)
        write_onnx(InferenceGraph(model), example_inputs(1, *TRACE_HW), tmp, meta, opset,
                   dynamic_hw=True, graph_info={'checkpoint_sha256': digest})

    return cached_artifact(path, key, build, rebuild)


def artifact_path(cache_dir: Optional[Union[str, os.PathLike]], engine: str,
                  key: Dict[str, Any], suffix: str) -> Path:
    """Where an engine keeps an artefact for ``key`` (e.g. a TensorRT plan)."""
    return resolve_cache_dir(cache_dir) / engine / f'{_key_id(key)}{suffix}'

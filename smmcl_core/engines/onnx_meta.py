"""The smmcl metadata of an exported ONNX graph, read without torch.

``engines.graph.write_onnx`` stores two ``metadata_props`` entries: ``smmcl_meta`` (the
checkpoint's whole ``meta`` dict as JSON) and ``smmcl_graph`` (checkpoint digest, opset,
dynamic axes, :data:`GRAPH_VERSION`). :func:`read_onnx_props` reads them back; it needs only
the ``onnx`` package, so an exported graph can be run by an engine on a torch-free install.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

from smmcl_core.meta import META_KEYS

MIN_OPSET = 17
META_PROP = 'smmcl_meta'
GRAPH_PROP = 'smmcl_graph'
#: Bumped whenever the exported graph changes, so cached graphs of older code are rebuilt.
GRAPH_VERSION = 1


def read_onnx_props(path: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(meta, graph_info)`` stored in an exported ONNX file (graph_info may be empty).

    Only the model header is parsed (no weights are loaded).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not an ONNX file, or it carries no smmcl meta (not written by
            ``smmcl-export``), or the meta lacks keys; the message names the file.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'ONNX file not found: {path}')
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ValueError(f'{path} is not a readable ONNX file: {exc}') from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if META_PROP not in props:
        raise ValueError(f'{path} carries no {META_PROP!r} metadata: export the checkpoint '
                         'with smmcl-export (it embeds classes, palette and normalisation)')
    try:
        meta = json.loads(props[META_PROP])
        info = json.loads(props.get(GRAPH_PROP, '{}'))
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: unreadable smmcl metadata: {exc}') from exc
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f'{path}: {META_PROP} lacks key(s): {", ".join(missing)}')
    return meta, info

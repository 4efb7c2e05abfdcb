"""The smmcl metadata of an exported ONNX graph, read without torch.

``engines.graph.write_onnx`` stores two ``metadata_props`` entries: ``smmcl_meta`` (the
checkpoint's whole ``meta`` dict as JSON) and ``smmcl_graph`` (checkpoint digest, opset,
dynamic axes, :data:`GRAPH_VERSION`). :func:`read_onnx_props` reads them back from the
protobuf wire format (``engines.onnx_props``): no torch and no ``onnx`` package, so an exported
graph can be run by an engine on an install that has only that engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

from smmcl_core.engines.onnx_props import read_metadata_props
from smmcl_core.meta import META_KEYS

MIN_OPSET = 17
META_PROP = 'smmcl_meta'
GRAPH_PROP = 'smmcl_graph'
#: Bumped whenever the exported graph changes, so cached graphs of older code are rebuilt.
GRAPH_VERSION = 1


def read_onnx_props(path: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(meta, graph_info)`` stored in an exported ONNX file (graph_info may be empty).

    Only the metadata entries are read (the graph and its weights are skipped unread).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not an ONNX file, or it carries no smmcl meta (not written by
            ``smmcl-export``), or the meta lacks keys; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'ONNX file not found: {path}')
    try:
        props = read_metadata_props(path)
    except ValueError as exc:  # WireFormatError, or an entry that is not UTF-8
        raise ValueError(f'{path} is not a readable ONNX file: {exc}') from exc
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

"""The exported inference graph: ``(rgb, aux) -> logits`` with its weights folded for engines.

``smmcl-export`` and the engine cache both write their ONNX files through :func:`write_onnx`,
so every engine runs the graph a user can also export by hand.

Engine-friendly changes against the training network (same function, checked by the tests):

- ``MLPHead`` composes each stage's embedding with its slice of the fuse conv into one 1x1
  conv on every forward (``w = W_fuse_i @ W_i``). Exported as is, those matrix products stay
  in the graph as computation on every frame and hide the real conv weights from int8
  quantisers; :class:`FoldedMLPHead` computes them once, at export.
- The aux input is always three channels in the graph; ``Engine.forward`` replicates a
  one-channel aux before the graph, as ``SMMCLNet.forward`` does inside the network.

ONNX metadata (``metadata_props``): ``smmcl_meta`` holds the checkpoint's whole ``meta`` dict
as JSON (every key, including ones added later, so an exported file needs no sidecar), and
``smmcl_graph`` describes the graph (checkpoint digest, opset, dynamic axes, graph version).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple
import warnings

import torch
from torch import nn
import torch.nn.functional as F

# The metadata contract and its reader are torch-free (engines.onnx_meta); re-exported here.
from smmcl_core.engines.onnx_meta import (GRAPH_PROP, GRAPH_VERSION, META_PROP,  # noqa: F401
                                          MIN_OPSET, read_onnx_props)
from smmcl_core.models.heads import MLPHead


class FoldedMLPHead(nn.Module):
    """``MLPHead`` with the per-stage embedding and fuse-conv slice pre-multiplied (eval only).

    Args:
        head: A trained ``MLPHead``; its weights are copied, not shared.
    """

    def __init__(self, head: MLPHead) -> None:
        super().__init__()
        n = len(head.in_channels)
        with torch.no_grad():
            # The fuse conv sees the concat in reverse stage order [c4, c3, c2, c1].
            fuse_w = head.linear_fuse.weight.flatten(1).split(head.embed_dim, dim=1)[::-1]
            self.stage_convs = nn.ModuleList()
            for i in range(n):
                lin = head.linear_c[i]
                conv = nn.Conv2d(head.in_channels[i], head.embed_dim, 1)
                conv.weight.copy_((fuse_w[i] @ lin.weight.flatten(1))[:, :, None, None])
                bias = fuse_w[i] @ lin.bias
                if i == 0:  # the fuse conv's own bias, added once
                    bias = bias + head.linear_fuse.bias
                conv.bias.copy_(bias)
                self.stage_convs.append(conv)
        self.fuse_norm = copy.deepcopy(head.fuse_norm)
        self.linear_pred = copy.deepcopy(head.linear_pred)

    def forward(self, feats) -> torch.Tensor:
        """Per-stage features -> logits (B, K, H/4, W/4) at the first stage's size."""
        size = feats[0].shape[2:]
        out = None
        for conv, feat in zip(self.stage_convs, feats):
            y = conv(feat)  # (B, E, h_i, w_i)
            if y.shape[2:] != size:
                y = F.interpolate(y, size=size, mode='bilinear', align_corners=False)
            out = y if out is None else out + y
        return self.linear_pred(F.relu(self.fuse_norm(out)))


class InferenceGraph(nn.Module):
    """``(rgb (B,3,H,W), aux (B,3,H,W)) -> logits (B,K,H,W)`` of an eval-mode copy.

    Args:
        model: ``SMMCLNet``; it is deep-copied, so the caller's model is left untouched.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        model = copy.deepcopy(model).float().eval()
        if isinstance(getattr(model, 'decoder', None), MLPHead):
            model.decoder = FoldedMLPHead(model.decoder)
        self.model = model

    def forward(self, rgb: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W), (B,3,H,W) -> (B,K,H,W)."""
        return self.model(rgb, aux)


def example_inputs(batch: int, height: int, width: int, seed: int = 0
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalised-looking random inputs (standard normal)."""
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch, 3, height, width, generator=gen)
    aux = torch.randn(batch, 3, height, width, generator=gen)
    return rgb, aux


def write_onnx(module: nn.Module, inputs: Tuple[torch.Tensor, torch.Tensor], out: Path,
               meta: Mapping[str, Any], opset: int = MIN_OPSET, dynamic_hw: bool = True,
               graph_info: Optional[Mapping[str, Any]] = None) -> None:
    """TorchScript-based ONNX export (no onnxscript needed) plus the meta as metadata.

    Args:
        module: ``(rgb, aux) -> logits`` module (normally an :class:`InferenceGraph`).
        inputs: Example inputs; their size is the graph's size when ``dynamic_hw`` is off.
        out: File to write.
        meta: Checkpoint meta, stored whole as JSON in ``smmcl_meta``.
        opset: ONNX opset (>= ``MIN_OPSET``).
        dynamic_hw: Dynamic height and width axes (the batch axis is always dynamic).
        graph_info: Extra fields for ``smmcl_graph`` (e.g. the checkpoint digest).

    Raises:
        ValueError: ``opset`` too old.
    """
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f'--opset must be >= {MIN_OPSET}, got {opset}')
    axes = {0: 'batch', 2: 'height', 3: 'width'} if dynamic_hw else {0: 'batch'}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # tracer and deprecation chatter
        torch.onnx.export(module, inputs, str(out), dynamo=False, opset_version=opset,
                          input_names=['rgb', 'aux'], output_names=['logits'],
                          dynamic_axes={'rgb': axes, 'aux': axes, 'logits': axes},
                          do_constant_folding=True)
    proto = onnx.load(str(out))
    info = {'graph_version': GRAPH_VERSION, 'opset': int(opset), 'dynamic_hw': bool(dynamic_hw),
            'height': int(inputs[0].shape[2]), 'width': int(inputs[0].shape[3])}
    info.update(graph_info or {})
    for key, value in ((META_PROP, dict(meta)), (GRAPH_PROP, info)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))

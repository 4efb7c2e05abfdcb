"""ImageNet weights from the official files into both encoder streams.

Key names follow the official checkpoints:
- SegNeXt ``mscan_*.pth`` / SegFormer ``mit_b*.pth``: ``patch_embed{i}.*``,
  ``block{i}.{j}.*``, ``norm{i}.*`` (i = 1..4), mapped to ``stages.{i-1}.patch_embed.*``,
  ``stages.{i-1}.blocks.{j}.*``, ``stages.{i-1}.norm.*``; the ImageNet classifier ``head.*``
  is ignored.
- timm ResNet: ``conv1.*``, ``bn1.*``, ``layer1.*`` -> ``stages.0.*``, ``layer{k}.*`` ->
  ``stages.{k-1}.layer{k}.*``; the classifier ``fc.*`` is ignored.
A leading ``backbone.`` or ``module.`` (mmseg / DDP exports) is stripped.
"""

import os
import re
from typing import Dict, Optional

import torch
import torch.nn as nn

from smmcl_core.models.mit import MiT
from smmcl_core.models.mscan import MSCAN
from smmcl_core.models.resnet import build_timm_resnet, ResNetEncoder
from smmcl_core.utils.torch_load import load_weights_only

_TRANSFORMER_KEY = re.compile(r'^(patch_embed|block|norm)([1-4])\.(.+)$')
_LOCAL_TRANSFORMER_KEY = re.compile(r'^stages\.([0-3])\.(patch_embed|blocks|norm)\.(.+)$')
_RESNET_LAYER_KEY = re.compile(r'^layer([1-4])\.')
_LOCAL_RESNET_KEY = re.compile(r'^stages\.[0-3]\.(.+)$')
_PART_TO_LOCAL = {'patch_embed': 'patch_embed', 'block': 'blocks', 'norm': 'norm'}
_PART_TO_OFFICIAL = {v: k for k, v in _PART_TO_LOCAL.items()}
_IGNORED_PREFIXES = {'transformer': ('head.',), 'resnet': ('fc.',)}
_STRIP_PREFIXES = ('module.', 'backbone.')


class PretrainedMismatchError(ValueError):
    """A weights file does not match the encoder (missing / unexpected keys, shapes)."""


def stream_family(stream: nn.Module) -> str:
    """'transformer' for MSCAN / MiT streams, 'resnet' for ResNet streams."""
    if isinstance(stream, (MSCAN, MiT)):
        return 'transformer'
    if isinstance(stream, ResNetEncoder):
        return 'resnet'
    raise TypeError(f'no pretrained key mapping for encoder type {type(stream).__name__}')


def official_to_local(family: str, key: str) -> Optional[str]:
    """Map an official checkpoint key to the stream's state-dict key (None if it has none)."""
    if family == 'transformer':
        m = _TRANSFORMER_KEY.match(key)
        if m is None:
            return None
        part, idx, rest = m.groups()
        return f'stages.{int(idx) - 1}.{_PART_TO_LOCAL[part]}.{rest}'
    if family == 'resnet':
        if key.startswith(('conv1.', 'bn1.')):
            return f'stages.0.{key}'
        m = _RESNET_LAYER_KEY.match(key)
        return None if m is None else f'stages.{int(m.group(1)) - 1}.{key}'
    raise KeyError(f'unknown encoder family {family!r}')


def local_to_official(family: str, key: str) -> str:
    """Inverse of :func:`official_to_local` (stream state-dict key -> official key)."""
    if family == 'transformer':
        m = _LOCAL_TRANSFORMER_KEY.match(key)
        if m is None:
            raise KeyError(f'{key!r} is not an MSCAN/MiT stream key')
        idx, part, rest = m.groups()
        return f'{_PART_TO_OFFICIAL[part]}{int(idx) + 1}.{rest}'
    if family == 'resnet':
        m = _LOCAL_RESNET_KEY.match(key)
        if m is None:
            raise KeyError(f'{key!r} is not a ResNet stream key')
        return m.group(1)
    raise KeyError(f'unknown encoder family {family!r}')


def official_state_dict(stream: nn.Module) -> Dict[str, torch.Tensor]:
    """The stream's weights under the official key names (e.g. to export or test loading)."""
    family = stream_family(stream)
    return {local_to_official(family, k): v for k, v in stream.state_dict().items()}


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a weights file (tensors only), unwrapping ``state_dict`` / ``model``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'pretrained weights file not found: {path}')
    obj = load_weights_only(path, PretrainedMismatchError, 'pretrained weights')
    for wrapper in ('state_dict', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedMismatchError(f'{path}: not a state dict of tensors')
    out = {}
    for k, v in obj.items():
        for prefix in _STRIP_PREFIXES:
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def _short(keys) -> str:
    keys = sorted(keys)
    more = f' ... (+{len(keys) - 8} more)' if len(keys) > 8 else ''
    return ', '.join(keys[:8]) + more


def load_stream_weights(stream: nn.Module, official: Dict[str, torch.Tensor],
                        source: str = '<state dict>') -> None:
    """Load an official-key state dict into one stream, strictly.

    Raises:
        PretrainedMismatchError: naming the missing, unexpected or mis-shaped keys.
    """
    family = stream_family(stream)
    ignored = _IGNORED_PREFIXES[family]
    target = stream.state_dict()
    mapped, unexpected = {}, []
    for key, value in official.items():
        if key.startswith(ignored):
            continue
        local = official_to_local(family, key)
        if local is None or local not in target:
            unexpected.append(key)
        else:
            mapped[local] = value
    # BatchNorm's step counter is bookkeeping, not a weight: files often omit it.
    missing = [local_to_official(family, k) for k in target
               if k not in mapped and not k.endswith('num_batches_tracked')]
    shape_errors = [f'{local_to_official(family, k)}: file {tuple(v.shape)} vs model '
                    f'{tuple(target[k].shape)}'
                    for k, v in mapped.items() if v.shape != target[k].shape]
    problems = []
    if missing:
        problems.append(f'missing keys: {_short(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_short(unexpected)}')
    if shape_errors:
        problems.append(f'shape mismatches: {_short(shape_errors)}')
    if problems:
        raise PretrainedMismatchError(
            f'{source} does not match the {type(stream).__name__} encoder: '
            + '; '.join(problems))
    stream.load_state_dict(mapped, strict=False)


def load_pretrained(model: nn.Module, path: str, stream: str = 'both') -> None:
    """Load ImageNet weights into the vis and/or aux encoder stream of an SMMCLNet.

    Args:
        model: an :class:`~smmcl_core.models.network.SMMCLNet`.
        path: weights file (``mscan_*.pth``, ``mit_b*.pth``, timm ResNet state dict), or
            ``'timm'`` for a ResNet encoder to fetch timm's hub weights (needs network).
        stream: ``'both'``, ``'vis'`` or ``'aux'``.
    """
    if stream not in ('both', 'vis', 'aux'):
        raise ValueError(f"stream must be 'both', 'vis' or 'aux', got {stream!r}")
    vis, aux = model.encoder_streams()
    targets = {'both': (vis, aux), 'vis': (vis,), 'aux': (aux,)}[stream]
    if isinstance(path, str) and path == 'timm':
        if not isinstance(vis, ResNetEncoder):
            raise ValueError("pretrained='timm' is only available for ResNet encoders")
        weights = build_timm_resnet(vis.arch, pretrained=True).state_dict()
        source = f'timm hub {vis.arch}'
    else:
        weights = read_state_dict(path)
        source = os.fspath(path)
    for target in targets:
        load_stream_weights(target, weights, source)

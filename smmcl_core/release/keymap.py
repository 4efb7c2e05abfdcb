"""Released tensor names and shapes -> this package's network (palmdong/SMMCL ``epoch-N.pth``).

The released training engine (``SMMCL_LLRGBD/engine/engine.py``) saves
``{'model': state_dict, 'optimizer': ..., 'epoch': N, 'iteration': I}`` with the parameter
names of its ``EncoderDecoder`` (``backbone.*`` = the dual MSCAN with interaction and fusion
modules and both projectors, ``decode_head.*`` = LightHamHead); a DataParallel state dict adds
``module.``. :func:`map_release_state` renames every released tensor onto
``create_model(preset, K)``, strictly, and ``smmcl_core.release.importer`` writes a self-describing
checkpoint from it.

Released name -> this package (``i`` = stage 1..4, ``j`` = block)::

    backbone.patch_embed{i}.*          encoder.vis.stages.{i-1}.patch_embed.*
    backbone.patch_embed_other{i}.*    encoder.aux.stages.{i-1}.patch_embed.*
    backbone.block{i}.{j}.*            encoder.vis.stages.{i-1}.blocks.{j}.*
    backbone.block_other{i}.{j}.*      encoder.aux.stages.{i-1}.blocks.{j}.*
    backbone.norm{i}.*                 encoder.vis.stages.{i-1}.norm.*   (token LayerNorm ==
    backbone.norm_other{i}.*           encoder.aux.stages.{i-1}.norm.*    channel LayerNorm2d)
    backbone.module{i}.Spatial.*       encoder.interactions.{i-1}.spatial.*
    backbone.module{i}.Channel.*       encoder.interactions.{i-1}.channel.*
    backbone.fconv{i}.fusion_conv.0.*  encoder.fusions.{i-1}.fusion_conv.*
    backbone.projector_color.project.* projector_vis.*
    backbone.projector_other.project.* projector_aux.*
    decode_head.hamburger.ham_{in,out}.conv.*  decoder.hamburger.ham_{in,out}.*
    decode_head.{squeeze,align,conv_seg}.*     decoder.{squeeze,align,conv_seg}.*

The release does not store the NMF bases (its LightHamHead draws random ones at every
forward); the imported model keeps deterministic bases drawn from a fixed seed
(``importer.NMF_BASES_SEED``), so its predictions are one fixed draw of the released model's.
"""

from __future__ import annotations

from collections import OrderedDict
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from smmcl_core.checkpoint import CheckpointError
from smmcl_core.models.mscan import MSCAN_VARIANTS

# (MSCAN variant, LightHamHead channels) -> preset rebuilding exactly that network.
RELEASE_PRESETS = {('b', 512): 'smmcl_mscan_b', ('l', 512): 'smmcl_mscan_l_release'}

# (released name pattern, local template, first group is a stage number 1..4 -> index 0..3)
_RULES: List[Tuple[re.Pattern, str, bool]] = [(re.compile(p), t, staged) for p, t, staged in (
    (r'^backbone\.patch_embed([1-4])\.(.+)$', 'encoder.vis.stages.{0}.patch_embed.{1}', True),
    (r'^backbone\.patch_embed_other([1-4])\.(.+)$', 'encoder.aux.stages.{0}.patch_embed.{1}',
     True),
    (r'^backbone\.block([1-4])\.(\d+)\.(.+)$', 'encoder.vis.stages.{0}.blocks.{1}.{2}', True),
    (r'^backbone\.block_other([1-4])\.(\d+)\.(.+)$', 'encoder.aux.stages.{0}.blocks.{1}.{2}',
     True),
    (r'^backbone\.norm([1-4])\.(weight|bias)$', 'encoder.vis.stages.{0}.norm.{1}', True),
    (r'^backbone\.norm_other([1-4])\.(weight|bias)$', 'encoder.aux.stages.{0}.norm.{1}', True),
    (r'^backbone\.module([1-4])\.Spatial\.(.+)$', 'encoder.interactions.{0}.spatial.{1}', True),
    (r'^backbone\.module([1-4])\.Channel\.(.+)$', 'encoder.interactions.{0}.channel.{1}', True),
    (r'^backbone\.fconv([1-4])\.fusion_conv\.0\.(weight|bias)$',
     'encoder.fusions.{0}.fusion_conv.{1}', True),
    (r'^backbone\.projector_color\.project\.(.+)$', 'projector_vis.{0}', False),
    (r'^backbone\.projector_other\.project\.(.+)$', 'projector_aux.{0}', False),
    (r'^decode_head\.hamburger\.(ham_in|ham_out)\.conv\.(weight|bias)$',
     'decoder.hamburger.{0}.{1}', False),
    (r'^decode_head\.hamburger\.ham\.bases$', 'decoder.hamburger.ham.bases', False),
    (r'^decode_head\.((?:squeeze|align)\.(?:conv|gn)\.(?:weight|bias))$', 'decoder.{0}', False),
    (r'^decode_head\.conv_seg\.(weight|bias)$', 'decoder.conv_seg.{0}', False),
)]
_BASES_KEY = 'decoder.hamburger.ham.bases'
_BLOCK_KEY = re.compile(r'^backbone\.block(_other)?([1-4])\.(\d+)\.')


class ReleaseImportError(CheckpointError):
    """A file is not a released SMMCL checkpoint, or does not fit the network / dataset."""


def map_release_key(key: str) -> Optional[str]:
    """This package's state-dict name for a released name (``module.`` stripped), or None."""
    for pattern, template, staged in _RULES:
        m = pattern.match(key)
        if m is None:
            continue
        groups = list(m.groups())
        if staged:
            groups[0] = str(int(groups[0]) - 1)  # stage 1..4 -> index 0..3
        return template.format(*groups)
    return None


def short_list(names: List[str], limit: int = 12) -> str:
    """The first ``limit`` names joined by commas, and how many more there are."""
    more = f' ... (+{len(names) - limit} more)' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def detect_architecture(state: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """MSCAN variant, class count and preset from the released tensors' names and shapes.

    Args:
        state: Released state dict, ``module.`` already stripped.

    Returns:
        ``{'variant', 'depths', 'dims', 'num_classes', 'decoder_channels', 'preset'}``.

    Raises:
        ReleaseImportError: a layout this package cannot rebuild (the message names the
            tensors it looked at).
    """
    depths: Dict[Tuple[bool, int], int] = {}
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m:
            slot = (bool(m.group(1)), int(m.group(2)))
            depths[slot] = max(depths.get(slot, 0), int(m.group(3)) + 1)
    vis = tuple(depths.get((False, i), 0) for i in range(1, 5))
    aux = tuple(depths.get((True, i), 0) for i in range(1, 5))
    if vis != aux:
        raise ReleaseImportError(f'released encoder streams differ in depth: backbone.block* '
                                 f'{vis}, backbone.block_other* {aux}')
    try:
        dims = tuple(int(state[f'backbone.norm{i}.weight'].shape[0]) for i in range(1, 5))
    except KeyError as exc:
        raise ReleaseImportError(f'released state lacks {exc.args[0]!r} (stage width)') from exc
    variant = next((name for name, (v_dims, v_depths, _, _) in MSCAN_VARIANTS.items()
                    if tuple(v_dims) == dims and tuple(v_depths) == vis), None)
    if variant is None:
        known = ', '.join(f'{k}: {tuple(v[0])}/{tuple(v[1])}' for k, v in MSCAN_VARIANTS.items())
        raise ReleaseImportError(
            f'released encoder has stage widths {dims} and depths {vis}; no MSCAN variant '
            f'matches (known widths/depths: {known})')
    for key in ('decode_head.conv_seg.weight', 'decode_head.squeeze.conv.weight'):
        if key not in state:
            heads = sorted({'.'.join(k.split('.')[:2]) for k in state
                            if k.startswith('decode_head.')})
            raise ReleaseImportError(
                f'released decoder is not a LightHamHead (no {key}; found {short_list(heads)}); '
                'only the released MSCAN + LightHamHead models can be imported')
    num_classes = int(state['decode_head.conv_seg.weight'].shape[0])
    channels = int(state['decode_head.squeeze.conv.weight'].shape[0])
    preset = RELEASE_PRESETS.get((variant, channels))
    if preset is None:
        raise ReleaseImportError(
            f'released model MSCAN-{variant.upper()} with a {channels}-channel LightHamHead '
            f'has no preset here; supported: ' + ', '.join(
                f'MSCAN-{v.upper()}/{c} ({p})' for (v, c), p in RELEASE_PRESETS.items()))
    return dict(variant=variant, depths=list(vis), dims=list(dims), num_classes=num_classes,
                decoder_channels=channels, preset=preset)


def map_release_state(release: Mapping[str, torch.Tensor],
                      target: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename released tensors onto ``target``'s names, strictly.

    Args:
        release: Released state dict, ``module.`` already stripped.
        target: The model's ``state_dict()`` (names and shapes to fill).

    Returns:
        A state dict with every name of ``target``; the NMF bases, which the release does not
        store, are taken from ``target``.

    Raises:
        ReleaseImportError: released names with no counterpart, model names left unfilled,
            names mapped twice, or shape mismatches; each listed by name.
    """
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    unmatched, twice, shapes = [], [], []
    for key, value in release.items():
        local = map_release_key(key)
        if local is None or local not in target:
            unmatched.append(key if local is None else f'{key} (-> {local})')
            continue
        if local in out:
            twice.append(f'{key} -> {local}')
            continue
        if tuple(value.shape) != tuple(target[local].shape):
            shapes.append(f'{key} {tuple(value.shape)} vs {local} '
                          f'{tuple(target[local].shape)}')
            continue
        out[local] = value
    if _BASES_KEY in target and _BASES_KEY not in out:
        out[_BASES_KEY] = target[_BASES_KEY]
    unfilled = [k for k in target if k not in out]
    problems = []
    if unmatched:
        problems.append(f'{len(unmatched)} released tensor(s) with no place in the model: '
                        f'{short_list(unmatched)}')
    if unfilled:
        problems.append(f'{len(unfilled)} model tensor(s) not in the release: '
                        f'{short_list(unfilled)}')
    if twice:
        problems.append(f'mapped twice: {short_list(twice)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatch(es): {short_list(shapes)}')
    if problems:
        raise ReleaseImportError('; '.join(problems))
    return OrderedDict((k, out[k]) for k in target)

"""The authors' released SMMCL weights (palmdong/SMMCL ``epoch-N.pth``) as smmcl checkpoints.

The released training engine (``SMMCL_LLRGBD/engine/engine.py``) saves
``{'model': state_dict, 'optimizer': ..., 'epoch': N, 'iteration': I}`` with the parameter
names of its ``EncoderDecoder`` (``backbone.*`` = the dual MSCAN with interaction and fusion
modules and both projectors, ``decode_head.*`` = LightHamHead); a DataParallel state dict adds
``module.``. :func:`map_release_state` renames every released tensor onto
``create_model(preset, K)``, strictly, and :func:`import_release` writes a self-describing
checkpoint whose meta carries the released input conventions (see ``RELEASE_CONVENTIONS`` and
``smmcl_core.data.preprocess``).

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
(:data:`NMF_BASES_SEED`), so its predictions are one fixed draw of the released model's.
"""

from __future__ import annotations

from collections import OrderedDict
import hashlib
import os
from pathlib import Path
import pickle
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple
import zipfile

import torch

from smmcl_core.checkpoint import CheckpointError

RELEASE_REPOSITORY = 'palmdong/SMMCL'
IMPORT_COMMAND = 'smmcl-import-release'
NMF_BASES_SEED = 0

# The released evaluation (config.py: eval_crop_size, eval_stride_rate, eval_scale_array,
# eval_flip); for 480x640 images one window covers the whole image.
RELEASE_EVAL_PROTOCOL = {'crop': [480, 640], 'stride_rate': 2.0 / 3.0, 'scales': [1.0],
                         'flip': False}

# Input conventions of the released loader (dataloader/RGBXDataset.py), see
# smmcl_core.data.preprocess: colour images (RGB and HHA) read with the flag value of
# cv2.COLOR_BGR2RGB, i.e. IMREAD_ANYCOLOR -> BGR; single-channel aux with IMREAD_GRAYSCALE.
RELEASE_CONVENTIONS = {'channel_order': 'bgr', 'aux_encoding': 'imread_grayscale'}

_LLRGBD_NOTE = ('conventions read from the released SMMCL_LLRGBD code (config.py, '
                'dataloader/RGBXDataset.py, engine/evaluator.py)')
_ASSUMED_NOTE = ('only the LLRGBD code is released: the {name} conventions are ASSUMED to be '
                 "the LLRGBD code's (same RGBXDataset loader: BGR colour, {aux}; same "
                 "evaluator); class order and palette are this package's {name} lists")

RELEASE_DATASETS = ('llrgbd', 'mfnet', 'nyudv2')

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


def release_dataset_info(dataset: str) -> Dict[str, Any]:
    """Class names, palette, aux modality and provenance note of a released dataset.

    Raises:
        KeyError: unknown dataset (the message lists the valid names).
    """
    from smmcl_core.data.classes import (LLRGBD_CLASSES, LLRGBD_PALETTE, MFNET_CLASSES,
                                         MFNET_PALETTE, NYU40_CLASSES, voc_palette)

    if dataset == 'llrgbd':
        return dict(class_names=list(LLRGBD_CLASSES), palette=LLRGBD_PALETTE,
                    aux_modality='depth', note=_LLRGBD_NOTE)
    if dataset == 'mfnet':
        return dict(class_names=list(MFNET_CLASSES), palette=MFNET_PALETTE,
                    aux_modality='thermal',
                    note=_ASSUMED_NOTE.format(name='MFNet',
                                              aux='thermal read with IMREAD_GRAYSCALE'))
    if dataset == 'nyudv2':
        return dict(class_names=list(NYU40_CLASSES), palette=voc_palette(len(NYU40_CLASSES)),
                    aux_modality='hha',
                    note=_ASSUMED_NOTE.format(name='NYUDv2',
                                              aux='HHA read as a colour image, i.e. BGR'))
    raise KeyError(f'unknown released dataset {dataset!r}; valid: {", ".join(RELEASE_DATASETS)}')


def strip_module_prefix(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """Drop a DataParallel ``module.`` prefix from every key that has it."""
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state.items())


def _model_dict(obj: Any) -> Optional[Mapping]:
    """The state dict inside a loaded file (``model`` / ``state_dict`` / bare), or None."""
    if isinstance(obj, Mapping):
        for wrapper in ('model', 'state_dict'):
            if isinstance(obj.get(wrapper), Mapping):
                return obj[wrapper]
        return obj
    return None


def is_release_state(obj: Any) -> bool:
    """True when a loaded file looks like the released engine's checkpoint (or state dict)."""
    state = _model_dict(obj)
    if not state:
        return False
    keys = [k[len('module.'):] if k.startswith('module.') else k
            for k in state if isinstance(k, str)]
    return any(k.startswith('backbone.') for k in keys) and \
        any(k.startswith('decode_head.') for k in keys)


def release_hint(path: Any) -> str:
    """The sentence every loader prints when it is handed a released file."""
    return (f"{path} is the authors' released SMMCL training checkpoint ({RELEASE_REPOSITORY} "
            "'epoch-N.pth' layout: 'backbone.*' / 'decode_head.*' weights without this "
            "package's meta), not an smmcl checkpoint; convert it once with: "
            f'{IMPORT_COMMAND} {path} --dataset {{{",".join(RELEASE_DATASETS)}}} '
            '--out MODEL.pth')


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


def _short(names: List[str], limit: int = 12) -> str:
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
    from smmcl_core.models.mscan import MSCAN_VARIANTS

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
                f'released decoder is not a LightHamHead (no {key}; found {_short(heads)}); '
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
                        f'{_short(unmatched)}')
    if unfilled:
        problems.append(f'{len(unfilled)} model tensor(s) not in the release: '
                        f'{_short(unfilled)}')
    if twice:
        problems.append(f'mapped twice: {_short(twice)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatch(es): {_short(shapes)}')
    if problems:
        raise ReleaseImportError('; '.join(problems))
    return OrderedDict((k, out[k]) for k in target)


def read_release(path: str | os.PathLike) -> Tuple['OrderedDict[str, torch.Tensor]',
                                                   Dict[str, Any]]:
    """Load a released ``epoch-N.pth`` with ``torch.load(weights_only=True)`` on the CPU.

    Returns:
        ``(state dict without 'module.', info)`` with info ``{'epoch', 'iteration',
        'module_prefix', 'tensors'}``.

    Raises:
        FileNotFoundError: no such file.
        ReleaseImportError: corrupt or truncated file, objects ``weights_only`` refuses, an
            smmcl checkpoint, or anything else that is not a released state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'released checkpoint not found: {path}')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):  # every torch.save since 1.6 writes a zip archive
            raise ReleaseImportError(f'{path} is corrupt or truncated (not a torch zip '
                                     f'archive): {_first_line(exc)}') from exc
        raise ReleaseImportError(f'{path} holds objects that weights_only loading refuses '
                                 f'(only tensors and plain values are read): {exc}') from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ReleaseImportError(f'{path} is corrupt or truncated: {_first_line(exc)}') \
            from exc
    if isinstance(obj, Mapping) and 'format_version' in obj and 'meta' in obj:
        raise ReleaseImportError(f'{path} is already an smmcl checkpoint (it has meta); use it '
                                 f'directly, {IMPORT_COMMAND} is for the released files')
    state = _model_dict(obj)
    if not is_release_state(obj) or not all(isinstance(v, torch.Tensor)
                                            for v in state.values()):
        found = _short(sorted(str(k) for k in state)) if state else type(obj).__name__
        raise ReleaseImportError(
            f"{path} is not a released SMMCL checkpoint: expected {{'model': state_dict}} with "
            f"'backbone.*' and 'decode_head.*' tensors, found {found}")
    prefixed = sum(1 for k in state if k.startswith('module.'))
    info = {'epoch': obj.get('epoch') if isinstance(obj, Mapping) else None,
            'iteration': obj.get('iteration') if isinstance(obj, Mapping) else None,
            'module_prefix': prefixed > 0, 'tensors': len(state)}
    return strip_module_prefix(state), info


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def nmf_bases(model: torch.nn.Module, seed: int = NMF_BASES_SEED) -> None:
    """Give the model's NMF bases fixed values from ``seed`` (same file in -> same file out)."""
    ham = model.decoder.hamburger.ham
    gen = torch.Generator().manual_seed(seed)
    bases = torch.rand(tuple(ham.bases.shape), generator=gen)
    with torch.no_grad():
        ham.bases.copy_(torch.nn.functional.normalize(bases, dim=1))


def release_meta(preset: str, num_classes: int, dataset: str,
                 source: Mapping[str, Any]) -> Dict[str, Any]:
    """Meta of an imported checkpoint: classes, modality, released conventions, provenance."""
    from smmcl_core.checkpoint import build_meta

    info = release_dataset_info(dataset)
    meta = build_meta(preset, num_classes, info['class_names'], info['palette'],
                      info['aux_modality'])
    meta.update(RELEASE_CONVENTIONS)
    meta['eval_protocol'] = dict(RELEASE_EVAL_PROTOCOL)
    meta['source'] = dict(source, kind='smmcl_release', repository=RELEASE_REPOSITORY,
                          dataset=dataset, conventions=info['note'],
                          nmf_bases=f'not in the release; fixed draw, seed {NMF_BASES_SEED}')
    return meta


def release_config(preset: str, dataset: str) -> Dict[str, Any]:
    """The config stored with an imported checkpoint (data and the released evaluation)."""
    from smmcl_core.config import ExperimentConfig

    cfg = ExperimentConfig()
    cfg.model.name = preset
    cfg.model.sync_bn = False
    cfg.data.dataset = dataset
    cfg.data.aux_modality = release_dataset_info(dataset)['aux_modality']
    cfg.data.val_split = 'test'
    cfg.train.amp = False
    cfg.train.eval_crop = list(RELEASE_EVAL_PROTOCOL['crop'])
    cfg.train.eval_scales = list(RELEASE_EVAL_PROTOCOL['scales'])
    cfg.train.eval_flip = RELEASE_EVAL_PROTOCOL['flip']
    return cfg.to_dict()


def import_release(path: str | os.PathLike, dataset: str) -> Dict[str, Any]:
    """Convert a released file into an smmcl checkpoint dict (see :func:`save_checkpoint`).

    Raises:
        KeyError: unknown dataset.
        FileNotFoundError: no such file.
        ReleaseImportError: see :func:`read_release`, :func:`detect_architecture` and
            :func:`map_release_state`; also a class count that differs from the dataset's.
    """
    from smmcl_core.checkpoint import build_checkpoint
    from smmcl_core.models import create_model

    info = release_dataset_info(dataset)
    path = Path(path)
    state, file_info = read_release(path)
    arch = detect_architecture(state)
    expected = len(info['class_names'])
    if arch['num_classes'] != expected:
        raise ReleaseImportError(
            f"{path} predicts {arch['num_classes']} classes (decode_head.conv_seg.weight "
            f"{tuple(state['decode_head.conv_seg.weight'].shape)}), --dataset {dataset} has "
            f'{expected}: {", ".join(info["class_names"])}')
    model = create_model(arch['preset'], arch['num_classes'], channels_last=False)
    nmf_bases(model)
    try:
        model.load_state_dict(map_release_state(state, model.state_dict()), strict=True)
    except ReleaseImportError as exc:
        raise ReleaseImportError(f'{path} does not fit {arch["preset"]}: {exc}') from exc
    source = dict(file=path.name, sha256=_sha256(path), epoch=file_info['epoch'],
                  iteration=file_info['iteration'], module_prefix=file_info['module_prefix'],
                  tensors=file_info['tensors'], variant=f"MSCAN-{arch['variant'].upper()}")
    meta = release_meta(arch['preset'], arch['num_classes'], dataset, source)
    return build_checkpoint(model, release_config(arch['preset'], dataset), meta)

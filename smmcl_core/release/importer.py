"""Import a released SMMCL file (palmdong/SMMCL ``epoch-N.pth``) as an smmcl checkpoint.

:func:`read_release` loads the file, :func:`~smmcl_core.release.keymap.detect_architecture`
and :func:`~smmcl_core.release.keymap.map_release_state` rebuild the network, and
:func:`import_release` returns a self-describing checkpoint whose meta carries the released
input conventions (see ``RELEASE_CONVENTIONS`` and ``smmcl_core.data.preprocess``) and the
released evaluation protocol. The release does not store the NMF bases: the imported model
keeps deterministic bases drawn from :data:`NMF_BASES_SEED`.
"""

from __future__ import annotations

from collections import OrderedDict
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import torch

from smmcl_core.checkpoint import build_checkpoint, build_meta
from smmcl_core.config import ExperimentConfig
from smmcl_core.data.classes import (LLRGBD_CLASSES, LLRGBD_PALETTE, MFNET_CLASSES,
                                     MFNET_PALETTE, NYU40_CLASSES, voc_palette)
from smmcl_core.models import create_model
from smmcl_core.release.keymap import (detect_architecture, map_release_state,
                                       ReleaseImportError, short_list)
from smmcl_core.release.layout import (IMPORT_COMMAND, is_release_state, model_dict,
                                       RELEASE_DATASETS, RELEASE_REPOSITORY,
                                       strip_module_prefix)
from smmcl_core.utils.files import sha256_file
from smmcl_core.utils.torch_load import load_weights_only

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


def release_dataset_info(dataset: str) -> Dict[str, Any]:
    """Class names, palette, aux modality and provenance note of a released dataset.

    Raises:
        KeyError: unknown dataset (the message lists the valid names).
    """
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
    obj = load_weights_only(path, ReleaseImportError, 'released checkpoint')
    if isinstance(obj, Mapping) and 'format_version' in obj and 'meta' in obj:
        raise ReleaseImportError(f'{path} is already an smmcl checkpoint (it has meta); use it '
                                 f'directly, {IMPORT_COMMAND} is for the released files')
    state = model_dict(obj)
    if not is_release_state(obj) or not all(isinstance(v, torch.Tensor)
                                            for v in state.values()):
        found = short_list(sorted(str(k) for k in state)) if state else type(obj).__name__
        raise ReleaseImportError(
            f"{path} is not a released SMMCL checkpoint: expected {{'model': state_dict}} with "
            f"'backbone.*' and 'decode_head.*' tensors, found {found}")
    prefixed = sum(1 for k in state if k.startswith('module.'))
    info = {'epoch': obj.get('epoch') if isinstance(obj, Mapping) else None,
            'iteration': obj.get('iteration') if isinstance(obj, Mapping) else None,
            'module_prefix': prefixed > 0, 'tensors': len(state)}
    return strip_module_prefix(state), info


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
    """Convert a released file into an smmcl checkpoint dict (to ``save_checkpoint``).

    Raises:
        KeyError: unknown dataset.
        FileNotFoundError: no such file.
        ReleaseImportError: see :func:`read_release`, :func:`detect_architecture` and
            :func:`map_release_state`; also a class count that differs from the dataset's.
    """
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
    source = dict(file=path.name, sha256=sha256_file(path), epoch=file_info['epoch'],
                  iteration=file_info['iteration'], module_prefix=file_info['module_prefix'],
                  tensors=file_info['tensors'], variant=f"MSCAN-{arch['variant'].upper()}")
    meta = release_meta(arch['preset'], arch['num_classes'], dataset, source)
    return build_checkpoint(model, release_config(arch['preset'], dataset), meta)

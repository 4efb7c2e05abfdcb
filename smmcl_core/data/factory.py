"""``build_dataset``: one entry point from a config to a dataset object."""

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Type, Union

from smmcl_core.data.datasets import (FolderDataset, LLRGBDDataset, MFNetDataset,
                                      NYUDv2Dataset, RGBXDataset)
from smmcl_core.data.synthetic import SyntheticDarkScenes

DATASETS: Dict[str, Type[RGBXDataset]] = {
    'mfnet': MFNetDataset,
    'nyudv2': NYUDv2Dataset,
    'llrgbd': LLRGBDDataset,
    'folder': FolderDataset,
    'synthetic': SyntheticDarkScenes,
}

# The modality each dataset can serve; the first one is the default.
_MODALITIES = {
    'mfnet': ('thermal',),
    'nyudv2': ('depth', 'hha'),
    'llrgbd': ('depth',),
    'synthetic': ('depth', 'thermal'),
}


def default_modality(name: str) -> str:
    """The aux modality ``name`` serves when none is asked for ('' for ``folder``)."""
    return _MODALITIES.get(name, ('',))[0]


def config_options(name: str, data: Any, train: bool) -> Dict[str, Any]:
    """Options dataset ``name`` takes from an experiment's ``data`` config section.

    SYNTHETIC scenes take their length and size; datasets serving depth take
    ``data.max_depth_m`` (a ``folder`` dataset states its own depth range in classes.yaml).
    """
    options: Dict[str, Any] = {}
    if name == 'synthetic':
        options.update(length=data.synthetic_train if train else data.synthetic_val,
                       height=data.synthetic_size[0], width=data.synthetic_size[1])
    if name != 'folder' and (data.aux_modality or default_modality(name)) == 'depth':
        options['aux_ranges'] = {'depth_max_m': float(data.max_depth_m)}
    return options


def build_dataset(name: str, root: Optional[Union[str, Path]], split: str,
                  aux_modality: Optional[str] = None, train: bool = False,
                  crop_size: Sequence[int] = (480, 640), **kwargs) -> RGBXDataset:
    """Create a dataset by name.

    Args:
        name: One of :data:`DATASETS` (``mfnet``, ``nyudv2``, ``llrgbd``, ``folder``,
            ``synthetic``).
        root: Dataset folder (``None`` for ``synthetic``, which refuses one).
        split: Split name (e.g. ``train``, ``test``; for ``folder`` any ``<split>.txt``).
        aux_modality: ``None`` for the dataset default; must match what the dataset serves
            (``folder``: overrides the value in ``classes.yaml``).
        train: Training augmentation (True) or full-image eval transform (False).
        crop_size: Training crop ``(height, width)``.
        **kwargs: Passed on: ``scales``, ``flip``, ``aux_interpolation``, ``aux_ranges``,
            ``mean``, ``std``, ``seed``, ``resize``; for ``synthetic`` also ``length``,
            ``height``, ``width``.

    Raises:
        KeyError: Unknown dataset name (the message lists the valid ones).
        ValueError: Unsupported aux modality for the dataset, bad split or options.
    """
    if name not in DATASETS:
        raise KeyError(f'unknown dataset {name!r}; valid: {", ".join(DATASETS)}')
    options = dict(kwargs, train=train, crop_size=crop_size)
    if name == 'synthetic':
        if root is not None and str(root):
            raise ValueError(f'dataset synthetic takes no root folder, got {str(root)!r} (for '
                             'your own folder: data.dataset=folder, or --dataset folder)')
        modality = aux_modality or default_modality(name)
        if modality not in _MODALITIES[name]:
            raise ValueError(f'synthetic aux_modality must be one of '
                             f'{", ".join(_MODALITIES[name])}, got {modality!r}')
        return SyntheticDarkScenes(modality=modality, split=split, **options)
    if root is None:
        raise ValueError(f'dataset {name!r} needs a root folder')
    if name == 'folder':
        # classes.yaml states the modality; a config value other than '' overrides it.
        return FolderDataset(Path(root), split, aux_modality=aux_modality, **options)
    if name == 'nyudv2':
        return NYUDv2Dataset(Path(root), split,
                             aux_modality=aux_modality or default_modality(name), **options)
    dataset = DATASETS[name](Path(root), split, **options)
    if aux_modality is not None and aux_modality != dataset.aux_modality:
        raise ValueError(
            f'dataset {name!r} at {root} provides aux_modality {dataset.aux_modality!r}, '
            f'not {aux_modality!r}')
    return dataset

"""Data: raw image conventions, preprocessing, datasets and SYNTHETIC scenes.

See ``preprocess`` (raw -> network input, numpy, shared with deployment), ``tensors`` (the same
as torch tensors), ``hha`` (depth -> HHA), ``datasets`` (layouts), ``transforms`` (released
augmentation), ``synthetic`` (procedural test scenes) and ``factory.build_dataset``.

The names below are imported on first use, so ``import smmcl_core.data.hha`` (or ``io``,
``classes``, ``preprocess``) does not import torch: the ROS node imports those.
"""

import importlib

# Public name -> module that defines it (imported when the name is first used).
_EXPORTS = {
    'DatasetInfo': 'classes', 'IGNORE_INDEX': 'classes',
    'FolderDataset': 'datasets', 'LLRGBDDataset': 'datasets', 'MFNetDataset': 'datasets',
    'NYUDv2Dataset': 'datasets', 'RGBXDataset': 'datasets',
    'build_dataset': 'factory', 'DATASETS': 'factory',
    'AUX_MODALITIES': 'preprocess', 'aux_to_unit': 'preprocess',
    'IMAGENET_MEAN': 'preprocess', 'IMAGENET_STD': 'preprocess',
    'to_input_tensors': 'tensors',
    'render_scene': 'synthetic', 'SYNTHETIC_CLASSES': 'synthetic',
    'SyntheticDarkScenes': 'synthetic', 'write_synthetic_folder': 'synthetic',
    'EvalTransform': 'transforms', 'TrainTransform': 'transforms',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f'{__name__}.{_EXPORTS[name]}')
        return getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

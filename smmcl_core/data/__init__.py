"""Data: raw image conventions, preprocessing, datasets and SYNTHETIC scenes.

See ``preprocess`` (raw -> network input, shared with deployment), ``datasets`` (layouts),
``transforms`` (released augmentation), ``synthetic`` (procedural test scenes) and
``factory.build_dataset``.
"""

from smmcl_core.data.classes import DatasetInfo, IGNORE_INDEX
from smmcl_core.data.datasets import (FolderDataset, LLRGBDDataset, MFNetDataset,
                                      NYUDv2Dataset, RGBXDataset)
from smmcl_core.data.factory import build_dataset, DATASETS
from smmcl_core.data.preprocess import (AUX_MODALITIES, aux_to_unit, IMAGENET_MEAN,
                                        IMAGENET_STD, to_input_tensors)
from smmcl_core.data.synthetic import (render_scene, SYNTHETIC_CLASSES, SyntheticDarkScenes,
                                       write_synthetic_folder)
from smmcl_core.data.transforms import EvalTransform, TrainTransform

__all__ = [
    'AUX_MODALITIES', 'DATASETS', 'DatasetInfo', 'EvalTransform', 'FolderDataset',
    'IGNORE_INDEX', 'IMAGENET_MEAN', 'IMAGENET_STD', 'LLRGBDDataset', 'MFNetDataset',
    'NYUDv2Dataset', 'RGBXDataset', 'SYNTHETIC_CLASSES', 'SyntheticDarkScenes',
    'TrainTransform', 'aux_to_unit', 'build_dataset', 'render_scene', 'to_input_tensors',
    'write_synthetic_folder',
]

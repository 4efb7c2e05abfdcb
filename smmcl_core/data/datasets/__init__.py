"""RGB-X segmentation datasets, one layout per module (the contract is in ``base``).

- ``base``: :class:`RGBXDataset` (what every dataset yields) and the label look-up tables.
- ``mfnet``: MFNet RGB-thermal. ``nyudv2``: NYUDv2 40 classes, depth or HHA.
- ``llrgbd``: LLRGBD-synthetic low-light RGB-D. ``folder``: your own data with classes.yaml.

``smmcl_core.data.synthetic`` holds the procedural SYNTHETIC scenes; ``smmcl_core.data.factory``
builds any of them by name.
"""

from smmcl_core.data.datasets.base import (apply_lut, identity_lut, RawSample, RGBXDataset,
                                           shifted_lut)
from smmcl_core.data.datasets.folder import FolderDataset
from smmcl_core.data.datasets.llrgbd import LLRGBDDataset
from smmcl_core.data.datasets.mfnet import MFNetDataset
from smmcl_core.data.datasets.nyudv2 import NYUDv2Dataset

__all__ = ['FolderDataset', 'LLRGBDDataset', 'MFNetDataset', 'NYUDv2Dataset', 'RGBXDataset',
           'RawSample', 'apply_lut', 'identity_lut', 'shifted_lut']

"""MFNet RGB-thermal.

MFNet (9 classes, label 0..8 used as is, 0 = "unlabeled" is a trained class as in the
release), two layouts, detected from the folders present::

    root/images/NAME.png    4-channel PNG: channels 1-3 RGB, channel 4 thermal
    root/labels/NAME.png
    root/{train,val,test,test_day,test_night}.txt
  or
    root/RGB/NAME.png  root/Thermal/NAME.png  root/Label/NAME.png  root/<split>.txt
"""

from pathlib import Path

import numpy as np

from smmcl_core.data.classes import DatasetInfo, MFNET_CLASSES, MFNET_PALETTE, palette_array
from smmcl_core.data.datasets.base import check_root, check_split, identity_lut, RGBXDataset
from smmcl_core.data.io import (AUX_EXTENSIONS, find_file, IMAGE_EXTENSIONS, read_aux,
                                read_label, read_raw, read_rgb, read_split)


class MFNetDataset(RGBXDataset):
    """MFNet RGB-thermal (original 4-channel layout or RGB/Thermal/Label folders)."""

    SPLITS = ('train', 'val', 'test', 'test_day', 'test_night')

    def __init__(self, root: Path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        check_split(split, self.SPLITS, 'mfnet')
        self.root = check_root(root, 'mfnet')
        if (self.root / 'images').is_dir():
            self.layout = 'images'
        elif (self.root / 'RGB').is_dir() and (self.root / 'Thermal').is_dir():
            self.layout = 'folders'
        else:
            raise FileNotFoundError(
                f'mfnet root {self.root} has neither images/ (4-channel layout) nor RGB/ and '
                f'Thermal/ folders')
        self.names = read_split(self.root / f'{split}.txt')
        self.label_lut = identity_lut(len(MFNET_CLASSES))
        self.info = DatasetInfo('mfnet', MFNET_CLASSES, palette_array(MFNET_PALETTE),
                                aux_modality='thermal')
        self._setup_transform()

    def _read(self, name: str):
        if self.layout == 'images':
            path = find_file(self.root / 'images', name, ('.png',))
            image = read_raw(path)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4:
                raise ValueError(
                    f'mfnet image {path} has dtype {image.dtype}, shape {image.shape}; '
                    f'expected a uint8 4-channel PNG (RGB + thermal)')
            # OpenCV returns BGRA: B,G,R are file channels 3,2,1, "alpha" is the thermal.
            rgb = np.ascontiguousarray(image[:, :, 2::-1])
            aux = np.ascontiguousarray(image[:, :, 3])
            label_path = find_file(self.root / 'labels', name, ('.png',))
            files = [path, path, label_path]
        else:
            rgb_path = find_file(self.root / 'RGB', name, IMAGE_EXTENSIONS)
            aux_path = find_file(self.root / 'Thermal', name, AUX_EXTENSIONS)
            label_path = find_file(self.root / 'Label', name, ('.png',))
            rgb, aux = read_rgb(rgb_path), read_aux(aux_path, 'thermal')
            files = [rgb_path, aux_path, label_path]
        return rgb, aux, read_label(label_path), files

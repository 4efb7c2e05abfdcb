"""LLRGBD-synthetic low-light RGB-D.

LLRGBD-synthetic (14 classes incl. void, label 0..13 used as is, as released)::

    root/rgb/NAME.{png,jpg}  root/depth/NAME.png  root/label/NAME.png  root/<split>.txt
  where root may also hold one such folder per split (root/train/rgb/..., as the released
  config points at LLRGBD/train and LLRGBD/test); without a split file every image in
  ``rgb/`` is used.
"""

from pathlib import Path

from smmcl_core.data.classes import DatasetInfo, LLRGBD_CLASSES, LLRGBD_PALETTE, palette_array
from smmcl_core.data.datasets.base import check_root, check_split, identity_lut, RGBXDataset
from smmcl_core.data.io import (AUX_EXTENSIONS, find_file, IMAGE_EXTENSIONS, read_aux,
                                read_label, read_rgb, read_split)


class LLRGBDDataset(RGBXDataset):
    """LLRGBD-synthetic low-light RGB-D, 14 classes including void (released setting)."""

    SPLITS = ('train', 'test')

    def __init__(self, root: Path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        check_split(split, self.SPLITS, 'llrgbd')
        root = check_root(root, 'llrgbd')
        self.root = root / split if (root / split / 'rgb').is_dir() else root
        split_files = [self.root / f'{split}.txt', root / f'{split}.txt']
        split_file = next((p for p in split_files if p.is_file()), None)
        if split_file is not None:
            self.names = read_split(split_file)
        elif self.root != root:
            self.names = sorted(p.stem for p in (self.root / 'rgb').iterdir()
                                if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            raise FileNotFoundError(
                f'missing split file for llrgbd split {split!r}; tried: '
                f'{", ".join(str(p) for p in split_files)}')
        self.label_lut = identity_lut(len(LLRGBD_CLASSES))
        self.info = DatasetInfo('llrgbd', LLRGBD_CLASSES, palette_array(LLRGBD_PALETTE),
                                aux_modality='depth')
        self._setup_transform()

    def _read(self, name: str):
        rgb_path = find_file(self.root / 'rgb', name, IMAGE_EXTENSIONS)
        aux_path = find_file(self.root / 'depth', name, AUX_EXTENSIONS)
        label_path = find_file(self.root / 'label', name, ('.png',))
        return (read_rgb(rgb_path), read_aux(aux_path, 'depth'), read_label(label_path),
                [rgb_path, aux_path, label_path])

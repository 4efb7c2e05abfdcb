"""NYUDv2 40 classes in the CMX layout, with depth or HHA.

NYUDv2 (CMX layout; label 0 -> 255 ignore, 1..40 -> 0..39; ``RGB/`` prefixes in split
entries, as in the CMX lists, are dropped)::

    root/RGB/NAME.{png,jpg}  root/Depth/NAME.png (uint16 mm) or root/HHA/NAME.{png,jpg}
    root/Label/NAME.png  root/{train,test}.txt
  With ``aux_modality='hha'`` and no ``HHA/`` folder, HHA is computed from ``Depth/`` on the
  fly (``smmcl_core.data.hha``, NYUv2 colour-camera intrinsics scaled to the image size, or
  ``intrinsics=K``); ``smmcl-make-hha`` writes the same images once, which trains faster.
"""

from pathlib import Path
from typing import Any, Optional

import numpy as np

from smmcl_core.data import hha
from smmcl_core.data.classes import DatasetInfo, NYU40_CLASSES, voc_palette
from smmcl_core.data.datasets.base import check_root, check_split, RGBXDataset, shifted_lut
from smmcl_core.data.io import (AUX_EXTENSIONS, find_file, IMAGE_EXTENSIONS, read_aux,
                                read_label, read_rgb, read_split)


class NYUDv2Dataset(RGBXDataset):
    """NYUDv2 40 classes in the CMX layout, with depth (``Depth/``) or HHA (``HHA/``)."""

    SPLITS = ('train', 'test')

    def __init__(self, root: Path, split: str = 'train', aux_modality: str = 'depth',
                 intrinsics: Optional[Any] = None, **kwargs):
        super().__init__(**kwargs)
        check_split(split, self.SPLITS, 'nyudv2')
        if aux_modality not in ('depth', 'hha'):
            raise ValueError(f'nyudv2 aux_modality must be depth or hha, got {aux_modality!r}')
        self.root = check_root(root, 'nyudv2')
        self.aux_folder = 'Depth' if aux_modality == 'depth' else 'HHA'
        # HHA from Depth/ when no HHA/ was shipped (same encoding as the robot's live HHA).
        self.hha_from_depth = (aux_modality == 'hha' and not (self.root / 'HHA').is_dir()
                               and (self.root / 'Depth').is_dir())
        if self.hha_from_depth:
            self.aux_folder = 'Depth'
        self.intrinsics = None if intrinsics is None else hha.check_intrinsics(intrinsics)
        self.names = [n[len('RGB/'):] if n.startswith('RGB/') else n
                      for n in read_split(self.root / f'{split}.txt')]
        self.label_lut = shifted_lut(len(NYU40_CLASSES))
        self.info = DatasetInfo('nyudv2', NYU40_CLASSES, voc_palette(len(NYU40_CLASSES)),
                                aux_modality=aux_modality)
        self._setup_transform()

    def intrinsics_for(self, height: int, width: int) -> np.ndarray:
        """``K`` of this dataset's images of ``height x width`` (0-based pixels)."""
        if self.intrinsics is not None:
            return self.intrinsics
        return hha.nyu_intrinsics(height, width)

    def _read(self, name: str):
        rgb_path = find_file(self.root / 'RGB', name, IMAGE_EXTENSIONS)
        aux_path = find_file(self.root / self.aux_folder, name, AUX_EXTENSIONS)
        label_path = find_file(self.root / 'Label', name, ('.png',))
        if self.hha_from_depth:
            depth = read_aux(aux_path, 'depth')
            try:
                metres = hha.depth_to_metres(depth)
            except ValueError as exc:
                raise ValueError(f'cannot compute HHA from {aux_path}: {exc}') from exc
            aux = hha.depth_to_hha(metres, self.intrinsics_for(*metres.shape))
        else:
            aux = read_aux(aux_path, self.aux_modality)
        return (read_rgb(rgb_path), aux, read_label(label_path),
                [rgb_path, aux_path, label_path])

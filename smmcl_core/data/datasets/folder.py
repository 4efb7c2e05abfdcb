"""Generic folder layout for your own data (``classes.yaml`` + rgb/aux/label folders).

Generic folder layout for your own data::

    root/classes.yaml (or classes.json)
    root/rgb/NAME.{png,jpg,...}     8-bit colour
    root/aux/NAME.{png,tif,npy}     depth uint16 mm / float32 m (.tif/.npy), thermal
                                    uint8/uint16 or 8-bit pseudo-colour, or HHA 8-bit colour
    root/label/NAME.png             train ids 0..K-1 (ignore_index = ignore): grey uint8, a
                                    palette PNG (labelme, VOC tools: the indices are read),
                                    or colour-coded with label_colors
    root/<split>.txt                one NAME per line (any split name; train.txt, and
                                    optionally val.txt and test.txt)

``classes.yaml`` keys: ``class_names`` (list, required), ``aux_modality`` (``depth``,
``thermal`` or ``hha``, required; a non-empty ``data.aux_modality`` overrides it), ``palette``
(list of [r, g, b], optional, default VOC colour map), ``ignore_index`` (default 255),
``name`` (default the folder name), ``aux_ranges`` (``aux_to_unit`` keyword arguments, e.g.
``{depth_max_m: 5.0}``), ``background`` (the class "mIoU w/o background" leaves out; ``''``
= none; default: class 0 if it is called unlabeled / void / background / ``_background_``),
``thermal_colormap`` (the colour map of pseudo-colour thermal files, e.g. ``inferno``,
``ironbow``, ``jet``; see ``smmcl_core.data.thermal``; ``auto`` fits every map on a sample of
``aux/`` and uses the best, or luminance, see ``smmcl_core.data.thermal_fit``),
``label_colors`` (colour-coded label files: class name, class id or ``ignore`` -> [r, g, b];
any other colour is an error), ``label_color_tolerance`` (RGB distance within which a colour
takes the nearest ``label_colors`` entry, for blended edges; see
``smmcl_core.data.label_colors``), ``aux_registration`` (unregistered pairs: ``none``
(default: sizes must match), ``auto``, ``resize``, ``homography``; see
``smmcl_core.data.registration``) with ``aux_homography`` (9 numbers, row-major, aux pixel ->
RGB pixel, as ``smmcl-calibrate-aux`` writes it): each aux image is registered into the RGB
frame when read, so training sees the robot's registered input; labels are in the RGB frame.
Unknown keys are rejected.
"""

import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Optional
import warnings

import numpy as np
import yaml

from smmcl_core.data.classes import load_classes_file, parse_label_colors, parse_registration
from smmcl_core.data.datasets.base import (apply_lut, check_root, identity_lut, register_sample,
                                           RGBXDataset)
from smmcl_core.data.io import (AUX_EXTENSIONS, check_sample, find_file, IMAGE_EXTENSIONS,
                                read_aux, read_label, read_rgb, read_split)
from smmcl_core.data.label_colors import label_color_table
from smmcl_core.data.preprocess import aux_to_unit
from smmcl_core.data.thermal import invert_colormap, MISMATCH_DISTANCE
from smmcl_core.data.thermal_fit import resolve_auto_colormap


class FolderDataset(RGBXDataset):
    """Generic ``rgb/``, ``aux/``, ``label/`` folder with ``classes.yaml`` (see module doc).

    Args:
        root: Dataset folder.
        split: Name of a ``<split>.txt`` file in ``root``.
        aux_modality: Overrides ``classes.yaml``'s ``aux_modality`` (None = keep it).
        **kwargs: See :class:`RGBXDataset`.
    """

    def __init__(self, root: Path, split: str = 'train', aux_modality: Optional[str] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.root = check_root(root, 'folder')
        self.info, self.classes_file = load_classes_file(self.root)
        if aux_modality and aux_modality != self.info.aux_modality:
            ranges = {k: v for k, v in self.info.aux_ranges.items()
                      if k != 'thermal_colormap' or aux_modality == 'thermal'}
            self.info = self.info.with_aux(aux_modality, ranges)
        ranges, self.colormap_fit = resolve_auto_colormap(self.info.aux_ranges, self.root / 'aux')
        self.info = dataclasses.replace(self.info, aux_ranges=ranges)  # 'auto' -> the map
        spec = yaml.safe_load(self.classes_file.read_text()) \
            if self.classes_file.suffix != '.json' else json.loads(self.classes_file.read_text())
        self.label_colors = label_color_table(parse_label_colors(
            spec['label_colors'], self.info.class_names, self.info.ignore_index,
            self.classes_file) if spec.get('label_colors') else None,
            spec.get('label_color_tolerance'), self.classes_file)
        self.registration = parse_registration(spec, self.info.aux_modality, self.classes_file)
        self.names = read_split(self.root / f'{split}.txt')
        self.label_lut = identity_lut(self.info.num_classes, self.info.ignore_index)
        self._setup_transform()

    def _read(self, name: str):
        rgb_path = find_file(self.root / 'rgb', name, IMAGE_EXTENSIONS)
        aux_path = find_file(self.root / 'aux', name, AUX_EXTENSIONS)
        label_path = find_file(self.root / 'label', name, ('.png',))
        return (read_rgb(rgb_path), read_aux(aux_path, self.aux_modality),
                read_label(label_path, self.label_colors), [rgb_path, aux_path, label_path])

    def problems(self, index: int) -> List[str]:
        """Every problem of sample ``index``: each file on its own, then the sample."""
        name = self.names[index]
        found: List[str] = []
        arrays: Dict[str, np.ndarray] = {}
        paths: Dict[str, Path] = {}
        readers = {
            'rgb': (IMAGE_EXTENSIONS, read_rgb),
            'aux': (AUX_EXTENSIONS, lambda p: read_aux(p, self.aux_modality)),
            'label': (('.png',), lambda p: read_label(p, self.label_colors)),
        }
        for role, (extensions, reader) in readers.items():
            try:
                paths[role] = find_file(self.root / role, name, extensions)
                arrays[role] = reader(paths[role])
            except (OSError, ValueError) as exc:
                found.append(str(exc))
        if 'aux' in arrays:
            aux = arrays['aux']
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')  # reported below, with the file name
                    aux_to_unit(aux, self.aux_modality, **self.info.aux_ranges)
            except ValueError as exc:
                found.append(f'{paths["aux"]}: {exc}')
            colormap = self.info.aux_ranges.get('thermal_colormap', '')
            if aux.ndim == 3 and self.aux_modality == 'thermal':
                if not colormap:
                    found.append(f'{paths["aux"]}: colour thermal image but classes.yaml names '
                                 'no thermal_colormap (luminance would be used)')
                else:
                    distance = invert_colormap(aux, colormap)[1]
                    if distance > MISMATCH_DISTANCE:
                        found.append(f'{paths["aux"]}: colours are {distance:.0f} RGB units '
                                     f'from the {colormap!r} colour map on average: another '
                                     'map, or not a pseudo-colour image')
        if 'label' in arrays:
            try:
                apply_lut(arrays['label'], self.label_lut, paths['label'])
            except ValueError as exc:
                found.append(str(exc))
        if len(arrays) == 3:
            files = [paths['rgb'], paths['aux'], paths['label']]
            try:
                aux = register_sample(arrays['rgb'], arrays['aux'], arrays['label'], files,
                                      self.registration)
                check_sample(arrays['rgb'], aux, arrays['label'], files)
            except ValueError as exc:
                found.append(str(exc))
        return found

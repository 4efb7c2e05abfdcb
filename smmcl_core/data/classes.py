"""Dataset metadata: class names, palettes, the :class:`DatasetInfo` record, ``classes.yaml``.

:func:`load_classes_file` reads the ``classes.yaml`` of a generic folder dataset (keys in
``smmcl_core.data.datasets.folder``).

Sources:
- MFNet names/palette: the MFNet release as listed in ``shared/data/README.md``.
- NYUDv2 40 names: NYU-40 as in ``shared/data/README.md``. There is no official NYU-40 palette;
  :func:`voc_palette` (the PASCAL-VOC bit-interleaved colour map, offset by one so that no
  class is black) is used.
- LLRGBD-synthetic names: ``class_names`` in the released ``SMMCL_LLRGBD/config.py``;
  palette: ``RGBXDataset.get_class_colors`` of the released code (floats in [0, 1] converted to
  uint8 by truncating ``x * 255``, as the release does).
"""

from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import yaml

from smmcl_core.data.fixed_registration import FixedRegistration
from smmcl_core.data.preprocess import AUX_MODALITIES, IMAGENET_MEAN, IMAGENET_STD
from smmcl_core.data.thermal_fit import check_colormap_spec

IGNORE_INDEX = 255

MFNET_CLASSES: Tuple[str, ...] = (
    'unlabeled', 'car', 'person', 'bike', 'curve', 'car stop', 'guardrail', 'color cone',
    'bump')
MFNET_PALETTE = (
    (0, 0, 0), (64, 0, 128), (64, 64, 0), (0, 128, 192), (0, 0, 192), (128, 128, 0),
    (64, 64, 128), (192, 128, 128), (192, 64, 0))

NYU40_CLASSES: Tuple[str, ...] = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window',
    'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser',
    'pillow', 'mirror', 'floor mat', 'clothes', 'ceiling', 'books', 'refridgerator',
    'television', 'paper', 'towel', 'shower curtain', 'box', 'whiteboard', 'person',
    'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag', 'otherstructure',
    'otherfurniture', 'otherprop')

LLRGBD_CLASSES: Tuple[str, ...] = (
    'void', 'bed', 'books', 'ceiling', 'chair', 'floor', 'furniture', 'objects', 'painting',
    'sofa', 'table', 'tv', 'wall', 'window')
LLRGBD_PALETTE = (
    (0, 0, 0), (0, 0, 255), (232, 88, 47), (0, 217, 0), (148, 0, 240), (222, 241, 23),
    (255, 205, 205), (0, 223, 228), (106, 135, 204), (116, 28, 41), (240, 35, 235),
    (0, 166, 156), (249, 139, 0), (225, 228, 194))


def voc_palette(num_classes: int, offset: int = 1) -> np.ndarray:
    """PASCAL-VOC style colour map: bits of ``index + offset`` spread over R, G, B.

    Returns:
        uint8 array of shape (num_classes, 3).
    """
    palette = np.zeros((num_classes, 3), np.uint8)
    for k in range(num_classes):
        code = k + offset
        r = g = b = 0
        for shift in range(8):
            r |= ((code >> 0) & 1) << (7 - shift)
            g |= ((code >> 1) & 1) << (7 - shift)
            b |= ((code >> 2) & 1) << (7 - shift)
            code >>= 3
        palette[k] = (r, g, b)
    return palette


@dataclass(frozen=True)
class DatasetInfo:
    """What a trained model must know about the data it was trained on.

    Attributes:
        name: Dataset name (e.g. ``'mfnet'``).
        class_names: One name per train id ``0..K-1``.
        palette: ``(K,3) uint8`` RGB colour per train id.
        ignore_index: Label value excluded from loss and metrics.
        aux_modality: ``'depth'``, ``'thermal'`` or ``'hha'``.
        mean: Per-channel normalisation mean (both modalities).
        std: Per-channel normalisation std (both modalities).
        aux_ranges: Keyword arguments for ``aux_to_unit`` (e.g. ``depth_max_m``,
            ``thermal_colormap``).
        background: Name of the catch-all class left out of "mIoU w/o background"; ``None``
            = the name rule of :func:`background_index`, ``''`` = no such class.
    """

    name: str
    class_names: Tuple[str, ...]
    palette: np.ndarray
    ignore_index: int = IGNORE_INDEX
    aux_modality: str = 'depth'
    mean: Tuple[float, ...] = IMAGENET_MEAN
    std: Tuple[float, ...] = IMAGENET_STD
    aux_ranges: Dict[str, Any] = field(default_factory=dict)
    background: Optional[str] = None

    def __post_init__(self):
        palette = np.asarray(self.palette)
        object.__setattr__(self, 'class_names', tuple(str(c) for c in self.class_names))
        if palette.shape != (len(self.class_names), 3):
            raise ValueError(
                f'dataset {self.name!r}: palette shape {palette.shape} does not match '
                f'{len(self.class_names)} classes')
        if palette.min(initial=0) < 0 or palette.max(initial=0) > 255:
            raise ValueError(f'dataset {self.name!r}: palette values must be in 0..255')
        object.__setattr__(self, 'palette', palette.astype(np.uint8))
        if self.aux_modality not in AUX_MODALITIES:
            raise ValueError(
                f'dataset {self.name!r}: unknown aux_modality {self.aux_modality!r}; valid: '
                f'{", ".join(AUX_MODALITIES)}')
        if self.background and self.background not in self.class_names:
            raise ValueError(
                f'dataset {self.name!r}: background {self.background!r} is not one of the '
                f'class names {list(self.class_names)}')
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < len(self.class_names):
            raise ValueError(
                f'dataset {self.name!r}: ignore_index {self.ignore_index} must be in '
                f'{len(self.class_names)}..255')

    @property
    def num_classes(self) -> int:
        """Number of train ids."""
        return len(self.class_names)

    def with_aux(self, aux_modality: str, aux_ranges: Dict[str, Any]) -> 'DatasetInfo':
        """Copy with another aux modality / ranges (e.g. NYUDv2 depth vs HHA)."""
        return DatasetInfo(self.name, self.class_names, self.palette, self.ignore_index,
                           aux_modality, self.mean, self.std, dict(aux_ranges),
                           self.background)


def palette_array(colours: Sequence[Sequence[int]]) -> np.ndarray:
    """Sequence of RGB triples -> (K,3) uint8."""
    return np.asarray(colours, np.uint8).reshape(-1, 3)


# Class-0 names taken as a catch-all background when a dataset does not name one; compared
# lower-case with surrounding underscores and spaces removed (labelme's ``_background_``).
BACKGROUND_NAMES: Tuple[str, ...] = ('unlabeled', 'unlabelled', 'void', 'background')


def background_index(class_names: Sequence[str], background: Optional[str] = None
                     ) -> Optional[int]:
    """Index of the class "mIoU w/o background" leaves out, or None.

    Rule: a named ``background`` (``classes.yaml`` key) is that class; ``''`` means none;
    otherwise class 0 when its name is one of :data:`BACKGROUND_NAMES` (MFNet ``unlabeled``,
    LLRGBD ``void``, labelme ``_background_``).

    Raises:
        ValueError: ``background`` names no class.
    """
    if background is not None:
        if background == '':
            return None
        if background not in class_names:
            raise ValueError(f'background class {background!r} is not one of {list(class_names)}')
        return list(class_names).index(background)
    if class_names and class_names[0].strip('_ ').lower() in BACKGROUND_NAMES:
        return 0
    return None


_CLASSES_KEYS = ('class_names', 'aux_modality', 'palette', 'ignore_index', 'name',
                 'aux_ranges', 'background', 'thermal_colormap', 'label_colors',
                 'label_color_tolerance', 'aux_registration', 'aux_homography')
# aux_registration modes a dataset may name (depth needs camera models classes.yaml lacks).
DATASET_REGISTRATIONS = ('none', 'auto', 'resize', 'homography')


def _colour(value: Any, where: str) -> Tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
            isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise ValueError(f'{where} must be [r, g, b] with values 0..255, got {value!r}')
    return int(value[0]), int(value[1]), int(value[2])


def parse_label_colors(spec: Any, class_names: Sequence[str], ignore_index: int, path: Path
                       ) -> Dict[Tuple[int, int, int], int]:
    """``label_colors`` of ``classes.yaml`` (class name, id or ``ignore`` -> [r, g, b]).

    Returns:
        RGB triple -> label id.

    Raises:
        ValueError: Unknown class, bad colour or one colour given to two classes.
    """
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f'{path}: label_colors must map class names to [r, g, b]')
    table: Dict[Tuple[int, int, int], int] = {}
    for key, value in spec.items():
        if key == 'ignore' or key == ignore_index:
            label = ignore_index
        elif isinstance(key, int) and 0 <= key < len(class_names):
            label = key
        elif key in class_names:
            label = list(class_names).index(key)
        else:
            raise ValueError(f'{path}: label_colors key {key!r} is not a class name, a class '
                             f'id or "ignore"; classes: {list(class_names)}')
        colour = _colour(value, f'{path}: label_colors[{key!r}]')
        if colour in table and table[colour] != label:
            raise ValueError(f'{path}: label_colors gives colour {list(colour)} to two classes')
        table[colour] = label
    return table


def parse_registration(spec: Dict[str, Any], aux_modality: str, path: Path
                       ) -> Optional[FixedRegistration]:
    """``aux_registration`` / ``aux_homography`` of ``classes.yaml`` (None: neither named).

    The aux images are then brought into the RGB frame as the node does (``homography``:
    aux pixel -> RGB pixel), so training sees the robot's registered input.

    Raises:
        ValueError: A bad or incomplete value, or ``depth``; the message names the file and key.
    """
    mode = spec.get('aux_registration')
    if mode is None:
        if spec.get('aux_homography') is not None:
            raise ValueError(f'{path}: aux_homography needs aux_registration: homography')
        return None
    if mode not in DATASET_REGISTRATIONS:
        raise ValueError(f'{path}: aux_registration {mode!r} not one of '
                         f'{", ".join(DATASET_REGISTRATIONS)} (depth needs camera models: '
                         f'register the depth images first)')
    homography = spec.get('aux_homography')
    if homography is not None and mode != 'homography':
        raise ValueError(f'{path}: aux_homography is only for aux_registration: homography')
    if homography is not None and not isinstance(homography, list):
        raise ValueError(f'{path}: aux_homography must be a list of 9 numbers (row-major, aux '
                         f'pixel -> RGB pixel), got {homography!r}')
    return FixedRegistration(mode, aux_modality, homography, where=f'{path}: ')


def load_classes_file(root: Path) -> Tuple[DatasetInfo, Path]:
    """Read ``classes.yaml`` / ``classes.yml`` / ``classes.json`` of a generic folder.

    ``thermal_colormap`` is stored in ``info.aux_ranges`` (so it reaches every
    ``aux_to_unit`` call and the checkpoint meta); ``label_colors`` is read by
    :func:`parse_label_colors` in :class:`FolderDataset`; ``aux_registration`` and
    ``aux_homography`` by :func:`parse_registration` (checked here too).

    Raises:
        FileNotFoundError: None of the files exists.
        ValueError: Unparsable file, missing/unknown keys or bad values (message names the
            file and key).
    """
    candidates = [root / 'classes.yaml', root / 'classes.yml', root / 'classes.json']
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f'missing class file; tried: {", ".join(str(p) for p in candidates)}')
    try:
        text = path.read_text()
        spec: Any = json.loads(text) if path.suffix == '.json' else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f'cannot parse {path}: {exc}') from exc
    if not isinstance(spec, dict):
        raise ValueError(f'{path} must hold a mapping with keys {", ".join(_CLASSES_KEYS)}')
    unknown = sorted(set(spec) - set(_CLASSES_KEYS))
    if unknown:
        raise ValueError(f'{path}: unknown keys {unknown}; valid: {", ".join(_CLASSES_KEYS)}')
    for key in ('class_names', 'aux_modality'):
        if key not in spec:
            raise ValueError(f'{path}: missing required key {key!r}')
    names = spec['class_names']
    if not isinstance(names, list) or not names:
        raise ValueError(f'{path}: class_names must be a non-empty list')
    if spec['aux_modality'] not in AUX_MODALITIES:
        raise ValueError(
            f'{path}: aux_modality {spec["aux_modality"]!r} not one of '
            f'{", ".join(AUX_MODALITIES)}')
    palette = spec.get('palette')
    palette = voc_palette(len(names)) if palette is None else np.asarray(palette)
    aux_ranges: Dict[str, Any] = dict(spec.get('aux_ranges') or {})
    if not isinstance(spec.get('aux_ranges') or {}, dict):
        raise ValueError(f'{path}: aux_ranges must be a mapping')
    colormap = spec.get('thermal_colormap')
    if colormap:
        if spec['aux_modality'] != 'thermal':
            raise ValueError(f'{path}: thermal_colormap is only for aux_modality thermal')
        try:
            aux_ranges['thermal_colormap'] = check_colormap_spec(str(colormap))
        except ValueError as exc:
            raise ValueError(f'{path}: {exc}') from exc
    background = spec.get('background')
    if background is not None and not isinstance(background, str):
        raise ValueError(f'{path}: background must be a class name or "" (none)')
    try:
        info = DatasetInfo(str(spec.get('name', root.name)), tuple(names), palette,
                           int(spec.get('ignore_index', IGNORE_INDEX)), spec['aux_modality'],
                           aux_ranges=aux_ranges, background=background)
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from exc
    parse_registration(spec, info.aux_modality, path)
    return info, path

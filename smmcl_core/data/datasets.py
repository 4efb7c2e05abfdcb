"""RGB-X segmentation datasets: MFNet, NYUDv2, LLRGBD-synthetic and a generic folder layout.

Every dataset yields ``(rgb (3,H,W) float32, aux (3,H,W) float32, label (H,W) int64)``
(normalised, ``255`` = ignore), has ``info`` (a :class:`DatasetInfo`) plus the shortcuts
``class_names``, ``palette``, ``ignore_index``, ``aux_modality``, and ``raw_sample(i)``
returning the raw numpy ``(rgb uint8 (H,W,3), aux raw, label uint8 (H,W) train ids)``.

Layouts (``NAME`` = an entry of the split file; a known image extension on it is dropped):

MFNet (9 classes, label 0..8 used as is, 0 = "unlabeled" is a trained class as in the
release), two layouts, detected from the folders present::

    root/images/NAME.png    4-channel PNG: channels 1-3 RGB, channel 4 thermal
    root/labels/NAME.png
    root/{train,val,test,test_day,test_night}.txt
  or
    root/RGB/NAME.png  root/Thermal/NAME.png  root/Label/NAME.png  root/<split>.txt

NYUDv2 (CMX layout; label 0 -> 255 ignore, 1..40 -> 0..39; ``RGB/`` prefixes in split
entries, as in the CMX lists, are dropped)::

    root/RGB/NAME.{png,jpg}  root/Depth/NAME.png (uint16 mm) or root/HHA/NAME.{png,jpg}
    root/Label/NAME.png  root/{train,test}.txt
  With ``aux_modality='hha'`` and no ``HHA/`` folder, HHA is computed from ``Depth/`` on the
  fly (``smmcl_core.data.hha``, NYUv2 colour-camera intrinsics scaled to the image size, or
  ``intrinsics=K``); ``smmcl-make-hha`` writes the same images once, which trains faster.

LLRGBD-synthetic (14 classes incl. void, label 0..13 used as is, as released)::

    root/rgb/NAME.{png,jpg}  root/depth/NAME.png  root/label/NAME.png  root/<split>.txt
  where root may also hold one such folder per split (root/train/rgb/..., as the released
  config points at LLRGBD/train and LLRGBD/test); without a split file every image in
  ``rgb/`` is used.

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
``ironbow``, ``jet``; see ``smmcl_core.data.thermal``), ``label_colors`` (colour-coded label
files: class name, class id or ``ignore`` -> [r, g, b]; any other colour is an error). Unknown
keys are rejected.

Errors: a missing or unreadable file, size mismatch within a sample and label ids outside
the classes raise ``FileNotFoundError`` / ``ValueError`` naming the file.

Augmentation randomness: ``__getitem__`` draws from a numpy Generator seeded by
``(seed, torch.initial_seed())``; inside a DataLoader worker ``torch.initial_seed()`` is the
worker seed, so the stream is deterministic per worker once torch is seeded. Use
``sample(i, rng)`` to pass a Generator explicitly.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset
import yaml

from smmcl_core.data import hha
from smmcl_core.data.classes import (DatasetInfo, IGNORE_INDEX, LLRGBD_CLASSES,
                                     LLRGBD_PALETTE, MFNET_CLASSES, MFNET_PALETTE,
                                     NYU40_CLASSES, palette_array, voc_palette)
from smmcl_core.data.io import (AUX_EXTENSIONS, check_sample, find_file, IMAGE_EXTENSIONS,
                                read_aux, read_label, read_raw, read_rgb, read_split)
from smmcl_core.data.preprocess import (AUX_MODALITIES, aux_to_unit, IMAGENET_MEAN,
                                        IMAGENET_STD, input_conventions)
from smmcl_core.data.thermal import check_colormap, invert_colormap, MISMATCH_DISTANCE
from smmcl_core.data.transforms import EvalTransform, RELEASED_SCALES, TrainTransform

RawSample = Tuple[np.ndarray, np.ndarray, np.ndarray]


def identity_lut(num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Label look-up table keeping ids 0..K-1 and ``ignore_index``; others invalid (-1)."""
    lut = np.full(256, -1, np.int16)
    lut[:num_classes] = np.arange(num_classes)
    lut[ignore_index] = ignore_index
    return lut


def shifted_lut(num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Look-up table for 0 = unlabeled, 1..K -> 0..K-1 (NYUDv2, CMX convention)."""
    lut = np.full(256, -1, np.int16)
    lut[0] = ignore_index
    lut[1:num_classes + 1] = np.arange(num_classes)
    lut[ignore_index] = ignore_index
    return lut


def apply_lut(raw: np.ndarray, lut: np.ndarray, path: Path) -> np.ndarray:
    """Map raw label ids to train ids; raise naming ``path`` on ids outside the table."""
    mapped = lut[raw]
    if (mapped < 0).any():
        bad = np.unique(raw[mapped < 0])
        shown = ', '.join(str(v) for v in bad[:10]) + (' ...' if bad.size > 10 else '')
        valid = np.flatnonzero(lut >= 0)
        raise ValueError(
            f'label file {path} has ids out of range: {shown} (valid raw ids: '
            f'{valid[0]}..{valid[-2]} and {valid[-1]})')
    return mapped.astype(np.uint8)


class RGBXDataset(Dataset):
    """Base class: split names, raw reading, label mapping and the transform.

    Subclasses set ``self.info``, ``self.names``, ``self.label_lut`` and implement
    :meth:`_read` before calling :meth:`_setup_transform`.

    Args (shared by all subclasses):
        train: Apply the training augmentation (else the full-image eval transform).
        crop_size: Training output ``(height, width)``.
        scales: Training scale factors.
        flip: Training horizontal flip.
        aux_interpolation: ``'linear'`` (released) or ``'nearest'`` aux resizing.
        aux_ranges: ``aux_to_unit`` keyword arguments; overrides the dataset defaults.
        mean: Normalisation mean.
        std: Normalisation std.
        seed: Mixed into the augmentation generator seed.
        resize: ``(H, W)`` network input size (``data.resize``, see ``data.resize``); None =
            native size.
        conventions: Input conventions of the checkpoint being evaluated
            (``preprocess.input_conventions(meta)``, e.g. the released weights' BGR and
            8-bit grey aux); ``None`` = this package's defaults. Evaluation only.
    """

    info: DatasetInfo
    names: List[str]
    label_lut: np.ndarray

    def __init__(self, *, train: bool = False, crop_size: Sequence[int] = (480, 640),
                 scales: Sequence[float] = RELEASED_SCALES, flip: bool = True,
                 aux_interpolation: str = 'linear', aux_ranges: Optional[dict] = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 seed: int = 0, resize: Optional[Sequence[int]] = None,
                 conventions: Optional[Dict[str, str]] = None):
        super().__init__()
        self.train = train
        self.seed = int(seed)
        self._options = dict(crop_size=crop_size, scales=scales, flip=flip,
                             aux_interpolation=aux_interpolation, aux_ranges=aux_ranges,
                             mean=tuple(mean), std=tuple(std), resize=resize,
                             conventions=input_conventions(conventions or {}))
        self._rng_cache: Optional[Tuple[int, np.random.Generator]] = None

    def _setup_transform(self) -> None:
        opts = self._options
        ranges = dict(self.info.aux_ranges)
        ranges.update(opts['aux_ranges'] or {})
        self.info = dataclasses.replace(self.info, mean=opts['mean'], std=opts['std'],
                                        aux_ranges=ranges)
        if self.train:
            if opts['conventions'] != input_conventions({}):
                raise ValueError(f"input conventions {opts['conventions']} are supported for "
                                 'evaluation only, not for training')
            self.transform = TrainTransform(
                opts['crop_size'], self.info.aux_modality, opts['mean'], opts['std'],
                opts['scales'], opts['flip'], self.info.ignore_index,
                opts['aux_interpolation'], ranges, resize=opts['resize'])
        else:
            self.transform = EvalTransform(self.info.aux_modality, opts['mean'], opts['std'],
                                           ranges, opts['conventions'], resize=opts['resize'])

    # --- metadata shortcuts -------------------------------------------------------------
    @property
    def class_names(self) -> Tuple[str, ...]:
        """Names of train ids 0..K-1."""
        return self.info.class_names

    @property
    def palette(self) -> np.ndarray:
        """(K,3) uint8 RGB colours."""
        return self.info.palette

    @property
    def ignore_index(self) -> int:
        """Label value to ignore."""
        return self.info.ignore_index

    @property
    def aux_modality(self) -> str:
        """``depth``, ``thermal`` or ``hha``."""
        return self.info.aux_modality

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.info.num_classes

    # --- samples ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def _read(self, name: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[Path]]:
        """Return raw ``(rgb, aux, raw label ids, [rgb file, aux file, label file])``."""
        raise NotImplementedError

    def raw_sample(self, index: int) -> RawSample:
        """Raw numpy sample before preprocessing.

        Returns:
            ``(rgb uint8 (H,W,3), aux raw (H,W) or (H,W,3), label uint8 (H,W) train ids with
            ignore_index)``.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f'sample index {index} out of range for {len(self)} samples')
        rgb, aux, raw_label, files = self._read(self.names[index])
        check_sample(rgb, aux, raw_label, files)
        label = apply_lut(raw_label, self.label_lut, files[2])
        return rgb, aux, label

    def problems(self, index: int) -> List[str]:
        """Everything wrong with sample ``index`` (``[]`` = fine), each naming its file.

        Reads the sample as training would and converts the aux image with the dataset's
        settings; subclasses that can check each file on its own report all of them.
        """
        try:
            _, aux, _ = self.raw_sample(index)
            aux_to_unit(aux, self.aux_modality, **self.info.aux_ranges)
        except (OSError, ValueError, KeyError) as exc:
            return [str(exc)]
        return []

    def sample(self, index: int, rng: Optional[np.random.Generator] = None
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transformed sample using ``rng`` (default: the per-worker generator)."""
        rgb, aux, label = self.raw_sample(index)
        return self.transform(rgb, aux, label, rng if rng is not None else self._generator())

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.sample(index)

    def _generator(self) -> np.random.Generator:
        # Re-seed whenever torch's seed changes: each DataLoader worker (and each epoch's
        # fresh workers) gets its own deterministic stream.
        torch_seed = torch.initial_seed()
        if self._rng_cache is None or self._rng_cache[0] != torch_seed:
            self._rng_cache = (torch_seed, np.random.default_rng([self.seed, torch_seed]))
        return self._rng_cache[1]


def _check_split(split: str, valid: Sequence[str], dataset: str) -> None:
    if split not in valid:
        raise ValueError(f'unknown {dataset} split {split!r}; valid: {", ".join(valid)}')


def _check_root(root: Path, dataset: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'{dataset} root folder not found: {root}')
    return root


class MFNetDataset(RGBXDataset):
    """MFNet RGB-thermal (original 4-channel layout or RGB/Thermal/Label folders)."""

    SPLITS = ('train', 'val', 'test', 'test_day', 'test_night')

    def __init__(self, root: Path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        _check_split(split, self.SPLITS, 'mfnet')
        self.root = _check_root(root, 'mfnet')
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


class NYUDv2Dataset(RGBXDataset):
    """NYUDv2 40 classes in the CMX layout, with depth (``Depth/``) or HHA (``HHA/``)."""

    SPLITS = ('train', 'test')

    def __init__(self, root: Path, split: str = 'train', aux_modality: str = 'depth',
                 intrinsics: Optional[Any] = None, **kwargs):
        super().__init__(**kwargs)
        _check_split(split, self.SPLITS, 'nyudv2')
        if aux_modality not in ('depth', 'hha'):
            raise ValueError(f'nyudv2 aux_modality must be depth or hha, got {aux_modality!r}')
        self.root = _check_root(root, 'nyudv2')
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
            from smmcl_core.data.hha import depth_to_metres
            depth = read_aux(aux_path, 'depth')
            try:
                metres = depth_to_metres(depth)
            except ValueError as exc:
                raise ValueError(f'cannot compute HHA from {aux_path}: {exc}') from exc
            aux = hha.depth_to_hha(metres, self.intrinsics_for(*metres.shape))
        else:
            aux = read_aux(aux_path, self.aux_modality)
        return (read_rgb(rgb_path), aux, read_label(label_path),
                [rgb_path, aux_path, label_path])


class LLRGBDDataset(RGBXDataset):
    """LLRGBD-synthetic low-light RGB-D, 14 classes including void (released setting)."""

    SPLITS = ('train', 'test')

    def __init__(self, root: Path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        _check_split(split, self.SPLITS, 'llrgbd')
        root = _check_root(root, 'llrgbd')
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


_CLASSES_KEYS = ('class_names', 'aux_modality', 'palette', 'ignore_index', 'name',
                 'aux_ranges', 'background', 'thermal_colormap', 'label_colors')


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


def load_classes_file(root: Path) -> Tuple[DatasetInfo, Path]:
    """Read ``classes.yaml`` / ``classes.yml`` / ``classes.json`` of a generic folder.

    ``thermal_colormap`` is stored in ``info.aux_ranges`` (so it reaches every
    ``aux_to_unit`` call and the checkpoint meta); ``label_colors`` is read by
    :func:`parse_label_colors` in :class:`FolderDataset`.

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
            aux_ranges['thermal_colormap'] = check_colormap(str(colormap))
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
    return info, path


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
        self.root = _check_root(root, 'folder')
        self.info, self.classes_file = load_classes_file(self.root)
        if aux_modality and aux_modality != self.info.aux_modality:
            ranges = {k: v for k, v in self.info.aux_ranges.items()
                      if k != 'thermal_colormap' or aux_modality == 'thermal'}
            self.info = self.info.with_aux(aux_modality, ranges)
        spec = yaml.safe_load(self.classes_file.read_text()) \
            if self.classes_file.suffix != '.json' else json.loads(self.classes_file.read_text())
        self.label_colors = parse_label_colors(
            spec['label_colors'], self.info.class_names, self.info.ignore_index,
            self.classes_file) if spec.get('label_colors') else None
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
            try:
                check_sample(arrays['rgb'], arrays['aux'], arrays['label'],
                             [paths['rgb'], paths['aux'], paths['label']])
            except ValueError as exc:
                found.append(str(exc))
        return found

"""The dataset contract every RGB-X layout implements (:class:`RGBXDataset`) and label tables.

Every dataset yields ``(rgb (3,H,W) float32, aux (3,H,W) float32, label (H,W) int64)``
(normalised, ``255`` = ignore), has ``info`` (a :class:`DatasetInfo`) plus the shortcuts
``class_names``, ``palette``, ``ignore_index``, ``aux_modality``, and ``raw_sample(i)``
returning the raw numpy ``(rgb uint8 (H,W,3), aux raw, label uint8 (H,W) train ids)``.
``NAME`` in the layouts = an entry of the split file; a known image extension on it is dropped.

Errors: a missing or unreadable file, size mismatch within a sample and label ids outside
the classes raise ``FileNotFoundError`` / ``ValueError`` naming the file.

Unregistered pairs: a dataset with a ``registration`` (a ``FixedRegistration``; the folder
dataset's ``classes.yaml`` ``aux_registration``) brings each aux image into the RGB frame
before anything else; without one an aux image of another size than its RGB image is an error
naming the file and ``aux_registration`` (never stretched). Labels are in the RGB frame.

Augmentation randomness: ``__getitem__`` draws from a numpy Generator seeded by
``(seed, torch.initial_seed())``; inside a DataLoader worker ``torch.initial_seed()`` is the
worker seed, so the stream is deterministic per worker once torch is seeded. Use
``sample(i, rng)`` to pass a Generator explicitly.
"""

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from smmcl_core.data.classes import DatasetInfo, IGNORE_INDEX
from smmcl_core.data.fixed_registration import FixedRegistration
from smmcl_core.data.io import check_sample
from smmcl_core.data.preprocess import aux_to_unit, IMAGENET_MEAN, IMAGENET_STD, input_conventions
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
    registration: Optional[FixedRegistration] = None  # None: the pairs are registered

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
        aux = register_sample(rgb, aux, raw_label, files, self.registration)
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


def register_sample(rgb: np.ndarray, aux: np.ndarray, label: np.ndarray, files: Sequence[Path],
                    registration: Optional[FixedRegistration]) -> np.ndarray:
    """``aux`` in the frame of ``rgb`` (``files``: rgb, aux, ... paths for the messages).

    Without a registration an aux image whose size alone differs (the label fits the RGB) is
    an unregistered pair; other size mismatches are left to ``check_sample``.

    Raises:
        ValueError: Another size without a registration, or a refused pair (names the file).
    """
    if registration is None:
        if aux.shape[:2] != rgb.shape[:2] and label.shape[:2] == rgb.shape[:2]:
            raise ValueError(
                f'{files[1]}: aux image {aux.shape[1]}x{aux.shape[0]} but {files[0]} is '
                f'{rgb.shape[1]}x{rgb.shape[0]}: the pair is not registered; name '
                'aux_registration (resize, homography + aux_homography) in classes.yaml '
                '(README "Unregistered cameras")')
        return aux
    try:
        return registration(aux, rgb.shape[:2])
    except ValueError as exc:
        raise ValueError(f'{files[1]}: {exc}') from exc


def check_split(split: str, valid: Sequence[str], dataset: str) -> None:
    """Raise ``ValueError`` listing ``valid`` when ``split`` is not one of them."""
    if split not in valid:
        raise ValueError(f'unknown {dataset} split {split!r}; valid: {", ".join(valid)}')


def check_root(root: Path, dataset: str) -> Path:
    """``root`` as a Path; ``FileNotFoundError`` naming ``dataset`` when it is no folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'{dataset} root folder not found: {root}')
    return root

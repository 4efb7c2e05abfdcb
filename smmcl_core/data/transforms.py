"""Training augmentation and evaluation transforms, following the released SMMCL pipeline.

Released order (``dataloader.TrainPre``): random horizontal flip -> random scale chosen from
``[0.5, 0.75, 1, 1.25, 1.5, 1.75]`` (RGB and aux bilinear, label nearest) -> ImageNet
normalisation of both modalities -> random crop to the crop size, padding (centred) with 0 for
the normalised images and 255 for the label. Evaluation feeds the full image, normalised.

Here the aux image is first converted to its [0, 1] unit map by ``aux_to_unit`` (the released
code divides the 8-bit file by 255), so the scaling of e.g. 16-bit depth is identical at train
and deploy time.

Randomness comes only from the ``numpy.random.Generator`` passed to ``__call__``, so a sample is
reproducible from its generator state.
"""

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from smmcl_core.data.preprocess import (aux_to_unit, IMAGENET_MEAN, IMAGENET_STD,
                                        normalize_unit, rgb_to_unit, unit_to_three_channels)
from smmcl_core.data.resize import check_resize, resize_inputs, resize_sample
from smmcl_core.data.tensors import hwc_to_tensor, to_input_tensors

RELEASED_SCALES: Tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

_INTERPOLATION = {'linear': cv2.INTER_LINEAR, 'nearest': cv2.INTER_NEAREST}

Sample = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _pad_to(image: np.ndarray, size: Tuple[int, int], value: float) -> np.ndarray:
    """Pad (centred, as released) up to ``size`` = (h, w); larger sides are left alone."""
    pad_h = max(size[0] - image.shape[0], 0)
    pad_w = max(size[1] - image.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return image
    widths = [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)]
    widths += [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, mode='constant', constant_values=value)


def label_to_tensor(label: np.ndarray) -> torch.Tensor:
    """uint8 (H,W) label -> int64 (H,W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(label)).long()


class TrainTransform:
    """Random flip, scale and crop/pad; output tensors of exactly ``crop_size``.

    Args:
        crop_size: Output ``(height, width)``.
        aux_modality: Modality of the raw aux image.
        mean: Normalisation mean (both modalities).
        std: Normalisation std (both modalities).
        scales: Scale factors to choose from uniformly (the released list by default).
        flip: Whether to flip horizontally with probability 0.5.
        ignore_index: Label value used for padding.
        aux_interpolation: ``'linear'`` (released) or ``'nearest'`` for resizing the aux map.
        aux_ranges: Keyword arguments for ``aux_to_unit``.
        resize: ``(H, W)`` every raw sample is resized to before augmentation
            (``data.resize``); ``None`` keeps the native size.
    """

    def __init__(self, crop_size: Sequence[int], aux_modality: str,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 scales: Sequence[float] = RELEASED_SCALES, flip: bool = True,
                 ignore_index: int = 255, aux_interpolation: str = 'linear',
                 aux_ranges: Optional[dict] = None, resize: Optional[Sequence[int]] = None):
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        if min(self.crop_size) < 1:
            raise ValueError(f'crop_size must be positive, got {tuple(crop_size)}')
        if aux_interpolation not in _INTERPOLATION:
            raise ValueError(
                f'unknown aux_interpolation {aux_interpolation!r}; valid: '
                f'{", ".join(_INTERPOLATION)}')
        if not scales or min(scales) <= 0:
            raise ValueError(f'scales must be positive, got {tuple(scales)}')
        self.aux_modality = aux_modality
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip
        self.ignore_index = ignore_index
        self.aux_interpolation = aux_interpolation
        self.aux_ranges = dict(aux_ranges or {})
        self.resize = check_resize(resize)

    def __call__(self, rgb: np.ndarray, aux: np.ndarray, label: np.ndarray,
                 rng: np.random.Generator) -> Sample:
        """Augment one raw sample.

        Args:
            rgb: ``uint8 (H,W,3)``.
            aux: Raw aux image (H,W) or (H,W,3).
            label: ``uint8 (H,W)`` train ids, ``ignore_index`` = ignore.
            rng: Source of all randomness.

        Returns:
            ``(rgb (3,h,w) float32, aux (3,h,w) float32, label (h,w) int64)`` with
            ``(h, w) = crop_size``.
        """
        rgb_f = rgb_to_unit(rgb)  # (H,W,3)
        aux_f = unit_to_three_channels(aux_to_unit(aux, self.aux_modality, **self.aux_ranges))
        rgb_f, aux_f, label = resize_sample(rgb_f, aux_f, label, self.resize)

        if self.flip and rng.random() < 0.5:
            rgb_f, aux_f, label = rgb_f[:, ::-1], aux_f[:, ::-1], label[:, ::-1]

        scale = self.scales[int(rng.integers(len(self.scales)))]
        if scale != 1.0:
            h = max(int(rgb_f.shape[0] * scale), 1)
            w = max(int(rgb_f.shape[1] * scale), 1)
            rgb_f = cv2.resize(np.ascontiguousarray(rgb_f), (w, h),
                               interpolation=cv2.INTER_LINEAR)
            aux_f = cv2.resize(np.ascontiguousarray(aux_f), (w, h),
                               interpolation=_INTERPOLATION[self.aux_interpolation])
            label = cv2.resize(np.ascontiguousarray(label), (w, h),
                               interpolation=cv2.INTER_NEAREST)

        rgb_n = normalize_unit(rgb_f, self.mean, self.std)
        aux_n = normalize_unit(aux_f, self.mean, self.std)

        # Crop first (position uniform over all valid offsets), then pad what is short.
        crop_h, crop_w = self.crop_size
        h, w = label.shape
        top = int(rng.integers(h - crop_h + 1)) if h > crop_h else 0
        left = int(rng.integers(w - crop_w + 1)) if w > crop_w else 0
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        rgb_n = _pad_to(rgb_n[window], self.crop_size, 0.0)  # (crop_h, crop_w, 3)
        aux_n = _pad_to(aux_n[window], self.crop_size, 0.0)
        label = _pad_to(label[window], self.crop_size, self.ignore_index)
        return hwc_to_tensor(rgb_n), hwc_to_tensor(aux_n), label_to_tensor(label)


class EvalTransform:
    """Full-image normalisation without augmentation (the engine slides windows if needed).

    Args:
        aux_modality: Modality of the raw aux image.
        mean: Normalisation mean (both modalities).
        std: Normalisation std (both modalities).
        aux_ranges: Keyword arguments for ``aux_to_unit``.
        conventions: ``channel_order`` / ``aux_encoding`` for ``to_input_tensors`` (a
            checkpoint's ``input_conventions``); ``None`` = defaults.
        resize: ``(H, W)`` network input size (``data.resize``): the images are resized, the
            label keeps its native size (the engine brings the logits back to it).
    """

    def __init__(self, aux_modality: str, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, aux_ranges: Optional[dict] = None,
                 conventions: Optional[dict] = None, resize: Optional[Sequence[int]] = None):
        self.aux_modality = aux_modality
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.aux_ranges = dict(aux_ranges or {})
        self.conventions = dict(conventions or {})
        self.resize = check_resize(resize)

    def __call__(self, rgb: np.ndarray, aux: np.ndarray, label: np.ndarray,
                 rng: Optional[np.random.Generator] = None) -> Sample:
        """Normalise one raw sample; ``rng`` is unused (same call signature as training)."""
        rgb_t, aux_t = to_input_tensors(rgb, aux, self.aux_modality, self.mean, self.std,
                                        **self.conventions, **self.aux_ranges)
        if self.resize is not None:
            rgb_b, aux_b = resize_inputs(rgb_t[None], aux_t[None], self.resize)
            rgb_t, aux_t = rgb_b[0], aux_b[0]  # (3,h,w)
        return rgb_t, aux_t, label_to_tensor(label)

"""The one place raw images become network input.

Shared by the datasets, ``Segmenter``, the ROS node and the bag tools, so that training and
deployment see identical numbers. numpy only: :func:`to_input_arrays` gives the ``(3,H,W)``
float32 arrays, :func:`smmcl_core.data.tensors.to_input_tensors` the same as torch tensors.

Raw auxiliary encodings understood by :func:`aux_to_unit` (dispatch on dtype and channels):

============  ==========================  ===============================================
modality      raw dtype / shape           unit map in [0, 1]
============  ==========================  ===============================================
``depth``     ``uint16 (H,W)``            millimetres; ``min(d / 1000, depth_max_m) /
                                          depth_max_m``; 0 = invalid -> 0
``depth``     ``float16/32/64 (H,W)``     metres; same scaling; 0, <0, NaN, inf -> 0
``depth``     ``uint8 (H,W)``             already scaled depth image: ``/ 255``
``thermal``   ``uint8 (H,W)``             ``/ 255``
``thermal``   ``uint16`` or float         ``thermal_range=(lo, hi)`` if given, else the
              ``(H,W)``                   per-image ``thermal_percentiles`` (default 1st
                                          and 99th) of the finite values; clipped
``thermal``   ``uint8 (H,W,3)`` RGB       pseudo-colour: ``thermal_colormap`` inverted
                                          (``data.thermal``), else luminance + warning
``hha``       ``uint8 (H,W,3)``           ``/ 255``
============  ==========================  ===============================================

A trailing singleton channel ``(H,W,1)`` is accepted for the single-channel encodings.
Anything else raises ``ValueError`` naming the modality, dtype and shape.

The network input follows the released SMMCL code: both modalities are divided to [0, 1] and
normalised with the ImageNet mean/std per channel; a single-channel aux map is replicated to
three channels first.

Input conventions (checkpoint meta keys, see :func:`input_conventions`; a checkpoint without
them gets the defaults, i.e. the behaviour above):

- ``channel_order``: ``'rgb'`` (default) or ``'bgr'``: the order in which the network expects
  the channels of every colour image, the RGB image and a 3-channel HHA aux alike. Callers
  always pass RGB-ordered arrays; ``'bgr'`` reverses them here. The authors' released weights
  were trained on BGR: their loader's ``cv2.imread(path, cv2.COLOR_BGR2RGB)`` passes a colour
  conversion code (4) as the read flag, which OpenCV takes as ``IMREAD_ANYCOLOR``.
- ``aux_encoding``: ``'unit'`` (default: the table above) or ``'imread_grayscale'``: the
  single-channel aux as the released loader read it with ``cv2.IMREAD_GRAYSCALE``: uint8 as
  is, uint16 reduced to its high byte (``v >> 8``), then ``/ 255``. Float depth in metres is
  first turned into the uint16 millimetres a ROS ``16UC1`` image would carry (rounded,
  invalid -> 0), so ``32FC1`` and ``16UC1`` depth reach the network in the same units. HHA is
  read as 8-bit colour either way.
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from smmcl_core.data.thermal import color_thermal_to_intensity

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)

AUX_MODALITIES: Tuple[str, ...] = ('depth', 'thermal', 'hha')

DEFAULT_DEPTH_MAX_M = 10.0
DEFAULT_THERMAL_PERCENTILES = (1.0, 99.0)

CHANNEL_ORDERS: Tuple[str, ...] = ('rgb', 'bgr')
AUX_ENCODING_CONVENTIONS: Tuple[str, ...] = ('unit', 'imread_grayscale')
# Meta key -> (default, valid values). The defaults are what checkpoints without the keys
# (everything trained by this package) have always meant.
CONVENTIONS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    'channel_order': ('rgb', CHANNEL_ORDERS),
    'aux_encoding': ('unit', AUX_ENCODING_CONVENTIONS),
}


def _describe(aux: np.ndarray) -> str:
    return f'dtype={aux.dtype}, shape={tuple(aux.shape)}'


def _single_channel(aux: np.ndarray, modality: str) -> np.ndarray:
    """Return an (H,W) view of a single-channel image or raise naming the shape."""
    if aux.ndim == 3 and aux.shape[2] == 1:
        aux = aux[:, :, 0]
    if aux.ndim != 2:
        raise ValueError(
            f'unsupported {modality} encoding ({_describe(aux)}): expected a single-channel '
            f'(H,W) image')
    return aux


def _depth_to_unit(aux: np.ndarray, depth_max_m: float) -> np.ndarray:
    if depth_max_m <= 0:
        raise ValueError(f'depth_max_m must be > 0, got {depth_max_m}')
    aux = _single_channel(aux, 'depth')
    if aux.dtype == np.uint8:
        return aux.astype(np.float32) / 255.0
    if aux.dtype == np.uint16:
        metres = aux.astype(np.float32) / 1000.0  # 0 mm stays 0 = invalid
    elif np.issubdtype(aux.dtype, np.floating):
        metres = aux.astype(np.float32)
        metres[~np.isfinite(metres) | (metres < 0)] = 0.0
    else:
        raise ValueError(
            f'unsupported depth encoding ({_describe(aux)}): expected uint16 millimetres, '
            f'float metres or uint8')
    return np.clip(metres / np.float32(depth_max_m), 0.0, 1.0).astype(np.float32)


def uint16_percentiles(image: np.ndarray, percentiles: Sequence[float]) -> list:
    """``np.percentile(image, percentiles)`` (linear interpolation) for a uint16 image, in O(N).

    The k-th smallest value (0-based) is the first v whose cumulative count exceeds k.
    """
    cumulative = np.cumsum(np.bincount(image.ravel(), minlength=1 << 16))
    last = int(cumulative[-1]) - 1
    out = []
    for q in percentiles:
        position = float(q) / 100.0 * last
        below = int(np.floor(position))
        above = min(below + 1, last)
        v_below, v_above = np.searchsorted(cumulative, [below, above], side='right')
        out.append(float(v_below) + (float(v_above) - float(v_below)) * (position - below))
    return out


def _thermal_to_unit(aux: np.ndarray, thermal_range: Optional[Sequence[float]],
                     thermal_percentiles: Sequence[float], thermal_colormap: str = ''
                     ) -> np.ndarray:
    if aux.ndim == 3 and aux.shape[2] in (3, 4) and aux.dtype == np.uint8:
        aux = color_thermal_to_intensity(aux, thermal_colormap)  # pseudo-colour -> (H,W)
    aux = _single_channel(aux, 'thermal')
    if aux.dtype == np.uint8:
        return aux.astype(np.float32) / 255.0
    if not (aux.dtype == np.uint16 or np.issubdtype(aux.dtype, np.floating)):
        raise ValueError(
            f'unsupported thermal encoding ({_describe(aux)}): expected uint8, uint16 or '
            f'float')
    if aux.dtype == np.uint16:
        # Radiometric cameras stream 16-bit frames at camera rate: a 65536-bin histogram gives
        # the same percentiles as np.percentile without sorting, and uint16 has no NaN/inf.
        if thermal_range is not None:
            lo, hi = (float(v) for v in thermal_range)
        else:
            lo, hi = uint16_percentiles(aux, thermal_percentiles)
        if not hi > lo:
            return np.full(aux.shape, 0.5, np.float32)
        out = aux.astype(np.float32)
        out -= np.float32(lo)
        out *= np.float32(1.0 / (hi - lo))
        return np.clip(out, 0.0, 1.0, out=out)
    values = aux.astype(np.float64)
    finite = np.isfinite(values)
    if thermal_range is not None:
        lo, hi = (float(v) for v in thermal_range)
    else:
        if not finite.any():
            return np.zeros(aux.shape, np.float32)
        lo, hi = np.percentile(values[finite], list(thermal_percentiles))
    if not hi > lo:
        # A flat image (or a degenerate range) carries no contrast; map it to mid-grey
        # rather than dividing by zero.
        out = np.full(aux.shape, 0.5, np.float32)
    else:
        out = ((values - lo) / (hi - lo)).astype(np.float32)
    out[~finite] = 0.0
    return np.clip(out, 0.0, 1.0)


def _hha_to_unit(aux: np.ndarray) -> np.ndarray:
    if aux.dtype != np.uint8 or aux.ndim != 3 or aux.shape[2] != 3:
        raise ValueError(
            f'unsupported hha encoding ({_describe(aux)}): expected uint8 (H,W,3)')
    return aux.astype(np.float32) / 255.0


def input_conventions(meta: Mapping[str, Any]) -> Dict[str, str]:
    """The input conventions of a checkpoint ``meta`` (defaults for keys it lacks).

    Returns:
        ``{'channel_order': ..., 'aux_encoding': ...}``, keyword arguments of
        :func:`to_input_tensors`.

    Raises:
        ValueError: a value that is not valid (the message names the key and valid values).
    """
    out = {}
    for key, (default, valid) in CONVENTIONS.items():
        value = meta.get(key, default)
        if value not in valid:
            raise ValueError(f'checkpoint meta {key}={value!r} is not one of {", ".join(valid)}')
        out[key] = str(value)
    return out


def _imread_grayscale_to_unit(aux: np.ndarray, modality: str) -> np.ndarray:
    """Single-channel aux as ``cv2.imread(path, cv2.IMREAD_GRAYSCALE) / 255`` would give it."""
    aux = _single_channel(aux, modality)
    if aux.dtype == np.uint8:
        gray = aux
    elif aux.dtype == np.uint16:
        gray = (aux >> 8).astype(np.uint8)  # OpenCV's 16 -> 8 bit conversion keeps the high byte
    elif modality == 'depth' and np.issubdtype(aux.dtype, np.floating):
        # Metres -> the uint16 millimetres of a 16UC1 image (0 = invalid), then the same.
        mm = aux.astype(np.float64) * 1000.0
        mm[~np.isfinite(mm) | (mm < 0)] = 0.0
        gray = (np.clip(np.rint(mm), 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
    else:
        raise ValueError(
            f'unsupported {modality} encoding ({_describe(aux)}) for aux_encoding '
            f"'imread_grayscale': expected uint8 or uint16" +
            (' or float metres' if modality == 'depth' else ''))
    unit = gray.astype(np.float32)
    unit /= np.float32(255.0)
    return unit


def aux_to_unit(aux: np.ndarray, modality: str, *, encoding: str = 'unit',
                depth_max_m: float = DEFAULT_DEPTH_MAX_M,
                thermal_range: Optional[Sequence[float]] = None,
                thermal_percentiles: Sequence[float] = DEFAULT_THERMAL_PERCENTILES,
                thermal_colormap: str = '') -> np.ndarray:
    """Convert a raw auxiliary image to a float32 map in [0, 1].

    Args:
        aux: Raw image as stored on disk or received from ROS (see the module table).
        modality: ``'depth'``, ``'thermal'`` or ``'hha'``.
        encoding: ``'unit'`` (the module table) or ``'imread_grayscale'`` (the released
            loader's reading, see the module docstring; the ranges below are then unused).
        depth_max_m: Depth (metres) mapped to 1; farther readings saturate at 1.
        thermal_range: Fixed ``(lo, hi)`` raw thermal values mapped to 0 and 1 for uint16 /
            float thermal; ``None`` uses per-image percentiles.
        thermal_percentiles: Percentiles used as ``(lo, hi)`` when no fixed range is given.
        thermal_colormap: Colour map of pseudo-colour (RGB) thermal images, inverted back to
            intensity (see ``smmcl_core.data.thermal``); ``''`` = luminance with a warning.

    Returns:
        float32 ``(H,W)`` for depth/thermal, ``(H,W,3)`` for HHA, values in [0, 1].

    Raises:
        ValueError: Unknown modality, or an encoding (dtype/shape) it cannot interpret.
    """
    aux = np.asarray(aux)
    if encoding not in AUX_ENCODING_CONVENTIONS:
        raise ValueError(f'unknown aux encoding {encoding!r}; valid: '
                         f'{", ".join(AUX_ENCODING_CONVENTIONS)}')
    if encoding == 'imread_grayscale' and modality in ('depth', 'thermal'):
        return _imread_grayscale_to_unit(aux, modality)
    if modality == 'depth':
        return _depth_to_unit(aux, depth_max_m)
    if modality == 'thermal':
        return _thermal_to_unit(aux, thermal_range, thermal_percentiles, thermal_colormap)
    if modality == 'hha':
        return _hha_to_unit(aux)
    raise ValueError(f'unknown aux modality {modality!r}; valid: {", ".join(AUX_MODALITIES)}')


def rgb_to_unit(rgb: np.ndarray) -> np.ndarray:
    """Convert an RGB ``uint8 (H,W,3)`` image to float32 in [0, 1]."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'unsupported rgb image ({_describe(rgb)}): expected uint8 (H,W,3)')
    unit = rgb.astype(np.float32)
    unit /= np.float32(255.0)  # in place: one allocation per frame
    return unit


def unit_to_three_channels(unit: np.ndarray) -> np.ndarray:
    """Replicate an (H,W) unit map to (H,W,3); (H,W,3) passes through."""
    if unit.ndim == 2:
        return np.repeat(unit[:, :, None], 3, axis=2)
    return unit


def normalize_unit(unit: np.ndarray, mean: Sequence[float], std: Sequence[float]
                   ) -> np.ndarray:
    """Apply per-channel ``(x - mean) / std`` to a float (H,W,3) image in [0, 1]."""
    mean_arr = np.asarray(mean, np.float32).reshape(1, 1, -1)
    std_arr = np.asarray(std, np.float32).reshape(1, 1, -1)
    out = unit - mean_arr
    out /= std_arr
    return out.astype(np.float32, copy=False)


def normalize_to_chw(unit: np.ndarray, mean: Sequence[float], std: Sequence[float]
                     ) -> np.ndarray:
    """:func:`normalize_unit` + HWC -> CHW in one pass, for the per-frame path.

    Args:
        unit: float32 ``(H,W,C)`` image in [0, 1], or ``(H,W)`` (replicated to every channel,
            as :func:`unit_to_three_channels` would).
        mean: Per-channel mean (C values).
        std: Per-channel std (C values).

    Returns:
        Contiguous ``(C,H,W)`` float32 array, bit-identical to the three-step path but
        written straight into one buffer instead of four intermediate copies.
    """
    out = np.empty((len(mean),) + unit.shape[:2], np.float32)  # (C,H,W)
    for c, (m, s) in enumerate(zip(mean, std)):
        plane = unit if unit.ndim == 2 else unit[:, :, c]
        np.subtract(plane, np.float32(m), out=out[c])
        out[c] /= np.float32(s)
    return out


def to_input_arrays(rgb: np.ndarray, aux: np.ndarray, modality: str,
                    mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD, *,
                    channel_order: str = 'rgb', aux_encoding: str = 'unit',
                    **ranges) -> Tuple[np.ndarray, np.ndarray]:
    """Turn one raw RGB + aux pair into normalised network inputs (no batch dimension).

    Args:
        rgb: ``uint8 (H,W,3)`` RGB image.
        aux: Raw auxiliary image (see :func:`aux_to_unit`), same H and W as ``rgb``.
        modality: ``'depth'``, ``'thermal'`` or ``'hha'``.
        mean: Per-channel mean, applied to both modalities.
        std: Per-channel std, applied to both modalities.
        channel_order: ``'rgb'`` or ``'bgr'``: channel order the network expects for colour
            images (RGB and HHA); the inputs are always RGB-ordered.
        aux_encoding: ``'unit'`` or ``'imread_grayscale'`` (see :func:`aux_to_unit`).
        **ranges: ``depth_max_m``, ``thermal_range``, ``thermal_percentiles``,
            ``thermal_colormap`` for :func:`aux_to_unit`.

    Returns:
        ``(rgb (3,H,W), aux (3,H,W))`` contiguous float32 arrays.

    Raises:
        ValueError: Unsupported encodings or mismatched image sizes.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f'unknown channel order {channel_order!r}; valid: '
                         f'{", ".join(CHANNEL_ORDERS)}')
    rgb_unit = rgb_to_unit(rgb)
    aux_unit = aux_to_unit(aux, modality, encoding=aux_encoding, **ranges)
    if channel_order == 'bgr':
        rgb_unit = rgb_unit[:, :, ::-1]  # views: normalize_to_chw reads plane by plane
        if aux_unit.ndim == 3:
            aux_unit = aux_unit[:, :, ::-1]
    if aux_unit.shape[:2] != rgb_unit.shape[:2]:
        raise ValueError(
            f'rgb and aux sizes differ: rgb {tuple(rgb_unit.shape[:2])}, '
            f'aux {tuple(aux_unit.shape[:2])}')
    return normalize_to_chw(rgb_unit, mean, std), normalize_to_chw(aux_unit, mean, std)

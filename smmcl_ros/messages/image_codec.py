"""``sensor_msgs/Image`` <-> numpy without cv_bridge.

Decoding builds a strided numpy *view* over the message buffer (``np.ndarray`` with explicit
strides), so row padding (``step > width * pixel_bytes``) costs nothing; a copy is made only
when the byte order of the message differs from the machine's (``is_bigendian``). Every failure
raises :class:`ImageDecodeError` whose ``reason`` is a short machine-readable token used for
log lines and diagnostics counts.

Encodings follow ``sensor_msgs/image_encodings`` and depth_image_proc: depth is ``16UC1``
(millimetres, 0 = invalid) or ``32FC1`` (metres, 0/NaN = invalid); thermal is ``mono8``,
``mono16`` or ``16UC1``.
"""

import array
import sys
from typing import Any, Dict, NamedTuple, Sequence, Tuple

import numpy as np

# encoding -> (numpy base dtype, channels)
ENCODINGS: Dict[str, Tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4),
    'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    '8UC1': (np.dtype(np.uint8), 1),
    '8UC3': (np.dtype(np.uint8), 3),
    'mono16': (np.dtype(np.uint16), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}

RGB_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
AUX_ENCODINGS = {
    'depth': ('16UC1', 'mono16', '32FC1'),
    # rgb8/bgr8: pseudo-colour thermal, inverted through the checkpoint's thermal_colormap.
    'thermal': ('mono8', '8UC1', 'mono16', '16UC1', 'rgb8', 'bgr8'),
    # HHA checkpoints: raw depth (encoded to HHA with the camera_info) or HHA images.
    'hha': ('16UC1', 'mono16', '32FC1', 'rgb8'),
}

_MACHINE_BIG_ENDIAN = sys.byteorder == 'big'


class ImageDecodeError(ValueError):
    """A message that cannot be turned into an image.

    Attributes:
        reason: Machine-readable token: ``unknown_encoding``, ``wrong_encoding``,
            ``zero_size``, ``bad_step`` or ``short_data``.
        detail: Human-readable explanation (encoding, sizes).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f'{reason}: {detail}')
        self.reason = reason
        self.detail = detail


def image_to_array(msg: Any) -> np.ndarray:
    """Decode any supported ``sensor_msgs/Image`` to a native-endian numpy array.

    Args:
        msg: A ``sensor_msgs/Image`` (anything with ``height``, ``width``, ``encoding``,
            ``is_bigendian``, ``step`` and a bytes-like ``data``).

    Returns:
        ``(H,W)`` for single-channel encodings, ``(H,W,C)`` otherwise, dtype from
        :data:`ENCODINGS`. A read-only view of ``msg.data`` unless a byte swap was needed.

    Raises:
        ImageDecodeError: Unknown encoding, zero size, a step smaller than a row, or data
            shorter than ``step * height``.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageDecodeError('unknown_encoding', f'encoding {encoding!r} is not supported')
    base, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError('zero_size', f'image is {width}x{height}')
    row_bytes = width * channels * base.itemsize
    if step < row_bytes:
        raise ImageDecodeError(
            'bad_step', f'step {step} < width*pixel bytes {row_bytes} ({encoding})')
    buf = memoryview(msg.data).cast('B')
    if buf.nbytes < step * height:
        raise ImageDecodeError(
            'short_data', f'{buf.nbytes} bytes < step*height = {step}*{height}')
    big = bool(msg.is_bigendian) and base.itemsize > 1
    dtype = base.newbyteorder('>' if big else '<')
    # Rows are `step` bytes apart; pixels and channels are packed inside a row.
    shape = (height, width, channels)
    strides = (step, channels * base.itemsize, base.itemsize)
    view = np.ndarray(shape, dtype=dtype, buffer=buf, offset=0, strides=strides)
    if channels == 1:
        view = view[:, :, 0]  # (H,W)
    if base.itemsize > 1 and big != _MACHINE_BIG_ENDIAN:
        view = view.astype(base)  # the only copy: byte order differs from the machine's
    return view


def check_encoding(msg: Any, allowed: Sequence[str], kind: str) -> None:
    """Accept only ``allowed`` encodings on a stream carrying ``kind`` images (e.g. ``depth``).

    Raises:
        ImageDecodeError: ``wrong_encoding`` for a known encoding that does not fit the stream
            (e.g. depth sent to the RGB topic), ``unknown_encoding`` for any other.
    """
    if msg.encoding not in allowed:
        reason = 'wrong_encoding' if msg.encoding in ENCODINGS else 'unknown_encoding'
        raise ImageDecodeError(
            reason, f'encoding {msg.encoding!r} is not a valid {kind} encoding '
            f'({", ".join(allowed)})')


def decode_rgb(msg: Any) -> np.ndarray:
    """Decode a colour image to RGB ``uint8 (H,W,3)`` (a view where the encoding allows).

    Raises:
        ImageDecodeError: As :func:`image_to_array`, or ``wrong_encoding`` for encodings that
            are not colour/mono8 (e.g. depth sent to the RGB topic).
    """
    check_encoding(msg, RGB_ENCODINGS, 'RGB')
    image = image_to_array(msg)
    if msg.encoding == 'rgb8':
        return image
    if msg.encoding == 'bgr8':
        return image[:, :, ::-1]
    if msg.encoding == 'rgba8':
        return image[:, :, :3]
    if msg.encoding == 'bgra8':
        return image[:, :, 2::-1]
    return np.broadcast_to(image[:, :, None], image.shape + (3,))  # mono8: grey RGB


def decode_aux(msg: Any, modality: str) -> np.ndarray:
    """Decode an auxiliary image to the raw ``(H,W)`` array ``Segmenter.predict`` expects.

    Depth keeps its units (uint16 millimetres or float32 metres); thermal keeps its raw
    counts (uint8 or uint16). Invalid depth (0, NaN, inf) is left for preprocessing.

    Raises:
        ImageDecodeError: As :func:`image_to_array`, or ``wrong_encoding`` when the encoding
            does not fit ``modality``.
        ValueError: Unknown modality.
    """
    if modality not in AUX_ENCODINGS:
        raise ValueError(f'unknown aux modality {modality!r}; valid: {", ".join(AUX_ENCODINGS)}')
    check_encoding(msg, AUX_ENCODINGS[modality], modality)
    image = image_to_array(msg)
    if msg.encoding == 'bgr8':
        image = image[:, :, ::-1]  # pseudo-colour thermal is handed on in RGB order
    return image


class PackedImage(NamedTuple):
    """An array laid out as ``sensor_msgs/Image`` fields: packed rows, native byte order."""

    height: int
    width: int
    step: int
    is_bigendian: int
    data: np.ndarray  # (H*step,) uint8, a view of the packed pixels where possible


def pack_image(image: np.ndarray, encoding: str) -> PackedImage:
    """Check ``image`` against ``encoding`` and lay it out as ``sensor_msgs/Image`` rows.

    Shared by :func:`fill_image` (rclpy messages) and ``bag_io.image_message`` (rosbags).

    Args:
        image: ``(H,W)`` or ``(H,W,C)`` array whose dtype and channels match ``encoding``.
        encoding: One of :data:`ENCODINGS`.

    Raises:
        ValueError: Encoding unknown or not matching the array.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f'cannot encode {encoding!r}; supported: {", ".join(ENCODINGS)}')
    base, channels = ENCODINGS[encoding]
    image = np.asarray(image)
    got_channels = image.shape[2] if image.ndim == 3 else 1
    if image.dtype != base or got_channels != channels or image.ndim not in (2, 3):
        raise ValueError(
            f'array dtype={image.dtype} shape={image.shape} does not match encoding '
            f'{encoding!r} ({base}, {channels} channel(s))')
    height, width = int(image.shape[0]), int(image.shape[1])
    return PackedImage(height, width, width * channels * base.itemsize,
                       int(_MACHINE_BIG_ENDIAN and base.itemsize > 1),
                       np.ascontiguousarray(image).reshape(-1).view(np.uint8))


def fill_image(msg: Any, image: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Fill ``msg`` (a ``sensor_msgs/Image``) from an array, packed rows, native byte order.

    Args:
        msg: The message to fill (returned for chaining).
        image: ``(H,W)`` or ``(H,W,C)`` array whose dtype and channels match ``encoding``.
        encoding: One of :data:`ENCODINGS`.
        header: Header to copy (the caller's object is assigned, not deep-copied).

    Raises:
        ValueError: Encoding unknown or not matching the array.
    """
    packed = pack_image(image, encoding)
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.step = packed.height, packed.width, packed.step
    msg.encoding = encoding
    msg.is_bigendian = packed.is_bigendian
    data = array.array('B')
    # One copy; assigning an array.array skips rclpy's per-element checks.
    data.frombytes(packed.data)
    msg.data = data
    return msg

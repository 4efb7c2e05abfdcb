"""sensor_msgs/Image <-> numpy: every encoding, row padding, byte order and broken messages."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from smmcl_ros.messages import image_codec
from smmcl_ros.messages.image_codec import decode_aux, decode_rgb, fill_image, image_to_array
from smmcl_ros.messages.image_codec import ImageDecodeError
from smmcl_ros.pipeline.aux import resize_nearest

RNG = np.random.default_rng(0)


def _msg(array: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False,
         truncate: int = 0) -> SimpleNamespace:
    """Build an Image-like message by hand (independent of fill_image), rows padded by pad."""
    height, width = array.shape[:2]
    dtype = array.dtype.newbyteorder('>' if big_endian else '<')
    rows = array.astype(dtype).reshape(height, -1).view(np.uint8)  # (H, row_bytes)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    data = padded.tobytes()
    if truncate:
        data = data[:-truncate]
    return SimpleNamespace(height=height, width=width, encoding=encoding,
                           is_bigendian=int(big_endian), step=padded.shape[1], data=data)


RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('pad', [0, 1, 3])
@pytest.mark.parametrize('encoding,source', [
    ('rgb8', RGB),
    ('bgr8', RGB[:, :, ::-1]),
    ('rgba8', np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ('bgra8', np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_decode_to_rgb(encoding, source, pad):
    decoded = decode_rgb(_msg(source, encoding, pad=pad))
    assert decoded.shape == (5, 7, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, RGB)


def test_mono8_rgb_is_grey_replicated():
    grey = RGB[:, :, 0]
    decoded = decode_rgb(_msg(grey, 'mono8', pad=2))
    assert decoded.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(decoded[:, :, c], grey)


def test_padded_rows_are_a_view_not_a_copy():
    msg = _msg(RGB, 'rgb8', pad=5)
    msg.data = bytearray(msg.data)
    decoded = image_to_array(msg)
    assert decoded.strides[0] == msg.step  # rows keep the message's padding: no repacking
    msg.data[0] = 255 - msg.data[0]
    assert decoded[0, 0, 0] == msg.data[0]  # shares memory with the message


@pytest.mark.parametrize('big_endian', [False, True])
@pytest.mark.parametrize('pad', [0, 1, 3])  # odd padding: 16-bit pixels at odd addresses
@pytest.mark.parametrize('encoding,values', [
    ('16UC1', RNG.integers(0, 65535, (4, 6), dtype=np.uint16)),
    ('mono16', RNG.integers(0, 65535, (4, 6), dtype=np.uint16)),
    ('32FC1', np.array(RNG.random((4, 6)) * 8.0, np.float32)),
])
def test_multibyte_depth_any_byte_order_and_padding(encoding, values, pad, big_endian):
    decoded = decode_aux(_msg(values, encoding, pad=pad, big_endian=big_endian), 'depth')
    assert decoded.dtype == values.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


def test_byteswap_only_when_order_differs():
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 257 + 1
    native_big = sys.byteorder == 'big'
    same = image_to_array(_msg(values, '16UC1', big_endian=native_big))
    other = image_to_array(_msg(values, '16UC1', big_endian=not native_big))
    assert not same.flags.owndata  # a view over the message buffer
    assert other.flags.owndata  # swapped into a new native array
    np.testing.assert_array_equal(same, other)


def test_depth_nan_and_zero_pass_through_for_preprocessing():
    depth = np.array([[0.0, np.nan], [np.inf, 1.5]], np.float32)
    decoded = decode_aux(_msg(depth, '32FC1'), 'depth')
    assert decoded[0, 0] == 0 and np.isnan(decoded[0, 1]) and np.isinf(decoded[1, 0])
    assert decoded[1, 1] == np.float32(1.5)


@pytest.mark.parametrize('encoding,values', [
    ('mono8', RNG.integers(0, 256, (3, 5), dtype=np.uint8)),
    ('8UC1', RNG.integers(0, 256, (3, 5), dtype=np.uint8)),
    ('mono16', RNG.integers(0, 65535, (3, 5), dtype=np.uint16)),
    ('16UC1', RNG.integers(0, 65535, (3, 5), dtype=np.uint16)),
])
def test_thermal_encodings(encoding, values):
    decoded = decode_aux(_msg(values, encoding, pad=1, big_endian=True), 'thermal')
    np.testing.assert_array_equal(decoded, values)
    assert decoded.dtype == values.dtype


@pytest.mark.parametrize('mutate,reason', [
    (lambda m: setattr(m, 'encoding', 'yuv422'), 'unknown_encoding'),
    (lambda m: setattr(m, 'encoding', ''), 'unknown_encoding'),
    (lambda m: setattr(m, 'height', 0), 'zero_size'),
    (lambda m: setattr(m, 'width', 0), 'zero_size'),
    (lambda m: setattr(m, 'step', m.width * 3 - 1), 'bad_step'),
    (lambda m: setattr(m, 'data', m.data[:-1]), 'short_data'),
    (lambda m: setattr(m, 'data', b''), 'short_data'),
])
def test_broken_messages_raise_with_reason(mutate, reason):
    msg = _msg(RGB, 'rgb8', pad=2)
    mutate(msg)
    with pytest.raises(ImageDecodeError) as info:
        decode_rgb(msg)
    assert info.value.reason == reason
    assert reason in str(info.value)


def test_data_shorter_than_step_times_height_even_if_last_row_fits():
    # The last row's padding is missing: rows fit, but the message breaks its own contract.
    msg = _msg(RGB, 'rgb8', pad=4, truncate=4)
    with pytest.raises(ImageDecodeError, match='short_data'):
        decode_rgb(msg)


def test_wrong_encoding_per_stream():
    depth = np.ones((2, 3), np.uint16)
    with pytest.raises(ImageDecodeError) as info:
        decode_rgb(_msg(depth, '16UC1'))
    assert info.value.reason == 'wrong_encoding'
    with pytest.raises(ImageDecodeError) as info:
        decode_aux(_msg(RGB, 'rgb8'), 'depth')
    assert info.value.reason == 'wrong_encoding'
    with pytest.raises(ImageDecodeError) as info:
        decode_aux(_msg(depth.astype(np.float32), '32FC1'), 'thermal')
    assert info.value.reason == 'wrong_encoding'
    # HHA checkpoints take depth (encoded with the camera_info) or HHA images, nothing else.
    np.testing.assert_array_equal(decode_aux(_msg(depth, '16UC1'), 'hha'), depth)
    assert decode_aux(_msg(RGB, 'rgb8'), 'hha').shape == RGB.shape
    with pytest.raises(ImageDecodeError) as info:
        decode_aux(_msg(depth.astype(np.uint8), 'mono8'), 'hha')
    assert info.value.reason == 'wrong_encoding'
    with pytest.raises(ValueError, match='lidar'):
        decode_aux(_msg(depth, '16UC1'), 'lidar')


@pytest.mark.parametrize('encoding,array', [
    ('mono8', RNG.integers(0, 256, (4, 5), dtype=np.uint8)),
    ('rgb8', RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)),
    ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
    ('32FC1', RNG.random((4, 5)).astype(np.float32)),
])
def test_fill_image_round_trip_real_message(encoding, array):
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = fill_image(Image(), array[::-1] if array.ndim == 2 else array, encoding, header)
    assert msg.header.frame_id == 'cam' and msg.header.stamp.nanosec == 345
    assert msg.step == array.shape[1] * array[0, 0].nbytes and len(msg.data) == msg.step * 4
    expected = array[::-1] if array.ndim == 2 else array
    np.testing.assert_array_equal(image_to_array(msg), expected)


def test_fill_image_rejects_mismatched_array():
    with pytest.raises(ValueError, match='mono8'):
        fill_image(SimpleNamespace(), np.zeros((2, 2), np.uint16), 'mono8')
    with pytest.raises(ValueError, match='bogus'):
        fill_image(SimpleNamespace(), np.zeros((2, 2), np.uint8), 'bogus')
    with pytest.raises(ValueError, match=r'shape=\(4,\)'):  # not an IndexError
        fill_image(SimpleNamespace(), np.zeros(4, np.uint8), 'mono8')


def test_every_listed_encoding_is_tested():
    tested = {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '8UC1', 'mono16', '16UC1', '32FC1'}
    assert set(image_codec.ENCODINGS) - tested == {'8UC3'}
    rgb = decode_rgb(_msg(RGB, 'rgb8'))
    np.testing.assert_array_equal(image_to_array(_msg(RGB, '8UC3')), rgb)


def test_resize_to_is_nearest_neighbour_and_keeps_matching_images():
    depth = np.array([[1000, 0], [2500, 65535]], np.uint16)
    big = resize_nearest(depth, 4, 6)
    assert big.shape == (4, 6) and big.dtype == np.uint16
    assert set(np.unique(big)) == {0, 1000, 2500, 65535}  # no interpolated depths
    assert big[0, 0] == 1000 and big[3, 5] == 65535 and big[0, 5] == 0 and big[3, 0] == 2500
    assert resize_nearest(depth, 2, 2) is depth  # no copy when sizes match

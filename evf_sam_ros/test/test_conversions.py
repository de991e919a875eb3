"""Tests for evf_sam_ros.codecs with real sensor_msgs messages (no rclpy.init needed)."""

import io
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from evf_sam_ros.codecs.compressed_image import compressed_imgmsg_to_rgb
from evf_sam_ros.codecs.depth import depth_array_to_metres, depth_imgmsg_to_metres
from evf_sam_ros.codecs.image import (
    SUPPORTED_COLOR_ENCODINGS,
    SUPPORTED_DEPTH_ENCODINGS,
    SUPPORTED_ENCODINGS,
    ConversionError,
    array_to_imgmsg,
    imgmsg_to_array,
    imgmsg_to_rgb,
    mask_to_imgmsg,
)

RNG = np.random.default_rng(0)

# encoding -> (dtype, channels)
LAYOUTS = {
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
    '8UC3': (np.uint8, 3),
    'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1),
    '8UC1': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    '16UC1': (np.uint16, 1),
    '32FC1': (np.float32, 1),
}


def random_array(encoding, height=5, width=7):
    dtype, channels = LAYOUTS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype == np.float32:
        return RNG.uniform(-100.0, 100.0, size=shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True, dtype=dtype)


def raw_image(encoding, height, width, step, data, is_bigendian=0):
    msg = Image()
    msg.encoding, msg.height, msg.width, msg.step = encoding, height, width, step
    msg.is_bigendian = is_bigendian
    msg.data = bytes(data)
    return msg


def test_constants_cover_layouts():
    assert set(SUPPORTED_ENCODINGS) == set(LAYOUTS)
    assert set(SUPPORTED_COLOR_ENCODINGS) | set(SUPPORTED_DEPTH_ENCODINGS) == set(LAYOUTS)


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_round_trip_every_encoding(encoding):
    array = random_array(encoding)
    msg = array_to_imgmsg(array, encoding)
    dtype, channels = LAYOUTS[encoding]
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * np.dtype(dtype).itemsize * channels
    assert len(msg.data) == msg.step * msg.height
    assert msg.is_bigendian == (1 if sys.byteorder == 'big' else 0)
    back = imgmsg_to_array(msg)
    assert back.dtype == dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert not back.flags.writeable  # passthrough is a read-only view of msg.data


def test_array_to_imgmsg_byte_layout_is_row_major_channel_last():
    array = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    msg = array_to_imgmsg(array, 'rgb8')
    assert bytes(msg.data) == bytes([1, 2, 3, 4, 5, 6])
    depth = np.array([[0x0102]], dtype=np.uint16)
    expected = b'\x02\x01' if sys.byteorder == 'little' else b'\x01\x02'
    assert bytes(array_to_imgmsg(depth, '16UC1').data) == expected


def test_bgr8_red_pixel_becomes_rgb_red():
    msg = raw_image('bgr8', 1, 2, 6, [0, 0, 255, 10, 20, 30])
    np.testing.assert_array_equal(imgmsg_to_rgb(msg), [[[255, 0, 0], [30, 20, 10]]])
    np.testing.assert_array_equal(imgmsg_to_array(msg), [[[0, 0, 255], [10, 20, 30]]])


def test_8uc3_is_treated_as_bgr8():
    msg = raw_image('8UC3', 1, 1, 3, [0, 0, 255])
    np.testing.assert_array_equal(imgmsg_to_rgb(msg), [[[255, 0, 0]]])


@pytest.mark.parametrize(
    'encoding, data, rgb',
    [
        ('rgb8', [10, 20, 30], [10, 20, 30]),
        ('rgba8', [10, 20, 30, 40], [10, 20, 30]),
        ('bgra8', [10, 20, 30, 40], [30, 20, 10]),
        ('mono8', [77], [77, 77, 77]),
        ('8UC1', [5], [5, 5, 5]),
    ],
)
def test_colour_conversions_to_rgb(encoding, data, rgb):
    msg = raw_image(encoding, 1, 1, len(data), data)
    out = imgmsg_to_array(msg, 'rgb8')
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], rgb)


@pytest.mark.parametrize(
    'encoding, data, luma',
    [
        ('rgb8', [255, 0, 0], 76),
        ('rgb8', [0, 255, 0], 150),
        ('rgb8', [0, 0, 255], 29),
        ('rgb8', [255, 255, 255], 255),
        ('bgr8', [0, 0, 255], 76),
        ('bgra8', [255, 0, 0, 9], 29),
        ('mono8', [123], 123),
    ],
)
def test_mono8_uses_bt601_luma(encoding, data, luma):
    msg = raw_image(encoding, 1, 1, len(data), data)
    out = imgmsg_to_array(msg, 'mono8')
    assert out.shape == (1, 1) and out.dtype == np.uint8
    assert out[0, 0] == luma


def test_conversions_return_new_writeable_arrays():
    msg = raw_image('bgr8', 2, 2, 6, range(12))
    rgb = imgmsg_to_rgb(msg)
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    rgb[:] = 0
    assert bytes(msg.data) == bytes(range(12))


def test_imgmsg_to_rgb_of_rgb8_is_a_copy_not_a_view():
    msg = raw_image('rgb8', 1, 2, 6, [1, 2, 3, 4, 5, 6])
    rgb = imgmsg_to_rgb(msg)
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    rgb[0, 0, 0] = 99
    assert msg.data[0] == 1


def test_padded_step_rgb8():
    pad = [0xEE] * 3
    rows = [[1, 2, 3, 4, 5, 6, 7, 8, 9] + pad, [11, 12, 13, 14, 15, 16, 17, 18, 19] + pad]
    msg = raw_image('rgb8', 2, 3, 12, rows[0] + rows[1])
    expected = np.array([r[:9] for r in rows], dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(imgmsg_to_array(msg), expected)
    np.testing.assert_array_equal(imgmsg_to_rgb(msg), expected)
    np.testing.assert_array_equal(
        imgmsg_to_array(raw_image('bgr8', 2, 3, 12, rows[0] + rows[1]), 'rgb8'),
        expected[..., ::-1],
    )


def test_padded_odd_step_16uc1_unaligned_rows():
    values = np.array([[1, 300], [65535, 4660]], dtype='<u2')
    data = values[0].tobytes() + b'\xaa' + values[1].tobytes() + b'\xaa'
    msg = raw_image('16UC1', 2, 2, 5, data, is_bigendian=0)
    out = imgmsg_to_array(msg)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize(
    'encoding, dtype, values',
    [
        ('16UC1', np.uint16, [[1, 258], [65535, 4660]]),
        ('mono16', np.uint16, [[7, 256], [0, 40000]]),
        ('32FC1', np.float32, [[1.5, -2.25], [1e-3, 1e6]]),
    ],
)
@pytest.mark.parametrize('big', [0, 1])
def test_endianness_is_honoured(encoding, dtype, values, big):
    values = np.array(values, dtype=dtype)
    wire = values.astype(np.dtype(dtype).newbyteorder('>' if big else '<'))
    msg = raw_image(encoding, 2, 2, 2 * wire.itemsize, wire.tobytes(), is_bigendian=big)
    out = imgmsg_to_array(msg)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_big_endian_16uc1_known_bytes():
    msg = raw_image('16UC1', 1, 2, 4, [0x01, 0x02, 0x12, 0x34], is_bigendian=1)
    np.testing.assert_array_equal(imgmsg_to_array(msg), [[0x0102, 0x1234]])


def test_extra_trailing_data_is_ignored():
    msg = raw_image('mono8', 1, 2, 2, [1, 2, 3, 4])
    np.testing.assert_array_equal(imgmsg_to_array(msg), [[1, 2]])


def test_duck_typed_message_with_list_data():
    msg = SimpleNamespace(
        encoding='bgr8', height=1, width=1, step=3, is_bigendian=0, data=[0, 0, 255]
    )
    np.testing.assert_array_equal(imgmsg_to_rgb(msg), [[[255, 0, 0]]])


def test_step_too_small_names_the_numbers():
    msg = raw_image('rgb8', 2, 4, 10, [0] * 24)
    with pytest.raises(ConversionError, match=r'step 10 .*width 4 x 3 .* = 12'):
        imgmsg_to_array(msg)


def test_data_too_short_names_the_numbers():
    msg = raw_image('16UC1', 3, 4, 8, [0] * 23)
    with pytest.raises(ConversionError, match=r'23 bytes .*step 8 x height 3 = 24'):
        imgmsg_to_array(msg)


@pytest.mark.parametrize('height, width', [(0, 4), (4, 0), (0, 0)])
def test_zero_size_rejected(height, width):
    msg = raw_image('mono8', height, width, width, [])
    with pytest.raises(ConversionError, match='zero size'):
        imgmsg_to_array(msg)


def test_unsupported_encoding_lists_supported():
    msg = raw_image('yuv422', 1, 1, 2, [0, 0])
    with pytest.raises(ConversionError, match=r"'yuv422'.*rgb8.*32FC1"):
        imgmsg_to_array(msg)


def test_unsupported_desired_rejected():
    msg = raw_image('rgb8', 1, 1, 3, [0, 0, 0])
    with pytest.raises(ConversionError, match=r"'bgr8'.*passthrough, rgb8, mono8"):
        imgmsg_to_array(msg, 'bgr8')


@pytest.mark.parametrize('desired', ['rgb8', 'mono8'])
def test_depth_to_colour_rejected(desired):
    msg = raw_image('16UC1', 1, 1, 2, [0, 1])
    with pytest.raises(ConversionError, match='16UC1'):
        imgmsg_to_array(msg, desired)
    with pytest.raises(
        ConversionError, match="cannot convert '16UC1' to rgb8.*depth_imgmsg_to_metres"
    ):
        imgmsg_to_rgb(msg)


def test_array_to_imgmsg_copies_header():
    header = Header(frame_id='camera_color_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = array_to_imgmsg(np.zeros((2, 3), np.uint8), 'mono8', header)
    assert msg.header.frame_id == 'camera_color_optical_frame'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)


def test_array_to_imgmsg_accepts_hxwx1_and_non_native_order():
    msg = array_to_imgmsg(np.full((2, 2, 1), 9, np.uint8), 'mono8')
    assert (msg.height, msg.width, msg.step) == (2, 2, 2)
    big = np.array([[1, 258]], dtype='>u2')
    np.testing.assert_array_equal(imgmsg_to_array(array_to_imgmsg(big, '16UC1')), [[1, 258]])


def test_array_to_imgmsg_from_non_contiguous_array():
    array = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)[::2, ::2]
    np.testing.assert_array_equal(imgmsg_to_array(array_to_imgmsg(array, 'rgb8')), array)


@pytest.mark.parametrize(
    'array, encoding, pattern',
    [
        (np.zeros((2, 2, 3), np.float64), 'rgb8', 'needs dtype uint8, got float64'),
        (np.zeros((2, 2), np.uint8), 'rgb8', r'HxWx3 array, got shape \(2, 2\)'),
        (np.zeros((2, 2, 3), np.uint8), 'mono8', r'HxW array, got shape \(2, 2, 3\)'),
        (np.zeros((2, 2, 3), np.uint8), 'rgba8', 'HxWx4'),
        (np.zeros((2, 2), np.float32), '16UC1', 'needs dtype uint16'),
        (np.zeros((2, 2), np.float64), '32FC1', 'needs dtype float32'),
        (np.zeros((0, 2), np.uint8), 'mono8', 'zero size'),
        (np.zeros((2, 2), np.uint8), 'jpeg', 'unsupported image encoding'),
    ],
)
def test_array_to_imgmsg_validation(array, encoding, pattern):
    with pytest.raises(ConversionError, match=pattern):
        array_to_imgmsg(array, encoding)


def test_mask_to_imgmsg():
    mask = np.array([[True, False, True], [False, False, True]])
    msg = mask_to_imgmsg(mask, Header(frame_id='cam'))
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('mono8', 2, 3, 3)
    assert msg.header.frame_id == 'cam'
    assert bytes(msg.data) == bytes([255, 0, 255, 0, 0, 255])
    with pytest.raises(ConversionError, match='HxW'):
        mask_to_imgmsg(np.zeros((2, 2, 1), bool))


def encode(array, fmt, **kwargs):
    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def compressed(data, fmt):
    msg = CompressedImage(format=fmt)
    msg.data = bytes(data)
    return msg


def test_compressed_png_is_lossless():
    rgb = RNG.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    out = compressed_imgmsg_to_rgb(compressed(encode(rgb, 'PNG'), 'png'))
    assert out.dtype == np.uint8 and out.flags.writeable and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_compressed_png_gray_and_rgba_become_rgb():
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    out = compressed_imgmsg_to_rgb(compressed(encode(gray, 'PNG'), 'mono8; png compressed '))
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 255]]], dtype=np.uint8)
    out = compressed_imgmsg_to_rgb(compressed(encode(rgba, 'PNG'), 'png'))
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_compressed_jpeg_keeps_colour_order():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:] = (200, 30, 60)
    msg = compressed(encode(rgb, 'JPEG', quality=95), 'rgb8; jpeg compressed bgr8')
    out = compressed_imgmsg_to_rgb(msg)
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 4


def test_compressed_corrupt_data_rejected():
    with pytest.raises(ConversionError, match=r"'jpeg', 12 bytes"):
        compressed_imgmsg_to_rgb(compressed(b'not an image', 'jpeg'))
    rgb = RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    jpeg = encode(rgb, 'JPEG')
    with pytest.raises(ConversionError, match=r"cannot decode CompressedImage \(format 'jpeg'"):
        compressed_imgmsg_to_rgb(compressed(jpeg[: len(jpeg) // 2], 'jpeg'))
    with pytest.raises(ConversionError, match='no data'):
        compressed_imgmsg_to_rgb(compressed(b'', 'png'))


def test_compressed_depth_rejected():
    msg = compressed(encode(np.zeros((2, 2), np.uint8), 'PNG'), '16UC1; compressedDepth png')
    with pytest.raises(ConversionError, match='compressedDepth'):
        compressed_imgmsg_to_rgb(msg)


@pytest.mark.parametrize('encoding', ['16UC1', 'mono16'])
def test_depth_millimetres_to_metres(encoding):
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    metres = depth_array_to_metres(mm, encoding)
    assert metres.dtype == np.float32 and metres.shape == (2, 2)
    assert np.isnan(metres[0, 0])
    np.testing.assert_array_equal(metres[0, 1:], [1.0])
    np.testing.assert_allclose(metres[1], [1.5, 65.535], rtol=1e-6)


def test_depth_float_metres_invalid_become_nan():
    raw = np.array([[0.0, -1.0, np.inf, -np.inf, np.nan, 2.5]], dtype=np.float32)
    metres = depth_array_to_metres(raw, '32FC1')
    assert metres.dtype == np.float32
    assert np.isnan(metres[0, :5]).all()
    assert metres[0, 5] == 2.5
    assert raw[0, 1] == -1.0  # input untouched


def test_depth_from_messages():
    mm = np.array([[0, 2500, 750]], dtype=np.uint16)
    wire = mm.astype('>u2').tobytes()
    metres = depth_imgmsg_to_metres(raw_image('16UC1', 1, 3, 6, wire, is_bigendian=1))
    assert np.isnan(metres[0, 0])
    np.testing.assert_allclose(metres[0, 1:], [2.5, 0.75], rtol=1e-6)
    metres = depth_imgmsg_to_metres(array_to_imgmsg(np.array([[1.25, 0.0]], np.float32), '32FC1'))
    assert metres[0, 0] == 1.25 and np.isnan(metres[0, 1])
    metres[0, 0] = 7.0  # result is a writeable new array


@pytest.mark.parametrize(
    'array, encoding, pattern',
    [
        (np.zeros((2, 2), np.float32), '16UC1', 'uint16'),
        (np.zeros((2, 2), np.int32), '32FC1', 'float'),
        (np.zeros((2, 2, 1), np.uint16), '16UC1', 'HxW'),
        (np.zeros((2, 2), np.uint8), 'mono8', 'unsupported depth encoding'),
    ],
)
def test_depth_array_validation(array, encoding, pattern):
    with pytest.raises(ConversionError, match=pattern):
        depth_array_to_metres(array, encoding)


def test_depth_imgmsg_rejects_colour():
    with pytest.raises(ConversionError, match=r"'rgb8'.*16UC1, mono16, 32FC1"):
        depth_imgmsg_to_metres(raw_image('rgb8', 1, 1, 3, [0, 0, 0]))

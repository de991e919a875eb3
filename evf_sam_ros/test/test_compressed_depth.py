"""image_transport's compressedDepth (and 16-bit "png compressed") depth: decoding known bytes,
round trips through our encoder, the quantisation error bound, and clear errors.

Messages are real rclpy sensor_msgs/CompressedImage objects (no rclpy.init needed).
"""

import io
import struct

import numpy as np
import pytest
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage

from evf_sam_ros.codecs.compressed_depth import (
    CompressedDepthError,
    decode_compressed_depth,
    encode_compressed_depth,
    is_compressed_depth_format,
)
from evf_sam_ros.codecs.compressed_image import compressed_imgmsg_to_rgb
from evf_sam_ros.codecs.depth import depth_imgmsg_to_metres
from evf_sam_ros.codecs.image import ConversionError

RNG = np.random.default_rng(7)
# The publisher's defaults: depth_quantization Z0 = 100, depth_max = 10 m.
A = np.float32(100.0 * 101.0)
B = np.float32(1.0) - A / np.float32(10.0)


def png16(array):
    buffer = io.BytesIO()
    PILImage.fromarray(np.asarray(array, dtype=np.uint16)).save(buffer, format='PNG')
    return buffer.getvalue()


def message(fmt, data):
    return CompressedImage(format=fmt, data=bytes(data))


def test_known_bytes_decode_by_the_published_formula():
    """Bytes laid out as the C++ publisher writes them: int32 0, float32 A, B, then a PNG of
    q; depth = A / (q - B), q = 0 is no reading.
    """
    q = np.array([[0, 1, 19191], [9091, 65535, 1010]], dtype=np.uint16)
    data = struct.pack('<iff', 0, A, B) + png16(q)
    metres = depth_imgmsg_to_metres(message('32FC1; compressedDepth png', data))
    assert metres.dtype == np.float32 and metres.shape == (2, 3)
    assert np.isnan(metres[0, 0])
    assert metres[0, 1] == pytest.approx(10.0, rel=1e-6)  # q = 1 is depth_max
    assert metres[0, 2] == pytest.approx(0.5, rel=1e-6)
    assert metres[1, 0] == pytest.approx(1.0, rel=1e-6)
    assert metres[1, 1] == pytest.approx(float(A) / (65535 - float(B)), rel=1e-6)
    assert metres[1, 2] == pytest.approx(float(A) / (1010 - float(B)), rel=1e-6)


def test_16uc1_is_the_png_itself_after_the_header():
    mm = np.array([[0, 1], [600, 9999]], dtype=np.uint16)
    data = struct.pack('<iff', 0, 0.0, 0.0) + png16(mm)
    metres = depth_imgmsg_to_metres(message('16UC1; compressedDepth png', data))
    np.testing.assert_array_equal(metres, np.float32([[np.nan, 0.001], [0.6, 9.999]]))
    assert metres.dtype == np.float32


@pytest.mark.parametrize('encoding', ['16UC1', 'mono16'])
def test_16bit_round_trip_is_exact_and_zeroes_beyond_depth_max(encoding):
    mm = RNG.integers(0, 12000, size=(30, 40)).astype(np.uint16)
    fmt, data = encode_compressed_depth(mm, encoding)
    assert fmt == f'{encoding}; compressedDepth png'
    assert data[:4] == struct.pack('<i', 0)
    decoded, got = decode_compressed_depth(fmt, data)
    assert got == encoding and decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, np.where(mm > 10000, 0, mm))


def test_32fc1_round_trip_within_the_quantisation_bound():
    metres = RNG.uniform(0.16, 9.99, size=(50, 60)).astype(np.float32)
    metres[0, :4] = [np.nan, 0.0, -1.0, 10.5]  # no reading, no reading, invalid, too far
    metres[1, 0] = 0.1  # nearer than A / (65535 - B) = 0.152 m: cannot be stored
    fmt, data = encode_compressed_depth(metres, '32FC1')
    assert fmt == '32FC1; compressedDepth png'
    assert struct.unpack_from('<iff', data) == (0, pytest.approx(A), pytest.approx(B))
    decoded = depth_imgmsg_to_metres(message(fmt, data))
    stored = np.isfinite(metres) & (metres > 0.16) & (metres < 10.0)
    assert np.isnan(decoded[~stored]).all() and np.isfinite(decoded[stored]).all()
    error = decoded[stored].astype(np.float64) - metres[stored]
    bound = metres[stored].astype(np.float64) ** 2 / (float(A) - metres[stored])
    assert (error >= -1e-6 * metres[stored]).all()  # truncation: never nearer (float32 ulps)
    assert (error < bound + 1e-6 * metres[stored]).all()
    assert error.max() > 0.5 * bound.max()  # the bound is tight, not vacuous


@pytest.mark.parametrize(
    'fmt, codec',
    [
        ('16UC1; compressedDepth', 'png'),
        ('16UC1', 'png'),  # old publishers: encoding only
        ('16UC1; png compressed', 'plain'),
        ('mono16; tiff compressed', 'tiff'),
    ],
)
def test_format_variants(fmt, codec):
    mm = np.array([[0, 700], [800, 900]], dtype=np.uint16)
    if codec == 'png':
        data = struct.pack('<iff', 0, 0.0, 0.0) + png16(mm)
    else:
        buffer = io.BytesIO()
        PILImage.fromarray(mm).save(buffer, format='PNG' if codec == 'plain' else 'TIFF')
        data = buffer.getvalue()
    assert is_compressed_depth_format(fmt)
    np.testing.assert_array_equal(
        depth_imgmsg_to_metres(message(fmt, data)), np.float32([[np.nan, 0.7], [0.8, 0.9]])
    )


@pytest.mark.parametrize(
    'fmt, data, pattern',
    [
        ('16UC1; compressedDepth rvl', b'\0' * 40, "codec 'rvl'.*png"),
        ('jpeg', b'\xff\xd8', 'not a depth format'),
        ('rgb8; jpeg compressed bgr8', b'\xff\xd8', 'not a depth format'),
        ('32FC1; png compressed', b'\x89PNG', 'not a depth format'),
        ('8UC1; compressedDepth png', b'\0' * 40, "encoding '8UC1'"),
        ('16UC1; compressedDepth png', b'\0' * 12, '12 bytes: too short'),
        ('16UC1; compressedDepth png', struct.pack('<iff', 0, 0, 0) + b'garbage', 'cannot decode'),
        (
            '32FC1; compressedDepth png',
            struct.pack('<iff', 0, 0.0, 0.0) + png16([[1]]),
            'unusable quantisation',
        ),
    ],
)
def test_bad_depth_messages_say_why(fmt, data, pattern):
    with pytest.raises(ConversionError, match=pattern):
        depth_imgmsg_to_metres(message(fmt, data))


def test_an_8bit_png_is_not_depth():
    buffer = io.BytesIO()
    PILImage.fromarray(np.zeros((2, 2), np.uint8)).save(buffer, format='PNG')
    data = struct.pack('<iff', 0, 0.0, 0.0) + buffer.getvalue()
    with pytest.raises(CompressedDepthError, match='not a 16-bit single-channel image'):
        decode_compressed_depth('16UC1; compressedDepth png', data)


def test_encoder_rejects_what_it_cannot_write():
    with pytest.raises(CompressedDepthError, match='uint16 mm'):
        encode_compressed_depth(np.zeros((2, 2), np.float32), '16UC1')
    with pytest.raises(CompressedDepthError, match='float metres'):
        encode_compressed_depth(np.zeros((2, 2), np.uint16), '32FC1')
    with pytest.raises(CompressedDepthError, match='HxW'):
        encode_compressed_depth(np.zeros((2, 2, 1), np.uint16), '16UC1')


def test_colour_decoder_points_compressed_depth_to_the_depth_role():
    fmt, data = encode_compressed_depth(np.ones((2, 2), np.uint16), '16UC1')
    with pytest.raises(ConversionError, match='compressedDepth.*depth topic'):
        compressed_imgmsg_to_rgb(message(fmt, data))

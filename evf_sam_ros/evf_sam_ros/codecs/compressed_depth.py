"""Depth images sent as sensor_msgs/CompressedImage (numpy and PIL only, no ROS imports).

Two formats are read, told apart by the message's ``format`` field:

* image_transport's **compressedDepth** (compressed_depth_image_transport), format
  ``"<encoding>; compressedDepth png"`` (also ``"...; compressedDepth"`` and, from old
  publishers, the bare ``"<encoding>"``).  ``data`` is a 12-byte ConfigHeader (int32
  compression format, 0 = INV_DEPTH; float32 depthParam[2], little-endian as the x86/ARM
  publishers memcpy it) followed by a 16-bit single-channel PNG:

  - ``16UC1``/``mono16``: the PNG holds the depth itself, uint16 millimetres, 0 = no
    reading (the publisher zeroes readings beyond its ``depth_max``).
  - ``32FC1``: the PNG holds quantised inverse depth ``q = trunc(A / d + B)`` (uint16),
    decoded as ``d = A / (q - B)`` metres, ``q = 0`` = no reading; ``A, B`` are
    depthParam.  The publisher uses ``A = Z0 (Z0 + 1)``, ``B = 1 - A / depth_max`` with
    Z0 = ``depth_quantization`` (default 100) and ``depth_max`` (default 10 m), so a
    reading d decodes to [d, d + d^2 / (A - d)) (+0.04 mm at 0.6 m, +1 cm at 10 m) and
    readings nearer than ``A / (65535 - B)`` (0.15 m by default) cannot be stored.

  The ``rvl`` variant (``"...; compressedDepth rvl"``) is not read: it raises a clear error.
* compressed_image_transport's 16-bit PNG/TIFF, format ``"16UC1; png compressed"`` (or
  ``tiff``): the image itself, uint16 millimetres.

``encode_compressed_depth`` writes compressedDepth PNG as the publisher does (for test and
sample bags).
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import numpy as np
from PIL import Image as PILImage

#: Depth encodings a compressedDepth message can carry.
COMPRESSED_DEPTH_ENCODINGS = ('16UC1', 'mono16', '32FC1')
#: struct layout of the ConfigHeader: int32 format, float32 depthParam[2], little-endian.
_HEADER = struct.Struct('<iff')
_INV_DEPTH = 0
#: The publisher's default parameters (compressed_depth_image_transport).
DEFAULT_DEPTH_MAX_M = 10.0
DEFAULT_DEPTH_QUANTIZATION = 100.0


class CompressedDepthError(ValueError):
    """A depth CompressedImage cannot be decoded; the message says why and what works."""


class UnsupportedDepthFormat(CompressedDepthError):
    """A well-formed message in a format or codec this module does not read (not corrupt)."""


def _split_format(fmt: str) -> tuple[str, str]:
    """("<encoding>", "<the rest after ';'>") of a CompressedImage format, both stripped."""
    encoding, _, rest = fmt.partition(';')
    return encoding.strip(), rest.strip()


def is_compressed_depth_format(fmt: str) -> bool:
    """True when ``fmt`` (a CompressedImage format) names a depth format this module reads
    or recognises (compressedDepth of any codec, or a 16-bit "png/tiff compressed").
    """
    encoding, rest = _split_format(fmt)
    if 'compressedDepth' in rest:
        return True
    if not rest:
        return encoding in COMPRESSED_DEPTH_ENCODINGS
    return encoding in ('16UC1', 'mono16') and rest.split()[0] in ('png', 'tiff')


def _read_uint16_image(data: bytes, what: str) -> np.ndarray:
    """HxW uint16 from a 16-bit single-channel PNG/TIFF. Raises CompressedDepthError."""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            pixels = np.array(image)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise CompressedDepthError(f'cannot decode the {what} ({len(data)} bytes): {exc}') from exc
    if mode in ('I;16', 'I;16L', 'I;16B'):
        return pixels.astype(np.uint16, copy=False)
    if (
        mode == 'I'
        and pixels.ndim == 2
        and pixels.min(initial=0) >= 0
        and pixels.max(initial=0) <= 0xFFFF
    ):
        return pixels.astype(np.uint16)
    raise CompressedDepthError(
        f'the {what} is not a 16-bit single-channel image (PIL mode '
        f'{mode}, shape {pixels.shape}): not a depth image'
    )


def _inverse_depth_to_metres(quantised: np.ndarray, a: float, b: float) -> np.ndarray:
    """HxW float32 metres from 16-bit inverse depth (0 and non-positive q - B: NaN)."""
    if not (math.isfinite(a) and math.isfinite(b) and a > 0):
        raise CompressedDepthError(
            f'the 32FC1 depth header has unusable quantisation parameters depthParam = ({a}, {b})'
        )
    q = quantised.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        metres = np.float32(a) / (q - np.float32(b))
    metres[(quantised == 0) | ~(metres > 0)] = np.nan
    return metres


def decode_compressed_depth(fmt: str, data: Any) -> tuple[np.ndarray, str]:
    """Decode the data of a depth CompressedImage (see the module docstring for formats).

    Arguments:
        fmt: the message's ``format`` field, e.g. ``"16UC1; compressedDepth png"``.
        data: the message's ``data`` (bytes, array.array or a uint8 array).

    Returns:
        (depth, encoding): HxW uint16 millimetres with encoding ``"16UC1"``/``"mono16"``
        (0 = no reading), or HxW float32 metres with ``"32FC1"`` (NaN = no reading).

    Raises:
        CompressedDepthError: not a depth format, the rvl codec, a short or corrupt buffer,
            or a PNG that is not 16-bit single-channel.
    """
    raw = bytes(data)
    encoding, rest = _split_format(fmt)
    if not is_compressed_depth_format(fmt):
        raise UnsupportedDepthFormat(
            f'CompressedImage format {fmt!r} is not a depth format; depth is read from '
            f'"<16UC1|32FC1>; compressedDepth png" (image_transport compressedDepth) or '
            f'"16UC1; png compressed"'
        )
    if encoding not in COMPRESSED_DEPTH_ENCODINGS:
        raise UnsupportedDepthFormat(
            f'compressedDepth encoding {encoding!r} (format {fmt!r}) '
            f'is not one of {", ".join(COMPRESSED_DEPTH_ENCODINGS)}'
        )
    if 'compressedDepth' not in rest and rest:  # compressed_image_transport 16-bit PNG/TIFF
        return _read_uint16_image(raw, f'{rest.split()[0]} depth image'), encoding
    codec = rest.replace('compressedDepth', '', 1).strip() or 'png'
    if codec != 'png':
        raise UnsupportedDepthFormat(
            f'compressedDepth codec {codec!r} (format {fmt!r}) is not '
            f'supported; record depth with the png codec '
            f'(parameter format: png) or as raw sensor_msgs/Image'
        )
    if len(raw) <= _HEADER.size:
        raise CompressedDepthError(
            f'the depth data has {len(raw)} bytes: too short for the '
            f'{_HEADER.size}-byte header and a PNG (format {fmt!r})'
        )
    _, a, b = _HEADER.unpack_from(raw)
    quantised = _read_uint16_image(raw[_HEADER.size :], 'depth PNG')
    if encoding == '32FC1':
        return _inverse_depth_to_metres(quantised, a, b), encoding
    return quantised, encoding


def _png(array: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array, dtype=np.uint16)).save(
        buffer, format='PNG', compress_level=level
    )
    return buffer.getvalue()


def encode_compressed_depth(
    depth: np.ndarray,
    encoding: str,
    depth_max: float = DEFAULT_DEPTH_MAX_M,
    depth_quantization: float = DEFAULT_DEPTH_QUANTIZATION,
    png_level: int = 1,
) -> tuple[str, bytes]:
    """Encode depth as image_transport's compressedDepth png (what its publisher sends).

    Arguments:
        depth: HxW uint16 millimetres for ``16UC1``/``mono16`` (readings beyond
            ``depth_max`` become 0, as the publisher does), or HxW float32 metres for
            ``32FC1`` (quantised inverse depth; NaN, <= 0, >= ``depth_max`` and readings
            too near to quantise, below ``A / (65535 - B)``, become "no reading").
        encoding: ``"16UC1"``, ``"mono16"`` or ``"32FC1"``.
        depth_max: metres, the publisher's ``depth_max`` parameter.
        depth_quantization: Z0 of the 32FC1 quantisation (``depth_quantization``).
        png_level: zlib level 0-9 of the PNG (the publisher's default is 9; 1 is faster).

    Returns:
        (format, data) for a sensor_msgs/CompressedImage, e.g. ``"16UC1; compressedDepth png"``.

    Raises:
        CompressedDepthError: unknown encoding, wrong dtype or not HxW.
    """
    depth = np.asarray(depth)
    if encoding not in COMPRESSED_DEPTH_ENCODINGS or depth.ndim != 2:
        raise CompressedDepthError(
            f'compressedDepth needs an HxW array in one of '
            f'{", ".join(COMPRESSED_DEPTH_ENCODINGS)}; got {encoding!r}, '
            f'shape {depth.shape}'
        )
    fmt = f'{encoding}; compressedDepth png'
    if encoding != '32FC1':
        if depth.dtype != np.uint16:
            raise CompressedDepthError(f'{encoding} depth must be uint16 mm, got {depth.dtype}')
        kept = np.where(depth > np.uint16(min(depth_max * 1000.0, 65535)), 0, depth)
        return fmt, _HEADER.pack(_INV_DEPTH, 0.0, 0.0) + _png(kept, png_level)
    if depth.dtype.kind != 'f':
        raise CompressedDepthError(f'32FC1 depth must be float metres, got {depth.dtype}')
    a = np.float32(depth_quantization) * (np.float32(depth_quantization) + np.float32(1.0))
    b = np.float32(1.0) - a / np.float32(depth_max)
    metres = depth.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        q = a / metres + b
    valid = np.isfinite(metres) & (metres > 0) & (metres < depth_max) & (q < 65536.0)
    quantised = np.where(valid, np.trunc(np.where(valid, q, 0)), 0).astype(np.uint16)
    return fmt, _HEADER.pack(_INV_DEPTH, float(a), float(b)) + _png(quantised, png_level)

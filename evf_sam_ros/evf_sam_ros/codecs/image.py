"""Conversions between sensor_msgs images and numpy arrays (cv_bridge-style, numpy only).

No cv_bridge and no OpenCV: pixels are read with ``np.frombuffer`` and written with
``ndarray.tobytes()``.  Functions that *read* messages use duck typing (any object with
``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` and ``data`` works), so this
module imports without ROS installed; functions that *build* messages import
``sensor_msgs`` lazily.

Conventions:
    * Colour arrays are HxWx3 uint8 in RGB order unless an encoding says otherwise.
    * Single-channel arrays are HxW (no trailing channel axis).
    * Depth in metres is HxW float32, NaN where invalid.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np


class ConversionError(ValueError):
    """An image message or array cannot be converted; the message says why and what works."""


class UnsupportedEncodingError(ConversionError):
    """The encoding is well-formed but not one this conversion reads (the message lists them)."""


class _Layout(NamedTuple):
    dtype: np.dtype
    channels: int
    order: str  # 'rgb', 'bgr', 'rgba', 'bgra', 'mono' or 'depth'


_LAYOUTS = {
    'rgb8': _Layout(np.dtype(np.uint8), 3, 'rgb'),
    'bgr8': _Layout(np.dtype(np.uint8), 3, 'bgr'),
    'rgba8': _Layout(np.dtype(np.uint8), 4, 'rgba'),
    'bgra8': _Layout(np.dtype(np.uint8), 4, 'bgra'),
    'mono8': _Layout(np.dtype(np.uint8), 1, 'mono'),
    '8UC1': _Layout(np.dtype(np.uint8), 1, 'mono'),
    '8UC3': _Layout(np.dtype(np.uint8), 3, 'bgr'),  # OpenCV convention: treated as bgr8
    'mono16': _Layout(np.dtype(np.uint16), 1, 'depth'),
    '16UC1': _Layout(np.dtype(np.uint16), 1, 'depth'),
    '32FC1': _Layout(np.dtype(np.float32), 1, 'depth'),
}

#: Encodings that ``imgmsg_to_array(msg, "rgb8")`` / ``imgmsg_to_rgb`` accept.
SUPPORTED_COLOR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '8UC1', '8UC3')
#: Encodings that the depth functions accept (16-bit: millimetres, 32FC1: metres).
SUPPORTED_DEPTH_ENCODINGS = ('16UC1', 'mono16', '32FC1')
#: Every encoding ``imgmsg_to_array`` and ``array_to_imgmsg`` handle.
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
#: Values of the ``desired`` argument of ``imgmsg_to_array``.
SUPPORTED_DESIRED = ('passthrough', 'rgb8', 'mono8')

# ITU-R BT.601 luma weights (the ones OpenCV's cvtColor uses), in R, G, B order.
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except KeyError:
        raise UnsupportedEncodingError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}'
        ) from None


def _byte_buffer(data: Any) -> np.ndarray:
    """Return ``data`` as a 1-D uint8 array; no copy for bytes, array.array, memoryview."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _check_geometry(msg: Any, bpp: int) -> tuple[int, int, int]:
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ConversionError(f'image has zero size: width={width}, height={height}')
    if step < width * bpp:
        raise ConversionError(
            f'step {step} is smaller than width {width} x {bpp} bytes per pixel = '
            f'{width * bpp} for encoding {msg.encoding!r}'
        )
    return height, width, step


def _pixel_view(msg: Any, layout: _Layout) -> np.ndarray:
    """View msg.data as HxW or HxWxC, honouring step padding and is_bigendian."""
    itemsize = layout.dtype.itemsize
    bpp = itemsize * layout.channels
    height, width, step = _check_geometry(msg, bpp)
    raw = _byte_buffer(msg.data)
    needed = step * height
    if raw.size < needed:
        raise ConversionError(
            f'data has {raw.size} bytes but step {step} x height {height} = {needed} are needed '
            f'(encoding {msg.encoding!r}, width {width})'
        )
    dtype = layout.dtype
    if itemsize > 1:
        dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    if layout.channels == 1:
        shape, strides = (height, width), (step, bpp)
    else:
        shape, strides = (height, width, layout.channels), (step, bpp, itemsize)
    view = np.ndarray(shape, dtype=dtype, buffer=raw, strides=strides)
    if not dtype.isnative:
        return view.astype(layout.dtype)  # byte swap into a new native-order array
    view.flags.writeable = False
    return view


def _to_rgb(array: np.ndarray, layout: _Layout, encoding: str) -> np.ndarray:
    if layout.order == 'rgb':
        return array
    if layout.order == 'bgr':
        return np.ascontiguousarray(array[..., ::-1])
    if layout.order == 'rgba':
        return np.ascontiguousarray(array[..., :3])
    if layout.order == 'bgra':
        return np.ascontiguousarray(array[..., 2::-1])
    if layout.order == 'mono':
        return np.repeat(array[..., np.newaxis], 3, axis=2)
    raise UnsupportedEncodingError(
        f'cannot convert {encoding!r} to rgb8; colour encodings are '
        f'{", ".join(SUPPORTED_COLOR_ENCODINGS)} (use depth_imgmsg_to_metres for depth)'
    )


def _to_mono(array: np.ndarray, layout: _Layout, encoding: str) -> np.ndarray:
    if layout.order == 'mono':
        return array
    if layout.order == 'depth':
        raise UnsupportedEncodingError(
            f'cannot convert {encoding!r} to mono8; mono8 output needs one of '
            f'{", ".join(SUPPORTED_COLOR_ENCODINGS)}'
        )
    weights = _LUMA_RGB if layout.order.startswith('rgb') else _LUMA_RGB[::-1]
    luma = array[..., :3].astype(np.float32) @ weights
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def imgmsg_to_array(msg: Any, desired: str = 'passthrough') -> np.ndarray:
    """Convert a sensor_msgs/Image (or any object with its fields) to a numpy array.

    Arguments:
        msg: image message; encoding one of ``SUPPORTED_ENCODINGS``.  Row padding
            (``step`` > width x bytes per pixel) and ``is_bigendian`` are honoured.
        desired: ``"passthrough"`` (keep the encoding's channels and dtype), ``"rgb8"``
            (HxWx3 uint8 RGB: bgr8/8UC3 reordered, alpha dropped, mono replicated) or
            ``"mono8"`` (HxW uint8; colour images via BT.601 luma 0.299 R + 0.587 G + 0.114 B).

    Returns:
        HxW array for 1-channel encodings (uint8, uint16 or float32), HxWxC otherwise.
        When no pixel changes are needed (passthrough, desired equal to the encoding,
        8UC1 as mono8) the result is a **read-only view** of ``msg.data`` (no copy; strided
        when rows are padded), unless a byte swap was needed; a channel or byte-order
        conversion returns a new, writeable, C-contiguous array.  Use ``np.array(result)``
        for a writeable copy.

    Raises:
        ConversionError: unsupported encoding or desired, zero size, step too small,
            data too short, or a depth encoding asked for as rgb8/mono8.
    """
    if desired not in SUPPORTED_DESIRED:
        raise ConversionError(
            f'unsupported desired encoding {desired!r}; supported: {", ".join(SUPPORTED_DESIRED)}'
        )
    layout = _layout(msg.encoding)
    array = _pixel_view(msg, layout)
    if desired in ('passthrough', msg.encoding):
        return array
    if desired == 'rgb8':
        return _to_rgb(array, layout, msg.encoding)
    return _to_mono(array, layout, msg.encoding)


def imgmsg_to_rgb(msg: Any) -> np.ndarray:
    """Convert a colour sensor_msgs/Image to the model's input format.

    Returns:
        HxWx3 uint8 RGB, C-contiguous and writeable (never a view of ``msg.data``).

    Raises:
        ConversionError: encoding not in ``SUPPORTED_COLOR_ENCODINGS`` or malformed message.
    """
    rgb = imgmsg_to_array(msg, 'rgb8')
    if rgb.flags.writeable and rgb.flags.c_contiguous:
        return rgb
    return np.array(rgb, order='C')


def _checked_pixels(array: Any, encoding: str) -> tuple[np.ndarray, _Layout]:
    """Validate dtype and shape against ``encoding``; return a native-order HxW[xC] array."""
    layout = _layout(encoding)
    array = np.asarray(array)
    if array.dtype.newbyteorder('=') != layout.dtype:
        raise ConversionError(
            f'encoding {encoding!r} needs dtype {layout.dtype.name}, got {array.dtype.name}'
        )
    if layout.channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    expected = 'HxW' if layout.channels == 1 else f'HxWx{layout.channels}'
    ok_ndim = array.ndim == (2 if layout.channels == 1 else 3)
    if not ok_ndim or (layout.channels > 1 and array.shape[2] != layout.channels):
        raise ConversionError(
            f'encoding {encoding!r} needs a {expected} array, got shape {array.shape}'
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ConversionError(f'array has zero size: shape {array.shape}')
    return np.ascontiguousarray(array, dtype=layout.dtype), layout


def array_to_imgmsg(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Build a sensor_msgs/Image from a numpy array.

    Arguments:
        array: uint8 HxW for mono8/8UC1, uint8 HxWx3 for rgb8/bgr8/8UC3 (channel order must
            already match the encoding), uint8 HxWx4 for rgba8/bgra8, uint16 HxW for
            16UC1/mono16, float32 HxW for 32FC1.  HxWx1 is accepted for 1-channel encodings.
        encoding: one of ``SUPPORTED_ENCODINGS``.
        header: std_msgs/Header to copy into the message; default an empty header.

    Returns:
        sensor_msgs/Image with ``step = width x bytes per pixel`` (no padding), data in the
        machine's byte order and ``is_bigendian`` set from ``sys.byteorder``.

    ``msg.data`` is assigned ``array.tobytes()``: assigning an ndarray makes rclpy copy it
    element by element (about 150-200 ms for 1280x720 RGB), bytes take a few milliseconds.

    Raises:
        ConversionError: unsupported encoding, or dtype/shape not matching it.
    """
    pixels, layout = _checked_pixels(array, encoding)
    from sensor_msgs.msg import Image

    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = msg.width * layout.dtype.itemsize * layout.channels
    msg.data = pixels.tobytes()
    return msg


def mask_to_imgmsg(mask: np.ndarray, header: Any = None) -> Any:
    """Encode an HxW boolean mask as a mono8 sensor_msgs/Image (255 = target, 0 = background).

    Non-bool masks are accepted: any non-zero value counts as target.

    Raises:
        ConversionError: mask is not 2-D or has zero size.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ConversionError(f'mask must be HxW, got shape {mask.shape}')
    if mask.dtype == np.bool_:  # 3x faster than np.where at 720p (bools are stored as 0/1 bytes)
        mono = mask.view(np.uint8) * np.uint8(255)
    else:
        mono = np.where(mask != 0, np.uint8(255), np.uint8(0))
    return array_to_imgmsg(mono, 'mono8', header)


def stamp_ns(header: Any) -> int:
    """A std_msgs/Header stamp in integer nanoseconds (rclpy and rosbags headers alike)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)

"""Depth images to metres: sensor_msgs/Image 16UC1/mono16 (mm) and 32FC1 (m), and compressedDepth.

Conventions: the result is HxW float32 metres, NaN where the sensor had no reading.
Reading uses duck typing (rclpy and rosbags messages alike); no ROS import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evf_sam_ros.codecs.compressed_depth import (
    CompressedDepthError,
    UnsupportedDepthFormat,
    decode_compressed_depth,
)
from evf_sam_ros.codecs.image import (
    SUPPORTED_DEPTH_ENCODINGS,
    ConversionError,
    UnsupportedEncodingError,
    imgmsg_to_array,
)


def depth_array_to_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """Convert a depth array to metres.

    Arguments:
        array: HxW depth image.  ``16UC1``/``mono16``: uint16 millimetres, 0 = no reading.
            ``32FC1``: floating metres; 0, negative, NaN and +/-inf mean no reading.
        encoding: one of ``SUPPORTED_DEPTH_ENCODINGS``.

    Returns:
        HxW float32 depth in metres, NaN where invalid (a new array).

    Raises:
        ConversionError: unsupported encoding, wrong dtype or not HxW.
    """
    array = np.asarray(array)
    if encoding not in SUPPORTED_DEPTH_ENCODINGS:
        raise UnsupportedEncodingError(
            f'unsupported depth encoding {encoding!r}; supported: '
            f'{", ".join(SUPPORTED_DEPTH_ENCODINGS)}'
        )
    if array.ndim != 2:
        raise ConversionError(f'depth must be HxW, got shape {array.shape}')
    if encoding == '32FC1':
        if array.dtype.kind != 'f':
            raise ConversionError(f'32FC1 depth needs a float array, got {array.dtype.name}')
        metres = array.astype(np.float32)
        with np.errstate(invalid='ignore'):
            metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
        return metres
    if array.dtype.newbyteorder('=') != np.dtype(np.uint16):
        raise ConversionError(f'{encoding} depth needs a uint16 array, got {array.dtype.name}')
    metres = array.astype(np.float32) / np.float32(1000.0)
    metres[array == 0] = np.nan
    return metres


def compressed_depth_imgmsg_to_metres(msg: Any) -> np.ndarray:
    """Convert a depth sensor_msgs/CompressedImage to HxW float32 metres (NaN = no reading).

    Reads image_transport's compressedDepth png (``format`` "16UC1; compressedDepth png" or
    "32FC1; compressedDepth png": a 12-byte header, then a 16-bit PNG; 32FC1 is quantised
    inverse depth) and compressed_image_transport's "16UC1; png compressed".  See
    ``evf_sam_ros.codecs.compressed_depth`` for the formats and the 32FC1 quantisation error.

    Raises:
        ConversionError: not a depth format (e.g. jpeg), the rvl codec, or corrupt data.
    """
    try:
        depth, encoding = decode_compressed_depth(str(msg.format), msg.data)
    except UnsupportedDepthFormat as exc:
        raise UnsupportedEncodingError(str(exc)) from exc
    except CompressedDepthError as exc:
        raise ConversionError(str(exc)) from exc
    if encoding == '32FC1':
        return depth  # already float32 metres, NaN where invalid
    return depth_array_to_metres(depth, encoding)


def depth_imgmsg_to_metres(msg: Any) -> np.ndarray:
    """Convert a depth image message to HxW float32 metres, NaN where invalid.

    Arguments:
        msg: a sensor_msgs/Image (16UC1/mono16 mm or 32FC1 m; invalid readings are 0 mm,
            or 0, negative, non-finite metres; see ``depth_array_to_metres``), or a
            sensor_msgs/CompressedImage in a depth format (told apart by its ``format``
            field; see ``compressed_depth_imgmsg_to_metres``).

    Raises:
        ConversionError: encoding not in ``SUPPORTED_DEPTH_ENCODINGS``, a CompressedImage
            that is not depth, or a malformed message.
    """
    if hasattr(msg, 'format'):
        return compressed_depth_imgmsg_to_metres(msg)
    if msg.encoding not in SUPPORTED_DEPTH_ENCODINGS:
        raise UnsupportedEncodingError(
            f'unsupported depth encoding {msg.encoding!r}; supported: '
            f'{", ".join(SUPPORTED_DEPTH_ENCODINGS)}'
        )
    return depth_array_to_metres(imgmsg_to_array(msg), msg.encoding)

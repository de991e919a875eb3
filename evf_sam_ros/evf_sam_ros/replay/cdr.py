"""ROS 2 CDR bytes of the messages the replay writes itself, built with the rosbags typestore
(no ROS install): images, compressed images, compressedDepth, camera_info, strings; and
depth as a sensor_msgs/Image for topics that take only Image (the node's ``depth`` input).

Stamps are integer nanoseconds; ``frame_id`` defaults to the sample scene's optical frame.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image as PILImage

from evf_sam_ros.codecs.compressed_depth import (
    CompressedDepthError,
    decode_compressed_depth,
    encode_compressed_depth,
)
from evf_sam_ros.codecs.image import stamp_ns
from evf_sam_ros.replay.bagio import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    STRING,
    deserialize,
    typestore,
)
from evf_sam_ros.replay.errors import MessageError
from evf_sam_ros.synthetic.tabletop import FRAME_ID
from evf_sam_ros.target3d.geometry import CameraIntrinsics


def _header(stamp: int, frame_id: str) -> Any:
    types = typestore().types
    time = types['builtin_interfaces/msg/Time'](
        sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000
    )
    return types['std_msgs/msg/Header'](stamp=time, frame_id=frame_id)


def image_cdr(array: np.ndarray, encoding: str, stamp: int, frame_id: str = FRAME_ID) -> bytes:
    """CDR bytes of a sensor_msgs/Image holding ``array`` as-is (no padding; is_bigendian 0,
    so the machine must be little-endian, as x86 and ARM are).

    array: HxW or HxWxC, its dtype and channel order already those of ``encoding``;
    unknown encodings are allowed (step = width x array bytes per pixel) for testing.
    stamp: header stamp in nanoseconds.
    """
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    msg = typestore().types[IMAGE](
        header=_header(stamp, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=array.nbytes // max(height, 1),
        data=np.frombuffer(array.tobytes(), dtype=np.uint8),
    )
    return bytes(typestore().serialize_cdr(msg, IMAGE))


def compressed_cdr(
    rgb: np.ndarray, stamp: int, fmt: str = 'jpeg', frame_id: str = FRAME_ID
) -> bytes:
    """CDR bytes of a sensor_msgs/CompressedImage of HxWx3 uint8 RGB (format "jpeg" or "png")."""
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format='JPEG' if fmt == 'jpeg' else 'PNG', quality=90)
    msg = typestore().types[COMPRESSED_IMAGE](
        header=_header(stamp, frame_id),
        format=fmt,
        data=np.frombuffer(buffer.getvalue(), dtype=np.uint8),
    )
    return bytes(typestore().serialize_cdr(msg, COMPRESSED_IMAGE))


def camera_info_cdr(intr: CameraIntrinsics, stamp: int, frame_id: str = FRAME_ID) -> bytes:
    """CDR bytes of a sensor_msgs/CameraInfo: K from ``intr``, no distortion, P = [K | 0]."""
    types = typestore().types
    k = np.array([intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1], dtype=np.float64)
    p = np.array([intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0], dtype=np.float64)
    roi = types['sensor_msgs/msg/RegionOfInterest'](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    msg = types[CAMERA_INFO](
        header=_header(stamp, frame_id),
        height=intr.height,
        width=intr.width,
        distortion_model='plumb_bob',
        d=np.zeros(5),
        k=k,
        r=np.eye(3).reshape(-1),
        p=p,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    return bytes(typestore().serialize_cdr(msg, CAMERA_INFO))


def string_cdr(text: str) -> bytes:
    """CDR bytes of a std_msgs/String."""
    return bytes(typestore().serialize_cdr(typestore().types[STRING](data=text), STRING))


def compressed_depth_cdr(
    depth: np.ndarray, encoding: str, stamp: int, frame_id: str = FRAME_ID
) -> bytes:
    """CDR bytes of a sensor_msgs/CompressedImage holding ``depth`` as image_transport's
    compressedDepth png (HxW uint16 mm for 16UC1, float32 metres for 32FC1).
    """
    fmt, data = encode_compressed_depth(depth, encoding)
    msg = typestore().types[COMPRESSED_IMAGE](
        header=_header(stamp, frame_id), format=fmt, data=np.frombuffer(data, dtype=np.uint8)
    )
    return bytes(typestore().serialize_cdr(msg, COMPRESSED_IMAGE))


def depth_image_cdr(raw: bytes, msgtype: str) -> bytes:
    """CDR bytes of a sensor_msgs/Image holding the depth message ``raw`` of ``msgtype``.

    An Image comes back unchanged; a depth CompressedImage (compressedDepth png or 16-bit
    "png compressed") is decoded, as image_transport's republisher would, into a 16UC1
    (millimetres) or 32FC1 (metres, NaN = no reading) Image with the same header.

    Raises:
        MessageError: "corrupt_message" (bytes that do not deserialize) or
            "depth_unsupported_encoding" (a CompressedImage that is not a readable depth format).
    """
    if msgtype != COMPRESSED_IMAGE:
        return bytes(raw)
    msg = deserialize(raw, msgtype)
    try:
        depth, encoding = decode_compressed_depth(str(msg.format), msg.data)
    except CompressedDepthError as exc:
        raise MessageError('depth_unsupported_encoding', f'depth: {exc}') from exc
    return image_cdr(depth, encoding, stamp_ns(msg.header), str(msg.header.frame_id))

"""sensor_msgs/CompressedImage (jpeg, png) to HxWx3 uint8 RGB, decoded by Pillow; no ROS import."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image as PILImage

from evf_sam_ros.codecs.image import ConversionError, UnsupportedEncodingError


def compressed_imgmsg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg, png, or anything PIL reads) to RGB.

    The ``format`` field (e.g. ``"jpeg"``, ``"png"``, ``"rgb8; jpeg compressed bgr8"``) is
    informational only: the codec is detected from the data, and a decoded JPEG/PNG is in
    true colour whatever the pre-compression encoding was.  Grayscale and alpha images are
    converted to RGB.

    Returns:
        HxWx3 uint8 RGB, C-contiguous and writeable.

    Raises:
        ConversionError: empty or corrupt data, or a ``compressedDepth`` depth image
            (read those with ``depth_imgmsg_to_metres``).
    """
    fmt = str(getattr(msg, 'format', ''))
    if 'compresseddepth' in fmt.lower():
        raise UnsupportedEncodingError(
            f'cannot convert a compressedDepth image (format {fmt!r}) to colour: it is depth; '
            'use its topic as the depth topic'
        )
    raw = bytes(msg.data)
    if not raw:
        raise ConversionError(f'CompressedImage has no data (format {fmt!r})')
    try:
        with PILImage.open(io.BytesIO(raw)) as image:
            image.load()
            rgb = np.array(image.convert('RGB'), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise ConversionError(
            f'cannot decode CompressedImage (format {fmt!r}, {len(raw)} bytes): {exc}'
        ) from exc
    return rgb

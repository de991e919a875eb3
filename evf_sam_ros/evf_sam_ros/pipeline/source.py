"""A received colour image, not decoded yet (decoding happens on the inference thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.codecs.compressed_image import compressed_imgmsg_to_rgb
from evf_sam_ros.codecs.image import ConversionError, imgmsg_to_rgb
from evf_sam_ros.pipeline.problems import FrameProblem, conversion_problem


@dataclass(frozen=True)
class SourceImage:
    """An image message as it arrived: sensor_msgs/Image, or CompressedImage when
    ``compressed`` (rclpy or rosbags message objects alike). ``received_monotonic``: when it
    arrived (time.monotonic() seconds; 0 for bag frames).
    """

    msg: Any
    compressed: bool = False
    received_monotonic: float = 0.0

    @property
    def header(self) -> Any:
        """The message's std_msgs/Header (stamp and optical frame_id of the camera)."""
        return self.msg.header

    def decode(self) -> np.ndarray:
        """HxWx3 uint8 RGB. Raises FrameProblem (bad_image, unsupported_encoding)."""
        try:
            if self.compressed:
                return compressed_imgmsg_to_rgb(self.msg)
            return imgmsg_to_rgb(self.msg)
        except ConversionError as exc:
            problem = conversion_problem(exc)
            raise FrameProblem(problem.kind, problem.message) from exc

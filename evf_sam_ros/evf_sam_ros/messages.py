"""ROS messages from results (used by the node and the replay tool).

Imports evf_sam_msgs and ROS message packages lazily so the module itself imports anywhere.
"""

from __future__ import annotations

import math
from typing import Any

from .conversions import mask_to_imgmsg
from .model.predictor import SegmentationResult
from .targets import TargetEstimate


#: Stages of SegmentationResult.timings_ms shared by every prompt of a frame.
FRAME_STAGES = ("preprocess", "image_encoder")


def inference_seconds(result: SegmentationResult, prompts_on_frame: int = 1) -> float:
    """A prompt's model time: its share of the frame's shared stages plus its own stages."""
    shared = sum(v for k, v in result.timings_ms.items() if k in FRAME_STAGES)
    own = sum(v for k, v in result.timings_ms.items() if k not in FRAME_STAGES)
    return (shared / max(prompts_on_frame, 1) + own) / 1000.0


def segmentation_msg(result: SegmentationResult, header: Any, estimate: TargetEstimate,
                     inference_time_s: float) -> Any:
    """evf_sam_msgs/Segmentation for one result; ``header`` is the source image's."""
    from evf_sam_msgs.msg import Segmentation

    msg = Segmentation()
    msg.header = header
    msg.prompt = result.prompt
    msg.found = bool(estimate.found)
    msg.score = float(result.score)
    msg.object_score = math.nan if result.object_score is None else float(result.object_score)
    msg.mask = mask_to_imgmsg(result.mask, header)
    msg.area = int(result.area)
    if result.bbox is not None:
        x0, y0, x1, y1 = result.bbox
        msg.bbox.x_offset, msg.bbox.y_offset = int(x0), int(y0)
        msg.bbox.width, msg.bbox.height = int(x1 - x0), int(y1 - y0)
    msg.centroid_u, msg.centroid_v = result.centroid if result.centroid else (math.nan, math.nan)
    if estimate.point is not None:
        msg.target_point.x, msg.target_point.y, msg.target_point.z = (float(c) for c in estimate.point)
        msg.target_point_valid = True
    msg.depth_median = float(estimate.depth_median)
    msg.depth_valid_fraction = float(estimate.depth_valid_fraction)
    msg.inference_time = float(inference_time_s)
    return msg


def point_stamped_msg(header: Any, point: tuple[float, float, float]) -> Any:
    """geometry_msgs/PointStamped in the source image's frame."""
    from geometry_msgs.msg import PointStamped

    msg = PointStamped()
    msg.header = header
    msg.point.x, msg.point.y, msg.point.z = (float(c) for c in point)
    return msg

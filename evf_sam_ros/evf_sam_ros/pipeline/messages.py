"""ROS messages from results (used by the node and the replay tool).

Imports evf_sam_msgs and ROS message packages lazily so the module itself imports anywhere.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.codecs.image import mask_to_imgmsg
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.target3d.box3d import OrientedBox
from evf_sam_ros.target3d.cloud import TargetCloud
from evf_sam_ros.target3d.estimate import TargetEstimate
from evf_sam_ros.target3d.rotations import rotation_to_quaternion

#: Stages of SegmentationResult.timings_ms shared by every prompt of a frame.
FRAME_STAGES = ('preprocess', 'image_encoder')


def inference_seconds(result: SegmentationResult, prompts_on_frame: int = 1) -> float:
    """A prompt's model time: its share of the frame's shared stages plus its own stages."""
    shared = sum(v for k, v in result.timings_ms.items() if k in FRAME_STAGES)
    own = sum(v for k, v in result.timings_ms.items() if k not in FRAME_STAGES)
    return (shared / max(prompts_on_frame, 1) + own) / 1000.0


def segmentation_msg(
    result: SegmentationResult,
    header: Any,
    estimate: TargetEstimate,
    inference_time_s: float,
    target_id: int = -1,
    tracking: Any | None = None,
) -> Any:
    """evf_sam_msgs/Segmentation for one result; ``header`` is the source image's;
    ``target_id``: the target's id (-1 for a one-shot request); ``tracking``: track mode's
    pipeline.track.Tracking of the target (None: segment mode, grounded on every frame).
    """
    from evf_sam_msgs.msg import Segmentation

    msg = Segmentation()
    msg.header = header
    msg.target_id = int(target_id)
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
        msg.target_point.x, msg.target_point.y, msg.target_point.z = (
            float(c) for c in estimate.point
        )
        msg.target_point_valid = True
    msg.depth_median = float(estimate.depth_median)
    msg.depth_valid_fraction = float(estimate.depth_valid_fraction)
    if estimate.box is not None:
        msg.box_valid = True
        fill_pose(msg.box_pose, estimate.box)
        msg.box_size.x, msg.box_size.y, msg.box_size.z = (float(c) for c in estimate.box.size)
    msg.cloud_points = int(estimate.cloud_points)
    msg.grounded = True if tracking is None else bool(tracking.grounded)
    if tracking is not None:
        msg.lost, msg.lost_count = bool(tracking.lost), int(tracking.lost_count)
        msg.reground_count = int(tracking.reground_count)
    msg.inference_time = float(inference_time_s)
    return msg


def point_stamped_msg(header: Any, point: tuple[float, float, float]) -> Any:
    """geometry_msgs/PointStamped in the source image's frame."""
    from geometry_msgs.msg import PointStamped

    msg = PointStamped()
    msg.header = header
    msg.point.x, msg.point.y, msg.point.z = (float(c) for c in point)
    return msg


@dataclass(frozen=True)
class TargetMessages:
    """What is published for one target on one frame; every header is the source image's.

    segmentation: evf_sam_msgs/Segmentation (its ``mask`` is the mono8 mask message, built
    once). target_point: geometry_msgs/PointStamped, only for a found target with a valid 3D
    point. target_pose: geometry_msgs/PoseStamped of its box, only with a valid box.
    """

    segmentation: Any
    target_point: Any | None
    target_pose: Any | None = None

    def by_role(self) -> list[tuple[str, Any]]:
        """(output topic name, message) pairs in publishing order."""
        out = [('segmentation', self.segmentation), ('mask', self.segmentation.mask)]
        for role in ('target_point', 'target_pose'):
            if getattr(self, role) is not None:
                out.append((role, getattr(self, role)))
        return out


def target_messages(
    result: SegmentationResult,
    header: Any,
    estimate: TargetEstimate,
    inference_time_s: float,
    target_id: int = -1,
    tracking: Any | None = None,
) -> TargetMessages:
    """The messages of one target's result on the image with ``header``."""
    seg = segmentation_msg(result, header, estimate, inference_time_s, target_id, tracking)
    point = None if estimate.point is None else point_stamped_msg(header, estimate.point)
    pose = None if estimate.box is None else pose_stamped_msg(header, estimate.box)
    return TargetMessages(seg, point, pose)


def without_mask(segmentation: Any) -> Any:
    """A copy of an evf_sam_msgs/Segmentation whose mask is an empty image (same header):
    what find_target feedback and results carry, so they stay a few hundred bytes.
    """
    from sensor_msgs.msg import Image

    from evf_sam_msgs.msg import Segmentation

    light = Segmentation()
    for name in Segmentation.get_fields_and_field_types():
        if name != 'mask':
            setattr(light, name, getattr(segmentation, name))
    light.mask = Image(header=segmentation.header)
    return light


def ros_header(stamp_ns: int, frame_id: str) -> Any:
    """An rclpy std_msgs/Header with the given stamp (nanoseconds) and frame_id."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(
        stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
        frame_id=frame_id,
    )


def fill_pose_from(pose: Any, position: np.ndarray, rotation: np.ndarray) -> Any:
    """Write a position (3,) metres and a 3x3 rotation into a geometry_msgs/Pose; returns it."""
    pose.position.x, pose.position.y, pose.position.z = (float(c) for c in position)
    q = rotation_to_quaternion(rotation)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = q
    return pose


def fill_pose(pose: Any, box: OrientedBox) -> Any:
    """Write a box's centre and orientation into a geometry_msgs/Pose; returns ``pose``."""
    return fill_pose_from(pose, box.centre, box.rotation)


def pose_stamped_msg(header: Any, box: OrientedBox) -> Any:
    """geometry_msgs/PoseStamped of a box (the ``target_pose`` topic), in the source image's
    optical frame: position = box centre (metres), orientation = box axes (z towards the
    camera).
    """
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header = header
    fill_pose(msg.pose, box)
    return msg


#: PointCloud2 datatypes INT32 and FLOAT32 (sensor_msgs/PointField).
_INT32, _FLOAT32 = 5, 7


def _packed_rgb(colours: np.ndarray) -> np.ndarray:
    """Nx3 uint8 RGB as N float32 whose bits are 0x00RRGGBB (the PCL / RViz ``rgb``)."""
    c = colours.astype(np.uint32)
    return ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).view(np.float32)


def point_cloud2_msg(header: Any, cloud: TargetCloud, target_ids: np.ndarray | None = None) -> Any:
    """sensor_msgs/PointCloud2 of a target cloud (the ``target_cloud`` topic).

    Fields x, y, z (FLOAT32, metres, the source image's optical frame), when the cloud has
    colours rgb (FLOAT32 holding 0x00RRGGBB, as PCL and RViz read it), and with
    ``target_ids`` (N ints) target_id (INT32, the point's target).  height 1, width N,
    is_dense true (no NaN points), byte order of this machine.
    """
    from sensor_msgs.msg import PointCloud2, PointField

    names = ['x', 'y', 'z'] + (['rgb'] if cloud.colours is not None else [])
    formats = [np.float32] * len(names)
    if target_ids is not None:
        names, formats = names + ['target_id'], formats + [np.int32]
    layout = np.dtype({'names': names, 'formats': formats})
    rows = np.empty(len(cloud), dtype=layout)
    rows['x'], rows['y'], rows['z'] = cloud.points[:, 0], cloud.points[:, 1], cloud.points[:, 2]
    if cloud.colours is not None:
        rows['rgb'] = _packed_rgb(cloud.colours)
    if target_ids is not None:
        rows['target_id'] = target_ids
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, len(cloud)
    msg.fields = [
        PointField(
            name=name, offset=4 * i, count=1, datatype=_INT32 if name == 'target_id' else _FLOAT32
        )
        for i, name in enumerate(names)
    ]
    msg.is_bigendian = sys.byteorder == 'big'
    msg.point_step = layout.itemsize
    msg.row_step = layout.itemsize * len(cloud)
    msg.data = rows.tobytes()
    msg.is_dense = True
    return msg

"""What the segmenter answered for one frame, the same shape whether it ran here or in a node.

The output bag's topics are fixed: ``OUTPUT_TOPICS`` maps a role to (topic, message type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evf_sam_ros.codecs.image import imgmsg_to_array
from evf_sam_ros.pipeline import Problem
from evf_sam_ros.replay.bagio import (
    GRASP_CANDIDATE_ARRAY,
    IMAGE,
    MARKER_ARRAY,
    POINT_CLOUD2,
    POINT_STAMPED,
    POSE_STAMPED,
    SEGMENTATION,
    SEGMENTATION_ARRAY,
)

OUTPUT_TOPICS = {
    'segmentation': ('/evf_sam/segmentation', SEGMENTATION),
    'mask': ('/evf_sam/mask', IMAGE),
    'target_point': ('/evf_sam/target_point', POINT_STAMPED),
    'target_pose': ('/evf_sam/target_pose', POSE_STAMPED),
    'segmentations': ('/evf_sam/segmentations', SEGMENTATION_ARRAY),
    'target_cloud': ('/evf_sam/target_cloud', POINT_CLOUD2),
    'markers': ('/evf_sam/markers', MARKER_ARRAY),
    'grasps': ('/evf_sam/grasps', GRASP_CANDIDATE_ARRAY),
}

#: (position xyz, orientation quaternion xyzw, size xyz) of a pose with extents, metres.
PoseSize = tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class PromptOutcome:
    """One prompt's answer on one frame.

    mask: HxW bool at the image's size. score: predicted IoU. bbox: (x0, y0, x1, y1) pixels,
    x1/y1 exclusive, None when empty. centroid: (u, v) pixels (column, row), None when
    empty. point: (x, y, z) metres in the image's optical frame, None without a valid 3D
    target. depth_median_m: median mask depth in metres (NaN without depth).
    inference_ms: the model's time for this prompt (encoder share + decode). target_id: the
    target's id. box: (centre xyz, orientation quaternion xyzw, size xyz) of the target's 3D
    box (metres, optical frame), None without a valid box. grounded, lost, lost_count,
    reground_count: track mode's state of the target (Segmentation's fields). place: the
    place surface as (centre, quaternion, (size x, size y, 0)), None without one.
    instances: number of instances listed. grasps: the target's grasp candidates, best
    first, each (position, quaternion, (width, 0, 0)) with its kind and score in
    ``grasp_kinds`` / ``grasp_scores`` (empty when the grasps topic was not recorded).
    """

    prompt: str
    found: bool
    score: float
    mask: np.ndarray
    bbox: tuple[int, int, int, int] | None
    centroid: tuple[float, float] | None
    area: int
    point: tuple[float, float, float] | None
    depth_median_m: float
    inference_ms: float
    target_id: int = -1
    box: PoseSize | None = None
    grounded: bool = True
    lost: bool = False
    lost_count: int = 0
    reground_count: int = 0
    place: PoseSize | None = None
    instances: int = 0
    grasps: tuple[PoseSize, ...] = ()
    grasp_kinds: tuple[int, ...] = ()
    grasp_scores: tuple[float, ...] = ()


@dataclass
class FrameOutcome:
    """Every prompt's answer on one frame, the frame's latency and the serialized outputs.

    latency_ms: model time of the whole frame (offline) or publish-to-output time (live).
    messages: (role, CDR bytes) pairs for the output bag, role a key of ``OUTPUT_TOPICS``.
    """

    prompts: list[PromptOutcome]
    latency_ms: float
    messages: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FrameResult:
    """What a FrameProcessor made of one bag frame.

    status: "processed" (``outcome`` set), "skipped" (nothing to segment or an unusable
    image) or "dropped" (live: the node published nothing for it). rgb: the decoded HxWx3
    uint8 RGB image when it was decoded. problems: the frame's problems (pipeline
    vocabulary). reason: why there is no outcome, for the pictures.
    """

    status: str
    outcome: FrameOutcome | None = None
    rgb: np.ndarray | None = None
    problems: list[Problem] = field(default_factory=list)
    reason: str = ''


def outcome_from_msg(msg: Any, grasps: Any | None = None) -> PromptOutcome:
    """PromptOutcome of an evf_sam_msgs/Segmentation (rclpy or rosbags message), with the
    frame's evf_sam_msgs/GraspCandidateArray when there is one (its candidates of this
    target).
    """
    mask = np.array(imgmsg_to_array(msg.mask, 'mono8') != 0)
    bbox = None
    if int(msg.area) > 0:
        x0, y0 = int(msg.bbox.x_offset), int(msg.bbox.y_offset)
        bbox = (x0, y0, x0 + int(msg.bbox.width), y0 + int(msg.bbox.height))
    centroid = (float(msg.centroid_u), float(msg.centroid_v))
    point = None
    if msg.target_point_valid:
        point = (float(msg.target_point.x), float(msg.target_point.y), float(msg.target_point.z))
    mine = [
        c
        for c in (grasps.candidates if grasps is not None else [])
        if c.target_id == msg.target_id
    ]
    return PromptOutcome(
        prompt=str(msg.prompt),
        found=bool(msg.found),
        score=float(msg.score),
        mask=mask,
        bbox=bbox,
        centroid=centroid if all(math.isfinite(c) for c in centroid) else None,
        area=int(msg.area),
        point=point,
        depth_median_m=float(msg.depth_median),
        inference_ms=float(msg.inference_time) * 1000.0,
        target_id=int(msg.target_id),
        box=_box(msg) if msg.box_valid else None,
        grounded=bool(msg.grounded),
        lost=bool(msg.lost),
        lost_count=int(msg.lost_count),
        reground_count=int(msg.reground_count),
        place=_pose_size(msg.place_pose, msg.place_size) if msg.place_valid else None,
        instances=len(msg.instances),
        grasps=tuple(_pose_size(c.pose, None, c.width) for c in mine),
        grasp_kinds=tuple(int(c.kind) for c in mine),
        grasp_scores=tuple(float(c.score) for c in mine),
    )


def _box(msg: Any) -> PoseSize:
    return _pose_size(msg.box_pose, msg.box_size)


def _pose_size(pose: Any, size: Any, width: float = 0.0) -> PoseSize:
    p, o = pose.position, pose.orientation
    extents = (
        (float(size.x), float(size.y), float(size.z))
        if size is not None
        else (float(width), 0.0, 0.0)
    )
    return (
        (float(p.x), float(p.y), float(p.z)),
        (float(o.x), float(o.y), float(o.z), float(o.w)),
        extents,
    )

"""ROS messages of a target's pick-and-place outputs: grasp candidates, place surface,
instances (used by the node and the replay).

Frames and units as ``target3d.pick``: the source image's optical frame, metres.  Message
packages are imported lazily so the module imports anywhere.
"""

from __future__ import annotations

from typing import Any, Iterable

from evf_sam_ros.pipeline.messages import fill_pose_from
from evf_sam_ros.target3d.grasps import Grasp
from evf_sam_ros.target3d.pick import PickTarget


def grasp_candidate_msg(grasp: Grasp, target_id: int) -> Any:
    """evf_sam_msgs/GraspCandidate of one grasp of target ``target_id``."""
    from evf_sam_msgs.msg import GraspCandidate

    msg = GraspCandidate()
    msg.target_id = int(target_id)
    msg.instance = int(grasp.instance)
    msg.kind = int(grasp.kind)
    fill_pose_from(msg.pose, grasp.position, grasp.rotation)
    msg.width = float(grasp.width)
    msg.score = float(grasp.score)
    return msg


def grasp_msgs(pick: PickTarget | None, target_id: int) -> list[Any]:
    """evf_sam_msgs/GraspCandidate list of a target's grasps, best first (empty for None)."""
    return [] if pick is None else [grasp_candidate_msg(g, target_id) for g in pick.grasps]


def grasp_array_msg(header: Any, targets: Iterable[tuple[int, PickTarget | None]]) -> Any:
    """evf_sam_msgs/GraspCandidateArray of every (target_id, pick outputs) pair, in order."""
    from evf_sam_msgs.msg import GraspCandidateArray

    candidates = [c for target_id, pick in targets for c in grasp_msgs(pick, target_id)]
    return GraspCandidateArray(header=header, candidates=candidates)


def _instance_msg(inst: Any) -> Any:
    from evf_sam_msgs.msg import Instance

    msg = Instance()
    msg.centroid_u, msg.centroid_v = (float(c) for c in inst.centroid)
    msg.area = int(inst.pixels)
    if inst.point is not None:
        msg.target_point.x, msg.target_point.y, msg.target_point.z = (float(c) for c in inst.point)
        msg.target_point_valid = True
    if inst.box is not None:
        msg.box_valid = True
        fill_pose_from(msg.box_pose, inst.box.centre, inst.box.rotation)
        msg.box_size.x, msg.box_size.y, msg.box_size.z = (float(c) for c in inst.box.size)
    return msg


def fill_pick(segmentation: Any, pick: PickTarget | None) -> Any:
    """Write the place surface and the instances into an evf_sam_msgs/Segmentation."""
    if pick is None:
        return segmentation
    if pick.place is not None:
        segmentation.place_valid = True
        fill_pose_from(segmentation.place_pose, pick.place.centre, pick.place.rotation)
        segmentation.place_size.x, segmentation.place_size.y = (float(c) for c in pick.place.size)
    segmentation.instances = [_instance_msg(i) for i in pick.instances]
    return segmentation

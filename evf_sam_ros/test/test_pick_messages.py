"""Grasp candidates, place surfaces and instances as ROS messages (real message types, read
back field by field and through rclpy serialization), and their RViz markers.
"""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from evf_sam_msgs.msg import GraspCandidate, GraspCandidateArray, Segmentation
from evf_sam_ros.pipeline.markers import GRASP_FIRST_ID, MAX_GRASP_MARKERS, PLACE_ID, pick_markers
from evf_sam_ros.pipeline.pick_messages import fill_pick, grasp_array_msg
from evf_sam_ros.target3d.box3d import OrientedBox
from evf_sam_ros.target3d.grasps import PARALLEL_JAW, SUCTION, Grasp
from evf_sam_ros.target3d.instances import Instance
from evf_sam_ros.target3d.pick import PickTarget
from evf_sam_ros.target3d.place import PlaceSurface
from evf_sam_ros.target3d.rotations import quaternion_to_rotation

HEADER = Header(frame_id='camera_color_optical_frame')
DOWN = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # z = +y (down)


def _pick():
    jaw = Grasp(PARALLEL_JAW, np.array([0.1, 0.0, 0.6]), DOWN, 0.07, 0.6)
    cup = Grasp(SUCTION, np.array([0.1, -0.05, 0.6]), DOWN, 0.03, 0.9, instance=1)
    place = PlaceSurface(
        np.array([0.0, 0.1, 0.7]), DOWN @ np.diag([1, -1, -1]), np.array([0.2, 0.1]), 40
    )
    box = OrientedBox(np.array([0.05, 0.0, 0.6]), np.eye(3), np.array([0.07, 0.07, 0.12]), 900)
    instances = [
        Instance((320.0, 200.0), 900, 0, (0.05, 0.0, 0.58), box),
        Instance((400.0, 210.0), 700, 1),
    ]
    return PickTarget([cup, jaw], place, instances)


def test_grasp_array_reads_back():
    msg = grasp_array_msg(HEADER, [(3, _pick()), (4, None)])
    back = deserialize_message(serialize_message(msg), GraspCandidateArray)
    assert back.header.frame_id == HEADER.frame_id
    cup, jaw = back.candidates
    assert (cup.target_id, cup.instance, cup.kind) == (3, 1, GraspCandidate.SUCTION)
    assert (jaw.instance, jaw.kind) == (-1, GraspCandidate.PARALLEL_JAW)
    assert jaw.width == pytest.approx(0.07) and cup.score == pytest.approx(0.9)
    q = jaw.pose.orientation
    assert quaternion_to_rotation((q.x, q.y, q.z, q.w)) == pytest.approx(DOWN, abs=1e-6)
    assert (jaw.pose.position.x, jaw.pose.position.z) == pytest.approx((0.1, 0.6))


def test_segmentation_carries_place_and_instances():
    seg = fill_pick(Segmentation(), _pick())
    back = deserialize_message(serialize_message(seg), Segmentation)
    assert back.place_valid and back.place_size.x == pytest.approx(0.2)
    assert back.place_size.z == 0.0 and back.place_pose.position.y == pytest.approx(0.1)
    first, second = back.instances
    assert first.target_point_valid and first.box_valid and first.box_size.z == pytest.approx(0.12)
    assert (first.centroid_u, first.area) == (320.0, 900)
    assert not second.target_point_valid and not second.box_valid
    empty = fill_pick(Segmentation(), PickTarget([], None, []))
    assert not empty.place_valid and len(empty.instances) == 0


def test_pick_markers_draw_grasps_and_place_and_delete_the_rest():
    markers = pick_markers(HEADER, 3, _pick(), (255, 0, 0))
    by_id = {m.id: m for m in markers}
    assert len(markers) == 1 + 2 * MAX_GRASP_MARKERS and all(m.ns == 'target/3' for m in markers)
    assert by_id[PLACE_ID].type == Marker.CUBE and by_id[PLACE_ID].scale.x == pytest.approx(0.2)
    cup_arrow, cup_disc = by_id[GRASP_FIRST_ID], by_id[GRASP_FIRST_ID + 1]
    assert cup_arrow.type == Marker.ARROW and cup_disc.type == Marker.CYLINDER
    tip = cup_arrow.points[1]
    assert (tip.x, tip.y, tip.z) == pytest.approx((0.1, -0.05, 0.6))
    assert cup_arrow.points[0].y < tip.y  # the arrow comes from above (-y), along +z
    fingers = by_id[GRASP_FIRST_ID + 3]
    assert fingers.type == Marker.LINE_LIST and len(fingers.points) == 6
    xs = sorted({round(p.x, 4) for p in fingers.points})
    assert xs == pytest.approx([0.065, 0.135])  # 7 cm apart around x = 0.1
    unused = [m for m in markers if m.id >= GRASP_FIRST_ID + 4]
    assert unused and all(m.action == Marker.DELETE for m in unused)
    gone = pick_markers(HEADER, 3, None)
    assert {m.action for m in gone} == {Marker.DELETE}

"""The 3D outputs as ROS messages: PointCloud2, PoseStamped, MarkerArray and the Segmentation
box fields; read back field by field and through rclpy serialization (real message types).
"""

import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from evf_sam_msgs.msg import Segmentation
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.pipeline.markers import (
    BOX_ID,
    LABEL_ID,
    MARKER_IDS,
    MIN_BOX_EDGE_M,
    POINT_ID,
    delete_target_markers,
    marker_namespace,
    target_markers,
)
from evf_sam_ros.pipeline.messages import point_cloud2_msg, pose_stamped_msg, segmentation_msg
from evf_sam_ros.target3d.box3d import OrientedBox
from evf_sam_ros.target3d.cloud import TargetCloud
from evf_sam_ros.target3d.estimate import TargetEstimate
from evf_sam_ros.target3d.geometry import DepthStats
from evf_sam_ros.target3d.rotations import quaternion_to_rotation

HEADER = Header(frame_id='camera_color_optical_frame')
HEADER.stamp.sec, HEADER.stamp.nanosec = 7, 250


def _box():
    c, s = math.cos(0.3), math.sin(0.3)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1, -1, -1])
    return OrientedBox(np.array([0.1, -0.05, 0.8]), rotation, np.array([0.2, 0.1, 0.0]), 500)


def _read_cloud(msg):
    """Decode a PointCloud2 from its own field table (as any consumer would)."""
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    layout = np.dtype(
        {
            'names': [f.name for f in msg.fields],
            'formats': ['<f4'] * len(msg.fields),
            'offsets': [f.offset for f in msg.fields],
            'itemsize': msg.point_step,
        }
    )
    assert not msg.is_bigendian
    return np.frombuffer(bytes(msg.data), dtype=layout, count=msg.width * msg.height)


def test_point_cloud2_with_rgb_reads_back():
    points = np.array([[0.1, -0.2, 0.9], [0.0, 0.0, 1.5], [-1.0, 2.0, 3.0]], dtype=np.float32)
    colours = np.array([[255, 0, 0], [1, 2, 3], [0, 128, 255]], dtype=np.uint8)
    msg = point_cloud2_msg(HEADER, TargetCloud(points, colours))
    assert msg.header == HEADER and (msg.height, msg.width) == (1, 3)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb']
    assert (msg.point_step, msg.row_step, msg.is_dense) == (16, 48, True)
    back = deserialize_message(serialize_message(msg), PointCloud2)
    rows = _read_cloud(back)
    assert np.array_equal(np.stack([rows['x'], rows['y'], rows['z']], axis=1), points)
    bits = rows['rgb'].view(np.uint32)
    unpacked = np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1)
    assert np.array_equal(unpacked, colours) and np.all(bits >> 24 == 0)


def test_point_cloud2_without_colours_and_empty():
    points = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    msg = point_cloud2_msg(HEADER, TargetCloud(points, None))
    assert [f.name for f in msg.fields] == ['x', 'y', 'z'] and msg.point_step == 12
    assert _read_cloud(msg)['z'].tolist() == [pytest.approx(0.3)]
    empty = point_cloud2_msg(HEADER, TargetCloud(np.zeros((0, 3), np.float32), None))
    assert empty.width == 0 and len(empty.data) == 0


def test_pose_stamped_of_a_box():
    box = _box()
    msg = deserialize_message(serialize_message(pose_stamped_msg(HEADER, box)), PoseStamped)
    assert msg.header == HEADER
    p, q = msg.pose.position, msg.pose.orientation
    assert (p.x, p.y, p.z) == pytest.approx(tuple(box.centre))
    assert quaternion_to_rotation((q.x, q.y, q.z, q.w)) == pytest.approx(box.rotation, abs=1e-12)


def _result(found=True):
    mask = np.zeros((8, 10), dtype=bool)
    mask[2:6, 3:7] = found
    return SegmentationResult(
        'the mug',
        mask,
        np.zeros((8, 10), np.float32),
        0.8,
        None,
        mask_bbox(mask),
        mask_centroid(mask),
        int(mask.sum()),
    )


def test_segmentation_carries_the_box():
    stats = DepthStats(0.8, 1.0, 16, 16)
    estimate = TargetEstimate(True, (0.1, -0.05, 0.8), stats, 640, _box(), None)
    msg = segmentation_msg(_result(), HEADER, estimate, 0.02)
    msg = deserialize_message(serialize_message(msg), Segmentation)
    assert msg.box_valid and msg.cloud_points == 640
    assert (msg.box_size.x, msg.box_size.y, msg.box_size.z) == pytest.approx((0.2, 0.1, 0.0))
    p, q = msg.box_pose.position, msg.box_pose.orientation
    assert (p.x, p.y, p.z) == pytest.approx((0.1, -0.05, 0.8))
    assert quaternion_to_rotation((q.x, q.y, q.z, q.w)) == pytest.approx(_box().rotation)
    assert msg.target_point_valid and msg.target_point.z == pytest.approx(0.8)


def test_segmentation_without_box():
    estimate = TargetEstimate(True, (0.1, -0.05, 0.8), DepthStats(0.8, 1.0, 16, 16), 12)
    msg = segmentation_msg(_result(), HEADER, estimate, 0.02)
    assert not msg.box_valid and msg.cloud_points == 12 and msg.box_size.x == 0.0
    msg = segmentation_msg(_result(False), HEADER, TargetEstimate(False, None, None), 0.02)
    assert not msg.box_valid and msg.cloud_points == 0 and not msg.target_point_valid


def test_markers_of_a_target():
    box = _box()
    array = target_markers(
        HEADER, 3, 'the red mug', 0.876, box, (0.1, -0.05, 0.78), color=(255, 0, 0)
    )
    array = deserialize_message(serialize_message(array), MarkerArray)
    cube, sphere, label = array.markers
    for marker, marker_id, kind in (
        (cube, BOX_ID, Marker.CUBE),
        (sphere, POINT_ID, Marker.SPHERE),
        (label, LABEL_ID, Marker.TEXT_VIEW_FACING),
    ):
        assert marker.header == HEADER and marker.ns == marker_namespace(3) == 'target/3'
        assert (marker.id, marker.type, marker.action) == (marker_id, kind, Marker.ADD)
        assert marker.lifetime.sec == 0 and marker.lifetime.nanosec == 0
    q = cube.pose.orientation
    assert quaternion_to_rotation((q.x, q.y, q.z, q.w)) == pytest.approx(box.rotation)
    assert (cube.scale.x, cube.scale.y, cube.scale.z) == pytest.approx((0.2, 0.1, MIN_BOX_EDGE_M))
    assert (cube.color.r, cube.color.g, cube.color.b) == (1.0, 0.0, 0.0) and cube.color.a < 1
    assert sphere.pose.position.z == pytest.approx(0.78)
    assert label.text == 'the red mug (0.88)'
    top_of_box = box.centre[1] - (np.abs(box.rotation[1]) @ box.size) / 2
    assert label.pose.position.y < top_of_box  # above the box in the image (-y is up)


def test_markers_delete_what_a_target_lacks():
    array = target_markers(HEADER, 'left', 'cup', 0.6, None, (0.0, 0.0, 1.0))
    assert [m.action for m in array.markers] == [Marker.DELETE, Marker.ADD, Marker.ADD]
    assert array.markers[2].pose.position.y < 0.0  # label above the point
    array = target_markers(HEADER, 'left', 'cup', 0.6, None, None)
    assert [m.action for m in array.markers] == [Marker.DELETE] * 3


def test_delete_target_markers():
    array = delete_target_markers(HEADER, 5)
    assert [(m.ns, m.id, m.action) for m in array.markers][:3] == [
        ('target/5', BOX_ID, Marker.DELETE),
        ('target/5', POINT_ID, Marker.DELETE),
        ('target/5', LABEL_ID, Marker.DELETE),
    ]
    # and the place surface and every grasp candidate's arrow and opening
    assert [m.id for m in array.markers] == list(MARKER_IDS)
    assert {m.action for m in array.markers} == {Marker.DELETE}


def test_marker_color_is_checked():
    with pytest.raises(ValueError, match='0..255'):
        target_markers(HEADER, 0, 'cup', 0.5, _box(), None, color=(0, 300, 0))

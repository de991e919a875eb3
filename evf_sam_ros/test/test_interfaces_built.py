"""Checks that evf_sam_msgs was generated, installed and is usable from Python."""

import math

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, RegionOfInterest

from evf_sam_msgs.action import FindTarget
from evf_sam_msgs.msg import Segmentation
from evf_sam_msgs.srv import Segment


def test_segmentation_defaults():
    msg = Segmentation()
    assert msg.found is False
    assert msg.prompt == ''
    assert isinstance(msg.score, float) and msg.score == 0.0
    assert isinstance(msg.area, int) and msg.area == 0
    assert isinstance(msg.mask, Image)
    assert isinstance(msg.bbox, RegionOfInterest)
    assert isinstance(msg.target_point, Point)
    assert msg.target_point_valid is False
    assert isinstance(msg.centroid_u, float)
    assert isinstance(msg.depth_median, float)
    assert isinstance(msg.inference_time, float)


def test_segment_service_types():
    req = Segment.Request()
    assert req.prompt == ''
    assert isinstance(req.image, Image) and req.image.width == 0
    resp = Segment.Response()
    assert resp.success is False
    assert resp.message == ''
    assert isinstance(resp.result, Segmentation)


def test_find_target_action_types():
    goal = FindTarget.Goal()
    assert goal.prompt == ''
    assert isinstance(goal.timeout, Duration)
    assert goal.min_hits == 0
    result = FindTarget.Result()
    assert result.found is False
    assert isinstance(result.best, Segmentation)
    assert result.frames_processed == 0
    feedback = FindTarget.Feedback()
    assert isinstance(feedback.current, Segmentation)
    assert feedback.hits == 0
    # The action's generated service/message types exist too.
    assert hasattr(FindTarget.Impl, 'SendGoalService')


def test_segmentation_serialization_round_trip():
    msg = Segmentation()
    msg.header.frame_id = 'camera_color_optical_frame'
    msg.header.stamp.sec = 12
    msg.prompt = 'the red mug left of the plate'
    msg.found = True
    msg.score = 0.75
    msg.object_score = float('nan')
    msg.mask.height, msg.mask.width, msg.mask.step = 2, 3, 3
    msg.mask.encoding = 'mono8'
    msg.mask.data = bytes([0, 255, 255, 0, 0, 255])
    msg.area = 3
    msg.bbox.x_offset, msg.bbox.width, msg.bbox.height = 1, 2, 2
    msg.centroid_u, msg.centroid_v = 1.5, 0.5
    msg.target_point.z = 1.25
    msg.target_point_valid = True
    msg.depth_valid_fraction = 0.5

    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 0
    back = deserialize_message(data, Segmentation)
    assert math.isnan(back.object_score)
    back.object_score = msg.object_score = 0.0  # NaN != NaN; compare the rest
    assert back == msg
    assert bytes(back.mask.data) == bytes([0, 255, 255, 0, 0, 255])


def test_ament_index_finds_packages():
    import os

    import pytest

    if not os.environ.get('AMENT_PREFIX_PATH'):
        pytest.skip('AMENT_PREFIX_PATH not set (`make test` sets it to .venv)')
    from ament_index_python.packages import get_package_share_directory

    for pkg in ('evf_sam_msgs', 'evf_sam_ros'):
        share = get_package_share_directory(pkg)
        assert os.path.isfile(os.path.join(share, 'package.xml')), share

"""evf_sam_node in its own process (console script), driven over real DDS on localhost:
topics, parameters, the service, the action, depth geometry and not-found behaviour.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.action import ActionClient
from ros_harness import Client, diagnostics_values, image_msg, node_process, wait_for
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from evf_sam_msgs.action import FindTarget
from evf_sam_msgs.msg import Segmentation
from evf_sam_msgs.srv import Segment
from evf_sam_ros.codecs.image import array_to_imgmsg, imgmsg_to_array
from evf_sam_ros.target3d.geometry import CameraIntrinsics, target_point

NS = '/node_a'
NODE = f'{NS}/evf_sam'


@pytest.fixture(scope='module')
def node(tiny_checkpoint, tmp_path_factory, ros_client):
    tmp = tmp_path_factory.mktemp('node_a')
    params = {
        'checkpoint': str(tiny_checkpoint('evf-sam2')),
        'score_threshold': 0.0,
        'diagnostics_period': 0.3,
        'depth_max_stamp_diff': 0.01,
        'depth_erode_iterations': 1,
        'depth_wait': 0.5,
    }
    with node_process(NS, params, tmp) as proc:
        wait_for(
            lambda: ros_client.lifecycle_state(NODE) == 'active', 60, 'the node to become active'
        )
        yield proc
    assert proc.returncode == 0, 'the node did not exit cleanly on SIGINT'


@pytest.fixture(scope='module')
def topics(node, ros_client: Client):
    c = ros_client
    return {
        'seg': c.collect(Segmentation, f'{NS}/segmentation'),
        'mask': c.collect(Image, f'{NS}/mask'),
        'point': c.collect(PointStamped, f'{NS}/target_point'),
        'prompt': c.collect(String, f'{NS}/prompt', latched=True),
        'diag': c.collect(DiagnosticArray, '/diagnostics'),
    }


def _set_prompt(client: Client, topics: dict, text: str) -> None:
    client.publish_when_matched(String, f'{NS}/command', String(data=text))
    wait_for(
        lambda: topics['prompt'] and topics['prompt'][-1].data == text, 10, f"prompt '{text}'"
    )


def _send_image(client: Client, topics: dict, stamp: int, **kw) -> Segmentation:
    client.publish_when_matched(Image, f'{NS}/image', image_msg(stamp, **kw))
    return wait_for(
        lambda: next((s for s in topics['seg'] if s.header.stamp.sec == stamp), None),
        15,
        f'a segmentation stamped {stamp}',
    )


def _skipped(topics: dict) -> int:
    return int((diagnostics_values(topics['diag'], NODE) or {}).get('frames_skipped_no_prompt', 0))


def test_no_result_without_a_target_then_mask_with_source_header(ros_client, topics):
    from std_srvs.srv import Trigger

    c = ros_client
    assert c.call(Trigger, f'{NODE}/clear_targets', Trigger.Request()).success
    skipped = _skipped(topics)
    c.publish_when_matched(Image, f'{NS}/image', image_msg(1))
    wait_for(lambda: _skipped(topics) > skipped, 10, 'the node to skip a frame without a target')
    assert not [s for s in topics['seg'] if s.header.stamp.sec == 1]  # silence, not "not found"
    _set_prompt(c, topics, 'the red mug left of the plate')
    seg = _send_image(c, topics, 2, h=48, w=64, frame='cam_optical')
    assert seg.header.frame_id == 'cam_optical' and seg.prompt == 'the red mug left of the plate'
    assert seg.found == (seg.area > 0)  # score_threshold 0: found iff the mask is non-empty
    mask = wait_for(lambda: next((m for m in topics['mask'] if m.header.stamp.sec == 2), None))
    assert mask.encoding == 'mono8' and (mask.height, mask.width) == (48, 64)
    values = imgmsg_to_array(mask)
    assert set(np.unique(values)) <= {0, 255} and int((values == 255).sum()) == seg.area
    assert seg.inference_time > 0 and math.isnan(seg.depth_median)
    diag = wait_for(
        lambda: (lambda d: d if d and d['node_overhead_ms_p50'] != 'nan' else None)(
            diagnostics_values(topics['diag'], NODE)
        ),
        10,
        'node overhead in /diagnostics',
    )
    assert 0.0 <= float(diag['node_overhead_ms_p50']) < 1000.0 and diag['variant'] == 'evf-sam2'


def test_depth_and_camera_info_give_the_point_geometry_predicts(ros_client, topics):
    c = ros_client
    _set_prompt(c, topics, 'the blue box')
    h, w, stamp = 48, 64, 10
    depth_mm = np.full((h, w), 1500, np.uint16)
    depth_mm[::7, ::5] = 0  # missing readings must be ignored
    depth_mm[:, :8] = 4000
    depth = array_to_imgmsg(depth_mm, '16UC1')
    depth.header.stamp.sec, depth.header.frame_id = stamp, 'cam_optical'
    info = CameraInfo(width=w, height=h, k=[80.0, 0.0, 30.0, 0.0, 90.0, 20.0, 0.0, 0.0, 1.0])
    info.header.frame_id = 'cam_optical'
    c.publish_when_matched(CameraInfo, f'{NS}/camera_info', info)
    c.publish_when_matched(Image, f'{NS}/depth', depth)
    seg = _send_image(c, topics, stamp, h=h, w=w, frame='cam_optical', seed=4)
    assert seg.found and seg.area > 0, 'tiny seed 4 gives a non-empty mask at threshold 0'
    mask = imgmsg_to_array(seg.mask) > 0
    intr = CameraIntrinsics(80.0, 90.0, 30.0, 20.0, w, h)
    depth_m = np.where(depth_mm > 0, depth_mm / 1000.0, np.nan).astype(np.float32)
    expected, stats = target_point(
        mask, depth_m, intr, erode_iterations=1, min_depth=0.1, max_depth=10.0
    )
    assert seg.target_point_valid
    np.testing.assert_allclose(
        [seg.target_point.x, seg.target_point.y, seg.target_point.z], expected, rtol=1e-5
    )
    assert seg.depth_median == pytest.approx(stats.median_m)
    assert seg.depth_valid_fraction == pytest.approx(stats.valid_fraction, rel=1e-5)
    point = wait_for(
        lambda: next((p for p in topics['point'] if p.header.stamp.sec == stamp), None)
    )
    assert point.header.frame_id == 'cam_optical'
    np.testing.assert_allclose([point.point.x, point.point.y, point.point.z], expected, rtol=1e-5)


def test_not_found_under_the_threshold_and_runtime_threshold_change(ros_client, topics):
    c = ros_client
    _set_prompt(c, topics, 'the red mug')
    assert all(r.successful for r in c.set_params(NODE, score_threshold=1.0))
    try:
        seg = _send_image(c, topics, 20, seed=4)
        assert not seg.found and seg.area > 0  # a mask, but not trusted: found=false
        assert not seg.target_point_valid
        assert not any(p.header.stamp.sec == 20 for p in topics['point'])
    finally:
        assert all(r.successful for r in c.set_params(NODE, score_threshold=0.0))
    assert _send_image(c, topics, 21, seed=4).found


def test_parameters_are_checked(ros_client, node):
    bad = ros_client.set_params(NODE, max_rate=-1.0)
    assert not bad[0].successful and 'out of range' in bad[0].reason
    for value in (-1.0, 2.0):  # accepted before ranges existed: every frame then found=false
        refused = ros_client.set_params(NODE, score_threshold=value)
        assert not refused[0].successful and 'score_threshold' in refused[0].reason
    crossed = ros_client.set_params(NODE, min_depth=20.0)  # max_depth is 10.0
    assert not crossed[0].successful and 'must not exceed max_depth' in crossed[0].reason
    from rcl_interfaces.srv import DescribeParameters

    described = ros_client.call(
        DescribeParameters,
        f'{NODE}/describe_parameters',
        DescribeParameters.Request(names=['score_threshold', 'depth_erode_iterations']),
    )
    score, erode = described.descriptors
    assert (score.floating_point_range[0].from_value, score.floating_point_range[0].to_value) == (
        0.0,
        1.0,
    )
    assert (erode.integer_range[0].from_value, erode.integer_range[0].to_value) == (0, 50)
    frozen = ros_client.set_params(NODE, checkpoint='/elsewhere')
    assert not frozen[0].successful and 'configure' in frozen[0].reason
    dtype = ros_client.set_params(NODE, dtype='float8')
    assert not dtype[0].successful


def test_service_segments_a_given_image_or_the_newest_frame(ros_client, topics):
    c = ros_client
    req = Segment.Request(prompt='the plate', image=image_msg(30, h=40, w=50, seed=5))
    res = c.call(Segment, f'{NODE}/segment', req)
    assert res.success, res.message
    assert res.result.header.stamp.sec == 30 and (
        res.result.mask.height,
        res.result.mask.width,
    ) == (40, 50)
    assert res.result.prompt == 'the plate'
    _set_prompt(c, topics, 'the red mug')
    _send_image(c, topics, 32)  # the newest frame the node received
    newest = c.call(Segment, f'{NODE}/segment', Segment.Request(prompt='the plate'))
    assert newest.success and newest.result.header.stamp.sec == 32
    empty = c.call(Segment, f'{NODE}/segment', Segment.Request(prompt='   '))
    assert not empty.success and 'empty' in empty.message
    bad = Segment.Request(prompt='mug', image=image_msg(31, encoding='rgb8'))
    bad.image.encoding = 'yuv422'
    broken = c.call(Segment, f'{NODE}/segment', bad)
    assert not broken.success and 'yuv422' in broken.message


def _send_goal(client: Client, goal: FindTarget.Goal, publish_frames: bool):
    action = ActionClient(client.node, FindTarget, f'{NODE}/find_target')
    wait_for(lambda: action.server_is_ready(), 10, 'the find_target server')
    feedback: list = []
    handle = wait_for_future(action.send_goal_async(goal, feedback_callback=feedback.append))
    return action, handle, feedback


def wait_for_future(future, timeout: float = 20.0):
    wait_for(future.done, timeout, 'a future')
    return future.result()


def test_find_target_action_succeeds_after_min_hits_with_feedback(ros_client, topics):
    c = ros_client
    action, handle, feedback = _send_goal(
        c, FindTarget.Goal(prompt='the red mug', min_hits=2), True
    )
    assert handle.accepted
    result_future = handle.get_result_async()
    stamp = 40
    while not result_future.done():  # the goal's frame is processed, with or without targets
        c.publish_when_matched(Image, f'{NS}/image', image_msg(stamp, seed=4))
        stamp += 1
        wait_for(
            lambda: (
                any(f.feedback.current.header.stamp.sec == stamp - 1 for f in feedback)
                or result_future.done()
            ),
            15,
            f'feedback on frame {stamp - 1}',
        )
    result = result_future.result().result
    assert result.found and result.frames_processed >= 2 and result.best.found
    assert len(feedback) >= 2 and feedback[-1].feedback.hits >= 1
    # light: the mask stays out of feedback and result (ros2 action send_goal -f prints them)
    current = feedback[-1].feedback.current
    assert len(current.mask.data) == 0 and current.mask.header == current.header
    assert current.area > 0 and current.bbox.width > 0 and len(result.best.mask.data) == 0
    action.destroy()


def test_find_target_times_out_not_found_and_rejects_bad_prompts(ros_client, node):
    c = ros_client
    assert all(r.successful for r in c.set_params(NODE, score_threshold=1.0))
    try:
        goal = FindTarget.Goal(prompt='a unicorn')
        goal.timeout.sec = 1
        action, handle, _ = _send_goal(c, goal, False)
        for stamp in range(60, 64):
            c.publish_when_matched(Image, f'{NS}/image', image_msg(stamp, seed=4))
        result = wait_for_future(handle.get_result_async()).result
        assert not result.found and 'not found within 1.0 s' in result.message
        rejected = wait_for_future(action.send_goal_async(FindTarget.Goal(prompt='\x07bell')))
        assert not rejected.accepted
        action.destroy()
    finally:
        c.set_params(NODE, score_threshold=0.0)


def test_several_targets_by_service_and_topic(ros_client, topics):
    from std_msgs.msg import Empty, Int32
    from std_srvs.srv import Trigger

    from evf_sam_msgs.msg import SegmentationArray, TargetArray
    from evf_sam_msgs.srv import AddTarget, RemoveTarget

    c = ros_client
    arrays = c.collect(SegmentationArray, f'{NS}/segmentations')
    listed = c.collect(TargetArray, f'{NS}/targets', latched=True)
    _set_prompt(c, topics, 'the red mug')
    added = c.call(AddTarget, f'{NODE}/add_target', AddTarget.Request(prompt='  the   plate '))
    assert added.success and added.target_id >= 0
    refused = c.call(AddTarget, f'{NODE}/add_target', AddTarget.Request(prompt='\x07'))
    assert not refused.success and refused.target_id == -1 and 'non-printable' in refused.message
    c.publish_when_matched(String, f'{NS}/targets/add', String(data='the fork'))
    wait_for(
        lambda: (
            listed
            and [t.prompt for t in listed[-1].targets] == ['the red mug', 'the plate', 'the fork']
        ),
        10,
        'three targets listed',
    )
    ids = [t.id for t in listed[-1].targets]
    seg = _send_image(c, topics, 70, seed=4)
    assert seg.prompt == 'the red mug' and seg.target_id == ids[0]  # single topics: the first
    array = wait_for(lambda: next((a for a in arrays if a.header.stamp.sec == 70), None))
    assert [(s.target_id, s.prompt) for s in array.segmentations] == list(
        zip(ids, ['the red mug', 'the plate', 'the fork'])
    )
    assert all(s.header == array.header for s in array.segmentations)
    gone = c.call(RemoveTarget, f'{NODE}/remove_target', RemoveTarget.Request(target_id=ids[1]))
    assert gone.success
    missing = c.call(RemoveTarget, f'{NODE}/remove_target', RemoveTarget.Request(target_id=999))
    assert not missing.success and 'no target with id 999' in missing.message
    c.publish_when_matched(Int32, f'{NS}/targets/remove', Int32(data=ids[0]))
    wait_for(lambda: [t.id for t in listed[-1].targets] == [ids[2]], 10, 'one target left')
    seg = _send_image(c, topics, 71, seed=4)
    assert (seg.target_id, seg.prompt) == (ids[2], 'the fork')  # the first target now
    c.publish_when_matched(Empty, f'{NS}/targets/clear', Empty())
    wait_for(lambda: listed[-1].targets == [], 10, 'no targets')
    cleared = c.call(Trigger, f'{NODE}/clear_targets', Trigger.Request())
    assert cleared.success and cleared.message == '0 targets removed'
    _set_prompt(c, topics, 'the red mug')  # back to one target for the tests that follow


def test_3d_outputs_cloud_pose_and_markers(ros_client, topics):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import PointCloud2
    from visualization_msgs.msg import Marker, MarkerArray

    from evf_sam_msgs.msg import GraspCandidate, GraspCandidateArray
    from evf_sam_msgs.srv import RemoveTarget
    from evf_sam_ros.pipeline.markers import GRASP_FIRST_ID

    c = ros_client
    clouds = c.collect(PointCloud2, f'{NS}/target_cloud')
    poses = c.collect(PoseStamped, f'{NS}/target_pose')
    markers = c.collect(MarkerArray, f'{NS}/markers')
    grasps = c.collect(GraspCandidateArray, f'{NS}/grasps')
    _set_prompt(c, topics, 'the blue box')
    h, w, stamp = 48, 64, 80
    depth = array_to_imgmsg(np.full((h, w), 1500, np.uint16), '16UC1')
    depth.header.stamp.sec, depth.header.frame_id = stamp, 'cam_optical'
    info = CameraInfo(width=w, height=h, k=[80.0, 0.0, 32.0, 0.0, 80.0, 24.0, 0.0, 0.0, 1.0])
    c.publish_when_matched(CameraInfo, f'{NS}/camera_info', info)
    c.publish_when_matched(Image, f'{NS}/depth', depth)
    for topic in ('target_cloud', 'markers', 'grasps'):  # built only for subscribers
        wait_for(lambda: c.node.count_publishers(f'{NS}/{topic}') > 0, 10, f'{topic} matched')
    seg = _send_image(c, topics, stamp, h=h, w=w, frame='cam_optical', seed=4)
    assert seg.found and seg.box_valid and seg.cloud_points > 0
    pose = wait_for(lambda: next((p for p in poses if p.header.stamp.sec == stamp), None))
    assert pose.header.frame_id == 'cam_optical'
    assert pose.pose.position.z == pytest.approx(1.5, abs=1e-3)  # a flat wall at 1.5 m
    cloud = wait_for(lambda: next((m for m in clouds if m.header.stamp.sec == stamp), None))
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb', 'target_id']
    assert cloud.width == seg.cloud_points
    points = np.frombuffer(bytes(cloud.data), np.float32).reshape(-1, 5)
    assert np.allclose(points[:, 2], 1.5, atol=1e-3)
    assert set(points[:, 4].view(np.int32)) == {seg.target_id}
    array = wait_for(
        lambda: next(
            (a for a in markers if a.markers and a.markers[0].header.stamp.sec == stamp), None
        )
    )
    ours = [m for m in array.markers if m.ns == f'target/{seg.target_id}']
    assert [m.type for m in ours[:3]] == [Marker.CUBE, Marker.SPHERE, Marker.TEXT_VIEW_FACING]
    assert all(m.action == Marker.ADD for m in ours[:3]) and 'the blue box' in ours[2].text
    # a flat wall facing the camera: every candidate on it, no place surface (not up)
    offer = wait_for(lambda: next((g for g in grasps if g.header.stamp.sec == stamp), None))
    assert offer.header.frame_id == 'cam_optical' and not seg.place_valid
    for candidate in offer.candidates:
        assert candidate.target_id == seg.target_id
        assert candidate.pose.position.z == pytest.approx(1.5, abs=1e-3)
        assert candidate.kind in (GraspCandidate.PARALLEL_JAW, GraspCandidate.SUCTION)
    arrows = [m for m in ours if m.id == GRASP_FIRST_ID and m.action == Marker.ADD]
    assert len(arrows) == min(len(offer.candidates), 1)
    assert all(
        a.type == Marker.ARROW and a.points[1].z == pytest.approx(1.5, abs=1e-3) for a in arrows
    )
    before = len(markers)
    assert c.call(
        RemoveTarget, f'{NODE}/remove_target', RemoveTarget.Request(target_id=seg.target_id)
    ).success
    deleted = wait_for(
        lambda: next((a for a in markers[before:] if a.markers), None), 10, 'markers deleted'
    )
    assert {(m.ns, m.action) for m in deleted.markers} == {
        (f'target/{seg.target_id}', Marker.DELETE)
    }
    _set_prompt(c, topics, 'the red mug')

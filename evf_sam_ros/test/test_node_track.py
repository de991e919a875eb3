"""evf_sam_node in track mode (its own process, real DDS): targets are grounded once and then
followed by SAM2's memory, lost targets are re-grounded, several targets run together, the
counters reach /diagnostics, and every bad input of segment mode is handled the same way.
Tiny real-format checkpoints (random weights: the hub is unreachable here).
"""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import Client, diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from evf_sam_msgs.msg import Segmentation, SegmentationArray
from evf_sam_msgs.srv import AddTarget
from evf_sam_ros.codecs.image import array_to_imgmsg

NS = '/track_mode'
NODE = f'{NS}/evf_sam'


@pytest.fixture(scope='module')
def track(tiny_checkpoint, tmp_path_factory, ros_client):
    tmp = tmp_path_factory.mktemp('track')
    params = {
        'checkpoint': str(tiny_checkpoint('evf-sam2')),
        'mode': 'track',
        'device': 'cpu',
        'score_threshold': 0.0,
        'diagnostics_period': 0.3,
        'depth_max_stamp_diff': 0.01,
        'publish_overlay': False,
        # random weights: object scores are noise; lost only when a test asks
        'lost_after': 0,
    }
    c = ros_client
    topics = {
        'seg': c.collect(Segmentation, f'{NS}/segmentation'),
        'arrays': c.collect(SegmentationArray, f'{NS}/segmentations'),
        'diag': c.collect(DiagnosticArray, '/diagnostics'),
        'prompt': c.collect(String, f'{NS}/prompt', latched=True),
    }
    with node_process(NS, params, tmp) as proc:
        wait_for(lambda: c.lifecycle_state(NODE) == 'active', 60, 'the track node to start')
        c.publish_when_matched(String, f'{NS}/command', String(data='the red mug'))
        wait_for(lambda: topics['prompt'] and topics['prompt'][-1].data == 'the red mug', 10)
        yield topics
        assert proc.poll() is None, 'the node died'
    assert proc.returncode == 0 and 'Traceback' not in node_log(tmp, NS)


def _frame(c: Client, topics: dict, stamp: int, **kw) -> Segmentation:
    c.publish_when_matched(Image, f'{NS}/image', image_msg(stamp, **kw))
    return wait_for(
        lambda: next((s for s in topics['seg'] if s.header.stamp.sec == stamp), None),
        15,
        f'a segmentation stamped {stamp}',
    )


def _diag(topics: dict, key: str) -> int:
    return int((diagnostics_values(topics['diag'], NODE) or {}).get(key, 0))


def _fresh_target(c: Client, track: dict, prompt: str = 'the red mug') -> None:
    """Only one target, new (whatever earlier tests left)."""
    from std_srvs.srv import Trigger

    assert c.call(Trigger, f'{NODE}/clear_targets', Trigger.Request()).success
    c.publish_when_matched(String, f'{NS}/command', String(data=prompt))
    wait_for(lambda: track['prompt'][-1].data == prompt, 10, 'a fresh target')


def test_grounded_once_then_tracked_and_several_targets(ros_client, track):
    c = ros_client
    _fresh_target(c, track)
    first = _frame(c, track, 1, seed=1)
    assert first.grounded and not first.lost and first.target_id >= 0
    later = [_frame(c, track, s, seed=1 + s) for s in (2, 3, 4)]
    assert [s.grounded for s in later] == [False, False, False]  # carried by memory
    assert {s.target_id for s in later} == {first.target_id}
    added = c.call(AddTarget, f'{NODE}/add_target', AddTarget.Request(prompt='the plate'))
    assert added.success
    _frame(c, track, 5, seed=6)
    array = wait_for(lambda: next((a for a in track['arrays'] if a.header.stamp.sec == 5), None))
    assert [(s.target_id, s.grounded) for s in array.segmentations] == [
        (first.target_id, False),
        (added.target_id, True),
    ]  # the new one grounded on this frame
    _frame(c, track, 6, seed=7)
    array = wait_for(lambda: next((a for a in track['arrays'] if a.header.stamp.sec == 6), None))
    assert [s.grounded for s in array.segmentations] == [False, False]
    wait_for(lambda: _diag(track, 'track_groundings') >= 2, 10, 'groundings on /diagnostics')
    assert (diagnostics_values(track['diag'], NODE) or {}).get('mode') == 'track'


def test_a_one_shot_request_leaves_the_tracked_targets_alone(ros_client, track):
    """~/segment with an image of another size is grounded on its own: the tracked target is
    neither re-grounded nor reset on the next frame.
    """
    from evf_sam_msgs.srv import Segment

    c = ros_client
    _fresh_target(c, track)
    first = _frame(c, track, 40, seed=40)
    assert _frame(c, track, 41, seed=41).grounded is False
    request = Segment.Request(prompt='the plate', image=image_msg(42, h=40, w=30))
    answer = c.call(Segment, f'{NODE}/segment', request)
    assert answer.success and (answer.result.mask.height, answer.result.mask.width) == (40, 30)
    after = _frame(c, track, 43, seed=43)
    assert (after.target_id, after.grounded) == (first.target_id, False)
    assert after.reground_count == first.reground_count


def test_lost_targets_are_regrounded(ros_client, track):
    c = ros_client
    assert all(r.successful for r in c.set_params(NODE, score_threshold=1.0, lost_after=2))
    try:
        _fresh_target(c, track)
        lost_before = _diag(track, 'track_lost')
        segs = [_frame(c, track, s, seed=s) for s in range(20, 24)]  # every frame weak now
        assert [s.lost for s in segs] == [False, True, True, True]  # lost after 2 weak frames
        assert [s.grounded for s in segs] == [True, False, True, True]  # re-grounded while lost
        assert segs[1].lost_count == segs[0].lost_count + 1
        assert segs[3].reground_count == segs[2].reground_count + 1
        assert not any(s.found for s in segs)
        wait_for(
            lambda: (
                _diag(track, 'track_lost') > lost_before and _diag(track, 'track_regrounded') >= 1
            ),
            10,
            'lost and re-grounded counted',
        )
    finally:
        assert all(r.successful for r in c.set_params(NODE, score_threshold=0.0, lost_after=0))


def test_bad_input_in_track_mode_is_counted_and_the_node_carries_on(ros_client, track):
    c = ros_client
    h, w = 48, 64
    bad = image_msg(30)
    bad.encoding = 'yuv422'
    short = image_msg(31)
    short.data = bytes(short.data)[:100]
    before = {k: _diag(track, f'problem.{k}') for k in ('unsupported_encoding', 'bad_image')}
    for msg in (bad, short):
        c.publish_when_matched(Image, f'{NS}/image', msg)
        wait_for(
            lambda: sum(_diag(track, f'problem.{k}') for k in before) > sum(before.values()),
            10,
            'the bad frame counted',
        )
        before = {k: _diag(track, f'problem.{k}') for k in before}
    # 1 x 100000: video mode squashes every frame to 1024x1024, so it is segmented (and the
    # targets re-grounded for the new frame size), where image mode refuses it as bad_image
    wide = array_to_imgmsg(np.zeros((1, 100000, 3), np.uint8), 'rgb8')
    wide.header.stamp.sec = 34
    c.publish_when_matched(Image, f'{NS}/image', wide)
    seg = wait_for(lambda: next((s for s in track['seg'] if s.header.stamp.sec == 34), None), 15)
    assert seg.grounded and (seg.mask.height, seg.mask.width) == (1, 100000)
    info = CameraInfo(width=w, height=h, k=[50.0, 0, 32.0, 0, 50.0, 24.0, 0, 0, 1.0])
    c.publish_when_matched(CameraInfo, f'{NS}/camera_info', info)
    for stamp, depth, frame, kind in (
        (32, np.full((h // 2, w // 2), 900, np.uint16), 'camera_optical', 'depth_size_mismatch'),
        (33, np.full((h, w), 900, np.uint16), 'other_optical', 'depth_frame_mismatch'),
    ):
        msg = array_to_imgmsg(depth, '16UC1')
        msg.header.stamp.sec, msg.header.frame_id = stamp, frame
        count = _diag(track, f'problem.{kind}')
        c.publish_when_matched(Image, f'{NS}/depth', msg)
        seg = _frame(c, track, stamp, seed=4)
        wait_for(lambda: _diag(track, f'problem.{kind}') > count, 10, f'{kind} counted')
        assert not seg.target_point_valid
    assert c.lifecycle_state(NODE) == 'active'


def test_track_mode_refuses_a_sam_vit_checkpoint(tiny_checkpoint, tmp_path, ros_client):
    c, ns = ros_client, '/track_vit'
    diags = c.collect(DiagnosticArray, '/diagnostics')
    params = {
        'checkpoint': str(tiny_checkpoint('evf-sam', image_size=256)),
        'mode': 'track',
        'device': 'cpu',
        'diagnostics_period': 0.3,
    }
    with node_process(ns, params, tmp_path) as proc:
        values = wait_for(
            lambda: (lambda v: v if v and v['level'] == '2' else None)(
                diagnostics_values(diags, f'{ns}/evf_sam')
            ),
            60,
            'the load error on /diagnostics',
        )
        assert 'SAM2 checkpoint' in values['message'] and 'segment mode' in values['message']
        assert c.lifecycle_state(f'{ns}/evf_sam') == 'unconfigured' and proc.poll() is None
    assert proc.returncode == 0

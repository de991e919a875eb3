"""Correction clicks through the node (its own process, real DDS, track mode): rqt_image_view's
Point on a remapped ``<image>_mouse_left`` topic, the stamped form and ``~/correct_target``;
points with ``~/segment``; refused clicks counted by kind while the node carries on. Tiny
real-format checkpoint (random weights: the hub is unreachable here), so the tests compare the
model's own numbers with and without a click rather than where the mask lies.
"""

from __future__ import annotations

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
from ros_harness import diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evf_sam_msgs.msg import Segmentation
from evf_sam_msgs.srv import CorrectTarget, Segment
from evf_sam_ros.model import EvfSamPredictor
from evf_sam_ros.node.clicks import ClickInput
from evf_sam_ros.pipeline import predictor_segmenter
from evf_sam_ros.target3d.estimate import TargetSettings

NS = '/clicks'
NODE = f'{NS}/evf_sam'
RQT = f'{NS}/camera/image_raw_mouse_left'  # what rqt_image_view publishes for that image


@pytest.fixture(scope='module')
def clicks(tiny_checkpoint, tmp_path_factory, ros_client):
    tmp = tmp_path_factory.mktemp('clicks')
    params = {
        'checkpoint': str(tiny_checkpoint('evf-sam2', image_size=128)),
        'mode': 'track',
        'device': 'cpu',
        'score_threshold': 0.0,
        'diagnostics_period': 0.3,
        'publish_overlay': False,
        'use_depth': False,
        'lost_after': 0,
        'click_frames': 3,
    }
    c = ros_client
    topics = {
        'seg': c.collect(Segmentation, f'{NS}/segmentation'),
        'diag': c.collect(DiagnosticArray, '/diagnostics'),
        'prompt': c.collect(String, f'{NS}/prompt', latched=True),
    }
    with node_process(NS, params, tmp, remappings=[('click/positive', RQT)]) as proc:
        wait_for(lambda: c.lifecycle_state(NODE) == 'active', 60, 'the node to start')
        for kind, topic in ((Point, RQT), (PointStamped, f'{NS}/click/positive_stamped')):
            pub = c.publisher(kind, topic)  # matched now, not while a test waits
            wait_for(lambda: pub.get_subscription_count() > 0, 30, f'a subscriber on {topic}')
        yield topics
        assert proc.poll() is None, 'the node died'
    assert proc.returncode == 0 and 'Traceback' not in node_log(tmp, NS)


def _diag(topics: dict, key: str) -> int:
    return int((diagnostics_values(topics['diag'], NODE) or {}).get(key, 0))


def _fresh_target(c, topics: dict, prompt: str) -> None:
    from std_srvs.srv import Trigger

    assert c.call(Trigger, f'{NODE}/clear_targets', Trigger.Request()).success
    c.publish_when_matched(String, f'{NS}/command', String(data=prompt))
    wait_for(lambda: topics['prompt'] and topics['prompt'][-1].data == prompt, 10, prompt)


def _frame(c, topics: dict, stamp: int, seed: int) -> Segmentation:
    c.publish_when_matched(Image, f'{NS}/image', image_msg(stamp, seed=seed))
    return wait_for(
        lambda: next((s for s in topics['seg'] if s.header.stamp.sec == stamp), None),
        30,
        f'a segmentation stamped {stamp}',
    )


def _round(c, topics: dict, first: int, prompt: str, click=None) -> list[Segmentation]:
    """A fresh target on three frames (seeds 1, 2, 3), with ``click`` after the second."""
    _fresh_target(c, topics, prompt)
    segs = [_frame(c, topics, first + i, seed=1 + i) for i in range(2)]
    if click is not None:
        applied = _diag(topics, 'clicks_applied')
        click()
        wait_for(lambda: _diag(topics, 'clicks_applied') > applied, 30, 'the click applied')
    return segs + [_frame(c, topics, first + 2, seed=3)]


def test_an_rqt_click_changes_the_primary_targets_mask_from_then_on(ros_client, clicks):
    c = ros_client
    plain = _round(c, clicks, 100, 'the red mug')
    rqt = _round(
        c,
        clicks,
        110,
        'the red mug',
        lambda: c.publish_when_matched(Point, RQT, Point(x=5.0, y=7.0)),
    )
    same = [(s.score, s.object_score, s.area) for s in (plain[1], rqt[1])]
    assert same[0] == same[1]  # identical frames before the click
    assert (plain[2].score, plain[2].object_score) != (rqt[2].score, rqt[2].object_score)
    assert plain[2].target_id != rqt[2].target_id  # a fresh target each round


def test_correct_target_answers_with_the_corrected_mask_and_refuses_with_reasons(
    ros_client, clicks
):
    c = ros_client
    _fresh_target(c, clicks, 'the plate')
    segs = [_frame(c, clicks, 200 + i, seed=10 + i) for i in range(2)]
    target = segs[-1].target_id
    ok = c.call(
        CorrectTarget,
        f'{NODE}/correct_target',
        CorrectTarget.Request(
            target_id=target,
            points=[Point(x=10.0, y=10.0), Point(x=40.0, y=30.0)],
            labels=[1, 0],
            stamp=Time(sec=200),
        ),
    )
    assert ok.success, ok.message
    assert ok.result.header.stamp.sec == 200 and ok.result.target_id == target
    assert (ok.result.mask.height, ok.result.mask.width) == (48, 64)
    assert ok.result.score != segs[0].score
    refusals = [
        (dict(target_id=target + 50), 'click_unknown_target', 'no tracked target'),
        (dict(points=[Point(x=64.0, y=3.0)]), 'click_outside_image', 'outside the 64x48'),
        (dict(labels=[1, 1]), 'click_invalid', '1 points but 2 labels'),
        (dict(stamp=Time(sec=150)), 'click_frame_not_held', 'not held'),
    ]
    for change, kind, match in refusals:
        before = _diag(clicks, f'problem.{kind}')
        fields = dict(target_id=target, points=[Point(x=5.0, y=5.0)], labels=[1])
        answer = c.call(
            CorrectTarget, f'{NODE}/correct_target', CorrectTarget.Request(**{**fields, **change})
        )
        assert not answer.success and match in answer.message, answer.message
        wait_for(lambda: _diag(clicks, f'problem.{kind}') > before, 10, f'{kind} counted')
    before = _diag(clicks, 'problem.click_frame_not_held')
    stale = PointStamped(point=Point(x=5.0, y=5.0))
    stale.header.stamp.sec = 3
    c.publish_when_matched(PointStamped, f'{NS}/click/positive_stamped', stale)
    wait_for(lambda: _diag(clicks, 'problem.click_frame_not_held') > before, 10, 'stale counted')
    assert _frame(c, clicks, 202, seed=12).target_id == target  # still tracking
    assert c.lifecycle_state(NODE) == 'active'


def test_segment_takes_points_with_its_image(ros_client, clicks):
    c = ros_client
    image = image_msg(300, seed=5)
    text_only = c.call(Segment, f'{NODE}/segment', Segment.Request(prompt='the mug', image=image))
    clicked = c.call(
        Segment,
        f'{NODE}/segment',
        Segment.Request(prompt='the mug', image=image, points=[Point(x=20.0, y=20.0)], labels=[1]),
    )
    assert text_only.success and clicked.success, (text_only.message, clicked.message)
    assert clicked.result.score != text_only.result.score
    before = _diag(clicks, 'problem.click_outside_image')
    bad = c.call(
        Segment,
        f'{NODE}/segment',
        Segment.Request(prompt='the mug', image=image, points=[Point(x=99.0, y=2.0)], labels=[1]),
    )
    assert not bad.success and 'outside the 64x48 image' in bad.message
    wait_for(lambda: _diag(clicks, 'problem.click_outside_image') > before, 10, 'counted')


def test_clicks_in_segment_mode_are_refused_with_the_reason(tiny_checkpoint):
    predictor = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2', image_size=128), device='cpu'
    )
    warned = []
    applied = []
    clicks = ClickInput(
        lambda: predictor_segmenter(predictor),
        lambda: 0,
        lambda kind, message: warned.append((kind, message)),
        lambda: applied.append(1),
        TargetSettings,
        lambda: 'camera',
    )
    answer = clicks.serve(
        CorrectTarget.Request(points=[Point(x=1.0, y=1.0)], labels=[1]), CorrectTarget.Response()
    )
    assert not answer.success and 'segment mode' in answer.message
    clicks.positive(Point(x=1.0, y=1.0))
    assert [k for k, _ in warned] == ['click_not_tracking', 'click_not_tracking']
    assert not applied
    unconfigured = ClickInput(
        lambda: None, lambda: None, lambda *w: warned.append(w), None, None, None
    )
    unconfigured.negative(Point(x=1.0, y=1.0))
    assert warned[-1][0] == 'click_unknown_target'  # no target at all

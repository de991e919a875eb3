"""evf_sam_node under bad input, floods, a slow model and lifecycle changes: it stays up, says
what is wrong (counted in /diagnostics), and keeps answering.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from ros_harness import Client, diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from evf_sam_msgs.msg import Segmentation
from evf_sam_msgs.srv import Segment
from evf_sam_ros.codecs.image import array_to_imgmsg

SLOW_NS, LC_NS = '/slow', '/lifecycle'
SLOW, LC = f'{SLOW_NS}/evf_sam', f'{LC_NS}/evf_sam'


def _diag(client_topics: dict, node: str, key: str) -> int:
    values = diagnostics_values(client_topics['diag'], node) or {}
    return int(values.get(key, 0))


@pytest.fixture(scope='module')
def slow(tiny_checkpoint, tmp_path_factory, ros_client):
    """A node whose model takes ~0.1 s a frame on this CPU (tiny SAM2 at 1024 input)."""
    tmp = tmp_path_factory.mktemp('slow')
    params = {
        'checkpoint': str(tiny_checkpoint('evf-sam2', image_size=1024)),
        'score_threshold': 0.0,
        'diagnostics_period': 0.3,
        'prompt': 'the mug',
        'depth_erode_iterations': 0,
    }
    c = ros_client
    topics = {
        'seg': [],
        'diag': c.collect(DiagnosticArray, '/diagnostics'),
        'prompt': c.collect(String, f'{SLOW_NS}/prompt', latched=True),
    }
    c.node.create_subscription(
        Segmentation,
        f'{SLOW_NS}/segmentation',
        lambda m: topics['seg'].append((time.monotonic(), m)),
        100,
    )
    with node_process(SLOW_NS, params, tmp) as proc:
        wait_for(lambda: c.lifecycle_state(SLOW) == 'active', 60, 'the slow node to become active')
        yield topics
        assert proc.poll() is None, 'the node died'
    assert 'Traceback' not in node_log(tmp, SLOW_NS)


def _stream(client: Client, topic: str, make, rate_hz: float, seconds: float) -> dict[int, float]:
    """Publish ``make(i)`` at ``rate_hz``; return {stamp sec: monotonic send time}."""
    pub = client.publisher(Image, topic)
    wait_for(lambda: pub.get_subscription_count() > 0, 10, f'a subscriber on {topic}')
    sent, start, i = {}, time.monotonic(), 0
    while time.monotonic() - start < seconds:
        msg = make(i)
        sent[msg.header.stamp.sec] = time.monotonic()
        pub.publish(msg)
        i += 1
        time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
    return sent


def test_newest_frame_only_keeps_latency_within_one_inference(ros_client, slow):
    sent = _stream(
        ros_client, f'{SLOW_NS}/image', lambda i: image_msg(1000 + i, 240, 320, seed=i), 30, 3.0
    )
    last = max(sent)
    wait_for(
        lambda: any(m.header.stamp.sec == last for _, m in slow['seg']),
        15,
        "the newest frame's result",
    )
    outs = [(t, m) for t, m in slow['seg'] if m.header.stamp.sec in sent]
    assert len(outs) < len(sent) / 2, 'a slow model cannot process every frame of a 30 Hz stream'
    periods = [m.inference_time for _, m in outs]
    bound = 2 * max(periods) + 0.25  # waiting for the running inference, then its own
    latencies = [t - sent[m.header.stamp.sec] for t, m in outs]
    assert max(latencies) < bound, (max(latencies), bound)
    stamps = [m.header.stamp.sec for _, m in outs]
    assert stamps == sorted(stamps)
    wait_for(lambda: _diag(slow, SLOW, 'frames_dropped') > 0, 5, 'dropped frames counted')


def test_bad_images_are_counted_and_the_node_carries_on(ros_client, slow):
    c = ros_client
    before = _diag(slow, SLOW, 'frames_bad')
    bad = [image_msg(2000 + i, 20, 30) for i in range(4)]
    bad[0].encoding = 'yuv422'
    bad[1].step = 10  # less than width * 3
    bad[2].data = bytes(bad[2].data)[:100]
    bad[3].width, bad[3].height, bad[3].step, bad[3].data = 0, 0, 0, b''
    for msg in bad:
        c.publish_when_matched(Image, f'{SLOW_NS}/image', msg)
        wait_for(
            lambda: _diag(slow, SLOW, 'frames_bad') > before,
            10,
            f'bad frame {msg.header.stamp.sec} counted',
        )
        before = _diag(slow, SLOW, 'frames_bad')
    c.publish_when_matched(Image, f'{SLOW_NS}/image', image_msg(2010, 20, 30))
    wait_for(
        lambda: any(m.header.stamp.sec == 2010 for _, m in slow['seg']),
        10,
        'a good frame after bad ones',
    )


def test_huge_and_unprintable_prompts_are_refused(ros_client, slow):
    c = ros_client
    rejected = _diag(slow, SLOW, 'prompts_rejected')
    current = slow['prompt'][-1].data
    for text in ('mug ' * 3000, 'the \x1b[31mred\x1b[0m mug'):
        c.publish_when_matched(String, f'{SLOW_NS}/command', String(data=text))
    wait_for(
        lambda: _diag(slow, SLOW, 'prompts_rejected') >= rejected + 2, 10, 'two refusals counted'
    )
    assert slow['prompt'][-1].data == current


def test_command_flood_keeps_the_node_responsive_and_counts_every_command(ros_client, slow):
    c = ros_client
    commands = _diag(slow, SLOW, 'commands')
    frames = threading.Thread(
        target=_stream,
        args=(c, f'{SLOW_NS}/image', lambda i: image_msg(3000 + i, 120, 160), 30, 2.0),
    )
    frames.start()
    pub = c.publisher(String, f'{SLOW_NS}/command', depth=200)
    wait_for(lambda: pub.get_subscription_count() > 0)
    round_trips = []
    for i in range(200):  # 100 commands per second for 2 s
        pub.publish(String(data=f'object {i}'))
        if i % 50 == 25:
            start = time.monotonic()
            assert c.set_params(SLOW, score_threshold=0.0)[0].successful
            round_trips.append(time.monotonic() - start)
        time.sleep(0.01)
    frames.join()
    wait_for(lambda: slow['prompt'][-1].data == 'object 199', 10, 'the last command to win')
    wait_for(
        lambda: _diag(slow, SLOW, 'commands') == commands + 200, 10, 'all 200 commands counted'
    )
    assert max(round_trips) < 2.0, round_trips
    _ = c.call(Segment, f'{SLOW}/segment', Segment.Request(prompt='the mug'))


def test_image_flood_1080p_at_60hz(ros_client, slow):
    c = ros_client
    big = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    template = array_to_imgmsg(big, 'rgb8')

    def make(i):
        template.header.stamp.sec = 4000 + i
        return template

    sent = _stream(c, f'{SLOW_NS}/image', make, 60, 2.0)
    wait_for(
        lambda: any(m.header.stamp.sec in sent for _, m in slow['seg']),
        20,
        'a result from the flood',
    )
    assert c.lifecycle_state(SLOW) == 'active'


def test_depth_problems_are_reported_not_fatal(ros_client, slow):
    c = ros_client
    h, w = 48, 64

    def depth(stamp, array, encoding):
        msg = array_to_imgmsg(array, encoding)
        msg.header.stamp.sec, msg.header.frame_id = stamp, 'camera_optical'
        return msg

    def frame(stamp, kind):
        before = _diag(slow, SLOW, f'problem.{kind}')
        c.publish_when_matched(Image, f'{SLOW_NS}/image', image_msg(stamp, h, w, seed=4))
        wait_for(
            lambda: _diag(slow, SLOW, f'problem.{kind}') > before, 10, f'problem {kind} counted'
        )
        seg = wait_for(
            lambda: next((m for _, m in slow['seg'] if m.header.stamp.sec == stamp), None)
        )
        assert not seg.target_point_valid

    c.publish_when_matched(
        Image, f'{SLOW_NS}/depth', depth(5000, np.full((h, w), 1000, np.uint16), '16UC1')
    )
    frame(5000, 'camera_info_missing')
    info = CameraInfo(width=w, height=h, k=[50.0, 0, 32.0, 0, 50.0, 24.0, 0, 0, 1.0])
    c.publish_when_matched(CameraInfo, f'{SLOW_NS}/camera_info', info)
    c.publish_when_matched(
        Image, f'{SLOW_NS}/depth', depth(5001, np.full((h // 2, w // 2), 900, np.uint16), '16UC1')
    )
    frame(5001, 'depth_size_mismatch')
    c.publish_when_matched(
        Image, f'{SLOW_NS}/depth', depth(5002, np.full((h, w), np.nan, np.float32), '32FC1')
    )
    frame(5002, 'depth_invalid')
    c.publish_when_matched(
        Image, f'{SLOW_NS}/depth', depth(5003, np.zeros((h, w), np.uint16), '16UC1')
    )
    frame(5003, 'depth_invalid')


def test_extreme_but_valid_image_is_a_bad_image_not_a_crash(ros_client, slow):
    """rgb8, 1 pixel high, 100000 wide: the model cannot resize it; refused as bad_image."""
    c = ros_client
    before = _diag(slow, SLOW, 'problem.bad_image')
    wide = array_to_imgmsg(np.zeros((1, 100000, 3), np.uint8), 'rgb8')
    wide.header.stamp.sec = 6000
    c.publish_when_matched(Image, f'{SLOW_NS}/image', wide)
    wait_for(lambda: _diag(slow, SLOW, 'problem.bad_image') > before, 10, 'bad_image counted')
    assert _diag(slow, SLOW, 'problem.worker_error') == 0
    c.publish_when_matched(Image, f'{SLOW_NS}/image', image_msg(6001))
    wait_for(
        lambda: any(m.header.stamp.sec == 6001 for _, m in slow['seg']), 10, 'next frame served'
    )


def test_failed_load_keeps_the_node_up_then_full_lifecycle(
    tiny_checkpoint, tmp_path_factory, ros_client
):
    c, tmp = ros_client, tmp_path_factory.mktemp('lifecycle')
    diags = c.collect(DiagnosticArray, '/diagnostics')
    segs = c.collect(Segmentation, f'{LC_NS}/segmentation')
    params = {
        'checkpoint': str(tmp / 'no_such_checkpoint'),
        'diagnostics_period': 0.3,
        'prompt': 'the mug',
        'score_threshold': 0.0,
    }
    with node_process(LC_NS, params, tmp) as proc:
        values = wait_for(
            lambda: diagnostics_values(diags, LC), 60, 'diagnostics from the lifecycle node'
        )
        assert values['level'] == '2' and 'does not exist' in values['message']
        assert c.lifecycle_state(LC) == 'unconfigured' and proc.poll() is None
        assert c.set_params(LC, checkpoint=str(tiny_checkpoint('evf-sam2')))[0].successful
        assert c.transition(LC, Transition.TRANSITION_CONFIGURE)
        assert c.lifecycle_state(LC) == 'inactive'
        assert not c.set_params(LC, checkpoint='/x')[0].successful  # loaded: needs cleanup first
        assert c.transition(LC, Transition.TRANSITION_ACTIVATE)
        c.publish_when_matched(Image, f'{LC_NS}/image', image_msg(1))
        wait_for(lambda: any(s.header.stamp.sec == 1 for s in segs), 10, 'output once active')
        assert c.transition(LC, Transition.TRANSITION_DEACTIVATE)
        res = c.call(Segment, f'{LC}/segment', Segment.Request(prompt='the mug'))
        assert not res.success and 'inactive' in res.message
        assert c.transition(LC, Transition.TRANSITION_CLEANUP)
        assert c.lifecycle_state(LC) == 'unconfigured'
        wait_for(
            lambda: (diagnostics_values(diags, LC) or {}).get('device') == '', 5, 'model released'
        )
        assert c.transition(LC, Transition.TRANSITION_CONFIGURE)
        assert c.transition(LC, Transition.TRANSITION_ACTIVATE)
        c.publish_when_matched(Image, f'{LC_NS}/image', image_msg(2))
        wait_for(
            lambda: any(s.header.stamp.sec == 2 for s in segs), 10, 'output after reconfigure'
        )
    assert proc.returncode == 0
    assert 'Traceback' not in node_log(tmp, LC_NS)

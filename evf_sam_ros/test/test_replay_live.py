"""Live replay end to end: a real evf_sam_node process (tiny checkpoint) in its own namespace,
the bag played onto its topics, its outputs recorded, matched and reported.

DDS stays on this machine: the node inherits ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and
ROS_LOCALHOST_ONLY=1 (set by conftest.py when the caller did not) and this run's domain id.
"""

import json

import pytest
from ros_harness import node_process

from evf_sam_ros.codecs.image import stamp_ns
from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import deserialize, open_bag, read_messages
from evf_sam_ros.replay.live_ros import topic_name
from evf_sam_ros.replay.report import read_frames
from evf_sam_ros.replay.sample_bag import COLOR_TOPIC, START_NS, write_sample_bag
from evf_sam_ros.synthetic.tabletop import MUG_PROMPT

NAMESPACE = '/replay_live_test'
FRAMES = 4


def test_topic_name():
    assert topic_name('', 'image') == '/image'
    assert topic_name('/robot/', 'segmentation') == '/robot/segmentation'
    assert topic_name('robot', 'prompt') == '/robot/prompt'


@pytest.fixture(scope='module')
def node(tiny_checkpoint, tmp_path_factory):
    """evf_sam_node (its console script) on the CPU with a tiny checkpoint, under NAMESPACE;
    yields the checkpoint.
    """
    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    params = {'checkpoint': str(checkpoint), 'device': 'cpu', 'publish_overlay': False}
    with node_process(NAMESPACE, params, tmp_path_factory.mktemp('node')):
        yield checkpoint


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    return write_sample_bag(tmp_path_factory.mktemp('bag') / 'bag', 'mcap', FRAMES, (96, 72))


def _run_live(bag, out, *extra):
    return cli.main(
        [
            str(bag),
            '--live',
            '--namespace',
            NAMESPACE,
            '-o',
            str(out),
            '--quiet',
            '--grace',
            '15',
            '--wait-for-node',
            '90',
            '--no-video',
            *extra,
        ]
    )


def _check_outputs(bag, out, prompt):
    report = json.loads((out / 'report.json').read_text())
    frames = report['frames']
    assert report['mode'] == 'live' and frames['in'] == FRAMES
    assert frames['processed'] >= 1 and frames['processed'] + frames['dropped'] == FRAMES
    assert report['latency_ms']['kind'] == 'stamp_to_output' and report['latency_ms']['p50'] > 0
    assert {t['prompt'] for t in report['targets'].values()} == {prompt}
    with open_bag(bag) as reader:
        source = {
            stamp_ns(deserialize(raw, ty).header)
            for _, ty, _, raw in read_messages(reader, [COLOR_TOPIC])
        }
    from rclpy.serialization import deserialize_message

    from evf_sam_msgs.msg import Segmentation

    with open_bag(out / 'results') as reader:
        segs = [
            deserialize_message(raw, Segmentation)
            for _, _, _, raw in read_messages(reader, ['/evf_sam/segmentation'])
        ]
    assert len(segs) == frames['processed']
    assert {s.header.stamp.sec * 10**9 + s.header.stamp.nanosec for s in segs} <= source
    return report


def test_live_with_the_bags_command(node, bag, tmp_path, ros_client):
    """The node, without targets, gets the bag's command."""
    from std_srvs.srv import Trigger

    assert ros_client.call(
        Trigger, f'{NAMESPACE}/evf_sam/clear_targets', Trigger.Request()
    ).success
    assert _run_live(bag, tmp_path) == 0
    _check_outputs(bag, tmp_path, MUG_PROMPT)


def test_live_with_prompt_option_matches_offline(node, bag, tmp_path):
    assert (
        _run_live(
            bag,
            tmp_path / 'live',
            '--prompt',
            'the red mug',
            '--speed',
            '2',
            '--command-topic',
            'none',
        )
        == 0
    )
    live = _check_outputs(bag, tmp_path / 'live', 'the red mug')
    assert 'prompt_not_confirmed' not in live['warnings']
    # the node and offline mode run the same model on the same frames: same answers
    assert (
        cli.main(
            [
                str(bag),
                '--checkpoint',
                str(node),
                '--device',
                'cpu',
                '-o',
                str(tmp_path / 'offline'),
                '--prompt',
                'the red mug',
                '--command-topic',
                'none',
                '--no-video',
                '--quiet',
            ]
        )
        == 0
    )
    answers = {f['frame']: f['results'] for f in read_frames(tmp_path / 'offline')}
    compared = 0
    for frame in read_frames(tmp_path / 'live'):
        for got, expected in zip(frame.get('results', []), answers[frame['frame']]):
            compared += 1
            assert (got['prompt'], got['area'], got['found']) == (
                expected['prompt'],
                expected['area'],
                expected['found'],
            )
            assert got['score'] == pytest.approx(expected['score'], abs=1e-5)
    assert compared == live['frames']['processed']


def test_live_plays_a_ros1_bag_with_compressed_depth(node, tmp_path):
    """A ROS 1 bag goes out as ROS 2 messages, its compressedDepth as the node's depth Image:
    the node's 3D targets equal offline mode's on the same bag. The stamps are new to the
    node, so depth it kept from earlier tests cannot stand in.
    """
    bag = write_sample_bag(
        tmp_path / 'sample.bag',
        'mcap',
        FRAMES,
        (96, 72),
        bag_format='ros1',
        depth_format='compressedDepth',
        start_ns=START_NS + 10**12,
    )
    assert _run_live(bag, tmp_path / 'live', '--prompt', MUG_PROMPT) == 0
    _check_outputs(bag, tmp_path / 'live', MUG_PROMPT)
    assert (
        cli.main(
            [
                str(bag),
                '--checkpoint',
                str(node),
                '--device',
                'cpu',
                '-o',
                str(tmp_path / 'offline'),
                '--no-video',
                '--quiet',
            ]
        )
        == 0
    )
    answers = {f['frame']: f['results'][0] for f in read_frames(tmp_path / 'offline')}
    with_point = 0
    for frame in read_frames(tmp_path / 'live'):
        for got in frame.get('results', []):
            expected = answers[frame['frame']]['point_m']
            if got['point_m'] is not None:  # None too when depth came after depth_wait
                assert expected is not None
                assert got['point_m'] == pytest.approx(expected, abs=1e-6)
                with_point += 1
    assert with_point >= 1  # depth reached the node (a point needs depth and camera_info)


def test_live_without_a_node_exits_2(bag, tmp_path, capsys):
    code = cli.main(
        [
            str(bag),
            '--live',
            '--namespace',
            '/nobody_here',
            '-o',
            str(tmp_path),
            '--quiet',
            '--wait-for-node',
            '0.5',
        ]
    )
    assert code == 2
    assert 'no node subscribed to /nobody_here/image' in capsys.readouterr().err

"""Offline replay == the node: a bag full of bad frames, replayed offline and live (lockstep)
through a real evf_sam_node process, gives the same messages and the same counted problems.

Both run the shared frame pipeline with the same tiny checkpoint (random weights: the hub is
unreachable here) and the same parameters file; DDS stays on this machine (conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ros_harness import node_process

from evf_sam_ros.pipeline import KINDS
from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import CAMERA_INFO, IMAGE, STRING, BagWriter, open_bag, read_messages
from evf_sam_ros.replay.sample_bag import camera_info_cdr, image_cdr, string_cdr
from evf_sam_ros.target3d.geometry import CameraIntrinsics

NS = '/differential'
H, W = 48, 64
FRAME = 'cam_optical'
T0 = 1_000_000_000
PARAMS = {
    'score_threshold': 0.0,
    'depth_max_stamp_diff': 0.01,
    'depth_erode_iterations': 1,
    'diagnostics_period': 0.2,
    'publish_overlay': False,
    'device': 'cpu',
}
#: Every problem kind the bag below must produce (others, e.g. depth_invalid, may too).
EXPECTED = {
    'camera_info_missing',
    'unsupported_encoding',
    'bad_image',
    'depth_size_mismatch',
    'depth_frame_mismatch',
    'prompt_rejected',
    'camera_info_scaled',
    'depth_stamp_gap',
}


def _stamp(i: int) -> int:
    return T0 + i * 100_000_000


def _rgb(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _depth(i: int, kind: str = 'ok') -> tuple[bytes, int]:
    """(CDR of the depth image of frame i, log-time offset after its image)."""
    if kind == 'small':
        return image_cdr(np.full((H // 2, W // 2), 900, np.uint16), '16UC1', _stamp(i), FRAME), 1
    if kind == 'frame':
        return image_cdr(np.full((H, W), 900, np.uint16), '16UC1', _stamp(i), 'other_optical'), 1
    if kind == 'nan':
        return image_cdr(np.full((H, W), np.nan, np.float32), '32FC1', _stamp(i), FRAME), 1
    depth = np.full((H, W), 1200 + 10 * i, np.uint16)
    depth[::5, ::7] = 0
    return image_cdr(depth, '16UC1', _stamp(i), FRAME), 1


def _image(i: int, kind: str = 'ok') -> bytes:
    if kind == 'yuv':
        return image_cdr(np.zeros((H, W, 2), np.uint8), 'yuv422', _stamp(i), FRAME)
    if kind == 'step':  # rgb8 whose rows hold 2 bytes a pixel: step and data too short
        return image_cdr(np.zeros((H, W, 2), np.uint8), 'rgb8', _stamp(i), FRAME)
    return image_cdr(_rgb(i), 'rgb8', _stamp(i), FRAME)


# frame: (image kind, depth kind or None); events before a frame: ('command', text) /
# ('info', size)
PLAN = [
    ([('command', 'the mug')], 'ok', 'ok'),  # 0: no camera_info yet
    ([], 'yuv', 'ok'),  # 1: unsupported encoding
    ([], 'step', 'ok'),  # 2: malformed image
    ([('info', (W, H))], 'ok', 'small'),  # 3: depth of another size
    ([], 'ok', 'frame'),  # 4: depth of another frame
    ([], 'ok', 'nan'),  # 5: no valid depth
    ([('command', '\x07bell')], 'ok', 'ok'),  # 6: refused command, prompt kept
    ([('info', (2 * W, 2 * H))], 'ok', 'ok'),  # 7: camera_info scaled
    ([('command', '')], 'ok', 'ok'),  # 8: idle: no prompt
    ([('command', 'the plate')], 'ok', 'ok'),  # 9: fine
    ([], 'ok', None),  # 10: no depth: nearest is frame 9's
]


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp('differential') / 'bag'
    with BagWriter(path, 'mcap') as writer:
        for i, (events, image_kind, depth_kind) in enumerate(PLAN):
            log = _stamp(i) - 50_000_000
            for n, (what, value) in enumerate(events):
                if what == 'command':
                    writer.write('/command', STRING, log + n, string_cdr(value))
                else:
                    intr = CameraIntrinsics(
                        50.0 * value[0] / W,
                        50.0 * value[1] / H,
                        value[0] / 2,
                        value[1] / 2,
                        *value,
                    )
                    writer.write(
                        '/cam/camera_info',
                        CAMERA_INFO,
                        log + n,
                        camera_info_cdr(intr, _stamp(i), FRAME),
                    )
            writer.write('/cam/image', IMAGE, _stamp(i), _image(i, image_kind))
            if depth_kind is not None:
                data, offset = _depth(i, depth_kind)
                writer.write('/cam/depth', IMAGE, _stamp(i) + offset, data)
    return path


@pytest.fixture(scope='module')
def params_file(tiny_checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp('params') / 'params.yaml'
    values = {**PARAMS, 'checkpoint': str(tiny_checkpoint('evf-sam2', image_size=256))}
    path.write_text(yaml.safe_dump({'/**/evf_sam': {'ros__parameters': values}}))
    return path


def _messages(out, topic, msg_type):
    from rclpy.serialization import deserialize_message

    with open_bag(out / 'results') as reader:
        return [
            deserialize_message(raw, msg_type) for _, _, _, raw in read_messages(reader, [topic])
        ]


def _comparable(seg):
    seg.inference_time = 0.0  # the one field that differs between runs
    for name in seg.get_fields_and_field_types():  # NaN != NaN: compare as a marker
        value = getattr(seg, name)
        if isinstance(value, float) and np.isnan(value):
            setattr(seg, name, -12345.0)
    return seg


def test_offline_replay_publishes_and_counts_what_the_node_does(
    bag, params_file, tiny_checkpoint, tmp_path
):
    from geometry_msgs.msg import PointStamped

    from evf_sam_msgs.msg import Segmentation

    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    common = [str(bag), '--params-file', str(params_file), '--no-video', '--quiet']
    assert (
        cli.main(
            common
            + ['-o', str(tmp_path / 'offline'), '--checkpoint', str(checkpoint), '--device', 'cpu']
        )
        == 0
    )
    with node_process(NS, {}, tmp_path, extra_params=[params_file]):
        assert (
            cli.main(
                common
                + [
                    '-o',
                    str(tmp_path / 'live'),
                    '--live',
                    '--lockstep',
                    '--namespace',
                    NS,
                    '--wait-for-node',
                    '90',
                    '--grace',
                    '20',
                ]
            )
            == 0
        )
    offline = json.loads((tmp_path / 'offline' / 'report.json').read_text())
    live = json.loads((tmp_path / 'live' / 'report.json').read_text())
    counted = {k: v for k, v in offline['warnings'].items() if k in KINDS}
    assert EXPECTED <= set(counted), counted
    assert {k: v for k, v in live['warnings'].items() if k in KINDS} == counted
    assert offline['frames']['processed'] == live['frames']['processed'] == 8
    for topic, msg_type in (
        ('/evf_sam/segmentation', Segmentation),
        ('/evf_sam/target_point', PointStamped),
    ):
        ours = _messages(tmp_path / 'offline', topic, msg_type)
        nodes = _messages(tmp_path / 'live', topic, msg_type)
        if msg_type is Segmentation:
            ours, nodes = [_comparable(m) for m in ours], [_comparable(m) for m in nodes]
        assert len(ours) == len(nodes) and ours, topic
        for a, b in zip(ours, nodes):
            assert a == b, topic
    points = _messages(tmp_path / 'offline', '/evf_sam/target_point', PointStamped)
    assert {p.header.stamp.nanosec // 100_000_000 for p in points} >= {7, 9}


def test_track_mode_offline_equals_the_node_in_track_mode(params_file, tiny_checkpoint, tmp_path):
    """Track mode, several targets: offline replay and the node (lockstep) give the same
    masks, scores and track states frame by frame (SAM2 memory carried across frames).
    """
    from evf_sam_msgs.msg import SegmentationArray
    from evf_sam_ros.replay.sample_bag import write_sample_bag

    bag = write_sample_bag(tmp_path / 'bag', 'mcap', frames=5, size=(W, H))
    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    common = [
        str(bag),
        '--params-file',
        str(params_file),
        '--no-video',
        '--quiet',
        '--mode',
        'track',
        '--prompt',
        'the plate',
        '--prompt',
        'the blue box',
    ]
    assert (
        cli.main(
            common
            + ['-o', str(tmp_path / 'offline'), '--checkpoint', str(checkpoint), '--device', 'cpu']
        )
        == 0
    )
    ns = '/differential_track'
    with node_process(ns, {'mode': 'track'}, tmp_path, extra_params=[params_file]):
        assert (
            cli.main(
                common
                + [
                    '-o',
                    str(tmp_path / 'live'),
                    '--live',
                    '--lockstep',
                    '--namespace',
                    ns,
                    '--wait-for-node',
                    '90',
                    '--grace',
                    '20',
                ]
            )
            == 0
        )
    ours = _messages(tmp_path / 'offline', '/evf_sam/segmentations', SegmentationArray)
    nodes = _messages(tmp_path / 'live', '/evf_sam/segmentations', SegmentationArray)
    assert len(ours) == len(nodes) == 5
    for a, b in zip(ours, nodes):
        assert [_comparable(s) for s in a.segmentations] == [
            _comparable(s) for s in b.segmentations
        ]
    states = [[(s.prompt, s.grounded) for s in a.segmentations] for a in ours]
    assert states[0] == [
        ('the red mug left of the plate', True),
        ('the plate', True),
        ('the blue box', True),
    ]
    assert all(not grounded for frame in states[1:] for _, grounded in frame)  # memory
    report = json.loads((tmp_path / 'offline' / 'report.json').read_text())
    assert report['target_mode'] == 'track'
    for target in report['targets'].values():
        assert {'lost', 'regrounded', 'centroid_jitter_px', 'centroid_step_px'} <= set(target)

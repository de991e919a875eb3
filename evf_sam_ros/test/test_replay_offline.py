"""Offline replay end to end: real bags (mcap and sqlite3), a real tiny checkpoint, real rclpy
serialization; the output bag read back with rosbags and with rclpy.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import SEGMENTATION, open_bag, read_messages, typestore
from evf_sam_ros.replay.report import read_frames
from evf_sam_ros.replay.sample_bag import COLOR_TOPIC, write_sample_bag
from evf_sam_ros.synthetic.tabletop import MUG_PROMPT

FRAMES = 3
SIZE = (96, 72)
EXTRA_PROMPT = 'a blue box'


@pytest.fixture(scope='module')
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint('evf-sam2', image_size=256)


@pytest.fixture(scope='module')
def mcap_bag(tmp_path_factory):
    return write_sample_bag(tmp_path_factory.mktemp('bags') / 'mcap', 'mcap', FRAMES, SIZE)


@pytest.fixture(scope='module')
def run_mcap(checkpoint, mcap_bag, tmp_path_factory):
    """One CLI run: the bag's command plus --prompt, mcap output, video on."""
    out = tmp_path_factory.mktemp('out_mcap')
    code = cli.main(
        [
            str(mcap_bag),
            '--checkpoint',
            str(checkpoint),
            '-o',
            str(out),
            '--device',
            'cpu',
            '--prompt',
            EXTRA_PROMPT,
            '--score-threshold',
            '0.0',
            '--quiet',
        ]
    )
    return code, out


def _source_stamps(bag):
    from evf_sam_ros.codecs.image import stamp_ns
    from evf_sam_ros.replay.bagio import deserialize

    with open_bag(bag) as reader:
        return [
            stamp_ns(deserialize(raw, ty).header)
            for _, ty, _, raw in read_messages(reader, [COLOR_TOPIC])
        ]


def test_offline_run_writes_all_outputs(run_mcap):
    code, out = run_mcap
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        'contact_sheet.png',
        'frames.jsonl',
        'overlay.mp4',
        'report.json',
        'results',
    ]
    import imageio.v2 as imageio

    with imageio.get_reader(out / 'overlay.mp4') as video:
        pictures = [picture for picture in video.iter_data()]
    assert len(pictures) == FRAMES and pictures[0].shape == (SIZE[1], SIZE[0], 3)


def test_offline_report(run_mcap):
    report = json.loads((run_mcap[1] / 'report.json').read_text())
    assert report['mode'] == 'offline'
    assert report['frames'] == {'in': FRAMES, 'processed': FRAMES, 'skipped': 0, 'dropped': 0}
    assert report['warnings'] == {}
    targets = report['targets']
    assert {k: t['prompt'] for k, t in targets.items()} == {'0': EXTRA_PROMPT, '1': MUG_PROMPT}
    mug = targets['1']
    assert mug['results'] == FRAMES and mug['found'] == FRAMES  # score threshold 0, random masks
    assert mug['target']['count_total'] == FRAMES
    # grasps, place surfaces and instances per frame and per target (random masks: any count)
    assert mug['pick']['best_grasp']['count_total'] == FRAMES
    first = next(read_frames(run_mcap[1]))  # per-frame records: frames.jsonl
    assert set(first['results'][0]) >= {'grasps', 'place', 'instances'}
    assert report['latency_ms']['kind'] == 'model' and report['latency_ms']['count'] == FRAMES
    assert (
        report['latency_ms']['p50'] <= report['latency_ms']['p95'] <= report['latency_ms']['max']
    )
    # The ground truth belongs to the bag's command: only that prompt is scored.
    assert report['iou']['frames_scored'] == FRAMES
    assert 0.0 <= report['iou']['mean'] <= 1.0
    for frame in read_frames(run_mcap[1]):
        scored = [r for r in frame['results'] if 'iou' in r]
        assert [r['prompt'] for r in scored] == [MUG_PROMPT]
    assert report['topics']['ground_truth'] == '/ground_truth/mask'


def test_output_bag_reads_back_with_rosbags(run_mcap, mcap_bag):
    from pathlib import Path as _Path

    from rosbags.highlevel import AnyReader

    stamps = _source_stamps(mcap_bag)
    seen = {}
    with AnyReader([_Path(run_mcap[1] / 'results')], default_typestore=typestore()) as reader:
        for connection, _, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            seen.setdefault(connection.topic, []).append(msg)
    assert set(seen) >= {'/evf_sam/segmentation', '/evf_sam/mask', '/evf_sam/segmentations'}
    segs = seen['/evf_sam/segmentation']  # the first target, as the node publishes it
    assert len(segs) == FRAMES and {m.prompt for m in segs} == {MUG_PROMPT}
    assert sorted({m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in segs}) == stamps
    arrays = seen['/evf_sam/segmentations']  # every target: the bag's command first
    assert len(arrays) == FRAMES
    assert all([s.prompt for s in a.segmentations] == [MUG_PROMPT, EXTRA_PROMPT] for a in arrays)
    assert all([s.target_id for s in a.segmentations] == [1, 0] for a in arrays)
    assert all(m.mask.width == SIZE[0] and m.mask.encoding == 'mono8' for m in segs)


def test_output_bag_deserializes_with_rclpy(run_mcap):
    from rclpy.serialization import deserialize_message

    from evf_sam_msgs.msg import Segmentation

    with open_bag(run_mcap[1] / 'results') as reader:
        raws = [raw for _, _, _, raw in read_messages(reader, ['/evf_sam/segmentation'])]
    msgs = [deserialize_message(raw, Segmentation) for raw in raws]
    assert len(msgs) == FRAMES
    for msg in msgs:
        mask = np.frombuffer(bytes(msg.mask.data), np.uint8)
        mask = mask.reshape(msg.mask.height, msg.mask.width)
        assert int(np.count_nonzero(mask)) == msg.area
        assert msg.header.frame_id == 'camera_color_optical_frame'
        assert msg.inference_time > 0


def test_segmentation_type_hash_matches_ros(run_mcap):
    """The bag's type hash for Segmentation equals the one rosidl generated (when installed)."""
    import sys

    json_path = Path(sys.prefix) / 'share' / 'evf_sam_msgs' / 'msg' / 'Segmentation.json'
    if not json_path.is_file():
        pytest.skip('evf_sam_msgs is not installed in this prefix')
    ros_hash = json.loads(json_path.read_text())['type_hashes'][0]['hash_string']
    assert typestore().hash_rihs01(SEGMENTATION) == ros_hash
    metadata = (run_mcap[1] / 'results' / 'metadata.yaml').read_text()
    assert ros_hash in metadata


def test_sqlite3_in_and_out_with_max_frames(checkpoint, tmp_path):
    bag = write_sample_bag(tmp_path / 'bag', 'sqlite3', FRAMES, SIZE, compressed=True)
    out = tmp_path / 'out'
    code = cli.main(
        [
            str(bag),
            '--checkpoint',
            str(checkpoint),
            '-o',
            str(out),
            '--device',
            'cpu',
            '--max-frames',
            '2',
            '--output-storage',
            'sqlite3',
            '--no-video',
            '--quiet',
        ]
    )
    assert code == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['in'] == 2 and report['frames']['processed'] == 2
    assert report['topics']['image'].endswith('/compressed')
    assert not (out / 'overlay.mp4').exists() and (out / 'contact_sheet.png').exists()
    assert list((out / 'results').glob('*.db3'))
    with open_bag(out / 'results') as reader:
        assert len(list(read_messages(reader, ['/evf_sam/segmentation']))) == 2
    # the outputs are there now: refuse to mix runs unless asked
    args = [
        str(bag),
        '--checkpoint',
        str(checkpoint),
        '-o',
        str(out),
        '--max-frames',
        '1',
        '--no-video',
        '--quiet',
    ]
    assert cli.main(args) == 2
    assert cli.main(args + ['--overwrite']) == 0


def test_offline_is_deterministic(checkpoint, mcap_bag):
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.replay.frames import FrameReader
    from evf_sam_ros.replay.offline import OfflineSegmenter
    from evf_sam_ros.replay.runner import ReplayOptions, inspect_bag
    from evf_sam_ros.target3d.estimate import TargetSettings

    selection, _ = inspect_bag(mcap_bag, ReplayOptions())
    with open_bag(mcap_bag) as reader:
        frame = next(iter(FrameReader(reader, selection, max_frames=1)))
    assert frame.command == MUG_PROMPT and frame.commands == (MUG_PROMPT,)
    assert frame.depth is not None and frame.gt_mask is not None
    depth = frame.depth.match(frame.image.header, frame.gt_mask.shape)
    assert depth.depth_m is not None and depth.intrinsics is not None and not depth.problems
    segmenter = OfflineSegmenter(
        EvfSamPredictor.from_pretrained(checkpoint, 'cpu'), TargetSettings(score_threshold=0.0)
    )
    first, second = segmenter.process(frame).outcome, segmenter.process(frame).outcome
    assert np.array_equal(first.prompts[0].mask, second.prompts[0].mask)
    assert [role for role, _ in first.messages] == [role for role, _ in second.messages]
    from geometry_msgs.msg import PointStamped, PoseStamped
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    from evf_sam_msgs.msg import GraspCandidateArray, Segmentation, SegmentationArray

    types = {
        'segmentation': Segmentation,
        'mask': Image,
        'target_point': PointStamped,
        'segmentations': SegmentationArray,
        'target_pose': PoseStamped,
        'target_cloud': PointCloud2,
        'markers': MarkerArray,
        'grasps': GraspCandidateArray,
    }
    for (role, a_raw), (_, b_raw) in zip(first.messages, second.messages):
        # compare messages, not bytes: CDR alignment padding is not zeroed by rclpy
        a, b = deserialize_message(a_raw, types[role]), deserialize_message(b_raw, types[role])
        for seg in (
            [a, b]
            if role == 'segmentation'
            else ([*a.segmentations, *b.segmentations] if role == 'segmentations' else [])
        ):
            seg.inference_time = 0.0  # the only field that may differ
        assert a == b, role
    roles = {role for role, _ in first.messages}
    assert {'segmentations', 'target_cloud', 'markers', 'grasps'} <= roles

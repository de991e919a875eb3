"""Bad input: damaged bags, missing topics, unsupported encodings, empty bags, mismatched ground
truth.  Whole-run problems exit 2 with one line; per-frame problems are counted warnings and
the rest of the bag is still processed.
"""

import json
import shutil

import numpy as np
import pytest

from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import IMAGE, STRING, BagWriter
from evf_sam_ros.replay.report import read_frames
from evf_sam_ros.replay.runner import ReplayOptions, replay_bag
from evf_sam_ros.replay.sample_bag import image_cdr, string_cdr, write_sample_bag

H, W = 48, 64


@pytest.fixture(scope='module')
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint('evf-sam2', image_size=256)


@pytest.fixture(scope='module')
def segmenter(checkpoint):
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.replay.offline import OfflineSegmenter
    from evf_sam_ros.target3d.estimate import TargetSettings

    return OfflineSegmenter(EvfSamPredictor.from_pretrained(checkpoint, 'cpu'), TargetSettings())


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('sample')
    return {s: write_sample_bag(root / s, s, frames=3, size=(W, H)) for s in ('mcap', 'sqlite3')}


def _cli(capsys, *args):
    code = cli.main([str(a) for a in args] + ['--quiet'])
    return code, capsys.readouterr().err


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('evf-sam-replay: error: '), err
    return lines[0]


def _rgb(value=120):
    return np.full((H, W, 3), value, np.uint8)


def _mask(h=H, w=W):
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 20:40] = 255
    return mask


def _damage_a_page_read_part_way(bag):
    """Overwrite one sqlite3 page so the bag opens but reading fails part-way.

    Which page does that depends on the storage layout, so pages are tried in turn.
    """
    from evf_sam_ros.replay.bagio import list_topics, open_bag, read_messages
    from evf_sam_ros.replay.errors import BagReadError, ReplayError

    db3 = next(bag.glob('*.db3'))
    original = db3.read_bytes()
    for page in range(1, len(original) // 4096):
        data = bytearray(original)
        data[page * 4096 : (page + 1) * 4096] = b'\xff' * 4096
        db3.write_bytes(data)
        read = 0
        try:
            with open_bag(bag) as reader:
                for _ in read_messages(reader, list_topics(reader)):
                    read += 1
        except BagReadError:
            if read >= 3:  # the command and at least a frame's messages came through
                return
        except ReplayError:
            continue
    pytest.fail('no single damaged page made reading fail part-way')


def test_corruption_part_way_keeps_what_was_read(sample, tmp_path, segmenter):
    """A damaged sqlite3 page: frames before it are processed, then a warning."""
    bag = shutil.copytree(sample['sqlite3'], tmp_path / 'bag')
    _damage_a_page_read_part_way(bag)
    report = replay_bag(bag, tmp_path / 'out', segmenter, ReplayOptions(progress=False), {})
    assert report['warnings'].get('bag_read_error') == 1
    assert report['frames']['processed'] >= 1 and report['frames_in_bag'] == 3
    assert 'reading the bag failed part-way' in report['warning_examples']['bag_read_error'][0]


def test_missing_topic_and_missing_paths(sample, tmp_path, capsys, checkpoint):
    code, err = _cli(
        capsys,
        sample['mcap'],
        '--checkpoint',
        checkpoint,
        '-o',
        tmp_path / 'o1',
        '--depth-topic',
        '/camera/depth/nope',
    )
    line = _one_line_error(err)
    assert code == 2 and "'/camera/depth/nope' is not in the bag" in line
    assert '/camera/color/image_raw' in line  # the topics there are listed
    code, err = _cli(capsys, tmp_path / 'no_such_bag', '--checkpoint', checkpoint, '-o', tmp_path)
    assert code == 2 and 'does not exist' in _one_line_error(err)
    (tmp_path / 'not_a_bag').mkdir()
    code, err = _cli(capsys, tmp_path / 'not_a_bag', '--checkpoint', checkpoint, '-o', tmp_path)
    assert code == 2 and 'is not a bag: no metadata.yaml' in _one_line_error(err)


def test_bad_options_exit_2(sample, tmp_path, capsys, checkpoint):
    code, err = _cli(capsys, sample['mcap'], '-o', tmp_path / 'o')
    assert code == 2 and '--checkpoint is required' in _one_line_error(err)
    code, err = _cli(
        capsys, sample['mcap'], '--checkpoint', tmp_path / 'nope', '-o', tmp_path / 'o'
    )
    assert code == 2
    _one_line_error(err)
    code, err = _cli(
        capsys, sample['mcap'], '--checkpoint', checkpoint, '-o', tmp_path / 'o', '--prompt', '   '
    )
    assert code == 2 and 'bad --prompt' in _one_line_error(err)
    with pytest.raises(SystemExit) as info:
        cli.main([str(sample['mcap']), '-o', str(tmp_path), '--speed', '0'])
    assert info.value.code == 2


def test_empty_bags_exit_2(tmp_path, capsys, checkpoint):
    with BagWriter(tmp_path / 'no_topics', 'mcap'):
        pass
    with BagWriter(tmp_path / 'no_messages', 'sqlite3') as bag:
        bag.add_topic('/cam/image', IMAGE)
    for name in ('no_topics', 'no_messages'):
        code, err = _cli(capsys, tmp_path / name, '--checkpoint', checkpoint, '-o', tmp_path / 'o')
        assert code == 2 and 'empty' in _one_line_error(err)


@pytest.fixture(scope='module')
def mixed_bag(tmp_path_factory):
    """Five frames: good rgb8, yuv422, garbage bytes, good bgr8, rgb8 with a too small step.
    Ground truth: a wrong size for frame 0, right for frame 3; depth of a wrong size for 3.
    """
    path = tmp_path_factory.mktemp('mixed') / 'bag'
    stamps = [(i + 1) * 100_000_000 for i in range(5)]
    with BagWriter(path, 'mcap') as bag:
        bag.write('/command', STRING, 1, string_cdr('the grey wall'))
        images = [
            image_cdr(_rgb(), 'rgb8', stamps[0]),
            image_cdr(np.zeros((H, W, 2), np.uint8), 'yuv422', stamps[1]),
            b'\x00\x01\x00\x00' + b'\x07' * 40,
            image_cdr(_rgb(60), 'bgr8', stamps[3]),
            image_cdr(np.zeros((H, W, 2), np.uint8), 'rgb8', stamps[4]),
        ]
        for stamp, data in zip(stamps, images):
            bag.write('/cam/image', IMAGE, stamp, data)
        bag.write('/gt/mask', IMAGE, stamps[0] + 1, image_cdr(_mask(24, 32), 'mono8', stamps[0]))
        bag.write('/gt/mask', IMAGE, stamps[3] + 1, image_cdr(_mask(), 'mono8', stamps[3]))
        depth = np.full((H // 2, W // 2), 800, np.uint16)
        bag.write('/cam/depth', IMAGE, stamps[3] + 2, image_cdr(depth, '16UC1', stamps[3]))
    return path


def test_per_frame_problems_are_counted_and_the_rest_processed(mixed_bag, tmp_path, segmenter):
    report = replay_bag(mixed_bag, tmp_path, segmenter, ReplayOptions(progress=False), {})
    assert report['topics']['ground_truth'] == '/gt/mask'
    assert report['frames'] == {'in': 5, 'processed': 2, 'skipped': 3, 'dropped': 0}
    warnings = report['warnings']
    assert warnings['unsupported_encoding'] == 1  # yuv422
    assert warnings['corrupt_message'] == 1  # garbage bytes
    assert warnings['bad_image'] == 1  # step smaller than width x 3
    assert warnings['ground_truth_size_mismatch'] == 1
    assert warnings['depth_size_mismatch'] == 1
    assert warnings['depth_stamp_gap'] == 1  # frame 0's nearest depth is frame 3's
    assert report['iou']['frames_scored'] == 1
    scored = [f['frame'] for f in read_frames(tmp_path) if 'iou' in str(f.get('results'))]
    assert scored == [3]
    assert [f['status'] for f in read_frames(tmp_path)] == [
        'processed',
        'skipped',
        'skipped',
        'processed',
        'skipped',
    ]
    assert 'yuv422' in ' '.join(report['warning_examples']['unsupported_encoding'])
    saved = json.loads((tmp_path / 'report.json').read_text())
    assert saved['frames'] == report['frames']


def test_frames_without_any_prompt_are_skipped(tmp_path, segmenter):
    path = tmp_path / 'bag'
    with BagWriter(path, 'mcap') as bag:
        bag.write('/command', STRING, 1, string_cdr('   '))
        for i in range(2):
            bag.write('/cam/image', IMAGE, 10 + i, image_cdr(_rgb(), 'rgb8', 10 + i))
    report = replay_bag(path, tmp_path / 'out', segmenter, ReplayOptions(progress=False), {})
    assert report['frames']['skipped'] == 2
    assert report['warnings'] == {'no_prompt': 2}  # a blank command clears, as in the node
    assert (tmp_path / 'out' / 'contact_sheet.png').exists()


def test_several_image_topics_need_a_choice(tmp_path, capsys, checkpoint):
    path = tmp_path / 'bag'
    with BagWriter(path, 'mcap') as bag:
        for topic in ('/left/image', '/right/image'):
            bag.write(topic, IMAGE, 10, image_cdr(_rgb(), 'rgb8', 10))
    code, err = _cli(capsys, path, '--checkpoint', checkpoint, '-o', tmp_path / 'o')
    line = _one_line_error(err)
    assert code == 2 and '/left/image' in line and '/right/image' in line
    code, _ = _cli(
        capsys,
        path,
        '--checkpoint',
        checkpoint,
        '-o',
        tmp_path / 'o',
        '--image-topic',
        '/right/image',
        '--prompt',
        'the grey wall',
        '--no-video',
    )
    assert code == 0
    report = json.loads((tmp_path / 'o' / 'report.json').read_text())
    assert report['frames']['processed'] == 1 and report['topics']['image'] == '/right/image'

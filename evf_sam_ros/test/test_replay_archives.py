"""Bags as real archives hold them (issue 17): old type names, no metadata.yaml, topics without
the leading slash, files cut off mid-write (ROS 1 mid-chunk, mcap, sqlite3), frames that
change size mid-bag.  The tests write each form with rosbags' real writers (then cut, edit or
strip it as a crash or a copy would) and check that it replays, or is refused with one line
that names the fix: never a traceback.
"""

import json
import shutil
import sqlite3

import numpy as np
import pytest

from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import (
    COMPRESSED_IMAGE,
    IMAGE,
    STRING,
    list_topics,
    open_bag,
    open_writer,
)
from evf_sam_ros.replay.cdr import compressed_cdr, image_cdr, string_cdr
from evf_sam_ros.replay.runner import ReplayOptions, replay_bag
from evf_sam_ros.replay.sample_bag import COLOR_TOPIC, write_sample_bag

FRAMES = 6
SIZE = (64, 48)


@pytest.fixture(scope='module')
def predictor(tiny_checkpoint):
    from evf_sam_ros.model import EvfSamPredictor

    return EvfSamPredictor.from_pretrained(tiny_checkpoint('evf-sam2', image_size=256), 'cpu')


def _replay(bag, out, predictor, **options):
    """Offline replay with a fresh target list (the bag's command sets the target)."""
    from evf_sam_ros.replay.offline import OfflineSegmenter
    from evf_sam_ros.target3d.estimate import TargetSettings

    segmenter = OfflineSegmenter(predictor, TargetSettings(score_threshold=0.0))
    options = ReplayOptions(progress=False, video=False, **options)
    return replay_bag(bag, out, segmenter, options, {})


def _cli(capsys, *args):
    code = cli.main([str(a) for a in args] + ['--quiet', '--device', 'cpu', '--no-video'])
    return code, capsys.readouterr().err


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('evf-sam-replay: error: '), err
    return lines[0]


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('archives')
    made = {
        'mcap': write_sample_bag(root / 'mcap', 'mcap', FRAMES, SIZE),
        'sqlite3': write_sample_bag(root / 'sqlite3', 'sqlite3', FRAMES, SIZE),
        'chunk': write_sample_bag(  # several zstd chunks
            root / 'chunk', 'mcap', FRAMES, (320, 240), compression='chunk'
        ),
        'ros1': write_sample_bag(root / 'a.bag', bag_format='ros1', frames=FRAMES, size=SIZE),
        'ros1_lz4': write_sample_bag(  # big enough frames for several chunks
            root / 'b.bag', bag_format='ros1', frames=FRAMES, size=(320, 240), compression='chunk'
        ),
    }
    return made


def _storage_file(bag):
    return next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))


def test_old_type_names_are_normalised(bags, tmp_path, predictor):
    """A bag from before ROS 2 Dashing names types sensor_msgs/Image (sqlite3 + metadata)."""
    bag = shutil.copytree(bags['sqlite3'], tmp_path / 'crystal')
    with sqlite3.connect(_storage_file(bag)) as db:
        db.execute("UPDATE topics SET type = replace(type, '/msg/', '/')")
    meta = bag / 'metadata.yaml'
    meta.write_text(meta.read_text().replace('/msg/', '/'))
    with open_bag(bag) as reader:
        assert list_topics(reader)[COLOR_TOPIC].msgtype == IMAGE
    report = _replay(bag, tmp_path / 'out', predictor)
    assert report['frames']['processed'] == FRAMES and report['warnings'] == {}


@pytest.mark.parametrize('name', ['mcap', 'sqlite3'])
def test_storage_without_metadata_is_reindexed_in_memory(bags, tmp_path, predictor, name):
    stripped = shutil.copytree(bags[name], tmp_path / 'stripped')
    (stripped / 'metadata.yaml').unlink()
    bare = _storage_file(bags[name])
    for path in (stripped, bare, bags[name] / 'metadata.yaml'):
        with open_bag(path) as reader:
            assert list_topics(reader)[COLOR_TOPIC].count == FRAMES
            assert reader.notes  # says how the bag was read
    report = _replay(stripped, tmp_path / 'out', predictor)
    assert report['frames']['processed'] == FRAMES and report['warnings'] == {}
    assert any('ros2 bag reindex' in note for note in report['topic_notes'])


def test_what_cannot_be_a_bag_is_refused_with_what_to_pass(bags, tmp_path, capsys):
    zipped = write_sample_bag(tmp_path / 'zipped', 'mcap', 1, SIZE, compression='file')
    (zipped / 'metadata.yaml').unlink()
    (tmp_path / 'params.yaml').write_text('a: 1\n')
    (tmp_path / 'notes.txt').write_text('not a bag\n')
    cases = {
        zipped: 'zstd -d',
        next(zipped.iterdir()): 'decompress it',
        tmp_path / 'params.yaml': 'pass the bag directory',
        tmp_path / 'notes.txt': 'is not a bag; pass a rosbag2 directory',
    }
    for path, fix in cases.items():
        code, err = _cli(capsys, path, '--checkpoint', tmp_path, '-o', tmp_path / 'o')
        assert code == 2 and fix in _one_line_error(err)


def _ros1_bag_without_slashes(path):
    """A ROS 1 bag whose topics have no leading slash; the image is image_transport's
    compressed transport of camera/image.
    """
    with open_writer(path, 'ros1') as bag:
        bag.write('command', STRING, 1, string_cdr('the grey wall'))
        for i in range(3):
            stamp = (i + 1) * 100_000_000
            rgb = np.full((SIZE[1], SIZE[0], 3), 90 + 20 * i, np.uint8)
            bag.write(
                'camera/image/compressed', COMPRESSED_IMAGE, stamp, compressed_cdr(rgb, stamp)
            )
    return path


def test_topics_without_leading_slash_and_by_base_name(tmp_path, predictor):
    bag = _ros1_bag_without_slashes(tmp_path / 'noslash.bag')
    for name in ('/camera/image', 'camera/image', '/camera/image/compressed'):
        report = _replay(
            bag,
            tmp_path / name.replace('/', '_'),
            predictor,
            image_topic=name,
            command_topic='/command',
        )
        assert report['topics']['image'] == 'camera/image/compressed'
        assert report['topics']['command'] == 'command'
        assert report['frames']['processed'] == 3


def test_the_only_image_topic_named_as_depth(tmp_path, capsys):
    bag = _ros1_bag_without_slashes(tmp_path / 'noslash.bag')
    code, err = _cli(
        capsys,
        bag,
        '--checkpoint',
        tmp_path,
        '-o',
        tmp_path / 'o',
        '--depth-topic',
        'camera/image',
    )
    line = _one_line_error(err)
    assert code == 2 and 'only image topic' in line and '--depth-topic none' in line


def _cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


@pytest.mark.parametrize(
    'name, tool',
    [
        ('ros1', 'rosbag reindex'),  # one uncompressed chunk, cut in its middle
        ('ros1_lz4', 'rosbag reindex'),  # lz4 chunks, cut in the middle of one
        ('mcap', 'mcap recover'),
        ('chunk', 'mcap recover'),  # zstd chunks
        ('sqlite3', '.recover'),
    ],
)
def test_truncated_bag_replays_up_to_the_cut(bags, tmp_path, predictor, name, tool):
    src = bags[name]
    bag = (
        shutil.copy(src, tmp_path / src.name)
        if src.is_file()
        else shutil.copytree(src, tmp_path / name)
    )
    _cut(bag if bag.is_file() else _storage_file(bag), 0.6)
    report = _replay(bag, tmp_path / 'out', predictor)
    assert 1 <= report['frames']['processed'] < FRAMES
    assert report['warnings']['bag_truncated'] >= 1  # counted as the messages lost
    [warning] = report['warning_examples']['bag_truncated']
    assert 'cut off' in warning and tool in warning and 'lost' in warning
    if name in ('mcap', 'chunk', 'sqlite3'):  # metadata.yaml says how many: exact
        total = 1 + 4 * FRAMES
        assert f'; {report["warnings"]["bag_truncated"]} lost' in warning
        assert report['warnings']['bag_truncated'] + _read(bag) == total


def _read(bag):
    with open_bag(bag) as reader:
        return sum(t.count for t in list_topics(reader).values())


def test_truncated_bag_exit_codes(bags, tmp_path, capsys, tiny_checkpoint):
    bag = shutil.copytree(bags['mcap'], tmp_path / 'cut')
    _cut(_storage_file(bag), 0.6)
    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    code, err = _cli(capsys, bag, '--checkpoint', checkpoint, '-o', tmp_path / 'a')
    assert code == 0 and err == ''
    code, err = _cli(capsys, bag, '--checkpoint', checkpoint, '-o', tmp_path / 'b', '--strict')
    line = _one_line_error(err)
    assert code == 1 and '--strict' in line and 'bag_truncated' in line


def _two_images(path, pixels, encoding):
    """A bag of two images and nothing else (no command)."""
    with open_writer(path) as writer:
        for i in range(2):
            writer.write('/cam/image', IMAGE, 10 + i, image_cdr(pixels, encoding, 10 + i))
    return path


def test_no_prompt_and_no_processed_frame_exit_1(tmp_path, capsys, tiny_checkpoint):
    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    bag = _two_images(tmp_path / 'bag', np.zeros((8, 8, 3), np.uint8), 'rgb8')
    code, err = _cli(capsys, bag, '--checkpoint', checkpoint, '-o', tmp_path / 'a')
    assert code == 1 and 'no prompt was set' in _one_line_error(err)
    assert json.loads((tmp_path / 'a' / 'report.json').read_text())['frames']['processed'] == 0
    bad = _two_images(tmp_path / 'bad', np.zeros((8, 8, 2), np.uint8), 'yuv422')
    code, err = _cli(
        capsys, bad, '--checkpoint', checkpoint, '-o', tmp_path / 'b', '--prompt', 'x'
    )
    line = _one_line_error(err)
    assert code == 1 and 'none of the 2 frames was processed' in line
    assert 'unsupported_encoding 2' in line


def test_max_frames_start_and_duration(bags, tmp_path, predictor):
    """Images are logged 5 ms after the bag's first message (the command) + 0.1 s each."""
    report = _replay(bags['mcap'], tmp_path / 'a', predictor, start_s=0.3, duration_s=0.3)
    assert report['frames']['processed'] == 3  # frames 3, 4 and 5: the command still holds
    assert report['window_s'] == {'start': 0.3, 'duration': 0.3}
    report = _replay(bags['mcap'], tmp_path / 'b', predictor, start_s=0.2, max_frames=2)
    assert report['frames'] == {'in': 2, 'processed': 2, 'skipped': 0, 'dropped': 0}


def test_size_change_mid_bag_is_letterboxed(tmp_path, predictor):
    import imageio.v2 as imageio

    from evf_sam_ros.replay.offline import OfflineSegmenter
    from evf_sam_ros.target3d.estimate import TargetSettings

    bag = tmp_path / 'bag'
    with open_writer(bag) as writer:
        writer.write('/command', STRING, 1, string_cdr('the grey wall'))
        for i, (w, h) in enumerate([(64, 96)] * 5 + [(32, 96)] * 3):
            stamp = (i + 1) * 100_000_000
            rgb = np.full((h, w, 3), 200, np.uint8)
            writer.write('/cam/image', IMAGE, stamp, image_cdr(rgb, 'rgb8', stamp))
    segmenter = OfflineSegmenter(predictor, TargetSettings(), ['the floor'])
    options = ReplayOptions(progress=False)
    report = replay_bag(bag, tmp_path / 'out', segmenter, options, {})
    assert report['frames']['processed'] == 8
    video = imageio.mimread(tmp_path / 'out' / 'overlay.mp4')
    assert len(video) == 8 and {f.shape for f in video} == {(96, 64, 3)}
    narrow = video[-1].astype(int)
    assert narrow[60:90, :8].max() < 30 and narrow[60:90, -8:].max() < 30  # black bars
    assert narrow[60:90, 24:40].mean() > 100  # the picture, not squashed to full width


def test_pictures_label_every_target():
    from evf_sam_ros.replay.results import FrameOutcome, PromptOutcome
    from evf_sam_ros.replay.visuals import render_frame

    rgb = np.full((120, 160, 3), 128, np.uint8)
    mask = np.zeros((120, 160), bool)

    def target(prompt, found):
        return PromptOutcome(prompt, found, 0.9, mask, None, None, 0, None, np.nan, 1.0)

    one = render_frame(rgb, FrameOutcome([target('the mug', True)], 1.0))
    two = render_frame(rgb, FrameOutcome([target('the mug', True), target('a plate', False)], 1.0))
    first_label = np.flatnonzero((one != rgb).any(axis=(1, 2))).max()
    both_labels = np.flatnonzero((two != rgb).any(axis=(1, 2))).max()
    assert both_labels > first_label + 5  # the second target's label is a row below
    assert both_labels < 2.5 * first_label

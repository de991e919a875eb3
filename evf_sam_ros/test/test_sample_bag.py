"""The synthetic tabletop scene, the sample bag it makes and the bundled sample image."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evf_sam_ros.codecs.image import stamp_ns
from evf_sam_ros.replay.bagio import deserialize, list_topics, open_bag, read_messages
from evf_sam_ros.replay.sample_bag import (
    COLOR_TOPIC,
    COMMAND_TOPIC,
    COMPRESSED_TOPIC,
    DEPTH_TOPIC,
    GT_TOPIC,
    INFO_TOPIC,
    main,
    write_sample_bag,
)
from evf_sam_ros.synthetic.tabletop import (
    FRAME_ID,
    MUG_PROMPT,
    SWEEP_S,
    mug_position,
    render_tabletop,
)

SAMPLE_PNG = Path(__file__).resolve().parents[1] / 'data' / 'sample_tabletop.png'


@pytest.fixture(scope='module')
def frame():
    return render_tabletop(0.0, 160, 120, supersample=1)


def test_render_types_and_intrinsics(frame):
    assert frame.rgb.shape == (120, 160, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth_mm.shape == (120, 160) and frame.depth_mm.dtype == np.uint16
    assert frame.gt_mask.shape == (120, 160) and frame.gt_mask.dtype == np.bool_
    assert frame.intrinsics.fx == pytest.approx(615.0 / 4)
    assert (frame.intrinsics.width, frame.intrinsics.height) == (160, 120)
    assert np.all(frame.depth_mm > 0)


def test_mug_is_red_left_of_the_white_plate_and_nearer_than_the_table(frame):
    rgb = frame.rgb.astype(int)
    mug = frame.gt_mask
    assert 50 < mug.sum() < 0.1 * mug.size
    red = (rgb[..., 0] > 1.8 * rgb[..., 1]) & (rgb[..., 0] > 80)
    assert red[mug].mean() > 0.9
    white = rgb.min(axis=2) > 200
    assert white.sum() > 50
    mug_u = np.nonzero(mug)[1].mean()
    assert mug_u < np.nonzero(white)[1].min()  # the whole plate is right of the mug centre
    rows = np.nonzero(mug.any(axis=1))[0]
    table_below = frame.depth_mm[rows.max() + 2, :]
    assert frame.depth_mm[mug].max() < np.median(table_below) + 50


def test_render_is_deterministic_and_objects_move(frame):
    again = render_tabletop(0.0, 160, 120, supersample=1)
    assert np.array_equal(again.rgb, frame.rgb) and np.array_equal(again.gt_mask, frame.gt_mask)
    later = render_tabletop(0.75, 160, 120, supersample=1)
    assert not np.array_equal(later.gt_mask, frame.gt_mask)


@pytest.mark.parametrize('time_s', [0.0, 1.5, 2.9])
def test_moving_mug_stays_in_view_left_of_the_plate_with_its_truth(time_s):
    scene = render_tabletop(time_s, 160, 120, supersample=1)
    mug, rgb = scene.gt_mask, scene.rgb.astype(int)
    assert mug.sum() > 50 and not (
        mug[0].any() or mug[-1].any() or mug[:, 0].any() or mug[:, -1].any()
    )
    red = (rgb[..., 0] > 1.8 * rgb[..., 1]) & (rgb[..., 0] > 80)
    assert red[mug].mean() > 0.9 and mug[red].mean() > 0.9  # the truth is the red pixels
    white = rgb.min(axis=2) > 200
    assert np.nonzero(mug)[1].max() < np.nonzero(white)[1].min()


def test_mug_moves_towards_the_camera_over_the_bag_and_back():
    """One sweep in SWEEP_S seconds (the default 30-frame, 10 Hz bag), then back."""
    start, end = (render_tabletop(t, 160, 120, supersample=1) for t in (0.0, SWEEP_S))
    rows = [np.nonzero(f.gt_mask)[0].mean() for f in (start, end)]
    assert rows[1] - rows[0] > 0.15 * 120  # down the image by more than 15 % of its height
    depth = [np.median(f.depth_mm[f.gt_mask]) for f in (start, end)]
    assert depth[0] - depth[1] > 80  # mm nearer: depth follows the mug
    assert end.gt_mask.sum() > 1.3 * start.gt_mask.sum()
    assert mug_position(2 * SWEEP_S) == pytest.approx(mug_position(0.0))
    back = render_tabletop(2 * SWEEP_S, 160, 120, supersample=1)
    assert np.array_equal(back.gt_mask, start.gt_mask)
    steps = [
        np.hypot(*np.subtract(mug_position(t), mug_position(t + 0.1)))
        for t in np.arange(0.0, SWEEP_S, 0.1)
    ]
    assert 0 < max(steps) < 0.01  # at most 1 cm per 10 Hz frame: trackable


def test_bundled_sample_image():
    assert SAMPLE_PNG.stat().st_size < 300_000
    with Image.open(SAMPLE_PNG) as image:
        assert image.size == (640, 480) and image.mode == 'RGB'


def _read_all(path):
    with open_bag(path) as reader:
        topics = list_topics(reader)
        messages = [
            (t, deserialize(raw, ty), log) for t, ty, log, raw in read_messages(reader, topics)
        ]
    return topics, messages


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_sample_bag_contents(tmp_path, storage):
    path = write_sample_bag(tmp_path / 'bag', storage, frames=3, size=(64, 48))
    topics, messages = _read_all(path)
    assert {n: t.count for n, t in topics.items()} == {
        COLOR_TOPIC: 3,
        DEPTH_TOPIC: 3,
        INFO_TOPIC: 3,
        GT_TOPIC: 3,
        COMMAND_TOPIC: 1,
    }
    assert messages[0][0] == COMMAND_TOPIC and messages[0][1].data == MUG_PROMPT
    by_topic = {}
    for topic, msg, _ in messages:
        by_topic.setdefault(topic, []).append(msg)
    stamps = [stamp_ns(m.header) for m in by_topic[COLOR_TOPIC]]
    assert stamps[1] - stamps[0] == 100_000_000
    for topic in (DEPTH_TOPIC, GT_TOPIC, INFO_TOPIC):
        assert [stamp_ns(m.header) for m in by_topic[topic]] == stamps
    color, depth, gt, info = (
        by_topic[t][0] for t in (COLOR_TOPIC, DEPTH_TOPIC, GT_TOPIC, INFO_TOPIC)
    )
    assert (color.encoding, depth.encoding, gt.encoding) == ('rgb8', '16UC1', 'mono8')
    assert color.header.frame_id == FRAME_ID == info.header.frame_id
    assert info.k[0] == pytest.approx(615.0 / 10) and info.k[8] == 1.0
    assert (info.width, info.height) == (64, 48)


def test_sample_bag_deserializes_with_rclpy(tmp_path):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image as RosImage

    path = write_sample_bag(tmp_path / 'bag', 'mcap', frames=1, size=(32, 24))
    with open_bag(path) as reader:
        raw = next(r for _, _, _, r in read_messages(reader, [COLOR_TOPIC]))
    msg = deserialize_message(raw, RosImage)
    assert (msg.width, msg.height, msg.encoding, len(msg.data)) == (32, 24, 'rgb8', 32 * 24 * 3)


def test_compressed_sample_bag(tmp_path):
    topics, messages = _read_all(
        write_sample_bag(tmp_path / 'bag', frames=2, size=(64, 48), compressed=True)
    )
    assert COMPRESSED_TOPIC in topics and COLOR_TOPIC not in topics
    assert next(m for t, m, _ in messages if t == COMPRESSED_TOPIC).format == 'jpeg'


def test_cli(tmp_path, capsys):
    out = tmp_path / 'bag'
    assert main([str(out), '--frames', '2', '--size', '32x24', '--storage', 'sqlite3']) == 0
    assert list(out.glob('*.db3'))
    assert main([str(out), '--frames', '2', '--size', '32x24']) == 2
    assert 'already exists' in capsys.readouterr().err
    png = tmp_path / 'frame.png'
    assert main(['--png', str(png), '--size', '32x24', '--supersample', '1']) == 0
    assert Image.open(png).size == (32, 24)
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / 'other'), '--size', '640by480'])
    assert info.value.code == 2

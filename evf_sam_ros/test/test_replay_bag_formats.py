"""The bags robots record: ROS 1 .bag files, zstd-compressed rosbag2 (per file, per message,
per mcap chunk) and compressedDepth depth. The tests write each format with
``write_sample_bag`` (rosbags' real writers) and show that reading it gives the same frames
as the plain mcap bag, and that an offline replay of it gives the same results.
"""

import json

import numpy as np
import pytest
import yaml

from evf_sam_ros.codecs.depth import depth_imgmsg_to_metres
from evf_sam_ros.codecs.image import imgmsg_to_array, stamp_ns
from evf_sam_ros.replay import cli
from evf_sam_ros.replay.bagio import (
    COMPRESSED_IMAGE,
    IMAGE,
    deserialize,
    list_topics,
    open_bag,
    read_messages,
)
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.sample_bag import main as make_sample_bag
from evf_sam_ros.replay.sample_bag import write_sample_bag
from evf_sam_ros.replay.topics import select_topics
from evf_sam_ros.synthetic.tabletop import MUG_PROMPT

FRAMES = 4
SIZE = (64, 48)
#: 32FC1 compressedDepth quantisation with the publisher's defaults: A = Z0 (Z0 + 1).
QUANT_A = 100.0 * 101.0
VARIANTS = {  # name -> (file name, write_sample_bag keyword arguments)
    'ros1': ('ros1.bag', {'bag_format': 'ros1'}),
    'ros1_lz4_chunks': ('lz4.bag', {'bag_format': 'ros1', 'compression': 'chunk'}),
    'zstd_file_mcap': ('file_mcap', {'compression': 'file'}),
    'zstd_file_sqlite3': ('file_db3', {'storage': 'sqlite3', 'compression': 'file'}),
    'zstd_message_mcap': ('msg_mcap', {'compression': 'message'}),
    'zstd_message_sqlite3': ('msg_db3', {'storage': 'sqlite3', 'compression': 'message'}),
    'zstd_mcap_chunks': ('chunk_mcap', {'compression': 'chunk'}),
    'compressed_depth_16uc1': ('cd16', {'depth_format': 'compressedDepth'}),
    'ros1_compressed_depth_32fc1': (
        'cd32.bag',
        {
            'bag_format': 'ros1',
            'compression': 'chunk',
            'depth_format': 'compressedDepth',
            'depth_encoding': '32FC1',
        },
    ),
}


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('formats')
    paths = {'plain': write_sample_bag(root / 'plain', 'mcap', FRAMES, SIZE)}
    for name, (file_name, kwargs) in VARIANTS.items():
        kwargs = {'storage': 'mcap', **kwargs}
        paths[name] = write_sample_bag(
            root / file_name, kwargs.pop('storage'), FRAMES, SIZE, **kwargs
        )
    return paths


def _contents(path):
    """Everything a replay reads from the bag, decoded, by role and header stamp."""
    with open_bag(path) as reader:
        topics = list_topics(reader)
        selection = select_topics(topics)
        roles = {topic: role for role, topic in selection.as_dict().items()}
        out = {'types': {r: topics[t].msgtype for t, r in roles.items()}, 'commands': []}
        for topic, msgtype, log_ns, raw in read_messages(reader, roles):
            msg, role = deserialize(raw, msgtype), roles[topic]
            if role == 'command':
                out['commands'].append((log_ns, msg.data))
                continue
            key = (stamp_ns(msg.header), str(msg.header.frame_id), log_ns)
            if role == 'camera_info':
                value = (
                    msg.width,
                    msg.height,
                    msg.distortion_model,
                    *(tuple(np.asarray(v, float)) for v in (msg.d, msg.k, msg.r, msg.p)),
                )
            elif role == 'depth':
                value = depth_imgmsg_to_metres(msg)
            else:
                value = np.array(imgmsg_to_array(msg))
            out.setdefault(role, []).append((key, value))
    return out


@pytest.fixture(scope='module')
def plain(bags):
    return _contents(bags['plain'])


@pytest.mark.parametrize('name', list(VARIANTS))
def test_each_format_reads_as_the_same_frames(bags, plain, name):
    got = _contents(bags[name])
    compressed_depth = 'compressed_depth' in name
    assert got['types']['depth'] == (COMPRESSED_IMAGE if compressed_depth else IMAGE)
    assert got['commands'] == plain['commands'] == [(got['commands'][0][0], MUG_PROMPT)]
    for role in ('image', 'ground_truth', 'camera_info', 'depth'):
        assert [k for k, _ in got[role]] == [k for k, _ in plain[role]]  # stamps, frames, times
        assert len(got[role]) == FRAMES
    for role in ('image', 'ground_truth', 'camera_info'):
        for (_, value), (_, expected) in zip(got[role], plain[role], strict=True):
            if role == 'camera_info':
                assert value == expected
            else:
                np.testing.assert_array_equal(value, expected)
    for (_, depth), (_, expected) in zip(got['depth'], plain['depth'], strict=True):
        if name.endswith('32fc1'):  # quantised inverse depth: never nearer, < d^2 / (A - d)
            error = depth.astype(np.float64) - expected
            assert (error > -1e-6).all() and (error < expected**2 / (QUANT_A - expected)).all()
        else:
            np.testing.assert_array_equal(depth, expected)


def test_the_writers_wrote_the_format_they_name(bags):
    assert bags['ros1'].read_bytes().startswith(b'#ROSBAG V2.0\n')
    assert [p.name for p in bags['zstd_file_mcap'].iterdir()] == [
        'file_mcap.mcap.zstd',
        'metadata.yaml',
    ]
    for name, expected in (
        ('zstd_file_sqlite3', ('zstd', 'file')),
        ('plain', ('', '')),
        ('zstd_message_mcap', ('zstd', 'message')),
    ):
        info = yaml.safe_load((bags[name] / 'metadata.yaml').read_text())
        info = info['rosbag2_bagfile_information']
        assert (info['compression_format'], info['compression_mode']) == expected
    sizes = {
        name: sum(p.stat().st_size for p in [path, *path.glob('*')] if p.is_file())
        for name, path in bags.items()
    }
    assert sizes['zstd_mcap_chunks'] < sizes['plain'] / 2
    assert sizes['ros1_lz4_chunks'] < sizes['ros1'] / 2


@pytest.mark.parametrize('chunks', [None, 'BZ2'])
def test_ros1_messages_with_seq_and_ros1_field_names(tmp_path, chunks):
    """A ROS 1 bag written with ROS 1 (Noetic) messages: Header.seq set, CameraInfo's K/D/R/P,
    plain or bz2 chunks. Read back as ROS 2 CDR, rclpy sees the same values without seq.
    """
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CameraInfo, Image

    store = get_typestore(Stores.ROS1_NOETIC)
    types = store.types
    header = types['std_msgs/msg/Header'](
        seq=4242, stamp=types['builtin_interfaces/msg/Time'](sec=17, nanosec=5), frame_id='cam'
    )
    roi = types['sensor_msgs/msg/RegionOfInterest'](0, 0, 0, 0, False)
    info = types['sensor_msgs/msg/CameraInfo'](
        header,
        3,
        2,
        'plumb_bob',
        np.arange(5.0),
        np.arange(9.0) + 1,
        np.eye(3).ravel(),
        np.arange(12.0) + 2,
        0,
        0,
        roi,
    )
    pixels = np.arange(18, dtype=np.uint8)
    image = types['sensor_msgs/msg/Image'](header, 2, 3, 'rgb8', 0, 9, pixels)
    path = tmp_path / 'noetic.bag'
    writer = Writer(path)
    if chunks:
        writer.set_compression(Writer.CompressionFormat[chunks])
    with writer:
        for topic, msgtype, msg in (
            ('/cam/camera_info', 'sensor_msgs/msg/CameraInfo', info),
            ('/cam/image', 'sensor_msgs/msg/Image', image),
        ):
            connection = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connection, 99, store.serialize_ros1(msg, msgtype))
    with open_bag(path) as reader:
        assert {n: t.msgtype for n, t in list_topics(reader).items()} == {
            '/cam/camera_info': 'sensor_msgs/msg/CameraInfo',
            '/cam/image': 'sensor_msgs/msg/Image',
        }
        got = {
            topic: raw
            for topic, _, _, raw in read_messages(reader, ['/cam/camera_info', '/cam/image'])
        }
    ros_info = deserialize_message(got['/cam/camera_info'], CameraInfo)
    ros_image = deserialize_message(got['/cam/image'], Image)
    for msg in (ros_info, ros_image):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (
            17,
            5,
            'cam',
        )
    assert list(ros_info.k) == list(np.arange(9.0) + 1) and list(ros_info.d) == list(range(5))
    assert list(ros_info.p) == list(np.arange(12.0) + 2)
    assert (ros_info.width, ros_info.height) == (2, 3)
    assert bytes(ros_image.data) == pixels.tobytes() and ros_image.encoding == 'rgb8'


def test_ros1_type_of_another_wire_format_is_refused_by_name(tmp_path):
    from rosbags.rosbag1 import Writer

    path = tmp_path / 'odd.bag'
    definition = '\n'.join(
        [
            'std_msgs/Header header',
            'uint32 height',
            '=' * 80,
            'MSG: std_msgs/Header',
            'uint32 seq',
            'time stamp',
            'string frame_id',
        ]
    )
    with Writer(path) as writer:
        connection = writer.add_connection(
            '/odd/camera_info', 'sensor_msgs/msg/CameraInfo', msgdef=definition, md5sum='0' * 32
        )
        writer.write(connection, 1, b'\0' * 20)
    with open_bag(path) as reader, pytest.raises(ReplayError, match="'/odd/camera_info'.*same"):
        next(read_messages(reader, ['/odd/camera_info']))


def test_damaged_ros1_bag_is_a_clear_error(bags, tmp_path):
    data = bags['ros1'].read_bytes()
    (tmp_path / 'garbled.bag').write_bytes(data[:13] + b'\xff' * (len(data) - 13))
    with pytest.raises(ReplayError, match='cannot open bag.*rosbag reindex'):
        with open_bag(tmp_path / 'garbled.bag'):
            pass


def test_depth_image_cdr_turns_compressed_depth_into_an_image(bags, plain):
    """What live mode publishes on the node's (sensor_msgs/Image) depth input."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from evf_sam_ros.replay.cdr import depth_image_cdr
    from evf_sam_ros.replay.errors import MessageError
    from evf_sam_ros.replay.sample_bag import COMPRESSED_DEPTH_TOPIC

    with open_bag(bags['compressed_depth_16uc1']) as reader:
        _, msgtype, _, raw = next(read_messages(reader, [COMPRESSED_DEPTH_TOPIC]))
    image = deserialize_message(depth_image_cdr(raw, msgtype), Image)
    assert (image.encoding, image.width, image.height) == ('16UC1', *SIZE)
    assert stamp_ns(image.header) == plain['depth'][0][0][0]
    np.testing.assert_array_equal(depth_imgmsg_to_metres(image), plain['depth'][0][1])
    assert depth_image_cdr(b'raw', IMAGE) == b'raw'
    broken = deserialize(raw, msgtype)
    broken.format = 'rgb8; jpeg compressed bgr8'
    from evf_sam_ros.replay.bagio import typestore

    with pytest.raises(MessageError, match="depth: .*'rgb8; jpeg compressed bgr8'") as info:
        depth_image_cdr(bytes(typestore().serialize_cdr(broken, msgtype)), msgtype)
    assert info.value.kind == 'depth_unsupported_encoding'


@pytest.fixture(scope='module')
def replays(bags, tiny_checkpoint, tmp_path_factory):
    """Offline replays (tiny checkpoint) of the plain bag and of two recorded formats."""
    checkpoint = tiny_checkpoint('evf-sam2', image_size=256)
    out = {}
    for name in (
        'plain',
        'ros1_lz4_chunks',
        'compressed_depth_16uc1',
        'ros1_compressed_depth_32fc1',
    ):
        directory = tmp_path_factory.mktemp(name)
        assert (
            cli.main(
                [
                    str(bags[name]),
                    '--checkpoint',
                    str(checkpoint),
                    '-o',
                    str(directory),
                    '--device',
                    'cpu',
                    '--score-threshold',
                    '0',
                    '--no-video',
                    '--quiet',
                ]
            )
            == 0
        )
        out[name] = directory
    return out


def _results(directory):
    """Result messages by topic (rclpy messages, compared field by field: CDR padding bytes
    are not defined), the Segmentation's inference time zeroed.
    """
    from geometry_msgs.msg import PointStamped, PoseStamped
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    from evf_sam_msgs.msg import GraspCandidateArray, Segmentation, SegmentationArray

    types = {
        'segmentation': Segmentation,
        'mask': Image,
        'target_point': PointStamped,
        'target_pose': PoseStamped,
        'segmentations': SegmentationArray,
        'target_cloud': PointCloud2,
        'markers': MarkerArray,
        'grasps': GraspCandidateArray,
    }
    results = {}
    with open_bag(directory / 'results') as reader:
        for topic, _, _, raw in read_messages(reader, list_topics(reader)):
            msg = deserialize_message(raw, types[topic.rsplit('/', 1)[1]])
            segs = [msg] if isinstance(msg, Segmentation) else getattr(msg, 'segmentations', [])
            for seg in segs:
                seg.inference_time = 0.0
            results.setdefault(topic, []).append(msg)
    return results


@pytest.mark.parametrize('name', ['ros1_lz4_chunks', 'compressed_depth_16uc1'])
def test_offline_replay_of_a_lossless_format_equals_the_plain_bag(replays, name):
    got, expected = _results(replays[name]), _results(replays['plain'])
    assert set(got) == set(expected) and '/evf_sam/target_point' in got
    assert got == expected
    report = json.loads((replays[name] / 'report.json').read_text())
    assert report['frames']['processed'] == FRAMES and report['warnings'] == {}


def test_offline_replay_with_32fc1_compressed_depth(replays):
    report = json.loads((replays['ros1_compressed_depth_32fc1'] / 'report.json').read_text())
    expected = json.loads((replays['plain'] / 'report.json').read_text())
    assert report['frames'] == expected['frames'] and report['warnings'] == {}
    assert report['iou'] == expected['iou']
    [got] = [t['target'] for t in report['targets'].values() if t['prompt'] == MUG_PROMPT]
    [want] = [t['target'] for t in expected['targets'].values() if t['prompt'] == MUG_PROMPT]
    assert got['count_valid'] == want['count_valid'] == FRAMES
    assert got['mean_m'] == pytest.approx(want['mean_m'], abs=2e-4)  # < 0.2 mm at ~1 m


def test_make_sample_bag_format_options(tmp_path, capsys):
    assert (
        make_sample_bag(
            [
                str(tmp_path / 'a.bag'),
                '--format',
                'ros1',
                '--frames',
                '1',
                '--size',
                '16x12',
                '--depth-format',
                'compressedDepth',
            ]
        )
        == 0
    )
    with open_bag(tmp_path / 'a.bag') as reader:
        assert (
            list_topics(reader)['/camera/aligned_depth_to_color/image_raw/compressedDepth'].count
            == 1
        )
    assert (
        make_sample_bag(
            [
                str(tmp_path / 'b'),
                '--format',
                'ros1',
                '--compression',
                'file',
                '--frames',
                '1',
                '--size',
                '16x12',
            ]
        )
        == 2
    )
    assert "ROS 1 bags have no 'file' compression" in capsys.readouterr().err
    assert (
        make_sample_bag(
            [
                str(tmp_path / 'c'),
                '--storage',
                'sqlite3',
                '--compression',
                'chunk',
                '--frames',
                '1',
                '--size',
                '16x12',
            ]
        )
        == 2
    )
    assert 'chunk compression needs mcap storage' in capsys.readouterr().err
    assert not (tmp_path / 'b').exists() and not (tmp_path / 'c').exists()

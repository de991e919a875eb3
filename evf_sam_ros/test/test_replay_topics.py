"""Which topic plays which role: auto-detection and its clear errors (no bag needed)."""

import pytest

from evf_sam_ros.replay.bagio import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, STRING, TopicInfo
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.topics import select_topics


def _topics(*rows):
    return {name: TopicInfo(name, msgtype, count) for name, msgtype, count in rows}


SAMPLE = _topics(
    ('/camera/color/image_raw', IMAGE, 5),
    ('/camera/aligned_depth_to_color/image_raw', IMAGE, 5),
    ('/camera/color/camera_info', CAMERA_INFO, 5),
    ('/command', STRING, 1),
    ('/ground_truth/mask', IMAGE, 5),
)


def test_sample_layout_is_detected():
    sel = select_topics(SAMPLE)
    assert sel.as_dict() == {
        'image': '/camera/color/image_raw',
        'depth': '/camera/aligned_depth_to_color/image_raw',
        'camera_info': '/camera/color/camera_info',
        'command': '/command',
        'ground_truth': '/ground_truth/mask',
    }
    assert sel.image_type == IMAGE and sel.notes == ()


def test_none_switches_roles_off():
    sel = select_topics(SAMPLE, depth='none', ground_truth='NONE', command='none')
    assert (sel.depth, sel.ground_truth, sel.command) == (None, None, None)


def test_several_image_topics_are_listed():
    topics = {**SAMPLE, '/camera/ir/image_raw': TopicInfo('/camera/ir/image_raw', IMAGE, 5)}
    with pytest.raises(ReplayError, match='--image-topic') as info:
        select_topics(topics)
    message = str(info.value)
    assert '/camera/ir/image_raw' in message and '/camera/color/image_raw' in message
    assert '--image-topic' in message
    assert select_topics(topics, image='/camera/ir/image_raw').image == '/camera/ir/image_raw'


def test_named_topic_missing_or_wrong_type():
    with pytest.raises(ReplayError, match="image topic '/nope' is not in the bag.*/command"):
        select_topics(SAMPLE, image='/nope')
    with pytest.raises(ReplayError, match='has type std_msgs/msg/String'):
        select_topics(SAMPLE, depth='/command')


def test_empty_bag_and_bag_without_images():
    with pytest.raises(ReplayError, match='empty'):
        select_topics({})
    with pytest.raises(ReplayError, match='empty'):
        select_topics(_topics(('/camera/image', IMAGE, 0)))
    with pytest.raises(ReplayError, match='no image topics'):
        select_topics(_topics(('/command', STRING, 3)))
    with pytest.raises(ReplayError, match='has no messages'):
        select_topics(_topics(('/camera/image', IMAGE, 0), ('/command', STRING, 3)))


def test_compressed_image_and_camera_info_beside_it():
    topics = _topics(
        ('/cam/color/image_raw/compressed', COMPRESSED_IMAGE, 3),
        ('/cam/color/camera_info', CAMERA_INFO, 3),
        ('/cam/depth/camera_info', CAMERA_INFO, 3),
    )
    sel = select_topics(topics)
    assert sel.image_type == COMPRESSED_IMAGE
    assert sel.camera_info == '/cam/color/camera_info'


def test_ambiguous_optional_role_is_left_out_with_a_note():
    topics = _topics(('/cam/image', IMAGE, 3), ('/a/depth', IMAGE, 3), ('/b/depth', IMAGE, 3))
    sel = select_topics(topics)
    assert sel.depth is None
    assert any('/a/depth' in note and '--depth-topic' in note for note in sel.notes)


def test_compressed_depth_topic_is_detected():
    topics = _topics(
        ('/cam/color/image_raw', IMAGE, 3),
        ('/cam/depth/image_raw/compressedDepth', COMPRESSED_IMAGE, 3),
    )
    sel = select_topics(topics)
    assert sel.image == '/cam/color/image_raw'
    assert sel.depth == '/cam/depth/image_raw/compressedDepth'
    assert sel.notes == ()


def test_transports_of_one_topic_count_once_raw_preferred():
    depth = '/cam/depth/image_raw'
    topics = _topics(
        ('/cam/color/image_raw', IMAGE, 3),
        ('/cam/color/image_raw/compressed', COMPRESSED_IMAGE, 3),
        (depth + '/compressed', COMPRESSED_IMAGE, 3),
        (depth + '/compressedDepth', COMPRESSED_IMAGE, 3),
    )
    sel = select_topics(topics)
    assert sel.image == '/cam/color/image_raw' and sel.image_type == IMAGE
    assert sel.depth == depth + '/compressedDepth'  # compressedDepth before compressed
    sel = select_topics({**topics, **_topics((depth, IMAGE, 3))})
    assert sel.depth == depth and sel.notes == ()


def test_transports_of_different_topics_stay_ambiguous():
    topics = _topics(
        ('/cam/image', IMAGE, 3),
        ('/a/depth/compressedDepth', COMPRESSED_IMAGE, 3),
        ('/b/depth/compressedDepth', COMPRESSED_IMAGE, 3),
    )
    sel = select_topics(topics)
    assert sel.depth is None
    assert any('/a/depth/compressedDepth' in note for note in sel.notes)


def test_names_without_leading_slash_and_image_transport_base_names():
    from evf_sam_ros.replay.topics import find_topic

    topics = _topics(
        ('camera/image/compressed', COMPRESSED_IMAGE, 3),
        ('/depth/image/compressedDepth', COMPRESSED_IMAGE, 3),
        ('command', STRING, 1),
    )
    assert find_topic(topics, '/camera/image', 'image') == 'camera/image/compressed'
    assert find_topic(topics, 'camera/image/', 'image') == 'camera/image/compressed'
    assert find_topic(topics, 'depth/image', 'depth') == '/depth/image/compressedDepth'
    assert find_topic(topics, '/command', 'command') == 'command'
    assert find_topic(topics, '/camera', 'image') is None
    sel = select_topics(topics, image='/camera/image', depth='depth/image', command='/command')
    assert (sel.image, sel.depth, sel.command) == (
        'camera/image/compressed',
        '/depth/image/compressedDepth',
        'command',
    )
    with pytest.raises(ReplayError, match='with or without the leading slash'):
        select_topics(topics, image='/left/image')


def test_the_only_image_topic_as_depth_says_so():
    topics = _topics(('/cam/image_raw', IMAGE, 3))
    with pytest.raises(ReplayError, match=r'only image topic.*--depth-topic none'):
        select_topics(topics, depth='/cam/image_raw')

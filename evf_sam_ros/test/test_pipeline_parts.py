"""The shared frame pipeline's parts, tested directly (the node and replay tests drive them
through ROS and bags): process_frame, TargetList / check_prompt, FrameMessages and
TrackSegmenter.

The model runs with tiny real-format checkpoints (random weights: the hub cannot be reached
here). Random weights give arbitrary masks, so the depth and 3D decisions of process_frame are
tested with ``known_mask``, a Segmenter that answers every target with a given mask.
"""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from evf_sam_ros.codecs.image import array_to_imgmsg
from evf_sam_ros.model import EvfSamPredictor, EvfSamTracker, TrackerSettings
from evf_sam_ros.model.errors import InputImageError, PromptError
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.pipeline.depth import ChosenDepth
from evf_sam_ros.pipeline.frame import (
    BAD_IMAGE,
    NO_PROMPT,
    PROCESSED,
    predictor_segmenter,
    process_frame,
)
from evf_sam_ros.pipeline.markers import marker_namespace
from evf_sam_ros.pipeline.outputs import FrameMessages
from evf_sam_ros.pipeline.prompts import ONE_SHOT, NamedTarget, TargetList, check_prompt
from evf_sam_ros.pipeline.source import SourceImage
from evf_sam_ros.pipeline.track import TrackSegmenter
from evf_sam_ros.target3d.estimate import TargetSettings

H, W = 48, 64
FX = FY = 50.0
CX, CY = 31.5, 23.5
MASK = np.zeros((H, W), bool)
MASK[10:30, 20:40] = True  # centroid (29.5, 19.5)
SETTINGS = TargetSettings(score_threshold=0.5, erode_iterations=0)


def header(sec: int = 7) -> Header:
    out = Header(frame_id='camera_color_optical_frame')
    out.stamp.sec = sec
    return out


def source(rgb: np.ndarray | None = None, encoding: str = 'rgb8') -> SourceImage:
    rgb = np.full((H, W, 3), 90, np.uint8) if rgb is None else rgb
    msg = array_to_imgmsg(rgb, 'rgb8', header())
    msg.encoding = encoding
    return SourceImage(msg)


def known_mask(mask: np.ndarray = MASK, score: float = 0.9):
    """A Segmenter (pipeline.frame) giving every target ``mask`` with ``score``."""

    def segment(rgb, targets):
        logits = np.where(mask, 5.0, -5.0).astype(np.float32)
        results = [
            SegmentationResult(
                t.prompt,
                mask,
                logits,
                score,
                None,
                mask_bbox(mask),
                mask_centroid(mask),
                int(mask.sum()),
            )
            for t in targets
        ]
        return results, len(targets), None

    return segment


def depth_of(metres: float) -> ChosenDepth:
    """A 32FC1 depth image of ``metres`` everywhere with its camera_info, 0 s from the image."""
    info = CameraInfo(width=W, height=H, header=header())
    info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    msg = array_to_imgmsg(np.full((H, W), metres, np.float32), '32FC1', header())
    return ChosenDepth(msg, 0.0, info, max_stamp_diff=0.05)


# ---- process_frame -----------------------------------------------------------------------
def test_no_targets_skips_the_frame_without_decoding_it():
    out = process_frame(source(encoding='bayer_nope'), [], known_mask(), None, SETTINGS)
    assert (out.status, out.rgb, out.problems, out.targets) == (NO_PROMPT, None, [], [])


def test_undecodable_and_refused_images_are_bad_image_problems():
    targets = [NamedTarget(0, 'the mug')]
    out = process_frame(source(encoding='bayer_nope'), targets, known_mask(), None, SETTINGS)
    assert out.status == BAD_IMAGE and [p.kind for p in out.problems] == ['unsupported_encoding']
    assert 'bayer_nope' in out.problems[0].message

    def refuse(rgb, targets):
        raise InputImageError('image of 48x64 is too small')

    out = process_frame(source(), targets, refuse, None, SETTINGS)
    assert out.status == BAD_IMAGE and out.rgb is not None and out.targets == []
    assert [(p.kind, p.message) for p in out.problems] == [
        ('bad_image', 'image of 48x64 is too small')
    ]


def test_every_target_gets_its_point_from_depth_in_order():
    targets = [NamedTarget(4, 'the mug'), NamedTarget(9, 'the plate')]
    out = process_frame(source(), targets, known_mask(), depth_of(1.5), SETTINGS)
    assert out.status == PROCESSED and out.problems == []
    assert [t.target.id for t in out.targets] == [4, 9]
    for t in out.targets:
        seg = t.messages.segmentation
        assert (seg.target_id, seg.found, seg.target_point_valid) == (t.target.id, True, True)
        assert seg.header.stamp.sec == 7 and seg.header.frame_id == 'camera_color_optical_frame'
        x, y, z = t.estimate.point  # pinhole of the mask's centre at 1.5 m
        assert z == pytest.approx(1.5) and x == pytest.approx((29.5 - CX) * 1.5 / FX, abs=0.02)
        assert y == pytest.approx((19.5 - CY) * 1.5 / FY, abs=0.02)


def test_found_without_valid_depth_is_reported_and_weak_masks_are_not_found():
    targets = [NamedTarget(0, 'the mug')]
    out = process_frame(source(), targets, known_mask(), depth_of(float('nan')), SETTINGS)
    assert out.targets[0].estimate.found and out.targets[0].estimate.point is None
    assert [p.kind for p in out.problems] == ['depth_invalid']
    assert "'the mug'" in out.problems[0].message
    weak = process_frame(source(), targets, known_mask(score=0.2), depth_of(1.5), SETTINGS)
    assert not weak.targets[0].messages.segmentation.found and weak.problems == []
    no_depth = process_frame(source(), targets, known_mask(), None, SETTINGS)
    assert no_depth.targets[0].estimate.point is None and no_depth.problems == []


@pytest.fixture(scope='module')
def predictor(tiny_checkpoint):
    return EvfSamPredictor.from_pretrained(tiny_checkpoint('evf-sam2'), device='cpu')


def test_predictor_segmenter_runs_each_prompt_once_and_tokenizes_it_once(predictor):
    targets = [NamedTarget(0, 'the mug'), NamedTarget(1, 'a cup'), NamedTarget(2, 'the mug')]
    segment = predictor_segmenter(predictor)
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), np.uint8)
    before = predictor.tokenizer.cache_info()
    for _ in range(3):  # three frames
        out = process_frame(source(rgb), targets, segment, None, SETTINGS)
        assert [t.prompt for t in out.targets] == ['the mug', 'a cup', 'the mug']
        assert out.targets[0].result.mask.shape == (H, W)
        np.testing.assert_array_equal(out.targets[0].result.mask, out.targets[2].result.mask)
        # two prompts share the frame's image encoder: each target's time is a share of it
        assert segment(rgb, targets)[1] == 2
    after = predictor.tokenizer.cache_info()
    assert after.misses - before.misses == 2  # 'the mug' and 'a cup', once each
    assert after.hits - before.hits >= 3 * 2 * 2  # every later use of a prompt on every frame


# ---- TargetList and check_prompt ---------------------------------------------------------
def test_check_prompt_cleans_and_refuses():
    assert check_prompt('  the  red\tmug ', 40) == 'the red mug'
    with pytest.raises(PromptError, match='prompt of 41 characters refused'):
        check_prompt('x' * 41, 40)
    with pytest.raises(PromptError, match='the prompt is empty'):
        check_prompt(' \n ', 40)

    def too_long(text):
        raise PromptError(f'{text!r} is too many tokens')

    with pytest.raises(PromptError, match="'the mug' is too many tokens"):
        check_prompt('the mug', 40, too_long)


def test_target_list_primary_first_ids_never_reused():
    targets = TargetList(lambda text: check_prompt(text, 20))
    assert targets.command('the mug') is None
    added = targets.add(' a  cup ')
    assert [(t.id, t.prompt) for t in targets.snapshot()] == [(0, 'the mug'), (1, 'a cup')]
    assert targets.command('the mug') is None and targets.snapshot()[0].id == 0  # same prompt
    assert targets.command('the plate') is None  # a new primary is a new object
    assert [t.id for t in targets.snapshot()] == [2, 1] and targets.primary_prompt == 'the plate'
    refused = targets.command('x' * 21)
    assert refused.kind == 'prompt_rejected' and "keeping 'the plate'" in refused.message
    assert targets.remove(added.id) and not targets.remove(added.id) and not targets.remove(77)
    assert targets.command('  ') is None and targets.snapshot() == ()
    with pytest.raises(PromptError, match='the prompt is empty'):
        targets.add('')
    assert targets.add('a bowl').id == 3 and targets.clear() == 1 and targets.snapshot() == ()


# ---- FrameMessages -----------------------------------------------------------------------
def test_frame_messages_roles_and_markers_of_removed_targets():
    targets = [NamedTarget(3, 'the mug'), NamedTarget(5, 'the plate')]
    out = process_frame(source(), targets, known_mask(), depth_of(1.0), SETTINGS, with_cloud=True)
    builder = FrameMessages()
    plain = dict(builder.build(out.targets, with_cloud=False, with_markers=False))
    assert list(plain) == ['segmentation', 'mask', 'target_point', 'target_pose', 'segmentations']
    assert [s.target_id for s in plain['segmentations'].segmentations] == [3, 5]
    assert plain['segmentation'].target_id == 3 and plain['mask'].height == H
    full = dict(builder.build(out.targets, with_cloud=True, with_markers=True))
    cloud = full['target_cloud']
    assert cloud.header.stamp.sec == 7 and cloud.width == 2 * int(MASK.sum())
    offset = {f.name: f.offset for f in cloud.fields}['target_id']
    points = np.frombuffer(bytes(cloud.data), np.uint8).reshape(cloud.width, cloud.point_step)
    ids = points[:, offset : offset + 4].copy().view(np.int32)[:, 0]
    assert sorted(set(ids.tolist())) == [3, 5]
    spaces = {m.ns for m in full['markers'].markers}
    assert spaces == {marker_namespace(3), marker_namespace(5)}
    later = dict(builder.build(out.targets[:1], with_cloud=False, with_markers=True))
    gone = marker_namespace(5)  # every marker target 5 had is deleted, none added
    shown = {m.id for m in full['markers'].markers if m.ns == gone and m.action == Marker.ADD}
    fives = [m for m in later['markers'].markers if m.ns == gone]
    assert shown and {m.id for m in fives} >= shown
    assert all(m.action == Marker.DELETE for m in fives)
    kept = [m for m in later['markers'].markers if m.ns == marker_namespace(3)]
    assert any(m.action == Marker.ADD for m in kept)  # target 3 is still drawn
    assert builder.deleted_markers(header(), {3}) is None  # nothing more to delete


# ---- TrackSegmenter ----------------------------------------------------------------------
def test_track_segmenter_maps_ids_forgets_removed_and_one_shot_leaves_tracker(tiny_checkpoint):
    tracker = EvfSamTracker.from_pretrained(
        tiny_checkpoint('evf-sam2'), device='cpu', settings=TrackerSettings(iou_threshold=0.0)
    )
    segment = TrackSegmenter(tracker)
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), np.uint8)
    mug, cup = NamedTarget(10, 'the mug'), NamedTarget(20, 'a cup')
    results, passes, tracking = segment(rgb, [mug, cup])
    assert [r.prompt for r in results] == ['the mug', 'a cup'] and passes == 2
    assert [t.grounded for t in tracking] == [True, True]
    assert [(s.target_id, s.prompt) for s in tracker.targets] == [(0, 'the mug'), (1, 'a cup')]
    results, _, tracking = segment(rgb, [mug, cup])
    assert [t.grounded for t in tracking] == [False, False]  # carried by memory
    results, _, tracking = segment(rgb, [cup, NamedTarget(ONE_SHOT, 'the plate')])
    assert [r.prompt for r in results] == ['a cup', 'the plate'] and tracking[1] is None
    assert [s.prompt for s in tracker.targets] == ['a cup']  # the mug is forgotten
    assert tracker.counters.groundings == 2  # the one-shot prompt was not added

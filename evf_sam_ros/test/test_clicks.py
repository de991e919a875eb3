"""Correction clicks in track mode (EvfSamTracker.correct) and with ~/segment's model call
(EvfSamPredictor.predict with points), on tiny real-format checkpoints (random weights: the
hub cannot be reached here; torch, sam2 and segment-anything run for real).

Random weights say nothing about where the object is, so these tests check what a click does
to the computation: it changes the mask from the clicked frame on, a click on an older held
frame gives what the same click at the time would have given (the frames after it tracked
again), the memory stays bounded, and refused clicks say why and change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_tracker import make_present, scene

from evf_sam_ros.model import ClickError, EvfSamPredictor, EvfSamTracker, TrackerSettings
from evf_sam_ros.model.points import check_points, model_points
from evf_sam_ros.model.tracking.track_memory import FrameMemory, TargetMemory, batched_output_dict

PROMPT = 'the red square'
INSIDE = [[15.0, 30.0]]  # on the red square of scene(0) (rows 20-40, columns 8-28)
OUTSIDE_SQUARE = [[80.0, 60.0]]


@pytest.fixture(scope='module')
def make(tiny_checkpoint):
    """Factory: a fresh tracker (never lost) on one shared tiny model (image_size 128) with
    SAM2's object present; trackers of one model compute bit-identical results.
    """
    shared = EvfSamTracker.from_pretrained(
        tiny_checkpoint('evf-sam2', image_size=128), device='cpu'
    )
    make_present(shared)

    def build(**settings) -> EvfSamTracker:
        settings.setdefault('iou_threshold', 0.0)
        settings.setdefault('lost_after', 0)
        return EvfSamTracker(shared.predictor, TrackerSettings(**settings))

    return build


def run(tracker: EvfSamTracker, frames: range) -> list[np.ndarray]:
    """Track frames (keyed by their index); the first target's logits on each."""
    return [tracker.track(scene(i), frame_key=i)[0].logits for i in frames]


def grounded(tracker: EvfSamTracker, upto: int) -> EvfSamTracker:
    """The red square added on frame 0 and tracked up to frame ``upto``."""
    tracker.add_targets(scene(0), [PROMPT], frame_key=0)
    run(tracker, range(1, upto + 1))
    return tracker


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def test_a_click_changes_the_mask_from_that_frame_on(make):
    plain, clicked = grounded(make(), 2), grounded(make(), 2)
    assert np.array_equal(run(plain, range(3, 4))[0], run(clicked, range(3, 4))[0])
    on_frame = clicked.correct(0, OUTSIDE_SQUARE, [1], frame_key=3)
    assert on_frame.mask.shape == scene(3).shape[:2] and on_frame.prompt == PROMPT
    assert differ(on_frame.logits, plain.correct(0, INSIDE, [0], frame_key=3).logits) > 1e-5
    plain = grounded(make(), 3)  # the same frames, no click
    for i, (a, b) in enumerate(zip(run(plain, range(4, 6)), run(clicked, range(4, 6)))):
        assert differ(a, b) > 1e-5, f'frame {4 + i} forgot the click'


def test_a_click_on_an_older_held_frame_equals_the_same_click_at_the_time(make):
    late = grounded(make(click_frames=3), 3)  # frames 1..3 held
    late.correct(0, INSIDE, [0], frame_key=1)  # frames 2 and 3 are tracked again
    at_the_time = grounded(make(click_frames=3), 1)
    at_the_time.correct(0, INSIDE, [0])  # the newest frame: 1
    run(at_the_time, range(2, 4))
    a, b = run(late, range(4, 5))[0], run(at_the_time, range(4, 5))[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    unclicked = run(grounded(make(), 3), range(4, 5))[0]
    assert differ(a, unclicked) > 1e-5


def test_a_click_on_the_grounding_frame_replaces_the_grounding(make):
    tracker = make()
    first = tracker.add_targets(scene(0), [PROMPT], frame_key='f0')[0].result
    fixed = tracker.correct(0, INSIDE + OUTSIDE_SQUARE, [1, 0], frame_key='f0')
    assert differ(first.logits, fixed.logits) > 1e-5
    assert np.isfinite(tracker.track(scene(1), 'f1')[0].logits).all()
    assert tracker.memory_tensors() == 2 * (1 + 1)  # the new grounding and frame 1


def test_clicked_frames_and_held_frames_stay_bounded(make):
    tracker = grounded(make(click_frames=2, click_memory=2), 0)
    counts = []
    for i in range(1, 5):
        tracker.track(scene(i), frame_key=i)
        tracker.correct(0, [[10.0 + i, 30.0]], [1])  # every frame becomes a clicked frame
        counts.append(tracker.memory_tensors())
    assert counts == [2 * (1 + 1), 2 * (1 + 2), 2 * (1 + 2), 2 * (1 + 2)]
    with pytest.raises(ClickError, match='frame 2 is not held') as refused:
        tracker.correct(0, INSIDE, [1], frame_key=2)  # held: 3 and 4
    assert refused.value.kind == 'click_frame_not_held'
    tracker.correct(0, INSIDE, [1], frame_key=3)


REFUSED = [
    (7, INSIDE, [1], None, 'click_unknown_target', r'no tracked target with id 7; .*\[0\]'),
    (0, [[96.0, 10.0]], [1], None, 'click_outside_image', r'\(96, 10\) is outside the 96x72'),
    (0, [[5.0, -1.0]], [1], None, 'click_outside_image', 'outside'),
    (0, INSIDE, [2], None, 'click_invalid', 'labels must be 1 .* or 0'),
    (0, INSIDE, [1, 0], None, 'click_invalid', '1 points but 2 labels'),
    (0, [], [], None, 'click_invalid', 'no points'),
    (0, [[np.nan, 3.0]], [1], None, 'click_invalid', 'finite'),
    (0, INSIDE, [1], 99, 'click_frame_not_held', 'frame 99 is not held'),
]


def test_refused_clicks_say_why_and_change_nothing(make):
    plain, refused = grounded(make(), 1), grounded(make(), 1)
    for target_id, points, labels, key, kind, match in REFUSED:
        with pytest.raises(ClickError, match=match) as error:
            refused.correct(target_id, points, labels, frame_key=key)
        assert error.value.kind == kind
    assert np.array_equal(run(plain, range(2, 3))[0], run(refused, range(2, 3))[0])


def test_clicks_off_and_clicks_before_any_target_are_refused(make):
    fresh = make()
    with pytest.raises(ClickError, match='no tracked target') as error:
        fresh.correct(0, INSIDE, [1])
    assert error.value.kind == 'click_unknown_target'
    off = grounded(make(click_frames=0), 0)
    with pytest.raises(ClickError, match='clicks are off') as error:
        off.correct(0, INSIDE, [1])
    assert error.value.kind == 'click_not_tracking'


def test_a_target_regrounded_after_the_clicked_frame_refuses_it(make):
    tracker = grounded(make(reground_interval=2), 2)  # re-grounded on frame 2
    with pytest.raises(ClickError, match='re-grounded from its text on frame 2') as error:
        tracker.correct(0, INSIDE, [1], frame_key=1)
    assert error.value.kind == 'click_frame_not_held'
    tracker.correct(0, INSIDE, [1], frame_key=2)  # the re-grounding frame itself: accepted


def test_a_target_added_after_the_clicked_frame_is_refused_there(make):
    tracker = grounded(make(), 0)
    tracker.track_targets(scene(1), add=['the blue disc'], frame_key=1)
    with pytest.raises(ClickError, match='target 1 was not segmented on frame 0'):
        tracker.correct(1, INSIDE, [1], frame_key=0)
    tracker.correct(1, INSIDE, [1], frame_key=1)


def test_points_are_checked_and_scaled_to_model_pixels():
    coords, labels = check_points([[0, 0], [95.5, 71]], [1, 0], (72, 96))
    assert coords.dtype == np.float32 and labels.dtype == np.int32
    points, point_labels = model_points(coords, labels, (72, 96), (1024, 1024), 'cpu')
    np.testing.assert_allclose(points[0].numpy(), [[0, 0], [95.5 * 1024 / 96, 71 * 1024 / 72]])
    assert point_labels.tolist() == [[1, 0]]
    resized, _ = model_points(coords, labels, (72, 96), (768, 1024), 'cpu')  # SAM ViT
    np.testing.assert_allclose(resized[0, 1].numpy(), [95.5 * 1024 / 96, 71 * 768 / 72])


@pytest.mark.parametrize('variant', ['evf-sam2', 'evf-sam'])
def test_segment_mode_takes_points_next_to_the_text(tiny_checkpoint, variant):
    predictor = EvfSamPredictor.from_pretrained(
        tiny_checkpoint(variant, image_size=128), device='cpu'
    )
    image = scene(0)
    text_only = predictor.predict(image, PROMPT)
    assert np.array_equal(text_only.logits, predictor.predict(image, PROMPT, None, None).logits)
    positive = predictor.predict(image, PROMPT, np.array(INSIDE), np.array([1]))
    negative = predictor.predict(image, PROMPT, np.array(INSIDE), np.array([0]))
    assert positive.mask.shape == image.shape[:2]
    assert not np.allclose(positive.logits, text_only.logits)
    assert not np.allclose(positive.logits, negative.logits)
    again = predictor.predict(image, PROMPT, np.array(INSIDE), np.array([1]))
    np.testing.assert_allclose(again.logits, positive.logits, atol=1e-5)
    with pytest.raises(ClickError, match='outside the 96x72 image'):
        predictor.predict(image, PROMPT, np.array([[200.0, 3.0]]), np.array([1]))


def test_clicked_targets_batched_together_equal_separate_runs(make):
    both = make()
    both.add_targets(scene(0), [PROMPT, 'the blue disc'], frame_key=0)
    run(both, range(1, 2))
    for target_id in (0, 1):
        both.correct(target_id, INSIDE, [1], frame_key=1)
    together = [both.track(scene(i), i) for i in (2, 3)]  # one batch: the same click ages
    for k, prompt in enumerate([PROMPT, 'the blue disc']):
        alone = make()
        alone.add_targets(scene(0), [prompt], frame_key=0)
        run(alone, range(1, 2))
        alone.correct(0, INSIDE, [1], frame_key=1)
        for i, row in zip((2, 3), together):
            np.testing.assert_allclose(
                row[k].logits, alone.track(scene(i), i)[0].logits, atol=1e-5, err_msg=f'{k} {i}'
            )


def _memory(value: float) -> FrameMemory:
    return FrameMemory(torch.full((1, 2, 1, 1), value), torch.full((1, 3), value))


def test_click_frames_are_conditioning_frames_at_unique_indices():
    memory = TargetMemory(_memory(0.0), window=3)
    for value in (1.0, 2.0):
        memory.append(_memory(value))
    memory.add_click(_memory(3.0), limit=2)  # frame 3
    memory.append(_memory(4.0))
    assert memory.batch_key == (3, (1,))
    index, out = batched_output_dict([memory], [torch.zeros(1, 2, 1, 1)])
    conds, recent = out['cond_frame_outputs'], out['non_cond_frame_outputs']
    # the next frame is the target's 5th, numbered 4: frames 2, 3 (clicked), 4 at 1, 2, 3
    assert index == 4 and sorted(conds) == [0, 2] and sorted(recent) == [1, 3]
    assert conds[2]['obj_ptr'][0, 0].item() == 3.0 and recent[1]['obj_ptr'][0, 0].item() == 2.0
    for value in (5.0, 6.0, 7.0):  # the click frame falls out of the window: still read
        memory.append(_memory(value))
    index, out = batched_output_dict([memory], [torch.zeros(1, 2, 1, 1)])
    conds, recent = out['cond_frame_outputs'], out['non_cond_frame_outputs']
    assert sorted(conds) == [-5, 0] and conds[-5]['obj_ptr'][0, 0].item() == 3.0
    assert sorted(recent) == [1, 2, 3] and 3.0 not in [
        r['obj_ptr'][0, 0].item() for r in recent.values()
    ]
    memory.add_click(_memory(8.0), limit=2)
    memory.add_click(_memory(9.0), limit=2)
    assert sorted(memory.clicks) == [8, 9] and sorted(memory.recent) == [7]
    assert memory.tensors() == 2 * (1 + 1 + 2)

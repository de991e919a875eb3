"""Track mode (EvfSamTracker) on tiny real-format checkpoints (random weights: the hub cannot
be reached here). Everything else is real: torch, sam2, sentencepiece.

With random weights SAM2's object-score head says "no object" on every frame, which would
make every mask empty (-1024) and every comparison trivial; the ``present`` fixture raises
that head's output bias so masks are not empty (both sides of each comparison share it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tracking_reference import official_offline, reference_fill_holes

from evf_sam_ros.model import (
    EvfSamPredictor,
    EvfSamTracker,
    InputImageError,
    PromptError,
    SegmentationResult,
    TargetError,
    TrackerSettings,
    VariantError,
)

FRAME_SHAPE = (72, 96)  # not square: the video preprocessing squashes it


def scene(index: int, shape: tuple[int, int] = FRAME_SHAPE) -> np.ndarray:
    """A textured background with a red square moving right and a blue disc moving down."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    x0 = 8 + 3 * index
    image[20:40, x0 : x0 + 20] = (220, 30, 30)
    disc = (yy - (10 + 2 * index)) ** 2 + (xx - 70) ** 2 < 100
    image[disc] = (30, 40, 210)
    return image


def write_jpeg_frames(directory, count: int, shape=FRAME_SHAPE) -> list[np.ndarray]:
    """Frames as the official loader reads them (JPEG folder); returns the decoded RGB arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        path = directory / f'{i:05d}.jpg'
        Image.fromarray(scene(i, shape)).save(path, quality=90)
        frames.append(np.array(Image.open(path).convert('RGB')))
    return frames


def make_present(tracker: EvfSamTracker, bias: float = 4.0) -> None:
    """Raise SAM2's object-score logit (see the module docstring)."""
    head = tracker.predictor.model.visual_model.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[-1].bias.add_(bias)


@pytest.fixture(scope='module')
def trackers(tiny_checkpoint):
    """Factory: a fresh tracker on a tiny checkpoint of ``variant`` with the object present."""

    def make(variant: str = 'evf-sam2', image_size: int = 256, **settings) -> EvfSamTracker:
        settings.setdefault('iou_threshold', 0.0)  # random weights predict IoUs near 0.5
        tracker = EvfSamTracker.from_pretrained(
            tiny_checkpoint(variant, image_size=image_size),
            device='cpu',
            settings=TrackerSettings(**settings),
        )
        make_present(tracker)
        return tracker

    return make


@pytest.fixture
def cuda_free_fill_holes(monkeypatch):
    """sam2's hole filling needs its CUDA extension (not buildable here): give the offline
    reference the same rule computed by the test's own breadth-first search.
    """
    import sam2.sam2_video_predictor as video_predictor

    calls = []

    def fill(mask, max_area):
        out = reference_fill_holes(mask, max_area)
        calls.append(bool((out != mask).any()))
        return out

    monkeypatch.setattr(video_predictor, 'fill_holes_in_mask_scores', fill)
    return calls


def official_text(tracker: EvfSamTracker, rgb: np.ndarray, prompt: str) -> torch.Tensor:
    """inference_video.py's BEiT-3 input and text feature: ToTensor, bicubic 224 (antialias
    torchvision's default; the multitask checkpoints' image-mode code passes None), 0.5/0.5.
    """
    from torchvision.transforms import InterpolationMode, ToTensor
    from torchvision.transforms import functional as TF

    antialias = None if tracker.predictor.regime.multitask else True
    x = TF.resize(
        ToTensor()(rgb), [224, 224], interpolation=InterpolationMode.BICUBIC, antialias=antialias
    )
    x = TF.normalize(x, [0.5] * 3, [0.5] * 3).unsqueeze(0)
    ids = torch.tensor([tracker.predictor.tokenize(prompt)])
    with torch.inference_mode():
        return tracker.predictor.model.text_embedding(x, ids)


@pytest.mark.parametrize('variant', ['evf-sam2', 'evf-sam2-multitask'])
def test_online_tracking_equals_the_official_offline_run(
    trackers, tmp_path, variant, cuda_free_fill_holes
):
    tracker = trackers(variant, lost_after=0)
    frames = write_jpeg_frames(tmp_path / 'frames', 20)  # > 16: pointer memory fills up
    prompt = 'the red square on the left'
    online = [tracker.add_target(frames[0], prompt)] + [tracker.track(f)[0] for f in frames[1:]]
    offline = official_offline(
        tracker.predictor.model.visual_model,
        tmp_path / 'frames',
        official_text(tracker, frames[0], prompt),
    )
    assert len(offline) == len(online) == 20
    for i, (ours, ref) in enumerate(zip(online, offline)):
        assert ours.logits.shape == ref.shape == FRAME_SHAPE
        np.testing.assert_allclose(ours.logits, ref, atol=1e-5, err_msg=f'frame {i}')
        assert np.array_equal(ours.mask, ref > 0), f'frame {i}'
    areas = [r.area for r in online]
    assert min(areas) > 0 and len(set(areas)) > 1  # non-trivial masks that change over frames
    assert any(cuda_free_fill_holes)  # some frame really had holes to fill


def assert_same_results(a: SegmentationResult, b: SegmentationResult, where: str) -> None:
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-4, err_msg=where)
    decided = np.abs(b.logits) > 1e-3
    assert np.array_equal(a.mask[decided], b.mask[decided]), where
    assert a.score == pytest.approx(b.score, abs=1e-5)
    assert a.object_score == pytest.approx(b.object_score, abs=1e-4)


def test_several_targets_equal_separate_single_target_runs(trackers):
    prompts = ['the red square', 'the blue disc', 'the background']
    frames = [scene(i) for i in range(22)]  # the late target's window is full from frame 18
    together = trackers(lost_after=0)
    first = together.add_targets(frames[0], prompts[:2])
    assert [r.status.target_id for r in first] == [0, 1]
    rows = [[r.result for r in first]]
    for i, frame in enumerate(frames[1:], start=1):  # the third target joins on frame 3
        step = together.track_targets(frame, add=[prompts[2]] if i == 3 else [])
        assert [r.status.target_id for r in step] == list(range(len(step)))
        rows.append([r.result for r in step])
    # targets whose memory windows are full run in one batch, whatever their age
    assert rows[-1][0].timings_ms['decoder'] == rows[-1][2].timings_ms['decoder']
    assert rows[10][0].timings_ms['decoder'] != rows[10][2].timings_ms['decoder']
    for k, prompt in enumerate(prompts):
        start = 3 if k == 2 else 0
        alone = trackers(lost_after=0)
        mine = [alone.add_target(frames[start], prompt)] + [
            alone.track(f)[0] for f in frames[start + 1 :]
        ]
        theirs = [row[k] for row in rows[start:]]
        for i, (a, b) in enumerate(zip(theirs, mine)):
            assert a.prompt == prompt
            assert_same_results(a, b, f'target {k} frame {start + i}')


def test_memory_stays_bounded_over_a_long_stream(trackers):
    tracker = trackers(image_size=128, lost_after=0)
    window = 15  # max(num_maskmem - 1, max_obj_ptrs_in_encoder - 1) of the released configs
    tracker.add_targets(scene(0), ['the red square', 'the blue disc'])
    counts = []
    for i in range(1, 201):
        tracker.track(scene(i % 20))
        counts.append(tracker.memory_tensors())
    per_target = 2 * (1 + window)
    assert counts[window - 1] == counts[-1] == 2 * per_target
    assert max(counts) == 2 * per_target
    assert counts[0] < counts[window - 1]  # it fills up first, then stays
    assert tracker.counters.frames == 200


def test_a_target_whose_object_disappears_is_lost_then_regrounded(trackers):
    tracker = trackers(lost_after=3)
    tracker.add_target(scene(0), 'the red square')
    statuses = []
    make_present(tracker, -50.0)  # the object leaves the view: object score far below 0
    for i in range(1, 6):
        statuses.append(tracker.track_targets(scene(i))[0].status)
    assert [s.lost for s in statuses] == [False, False, True, True, True]
    assert [s.found for s in statuses] == [False, False, False, False, False]
    assert [s.grounded for s in statuses] == [None, None, None, 'lost', 'lost']
    assert statuses[-1].lost_count == 1 and statuses[-1].reground_count == 2
    make_present(tracker, 50.0)  # it comes back: re-grounded from the text on the next frame
    back = tracker.track_targets(scene(6))[0]
    assert back.status.grounded == 'lost' and not back.status.lost and back.status.found
    assert back.result.area > 0
    fresh = trackers(lost_after=3)
    assert_same_results(back.result, fresh.add_target(scene(6), 'the red square'), 'reground')
    after = tracker.track_targets(scene(7))[0].status
    assert after.grounded is None and after.frames_since_grounding == 1 and after.found
    counters = tracker.counters
    assert (counters.lost, counters.regrounded, counters.groundings) == (1, 3, 1)


def test_thresholds_decide_lost_and_can_change_at_runtime(trackers):
    tracker = trackers(lost_after=2, iou_threshold=1.5)  # no predicted IoU reaches 1.5
    tracker.add_target(scene(0), 'the red square')
    assert tracker.targets[0].weak_frames == 1 and not tracker.targets[0].lost
    tracker.track(scene(1))
    assert tracker.targets[0].lost and tracker.counters.lost == 1
    tracker.update_settings(iou_threshold=0.0)
    tracker.track(scene(2))
    status = tracker.targets[0]
    assert status.grounded == 'lost' and not status.lost and status.found
    with pytest.raises(ValueError, match='lost_after'):
        tracker.update_settings(lost_after=-1)
    with pytest.raises(ValueError, match='unknown tracker settings'):
        tracker.update_settings(lost_afterr=3)
    with pytest.raises(ValueError, match='iou_threshold'):
        TrackerSettings(iou_threshold=float('nan'))


def test_periodic_regrounding(trackers):
    tracker = trackers(lost_after=0, reground_interval=4)
    tracker.add_target(scene(0), 'the red square')
    grounded = [tracker.targets[0].grounded]
    for i in range(1, 10):
        tracker.track(scene(i))
        grounded.append(tracker.targets[0].grounded)
    assert grounded == ['added', None, None, None, 'interval', None, None, None, 'interval', None]
    assert tracker.counters.regrounded == 2


def test_a_frame_of_another_size_regrounds_every_target(trackers):
    tracker = trackers(lost_after=0)
    tracker.add_targets(scene(0), ['the red square', 'the blue disc'])
    tracker.track(scene(1))
    bigger = scene(2, (96, 160))
    results = tracker.track_targets(bigger)
    assert [r.status.grounded for r in results] == ['frame_size', 'frame_size']
    assert all(r.result.mask.shape == (96, 160) for r in results)
    fresh = trackers(lost_after=0)
    for r, alone in zip(results, fresh.add_targets(bigger, ['the red square', 'the blue disc'])):
        assert_same_results(r.result, alone.result, 'regrounded on the new size')
    assert [
        s.grounded for s in (r.status for r in tracker.track_targets(scene(3, (96, 160))))
    ] == [None, None]


def test_remove_and_reset_keep_ids_unique(trackers):
    tracker = trackers(lost_after=0)
    tracker.add_targets(scene(0), ['the red square', 'the blue disc'])
    tracker.remove_target(0)
    assert [t.target_id for t in tracker.targets] == [1]
    assert len(tracker.track(scene(1))) == 1
    with pytest.raises(TargetError, match='no target with id 0'):
        tracker.remove_target(0)
    tracker.reset()
    assert tracker.targets == [] and tracker.track(scene(2)) == []
    tracker.add_target(scene(3), 'the red square')
    assert [t.target_id for t in tracker.targets] == [2]
    assert tracker.counters.groundings == 3


def test_bad_input_raises_and_changes_nothing(trackers):
    tracker = trackers(lost_after=0)
    tracker.add_target(scene(0), 'the red square')
    before = tracker.targets
    with pytest.raises(InputImageError, match='uint8'):
        tracker.track(scene(1).astype(np.float32))
    with pytest.raises(InputImageError, match='empty'):
        tracker.track(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(PromptError, match='the prompt is empty'):
        tracker.track_targets(scene(1), add=['   '])
    with pytest.raises(PromptError, match=r"non-printable characters \['U\+0000', 'U\+0001'\]"):
        tracker.add_targets(scene(1), ['the mug', '\x00\x01'])
    assert tracker.targets == before and tracker.counters.frames == 0
    gray = tracker.track(scene(1)[:, :, 0])  # HxW gray is converted, as in segment mode
    assert gray[0].mask.shape == FRAME_SHAPE


def test_sam_vit_checkpoints_are_refused(tiny_checkpoint):
    with pytest.raises(VariantError, match='SAM2 checkpoint'):
        EvfSamTracker.from_pretrained(tiny_checkpoint('evf-sam'), device='cpu')
    predictor = EvfSamPredictor.from_pretrained(tiny_checkpoint('evf-sam'), device='cpu')
    with pytest.raises(VariantError, match='no memory'):
        EvfSamTracker(predictor)


def test_a_tracker_shares_its_predictors_model(trackers):
    tracker = trackers(lost_after=0)
    predictor = tracker.predictor
    before = predictor.predict(scene(0), 'the red square')
    tracker.add_target(scene(0), 'the red square')
    tracker.track(scene(1))
    after = predictor.predict(scene(0), 'the red square')  # segment mode is unchanged
    np.testing.assert_array_equal(before.logits, after.logits)


def test_grounding_on_one_thread_leaves_another_threads_tracking_alone(trackers):
    """Two trackers share one model. While one grounds (its text replaces the prompt
    encoder's output for its own calls), the other tracks a frame in between: the second
    tracker's answer must equal its answer without the first running. The interleaving is
    forced with events in a pre-hook on the mask decoder (waits on conditions, no sleeps).
    """
    import threading

    base = trackers(lost_after=0)
    follower = EvfSamTracker(base.predictor, TrackerSettings(lost_after=0, iou_threshold=0.0))
    follower.add_target(scene(0), 'the blue disc')
    alone = trackers(lost_after=0)
    alone.add_target(scene(0), 'the blue disc')
    expected = alone.track(scene(1))[0]

    grounder = EvfSamTracker(base.predictor, TrackerSettings(lost_after=0))
    inside, done, errors = threading.Event(), threading.Event(), []
    grounding_thread: list[int] = []

    def pause_grounding(module, args):
        if threading.get_ident() in grounding_thread and not done.is_set():
            inside.set()
            if not done.wait(timeout=60):
                errors.append('the tracking thread did not finish')

    def ground() -> None:
        grounding_thread.append(threading.get_ident())
        grounder.add_target(scene(1), 'the red square')

    decoder = base.predictor.model.visual_model.sam_mask_decoder
    handle = decoder.register_forward_pre_hook(pause_grounding)
    try:
        thread = threading.Thread(target=ground)
        thread.start()
        assert inside.wait(timeout=60), 'grounding never reached the mask decoder'
        got = follower.track(scene(1))[0]  # runs while the grounder is inside its frame
        done.set()
        thread.join(timeout=60)
    finally:
        handle.remove()
    assert not errors and not thread.is_alive()
    assert_same_results(got, expected, 'tracked while another tracker grounded')

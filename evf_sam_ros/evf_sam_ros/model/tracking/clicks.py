"""Correction clicks in track mode: the frames held for them, and a click applied to a target.

A person clicks the tracked object (positive) or what it should not cover (negative) on a
frame the tracker already processed. sam2's interactive video predictor takes such clicks on
an already tracked frame (``add_new_points_or_box``): point prompts plus that frame's previous
low-res logits as the mask input, the frame read through the memory of the frames before it,
and the result encoded into memory (from the binarised mask, as for points). Here:

- the clicked frame becomes one of the target's conditioning frames (sam2's
  ``add_all_frames_to_correct_as_cond=True``): every later frame attends to it, so the
  correction lasts while the target is tracked, until it is re-grounded from its text (lost,
  ``reground_interval``, a new frame size) or removed; at most ``click_memory`` clicked frames
  per target are kept (the oldest dropped);
- the frames processed after the clicked one are tracked again from the corrected memory, as
  sam2's ``propagate_in_video`` after a click would (their results were already returned; the
  memory is what changes), so the next frame reads no memory built before the correction;
- a click on the frame a target was grounded on is an initial conditioning frame (no memory):
  the clicks and the text's mask as the mask input replace the grounding.

Frames are held by the key the caller gave with them (the node: the image stamp), the last
``click_frames`` processed: their image encodings (the positional encodings shared between
frames of one size), and per target its memory before the frame (sharing tensors) and its
low-res logits. A click on another frame, with no frame held, on a target not segmented on
that frame, or on a target re-grounded after it, is refused (ClickError with a kind).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import torch

from evf_sam_ros.model.errors import ClickError
from evf_sam_ros.model.points import check_points, model_points, refuse_on_graphs
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.model.tracking.sam2_video import Sam2VideoRunner, StepOutput, VideoFrame
from evf_sam_ros.model.tracking.track_memory import TargetMemory
from evf_sam_ros.model.tracking.track_results import segmentation_results
from evf_sam_ros.model.tracking.track_state import TrackerSettings


@dataclass
class TargetOnFrame:
    """One target on one held frame: its memory before the frame (None: grounded on it) and
    the 1x1xSxS float32 low-res logits it got there (holes filled).
    """

    before: TargetMemory | None
    low_res: torch.Tensor


@dataclass
class HeldFrame:
    """One processed frame kept for clicks: the caller's key, the encoding, (H, W) in pixels,
    and the targets segmented on it by tracker id.
    """

    key: Hashable
    frame: VideoFrame
    size: tuple[int, int]
    targets: dict[int, TargetOnFrame]


def _describe(key: Hashable) -> str:
    return 'the newest frame' if key is None else f'frame {key!r}'


class HeldFrames:
    """The last processed frames, bounded by the caller's limit (``click_frames``)."""

    def __init__(self) -> None:
        self._frames: deque[HeldFrame] = deque()

    def __len__(self) -> int:
        return len(self._frames)

    def record(self, held: HeldFrame, limit: int) -> None:
        """Keep ``held`` as the newest frame and at most ``limit`` frames in all (0: none)."""
        if self._frames and self._frames[-1].frame.feat_sizes == held.frame.feat_sizes:
            # positional encodings depend on the sizes only: keep one copy, not one per frame
            shared = self._frames[-1].frame.vision_pos
            held.frame = VideoFrame(held.frame.vision_feats, shared, held.frame.feat_sizes)
        self._frames.append(held)
        while len(self._frames) > limit:
            self._frames.popleft()

    @staticmethod
    def before(
        targets: Sequence[Any], reasons: Sequence[str | None], click_frames: int
    ) -> list[TargetMemory | None]:
        """Snapshots of the tracked targets' memories before a frame (None for those grounded
        on it, and for all when click_frames is 0); targets: the tracker's, with ``memory``.
        """
        keep = click_frames > 0
        return [t.memory.snapshot() if keep and not r else None for t, r in zip(targets, reasons)]

    def keep(
        self,
        key: Hashable,
        frame: VideoFrame,
        size: tuple[int, int],
        targets: Sequence[Any],
        before: list[TargetMemory | None],
        outputs: dict[int, tuple[StepOutput, int, Any]],
        settings: TrackerSettings,
    ) -> None:
        """Hold a processed frame: targets (the tracker's, with ``state.target_id``) in the
        order of ``before`` and then the new ones; outputs: {id(target): (output, row, _)}.
        """
        entries = {}
        for t, memory in zip(targets, list(before) + [None] * (len(targets) - len(before))):
            out, row = outputs[id(t)][:2]
            entries[t.state.target_id] = TargetOnFrame(memory, out.low_res[row : row + 1])
        self.record(HeldFrame(key, frame, size, entries), settings.click_frames)

    def clear(self) -> None:
        """Forget every held frame."""
        self._frames.clear()

    def find(self, key: Hashable) -> tuple[HeldFrame, list[HeldFrame]]:
        """(the frame with ``key``, or the newest for None; the frames held after it).
        Raises ClickError(click_frame_not_held).
        """
        frames = list(self._frames)
        if not frames:
            raise ClickError(
                'click_frame_not_held', 'no frame held yet: clicks apply to processed frames'
            )
        if key is None:
            return frames[-1], []
        for i, held in enumerate(frames):
            if held.key == key:
                return held, frames[i + 1 :]
        raise ClickError(
            'click_frame_not_held',
            f'{_describe(key)} is not held (the last {len(frames)} processed frames are, '
            f'from {frames[0].key!r} to {frames[-1].key!r}): click on a newer frame or '
            'raise click_frames',
        )


@dataclass(frozen=True)
class Correction:
    """A click's effect on one target: its memory afterwards and the outputs (batch 1) on the
    clicked frame and on each held frame after it, oldest first; ``size`` = (H, W) of the
    clicked frame.
    """

    memory: TargetMemory
    outputs: list[StepOutput]
    size: tuple[int, int]


def correct_target(
    runner: Sam2VideoRunner,
    held: HeldFrames,
    settings: TrackerSettings,
    known_ids: Sequence[int],
    target_id: int,
    clicks: tuple[object, object],
    key: Hashable,
    window: int,
) -> Correction:
    """Apply clicks (point_coords Nx2 (x, y) pixels, point_labels N) on the frame ``key``
    (None: the newest held) to one of ``known_ids``; the held entries are updated so later
    clicks build on it. window: the memory window (track_memory.memory_window). Raises
    ClickError before anything changes.
    """
    if settings.click_frames <= 0:
        raise ClickError(
            'click_not_tracking', 'clicks are off (click_frames = 0): raise click_frames'
        )
    if target_id not in known_ids:
        raise ClickError(
            'click_unknown_target',
            f'no tracked target with id {target_id!r}; current ids: {list(known_ids)}',
        )
    clicked, later = held.find(key)
    entry = clicked.targets.get(target_id)
    if entry is None:
        raise ClickError(
            'click_frame_not_held',
            f'target {target_id} was not segmented on {_describe(key)} (added after it?)',
        )
    regrounded = [
        f for f in later if target_id in f.targets and f.targets[target_id].before is None
    ]
    if regrounded:
        raise ClickError(
            'click_frame_not_held',
            f'target {target_id} was re-grounded from its text on frame {regrounded[0].key!r}, '
            f'after {_describe(key)}: click on a frame since then',
        )
    coords, labels = check_points(*clicks, clicked.size)
    square = (runner.image_size, runner.image_size)
    device = entry.low_res.device
    points = model_points(coords, labels, clicked.size, square, device)
    out = runner.correct(clicked.frame, entry.before, points, entry.low_res)
    if entry.before is None:
        memory = TargetMemory(out.memories[0], window)
    else:
        memory = entry.before.snapshot()
        memory.add_click(out.memories[0], settings.click_memory)
    entry.low_res = out.low_res
    outputs = [out]
    for frame in later:
        step = frame.targets.get(target_id)
        if step is None:  # a frame that only grounded other targets
            continue
        step.before = memory.snapshot()
        out = runner.track(frame.frame, [memory])
        memory.append(out.memories[0])
        step.low_res = out.low_res
        outputs.append(out)
    return Correction(memory, outputs, clicked.size)


class ClickCorrection:
    """EvfSamTracker's correction clicks, kept out of tracker.py (a mixin: it uses the
    tracker's ``_lock``, ``_targets``, ``_runner``, ``_window``, ``_settings``, ``_held`` and
    ``_predictor``).
    """

    def correct(
        self,
        target_id: int,
        point_coords: Any,
        point_labels: Any,
        frame_key: Hashable = None,
    ) -> SegmentationResult:
        """Correct a target with clicks on a held frame (the one passed with ``frame_key``;
        None: the newest): point_coords Nx2 (x = column, y = row) in pixels of that frame,
        point_labels N (1 positive, 0 negative). The frame becomes a conditioning frame of the
        target's memory (see this module); returns the corrected result on that frame. Raises
        ClickError (``kind`` says why) before anything changes.
        """
        host: Any = self
        refuse_on_graphs(host._predictor)
        with host._lock, torch.inference_mode(), host._predictor.autocast():
            fix = correct_target(
                host._runner,
                host._held,
                host._settings,
                list(host._targets),
                target_id,
                (point_coords, point_labels),
                frame_key,
                host._window,
            )
            target = host._targets[target_id]
            target.memory = fix.memory
            target.state.lost, target.state.weak_frames = False, 0  # a person said: this one
            outputs = {id(target): (fix.outputs[0], 0, {})}
            device = host._predictor.device
            return segmentation_results([target], outputs, fix.size, {}, device)[0]

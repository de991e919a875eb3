"""Lost and found: the settings, per-target state and counters of track mode (no torch).

A frame is *weak* for a target when SAM2's object-score logit is not above
``object_score_threshold`` or the predicted IoU of the chosen mask is under
``iou_threshold``. After ``lost_after`` weak frames in a row the target is *lost*
(found = false); on its next frame it is re-grounded from its text (BEiT-3 on that frame, a
fresh memory), and again on every frame while it stays lost. With ``reground_interval`` > 0
a target is also re-grounded once it has been tracked that many frames since its last
grounding, and a frame of another size re-grounds it too (its memory was built on frames
squashed from another aspect ratio).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

#: Why a target was (re-)grounded on a frame.
GROUND_ADDED, GROUND_LOST, GROUND_INTERVAL, GROUND_SIZE = 'added', 'lost', 'interval', 'frame_size'


@dataclass(frozen=True)
class TrackerSettings:
    """Lost-and-found settings of EvfSamTracker (change them with ``update_settings``).

    lost_after: weak frames in a row before a target is lost (>= 1; 0 = never lost).
    reground_interval: re-ground every this many tracked frames (0 = only when lost).
    iou_threshold: least predicted IoU (0-1) of a strong frame.
    object_score_threshold: SAM2's object-score logit must be above this (0 = SAM2's own
        rule: at or below 0 it already reports no object and an empty mask).
    click_frames: processed frames held for correction clicks (their image encodings and
        each target's memory before them; 0 = clicks refused). See ``clicks``.
    click_memory: clicked frames kept per target as conditioning frames (>= 1; the oldest
        is dropped beyond it).
    """

    lost_after: int = 5
    reground_interval: int = 0
    iou_threshold: float = 0.5
    object_score_threshold: float = 0.0
    click_frames: int = 8
    click_memory: int = 4

    def __post_init__(self) -> None:
        for name in ('lost_after', 'reground_interval', 'click_frames', 'click_memory'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be an integer >= 0 (0 = off), got {value!r}')
        if self.click_memory < 1:
            raise ValueError(f'click_memory must be an integer >= 1, got {self.click_memory!r}')
        for name in ('iou_threshold', 'object_score_threshold'):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number, got {value!r}')

    def replace(self, **changes: object) -> 'TrackerSettings':
        """A copy with some fields changed (validated); unknown names raise ValueError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f'unknown tracker settings {sorted(unknown)}; known: '
                f'{[f.name for f in dataclasses.fields(self)]}'
            )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def is_weak(self, score: float, object_score: float) -> bool:
        """True when a frame's result is under the thresholds."""
        return not (object_score > self.object_score_threshold and score >= self.iou_threshold)


@dataclass(frozen=True)
class TargetStatus:
    """One target after a frame (a snapshot).

    found: not lost and the mask is not empty. lost: ``lost_after`` weak frames in a row
    (cleared by a strong frame). grounded: why this frame grounded the target from its text
    ('added', 'lost', 'interval', 'frame_size') or None when it was tracked with memory.
    frames_since_grounding: 0 on a grounding frame. weak_frames: weak frames in a row.
    lost_count / reground_count: times this target became lost / was re-grounded.
    """

    target_id: int
    prompt: str
    found: bool
    lost: bool
    grounded: str | None
    frames_since_grounding: int
    weak_frames: int
    lost_count: int
    reground_count: int


@dataclass(frozen=True)
class TrackerCounters:
    """Totals since the tracker was made (removed targets included), for /diagnostics.

    frames: frames processed with at least one target; groundings: targets added;
    lost: times a target became lost; regrounded: re-groundings (any reason).
    """

    frames: int = 0
    groundings: int = 0
    lost: int = 0
    regrounded: int = 0


class TargetState:
    """Mutable lost-and-found state of one target."""

    def __init__(self, target_id: int, prompt: str):
        self.target_id, self.prompt = target_id, prompt
        self.lost = False
        self.weak_frames = 0
        self.lost_count = 0
        self.reground_count = 0
        self.frames_since_grounding = 0
        self.frame_size: tuple[int, int] | None = None

    def ground_reason(self, settings: TrackerSettings, frame_size: tuple[int, int]) -> str | None:
        """Why this target must be re-grounded on a frame of ``frame_size``, or None."""
        if self.lost:
            return GROUND_LOST
        if frame_size != self.frame_size:
            return GROUND_SIZE
        interval = settings.reground_interval
        if interval and self.frames_since_grounding + 1 >= interval:
            return GROUND_INTERVAL
        return None

    def record(
        self,
        settings: TrackerSettings,
        grounded: str | None,
        score: float,
        object_score: float,
        area: int,
        frame_size: tuple[int, int],
    ) -> tuple[bool, bool]:
        """Update after a frame; return (found, became_lost)."""
        if grounded == GROUND_ADDED:
            self.frames_since_grounding = 0
        elif grounded is not None:
            self.frames_since_grounding = 0
            self.reground_count += 1
        else:
            self.frames_since_grounding += 1
        self.frame_size = frame_size
        became_lost = False
        if settings.is_weak(score, object_score):
            self.weak_frames += 1
            if settings.lost_after and self.weak_frames >= settings.lost_after and not self.lost:
                self.lost, became_lost = True, True
                self.lost_count += 1
        else:
            self.weak_frames, self.lost = 0, False
        return (not self.lost and area > 0), became_lost

    def status(self, found: bool, grounded: str | None) -> TargetStatus:
        """Snapshot after the frame just recorded."""
        return TargetStatus(
            self.target_id,
            self.prompt,
            found,
            self.lost,
            grounded,
            self.frames_since_grounding,
            self.weak_frames,
            self.lost_count,
            self.reground_count,
        )

"""Track mode for the frame pipeline: the targets are followed across frames by an
EvfSamTracker (SAM2 memory, EVF-SAM2's video mode); one-shot targets (~/segment, find_target
goals) are grounded on the frame in image mode by the same model.

A target is grounded from its text on the first frame it is segmented on, then tracked; the
tracker re-grounds it when lost, on a new frame size, or every ``reground_interval`` frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.model.errors import ClickError
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.pipeline.prompts import NamedTarget


@dataclass(frozen=True)
class Tracking:
    """How a tracked target's mask came about on a frame (Segmentation's track fields).

    grounded: the mask was grounded from the text on this frame (added, lost, interval, new
    frame size) rather than carried by memory. lost: ``lost_after`` weak frames in a row.
    lost_count / reground_count: times so far.
    """

    grounded: bool
    lost: bool
    lost_count: int
    reground_count: int


class TrackSegmenter:
    """A Segmenter (pipeline.frame) that tracks the node's targets: ids of ``targets`` map to
    the tracker's own; targets no longer asked for are removed from the tracker.
    """

    def __init__(self, tracker: Any):
        self.tracker = tracker
        self._ids: dict[int, int] = {}  # pipeline target id -> tracker id
        self._lock = threading.Lock()
        #: frame_key of the last frame tracked (what an unstamped click applies to)
        self.last_key: Hashable = None

    def keyed(self, frame_key: Hashable) -> Callable[[np.ndarray, Sequence[NamedTarget]], tuple]:
        """This segmenter for one frame named ``frame_key`` (the node: its stamp in ns), so
        that clicks can name the frame (``correct``).
        """
        return lambda rgb, targets: self(rgb, targets, frame_key)

    def __call__(
        self, rgb: np.ndarray, targets: Sequence[NamedTarget], frame_key: Hashable = None
    ) -> tuple:
        """(one SegmentationResult per target, the number of results the frame's shared
        stages are split over, one Tracking (None for one-shot targets) per target).
        """
        tracked = [t for t in targets if t.id >= 0]
        one_shot = list(dict.fromkeys(t.prompt for t in targets if t.id < 0))
        with self._lock:
            self._forget({t.id for t in tracked})
            new = [t for t in tracked if t.id not in self._ids]
            results = (
                self.tracker.track_targets(rgb, [t.prompt for t in new], frame_key)
                if tracked
                else []
            )
            self.last_key = frame_key if tracked else self.last_key
            for target, result in zip(new, results[len(results) - len(new) :]):
                self._ids[target.id] = result.status.target_id
            by_id = {r.status.target_id: r for r in results}
            grounded = (
                dict(zip(one_shot, self.tracker.predictor.predict_many(rgb, one_shot)))
                if one_shot
                else {}
            )
            out, tracking = [], []
            for t in targets:
                if t.id < 0:
                    out.append(grounded[t.prompt])
                    tracking.append(None)
                    continue
                done = by_id[self._ids[t.id]]
                s = done.status
                out.append(done.result)
                tracking.append(
                    Tracking(s.grounded is not None, s.lost, s.lost_count, s.reground_count)
                )
        return out, max(len(results), 1), tracking

    def correct(
        self, target_id: int, point_coords: Any, point_labels: Any, frame_key: Hashable
    ) -> SegmentationResult:
        """Clicks on a tracked target (its pipeline id) on the frame ``frame_key`` (None: the
        newest): EvfSamTracker.correct. Raises ClickError (``kind``) when refused.
        """
        with self._lock:
            tracker_id = self._ids.get(target_id)
            if tracker_id is None:
                raise ClickError(
                    'click_unknown_target',
                    f'no tracked target with id {target_id!r} (tracked: {sorted(self._ids)}; a '
                    'target is tracked from the first frame after it was added)',
                )
            return self.tracker.correct(tracker_id, point_coords, point_labels, frame_key)

    def _forget(self, wanted: set[int]) -> None:
        for target_id in [i for i in self._ids if i not in wanted]:
            self.tracker.remove_target(self._ids.pop(target_id))

    @property
    def counters(self) -> Any:
        """The tracker's totals (frames, groundings, lost, regrounded)."""
        return self.tracker.counters

    def update(self, **settings: Any) -> Any | None:
        """Change the tracker's lost-and-found settings (TrackerSettings fields)."""
        return self.tracker.update_settings(**settings)

"""State of one find_target goal, fed by the worker and read by the action's execute thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence


class GoalTracker:
    """Collects per-frame results for one prompt until enough hits, a timeout, a cancel or a
    failure (node deactivated).

    ``add`` is called by the inference worker; ``wait_feedback`` and ``verdict`` by the
    action's execute callback. ``best`` is the best found Segmentation (highest score), else
    the best candidate seen; ``best_grasps`` the evf_sam_msgs/GraspCandidate list of that
    frame. Segmentations are kept as given (the node strips their masks).
    """

    def __init__(
        self,
        prompt: str,
        timeout_s: float,
        min_hits: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.prompt, self.min_hits, self.timeout_s = prompt, max(1, int(min_hits)), timeout_s
        self._clock = clock
        self.deadline = clock() + timeout_s
        self.frames = self.hits = 0
        self.best: Any | None = None
        self.best_grasps: list[Any] = []
        self._best_key = (False, float('-inf'))
        self._pending: list[Any] = []
        self._failure = ''
        self._cond = threading.Condition()

    def add(self, segmentation: Any, grasps: Sequence[Any] = ()) -> None:
        """Record one processed frame's evf_sam_msgs/Segmentation for this prompt and its
        grasp candidates (evf_sam_msgs/GraspCandidate).
        """
        with self._cond:
            self.frames += 1
            self.hits += int(segmentation.found)
            key = (bool(segmentation.found), float(segmentation.score))
            if key > self._best_key:
                self._best_key, self.best = key, segmentation
                self.best_grasps = list(grasps)
            self._pending.append(segmentation)
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """End the goal with ``reason`` (aborted), waking the execute loop at once."""
        with self._cond:
            self._failure = reason
            self._cond.notify_all()

    def wait_feedback(self, timeout: float) -> list[Any]:
        """Segmentations added since the last call, waiting up to ``timeout`` s for one."""
        with self._cond:
            if not self._pending and not self._failure:
                self._cond.wait(timeout)
            pending, self._pending = self._pending, []
            return pending

    def verdict(self, cancel_requested: bool, node_active: bool) -> tuple[str, str] | None:
        """('succeeded' | 'canceled' | 'aborted', message) once the goal is over, else None."""
        if self.hits >= self.min_hits:
            return 'succeeded', f'found in {self.hits} of {self.frames} frames'
        if cancel_requested:
            return 'canceled', 'canceled'
        done = f'({self.frames} frames processed)'
        if self._failure or not node_active:
            return 'aborted', f'{self._failure or "node deactivated"} {done}'
        if self._clock() >= self.deadline:
            return 'aborted', f'not found within {self.timeout_s:.1f} s {done}'
        return None

    @property
    def best_score(self) -> float:
        """Score of ``best`` (-inf before any frame)."""
        return self._best_key[1]

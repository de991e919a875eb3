"""State of one find_target goal, fed by the worker and read by the action's execute thread."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional


class GoalTracker:
    """Collects per-frame results for one prompt until enough hits, a timeout or a cancel.

    ``add`` is called by the inference worker; ``wait_feedback`` by the action's execute
    callback. ``best`` is the best found Segmentation (highest score), else the best
    candidate seen.
    """

    def __init__(self, prompt: str, timeout_s: float, min_hits: int):
        self.prompt, self.min_hits = prompt, max(1, int(min_hits))
        self.deadline = time.monotonic() + timeout_s
        self.frames = self.hits = 0
        self.best: Optional[Any] = None
        self._best_key = (False, float("-inf"))
        self._pending: list[Any] = []
        self._cond = threading.Condition()

    def add(self, segmentation: Any) -> None:
        """Record one processed frame's evf_sam_msgs/Segmentation for this prompt."""
        with self._cond:
            self.frames += 1
            self.hits += int(segmentation.found)
            key = (bool(segmentation.found), float(segmentation.score))
            if key > self._best_key:
                self._best_key, self.best = key, segmentation
            self._pending.append(segmentation)
            self._cond.notify_all()

    @property
    def succeeded(self) -> bool:
        return self.hits >= self.min_hits

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def wait_feedback(self, timeout: float) -> list[Any]:
        """Segmentations added since the last call, waiting up to ``timeout`` s for one."""
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            pending, self._pending = self._pending, []
            return pending

    @property
    def best_score(self) -> float:
        return self._best_key[1]

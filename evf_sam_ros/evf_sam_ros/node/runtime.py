"""Thread-safe building blocks of the node, free of ROS: newest-frame slot, statistics,
throttled warnings. Each is used from subscription callbacks and the inference worker.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Deque, Generic, TypeVar

from evf_sam_ros.pipeline.stats import percentile

T = TypeVar('T')


class LatestSlot(Generic[T]):
    """Holds only the newest item; an item replaced before it was taken counts as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; return True if it replaced one that was never taken."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self.received += 1
            self.dropped += int(replaced)
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float) -> T | None:
        """The newest item (removing it), waiting up to ``timeout`` s; None if none came."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        """Drop the waiting item, if any (the counters stay)."""
        with self._cond:
            self._item = None


class LatencyStats:
    """Last ``window`` samples (ms) with percentiles; thread-safe."""

    def __init__(self, window: int = 200) -> None:
        self._samples: Deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        """Add one sample in ms; beyond ``window`` samples the oldest is dropped."""
        with self._lock:
            self._samples.append(float(value_ms))

    def percentile(self, q: float) -> float:
        """q-th percentile (0-100) of the window, NaN when empty (``stats.percentile``)."""
        with self._lock:
            data = list(self._samples)
        return percentile(data, q)

    def __len__(self) -> int:
        return len(self._samples)


class RateMeter:
    """Events per second over the last ``window_s`` seconds (monotonic clock)."""

    def __init__(self, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._times: Deque[float] = collections.deque()
        self._window, self._clock = window_s, clock
        self._lock = threading.Lock()

    def tick(self) -> None:
        """Count one event now."""
        with self._lock:
            self._times.append(self._clock())
            self._trim()

    def rate(self) -> float:
        """Events/s over the window: (n - 1) / span of the n recent events; 0.0 for n < 2."""
        with self._lock:
            self._trim()
            if len(self._times) < 2:
                return 0.0
            span = self._clock() - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self) -> None:
        cutoff = self._clock() - self._window
        while self._times and self._times[0] < cutoff:
            self._times.popleft()


class ThrottledWarnings:
    """Counts problems by kind and logs each kind at most once per ``period_s``.

    The message logged after a quiet period says how many of that kind were suppressed,
    so nothing goes unreported; ``counts`` feeds the diagnostics.
    """

    def __init__(
        self,
        log: Callable[[str], None],
        period_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._period, self._clock = log, period_s, clock
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter = collections.Counter()
        self.counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def count(self, kind: str) -> None:
        """Count one ``kind`` problem that was logged elsewhere (not throttled here)."""
        with self._lock:
            self.counts[kind] += 1

    def warn(self, kind: str, message: str) -> bool:
        """Count one ``kind`` problem; log ``message`` unless throttled. True if logged."""
        with self._lock:
            self.counts[kind] += 1
            now = self._clock()
            if kind in self._last and now - self._last[kind] < self._period:
                self._suppressed[kind] += 1
                return False
            self._last[kind] = now
            extra = self._suppressed.pop(kind, 0)
        suffix = f' ({extra} more like this since the last report)' if extra else ''
        self._log(f'{message}{suffix}')
        return True

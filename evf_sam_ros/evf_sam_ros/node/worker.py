"""The inference thread: one-shot requests first, otherwise the newest frame (no rclpy)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from evf_sam_ros.node.runtime import LatestSlot
from evf_sam_ros.pipeline import SourceImage


class InferenceWorker:
    """Runs ``handle_frame`` on the newest frame and queued requests on its own thread.

    Subscription callbacks only ``put`` frames into ``frames``; a frame replaced before the
    worker took it is dropped (counted by the slot), so the output lags the input by at most
    one inference. ``max_rate`` (Hz, 0 = unlimited) spaces frame processing; requests are
    never delayed by it. ``on_error`` receives exceptions from the handlers: the thread
    carries on with the next frame.
    """

    def __init__(
        self,
        frames: LatestSlot[SourceImage],
        handle_frame: Callable[[SourceImage], None],
        on_error: Callable[[str, BaseException], None],
        max_rate: Callable[[], float] = lambda: 0.0,
        poll_s: float = 0.02,
    ):
        self._frames, self._handle_frame, self._on_error = frames, handle_frame, on_error
        self._max_rate, self._poll = max_rate, poll_s
        self._requests: 'queue.Queue[Callable[[], None]]' = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_start = 0.0

    def start(self) -> None:
        """Start the inference thread (a daemon named evf_sam_inference)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='evf_sam_inference', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to stop after its current job; True if it ended in time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
            self._thread = None if not alive else self._thread
            return not alive
        return True

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the worker thread before the next frame."""
        self._requests.put(job)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._requests.get_nowait()
            except queue.Empty:
                job = self._next_frame_job()
            if job is not None:
                self._call(job)

    def _next_frame_job(self) -> Callable[[], None] | None:
        rate = self._max_rate()
        wait = self._last_start + 1.0 / rate - time.monotonic() if rate > 0 else 0.0
        if wait > 0:
            time.sleep(min(wait, self._poll))
            return None
        frame = self._frames.take(self._poll)
        if frame is None:
            return None
        self._last_start = time.monotonic()
        return lambda: self._handle_frame(frame)

    def _call(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # reported, never swallowed: the node logs and counts it
            self._on_error('worker', exc)

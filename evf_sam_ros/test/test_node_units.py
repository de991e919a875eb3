"""The node's ROS-free parts: newest-frame slot, worker, statistics, throttling, depth waits."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from evf_sam_ros.node.runtime import LatencyStats, LatestSlot, RateMeter, ThrottledWarnings
from evf_sam_ros.node.worker import InferenceWorker
from evf_sam_ros.pipeline import BufferedDepth, StampedBuffer


def _header(sec: int, frame: str = 'cam'):
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=0), frame_id=frame)


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take(0.01) == 3 and slot.take(0.01) is None
    assert (slot.received, slot.dropped) == (3, 2)


def test_worker_processes_newest_frames_and_requests_first():
    slot: LatestSlot[int] = LatestSlot()
    seen, errors = [], []
    gate, entered = threading.Event(), threading.Event()

    def handle(frame):
        entered.set()
        gate.wait(2)  # a slow model: frames pile up meanwhile
        seen.append(frame)

    worker = InferenceWorker(slot, handle, lambda where, exc: errors.append(exc))
    worker.start()
    slot.put(1)
    assert entered.wait(5)  # the worker is inside handle(1) now
    for i in range(2, 10):
        slot.put(i)
    worker.submit(lambda: seen.append('request'))
    gate.set()
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop()
    assert seen == [1, 'request', 9] and slot.dropped == 7 and not errors


def test_worker_survives_a_failing_frame():
    slot: LatestSlot[int] = LatestSlot()
    errors, seen = [], []

    def handle(frame):
        if frame == 1:
            raise RuntimeError('CUDA out of memory')
        seen.append(frame)

    worker = InferenceWorker(slot, handle, lambda where, exc: errors.append(str(exc)))
    worker.start()
    slot.put(1)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    slot.put(2)
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert errors == ['CUDA out of memory'] and seen == [2]


def test_max_rate_spaces_frames():
    slot: LatestSlot[int] = LatestSlot()
    times = []
    worker = InferenceWorker(
        slot, lambda f: times.append(time.monotonic()), lambda *a: None, max_rate=lambda: 5.0
    )
    worker.start()
    end = time.monotonic() + 1.2
    i = 0
    while time.monotonic() < end:
        slot.put(i)
        i += 1
        time.sleep(0.01)
    worker.stop()
    gaps = np.diff(times)
    assert len(times) <= 8 and gaps.min() >= 0.19


def test_statistics_and_throttled_warnings():
    stats = LatencyStats(window=100)
    for v in range(1, 101):
        stats.add(v)
    # one definition everywhere (stats.percentile): linear between the nearest ranks
    assert stats.percentile(50) == 50.5 and stats.percentile(95) == 95.05
    now = [0.0]
    meter = RateMeter(window_s=5.0, clock=lambda: now[0])
    for _ in range(11):
        meter.tick()
        now[0] += 0.1
    assert abs(meter.rate() - 10 / 1.1) < 1e-6
    logged = []
    warn = ThrottledWarnings(logged.append, period_s=5.0, clock=lambda: now[0])
    for _ in range(4):
        warn.warn('depth_size', 'depth is 32x24')
    now[0] += 6.0
    warn.warn('depth_size', 'depth is 32x24')
    assert logged == ['depth is 32x24', 'depth is 32x24 (3 more like this since the last report)']
    assert warn.counts['depth_size'] == 5


def test_depth_that_arrives_after_the_image_is_waited_for():
    buffer = StampedBuffer()
    old = SimpleNamespace(
        header=_header(1),
        height=4,
        width=6,
        encoding='32FC1',
        is_bigendian=0,
        step=24,
        data=np.full((4, 6), 1.5, np.float32).tobytes(),
    )
    buffer.add(old)  # the depth topic exists, but its image for stamp 2 comes later
    late = SimpleNamespace(**{**vars(old), 'header': _header(2)})
    threading.Timer(0.1, buffer.add, args=(late,)).start()
    info = SimpleNamespace(k=[5.0, 0, 3.0, 0, 5.0, 2.0, 0, 0, 1.0], width=6, height=4)
    start = time.monotonic()
    got = BufferedDepth(buffer, lambda: info, 0.01, 2.0, False).match(_header(2), (4, 6))
    assert 0.05 < time.monotonic() - start < 1.5
    assert got.problems == [] and np.allclose(got.depth_m, 1.5)
    start = time.monotonic()
    never = BufferedDepth(StampedBuffer(), lambda: info, 0.01, 2.0, False).match(
        _header(9), (4, 6)
    )
    assert [k for k, _ in never.problems] == ['depth_missing']  # no depth topic: no waiting
    assert time.monotonic() - start < 0.5
    first = StampedBuffer()  # a publisher exists but its first image is late: wait for it
    threading.Timer(0.1, first.add, args=(late,)).start()
    got = BufferedDepth(first, lambda: info, 0.01, 2.0, True).match(_header(2), (4, 6))
    assert got.problems == [] and np.allclose(got.depth_m, 1.5)


def test_no_wait_once_the_depth_stream_has_passed_the_image():
    """A depth image that is missing (the stream already delivered later stamps) is not
    waited for: waiting would only delay the result.
    """
    buffer = StampedBuffer()
    for sec in (1, 3):
        buffer.add(
            SimpleNamespace(
                header=_header(sec),
                height=4,
                width=6,
                encoding='32FC1',
                is_bigendian=0,
                step=24,
                data=np.full((4, 6), 1.5, np.float32).tobytes(),
            )
        )
    info = SimpleNamespace(k=[5.0, 0, 3.0, 0, 5.0, 2.0, 0, 0, 1.0], width=6, height=4)
    start = time.monotonic()
    got = BufferedDepth(buffer, lambda: info, 0.01, 5.0, True).match(_header(2), (4, 6))
    assert time.monotonic() - start < 1.0
    assert [k for k, _ in got.problems] == ['depth_stamp_gap'] and got.depth_m is None

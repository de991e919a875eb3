"""Turning the node's input messages into model inputs, with every problem named (no rclpy).

Problems are (kind, message) pairs: the node counts them by kind and logs them throttled.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Optional

import numpy as np

from ..conversions import (ConversionError, compressed_imgmsg_to_rgb, depth_imgmsg_to_metres, imgmsg_to_rgb,
                           stamp_ns)
from ..geometry import CameraIntrinsics

Problem = tuple[str, str]


@dataclass
class Frame:
    """A received image message, not yet decoded (decoding happens on the worker)."""

    msg: Any
    compressed: bool
    received_monotonic: float

    @property
    def header(self) -> Any:
        return self.msg.header

    def rgb(self) -> np.ndarray:
        """HxWx3 uint8 RGB. Raises ConversionError for bad encodings, sizes or data."""
        if self.compressed:
            return compressed_imgmsg_to_rgb(self.msg)
        return imgmsg_to_rgb(self.msg)


class StampedBuffer:
    """The last few messages of a topic, looked up by nearest header stamp; thread-safe."""

    def __init__(self, size: int = 10) -> None:
        self._items: Deque[Any] = collections.deque(maxlen=size)
        self._lock = threading.Condition()

    def add(self, msg: Any) -> None:
        with self._lock:
            self._items.append(msg)
            self._lock.notify_all()

    def wait_nearest(self, stamp: int, max_gap_s: float, timeout_s: float, expected: bool = False
                     ) -> tuple[Optional[Any], float]:
        """Like ``nearest``, but wait up to ``timeout_s`` for a message within ``max_gap_s``
        (topics published together can arrive in either order). Waits only when the topic
        has delivered before or ``expected`` says a publisher is there."""
        deadline = time.monotonic() + timeout_s
        msg, gap = self.nearest(stamp)
        while (msg is not None or expected) and gap > max_gap_s and time.monotonic() < deadline:
            with self._lock:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            msg, gap = self.nearest(stamp)
        return msg, gap

    def nearest(self, stamp: int) -> tuple[Optional[Any], float]:
        """(message with the nearest stamp, |gap| in seconds); (None, inf) when empty."""
        with self._lock:
            items = list(self._items)
        if not items:
            return None, float("inf")
        best = min(items, key=lambda m: abs(stamp_ns(m.header) - stamp))
        return best, abs(stamp_ns(best.header) - stamp) / 1e9

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class DepthInput:
    """Depth aligned to one image, or the problems that prevented it."""

    depth_m: Optional[np.ndarray] = None
    intrinsics: Optional[CameraIntrinsics] = None
    problems: list[Problem] = field(default_factory=list)


def match_depth(header: Any, shape: tuple[int, int], depth: StampedBuffer,
                camera_info: Callable[[], Optional[Any]], max_stamp_diff: float, wait_s: float = 0.0,
                depth_expected: bool = False) -> DepthInput:
    """Depth (HxW float32 metres) and intrinsics for an image with this header and HxW shape,
    waiting up to ``wait_s`` for a depth image within ``max_stamp_diff`` seconds (see
    StampedBuffer.wait_nearest). ``camera_info`` returns the newest CameraInfo (read after
    the wait, so one that arrived meanwhile counts)."""
    out = DepthInput()
    msg, gap = depth.wait_nearest(stamp_ns(header), max_stamp_diff, wait_s, depth_expected)
    if msg is None:
        out.problems.append(("no_depth", "no depth image received yet: no target_point"))
    elif gap > max_stamp_diff:
        out.problems.append(("depth_stamp", f"nearest depth is {gap:.3f} s from the image "
                                            f"(depth_max_stamp_diff {max_stamp_diff} s): no target_point"))
    elif msg.header.frame_id != header.frame_id:
        out.problems.append(("depth_frame", f"depth frame '{msg.header.frame_id}' differs from the image "
                                            f"frame '{header.frame_id}': depth must be aligned to the "
                                            "colour image (e.g. aligned_depth_to_color)"))
    elif (msg.height, msg.width) != shape:
        out.problems.append(("depth_size", f"depth is {msg.width}x{msg.height} but the image is "
                                           f"{shape[1]}x{shape[0]}: depth must be aligned to the colour image"))
    else:
        try:
            out.depth_m = depth_imgmsg_to_metres(msg)
        except ConversionError as exc:
            out.problems.append(("depth_encoding", f"depth image rejected: {exc}"))
    if out.depth_m is not None:
        out.intrinsics = _intrinsics(camera_info(), shape, out.problems)
        if out.intrinsics is None:
            out.depth_m = None
    return out


def _intrinsics(camera_info: Optional[Any], shape: tuple[int, int], problems: list[Problem]
                ) -> Optional[CameraIntrinsics]:
    if camera_info is None:
        problems.append(("no_camera_info", "no camera_info received yet: no target_point"))
        return None
    try:
        intr = CameraIntrinsics.from_camera_info(camera_info)
    except ValueError as exc:
        problems.append(("camera_info_invalid", f"camera_info rejected: {exc}"))
        return None
    if (intr.height, intr.width) != shape:
        problems.append(("camera_info_scaled", f"camera_info is for {intr.width}x{intr.height}, the image is "
                                               f"{shape[1]}x{shape[0]}: intrinsics scaled"))
        intr = intr.scaled(shape[1], shape[0])
    return intr

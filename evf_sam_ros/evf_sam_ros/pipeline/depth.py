"""Depth and intrinsics for one colour image: choose the depth image, check it, read it.

The node picks the depth image from a ``StampedBuffer`` (waiting briefly for one that arrives
after its colour image); the replay picks it from the bag's messages around the image. Both
then call ``depth_input``, so the checks, the units and the problem kinds are the same.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Iterable, Protocol

import numpy as np

from evf_sam_ros.codecs.depth import depth_imgmsg_to_metres
from evf_sam_ros.codecs.image import ConversionError, stamp_ns
from evf_sam_ros.pipeline.problems import Problem, conversion_problem
from evf_sam_ros.target3d.geometry import CameraIntrinsics


@dataclass
class DepthInput:
    """Depth aligned to one image, or the problems that prevented it.

    depth_m: HxW float32 metres (NaN = no reading), pixel-aligned with the image; None when
    unusable. intrinsics: for the image's size; None without a usable camera_info (then
    depth_m is None too: depth without intrinsics gives no 3D point).
    """

    depth_m: np.ndarray | None = None
    intrinsics: CameraIntrinsics | None = None
    problems: list[Problem] = field(default_factory=list)


class DepthSource(Protocol):
    """Gives the depth of an image once its model pass is done (the node may wait for it)."""

    def match(self, header: Any, shape: tuple[int, int]) -> DepthInput:
        """Depth and intrinsics for the image with ``header`` and HxW ``shape``."""


def nearest_by_stamp(messages: Iterable[Any], stamp: int) -> tuple[Any | None, float]:
    """(message whose header stamp is nearest to ``stamp`` ns, |gap| in seconds);
    (None, inf) when there are none.
    """
    best = min(messages, key=lambda m: abs(stamp_ns(m.header) - stamp), default=None)
    if best is None:
        return None, float('inf')
    return best, abs(stamp_ns(best.header) - stamp) / 1e9


def depth_input(
    header: Any,
    shape: tuple[int, int],
    depth_msg: Any | None,
    gap_s: float,
    camera_info: Any | None,
    max_stamp_diff: float,
) -> DepthInput:
    """Check the chosen depth image (``gap_s`` seconds from the image's stamp) against the
    image (``header``, HxW ``shape``), convert it to metres and add intrinsics from
    ``camera_info`` (scaled, with a problem, when calibrated at another size).
    """
    out = DepthInput()
    if depth_msg is None:
        out.problems.append(Problem('depth_missing', 'no depth image received: no target_point'))
    elif gap_s > max_stamp_diff:
        out.problems.append(
            Problem(
                'depth_stamp_gap',
                f'nearest depth is {gap_s:.3f} s from the '
                f'image (depth_max_stamp_diff {max_stamp_diff} s): no '
                'target_point',
            )
        )
    elif depth_msg.header.frame_id != header.frame_id:
        out.problems.append(
            Problem(
                'depth_frame_mismatch',
                f'depth frame '
                f"'{depth_msg.header.frame_id}' differs from the image frame "
                f"'{header.frame_id}': depth must be aligned to the colour "
                'image (e.g. aligned_depth_to_color)',
            )
        )
    else:
        out.depth_m = _decoded(depth_msg, shape, out.problems)
    if out.depth_m is not None:
        out.intrinsics = intrinsics_for(camera_info, shape, out.problems)
        if out.intrinsics is None:
            out.depth_m = None
    return out


def _decoded(depth_msg: Any, shape: tuple[int, int], problems: list[Problem]) -> np.ndarray | None:
    """HxW float32 metres of a depth Image or compressedDepth CompressedImage (which has no
    size fields: its size is known once decoded), or None with the problem.
    """
    try:
        depth = depth_imgmsg_to_metres(depth_msg)
    except ConversionError as exc:
        problems.append(conversion_problem(exc, 'depth image', prefix='depth_'))
        return None
    if depth.shape != tuple(shape):
        problems.append(
            Problem(
                'depth_size_mismatch',
                f'depth is {depth.shape[1]}x'
                f'{depth.shape[0]} but the image is {shape[1]}x{shape[0]}: '
                'depth must be aligned to the colour image',
            )
        )
        return None
    return depth


def intrinsics_for(
    camera_info: Any | None, shape: tuple[int, int], problems: list[Problem]
) -> CameraIntrinsics | None:
    """Intrinsics of a sensor_msgs/CameraInfo for an HxW image; None (with a problem) when
    missing or unusable; scaled (with a problem) when calibrated at another size.
    """
    if camera_info is None:
        problems.append(Problem('camera_info_missing', 'no camera_info received: no target_point'))
        return None
    try:
        intr = CameraIntrinsics.from_camera_info(camera_info)
    except ValueError as exc:
        problems.append(Problem('camera_info_invalid', f'camera_info rejected: {exc}'))
        return None
    if (intr.height, intr.width) != tuple(shape):
        problems.append(
            Problem(
                'camera_info_scaled',
                f'camera_info is for {intr.width}x'
                f'{intr.height}, the image is {shape[1]}x{shape[0]}: '
                'intrinsics scaled',
            )
        )
        intr = intr.scaled(shape[1], shape[0])
    return intr


class StampedBuffer:
    """The last ``size`` messages of a topic, looked up by nearest header stamp; thread-safe."""

    def __init__(self, size: int = 10) -> None:
        self._items: Deque[Any] = collections.deque(maxlen=size)
        self._cond = threading.Condition()

    def add(self, msg: Any) -> None:
        """Store ``msg`` (the oldest one goes when full) and wake waiting lookups."""
        with self._cond:
            self._items.append(msg)
            self._cond.notify_all()

    def nearest(self, stamp: int) -> tuple[Any | None, float]:
        """(message with the nearest stamp, |gap| in seconds); (None, inf) when empty."""
        with self._cond:
            items = list(self._items)
        return nearest_by_stamp(items, stamp)

    def wait_nearest(
        self, stamp: int, max_gap_s: float, timeout_s: float, expected: bool = False
    ) -> tuple[Any | None, float]:
        """Like ``nearest``, but blocks up to ``timeout_s`` for a message within ``max_gap_s``
        (topics published together arrive in either order, and late under load).

        Waits only while the match may still come: the topic has delivered before or
        ``expected`` says a publisher is there, and no message stamped later than
        ``stamp + max_gap_s`` has arrived yet (once the stream has passed the image's stamp,
        a matching message is missing, not late, and waiting longer would not help).
        """
        deadline = time.monotonic() + timeout_s
        limit = stamp + int(max_gap_s * 1e9)
        with self._cond:
            while True:
                msg, gap = nearest_by_stamp(self._items, stamp)
                passed = any(stamp_ns(m.header) > limit for m in self._items)
                left = deadline - time.monotonic()
                if gap <= max_gap_s or passed or left <= 0 or (msg is None and not expected):
                    return msg, gap
                self._cond.wait(left)

    def clear(self) -> None:
        """Forget every message."""
        with self._cond:
            self._items.clear()


@dataclass
class BufferedDepth:
    """The node's DepthSource: depth from a StampedBuffer, camera_info read after the wait
    (so one that arrived meanwhile counts).
    """

    buffer: StampedBuffer
    camera_info: Callable[[], Any | None]
    max_stamp_diff: float
    wait_s: float
    expected: bool

    def match(self, header: Any, shape: tuple[int, int]) -> DepthInput:
        """Wait up to ``wait_s`` for a depth image within ``max_stamp_diff``, then check it."""
        msg, gap = self.buffer.wait_nearest(
            stamp_ns(header), self.max_stamp_diff, self.wait_s, self.expected
        )
        return depth_input(header, shape, msg, gap, self.camera_info(), self.max_stamp_diff)


@dataclass
class ChosenDepth:
    """The replay's DepthSource: the depth image and camera_info already chosen from the bag."""

    msg: Any | None
    gap_s: float
    camera_info: Any | None
    max_stamp_diff: float

    def match(self, header: Any, shape: tuple[int, int]) -> DepthInput:
        """Check the chosen depth image against the image."""
        return depth_input(
            header, shape, self.msg, self.gap_s, self.camera_info, self.max_stamp_diff
        )

"""Frames from a bag: each colour image with the messages that belong to it, not yet decoded.

Messages are read once, in bag-time order.  An image waits in a short window (``window_s``
of bag time) for the messages that belong to it:

* depth: the depth image with the nearest header stamp (checked later by the shared
  pipeline against ``sync_tolerance_s``, exactly as the node checks it);
* camera_info: the one stamped like the image (drivers publish it with each image), else the
  newest one logged before the image;
* commands: the commands received since the previous image (bag time), in order;
* ground truth: the mask whose header stamp equals the image's (replay only: scoring).

Decoding, depth checks and every per-frame problem are the shared pipeline's
(``evf_sam_ros.pipeline``); this module only assembles. Problems found here (a message that
cannot be deserialised, ground truth that does not fit) are ``Problem``s of the frame.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from evf_sam_ros.codecs.image import ConversionError, imgmsg_to_array, stamp_ns
from evf_sam_ros.pipeline import (
    ChosenDepth,
    Problem,
    SourceImage,
    conversion_problem,
    nearest_by_stamp,
)
from evf_sam_ros.replay.bagio import COMPRESSED_IMAGE, deserialize, read_messages
from evf_sam_ros.replay.errors import BagReadError, MessageError
from evf_sam_ros.replay.topics import TopicSelection


@dataclass
class BagFrame:
    """One colour image of the bag and what belongs to it.

    index: 0-based position among the image topic's messages. log_time_ns: bag time of the
    image message. stamp_ns, frame_id: its header's. image: the message, not decoded (None
    when it could not be deserialised, see problems). depth: the depth image and camera_info
    chosen for it (None when the bag has no depth topic). gt_mask: HxW bool ground truth, or
    None. commands: command texts received since the previous image, in bag order.
    command: the newest command received before this image ('' = none yet).
    problems: what was wrong with this frame (the pipeline adds its own).
    """

    index: int
    log_time_ns: int
    stamp_ns: int
    frame_id: str
    image: SourceImage | None
    depth: ChosenDepth | None = None
    gt_mask: np.ndarray | None = None
    commands: tuple[str, ...] = ()
    command: str = ''
    problems: list[Problem] = field(default_factory=list)


@dataclass
class _Pending:
    index: int
    log_time_ns: int
    raw: bytes
    commands: tuple[str, ...]
    command: str
    camera_info: Any | None


class FrameReader:
    """Iterate the frames of an open bag (a rosbags Reader) for a topic selection.

    ``problems`` collects problems not tied to one frame (a message that cannot be
    deserialised, a read failure).
    """

    def __init__(
        self,
        reader: Any,
        topics: TopicSelection,
        max_frames: int | None = None,
        sync_tolerance_s: float = 0.05,
        window_s: float = 1.0,
        window: tuple[float, float | None] | None = None,
    ):
        """window: (start, duration or None) seconds of bag time from the bag's first message:
        only images logged in it are frames (None: the whole bag).
        """
        self.reader, self.topics, self.max_frames = reader, topics, max_frames
        self.window = window
        self.tolerance_s = sync_tolerance_s
        self.window_ns = max(int(window_s * 1e9), int(2 * sync_tolerance_s * 1e9))
        self.problems: list[Problem] = []
        self.images_seen = 0
        self._pending: collections.deque[_Pending] = collections.deque()
        # depth: (log time, msg); ground truth: stamp -> (log time, msg)
        self._depth: collections.deque[tuple[int, Any]] = collections.deque()
        self._gt: dict[int, tuple[int, Any]] = {}
        self._info: Any | None = None
        self._info_by_stamp: dict[int, tuple[int, Any]] = {}  # stamp -> (log time, msg)
        self._commands: list[str] = []
        self._command = ''

    def __iter__(self) -> Iterator[BagFrame]:
        roles = [t for t in self.topics.as_dict().values() if t]
        try:
            start, stop = self._window_ns()
            if start is not None:  # what was set before the window still holds in it
                before = [self.topics.command, self.topics.camera_info]
                for message in read_messages(self.reader, [t for t in before if t], None, start):
                    self._feed(*message)
            for topic, msgtype, log_ns, raw in read_messages(self.reader, roles, start, stop):
                yield from self._ready(log_ns)
                if self._feed(topic, msgtype, log_ns, raw):
                    break
        except BagReadError as exc:
            self.problems.append(Problem('bag_read_error', str(exc)))
        yield from self._ready(None)

    def _window_ns(self) -> tuple[int | None, int | None]:
        """(start, stop) log times (ns) of the window; (None, None) for the whole bag."""
        first = self.reader.first_time_ns() if self.window is not None else None
        if first is None:
            return None, None
        start_s, duration_s = self.window
        start = first + int(round(start_s * 1e9))
        return start, None if duration_s is None else start + int(round(duration_s * 1e9))

    def _done_reading(self, log_ns: int) -> bool:
        if self.max_frames is None or self.images_seen < self.max_frames:
            return False
        return not self._pending or log_ns > self._pending[-1].log_time_ns + self.window_ns

    def _feed(self, topic: str, msgtype: str, log_ns: int, raw: bytes) -> bool:
        """Take one message; True when reading can stop (max_frames reached and flushed)."""
        if self._done_reading(log_ns):
            return True
        if topic == self.topics.image:
            if self.max_frames is None or self.images_seen < self.max_frames:
                commands, self._commands = tuple(self._commands), []
                self._pending.append(
                    _Pending(self.images_seen, log_ns, raw, commands, self._command, self._info)
                )
                self.images_seen += 1
            return False
        try:
            msg = deserialize(raw, msgtype)
        except MessageError as exc:
            self.problems.append(Problem(exc.kind, f'{topic}: {exc}'))
            return False
        if topic == self.topics.command:
            self._commands.append(str(msg.data))
            self._command = str(msg.data)
        elif topic == self.topics.camera_info:
            self._info = msg
            self._info_by_stamp[stamp_ns(msg.header)] = (log_ns, msg)
        elif topic == self.topics.depth:
            self._depth.append((log_ns, msg))
        elif topic == self.topics.ground_truth:
            self._gt[stamp_ns(msg.header)] = (log_ns, msg)
        return False

    def _ready(self, log_ns: int | None) -> Iterator[BagFrame]:
        """Frames whose window closed before ``log_ns`` (all of them when None)."""
        while self._pending and (
            log_ns is None or log_ns > self._pending[0].log_time_ns + self.window_ns
        ):
            yield self._assemble(self._pending.popleft())
        horizon = self._pending[0].log_time_ns if self._pending else log_ns
        if horizon is not None:
            self._prune(horizon - self.window_ns)

    def _prune(self, before_ns: int) -> None:
        while self._depth and self._depth[0][0] < before_ns:
            self._depth.popleft()
        self._gt = {k: v for k, v in self._gt.items() if v[0] >= before_ns}
        self._info_by_stamp = {k: v for k, v in self._info_by_stamp.items() if v[0] >= before_ns}

    def _assemble(self, pending: _Pending) -> BagFrame:
        try:
            msg = deserialize(pending.raw, self.topics.image_type)
        except MessageError as exc:
            frame = BagFrame(
                pending.index,
                pending.log_time_ns,
                0,
                '',
                None,
                commands=pending.commands,
                command=pending.command,
            )
            frame.problems.append(Problem(exc.kind, f'image: {exc}'))
            return frame
        stamp = stamp_ns(msg.header)
        image = SourceImage(msg, self.topics.image_type == COMPRESSED_IMAGE)
        frame = BagFrame(
            pending.index,
            pending.log_time_ns,
            stamp,
            str(msg.header.frame_id),
            image,
            commands=pending.commands,
            command=pending.command,
        )
        if self.topics.depth is not None:
            depth_msg, gap = nearest_by_stamp((m for _, m in self._depth), stamp)
            info = self._info_by_stamp.get(stamp, (0, pending.camera_info))[1]
            frame.depth = ChosenDepth(depth_msg, gap, info, self.tolerance_s)
        self._attach_ground_truth(frame)
        return frame

    def _attach_ground_truth(self, frame: BagFrame) -> None:
        """The mask stamped like the image (its size is checked by the runner, against the
        decoded image).
        """
        if self.topics.ground_truth is None:
            return
        entry = self._gt.pop(frame.stamp_ns, None)
        if entry is None:
            frame.problems.append(
                Problem('ground_truth_missing', 'no ground-truth mask with this stamp')
            )
            return
        try:
            mask = imgmsg_to_array(entry[1], 'mono8') != 0
        except ConversionError as exc:
            frame.problems.append(conversion_problem(exc, 'ground truth', 'ground_truth_'))
            return
        frame.gt_mask = mask

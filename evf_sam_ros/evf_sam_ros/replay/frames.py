"""Frames from a bag: each colour image joined with its depth, intrinsics, prompt and ground truth.

Messages are read once, in bag-time order.  An image waits in a short window (``window_s``
of bag time) for the messages that belong to it:

* ground truth: the mask whose header stamp equals the image's;
* depth: the depth image with the nearest header stamp within ``sync_tolerance_s``;
* camera_info: the newest one received by the time the window closes;
* prompt: the newest command received before the image (bag time).

Problems with single messages become per-frame warnings ``(kind, detail)``; the frame is
kept (without the bad part) or skipped (``Frame.rgb is None``) and reading goes on.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import numpy as np

from ..conversions import (ConversionError, compressed_imgmsg_to_rgb, depth_imgmsg_to_metres,
                           imgmsg_to_array, imgmsg_to_rgb, stamp_ns)
from ..geometry import CameraIntrinsics
from .bagio import COMPRESSED_IMAGE, deserialize, read_messages
from .errors import BagReadError, MessageError
from .topics import TopicSelection

FrameWarning = tuple[str, str]  # (kind, detail)


@dataclass
class Frame:
    """One colour image of the bag and what belongs to it.

    index: 0-based position among the image topic's messages. log_time_ns: bag time of the
    image message. stamp_ns: its header stamp. rgb: HxWx3 uint8 RGB, None when the image was
    unusable (see warnings). depth_m: HxW float32 metres (NaN = invalid) aligned with rgb, or
    None. intrinsics: for rgb's size, or None. gt_mask: HxW bool, or None. prompts: the bag's
    active command (0 or 1 prompt). warnings: (kind, detail) pairs.
    """

    index: int
    log_time_ns: int
    stamp_ns: int
    frame_id: str
    rgb: Optional[np.ndarray]
    depth_m: Optional[np.ndarray] = None
    intrinsics: Optional[CameraIntrinsics] = None
    gt_mask: Optional[np.ndarray] = None
    prompts: tuple[str, ...] = ()
    warnings: list[FrameWarning] = field(default_factory=list)


@dataclass
class _Pending:
    index: int
    log_time_ns: int
    raw: bytes
    prompt: Optional[str]


def _conversion_kind(exc: ConversionError, prefix: str = '') -> str:
    """'unsupported_encoding' (an encoding this role cannot use) or 'bad_image' (malformed)."""
    text = str(exc)
    unsupported = any(s in text for s in ('unsupported', 'cannot convert', 'compressedDepth'))
    return prefix + ('unsupported_encoding' if unsupported else 'bad_image')


def _size(array: np.ndarray) -> str:
    return f'{array.shape[1]}x{array.shape[0]}'


def _decode_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """HxWx3 uint8 RGB of an Image or CompressedImage. Raises MessageError."""
    try:
        return compressed_imgmsg_to_rgb(msg) if msgtype == COMPRESSED_IMAGE else imgmsg_to_rgb(msg)
    except ConversionError as exc:
        raise MessageError(_conversion_kind(exc), f'image: {exc}') from exc


class FrameReader:
    """Iterate the frames of an open bag (a rosbags Reader) for a topic selection.

    ``warnings`` collects problems not tied to one frame (a bad command, a read failure).
    """

    def __init__(self, reader: Any, topics: TopicSelection, max_frames: Optional[int] = None,
                 sync_tolerance_s: float = 0.05, window_s: float = 1.0):
        self.reader, self.topics, self.max_frames = reader, topics, max_frames
        self.tolerance_ns = int(sync_tolerance_s * 1e9)
        self.window_ns = max(int(window_s * 1e9), 2 * self.tolerance_ns)
        self.warnings: list[FrameWarning] = []
        self.images_seen = 0
        self._pending: collections.deque[_Pending] = collections.deque()
        # depth: (log time, stamp, msg); ground truth: stamp -> (log time, msg)
        self._depth: collections.deque[tuple[int, int, Any]] = collections.deque()
        self._gt: dict[int, tuple[int, Any]] = {}
        self._info: Optional[Any] = None
        self._prompt: Optional[str] = None

    def __iter__(self) -> Iterator[Frame]:
        roles = self.topics.as_dict().values()
        try:
            for topic, msgtype, log_ns, raw in read_messages(self.reader, [t for t in roles if t]):
                yield from self._ready(log_ns)
                if self._feed(topic, msgtype, log_ns, raw):
                    break
        except BagReadError as exc:
            self.warnings.append(('bag_read_error', str(exc)))
        yield from self._ready(None)

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
                self._pending.append(_Pending(self.images_seen, log_ns, raw, self._prompt))
                self.images_seen += 1
            return False
        try:
            msg = deserialize(raw, msgtype)
        except MessageError as exc:
            self.warnings.append((exc.kind, f'{topic}: {exc}'))
            return False
        if topic == self.topics.command:
            self._set_prompt(str(msg.data))
        elif topic == self.topics.camera_info:
            self._info = msg
        elif topic == self.topics.depth:
            self._depth.append((log_ns, stamp_ns(msg.header), msg))
        elif topic == self.topics.ground_truth:
            self._gt[stamp_ns(msg.header)] = (log_ns, msg)
        return False

    def _set_prompt(self, text: str) -> None:
        text = text.strip()
        if not text:
            self.warnings.append(('bad_prompt', 'an empty command in the bag was ignored'))
            return
        self._prompt = text

    def _ready(self, log_ns: Optional[int]) -> Iterator[Frame]:
        """Frames whose window closed before ``log_ns`` (all of them when None)."""
        while self._pending and (log_ns is None
                                 or log_ns > self._pending[0].log_time_ns + self.window_ns):
            yield self._assemble(self._pending.popleft())
        horizon = self._pending[0].log_time_ns if self._pending else log_ns
        if horizon is not None:
            self._prune(horizon - self.window_ns)

    def _prune(self, before_ns: int) -> None:
        while self._depth and self._depth[0][0] < before_ns:
            self._depth.popleft()
        self._gt = {k: v for k, v in self._gt.items() if v[0] >= before_ns}

    def _assemble(self, pending: _Pending) -> Frame:
        try:
            msg = deserialize(pending.raw, self.topics.image_type)
            header_stamp, frame_id = stamp_ns(msg.header), str(msg.header.frame_id)
        except MessageError as exc:
            frame = Frame(pending.index, pending.log_time_ns, 0, '', None)
            frame.warnings.append((exc.kind, f'image: {exc}'))
            return frame
        frame = Frame(pending.index, pending.log_time_ns, header_stamp, frame_id, None,
                      prompts=(pending.prompt,) if pending.prompt else ())
        try:
            frame.rgb = _decode_rgb(msg, self.topics.image_type)
        except MessageError as exc:
            frame.warnings.append((exc.kind, str(exc)))
            return frame
        self._attach_depth(frame)
        self._attach_ground_truth(frame)
        return frame

    def _nearest_depth(self, stamp: int) -> Optional[Any]:
        best = min(self._depth, key=lambda d: abs(d[1] - stamp), default=None)
        if best is None or abs(best[1] - stamp) > self.tolerance_ns:
            return None
        return best[2]

    def _attach_depth(self, frame: Frame) -> None:
        if self.topics.depth is None:
            return
        msg = self._nearest_depth(frame.stamp_ns)
        if msg is None:
            frame.warnings.append(('depth_missing', 'no depth image within the sync tolerance'))
            return
        try:
            depth = depth_imgmsg_to_metres(msg)
        except ConversionError as exc:
            frame.warnings.append((_conversion_kind(exc, 'depth_'), f'depth: {exc}'))
            return
        if depth.shape != frame.rgb.shape[:2]:
            frame.warnings.append(('depth_size_mismatch', f'depth {_size(depth)} vs image '
                                   f'{_size(frame.rgb)}: not aligned, not used'))
            return
        frame.depth_m = depth
        self._attach_intrinsics(frame)

    def _attach_intrinsics(self, frame: Frame) -> None:
        if self.topics.camera_info is None:
            return
        if self._info is None:
            frame.warnings.append(('camera_info_missing', 'no camera_info received yet'))
            return
        try:
            intr = CameraIntrinsics.from_camera_info(self._info)
        except ValueError as exc:
            frame.warnings.append(('camera_info_invalid', str(exc)))
            return
        height, width = frame.rgb.shape[:2]
        frame.intrinsics = intr if (intr.width, intr.height) == (width, height) else intr.scaled(
            width, height)

    def _attach_ground_truth(self, frame: Frame) -> None:
        if self.topics.ground_truth is None:
            return
        entry = self._gt.pop(frame.stamp_ns, None)
        if entry is None:
            frame.warnings.append(('ground_truth_missing', 'no ground-truth mask with this stamp'))
            return
        try:
            mask = imgmsg_to_array(entry[1], 'mono8') != 0
        except ConversionError as exc:
            frame.warnings.append((_conversion_kind(exc, 'ground_truth_'), f'ground truth: {exc}'))
            return
        if mask.shape != frame.rgb.shape[:2]:
            frame.warnings.append(('ground_truth_size_mismatch',
                                   f'mask {_size(mask)} vs image {_size(frame.rgb)}: not scored'))
            return
        frame.gt_mask = mask

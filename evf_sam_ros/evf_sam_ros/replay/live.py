"""Live mode: play a bag onto ROS topics against a running evf_sam node and record its outputs.

Played (reliable QoS), under ``namespace`` (default none, e.g. "/robot" -> /robot/image):
``image`` (sensor_msgs/Image; CompressedImage is decoded and sent as rgb8), ``depth``,
``camera_info`` and ``command`` (the first --prompt once before the first frame, else the
bag's commands at their time).  Recorded: ``segmentation`` and ``target_point`` and ``mask``
as raw CDR bytes with their arrival times.  Outputs are matched to frames by header stamp;
latency is arrival time minus the time the frame was published (stamp-to-output latency
for a camera whose stamps are capture times).

Call ``play_and_record`` and hand the result to ``RecordedOutputs`` for the report pass.
The caller's environment must keep DDS on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from ..conversions import ConversionError, array_to_imgmsg, compressed_imgmsg_to_rgb, stamp_ns
from .bagio import COMPRESSED_IMAGE, deserialize, open_bag, read_messages
from .cdr import depth_image_cdr
from .errors import MessageError, ReplayError
from .frames import Frame
from .live_ros import LiveRecording, ReplayNode, topic_name, wait_until
from .offline import ros_header
from .results import FrameOutcome, outcome_from_msg
from .topics import TopicSelection


@dataclass(frozen=True)
class LiveOptions:
    """namespace: of the node's topics. speed: playback rate factor (2 = twice as fast).
    grace_s: wait after the last frame for its output. wait_for_node_s: how long to wait for
    the node's subscriptions. prompts: --prompt values (live sends only the first)."""

    namespace: str = ''
    speed: float = 1.0
    grace_s: float = 5.0
    wait_for_node_s: float = 30.0
    prompts: tuple[str, ...] = ()
    max_frames: Optional[int] = None


def _connect(ros: ReplayNode, options: LiveOptions) -> None:
    """Wait for the node's image subscription and outputs, then subscribe to them."""
    image = ros.publishers['image']
    if not wait_until(lambda: image.get_subscription_count() > 0, options.wait_for_node_s):
        raise ReplayError(f'no node subscribed to {image.topic_name} within '
                          f'{options.wait_for_node_s:g} s; start evf_sam_node (namespace '
                          f'{options.namespace or "/"}) first')
    seg_topic = topic_name(options.namespace, 'segmentation')
    if not wait_until(lambda: ros.node.count_publishers(seg_topic) > 0, options.wait_for_node_s):
        raise ReplayError(f'nothing publishes {seg_topic}; is the node configured and active?')
    ros.subscribe_outputs()
    if not wait_until(ros.outputs_matched, 10.0):
        raise ReplayError(f'could not connect to {seg_topic} (incompatible QoS?)')


def _send_prompt(ros: ReplayNode, text: str, recording: LiveRecording, timeout_s: float = 10.0) -> None:
    """Send a command and wait for the node to echo it on ``prompt``, resending every 0.5 s:
    a command sent while discovery is still completing on the node's side can be lost, and
    a lost prompt would leave every frame unprocessed."""
    from std_msgs.msg import String

    command = ros.publishers['command']
    wait_until(lambda: command.get_subscription_count() > 0, timeout_s)
    echo = ' '.join(text.split())  # the node normalises white space
    before = len(ros.prompts_seen())
    deadline = time.monotonic() + timeout_s
    while True:
        command.publish(String(data=text))
        if wait_until(lambda: echo in ros.prompts_seen()[before:], 0.5):
            return
        if time.monotonic() >= deadline:
            recording.warnings.append(('prompt_not_confirmed',
                                       f'the node did not echo the prompt {text!r} on "prompt"'))
            return


def _image_bytes(raw: bytes, msgtype: str) -> tuple[int, bytes]:
    """(header stamp ns, CDR bytes of a sensor_msgs/Image) for an Image or CompressedImage."""
    msg = deserialize(raw, msgtype)
    if msgtype != COMPRESSED_IMAGE:
        return stamp_ns(msg.header), raw
    from rclpy.serialization import serialize_message

    try:
        rgb = compressed_imgmsg_to_rgb(msg)
    except ConversionError as exc:
        raise MessageError('unsupported_encoding', f'image: {exc}') from exc
    header = ros_header(stamp_ns(msg.header), str(msg.header.frame_id))
    return stamp_ns(msg.header), serialize_message(array_to_imgmsg(rgb, 'rgb8', header))


def _play(ros: ReplayNode, bag: str, selection: TopicSelection, options: LiveOptions,
          recording: LiveRecording, progress: Any) -> Optional[int]:
    """Publish the bag's messages at recorded timing / speed; returns the last image stamp."""
    from .errors import BagReadError

    roles = {selection.image: 'image', selection.depth: 'depth',
             selection.camera_info: 'camera_info'}
    if selection.command and not options.prompts:
        roles[selection.command] = 'command'
    roles.pop(None, None)
    first_log, start, last_stamp = None, 0.0, None
    with open_bag(bag) as reader:
        try:
            for topic, msgtype, log_ns, raw in read_messages(reader, roles):
                role = roles[topic]
                if role == 'image' and options.max_frames is not None \
                        and recording.frames_published >= options.max_frames:
                    break
                if first_log is None:
                    first_log, start = log_ns, time.monotonic()
                delay = start + (log_ns - first_log) / 1e9 / options.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if role == 'image':
                    last_stamp = _publish_image(ros, raw, msgtype, recording) or last_stamp
                    progress.update(1)
                elif role == 'command':
                    try:
                        _send_prompt(ros, str(deserialize(raw, msgtype).data), recording)
                    except MessageError as exc:
                        recording.warnings.append((exc.kind, f'command not played: {exc}'))
                elif role == 'depth':  # the node takes Image: compressedDepth is decoded
                    try:
                        ros.publishers[role].publish(depth_image_cdr(raw, msgtype))
                    except MessageError as exc:
                        recording.warnings.append((exc.kind, f'depth not played: {exc}'))
                else:
                    ros.publishers[role].publish(bytes(raw))
        except BagReadError as exc:
            recording.warnings.append(('bag_read_error', str(exc)))
    return last_stamp


def _publish_image(ros: ReplayNode, raw: bytes, msgtype: str,
                   recording: LiveRecording) -> Optional[int]:
    recording.frames_published += 1
    try:
        stamp, data = _image_bytes(raw, msgtype)
    except MessageError as exc:
        recording.warnings.append((exc.kind, f'not played: {exc}'))
        return None
    recording.published[stamp] = time.monotonic_ns()
    ros.publishers['image'].publish(data)
    return stamp


def play_and_record(bag: str, selection: TopicSelection, options: LiveOptions,
                    progress: Any) -> LiveRecording:
    """Connect to the node, send the prompt, play the bag, wait for the last output.

    progress: a tqdm-like object (``update(1)`` per frame played).

    Raises:
        ReplayError: no node found, or its outputs cannot be subscribed to.
    """
    if options.speed <= 0:
        raise ReplayError(f'--speed must be > 0, got {options.speed}')
    recording = LiveRecording()
    ros = ReplayNode(options.namespace, recording)
    try:
        _connect(ros, options)
        if options.prompts:
            _send_prompt(ros, options.prompts[0], recording)
            if len(options.prompts) > 1:
                recording.warnings.append(('live_single_prompt', 'the node takes one prompt; '
                                           f'only {options.prompts[0]!r} was sent'))
        elif selection.command is not None:
            wait_until(lambda: ros.publishers['command'].get_subscription_count() > 0, 10.0)
        else:
            recording.warnings.append(('no_prompt', 'no --prompt and no command topic: the '
                                       'node keeps whatever prompt it had'))
        last = _play(ros, bag, selection, options, recording, progress)
        segmentation = recording.outputs['segmentation']
        if last is not None:
            wait_until(lambda: last in segmentation, options.grace_s)
        else:
            time.sleep(min(options.grace_s, 0.5))
    finally:
        ros.close()
    return recording


class RecordedOutputs:
    """FrameProcessor over a LiveRecording: a frame's outcome is what the node sent for it."""

    mode = 'live'
    latency_kind = 'stamp_to_output'

    def __init__(self, recording: LiveRecording):
        self.recording = recording
        self.warnings = list(recording.warnings)

    def process(self, frame: Frame) -> Optional[FrameOutcome]:
        """The node's outputs with the frame's stamp; None when there are none (dropped)."""
        from evf_sam_msgs.msg import Segmentation
        from rclpy.serialization import deserialize_message

        outputs = self.recording.outputs
        segs = outputs['segmentation'].get(frame.stamp_ns)
        if not segs:
            return None
        prompts = [outcome_from_msg(deserialize_message(raw, Segmentation)) for _, raw in segs]
        published = self.recording.published.get(frame.stamp_ns)
        latency = (segs[0][0] - published) / 1e6 if published is not None else float('nan')
        messages = [(role, raw) for role in ('segmentation', 'mask', 'target_point')
                    for _, raw in outputs[role].get(frame.stamp_ns, [])]
        return FrameOutcome(prompts, latency, messages)

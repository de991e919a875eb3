"""Live mode: play a bag onto ROS topics against a running evf_sam node and record its outputs.

Played (reliable QoS), under ``namespace`` (default none, e.g. "/robot" -> /robot/image):
``image`` (sensor_msgs/Image; CompressedImage is decoded and sent as rgb8), ``depth``,
``camera_info`` and ``command`` (the first --prompt once before the first frame, else the
bag's commands at their time).  Recorded: ``segmentation`` and ``target_point`` and ``mask``
as raw CDR bytes with their arrival times.  Outputs are matched to frames by header stamp;
latency is arrival time minus the time the frame was published (stamp-to-output latency
for a camera whose stamps are capture times).

Call ``play_and_record`` and hand the result to ``live_outputs.RecordedOutputs`` for the
report pass (``live_control`` holds the conversation with the node: targets, prompt,
/diagnostics).
The caller's environment must keep DDS on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from evf_sam_ros.codecs.compressed_image import compressed_imgmsg_to_rgb
from evf_sam_ros.codecs.image import ConversionError, array_to_imgmsg, stamp_ns
from evf_sam_ros.pipeline.messages import ros_header
from evf_sam_ros.replay.bagio import COMPRESSED_IMAGE, deserialize, open_bag, read_messages
from evf_sam_ros.replay.cdr import depth_image_cdr
from evf_sam_ros.replay.errors import BagReadError, MessageError, ReplayError
from evf_sam_ros.replay.live_control import (
    check_mode,
    connect,
    diagnostics_baseline,
    handled_count,
    node_problems,
    send_prompt,
    set_targets,
)
from evf_sam_ros.replay.live_ros import LiveRecording, ReplayNode, cdr_stamp_ns, wait_until
from evf_sam_ros.replay.topics import TopicSelection


@dataclass(frozen=True)
class LiveOptions:
    """namespace: of the node's topics. speed: playback rate factor (2 = twice as fast).
    grace_s: wait after the last frame for its output. wait_for_node_s: how long to wait for
    the node's subscriptions. prompts: --prompt values (live sends only the first).
    lockstep: after an image (and the depth and camera_info stamped like it that follow it),
    publish nothing more until the node has handled it (its output arrived, or /diagnostics
    counted it as skipped or bad): no frame is dropped, camera_info and commands reach the
    node between frames as offline mode applies them, and the run compares frame by frame
    with offline mode.
    """

    namespace: str = ''
    speed: float = 1.0
    grace_s: float = 5.0
    wait_for_node_s: float = 30.0
    prompts: tuple[str, ...] = ()
    max_frames: int | None = None
    lockstep: bool = False
    mode: str | None = None


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


def _play(
    ros: ReplayNode,
    bag: str,
    selection: TopicSelection,
    options: LiveOptions,
    recording: LiveRecording,
    progress: Any,
) -> int | None:
    """Publish the bag's messages at recorded timing / speed; returns the last image stamp."""
    roles = {
        selection.image: 'image',
        selection.depth: 'depth',
        selection.camera_info: 'camera_info',
    }
    if selection.command:
        roles[selection.command] = 'command'
    roles.pop(None, None)
    first_log, start, last_stamp, awaiting = None, 0.0, None, None
    with open_bag(bag) as reader:
        try:
            for topic, msgtype, log_ns, raw in read_messages(reader, roles):
                role = roles[topic]
                if (
                    role == 'image'
                    and options.max_frames is not None
                    and recording.frames_published >= options.max_frames
                ):
                    break
                if awaiting is not None and not (
                    role in ('depth', 'camera_info') and cdr_stamp_ns(raw) == awaiting
                ):
                    _wait_handled(ros, recording, awaiting, options.grace_s)  # lockstep
                    awaiting = None
                if first_log is None:
                    first_log, start = log_ns, time.monotonic()
                delay = start + (log_ns - first_log) / 1e9 / options.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if role == 'image':
                    stamp = _publish_image(ros, raw, msgtype, recording)
                    last_stamp = stamp or last_stamp
                    awaiting = stamp if options.lockstep else None
                    progress.update(1)
                elif role == 'command':
                    try:
                        send_prompt(ros, str(deserialize(raw, msgtype).data), recording)
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
    if awaiting is not None:
        _wait_handled(ros, recording, awaiting, options.grace_s)
    return last_stamp


def _wait_handled(ros: ReplayNode, recording: LiveRecording, stamp: int, timeout_s: float) -> None:
    """Lockstep: wait until the node answered the image stamped ``stamp`` or counted it."""
    sent = recording.published.get(stamp, 0)
    target = recording.handled_before + recording.frames_published
    done = wait_until(
        lambda: (
            stamp in recording.outputs['segmentation']
            or handled_count(ros.diagnostics(after_ns=sent)) >= target
        ),
        timeout_s,
    )
    if not done:
        recording.warnings.append(
            (
                'lockstep_timeout',
                f'no answer for the image stamped {stamp} within {timeout_s:g} s; went on',
            )
        )


def _publish_image(
    ros: ReplayNode, raw: bytes, msgtype: str, recording: LiveRecording
) -> int | None:
    recording.frames_published += 1
    try:
        stamp, data = _image_bytes(raw, msgtype)
    except MessageError as exc:
        recording.warnings.append((exc.kind, f'not played: {exc}'))
        return None
    recording.published[stamp] = time.monotonic_ns()
    ros.publishers['image'].publish(data)
    return stamp


def play_and_record(
    bag: str, selection: TopicSelection, options: LiveOptions, progress: Any
) -> LiveRecording:
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
        connect(ros, options.namespace, options.wait_for_node_s)
        if options.mode is not None:
            check_mode(ros, options.mode)
        baseline = diagnostics_baseline(ros, recording)
        if options.prompts:
            set_targets(ros, options.prompts)
        if selection.command is not None:
            wait_until(lambda: ros.publishers['command'].get_subscription_count() > 0, 10.0)
        elif not options.prompts:
            recording.warnings.append(
                (
                    'no_prompt',
                    'no --prompt and no command topic: the node keeps the targets it had',
                )
            )
        last = _play(ros, bag, selection, options, recording, progress)
        segmentation = recording.outputs['segmentation']
        if last is not None and not options.lockstep:
            wait_until(lambda: last in segmentation, options.grace_s)
        node_problems(ros, recording, baseline, options.grace_s)
    finally:
        ros.close()
    return recording

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
from typing import Any

from evf_sam_ros.codecs.compressed_image import compressed_imgmsg_to_rgb
from evf_sam_ros.codecs.image import ConversionError, array_to_imgmsg, stamp_ns
from evf_sam_ros.pipeline import FrameProblem, Problem, normalize_prompt
from evf_sam_ros.pipeline.messages import ros_header
from evf_sam_ros.replay.bagio import COMPRESSED_IMAGE, deserialize, open_bag, read_messages
from evf_sam_ros.replay.cdr import depth_image_cdr
from evf_sam_ros.replay.errors import MessageError, ReplayError
from evf_sam_ros.replay.frames import BagFrame
from evf_sam_ros.replay.live_ros import (
    LiveRecording,
    ReplayNode,
    cdr_stamp_ns,
    topic_name,
    wait_until,
)
from evf_sam_ros.replay.results import OUTPUT_TOPICS, FrameOutcome, FrameResult, outcome_from_msg
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


def _connect(ros: ReplayNode, options: LiveOptions) -> None:
    """Wait for the node's image subscription and outputs, then subscribe to them."""
    image = ros.publishers['image']
    if not wait_until(lambda: image.get_subscription_count() > 0, options.wait_for_node_s):
        raise ReplayError(
            f'no node subscribed to {image.topic_name} within '
            f'{options.wait_for_node_s:g} s; start evf_sam_node (namespace '
            f'{options.namespace or "/"}) first'
        )
    seg_topic = topic_name(options.namespace, 'segmentation')
    if not wait_until(lambda: ros.node.count_publishers(seg_topic) > 0, options.wait_for_node_s):
        raise ReplayError(f'nothing publishes {seg_topic}; is the node configured and active?')
    ros.subscribe_outputs()
    if not wait_until(ros.outputs_matched, 10.0):
        raise ReplayError(f'could not connect to {seg_topic} (incompatible QoS?)')


def _send_prompt(
    ros: ReplayNode, text: str, recording: LiveRecording, timeout_s: float = 10.0
) -> None:
    """Send a command and wait until the node has taken it: it echoes an accepted one on
    ``prompt``, and counts every command on /diagnostics (a refused one too). Until the first
    command is confirmed it is resent every 0.5 s (one sent while discovery is still
    completing can be lost, and a lost prompt would leave every frame unprocessed); after
    that the reliable, keep-all topic delivers each command once, so none is repeated (a
    repeated refused command would be counted twice).
    """
    from std_msgs.msg import String

    command = ros.publishers['command']
    wait_until(lambda: command.get_subscription_count() > 0, timeout_s)
    echo = normalize_prompt(text)  # as the node does
    before = len(ros.prompts_seen())
    deadline = time.monotonic() + timeout_s
    while True:
        sent = time.monotonic_ns()
        command.publish(String(data=text))
        recording.commands_sent += 1
        target = recording.commands_before + recording.commands_sent

        def taken() -> bool:
            counted = ros.diagnostics(after_ns=sent)
            return echo in ros.prompts_seen()[before:] or (
                counted is not None and int(counted.get('commands', 0)) >= target
            )

        if wait_until(taken, timeout_s if recording.command_confirmed else 0.5):
            recording.command_confirmed = True
            return
        if recording.command_confirmed or time.monotonic() >= deadline:
            recording.warnings.append(
                ('prompt_not_confirmed', f'the node did not take the command {text!r}')
            )
            return
        recording.commands_sent -= 1  # lost in discovery: resent


def _check_mode(ros: ReplayNode, mode: str) -> None:
    """ReplayError unless the node's ``mode`` parameter is ``mode``."""
    from rcl_interfaces.srv import GetParameters

    answer = ros.call(
        'evf_sam/get_parameters', GetParameters, GetParameters.Request(names=['mode']), 10.0
    )
    running = answer.values[0].string_value if answer.values else ''
    if running != mode:
        raise ReplayError(
            f'the node runs in {running or "an unknown"} mode, not {mode}; '
            f'start it with mode:={mode} (a configure-time parameter)'
        )


def _set_targets(ros: ReplayNode, prompts: tuple[str, ...], timeout_s: float = 10.0) -> None:
    """The node's targets become exactly ``prompts`` (as offline mode's --prompt targets):
    ~/clear_targets, then ~/add_target for each. Raises ReplayError when refused.
    """
    from std_srvs.srv import Trigger

    from evf_sam_msgs.srv import AddTarget

    ros.call('evf_sam/clear_targets', Trigger, Trigger.Request(), timeout_s)
    for prompt in prompts:
        answer = ros.call(
            'evf_sam/add_target', AddTarget, AddTarget.Request(prompt=prompt), timeout_s
        )
        if not answer.success:
            raise ReplayError(f'the node refused --prompt {prompt!r}: {answer.message}')


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
    from evf_sam_ros.replay.errors import BagReadError

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
    if awaiting is not None:
        _wait_handled(ros, recording, awaiting, options.grace_s)
    return last_stamp


def handled_count(values: dict[str, str] | None) -> int:
    """Frames the node has finished with, by its /diagnostics counters (-1 when unknown)."""
    if values is None:
        return -1
    keys = ('frames_processed', 'frames_bad', 'frames_skipped_no_prompt')
    return sum(int(values.get(k, 0)) for k in keys)


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
        _connect(ros, options)
        if options.mode is not None:
            _check_mode(ros, options.mode)
        baseline = _diagnostics_baseline(ros, recording)
        if options.prompts:
            _set_targets(ros, options.prompts)
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
        _node_problems(ros, recording, baseline, options.grace_s)
    finally:
        ros.close()
    return recording


def _problem_counts(values: dict[str, str]) -> dict[str, int]:
    return {k[len('problem.') :]: int(v) for k, v in values.items() if k.startswith('problem.')}


def _diagnostics_baseline(ros: ReplayNode, recording: LiveRecording) -> dict[str, str] | None:
    """The node's /diagnostics before playing (its counters so far), None if it sends none."""
    values = ros.diagnostics() if wait_until(lambda: ros.diagnostics() is not None, 5.0) else None
    if values is None:
        recording.warnings.append(
            (
                'no_diagnostics',
                'the node sent no /diagnostics: its problem counts are not in this report',
            )
        )
    recording.handled_before = max(handled_count(values), 0)
    recording.commands_before = int(values.get('commands', 0)) if values else 0
    return values


def _node_problems(
    ros: ReplayNode, recording: LiveRecording, baseline: dict[str, str] | None, timeout_s: float
) -> None:
    """Problems the node counted while the bag played: its /diagnostics after the last
    output (the next message it sends) minus the baseline.
    """
    if baseline is None:
        return
    ended = time.monotonic_ns()
    if not wait_until(lambda: ros.diagnostics(after_ns=ended) is not None, timeout_s):
        recording.warnings.append(('no_diagnostics', 'no /diagnostics after the run'))
        return
    before, after = _problem_counts(baseline), _problem_counts(ros.diagnostics(after_ns=ended))
    recording.node_problems = {k: n - before.get(k, 0) for k, n in after.items()}


class RecordedOutputs:
    """FrameProcessor over a LiveRecording: a frame's outcome is what the node sent for it;
    ``problems`` are the per-frame problems the node counted on /diagnostics during the run
    (same vocabulary as offline mode), plus the replay's own warnings.
    """

    mode = 'live'
    latency_kind = 'stamp_to_output'

    def __init__(self, recording: LiveRecording):
        self.recording = recording
        self.problems: list[tuple] = list(recording.warnings)
        self.problems += [
            (kind, f'counted by the node on /diagnostics ({count})', count)
            for kind, count in sorted(recording.node_problems.items())
            if count
        ]

    def process(self, frame: BagFrame) -> FrameResult:
        """The node's outputs with the frame's stamp; "dropped" when there are none."""
        from rclpy.serialization import deserialize_message

        from evf_sam_msgs.msg import GraspCandidateArray, Segmentation, SegmentationArray

        if frame.image is None:
            return FrameResult('skipped', reason='unreadable image')
        outputs = self.recording.outputs
        segs = outputs['segmentation'].get(frame.stamp_ns)
        arrays = outputs['segmentations'].get(frame.stamp_ns)
        if not segs:
            try:
                rgb = frame.image.decode()
            except FrameProblem:  # counted by the node, which skipped it too
                return FrameResult('skipped', reason='bad image')
            return FrameResult(
                'dropped',
                rgb=rgb,
                reason='dropped',
                problems=[Problem('no_output', 'the node published no segmentation for it')],
            )
        raw_grasps = outputs['grasps'].get(frame.stamp_ns)
        grasps = deserialize_message(raw_grasps[0][1], GraspCandidateArray) if raw_grasps else None
        if arrays:  # every target; else (a node without multi-target output) the first
            array = deserialize_message(arrays[0][1], SegmentationArray).segmentations
        else:
            array = [deserialize_message(raw, Segmentation) for _, raw in segs]
        prompts = [outcome_from_msg(seg, grasps) for seg in array]
        published = self.recording.published.get(frame.stamp_ns)
        latency = (segs[0][0] - published) / 1e6 if published is not None else float('nan')
        messages = [
            (role, raw)
            for role in OUTPUT_TOPICS
            for _, raw in outputs[role].get(frame.stamp_ns, [])
        ]
        return FrameResult('processed', FrameOutcome(prompts, latency, messages))

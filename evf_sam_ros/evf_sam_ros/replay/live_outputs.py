"""Live mode's report pass: a frame's outcome is what the node sent back for it."""

from __future__ import annotations

from evf_sam_ros.pipeline import FrameProblem, Problem
from evf_sam_ros.replay.frames import BagFrame
from evf_sam_ros.replay.live_ros import LiveRecording
from evf_sam_ros.replay.results import OUTPUT_TOPICS, FrameOutcome, FrameResult, outcome_from_msg


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

"""Offline mode: every frame goes through the shared frame pipeline with a local predictor.

Deterministic: the same bag, checkpoint and options give the same results. The pipeline is
the node's (``evf_sam_ros.pipeline.process_frame``) and targets are kept as the node keeps
them (``TargetList``: bag commands set the primary target, each --prompt is an added target),
so the output bag holds exactly what the node would publish for the same messages, and
report.json counts the same problems /diagnostics would.
"""

from __future__ import annotations

from typing import Any, Sequence

from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.pipeline import (
    BAD_IMAGE,
    NO_PROMPT,
    BoxMemory,
    FrameMessages,
    Problem,
    TargetList,
    check_prompt,
    predictor_segmenter,
    process_frame,
)
from evf_sam_ros.pipeline.track import TrackSegmenter
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.frames import BagFrame
from evf_sam_ros.replay.results import FrameOutcome, FrameResult, outcome_from_msg
from evf_sam_ros.target3d.estimate import TargetSettings
from evf_sam_ros.target3d.pick import PickSettings


class OfflineSegmenter:
    """Run a predictor on frames for the bag's current command and fixed prompts.

    prompts: added targets (``--prompt``), segmented on every frame after the primary target
    (the bag's current command), as the node's ~/add_target targets are.
    settings and max_prompt_chars: the node's (``node.settings.NodeSettings``), so found,
    the 3D target and prompt checks are decided as the node decides them.
    """

    mode = 'offline'
    latency_kind = 'model'

    def __init__(
        self,
        predictor: Any,
        settings: TargetSettings,
        prompts: Sequence[str] = (),
        max_prompt_chars: int = 4096,
        tracker_settings: Any | None = None,
        pick: PickSettings | None = PickSettings(),
    ):
        """tracker_settings: a model.TrackerSettings for track mode (None: segment mode).
        pick: the gripper and place settings of grasps and place surfaces (the node's
        ``pick_settings()``; None: none computed, as with the node's pick_outputs off).
        """
        self.predictor, self.settings, self.pick = predictor, settings, pick
        self.memory = BoxMemory()
        self.max_prompt_chars = max_prompt_chars
        self.targets = TargetList(self.validate_prompt)
        self.segment = predictor_segmenter(predictor)
        if tracker_settings is not None:
            from evf_sam_ros.model import EvfSamTracker

            self.segment = TrackSegmenter(EvfSamTracker(predictor, tracker_settings))
        self.messages = FrameMessages()
        for prompt in prompts:
            try:
                self.targets.add(prompt)
            except PromptError as exc:
                raise ReplayError(f'bad --prompt {prompt!r}: {exc}') from exc

    def validate_prompt(self, text: str) -> str:
        """The cleaned prompt, or PromptError (as the node's default settings check it)."""
        return check_prompt(text, self.max_prompt_chars, self.predictor.tokenize)

    def process(self, frame: BagFrame) -> FrameResult:
        """Apply the frame's commands, then run the pipeline on it."""
        problems: list[Problem] = [
            p
            for p in (self.targets.command(c, 'bag command') for c in frame.commands)
            if p is not None
        ]
        if frame.image is None:
            return FrameResult('skipped', problems=problems, reason='unreadable image')
        out = process_frame(
            frame.image,
            self.targets.snapshot(),
            self.segment,
            frame.depth,
            self.settings,
            with_cloud=True,
            pick=self.pick,
            memory=self.memory,
        )
        problems += out.problems
        if out.status == NO_PROMPT:
            problems.append(
                Problem('no_prompt', 'no prompt yet: pass --prompt or record a command')
            )
            return FrameResult('skipped', problems=problems, reason='no prompt')
        if out.status == BAD_IMAGE:
            return FrameResult('skipped', rgb=out.rgb, problems=problems, reason='bad image')
        return FrameResult('processed', self._outcome(out.targets, out.model_s), out.rgb, problems)

    def _outcome(self, targets: Sequence[Any], model_s: float) -> FrameOutcome:
        """The frame's outcome: the messages the node publishes to a subscriber of every
        output (FrameMessages) and each target's answer read back from the very Segmentation
        messages written to the bag (as live mode reads the node's).
        """
        from rclpy.serialization import serialize_message

        published = self.messages.build(
            targets, with_cloud=True, with_markers=True, with_grasps=True
        )
        messages = [(role, serialize_message(msg)) for role, msg in published]
        grasps = dict(published).get('grasps')
        prompts = [outcome_from_msg(t.messages.segmentation, grasps) for t in targets]
        return FrameOutcome(prompts, model_s * 1000.0, messages)

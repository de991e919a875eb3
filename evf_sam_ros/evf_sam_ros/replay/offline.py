"""Offline mode: every frame goes straight through an EvfSamPredictor (no ROS graph).

Deterministic: the same bag, checkpoint and options give the same results.  Output
messages are real evf_sam_msgs / sensor_msgs / geometry_msgs messages built by
``evf_sam_ros.messages`` and serialized with ``rclpy.serialization``, so the bytes in the
output bag are exactly what the node would publish.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from ..conversions import mask_to_imgmsg
from ..messages import inference_seconds, point_stamped_msg, segmentation_msg
from ..model.errors import EvfSamError, PromptError
from ..model.predictor import SegmentationResult
from ..model.tokenizer import clean_prompt
from ..targets import TargetSettings, estimate_target
from .errors import MessageError, ReplayError
from .frames import Frame
from .results import FrameOutcome, PromptOutcome, outcome_from_result

def ros_header(stamp_ns: int, frame_id: str) -> Any:
    """An rclpy std_msgs/Header with the given stamp (nanoseconds) and frame_id."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                  frame_id=frame_id)


class OfflineSegmenter:
    """Run a predictor on frames with fixed prompts plus the bag's command.

    prompts: prompts run on every frame (``--prompt``), before the bag's active command.
    """

    mode = 'offline'
    latency_kind = 'model'

    def __init__(self, predictor: Any, settings: TargetSettings, prompts: Sequence[str] = ()):
        self.predictor, self.settings = predictor, settings
        self._checked: dict[str, tuple[Optional[str], str]] = {}  # raw -> (cleaned, error)
        cleaned = []
        for prompt in prompts:
            text, error = self._check(prompt)
            if text is None:
                raise ReplayError(f'bad --prompt {prompt!r}: {error}')
            cleaned.append(text)
        self.prompts = tuple(dict.fromkeys(cleaned))
        self.warnings: list[tuple[str, str]] = []

    def _check(self, prompt: str) -> tuple[Optional[str], str]:
        """(the prompt with white space normalised as the node does, '') or (None, why not)."""
        if prompt not in self._checked:
            try:
                text = clean_prompt(prompt)
                self.predictor.tokenize(text)
                self._checked[prompt] = (text, '')
            except PromptError as exc:
                self._checked[prompt] = (None, str(exc))
        return self._checked[prompt]

    def frame_prompts(self, frame: Frame) -> list[str]:
        """--prompt prompts, then the bag's command; bad bag commands become warnings."""
        prompts = list(self.prompts)
        for prompt in frame.prompts:
            text, error = self._check(prompt)
            if text is None:
                frame.warnings.append(('bad_prompt', f'{prompt!r}: {error}'))
            elif text not in prompts:
                prompts.append(text)
        return prompts

    def process(self, frame: Frame) -> FrameOutcome:
        """Segment every prompt on ``frame`` (rgb must be set).

        Raises:
            MessageError: "no_prompt" (nothing to segment yet) or "model_error".
        """
        prompts = self.frame_prompts(frame)
        if not prompts:
            raise MessageError('no_prompt', 'no prompt yet: pass --prompt or record a command')
        start = time.perf_counter()
        try:
            results = self.predictor.predict_many(frame.rgb, prompts)
        except EvfSamError as exc:
            raise MessageError('model_error', f'the model rejected the frame: {exc}') from exc
        latency_ms = (time.perf_counter() - start) * 1000.0
        header = ros_header(frame.stamp_ns, frame.frame_id)
        outcome = FrameOutcome([], latency_ms)
        for result in results:
            outcome.prompts.append(self._one(frame, result, len(results), header, outcome))
        return outcome

    def _one(self, frame: Frame, result: SegmentationResult, count: int, header: Any,
             outcome: FrameOutcome) -> PromptOutcome:
        from rclpy.serialization import serialize_message

        estimate = estimate_target(result, self.settings, frame.depth_m, frame.intrinsics)
        ms = inference_seconds(result, count) * 1000.0
        outcome.messages.append(('segmentation', serialize_message(
            segmentation_msg(result, header, estimate, ms / 1000.0))))
        outcome.messages.append(('mask', serialize_message(mask_to_imgmsg(result.mask, header))))
        if estimate.point is not None:
            outcome.messages.append(('target_point', serialize_message(
                point_stamped_msg(header, estimate.point))))
        return outcome_from_result(result, estimate, ms)

"""The node's one-shot service (~/segment) and its find_target action (~/find_target).

Both hand their work to the inference worker and wait in the node's reentrant callback
group, so topics, parameters and other requests keep answering meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from rclpy.action import ActionServer, CancelResponse, GoalResponse

from ..conversions import ConversionError
from ..model import EvfSamError, PromptError
from .goals import GoalTracker
from .inputs import Frame

if TYPE_CHECKING:
    from .evf_sam_node import EvfSamNode


class RequestHandlers:
    """Creates and serves ~/segment and ~/find_target for an EvfSamNode."""

    def __init__(self, node: "EvfSamNode"):
        self.node = node
        self._service: Optional[Any] = None
        self._action: Optional[ActionServer] = None
        self._goals: dict[int, GoalTracker] = {}
        self._lock = threading.Lock()

    def create(self) -> None:
        from evf_sam_msgs.action import FindTarget
        from evf_sam_msgs.srv import Segment

        group = self.node.control_group
        self._service = self.node.create_service(Segment, "~/segment", self._on_segment, callback_group=group)
        self._action = ActionServer(self.node, FindTarget, "~/find_target", self._execute, callback_group=group,
                                    goal_callback=self._on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT)

    def destroy(self) -> None:
        if self._service is not None:
            self.node.destroy_service(self._service)
        if self._action is not None:
            self._action.destroy()
        self._service = self._action = None

    # ---- service ---------------------------------------------------------------------
    def _on_segment(self, request: Any, response: Any) -> Any:
        node = self.node
        response.success = False
        if not node.active:
            response.message = f"node is {node.state_label()}, not active"
            return response
        try:
            prompt = node.validate_prompt(request.prompt)
        except PromptError as exc:
            response.message = str(exc)
            return response
        img = request.image
        frame = Frame(img, False, time.monotonic()) if (img.width or img.height or len(img.data)) else node.last_frame
        if frame is None:
            response.message = "no image received yet on `image`; put one in the request"
            return response
        box: dict[str, Any] = {}
        done = threading.Event()
        if not node.submit(lambda: self._segment_once(frame, prompt, box, done)):
            response.message = "node is shutting down"
            return response
        if not done.wait(node.settings.service_timeout):
            response.message = f"timed out after {node.settings.service_timeout} s (model busy or slow)"
            return response
        response.success, response.message = "result" in box, box.get("error", "")
        if "result" in box:
            response.result = box["result"]
        return response

    def _segment_once(self, frame: Frame, prompt: str, box: dict, done: threading.Event) -> None:
        try:
            rgb = frame.rgb()
            result = self.node.predictor.predict(rgb, prompt)
            depth = self.node.depth_for(frame.header, rgb.shape[:2])
            box["result"] = self.node.segmentation(frame.header, result, depth)
        except (ConversionError, EvfSamError) as exc:
            box["error"] = str(exc)
        except Exception as exc:  # returned to the caller and logged, not swallowed
            box["error"] = f"{type(exc).__name__}: {exc}"
            self.node.warnings.warn("service_error", f"~/segment failed: {box['error']}")
        finally:
            done.set()

    # ---- action ----------------------------------------------------------------------
    def goal_prompts(self) -> list[str]:
        with self._lock:
            return [g.prompt for g in self._goals.values()]

    def feed_goals(self, segmentations: dict[str, Any]) -> None:
        """Give each active goal the Segmentation of its prompt on the frame just processed."""
        with self._lock:
            goals = list(self._goals.values())
        for goal in goals:
            if goal.prompt in segmentations:
                goal.add(segmentations[goal.prompt])

    def _on_goal(self, goal: Any) -> GoalResponse:
        if not self.node.active:
            self.node.get_logger().warning("find_target goal rejected: node not active")
            return GoalResponse.REJECT
        try:
            self.node.validate_prompt(goal.prompt)
        except PromptError as exc:
            self.node.get_logger().warning(f"find_target goal rejected: {exc}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> Any:
        goal = goal_handle.request
        timeout = goal.timeout.sec + goal.timeout.nanosec / 1e9 or self.node.settings.action_timeout
        tracker = GoalTracker(self.node.validate_prompt(goal.prompt), timeout, goal.min_hits)
        with self._lock:
            self._goals[id(tracker)] = tracker
        try:
            outcome = self._follow(goal_handle, tracker, timeout)
        finally:
            with self._lock:
                self._goals.pop(id(tracker), None)
        return outcome

    def _follow(self, goal_handle: Any, tracker: GoalTracker, timeout: float) -> Any:
        from evf_sam_msgs.action import FindTarget

        while True:
            for seg in tracker.wait_feedback(0.1):
                goal_handle.publish_feedback(FindTarget.Feedback(
                    current=seg, frames_processed=tracker.frames, hits=tracker.hits,
                    best_score=tracker.best_score))
            if tracker.succeeded:
                goal_handle.succeed()
                return self._result(tracker, True, f"found in {tracker.hits} of {tracker.frames} frames")
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return self._result(tracker, False, "canceled")
            if tracker.expired() or not self.node.active:
                goal_handle.abort()
                why = "node deactivated" if not self.node.active else f"not found within {timeout:.1f} s"
                return self._result(tracker, False, f"{why} ({tracker.frames} frames processed)")

    @staticmethod
    def _result(tracker: GoalTracker, found: bool, message: str) -> Any:
        from evf_sam_msgs.action import FindTarget

        result = FindTarget.Result(found=found, frames_processed=tracker.frames, message=message)
        if tracker.best is not None:
            result.best = tracker.best
        return result

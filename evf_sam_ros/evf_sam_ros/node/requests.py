"""The node's one-shot service (~/segment) and find_target action (~/find_target).

The handlers depend on ``RequestBackend`` (a small Protocol the node implements), never on
the node class: the service gets a ``concurrent.futures.Future`` for each request and waits
on it, the action registers a ``GoalTracker`` that the node feeds with each processed frame.
Both run in the node's reentrant callback group, so topics, parameters and other requests
keep answering meanwhile. A deactivation or cleanup fails waiting requests at once.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Protocol

from evf_sam_ros.model.errors import EvfSamError
from evf_sam_ros.node.goals import GoalTracker


class RequestRefused(Exception):
    """A request cannot be served (node not active, no image, bad image); says why."""


class RequestBackend(Protocol):
    """What the service and the action need from the node."""

    @property
    def active(self) -> bool:
        """True while the node is in the active lifecycle state."""

    def state_label(self) -> str:
        """The lifecycle state in words (active, inactive, unconfigured)."""

    def validate_prompt(self, text: str) -> str:
        """The cleaned prompt, or PromptError."""

    def segment_async(
        self, prompt: str, image: Any | None, clicks: tuple[list, list] | None = None
    ) -> 'concurrent.futures.Future':
        """Queue one segmentation (``image``: a sensor_msgs/Image, None = the newest frame;
        ``clicks``: ([[x, y], ...] pixels, [label, ...]) given with the text, or None); the
        Future gives an evf_sam_msgs/Segmentation or raises RequestRefused/EvfSamError.
        Raises RequestRefused/PromptError at once when it cannot be queued.
        """


def has_image(image: Any) -> bool:
    """True when a request's sensor_msgs/Image was filled in (empty = use the newest frame)."""
    return bool(image.width or image.height or len(image.data))


class PendingRequests:
    """The ~/segment requests waiting for the worker, each a Future; answered once: by the
    worker (``settle``), or all at once with a reason when the node leaves the active state
    (``abandon``), whichever comes first.
    """

    def __init__(self) -> None:
        self._pending: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    def new(self) -> concurrent.futures.Future:
        """A Future for one request, registered as pending."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._pending.add(future)
        return future

    def settle(
        self,
        future: concurrent.futures.Future,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        """Answer ``future`` unless it is answered already (the first answer wins)."""
        with self._lock:
            self._pending.discard(future)
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def abandon(self, reason: str) -> None:
        """Fail every pending request at once with RequestRefused(``reason``)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            self.settle(future, error=RequestRefused(reason))


def request_clicks(request: Any) -> tuple[list, list] | None:
    """~/segment's clicks: ([[x, y], ...], [label, ...]), or None when it has none (checked
    later, against the image: model.points.check_points).
    """
    if not request.points and not len(request.labels):
        return None
    return [[p.x, p.y] for p in request.points], [int(v) for v in request.labels]


class SegmentService:
    """~/segment: segment a given image or the newest frame with one prompt."""

    def __init__(self, backend: RequestBackend, timeout_s: Callable[[], float]):
        self.backend, self.timeout_s = backend, timeout_s

    def __call__(self, request: Any, response: Any) -> Any:
        """Fill ``response`` (success, message, result); never raises."""
        response.success = False
        try:
            future = self.backend.segment_async(
                request.prompt,
                request.image if has_image(request.image) else None,
                request_clicks(request),
            )
        except (RequestRefused, EvfSamError) as exc:
            response.message = str(exc)
            return response
        timeout = self.timeout_s()
        try:
            response.result = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            response.message = f'timed out after {timeout} s (model busy or slow)'
            return response
        except (RequestRefused, EvfSamError) as exc:
            response.message = str(exc)
            return response
        response.success = True
        return response


class GoalRegistry:
    """The find_target goals in progress; the node feeds them each processed frame."""

    def __init__(self) -> None:
        self._goals: dict[int, GoalTracker] = {}
        self._lock = threading.Lock()

    def add(self, tracker: GoalTracker) -> None:
        """Start feeding ``tracker``."""
        with self._lock:
            self._goals[id(tracker)] = tracker

    def remove(self, tracker: GoalTracker) -> None:
        """Stop feeding ``tracker``."""
        with self._lock:
            self._goals.pop(id(tracker), None)

    def prompts(self) -> list[str]:
        """The prompts of the goals in progress (the node segments them on every frame)."""
        with self._lock:
            return [g.prompt for g in self._goals.values()]

    def feed(self, segmentations: dict[str, Any], grasps: dict[str, list] | None = None) -> None:
        """Give each goal the Segmentation of its prompt on the frame just processed, and its
        grasp candidates (evf_sam_msgs/GraspCandidate lists by prompt).
        """
        with self._lock:
            goals = list(self._goals.values())
        for goal in goals:
            if goal.prompt in segmentations:
                goal.add(segmentations[goal.prompt], (grasps or {}).get(goal.prompt, ()))

    def fail_all(self, reason: str) -> None:
        """End every goal in progress at once (node deactivated or cleaned up)."""
        with self._lock:
            goals = list(self._goals.values())
        for goal in goals:
            goal.fail(reason)


class FindTargetAction:
    """~/find_target callbacks: goal acceptance and the execute loop (feedback, result)."""

    def __init__(
        self,
        backend: RequestBackend,
        goals: GoalRegistry,
        default_timeout_s: Callable[[], float],
        log_warning: Callable[[str], None],
    ):
        self.backend, self.goals = backend, goals
        self.default_timeout_s, self._warn = default_timeout_s, log_warning

    def on_goal(self, goal: Any) -> Any:
        """Accept a goal only while active and with a valid prompt."""
        from rclpy.action import GoalResponse

        if not self.backend.active:
            self._warn('find_target goal rejected: node not active')
            return GoalResponse.REJECT
        try:
            self.backend.validate_prompt(goal.prompt)
        except EvfSamError as exc:
            self._warn(f'find_target goal rejected: {exc}')
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def execute(self, goal_handle: Any) -> Any:
        """Follow the goal's prompt on incoming frames until success, timeout, cancel or a
        deactivation; feedback per processed frame (without the mask: it stays light).
        """
        from evf_sam_msgs.action import FindTarget

        goal = goal_handle.request
        timeout = goal.timeout.sec + goal.timeout.nanosec / 1e9 or self.default_timeout_s()
        try:
            tracker = GoalTracker(
                self.backend.validate_prompt(goal.prompt), timeout, goal.min_hits
            )
        except EvfSamError as exc:
            goal_handle.abort()
            return FindTarget.Result(found=False, message=str(exc))
        self.goals.add(tracker)
        try:
            while True:
                for seg in tracker.wait_feedback(0.1):
                    goal_handle.publish_feedback(
                        FindTarget.Feedback(
                            current=seg,
                            frames_processed=tracker.frames,
                            hits=tracker.hits,
                            best_score=tracker.best_score,
                        )
                    )
                verdict = tracker.verdict(goal_handle.is_cancel_requested, self.backend.active)
                if verdict is not None:
                    return self._finish(goal_handle, tracker, *verdict)
        finally:
            self.goals.remove(tracker)

    @staticmethod
    def _finish(goal_handle: Any, tracker: GoalTracker, status: str, message: str) -> Any:
        from evf_sam_msgs.action import FindTarget

        getattr(
            goal_handle,
            {'succeeded': 'succeed', 'canceled': 'canceled', 'aborted': 'abort'}[status],
        )()
        result = FindTarget.Result(
            found=status == 'succeeded', frames_processed=tracker.frames, message=message
        )
        if tracker.best is not None:
            result.best = tracker.best
            result.grasps = tracker.best_grasps
        return result

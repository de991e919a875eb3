"""evf_sam_node: camera images + text commands in; masks, segmentations and 3D targets out.

A lifecycle node: configure loads the model, activate subscribes and starts the inference
thread, deactivate stops them, cleanup frees the model (GPU memory included). ``autostart``
(``main``, for ``ros2 run``) configures and activates it; the launch file drives it with
lifecycle events instead. Subscription callbacks only store messages; the worker thread runs
the shared frame pipeline (``evf_sam_ros.pipeline``) on the newest frame, so commands,
services and parameter changes answer during a forward pass. Its topics, services and action
are declared in ``node.interface``, its parameters in ``node.settings``; every exception is
reported (``node.faults``).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn

from evf_sam_ros.model import EvfSamError, EvfSamPredictor
from evf_sam_ros.node.diagnostics import (
    NodeStats,
    diagnostic_array,
    dtype_name,
    model_values,
    node_status,
)
from evf_sam_ros.node.faults import describe, reported_transition
from evf_sam_ros.node.frames import FrameRunner
from evf_sam_ros.node.handlers import wire_handlers
from evf_sam_ros.node.inputs import CameraInputs
from evf_sam_ros.node.interface import interface_types
from evf_sam_ros.node.interface_types import missing_types
from evf_sam_ros.node.io import NodeIO, make_groups
from evf_sam_ros.node.lifecycle_guard import GuardedLifecycleNode
from evf_sam_ros.node.loading import load_model
from evf_sam_ros.node.parameters import NodeParameters
from evf_sam_ros.node.requests import (
    GoalRegistry,
    PendingRequests,
    RequestRefused,
)
from evf_sam_ros.node.settings import NodeSettings
from evf_sam_ros.node.worker import InferenceWorker
from evf_sam_ros.pipeline import (
    FrameMessages,
    Segmenter,
    TargetList,
    check_prompt,
    predictor_segmenter,
)
from evf_sam_ros.pipeline.track import TrackSegmenter

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class EvfSamNode(GuardedLifecycleNode):
    """Text-prompted segmentation node (see the package README for topics and parameters)."""

    def __init__(self, node_name: str = 'evf_sam', **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self.predictor: EvfSamPredictor | None = None
        self.segmenter: Segmenter | None = None
        self.active = self.closing = False
        self.error = ''  # the last failed load or transition, ERROR on /diagnostics
        self.params = NodeParameters(
            self,
            on_change=self._on_parameters_changed,
            loaded=lambda: self.predictor is not None,
            validate_prompt=self.validate_prompt,
        )
        self.stats = NodeStats(self.log_warning)
        self.inputs, self.outputs = CameraInputs(), FrameMessages()
        self.targets = TargetList(self.validate_prompt)
        self.goals, self.pending = GoalRegistry(), PendingRequests()
        self._worker: InferenceWorker | None = None
        self.io = NodeIO(self, wire_handlers(self), make_groups(), self.report)
        self.runner = FrameRunner(
            lambda: self.settings,
            lambda: self.segmenter,
            self.inputs,
            self.io,
            self.targets,
            self.goals,
            self.stats,
            self.outputs,
            self.pending,
            publishing=lambda: self.active and not self.closing,
            now_ns=lambda: self.get_clock().now().nanoseconds,
        )
        self.io.create_servers(self.settings)
        self.create_timer(
            self.settings.diagnostics_period,
            self.io.guarded(self._publish_diagnostics, 'diagnostics'),
            callback_group=self.io.groups['control'],
        )

    @property
    def settings(self) -> NodeSettings:
        """The current NodeSettings snapshot."""
        return self.params.settings

    # ---- lifecycle -------------------------------------------------------------------
    @reported_transition('configure')
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the interface types and the parameters, load the model (on failure:
        FAILURE, stay unconfigured), create the publishers and apply the prompt parameter.
        """
        s = self.settings
        problems = missing_types(interface_types()) + self.params.errors
        if problems:
            return self._failed(f'configure failed: {"; ".join(problems)}', 'staying unconfigured')
        self.get_logger().info(
            f'loading {s.checkpoint} (backend {s.backend}, device {s.device}, dtype {s.dtype})'
        )
        try:
            self.predictor, self.segmenter = load_model(s, progress=self.get_logger().info)
        except (EvfSamError, RuntimeError, OSError) as exc:  # RuntimeError/OSError: I/O, OOM
            return self._failed(f'model failed to load: {exc}', 'staying unconfigured')
        self.error = ''
        p = self.predictor
        self.get_logger().info(f'loaded {p.regime.name} on {p.device} ({dtype_name(p.dtype)})')
        self.io.create_publishers(s)
        if s.prompt.strip():
            self.control.apply_command(s.prompt, 'parameter prompt')
        self.control.announce()
        return SUCCESS

    def _failed(self, reason: str, outcome: str) -> TransitionCallbackReturn:
        """A transition failed: logged once, ERROR on /diagnostics (until a configure works)."""
        self.error = reason
        self.get_logger().error(f'{reason}; {outcome}')
        return FAILURE

    @reported_transition('activate')
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start the inference thread."""
        self.io.subscribe(self.settings)
        self._worker = InferenceWorker(
            self.inputs.frames,
            self.runner.process,
            lambda where, exc: self.report('worker_error', 'inference', exc),
            max_rate=lambda: self.settings.max_rate,
        )
        self._worker.start()
        result = super().on_activate(state)
        self.active = True
        self.control.announce()
        return result

    @reported_transition('deactivate')
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Answer waiting requests, unsubscribe, stop the inference thread, drop queued frames."""
        self.active = False
        self._abandon_requests('node deactivated')
        self.io.unsubscribe()
        if self._worker is not None and not self._worker.stop():
            self.get_logger().warning('inference thread still busy; it stops after its pass')
        self._worker = None
        self.inputs.frames.clear()
        return super().on_deactivate(state)

    @reported_transition('cleanup')
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Answer waiting requests, destroy the publishers, release the model and forget the
        last image, camera_info and depth.
        """
        self._abandon_requests('node cleaned up')
        self.io.destroy_publishers()
        if self.predictor is not None:
            self.predictor.release()
        self.predictor, self.segmenter = None, None
        self.inputs.forget()
        return SUCCESS

    @reported_transition('shutdown')
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate and clean up."""
        return self.on_error(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After a transition raised (rclpy's error processing): stop and release everything;
        SUCCESS takes the node to unconfigured, where configure can try again.
        """
        self.on_deactivate(state)  # both safe in any state
        self.on_cleanup(state)
        return SUCCESS

    def transition_failed(self, transition: str, exc: BaseException) -> None:
        """A transition raised ``exc`` (``faults.reported_transition``): reported, counted."""
        self.stats.warnings.count('transition_error')
        self._failed(f'{transition} failed: {describe(exc)}', 'the node goes back to unconfigured')

    def stop(self, timeout_s: float = 1.5) -> None:
        """Before the executor goes away (Ctrl-C, SIGTERM): answer waiting requests, stop
        publishing and logging, and give the worker ``timeout_s`` to finish (a forward pass
        still running then ends with the process; its result is dropped).
        """
        self.closing, self.active = True, False
        self._abandon_requests('node shutting down')
        if self._worker is not None:
            self._worker.stop(timeout_s)
            self._worker = None

    def _abandon_requests(self, reason: str) -> None:
        """Fail every waiting ~/segment call and find_target goal at once with ``reason``."""
        self.pending.abandon(reason)
        self.goals.fail_all(reason)

    # ---- prompts and parameters ------------------------------------------------------
    def validate_prompt(self, text: str) -> str:
        """Cleaned prompt, or PromptError (too long, unprintable, over the token limit)."""
        predictor = self.predictor
        return check_prompt(
            text,
            self.settings.max_prompt_chars,
            predictor.tokenize if predictor is not None else None,
        )

    def _on_parameters_changed(self, names: set[str]) -> None:
        if 'prompt' in names and self.predictor is not None:
            self.control.apply_command(self.settings.prompt, 'parameter prompt')
        if isinstance(self.segmenter, TrackSegmenter):
            self.segmenter.update(**vars(self.settings.tracker_settings()))

    # ---- requests (RequestBackend) ---------------------------------------------------
    def state_label(self) -> str:
        """The lifecycle state in words."""
        if self.active:
            return 'active'
        return 'inactive' if self.predictor is not None else 'unconfigured'

    def segment_async(
        self, prompt: str, image: Any | None, clicks: tuple[list, list] | None = None
    ) -> concurrent.futures.Future:
        """Queue a one-shot segmentation on the worker; see RequestBackend. It runs in image
        mode on the model (with ``clicks`` when given), never through the tracker: tracked
        targets are not touched.
        """
        if not self.active or self.predictor is None:
            raise RequestRefused(f'node is {self.state_label()}, not active')
        one_shot = predictor_segmenter(self.predictor, clicks)
        return self.runner.submit(self.validate_prompt(prompt), image, self._worker, one_shot)

    # ---- faults and diagnostics ------------------------------------------------------
    def report(self, kind: str, where: str, exc: BaseException) -> None:
        """An exception of a callback or the worker: logged (throttled per kind) and counted;
        nothing while the node shuts down (the ROS context is going away).
        """
        if not self.closing:
            self.stats.warn(kind, f'{where} failed ({describe(exc)}); the node carries on')

    def log_warning(self, message: str) -> None:
        """A warning in the node's log (none while it shuts down)."""
        if not self.closing:
            self.get_logger().warning(message)

    def _publish_diagnostics(self) -> None:
        if self.closing:
            return
        model = model_values(self.predictor, self.settings, self.segmenter)
        state = self.state_label()
        snap = node_status(state, self.error, self.stats, self.targets, self.inputs, model)
        stamp = self.get_clock().now().to_msg()
        name = self.get_fully_qualified_name()
        self.io.publish('/diagnostics', diagnostic_array(snap, name, model['device'], stamp))

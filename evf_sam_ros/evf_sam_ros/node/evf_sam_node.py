"""evf_sam_node: camera images + text commands in; masks, segmentations and 3D targets out.

A lifecycle node: configure loads the model, activate subscribes and starts the inference
thread, deactivate stops them, cleanup frees the model (GPU memory included). With
``autostart`` (default) it configures and activates itself. Subscription callbacks only
store messages; the worker thread runs the shared frame pipeline (``evf_sam_ros.pipeline``)
on the newest frame, so commands, services and parameter changes answer during a forward
pass. Its topics, services and action are declared in ``node.interface``; its parameters in
``node.settings``.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from evf_sam_ros.model import EvfSamError, EvfSamPredictor
from evf_sam_ros.node.clicks import ClickInput
from evf_sam_ros.node.diagnostics import (
    NodeStats,
    diagnostic_array,
    dtype_name,
    model_values,
    summarize,
)
from evf_sam_ros.node.frames import FrameRunner
from evf_sam_ros.node.inputs import CameraInputs
from evf_sam_ros.node.interface import Handlers
from evf_sam_ros.node.io import NodeIO, make_groups, qos_advice
from evf_sam_ros.node.lifecycle_guard import guarded_change_state
from evf_sam_ros.node.loading import load_model
from evf_sam_ros.node.parameters import NodeParameters
from evf_sam_ros.node.requests import (
    FindTargetAction,
    GoalRegistry,
    PendingRequests,
    RequestRefused,
    SegmentService,
)
from evf_sam_ros.node.settings import NodeSettings
from evf_sam_ros.node.target_control import TargetControl
from evf_sam_ros.node.worker import InferenceWorker
from evf_sam_ros.pipeline import FrameMessages, SourceImage, TargetList, check_prompt
from evf_sam_ros.pipeline.frame import Segmenter, predictor_segmenter
from evf_sam_ros.pipeline.track import TrackSegmenter


class EvfSamNode(LifecycleNode):
    """Text-prompted segmentation node (see the package README for topics and parameters)."""

    def __init__(self, node_name: str = 'evf_sam', **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self.predictor: EvfSamPredictor | None = None
        self.segmenter: Segmenter | None = None
        self.active = self.closing = False
        self.load_error = ''
        self.params = NodeParameters(
            self,
            on_change=self._on_parameters_changed,
            loaded=lambda: self.predictor is not None,
            validate_prompt=self.validate_prompt,
        )
        self.stats = NodeStats(self._log_warning)
        self.inputs = CameraInputs()
        self.targets = TargetList(self.validate_prompt)
        self.goals, self.pending = GoalRegistry(), PendingRequests()
        self._worker: InferenceWorker | None = None
        self.outputs = FrameMessages()
        self.io = NodeIO(self, self._handlers(), make_groups())
        self.runner = FrameRunner(
            lambda: self.settings,
            lambda: self.segmenter,
            self.inputs,
            self.io,
            self.targets,
            self.goals,
            self.stats,
            self.outputs,
            publishing=lambda: self.active and not self.closing,
            now_ns=lambda: self.get_clock().now().nanoseconds,
        )
        self.io.create_servers(self.settings)
        self.create_timer(
            self.settings.diagnostics_period,
            self._publish_diagnostics,
            callback_group=self.io.groups['control'],
        )
        if (
            self.settings.autostart
            and self.trigger_configure() == TransitionCallbackReturn.SUCCESS
        ):
            self.trigger_activate()

    def _handlers(self) -> Handlers:
        """What each topic, service and action of node.interface calls."""
        self.control = control = TargetControl(
            self.targets,
            self.stats,
            self.outputs,
            publish=lambda name, msg: self.io.publish(name, msg),
            has_subscribers=lambda name: self.io.has_subscribers(name),
            last_image=lambda: self.inputs.last_image,
        )
        action = FindTargetAction(
            self, self.goals, lambda: self.settings.action_timeout, self._log_warning
        )
        clicks = ClickInput(
            lambda: self.segmenter,
            lambda: next((t.id for t in self.targets.snapshot()), None),
            self.stats.warn,
            lambda: self.stats.count('clicks_applied'),
            lambda: self.settings.target_settings(),
            lambda: self.inputs.last_image.header.frame_id if self.inputs.last_image else '',
        )
        return Handlers(
            image=self.inputs.on_image,
            compressed_image=self.inputs.on_compressed_image,
            depth=self.inputs.on_depth,
            camera_info=self.inputs.on_camera_info,
            command=control.on_command,
            target_add=control.on_add,
            target_remove=control.on_remove,
            target_clear=control.on_clear,
            incompatible_qos=lambda _: self.stats.warn('qos', qos_advice(self.settings)),
            click_positive=clicks.positive,
            click_negative=clicks.negative,
            click_positive_stamped=clicks.positive_stamped,
            click_negative_stamped=clicks.negative_stamped,
            segment=SegmentService(self, lambda: self.settings.service_timeout),
            correct_target=clicks.serve,
            add_target=control.add_service,
            remove_target=control.remove_service,
            clear_targets=control.clear_service,
            find_target_goal=action.on_goal,
            find_target_execute=action.execute,
        )

    @property
    def settings(self) -> NodeSettings:
        """The current NodeSettings snapshot."""
        return self.params.settings

    # rclpy (Humble, Jazzy) raises out of executor.spin() when change_state asks for a
    # transition the current state does not have (e.g. activate twice): refuse it instead.
    _LifecycleNodeMixin__on_change_state = guarded_change_state(
        LifecycleNode._LifecycleNodeMixin__on_change_state
    )

    # ---- lifecycle -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model (on failure: FAILURE, stay unconfigured), create the publishers and
        apply the prompt parameter.
        """
        s = self.settings
        if self.params.errors:
            return self._load_failed('; '.join(self.params.errors))
        self.get_logger().info(f'loading {s.checkpoint} (device {s.device}, dtype {s.dtype})')
        try:
            self.predictor, self.segmenter = load_model(s)
        except (EvfSamError, RuntimeError, OSError) as exc:  # RuntimeError/OSError: I/O, OOM
            return self._load_failed(str(exc))
        self.load_error = ''
        p = self.predictor
        self.get_logger().info(f'loaded {p.regime.name} on {p.device} ({dtype_name(p.dtype)})')
        self.io.create_publishers(s)
        if s.prompt.strip():
            self.control.apply_command(s.prompt, 'parameter prompt')
        self.control.announce()
        return TransitionCallbackReturn.SUCCESS

    def _load_failed(self, reason: str) -> TransitionCallbackReturn:
        self.load_error = reason
        self.get_logger().error(f'model failed to load; staying unconfigured: {reason}')
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start the inference thread."""
        self.io.subscribe(self.settings)
        self._worker = InferenceWorker(
            self.inputs.frames,
            self.runner.process,
            self._on_worker_error,
            max_rate=lambda: self.settings.max_rate,
        )
        self._worker.start()
        result = super().on_activate(state)
        self.active = True
        self.control.announce()
        return result

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
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate (if active) and clean up (if a model is loaded)."""
        if self.active:
            self.on_deactivate(state)
        if self.predictor is not None:
            self.on_cleanup(state)
        return TransitionCallbackReturn.SUCCESS

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
        """Queue a one-shot segmentation on the worker; see RequestBackend."""
        if not self.active:
            raise RequestRefused(f'node is {self.state_label()}, not active')
        cleaned = self.validate_prompt(prompt)
        last = self.inputs.last_image
        source = SourceImage(image, False, time.monotonic()) if image is not None else last
        if source is None:
            raise RequestRefused('no image received yet on `image`; put one in the request')
        future = self.pending.new()
        worker = self._worker
        if worker is None:
            self.pending.settle(future, error=RequestRefused('node is shutting down'))
        else:
            segmenter = None if clicks is None else predictor_segmenter(self.predictor, clicks)
            worker.submit(
                lambda: self.runner.serve(source, cleaned, future, self.pending, segmenter)
            )
        return future

    # ---- faults and diagnostics ------------------------------------------------------
    def _on_worker_error(self, where: str, exc: BaseException) -> None:
        if self.closing:  # the ROS context is going away: nothing can be published or logged
            return
        self.stats.warn(
            'worker_error',
            f'inference failed ({type(exc).__name__}: {exc}); '
            'the node carries on with the next frame',
        )

    def _log_warning(self, message: str) -> None:
        if not self.closing:
            self.get_logger().warning(message)

    def _publish_diagnostics(self) -> None:
        if self.closing:
            return
        i, t = self.inputs, self.targets
        values = {
            **self.stats.values(),
            'prompt': t.primary_prompt,
            'targets': len(t.snapshot()),
            **{'frames_received': i.frames.received, 'frames_dropped': i.frames.dropped},
            **model_values(self.predictor, self.settings, self.segmenter),
        }
        problems = dict(self.stats.warnings.counts)
        snap = summarize(
            self.state_label(), self.load_error, values, problems, self.inputs.rate.rate()
        )
        name, stamp = self.get_fully_qualified_name(), self.get_clock().now().to_msg()
        self.io.publish('/diagnostics', diagnostic_array(snap, name, values['device'], stamp))

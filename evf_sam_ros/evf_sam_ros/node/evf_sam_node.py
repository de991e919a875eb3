"""evf_sam_node: camera images + text commands in; masks, segmentations and 3D targets out.

A lifecycle node: configure loads the model, activate subscribes and starts the inference
thread, deactivate stops them, cleanup frees the model (GPU memory included). With
``autostart`` (default) it configures and activates itself. Subscription callbacks only
store messages; the worker thread runs the shared frame pipeline (``evf_sam_ros.pipeline``)
on the newest frame, so commands, services and parameter changes answer during a forward
pass. The service and the action exist in every state and answer "not active" when so.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Optional

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from evf_sam_ros.codecs.image import array_to_imgmsg, stamp_ns
from evf_sam_ros.model import EvfSamError, EvfSamPredictor
from evf_sam_ros.node.diagnostics import diagnostic_array, summarize
from evf_sam_ros.node.io import NodeIO
from evf_sam_ros.node.lifecycle_guard import guarded_change_state
from evf_sam_ros.node.requests import (
    FindTargetAction,
    GoalRegistry,
    PendingRequests,
    RequestRefused,
    SegmentService,
)
from evf_sam_ros.node.runtime import LatencyStats, LatestSlot, RateMeter, ThrottledWarnings
from evf_sam_ros.node.settings import NodeParameters
from evf_sam_ros.node.target_control import TargetControl
from evf_sam_ros.node.worker import InferenceWorker
from evf_sam_ros.pipeline import (
    BAD_IMAGE,
    NO_PROMPT,
    ONE_SHOT,
    BoxMemory,
    BufferedDepth,
    FrameMessages,
    FrameOutput,
    NamedTarget,
    Segmenter,
    SourceImage,
    StampedBuffer,
    TargetList,
    TargetOutput,
    check_prompt,
    predictor_segmenter,
    process_frame,
)
from evf_sam_ros.pipeline.drawing import draw_result
from evf_sam_ros.pipeline.messages import without_mask
from evf_sam_ros.pipeline.pick_messages import grasp_msgs
from evf_sam_ros.pipeline.track import TrackSegmenter


class EvfSamNode(LifecycleNode):
    """Text-prompted segmentation node (see the package README for topics and parameters)."""

    def __init__(self, node_name: str = 'evf_sam', **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self.params = NodeParameters(
            self,
            on_change=self._on_parameters_changed,
            loaded=lambda: self.predictor is not None,
            validate_prompt=self.validate_prompt,
        )
        self.warnings = ThrottledWarnings(self._log_warning)
        self.predictor: Optional[EvfSamPredictor] = None
        self.frames: LatestSlot[SourceImage] = LatestSlot()
        self.last_image: Optional[SourceImage] = None
        self.depth = StampedBuffer()
        self.camera_info: Optional[Any] = None
        self._camera_info_seen = threading.Event()
        self.targets = TargetList(self.validate_prompt)
        self.segmenter: Optional[Segmenter] = None
        self.outputs = FrameMessages()
        self.box_memory = BoxMemory()
        self.goals = GoalRegistry()
        self.lock = threading.Lock()
        self.active = False
        self.closing = False
        self.load_error = ''
        self.counters = {
            'frames_processed': 0,
            'frames_skipped_no_prompt': 0,
            'frames_bad': 0,
            'commands': 0,
            'prompts_rejected': 0,
        }
        self.inference_ms, self.latency_ms = LatencyStats(), LatencyStats()
        self.overhead_ms, self.input_rate = LatencyStats(), RateMeter()
        self.control_group = ReentrantCallbackGroup()
        commands = MutuallyExclusiveCallbackGroup()  # commands and target changes in order
        self.io = NodeIO(
            self,
            inputs=MutuallyExclusiveCallbackGroup(),
            depth=MutuallyExclusiveCallbackGroup(),
            commands=commands,
        )
        self.target_control = TargetControl(
            self, self.targets, self._targets_changed, self._target_refused, commands
        )
        self.pending = PendingRequests()
        self._worker: Optional[InferenceWorker] = None
        self._create_requests()
        self._diag_pub = self.create_publisher(_diag_type(), '/diagnostics', 10)
        self.create_timer(
            self.settings.diagnostics_period,
            self._publish_diagnostics,
            callback_group=self.control_group,
        )
        if (
            self.settings.autostart
            and self.trigger_configure() == TransitionCallbackReturn.SUCCESS
        ):
            self.trigger_activate()

    @property
    def settings(self) -> Any:
        """The current NodeSettings snapshot."""
        return self.params.settings

    def _create_requests(self) -> None:
        from rclpy.action import ActionServer, CancelResponse

        from evf_sam_msgs.action import FindTarget
        from evf_sam_msgs.srv import Segment

        service = SegmentService(self, lambda: self.settings.service_timeout)
        self.create_service(Segment, '~/segment', service, callback_group=self.control_group)
        action = FindTargetAction(
            self, self.goals, lambda: self.settings.action_timeout, self.get_logger().warning
        )
        self._action_server = ActionServer(
            self,
            FindTarget,
            '~/find_target',
            action.execute,
            goal_callback=action.on_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=self.control_group,
        )

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
            self.predictor = EvfSamPredictor.from_pretrained(
                s.checkpoint,
                s.device,
                s.dtype,
                s.variant or None,
                cuda_graphs=s.cuda_graphs,
                preprocess=s.preprocess,
                torch_compile=s.torch_compile,
                compile_cache_dir=s.compile_cache_dir or None,
            )
        except (EvfSamError, RuntimeError, OSError) as exc:  # RuntimeError/OSError: I/O, CUDA OOM
            return self._load_failed(str(exc))
        self.load_error = ''
        p = self.predictor
        try:
            self.segmenter = self._segmenter(p)
        except EvfSamError as exc:  # track mode with a SAM ViT checkpoint
            p.release()
            self.predictor = None
            return self._load_failed(str(exc))
        self.get_logger().info(f'loaded {p.regime.name} on {p.device} ({_dtype_name(p.dtype)})')
        self.io.create_publishers()
        if s.prompt.strip():
            self._apply_command(s.prompt, 'parameter prompt')
        self._targets_changed()
        return TransitionCallbackReturn.SUCCESS

    def _segmenter(self, predictor: EvfSamPredictor) -> Segmenter:
        """Segment mode: ground every frame; track mode: an EvfSamTracker on the same model
        (VariantError for SAM ViT checkpoints, which have no memory).
        """
        if self.settings.mode != 'track':
            return predictor_segmenter(predictor)
        from evf_sam_ros.model import EvfSamTracker

        return TrackSegmenter(EvfSamTracker(predictor, self.settings.tracker_settings()))

    def _load_failed(self, reason: str) -> TransitionCallbackReturn:
        self.load_error = reason
        self.get_logger().error(f'model failed to load; staying unconfigured: {reason}')
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start the inference thread."""
        self.io.subscribe()
        self._worker = InferenceWorker(
            self.frames,
            self._process_frame,
            self._on_worker_error,
            max_rate=lambda: self.settings.max_rate,
        )
        self._worker.start()
        result = super().on_activate(state)
        self.active = True
        self._targets_changed()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Answer waiting requests, unsubscribe, stop the inference thread, drop queued frames."""
        self.active = False
        self._abandon_requests('node deactivated')
        self.io.unsubscribe()
        if self._worker is not None and not self._worker.stop():
            self.get_logger().warning('inference thread still busy; it stops after its pass')
        self._worker = None
        self.frames.clear()
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
        self.last_image, self.camera_info = None, None
        self._camera_info_seen.clear()
        self.depth.clear()
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

    def count(self, key: str) -> None:
        """Add one to a diagnostics counter (callbacks and the worker run on several threads)."""
        with self.lock:
            self.counters[key] += 1

    # ---- inputs (called by NodeIO's callbacks) ----------------------------------------
    def on_image(self, msg: Any, compressed: bool) -> None:
        """Keep the newest image for the worker (an older one not taken yet is dropped)."""
        image = SourceImage(msg, compressed, time.monotonic())
        self.last_image = image
        self.input_rate.tick()
        self.frames.put(image)

    def on_camera_info(self, msg: Any) -> None:
        """Keep the newest camera_info."""
        self.camera_info = msg
        self._camera_info_seen.set()

    def _camera_info_now(self) -> Optional[Any]:
        """The newest camera_info. The first one is waited for (up to depth_wait) while a
        publisher exists: it can arrive after the first image and depth, as late depth can.
        """
        if self.camera_info is None and self.io.publisher_present('camera_info'):
            self._camera_info_seen.wait(self.settings.depth_wait)
        return self.camera_info

    def on_command(self, text: str) -> None:
        """A command: set (or with an empty string remove) the primary target."""
        self.count('commands')
        self._apply_command(text, 'command')

    # ---- prompts ---------------------------------------------------------------------
    def validate_prompt(self, text: str) -> str:
        """Cleaned prompt, or PromptError (too long, unprintable, over the token limit)."""
        predictor = self.predictor
        return check_prompt(
            text,
            self.settings.max_prompt_chars,
            predictor.tokenize if predictor is not None else None,
        )

    def _apply_command(self, text: str, source: str) -> bool:
        problem = self.targets.command(text, source)
        if problem is not None:
            self._target_refused(problem.message)
            return False
        self._targets_changed()
        return True

    def _on_parameters_changed(self, names: set[str]) -> None:
        if 'prompt' in names and self.predictor is not None:
            self._apply_command(self.settings.prompt, 'parameter prompt')
        if isinstance(self.segmenter, TrackSegmenter):
            self.segmenter.update(**vars(self.settings.tracker_settings()))

    def _targets_changed(self) -> None:
        self.io.publish_targets(self.targets)
        image = self.last_image
        if image is not None and self.io.has_subscribers('markers'):  # removed: no markers
            gone = self.outputs.deleted_markers(
                image.header, {t.id for t in self.targets.snapshot()}
            )
            if gone is not None:
                self.io.publish('markers', gone)

    def _target_refused(self, message: str) -> None:
        self.count('prompts_rejected')
        self.warnings.warn('prompt_rejected', message)

    # ---- requests (RequestBackend) ---------------------------------------------------
    def state_label(self) -> str:
        """The lifecycle state in words."""
        if self.active:
            return 'active'
        return 'inactive' if self.predictor is not None else 'unconfigured'

    def segment_async(self, prompt: str, image: Optional[Any]) -> concurrent.futures.Future:
        """Queue a one-shot segmentation on the worker; see RequestBackend."""
        if not self.active:
            raise RequestRefused(f'node is {self.state_label()}, not active')
        cleaned = self.validate_prompt(prompt)
        source = (
            SourceImage(image, False, time.monotonic()) if image is not None else self.last_image
        )
        if source is None:
            raise RequestRefused('no image received yet on `image`; put one in the request')
        future = self.pending.new()
        worker = self._worker
        if worker is None:
            self.pending.settle(future, error=RequestRefused('node is shutting down'))
        else:
            worker.submit(lambda: self._serve(source, cleaned, future))
        return future

    def _serve(self, source: SourceImage, prompt: str, future: concurrent.futures.Future) -> None:
        if future.done():  # abandoned while queued
            return
        try:
            out = self._run(source, [NamedTarget(ONE_SHOT, prompt)])
        except Exception as exc:  # answered to the caller and logged, never swallowed
            self.warnings.warn('service_error', f'~/segment failed: {type(exc).__name__}: {exc}')
            self.pending.settle(future, error=RequestRefused(f'{type(exc).__name__}: {exc}'))
            return
        if out.status == BAD_IMAGE:
            self.pending.settle(future, error=RequestRefused(out.problems[0].message))
        else:
            self.pending.settle(future, result=out.targets[0].messages.segmentation)

    # ---- the worker's side -----------------------------------------------------------
    def _run(
        self, source: SourceImage, targets: list[NamedTarget], remember: bool = False
    ) -> FrameOutput:
        """The shared frame pipeline with this node's model, depth and settings; its
        problems are counted and warned (throttled). ``remember``: the frame of the targets
        (their boxes name the next frame's axes).
        """
        s = self.settings
        depth = None
        if s.use_depth:
            depth = BufferedDepth(
                self.depth,
                self._camera_info_now,
                s.depth_max_stamp_diff,
                s.depth_wait,
                self.io.publisher_present('depth'),
            )
        segmenter = self.segmenter
        if segmenter is None:
            raise RequestRefused('node is unconfigured: no model loaded')
        out = process_frame(
            source,
            targets,
            segmenter,
            depth,
            s.target_settings(),
            with_cloud=self.io.has_subscribers('target_cloud'),
            pick=s.pick_settings(),
            memory=self.box_memory if remember else None,
        )
        for problem in out.problems:
            self.warnings.warn(*problem)
        return out

    def _process_frame(self, source: SourceImage) -> None:
        targets = list(self.targets.snapshot())
        named = {t.prompt for t in targets}
        goals = [
            NamedTarget(ONE_SHOT, p) for p in dict.fromkeys(self.goals.prompts()) if p not in named
        ]  # a goal on a target's prompt reads that target's result
        out = self._run(source, targets + goals, remember=True)
        if out.status == NO_PROMPT:
            self.count('frames_skipped_no_prompt')
            return
        if out.status == BAD_IMAGE:
            self.count('frames_bad')
            return
        self.inference_ms.add(out.model_s * 1000.0)  # the frame's model time, all prompts
        self.count('frames_processed')
        if targets:
            self._publish(out.targets[: len(targets)], out.rgb)
        self.goals.feed(
            {t.prompt: without_mask(t.messages.segmentation) for t in reversed(out.targets)},
            {t.prompt: grasp_msgs(t.pick, t.target.id) for t in reversed(out.targets)},
        )
        self.overhead_ms.add((time.monotonic() - source.received_monotonic - out.model_s) * 1e3)

    def _publish(self, outputs: list[TargetOutput], rgb: Any) -> None:
        """Every target on ``segmentations``, the first one on the single-target topics, the
        cloud and markers only while someone subscribes (FrameMessages).
        """
        if not self.active or self.closing:
            return
        subscribed = self.io.has_subscribers
        for role, msg in self.outputs.build(
            outputs, subscribed('target_cloud'), subscribed('markers'), subscribed('grasps')
        ):
            self.io.publish(role, msg)
        target = outputs[0]
        seg = target.messages.segmentation
        if self.settings.publish_overlay and self.io.has_subscribers('overlay'):
            picture = draw_result(rgb, target.result, seg.found)
            self.io.publish('overlay', array_to_imgmsg(picture, 'rgb8', seg.header))
        now = self.get_clock().now().nanoseconds
        self.latency_ms.add((now - stamp_ns(seg.header)) / 1e6)

    def _on_worker_error(self, where: str, exc: BaseException) -> None:
        if self.closing:  # the ROS context is going away: nothing can be published or logged
            return
        self.warnings.warn(
            'worker_error',
            f'inference failed ({type(exc).__name__}: {exc}); '
            'the node carries on with the next frame',
        )

    def _log_warning(self, message: str) -> None:
        if not self.closing:
            self.get_logger().warning(message)

    # ---- diagnostics -----------------------------------------------------------------
    def _track_counters(self) -> dict[str, int]:
        segmenter = self.segmenter
        if not isinstance(segmenter, TrackSegmenter):
            return {}
        c = segmenter.counters
        return {
            'track_groundings': c.groundings,
            'track_lost': c.lost,
            'track_regrounded': c.regrounded,
        }

    def _publish_diagnostics(self) -> None:
        if self.closing:
            return
        p = self.predictor
        stats = {
            'inference_ms': self.inference_ms,
            'stamp_to_publish_ms': self.latency_ms,
            'node_overhead_ms': self.overhead_ms,
        }
        counters = {
            **self.counters,
            'prompt': self.targets.primary_prompt,
            'targets': len(self.targets.snapshot()),
            'frames_received': self.frames.received,
            'frames_dropped': self.frames.dropped,
            **{f'{k}_p{q}': v.percentile(q) for k, v in stats.items() for q in (50, 95)},
            'model': p.name if p else self.settings.checkpoint,
            'variant': p.regime.name if p else '',
            'device': str(p.device) if p else '',
            'dtype': _dtype_name(p.dtype) if p else '',
            'mode': self.settings.mode,
            **self._track_counters(),
        }
        snap = summarize(
            self.state_label(),
            self.load_error,
            counters,
            dict(self.warnings.counts),
            self.input_rate.rate(),
        )
        self._diag_pub.publish(
            diagnostic_array(
                snap,
                self.get_fully_qualified_name(),
                counters['device'],
                self.get_clock().now().to_msg(),
            )
        )


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace('torch.', '')


def _diag_type() -> type:
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray

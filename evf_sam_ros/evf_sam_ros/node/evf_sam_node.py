"""evf_sam_node: camera images + text commands in; masks, segmentations and 3D targets out.

A lifecycle node: configure loads the model, activate subscribes and starts the inference
thread, deactivate stops them, cleanup frees the model (GPU memory included). With
``autostart`` (default) it configures and activates itself. Subscription callbacks only
store messages; the worker thread decodes and runs the newest frame, so commands, services
and parameter changes answer while a forward pass runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from ..conversions import ConversionError, array_to_imgmsg, stamp_ns
from ..drawing import draw_result
from ..messages import inference_seconds, point_stamped_msg, segmentation_msg
from ..model import EvfSamError, EvfSamPredictor, PromptError
from ..model.tokenizer import clean_prompt
from ..targets import estimate_target
from .diagnostics import diagnostic_array, summarize
from .inputs import DepthInput, Frame, StampedBuffer, match_depth
from .requests import RequestHandlers
from .runtime import LatencyStats, LatestSlot, RateMeter, ThrottledWarnings
from .settings import PARAMS, SPECS, NodeSettings, check_value
from .worker import InferenceWorker

OUTPUT_QOS = 10


class EvfSamNode(LifecycleNode):
    """Text-prompted segmentation node (see the package README for topics and parameters)."""

    def __init__(self, node_name: str = "evf_sam", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, ParameterDescriptor(
                description=spec.description + ("" if spec.runtime else " (applied at configure)")))
        self.settings = NodeSettings.from_values(
            {p.name: self.get_parameter(p.name).value for p in PARAMS})
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.warnings = ThrottledWarnings(self.get_logger().warning)
        self.predictor: Optional[EvfSamPredictor] = None
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.last_frame: Optional[Frame] = None
        self.depth = StampedBuffer()
        self.camera_info: Optional[Any] = None
        self.lock = threading.Lock()
        self.prompt = ""
        self.active = False
        self.load_error = ""
        self.counters = {"frames_processed": 0, "frames_skipped_no_prompt": 0, "frames_bad": 0,
                         "commands": 0, "prompts_rejected": 0}
        self.inference_ms, self.latency_ms, self.input_rate = LatencyStats(), LatencyStats(), RateMeter()
        self.overhead_ms = LatencyStats()  # callback -> outputs published, minus model time
        self.inputs_group = MutuallyExclusiveCallbackGroup()
        self.commands_group = MutuallyExclusiveCallbackGroup()  # commands apply in arrival order
        self.control_group = ReentrantCallbackGroup()
        self.requests = RequestHandlers(self)
        self._worker: Optional[InferenceWorker] = None
        self._subs: list[Any] = []
        self._depth_sub: Optional[Any] = None
        self._pubs: dict[str, Any] = {}
        self._diag_pub = self.create_publisher(_diag_type(), "/diagnostics", 10)
        self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics,
                          callback_group=self.control_group)
        if self.settings.autostart and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ---- lifecycle -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        self.get_logger().info(f"loading {s.checkpoint} (device {s.device}, dtype {s.dtype})")
        try:
            self.predictor = EvfSamPredictor.from_pretrained(
                s.checkpoint, s.device, s.dtype, s.variant or None, cuda_graphs=s.cuda_graphs,
                preprocess=s.preprocess, torch_compile=s.torch_compile,
                compile_cache_dir=s.compile_cache_dir or None)
        except (EvfSamError, RuntimeError, OSError) as exc:  # OSError/RuntimeError: I/O, CUDA OOM
            self.load_error = str(exc)
            self.get_logger().error(f"model failed to load; staying unconfigured: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.load_error = ""
        p = self.predictor
        self.get_logger().info(f"loaded {p.regime.name} on {p.device} ({str(p.dtype).replace('torch.', '')})")
        for name, msg_type in (("mask", Image), ("overlay", Image), ("segmentation", _seg_type()),
                               ("target_point", _point_type())):
            self._pubs[name] = self.create_lifecycle_publisher(msg_type, name, OUTPUT_QOS)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pubs["prompt"] = self.create_lifecycle_publisher(String, "prompt", latched)
        self.requests.create()
        self._set_prompt_checked(s.prompt, source="parameter prompt")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._subscribe()
        self._worker = InferenceWorker(self.frames, self._process_frame, self._on_worker_error,
                                       max_rate=lambda: self.settings.max_rate)
        self._worker.start()
        result = super().on_activate(state)
        self.active = True
        self._pubs["prompt"].publish(String(data=self.prompt))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs, self._depth_sub = [], None
        if self._worker is not None and not self._worker.stop():
            self.get_logger().warning("inference thread still busy; it will stop after its forward pass")
        self._worker = None
        self.frames.clear()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self.requests.destroy()
        if self.predictor is not None:
            self.predictor.release()
        self.predictor = None
        self.last_frame, self.camera_info = None, None
        self.depth.clear()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.on_deactivate(state)
        if self.predictor is not None:
            self.on_cleanup(state)
        return TransitionCallbackReturn.SUCCESS

    def count(self, key: str) -> None:
        """Add one to a diagnostics counter (callbacks and the worker run on several threads)."""
        with self.lock:
            self.counters[key] += 1

    def submit(self, job: Any) -> bool:
        """Run ``job`` on the inference thread before the next frame; False when inactive."""
        worker = self._worker
        if worker is None:
            return False
        worker.submit(job)
        return True

    def stop(self) -> None:
        """Stop the worker before the executor goes away (idempotent)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    # ---- inputs ----------------------------------------------------------------------
    def _subscribe(self) -> None:
        s = self.settings
        reliability = ReliabilityPolicy.RELIABLE if s.image_qos_reliability == "reliable" \
            else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=int(s.image_qos_depth), reliability=reliability)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        kw = dict(callback_group=self.inputs_group, event_callbacks=events)
        if s.compressed_input:
            self._subs.append(self.create_subscription(CompressedImage, "image/compressed",
                                                       lambda m: self._on_image(m, True), qos, **kw))
        else:
            self._subs.append(self.create_subscription(Image, "image", lambda m: self._on_image(m, False),
                                                       qos, **kw))
        if s.use_depth:
            self._depth_sub = self.create_subscription(Image, "depth", self.depth.add, qos, **kw)
            self._subs.append(self._depth_sub)
            self._subs.append(self.create_subscription(CameraInfo, "camera_info", self._on_camera_info,
                                                       qos, **kw))
        commands_qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
        self._subs.append(self.create_subscription(String, "command", self._on_command, commands_qos,
                                                   callback_group=self.commands_group))

    def _on_incompatible_qos(self, event: Any) -> None:
        self.warnings.warn("qos", "an input publisher's QoS is incompatible with this subscription "
                                  f"(image_qos.reliability={self.settings.image_qos_reliability}); "
                                  "for best-effort cameras set image_qos.reliability: best_effort")

    def _on_image(self, msg: Any, compressed: bool) -> None:
        frame = Frame(msg, compressed, time.monotonic())
        self.last_frame = frame
        self.input_rate.tick()
        self.frames.put(frame)

    def _on_camera_info(self, msg: Any) -> None:
        self.camera_info = msg

    def _on_command(self, msg: String) -> None:
        self.count("commands")
        self._set_prompt_checked(msg.data, source="command")

    # ---- prompts and parameters ------------------------------------------------------
    def validate_prompt(self, text: str) -> str:
        """Cleaned prompt, or PromptError (too long, unprintable, over the token limit)."""
        if len(text) > self.settings.max_prompt_chars:
            raise PromptError(f"prompt of {len(text)} characters refused (max_prompt_chars "
                              f"{self.settings.max_prompt_chars})")
        cleaned = clean_prompt(text)
        if self.predictor is not None:
            self.predictor.tokenize(cleaned)
        return cleaned

    def _set_prompt_checked(self, text: str, source: str) -> bool:
        """Set (or with empty text clear) the current prompt; refuse a bad one with a warning."""
        try:
            cleaned = "" if not text.strip() else self.validate_prompt(text)
        except PromptError as exc:
            self.count("prompts_rejected")
            self.warnings.warn("prompt_rejected", f"{source} refused, keeping '{self.prompt}': {exc}")
            return False
        with self.lock:
            self.prompt = cleaned
        if "prompt" in self._pubs:
            self._pubs["prompt"].publish(String(data=cleaned))
        return True

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        for param in params:
            spec = SPECS.get(param.name)
            if spec is None:
                continue
            reason = check_value(spec, param.value)
            if reason is None and not spec.runtime and self.predictor is not None:
                reason = f"{param.name} applies at configure: cleanup the node first, then configure"
            if reason is None and param.name == "prompt" and param.value.strip():
                try:
                    self.validate_prompt(param.value)
                except PromptError as exc:
                    reason = str(exc)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        self.settings = self.settings.updated({p.name: p.value for p in params if p.name in SPECS})
        for param in params:
            if param.name == "prompt" and self.predictor is not None:
                self._set_prompt_checked(param.value, source="parameter prompt")
        return SetParametersResult(successful=True)

    # ---- the worker's side -----------------------------------------------------------
    def _process_frame(self, frame: Frame) -> None:
        with self.lock:
            current = self.prompt
        prompts = list(dict.fromkeys(([current] if current else []) + self.requests.goal_prompts()))
        if not prompts or self.predictor is None:
            self.count("frames_skipped_no_prompt")
            return
        try:
            rgb = frame.rgb()
        except ConversionError as exc:
            self.count("frames_bad")
            self.warnings.warn("bad_image", f"image dropped: {exc}")
            return
        started = time.monotonic()
        results = {r.prompt: r for r in self.predictor.predict_many(rgb, prompts)}
        model_s = time.monotonic() - started
        self.inference_ms.add(model_s * 1000.0)  # the frame's model time, all prompts
        depth = self.depth_for(frame.header, rgb.shape[:2])  # once per frame, whatever the prompts
        segs = {p: self.segmentation(frame.header, r, depth, len(results)) for p, r in results.items()}
        self.count("frames_processed")
        if current:
            self._publish(segs[current], results[current], rgb)
        self.requests.feed_goals(segs)
        self.overhead_ms.add((time.monotonic() - frame.received_monotonic - model_s) * 1000.0)

    def depth_for(self, header: Any, shape: tuple[int, int]) -> Optional[DepthInput]:
        """Depth and intrinsics for an image (None without use_depth); problems are warned."""
        s = self.settings
        if not s.use_depth:
            return None
        expected = self._depth_sub is not None and self.count_publishers(self._depth_sub.topic_name) > 0
        depth = match_depth(header, shape, self.depth, lambda: self.camera_info, s.depth_max_stamp_diff,
                            s.depth_wait, expected)
        for kind, message in depth.problems:
            self.warnings.warn(kind, message)
        return depth

    def segmentation(self, header: Any, result: Any, depth: Optional[DepthInput], prompts_on_frame: int = 1) -> Any:
        """evf_sam_msgs/Segmentation for a result, with the 3D target when depth allows."""
        depth_m = depth.depth_m if depth else None
        estimate = estimate_target(result, self.settings.target_settings(), depth_m,
                                   depth.intrinsics if depth else None)
        if estimate.found and depth_m is not None and estimate.point is None:
            self.warnings.warn("depth_invalid", f"too little valid depth inside the mask of '{result.prompt}' "
                                                f"(valid fraction {estimate.depth_valid_fraction:.2f}): "
                                                "no target_point")
        return segmentation_msg(result, header, estimate, inference_seconds(result, prompts_on_frame))

    def _publish(self, seg: Any, result: Any, rgb: Any) -> None:
        pubs = self._pubs
        if not self.active or not pubs:
            return
        pubs["segmentation"].publish(seg)
        pubs["mask"].publish(seg.mask)
        if seg.found and seg.target_point_valid:
            p = seg.target_point
            pubs["target_point"].publish(point_stamped_msg(seg.header, (p.x, p.y, p.z)))
        if self.settings.publish_overlay and pubs["overlay"].get_subscription_count() > 0:
            picture = draw_result(rgb, result, seg.found)
            pubs["overlay"].publish(array_to_imgmsg(picture, "rgb8", seg.header))
        now = self.get_clock().now().nanoseconds
        self.latency_ms.add((now - stamp_ns(seg.header)) / 1e6)

    def _on_worker_error(self, where: str, exc: BaseException) -> None:
        self.warnings.warn("worker_error", f"inference failed ({type(exc).__name__}: {exc}); "
                                           "the node carries on with the next frame")

    # ---- diagnostics -----------------------------------------------------------------
    def state_label(self) -> str:
        if self.active:
            return "active"
        return "inactive" if self.predictor is not None else "unconfigured"

    def _publish_diagnostics(self) -> None:
        p = self.predictor
        counters = {**self.counters, "prompt": self.prompt, "frames_received": self.frames.received,
                    "frames_dropped": self.frames.dropped,
                    "inference_ms_p50": self.inference_ms.percentile(50),
                    "inference_ms_p95": self.inference_ms.percentile(95),
                    "stamp_to_publish_ms_p50": self.latency_ms.percentile(50),
                    "stamp_to_publish_ms_p95": self.latency_ms.percentile(95),
                    "node_overhead_ms_p50": self.overhead_ms.percentile(50),
                    "node_overhead_ms_p95": self.overhead_ms.percentile(95),
                    "model": p.name if p else self.settings.checkpoint,
                    "variant": p.regime.name if p else "", "device": str(p.device) if p else "",
                    "dtype": str(p.dtype).replace("torch.", "") if p else ""}
        snap = summarize(self.state_label(), self.load_error, counters, dict(self.warnings.counts),
                         self.input_rate.rate())
        self._diag_pub.publish(diagnostic_array(snap, self.get_fully_qualified_name(), counters["device"],
                                                self.get_clock().now().to_msg()))


def _seg_type() -> type:
    from evf_sam_msgs.msg import Segmentation

    return Segmentation


def _point_type() -> type:
    from geometry_msgs.msg import PointStamped

    return PointStamped


def _diag_type() -> type:
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray

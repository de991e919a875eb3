"""The node's parameters: one table of specs (name, default, description, when it may change)
and the frozen settings snapshot the node works from. config/evf_sam.yaml mirrors the table."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..model import DEFAULT_CHECKPOINT
from ..targets import TargetSettings


@dataclass(frozen=True)
class ParamSpec:
    """runtime: may change while configured; otherwise only while unconfigured (it takes
    effect at the next configure). choices / low / high: allowed values."""

    name: str
    default: Any
    description: str
    runtime: bool = False
    choices: Optional[Sequence[str]] = None
    low: Optional[float] = None
    high: Optional[float] = None


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", DEFAULT_CHECKPOINT, "hub id or local checkpoint directory"),
    ParamSpec("device", "auto", "auto (cuda when available), cpu, cuda, cuda:N"),
    ParamSpec("dtype", "auto", "auto (float16 on CUDA, float32 on CPU), float32, float16, bfloat16",
              choices=("auto", "float32", "float16", "bfloat16")),
    ParamSpec("variant", "", "force a preprocessing regime (empty: detect from the checkpoint)",
              choices=("", "evf-sam", "evf-sam-multitask", "evf-sam2", "evf-sam2-multitask")),
    ParamSpec("cuda_graphs", True, "on CUDA, replay model parts as CUDA graphs (same results, ~2x faster)"),
    ParamSpec("preprocess", "auto", "auto (device on CUDA, exact on CPU), exact (official PIL steps), device "
              "(resizes on the GPU)", choices=("auto", "exact", "device")),
    ParamSpec("torch_compile", False, "compile the model parts with torch.compile (inductor); slow first start"),
    ParamSpec("compile_cache_dir", "", "persistent compile cache (empty: ~/.cache/evf_sam_ros/torch_compile)"),
    ParamSpec("autostart", True, "configure and activate at start-up, so a plain `ros2 run` works"),
    ParamSpec("prompt", "", "current prompt (the `command` topic sets it too); empty: idle", runtime=True),
    ParamSpec("score_threshold", 0.5, "least predicted IoU of a found target", runtime=True),
    ParamSpec("use_object_score", False, "also require SAM2's object score >= object_score_threshold",
              runtime=True),
    ParamSpec("object_score_threshold", 0.0, "least SAM2 object-score logit when use_object_score",
              runtime=True),
    ParamSpec("max_rate", 0.0, "most frames processed per second (0: as fast as the model runs)",
              runtime=True, low=0.0),
    ParamSpec("image_qos.reliability", "reliable", "QoS of the image/depth subscriptions",
              choices=("reliable", "best_effort")),
    ParamSpec("image_qos.depth", 1, "QoS history depth of the image/depth subscriptions", low=1, high=100),
    ParamSpec("compressed_input", False, "subscribe image/compressed (sensor_msgs/CompressedImage)"),
    ParamSpec("use_depth", True, "subscribe depth and camera_info and publish target_point"),
    ParamSpec("depth_max_stamp_diff", 0.05, "s; largest stamp gap between an image and its depth",
              runtime=True, low=0.0),
    ParamSpec("depth_wait", 0.1, "s; how long a result waits for its depth image to arrive",
              runtime=True, low=0.0, high=5.0),
    ParamSpec("depth_erode_iterations", 2, "3x3 erosions of the mask before reading depth", runtime=True,
              low=0, high=50),
    ParamSpec("min_depth", 0.1, "m; nearer depth readings are invalid", runtime=True, low=0.0),
    ParamSpec("max_depth", 10.0, "m; farther depth readings are invalid", runtime=True, low=0.0),
    ParamSpec("min_valid_depth_fraction", 0.05, "least fraction of mask pixels with valid depth",
              runtime=True, low=0.0, high=1.0),
    ParamSpec("publish_overlay", True, "publish `overlay` (only drawn while someone subscribes)",
              runtime=True),
    ParamSpec("max_prompt_chars", 4096, "longer commands are refused before tokenizing", runtime=True,
              low=1),
    ParamSpec("service_timeout", 60.0, "s; `~/segment` answers with success=false after this",
              runtime=True, low=0.1),
    ParamSpec("action_timeout", 30.0, "s; default timeout of find_target goals that give none",
              runtime=True, low=0.1),
    ParamSpec("diagnostics_period", 1.0, "s between /diagnostics messages", low=0.1),
)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def check_value(spec: ParamSpec, value: Any) -> Optional[str]:
    """Why ``value`` is not allowed for ``spec``, or None when it is."""
    if spec.choices is not None and value not in spec.choices:
        return f"{spec.name} must be one of {list(spec.choices)}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return f"{spec.name} must be finite, got {value}"
        if spec.low is not None and value < spec.low:
            return f"{spec.name} must be >= {spec.low}, got {value}"
        if spec.high is not None and value > spec.high:
            return f"{spec.name} must be <= {spec.high}, got {value}"
    return None


@dataclass(frozen=True)
class NodeSettings:
    """Snapshot of every parameter value, with dots in names replaced by underscores."""

    checkpoint: str
    device: str
    dtype: str
    variant: str
    cuda_graphs: bool
    preprocess: str
    torch_compile: bool
    compile_cache_dir: str
    autostart: bool
    prompt: str
    score_threshold: float
    use_object_score: bool
    object_score_threshold: float
    max_rate: float
    image_qos_reliability: str
    image_qos_depth: int
    compressed_input: bool
    use_depth: bool
    depth_max_stamp_diff: float
    depth_wait: float
    depth_erode_iterations: int
    min_depth: float
    max_depth: float
    min_valid_depth_fraction: float
    publish_overlay: bool
    max_prompt_chars: int
    service_timeout: float
    action_timeout: float
    diagnostics_period: float

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "NodeSettings":
        return cls(**{name.replace(".", "_"): values[name] for name in SPECS})

    def updated(self, values: Mapping[str, Any]) -> "NodeSettings":
        return dataclasses.replace(self, **{k.replace(".", "_"): v for k, v in values.items()})

    def target_settings(self) -> TargetSettings:
        return TargetSettings(
            score_threshold=self.score_threshold,
            object_score_threshold=self.object_score_threshold if self.use_object_score else None,
            erode_iterations=int(self.depth_erode_iterations), min_depth_m=self.min_depth,
            max_depth_m=self.max_depth, min_valid_fraction=self.min_valid_depth_fraction)

"""The node's parameters: one table of specs (name, default, description, when it may change)
and the frozen settings snapshot the node works from. config/evf_sam.yaml mirrors the table.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from evf_sam_ros.model import DEFAULT_CHECKPOINT
from evf_sam_ros.target3d.estimate import TargetSettings
from evf_sam_ros.target3d.grasps import GripperSettings
from evf_sam_ros.target3d.pick import PickSettings


@dataclass(frozen=True)
class ParamSpec:
    """runtime: may change while configured; otherwise only while unconfigured (it takes
    effect at the next configure). choices / low / high: allowed values.
    """

    name: str
    default: Any
    description: str
    runtime: bool = False
    choices: Optional[Sequence[str]] = None
    low: Optional[float] = None
    high: Optional[float] = None


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec('checkpoint', DEFAULT_CHECKPOINT, 'hub id or local checkpoint directory'),
    ParamSpec('device', 'auto', 'auto (cuda when available), cpu, cuda, cuda:N'),
    ParamSpec(
        'dtype',
        'auto',
        'auto (float16 on CUDA, float32 on CPU), float32, float16, bfloat16',
        choices=('auto', 'float32', 'float16', 'bfloat16'),
    ),
    ParamSpec(
        'variant',
        '',
        'force a preprocessing regime (empty: detect from the checkpoint)',
        choices=('', 'evf-sam', 'evf-sam-multitask', 'evf-sam2', 'evf-sam2-multitask'),
    ),
    ParamSpec(
        'cuda_graphs',
        True,
        'on CUDA, replay model parts as CUDA graphs (same results, ~2x faster)',
    ),
    ParamSpec(
        'preprocess',
        'auto',
        'auto (device on CUDA, exact on CPU), exact (official PIL '
        'steps), device (resizes on the GPU)',
        choices=('auto', 'exact', 'device'),
    ),
    ParamSpec(
        'torch_compile',
        False,
        'compile the model parts with torch.compile (inductor); slow first start',
    ),
    ParamSpec(
        'compile_cache_dir',
        '',
        'persistent compile cache (empty: ~/.cache/evf_sam_ros/torch_compile)',
    ),
    ParamSpec(
        'mode',
        'segment',
        'segment (ground the text on every frame) or track (ground once, '
        "then follow with SAM2's memory; SAM2 checkpoints)",
        choices=('segment', 'track'),
    ),
    ParamSpec(
        'lost_after',
        5,
        'track mode: weak frames in a row before a target is lost and re-grounded (0: never lost)',
        runtime=True,
        low=0,
        high=100000,
    ),
    ParamSpec(
        'reground_interval',
        0,
        'track mode: also re-ground every this many frames (0: only when lost)',
        runtime=True,
        low=0,
        high=100000,
    ),
    ParamSpec(
        'autostart', True, 'configure and activate at start-up, so a plain `ros2 run` works'
    ),
    ParamSpec(
        'prompt', '', 'current prompt (the `command` topic sets it too); empty: idle', runtime=True
    ),
    ParamSpec(
        'score_threshold',
        0.5,
        'least predicted IoU of a found target',
        runtime=True,
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'use_object_score',
        False,
        "also require SAM2's object score >= object_score_threshold",
        runtime=True,
    ),
    ParamSpec(
        'object_score_threshold',
        0.0,
        'least SAM2 object-score logit when use_object_score',
        runtime=True,
        low=-100.0,
        high=100.0,
    ),
    ParamSpec(
        'max_rate',
        0.0,
        'most frames processed per second (0: as fast as the model runs)',
        runtime=True,
        low=0.0,
        high=1000.0,
    ),
    ParamSpec(
        'image_qos.reliability',
        'reliable',
        'QoS of the image/depth subscriptions',
        choices=('reliable', 'best_effort'),
    ),
    ParamSpec(
        'image_qos.depth', 1, 'QoS history depth of the image subscription', low=1, high=100
    ),
    ParamSpec(
        'compressed_input', False, 'subscribe image/compressed (sensor_msgs/CompressedImage)'
    ),
    ParamSpec('use_depth', True, 'subscribe depth and camera_info and publish target_point'),
    ParamSpec(
        'depth_max_stamp_diff',
        0.05,
        's; largest stamp gap between an image and its depth',
        runtime=True,
        low=0.0,
        high=10.0,
    ),
    ParamSpec(
        'depth_wait',
        0.5,
        's; longest wait for a depth image that has not arrived yet',
        runtime=True,
        low=0.0,
        high=5.0,
    ),
    ParamSpec(
        'depth_erode_iterations',
        2,
        '3x3 erosions of the mask before reading depth',
        runtime=True,
        low=0,
        high=50,
    ),
    ParamSpec(
        'min_depth',
        0.1,
        'm; nearer depth readings are invalid',
        runtime=True,
        low=0.0,
        high=1000.0,
    ),
    ParamSpec(
        'max_depth',
        10.0,
        'm; farther depth readings are invalid',
        runtime=True,
        low=0.0,
        high=1000.0,
    ),
    ParamSpec(
        'min_valid_depth_fraction',
        0.05,
        'least fraction of mask pixels with valid depth',
        runtime=True,
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'cloud_voxel_size',
        0.0,
        'm; voxel edge of the published target_cloud (0: every surface point)',
        runtime=True,
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'cloud_max_points',
        20000,
        'most points of a target in target_cloud (evenly thinned)',
        runtime=True,
        low=1,
        high=1_000_000,
    ),
    ParamSpec(
        'cloud_depth_gate',
        0.05,
        'm; least half-width of the depth gate around the '
        "target's median depth (wider for deep targets: 3 robust std)",
        runtime=True,
        low=0.001,
        high=10.0,
    ),
    ParamSpec(
        'box_min_points',
        30,
        'fewest surface points for a 3D box and target_pose',
        runtime=True,
        low=3,
        high=1_000_000,
    ),
    ParamSpec(
        'cloud_gate_sigmas',
        3.0,
        'half-width of the depth gate in robust standard deviations (1.4826 x MAD)',
        runtime=True,
        low=0.1,
        high=100.0,
    ),
    ParamSpec(
        'cloud_max_incidence_deg',
        80.0,
        'degrees from face-on: a steeper step between neighbouring pixels marks a mixed pixel or'
        ' a depth break',
        runtime=True,
        low=1.0,
        high=89.0,
    ),
    ParamSpec(
        'depth_noise_at_1m',
        0.002,
        'm; depth-noise sigma at 1 m (grows with depth squared); the mixed-pixel and depth-break'
        ' steps and the plane tolerance allow for it',
        runtime=True,
        low=0.0,
        high=0.1,
    ),
    ParamSpec(
        'depth_noise_sigmas',
        3.0,
        'noise sigmas (x sqrt 2) a step between neighbouring pixels may add',
        runtime=True,
        low=0.0,
        high=20.0,
    ),
    ParamSpec(
        'cloud_min_part_fraction',
        0.1,
        'parts of a mask cut off by depth breaks that are smaller than this fraction of the '
        'largest are dropped',
        runtime=True,
        low=0.001,
        high=1.0,
    ),
    ParamSpec(
        'support_max_gap',
        0.02,
        "m; the support plane is within this of the target's lowest points",
        runtime=True,
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'box_plane_tolerance',
        0.005,
        'm; distance within which a point lies on a plane (box faces, the support, place '
        'surfaces); raised to 3 noise sigmas',
        runtime=True,
        low=0.0001,
        high=1.0,
    ),
    ParamSpec(
        'box_trim',
        0.005,
        'fraction of points per box face that may be dropped as isolated outliers',
        runtime=True,
        low=0.0,
        high=0.2,
    ),
    ParamSpec(
        'pick_outputs',
        True,
        'grasp candidates, place surfaces and instances for every found target with depth',
        runtime=True,
    ),
    ParamSpec(
        'gripper_max_width',
        0.085,
        'm; widest opening of the parallel jaws (wider grasps are dropped)',
        runtime=True,
        low=0.001,
        high=2.0,
    ),
    ParamSpec(
        'gripper_finger_depth',
        0.03,
        'm; length of the finger pads along the approach',
        runtime=True,
        low=0.001,
        high=1.0,
    ),
    ParamSpec(
        'gripper_finger_thickness',
        0.01,
        'm; thickness of a finger outside the object',
        runtime=True,
        low=0.0,
        high=0.5,
    ),
    ParamSpec(
        'gripper_clearance',
        0.005,
        'm; least distance of a finger from the support plane',
        runtime=True,
        low=0.0,
        high=0.5,
    ),
    ParamSpec(
        'suction_cup_diameter',
        0.03,
        "m; the suction cup's diameter",
        runtime=True,
        low=0.001,
        high=1.0,
    ),
    ParamSpec(
        'suction_max_rms',
        0.0015,
        'm; flatness a patch needs for the cup (RMS distance from its plane)',
        runtime=True,
        low=0.0001,
        high=0.1,
    ),
    ParamSpec(
        'place_max_tilt_deg',
        15.0,
        "degrees; greatest angle between a place surface's normal and up",
        runtime=True,
        low=1.0,
        high=89.0,
    ),
    ParamSpec(
        'max_grasps',
        8,
        'most grasp candidates per target (and per instance), best first',
        runtime=True,
        low=1,
        high=100,
    ),
    ParamSpec(
        'publish_overlay',
        True,
        'publish `overlay` (only drawn while someone subscribes)',
        runtime=True,
    ),
    ParamSpec(
        'max_prompt_chars',
        4096,
        'longer commands are refused before tokenizing',
        runtime=True,
        low=1,
        high=1_000_000,
    ),
    ParamSpec(
        'service_timeout',
        60.0,
        's; `~/segment` answers with success=false after this',
        runtime=True,
        low=0.1,
        high=3600.0,
    ),
    ParamSpec(
        'action_timeout',
        30.0,
        's; default timeout of find_target goals that give none',
        runtime=True,
        low=0.1,
        high=3600.0,
    ),
    ParamSpec('diagnostics_period', 1.0, 's between /diagnostics messages', low=0.1, high=60.0),
)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def check_value(spec: ParamSpec, value: Any) -> Optional[str]:
    """Why ``value`` is not allowed for ``spec``, or None when it is."""
    if spec.choices is not None and value not in spec.choices:
        return f'{spec.name} must be one of {list(spec.choices)}, got {value!r}'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return f'{spec.name} must be finite, got {value}'
        if spec.low is not None and value < spec.low:
            return f'{spec.name} must be >= {spec.low}, got {value}'
        if spec.high is not None and value > spec.high:
            return f'{spec.name} must be <= {spec.high}, got {value}'
    return None


def check_combination(values: Mapping[str, Any]) -> Optional[str]:
    """Why these parameter values do not fit together, or None when they do."""
    if values['min_depth'] > values['max_depth']:
        return (
            f'min_depth ({values["min_depth"]}) must not exceed max_depth ({values["max_depth"]})'
        )
    return None


def descriptor(spec: ParamSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor of ``spec``: its description, its range
    (FloatingPointRange / IntegerRange, shown by `ros2 param describe` and enforced by
    rclpy) and its choices as additional constraints.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    desc = ParameterDescriptor(
        description=spec.description + ('' if spec.runtime else ' (applied at configure)')
    )
    if spec.low is not None and spec.high is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
            ]
        else:
            desc.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
            ]
    if spec.choices is not None:
        desc.additional_constraints = 'one of: ' + ', '.join(repr(c) for c in spec.choices)
    return desc


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
    mode: str
    lost_after: int
    reground_interval: int
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
    cloud_voxel_size: float
    cloud_max_points: int
    cloud_depth_gate: float
    box_min_points: int
    cloud_gate_sigmas: float
    cloud_max_incidence_deg: float
    depth_noise_at_1m: float
    depth_noise_sigmas: float
    cloud_min_part_fraction: float
    support_max_gap: float
    box_plane_tolerance: float
    box_trim: float
    pick_outputs: bool
    gripper_max_width: float
    gripper_finger_depth: float
    gripper_finger_thickness: float
    gripper_clearance: float
    suction_cup_diameter: float
    suction_max_rms: float
    place_max_tilt_deg: float
    max_grasps: int
    publish_overlay: bool
    max_prompt_chars: int
    service_timeout: float
    action_timeout: float
    diagnostics_period: float

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'NodeSettings':
        """Settings from a value for every parameter in SPECS, keyed by parameter name."""
        return cls(**{name.replace('.', '_'): values[name] for name in SPECS})

    def updated(self, values: Mapping[str, Any]) -> 'NodeSettings':
        """A copy with ``values`` (some parameters, keyed by parameter name) changed."""
        return dataclasses.replace(self, **{k.replace('.', '_'): v for k, v in values.items()})

    def tracker_settings(self) -> Any:
        """model.TrackerSettings of track mode: weak = predicted IoU under score_threshold or
        (with use_object_score) an object score not above object_score_threshold.
        """
        from evf_sam_ros.model.tracking.track_state import TrackerSettings

        return TrackerSettings(
            lost_after=int(self.lost_after),
            reground_interval=int(self.reground_interval),
            iou_threshold=float(self.score_threshold),
            object_score_threshold=float(self.object_score_threshold)
            if self.use_object_score
            else 0.0,
        )

    def target_settings(self) -> TargetSettings:
        """targets.TargetSettings (found test, depth statistics, cloud and box) of these
        settings.
        """
        return TargetSettings(
            score_threshold=self.score_threshold,
            object_score_threshold=self.object_score_threshold if self.use_object_score else None,
            erode_iterations=int(self.depth_erode_iterations),
            min_depth_m=self.min_depth,
            max_depth_m=self.max_depth,
            min_valid_fraction=self.min_valid_depth_fraction,
            cloud_gate_min_m=self.cloud_depth_gate,
            cloud_voxel_size=self.cloud_voxel_size,
            cloud_max_points=int(self.cloud_max_points),
            box_min_points=int(self.box_min_points),
            cloud_gate_sigmas=self.cloud_gate_sigmas,
            cloud_max_incidence_deg=self.cloud_max_incidence_deg,
            depth_noise_at_1m=self.depth_noise_at_1m,
            depth_noise_sigmas=self.depth_noise_sigmas,
            cloud_min_part_fraction=self.cloud_min_part_fraction,
            support_max_gap_m=self.support_max_gap,
            box_plane_tolerance_m=self.box_plane_tolerance,
            box_trim=self.box_trim,
        )

    def pick_settings(self) -> PickSettings | None:
        """The gripper and place settings of grasps, place surfaces and instances (None when
        pick_outputs is off).
        """
        if not self.pick_outputs:
            return None
        gripper = GripperSettings(
            max_width_m=self.gripper_max_width,
            finger_depth_m=self.gripper_finger_depth,
            finger_thickness_m=self.gripper_finger_thickness,
            clearance_m=self.gripper_clearance,
            suction_cup_diameter_m=self.suction_cup_diameter,
            suction_max_rms_m=self.suction_max_rms,
        )
        return PickSettings(gripper, self.place_max_tilt_deg, int(self.max_grasps))


def params_file_values(path: str) -> dict[str, Any]:
    """The values a ROS 2 parameters file gives evf_sam in any namespace (sections keyed
    ``/**/evf_sam``, ``/robot/evf_sam``, ``/**`` ...; ``launch_params.parameter_values``),
    checked as the node checks them. Raises ValueError for an unreadable file or a value
    that is not allowed.
    """
    from pathlib import Path

    from evf_sam_ros.node.launch_params import parameter_values

    values = parameter_values(Path(path))
    for name, value in values.items():
        spec = SPECS.get(name)
        reason = f'unknown parameter {name!r}' if spec is None else check_value(spec, value)
        if reason is not None:
            raise ValueError(f'{path}: {reason}')
    return values


def default_settings(overrides: Optional[Mapping[str, Any]] = None) -> 'NodeSettings':
    """NodeSettings of the node's defaults with ``overrides`` (checked like the node does)."""
    values = {**{p.name: p.default for p in PARAMS}, **(overrides or {})}
    reason = check_combination(values)
    if reason is not None:
        raise ValueError(reason)
    return NodeSettings.from_values(values)


class NodeParameters:
    """Declares the PARAMS on a node (with ranges), keeps the NodeSettings snapshot and
    checks every change: ranges and choices, combinations, load-time parameters only while
    no model is loaded, and the prompt. A parameters file value that is refused (out of
    range, wrong type) is not applied: the default is declared instead and ``errors`` names
    the refused value, so configure fails with it until it is fixed (nothing silent).
    """

    def __init__(self, node: Any, on_change: Any, loaded: Any, validate_prompt: Any):
        """on_change(names): called with the names of parameters just changed."""
        from rclpy.exceptions import ParameterException

        self._on_change, self._loaded, self._validate_prompt = on_change, loaded, validate_prompt
        self._refused: dict[str, str] = {}
        for spec in PARAMS:
            try:
                node.declare_parameter(spec.name, spec.default, descriptor(spec))
            except ParameterException as exc:
                self._refused[spec.name] = f'{spec.name}: {exc}; fix the parameters file'
                node.declare_parameter(
                    spec.name, spec.default, descriptor(spec), ignore_override=True
                )
        values = {p.name: node.get_parameter(p.name).value for p in PARAMS}
        for spec in PARAMS:
            reason = check_value(spec, values[spec.name])
            if reason is not None:
                self._refused[spec.name] = reason
        self.settings = NodeSettings.from_values(values)
        node.add_on_set_parameters_callback(self._on_set)

    @property
    def errors(self) -> list[str]:
        """Why the current parameters cannot be used (empty when they can)."""
        combination = check_combination(self._values())
        return list(self._refused.values()) + ([combination] if combination else [])

    def _values(self) -> dict[str, Any]:
        return {s.name: getattr(self.settings, s.name.replace('.', '_')) for s in PARAMS}

    def _reason(self, param: Any) -> Optional[str]:
        from evf_sam_ros.model.errors import PromptError

        spec = SPECS[param.name]
        reason = check_value(spec, param.value)
        if reason is None and not spec.runtime and self._loaded():
            reason = f'{param.name} applies at configure: cleanup the node first, then configure'
        if reason is None and param.name == 'prompt' and str(param.value).strip():
            try:
                self._validate_prompt(param.value)
            except PromptError as exc:
                reason = str(exc)
        return reason

    def _on_set(self, params: list[Any]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        ours = [p for p in params if p.name in SPECS]
        for param in ours:
            reason = self._reason(param)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        reason = check_combination({**self._values(), **{p.name: p.value for p in ours}})
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self.settings = self.settings.updated({p.name: p.value for p in ours})
        for param in ours:
            self._refused.pop(param.name, None)
        self._on_change({p.name for p in ours})
        return SetParametersResult(successful=True)

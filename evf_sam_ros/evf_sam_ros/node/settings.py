"""The node's parameters, declared once: ``NodeSettings`` is the table. Each field is one
parameter (its type, default, description, when it may change and its allowed values, given
with ``param``); ``PARAMS`` (the specs the node declares, the README and config/evf_sam.yaml
are tested against) is derived from it. To add a parameter, add a field here, a line to
config/evf_sam.yaml and a row to the README table (the tests name what is missing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evf_sam_ros.model import DEFAULT_CHECKPOINT
from evf_sam_ros.target3d.estimate import TargetSettings
from evf_sam_ros.target3d.grasps import GripperSettings
from evf_sam_ros.target3d.pick import PickSettings


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: ``name`` as ROS spells it (dots for groups), ``field`` its NodeSettings
    attribute. runtime: may change while configured; otherwise only while unconfigured (it
    takes effect at the next configure). choices / low / high: allowed values.
    """

    name: str
    field: str
    default: Any
    description: str
    runtime: bool = False
    choices: Sequence[str] | None = None
    low: float | None = None
    high: float | None = None


def param(
    default: Any,
    description: str,
    *,
    name: str | None = None,
    runtime: bool = False,
    choices: Sequence[str] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A NodeSettings field that is a node parameter (``name``: the ROS name when it is not
    the field's, e.g. ``image_qos.depth``).
    """
    spec = dict(
        name=name, description=description, runtime=runtime, choices=choices, low=low, high=high
    )
    return dataclasses.field(default=default, metadata={'param': spec})


_BIG = 1_000_000


@dataclass(frozen=True)
class NodeSettings:
    """Snapshot of every parameter value (dotted names with underscores); the parameter table."""

    # ---- the model (applied at configure) ---------------------------------------------
    checkpoint: str = param(DEFAULT_CHECKPOINT, 'hub id or local checkpoint directory')
    device: str = param('auto', 'auto (cuda when available), cpu, cuda, cuda:N')
    dtype: str = param(
        'auto',
        'auto (float16 on CUDA, float32 on CPU), float32, float16, bfloat16',
        choices=('auto', 'float32', 'float16', 'bfloat16'),
    )
    variant: str = param(
        '',
        'force a preprocessing regime (empty: detect from the checkpoint)',
        choices=('', 'evf-sam', 'evf-sam-multitask', 'evf-sam2', 'evf-sam2-multitask'),
    )
    backend: str = param(
        'torch',
        'model runtime: torch, onnxruntime (exported graphs; CPU, or CUDA with '
        'onnxruntime-gpu) or tensorrt (CUDA; fp16 engines built at configure)',
        choices=('torch', 'onnxruntime', 'tensorrt'),
    )
    cuda_graphs: bool = param(
        True, 'on CUDA, replay model parts as CUDA graphs (same results, ~2x faster)'
    )
    preprocess: str = param(
        'auto',
        'auto (device on CUDA, exact on CPU), exact (official PIL steps), device (resizes on '
        'the GPU)',
        choices=('auto', 'exact', 'device'),
    )
    torch_compile: bool = param(
        False, 'compile the model parts with torch.compile (inductor); slow first start'
    )
    compile_cache_dir: str = param(
        '', 'persistent compile cache (empty: ~/.cache/evf_sam_ros/torch_compile)'
    )
    mode: str = param(
        'segment',
        'segment (ground the text on every frame) or track (ground once, '
        "then follow with SAM2's memory; SAM2 checkpoints)",
        choices=('segment', 'track'),
    )
    # ---- track mode ------------------------------------------------------------------
    lost_after: int = param(
        5,
        'track mode: weak frames in a row before a target is lost and re-grounded (0: never lost)',
        runtime=True,
        low=0,
        high=100000,
    )
    reground_interval: int = param(
        0,
        'track mode: also re-ground every this many frames (0: only when lost)',
        runtime=True,
        low=0,
        high=100000,
    )
    click_frames: int = param(
        8,
        'track mode: processed frames held for correction clicks (their encodings; 0: clicks '
        'refused)',
        runtime=True,
        low=0,
        high=1000,
    )
    click_memory: int = param(
        4,
        'track mode: clicked frames kept per target as SAM2 conditioning frames',
        runtime=True,
        low=1,
        high=1000,
    )
    # ---- start-up and prompts --------------------------------------------------------
    autostart: bool = param(
        True, 'configure and activate at start-up, so a plain `ros2 run` works'
    )
    prompt: str = param(
        '', 'current prompt (the `command` topic sets it too); empty: idle', runtime=True
    )
    max_targets: int = param(
        16,
        'most targets at once, the primary included; more are refused with the reason',
        runtime=True,
        low=1,
        high=1000,
    )
    # ---- found test ------------------------------------------------------------------
    score_threshold: float = param(
        0.5, 'least predicted IoU of a found target', runtime=True, low=0.0, high=1.0
    )
    use_object_score: bool = param(
        False, "also require SAM2's object score >= object_score_threshold", runtime=True
    )
    object_score_threshold: float = param(
        0.0,
        'least SAM2 object-score logit when use_object_score',
        runtime=True,
        low=-100.0,
        high=100.0,
    )
    # ---- inputs ----------------------------------------------------------------------
    max_rate: float = param(
        0.0,
        'most frames processed per second (0: as fast as the model runs)',
        runtime=True,
        low=0.0,
        high=1000.0,
    )
    image_qos_reliability: str = param(
        'reliable',
        'QoS of the image/depth subscriptions',
        name='image_qos.reliability',
        choices=('reliable', 'best_effort'),
    )
    image_qos_depth: int = param(
        1, 'QoS history depth of the image subscription', name='image_qos.depth', low=1, high=100
    )
    compressed_input: bool = param(
        False, 'subscribe image/compressed (sensor_msgs/CompressedImage)'
    )
    use_depth: bool = param(True, 'subscribe depth and camera_info and publish target_point')
    # ---- depth and 3D ----------------------------------------------------------------
    depth_max_stamp_diff: float = param(
        0.05,
        's; largest stamp gap between an image and its depth',
        runtime=True,
        low=0.0,
        high=10.0,
    )
    depth_wait: float = param(
        0.5,
        's; longest wait for a depth image that has not arrived yet',
        runtime=True,
        low=0.0,
        high=5.0,
    )
    depth_erode_iterations: int = param(
        2, '3x3 erosions of the mask before reading depth', runtime=True, low=0, high=50
    )
    min_depth: float = param(
        0.1, 'm; nearer depth readings are invalid', runtime=True, low=0.0, high=1000.0
    )
    max_depth: float = param(
        10.0, 'm; farther depth readings are invalid', runtime=True, low=0.0, high=1000.0
    )
    min_valid_depth_fraction: float = param(
        0.05, 'least fraction of mask pixels with valid depth', runtime=True, low=0.0, high=1.0
    )
    cloud_voxel_size: float = param(
        0.0,
        'm; voxel edge of the published target_cloud (0: every surface point)',
        runtime=True,
        low=0.0,
        high=1.0,
    )
    cloud_max_points: int = param(
        20000,
        'most points of a target in target_cloud (evenly thinned)',
        runtime=True,
        low=1,
        high=_BIG,
    )
    cloud_depth_gate: float = param(
        0.05,
        "m; least half-width of the depth gate around the target's median depth (wider for "
        'deep targets: 3 robust std)',
        runtime=True,
        low=0.001,
        high=10.0,
    )
    box_min_points: int = param(
        30, 'fewest surface points for a 3D box and target_pose', runtime=True, low=3, high=_BIG
    )
    # ---- pick and place (issue 16) ---------------------------------------------------
    cloud_gate_sigmas: float = param(
        3.0,
        'half-width of the depth gate in robust standard deviations (1.4826 x MAD)',
        runtime=True,
        low=0.1,
        high=100.0,
    )
    cloud_max_incidence_deg: float = param(
        80.0,
        'degrees from face-on: a steeper step between neighbouring pixels marks a mixed pixel or '
        'a depth break',
        runtime=True,
        low=1.0,
        high=89.0,
    )
    depth_noise_at_1m: float = param(
        0.002,
        'm; depth-noise sigma at 1 m (grows with depth squared); the mixed-pixel and depth-break '
        'steps and the plane tolerance allow for it',
        runtime=True,
        low=0.0,
        high=0.1,
    )
    depth_noise_sigmas: float = param(
        3.0,
        'noise sigmas (x sqrt 2) a step between neighbouring pixels may add',
        runtime=True,
        low=0.0,
        high=20.0,
    )
    cloud_min_part_fraction: float = param(
        0.1,
        'parts of a mask cut off by depth breaks that are smaller than this fraction of the '
        'largest are dropped',
        runtime=True,
        low=0.001,
        high=1.0,
    )
    support_max_gap: float = param(
        0.02,
        "m; the support plane is within this of the target's lowest points",
        runtime=True,
        low=0.0,
        high=1.0,
    )
    box_plane_tolerance: float = param(
        0.005,
        'm; distance within which a point lies on a plane (box faces, the support, place '
        'surfaces); raised to 3 noise sigmas',
        runtime=True,
        low=0.0001,
        high=1.0,
    )
    box_trim: float = param(
        0.005,
        'fraction of points per box face that may be dropped as isolated outliers',
        runtime=True,
        low=0.0,
        high=0.2,
    )
    pick_outputs: bool = param(
        True,
        'grasp candidates, place surfaces and instances for every found target with depth',
        runtime=True,
    )
    gripper_max_width: float = param(
        0.085,
        'm; widest opening of the parallel jaws (wider grasps are dropped)',
        runtime=True,
        low=0.001,
        high=2.0,
    )
    gripper_finger_depth: float = param(
        0.03, 'm; length of the finger pads along the approach', runtime=True, low=0.001, high=1.0
    )
    gripper_finger_thickness: float = param(
        0.01, 'm; thickness of a finger outside the object', runtime=True, low=0.0, high=0.5
    )
    gripper_clearance: float = param(
        0.005,
        'm; least distance of a finger from the support plane',
        runtime=True,
        low=0.0,
        high=0.5,
    )
    suction_cup_diameter: float = param(
        0.03, "m; the suction cup's diameter", runtime=True, low=0.001, high=1.0
    )
    suction_max_rms: float = param(
        0.0015,
        'm; flatness a patch needs for the cup (RMS distance from its plane)',
        runtime=True,
        low=0.0001,
        high=0.1,
    )
    place_max_tilt_deg: float = param(
        15.0,
        "degrees; greatest angle between a place surface's normal and up",
        runtime=True,
        low=1.0,
        high=89.0,
    )
    max_grasps: int = param(
        8,
        'most grasp candidates per target (and per instance), best first',
        runtime=True,
        low=1,
        high=100,
    )
    # ---- outputs, requests, diagnostics ----------------------------------------------
    publish_overlay: bool = param(
        True, 'publish `overlay` (only drawn while someone subscribes)', runtime=True
    )
    max_prompt_chars: int = param(
        4096, 'longer commands are refused before tokenizing', runtime=True, low=1, high=_BIG
    )
    service_timeout: float = param(
        60.0,
        's; `~/segment` answers with success=false after this',
        runtime=True,
        low=0.1,
        high=3600.0,
    )
    action_timeout: float = param(
        30.0,
        's; default timeout of find_target goals that give none',
        runtime=True,
        low=0.1,
        high=3600.0,
    )
    diagnostics_period: float = param(1.0, 's between /diagnostics messages', low=0.1, high=60.0)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeSettings:
        """Settings from a value for every parameter, keyed by parameter name."""
        return cls(**{p.field: values[p.name] for p in PARAMS})

    def updated(self, values: Mapping[str, Any]) -> NodeSettings:
        """A copy with ``values`` (some parameters, keyed by parameter name) changed."""
        return dataclasses.replace(self, **{SPECS[k].field: v for k, v in values.items()})

    def values(self) -> dict[str, Any]:
        """Every parameter value keyed by parameter name."""
        return {p.name: getattr(self, p.field) for p in PARAMS}

    def tracker_settings(self) -> Any:
        """model.TrackerSettings of track mode: weak = predicted IoU under score_threshold or
        (with use_object_score) an object score not above object_score_threshold.
        """
        from evf_sam_ros.model.tracking.track_state import TrackerSettings

        return TrackerSettings(
            lost_after=int(self.lost_after),
            reground_interval=int(self.reground_interval),
            click_frames=int(self.click_frames),
            click_memory=int(self.click_memory),
            iou_threshold=float(self.score_threshold),
            object_score_threshold=float(self.object_score_threshold)
            if self.use_object_score
            else 0.0,
        )

    def target_settings(self) -> TargetSettings:
        """TargetSettings (found test, depth statistics, cloud and box) of these settings."""
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


def _spec(f: dataclasses.Field) -> ParamSpec:
    meta = dict(f.metadata['param'])
    return ParamSpec(name=meta.pop('name') or f.name, field=f.name, default=f.default, **meta)


#: Every parameter in declaration order, derived from NodeSettings.
PARAMS: tuple[ParamSpec, ...] = tuple(_spec(f) for f in dataclasses.fields(NodeSettings))
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}

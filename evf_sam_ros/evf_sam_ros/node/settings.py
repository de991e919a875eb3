"""The node's parameters, declared once: ``NodeSettings`` is the table. Its first fields (the
model, track mode, start-up, found test, inputs) are declared in
``settings_inputs.ModelInputSettings``, which it extends; the rest here. Each field is one
parameter (its type, default, description, when it may change and its allowed values, given
with ``param``); ``PARAMS`` (the specs the node declares, the README and config/evf_sam.yaml
are tested against) is derived from it, in that order. To add a parameter, add a field, a line
to config/evf_sam.yaml and a row to the README table (the tests name what is missing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evf_sam_ros.node.param_spec import BIG, ParamSpec, field_specs, param
from evf_sam_ros.node.settings_inputs import ModelInputSettings
from evf_sam_ros.target3d.estimate import TargetSettings
from evf_sam_ros.target3d.grasps import GripperSettings
from evf_sam_ros.target3d.pick import PickSettings

__all__ = ['NodeSettings', 'PARAMS', 'SPECS', 'ParamSpec', 'param']


@dataclass(frozen=True)
class NodeSettings(ModelInputSettings):
    """Snapshot of every parameter value (dotted names with underscores); the parameter table."""

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
        high=BIG,
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
        30, 'fewest surface points for a 3D box and target_pose', runtime=True, low=3, high=BIG
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
        4096, 'longer commands are refused before tokenizing', runtime=True, low=1, high=BIG
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


#: Every parameter in declaration order, derived from NodeSettings.
PARAMS: tuple[ParamSpec, ...] = field_specs(NodeSettings)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}

"""From a target's 3D estimate to what a pick-and-place behaviour needs (numpy only).

``pick_target`` adds to ``estimate.estimate_target``'s result: grasp candidates
(``grasps``), the place surface (``place``) and the instances (``instances``), all in the
image's optical frame, metres.  The node and the replay call it only while someone uses the
results (the ``grasps`` topic, ``~/find_target``, the results bag); the Segmentation's
place and instance fields are filled whenever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from evf_sam_ros.target3d.estimate import BOX_SAMPLE_POINTS, TargetEstimate, TargetSettings
from evf_sam_ros.target3d.geometry import CameraIntrinsics
from evf_sam_ros.target3d.grasps import (
    Grasp,
    GripperSettings,
    parallel_jaw_grasps,
    suction_grasp,
)
from evf_sam_ros.target3d.instances import Instance, mask_instances, surface_instances
from evf_sam_ros.target3d.patches import flat_patches
from evf_sam_ros.target3d.place import PlaceSurface, place_surface


@dataclass(frozen=True)
class PickSettings:
    """gripper: the gripper (``grasps.GripperSettings``). place_max_tilt_deg: greatest angle
    in degrees between a place surface's normal and up. max_grasps: most candidates kept per
    target (and per instance), best first.
    """

    gripper: GripperSettings = field(default_factory=GripperSettings)
    place_max_tilt_deg: float = 15.0
    max_grasps: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.place_max_tilt_deg < 90.0 or self.max_grasps < 1:
            raise ValueError(
                f'need 0 < place_max_tilt_deg < 90 and max_grasps >= 1, got '
                f'{self.place_max_tilt_deg}, {self.max_grasps}'
            )


@dataclass(frozen=True)
class PickTarget:
    """grasps: the whole target's candidates, best first; place: its place surface or None;
    instances: its objects when the mask holds two or more (``instances``), else empty.
    """

    grasps: list[Grasp]
    place: PlaceSurface | None
    instances: list[Instance]


def _grasps(box, points, support, patches, tolerance, pick: PickSettings) -> list[Grasp]:
    """Parallel-jaw candidates from the box and the suction candidate, best first."""
    out = [] if box is None else parallel_jaw_grasps(box, points, support, pick.gripper)
    suction = suction_grasp(patches, points, support, pick.gripper, tolerance)
    if suction is not None:
        out.append(suction)
    return sorted(out, key=lambda g: -g.score)[: pick.max_grasps]


def pick_target(
    est: TargetEstimate,
    mask: np.ndarray,
    intr: CameraIntrinsics | None,
    settings: TargetSettings,
    pick: PickSettings,
) -> PickTarget:
    """Grasps, place surface and instances of a found target (see the module docstring).

    Arguments:
        est: ``estimate_target``'s result for ``mask`` (HxW bool); intr: its intrinsics
            (None without depth: then only mask instances).
    """
    if not est.found:
        return PickTarget([], None, [])
    if est.surface is None or intr is None or not len(est.surface):
        return PickTarget([], None, mask_instances(mask, settings.box_min_points))
    median = est.depth_median
    tolerance = settings.plane_tolerance_m(median)
    radius = pick.gripper.suction_cup_diameter_m / 2
    patches = flat_patches(est.surface, intr, radius, median)
    points = est.surface.points(intr, BOX_SAMPLE_POINTS)
    place = place_surface(patches, points, est.support, tolerance, pick.place_max_tilt_deg)
    up = None if est.support is None else est.support.normal
    instances = surface_instances(
        est.surface, intr, tolerance, settings.box_trim, settings.box_min_points, up
    )
    if not instances:
        grasps = _grasps(est.box, points, est.support, patches, tolerance, pick)
        return PickTarget(grasps, place, [])
    grasps = []  # the whole mask's box spans several objects: grasp each instead
    for number, inst in enumerate(instances):
        own = est.surface.select(est.surface.part == inst.part)
        own_points = own.points(intr, BOX_SAMPLE_POINTS // 2)
        found = _grasps(
            inst.box,
            own_points,
            est.support,
            patches.select(patches.part == inst.part),
            tolerance,
            pick,
        )
        inst.grasps.extend(replace(g, instance=number) for g in found)
        grasps.extend(inst.grasps)
    return PickTarget(sorted(grasps, key=lambda g: -g.score)[: pick.max_grasps], place, instances)

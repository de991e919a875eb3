"""Grasp candidates for a target: parallel-jaw grasps from its box, a suction point on its
flattest patch (numpy only).

Poses are in metres in the camera optical frame (x right, y down, z forward), as a
position (3,) and a rotation 3x3 whose columns are the gripper's axes: z the approach
(pointing from the gripper into the object), x the closing direction of the jaws (parallel
jaw) or an axis in the cup's plane (suction), y = z cross x.

Parallel jaw (``parallel_jaw_grasps``), from the oriented box:

* approaches: from above (against the support plane's normal, along the box axis nearest
  to it; only with a support plane) and from the camera side (along the box axis nearest
  to the line of sight, away from the camera);
* for each, closing across each of the two box axes across the approach; the opening is
  the box's extent along the closing axis;
* the grasp point (the pose's position) is the middle of the finger pads, placed
  min(half the object's extent along the approach, half the pad length) in from the face
  the gripper enters by, centred between the jaws, and along the third axis in the middle
  of where the object is widest across the jaws (its surface points in 12 slices: a mug
  is grasped across its body, not across body and handle);
* dropped: openings wider than ``max_width_m``; grasps whose fingers (pad ends and outer
  faces, ``finger_thickness_m`` thick) come closer than ``clearance_m`` to the support
  plane (a grasp through the table);
* score in [0, 1]: 0.5 (1 - opening / max_width_m) (narrow is firm) + 0.3 (approach .
  down) (from above, the usual free direction) + 0.2 (approach . line of sight) (the
  camera sees where the fingers go); candidates sorted best first.

Suction (``suction_grasp``): among the full, flat patches of the cup's diameter
(``patches``; RMS within ``suction_max_rms_m``), those facing most nearly up (or towards
the camera without a support plane) within 10 degrees of the best; the cup goes to the
centre of the face they lie on (the middle of the extents of the surface points within a
third of the plane tolerance of it), snapped to the nearest such patch when that centre is
not on one.  Approach = -normal.  Score = 0.5 (facing up) + 0.5
(1 - rms / suction_max_rms_m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evf_sam_ros.target3d.box3d import OrientedBox
from evf_sam_ros.target3d.box_frame import cross, signed_axis
from evf_sam_ros.target3d.patches import Patches
from evf_sam_ros.target3d.support import SupportPlane

PARALLEL_JAW, SUCTION = 0, 1
#: Slices along the axis across the approach and the jaws (where the object is widest).
_SLICES = 12
#: Suction candidates whose facing-up score is within this of the best (cos 10 degrees).
_FACING_MARGIN = 1.0 - math.cos(math.radians(10.0))


@dataclass(frozen=True)
class GripperSettings:
    """The gripper: max_width_m: widest opening of the parallel jaws (m). finger_depth_m:
    length of the finger pads along the approach (m). finger_thickness_m: thickness of a
    finger outside the object (m). clearance_m: least distance kept from the support plane
    (m). suction_cup_diameter_m: the cup's diameter (m). suction_max_rms_m: flatness a
    patch needs for the cup to seal (RMS distance from its plane, m).
    """

    max_width_m: float = 0.085
    finger_depth_m: float = 0.03
    finger_thickness_m: float = 0.01
    clearance_m: float = 0.005
    suction_cup_diameter_m: float = 0.03
    suction_max_rms_m: float = 0.0015

    def __post_init__(self) -> None:
        values = (self.max_width_m, self.finger_depth_m, self.suction_cup_diameter_m)
        if not all(v > 0 for v in values) or self.suction_max_rms_m <= 0:
            raise ValueError(
                f'gripper sizes and suction_max_rms_m must be > 0, got {values}, '
                f'{self.suction_max_rms_m}'
            )
        if self.finger_thickness_m < 0 or self.clearance_m < 0:
            raise ValueError('finger_thickness_m and clearance_m must be >= 0')


@dataclass(frozen=True)
class Grasp:
    """kind: PARALLEL_JAW or SUCTION. position (3,) float64 metres; rotation 3x3 float64
    (columns x closing, y, z approach). width: opening (parallel jaw) or cup diameter (m).
    score: [0, 1], higher is better. instance: the target's instance it grasps, -1 the
    whole target.
    """

    kind: int
    position: np.ndarray
    rotation: np.ndarray
    width: float
    score: float
    instance: int = -1


def _frame(approach: np.ndarray, closing: np.ndarray) -> np.ndarray:
    x = signed_axis(closing)
    return np.stack([x, cross(approach, x), approach], axis=1)


def _approaches(box: OrientedBox, support: SupportPlane | None) -> list[int]:
    """Box axis indices to approach along: nearest to down (with a support), nearest to the
    line of sight; without repeats.
    """
    ray = box.centre / np.linalg.norm(box.centre)
    axes = [int(np.argmax(np.abs(ray @ box.rotation)))]
    if support is not None:
        axes.insert(0, int(np.argmax(np.abs(support.normal @ box.rotation))))
    return list(dict.fromkeys(axes))


def _hits_support(
    position: np.ndarray, frame: np.ndarray, width: float, g: GripperSettings, s: SupportPlane
) -> bool:
    """Whether a finger (pad end or outer face) comes within clearance of the support."""
    reach = width / 2 + g.finger_thickness_m
    lowest = math.inf
    for side in (-1.0, 1.0):
        for along in (-1.0, 1.0):
            corner = (
                position + side * reach * frame[:, 0] + along * g.finger_depth_m / 2 * frame[:, 2]
            )
            lowest = min(lowest, float(s.height(corner[None])[0]))
    return lowest < g.clearance_m


def _widest_middle(local: np.ndarray, size: np.ndarray, along: int, across: int) -> float:
    """Offset (m) from the box centre along axis ``along`` of the middle of the slices where
    the points (Nx3, box coordinates) are widest along axis ``across``.
    """
    half = max(float(size[along]) / 2, 1e-6)
    t, w = local[:, along], local[:, across]
    index = np.clip(((t + half) / (2 * half) * _SLICES).astype(np.intp), 0, _SLICES - 1)
    low, high = np.full(_SLICES, np.inf), np.full(_SLICES, -np.inf)
    np.minimum.at(low, index, w)
    np.maximum.at(high, index, w)
    width = high - low
    wide = np.flatnonzero(width >= 0.9 * width.max())
    return ((wide.min() + wide.max() + 1) / _SLICES - 1.0) * half


def parallel_jaw_grasps(
    box: OrientedBox, points: np.ndarray, support: SupportPlane | None, gripper: GripperSettings
) -> list[Grasp]:
    """Parallel-jaw candidates from ``box`` and its surface points (Nx3 metres, a sample), see
    the module docstring; best first.
    """
    ray = box.centre / np.linalg.norm(box.centre)
    down = None if support is None else -support.normal
    local = (np.asarray(points, dtype=np.float64) - box.centre) @ box.rotation
    approaches = _approaches(box, support)
    out = []
    for k in approaches:
        axis = box.rotation[:, k]
        reference = down if down is not None and k == approaches[0] else ray
        approach = axis if axis @ reference > 0 else -axis
        depth = min(box.size[k] / 2, gripper.finger_depth_m / 2)
        entry = box.centre - approach * (box.size[k] / 2 - depth)
        for c in (i for i in range(3) if i != k):
            width = float(box.size[c])
            if width > gripper.max_width_m:
                continue
            t = 3 - k - c
            position = entry + box.rotation[:, t] * _widest_middle(local, box.size, t, c)
            frame = _frame(approach, box.rotation[:, c])
            if support is not None and _hits_support(position, frame, width, gripper, support):
                continue
            score = 0.5 * (1 - width / gripper.max_width_m) + 0.2 * max(0.0, approach @ ray)
            if down is not None:
                score += 0.3 * max(0.0, float(approach @ down))
            out.append(Grasp(PARALLEL_JAW, position, frame, width, float(min(score, 1.0))))
    return sorted(out, key=lambda g: -g.score)


def _face_centre(centres: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Middle of the extents of patch centres on one face, along its two main directions."""
    offset = centres - centres.mean(axis=0)
    flat = offset - np.outer(offset @ normal, normal)
    _, _, axes = np.linalg.svd(flat, full_matrices=False)
    along = flat @ axes[:2].T
    middle = (along.min(axis=0) + along.max(axis=0)) / 2
    return centres.mean(axis=0) + middle @ axes[:2]


def face_centre(points: np.ndarray, origin: np.ndarray, normal: np.ndarray, within_m: float):
    """Middle of the extents, along their two main directions, of the points (Nx3 metres)
    within ``within_m`` of the plane (origin, unit normal), on the plane; None without 3.
    """
    near = points[np.abs((points - origin) @ normal) <= within_m]
    if len(near) < 3:
        return None
    return _face_centre(near, normal)


def suction_grasp(
    patches: Patches,
    points: np.ndarray,
    support: SupportPlane | None,
    gripper: GripperSettings,
    tolerance_m: float,
) -> Grasp | None:
    """The suction candidate (see the module docstring), or None without a flat full patch.

    Arguments:
        points: Nx3 metres, a sample of the surface; tolerance_m: the plane tolerance.
    """
    flat = patches.rms <= gripper.suction_max_rms_m
    if not flat.any():
        return None
    centre, normal, rms = patches.centre[flat], patches.normal[flat], patches.rms[flat]
    if support is not None:
        facing = normal @ support.normal
    else:
        facing = -np.sum(normal * centre, axis=1) / np.linalg.norm(centre, axis=1)
    best = facing >= facing.max() - _FACING_MARGIN
    face_normal = normal[best].mean(axis=0)
    face_normal /= np.linalg.norm(face_normal)
    on_face = best & (np.abs((centre - centre[best][0]) @ face_normal) <= tolerance_m)
    target = face_centre(points, centre[on_face].mean(axis=0), face_normal, tolerance_m / 3)
    if target is None:
        target = _face_centre(centre[on_face], face_normal)
    nearest = int(np.argmin(np.linalg.norm(centre[on_face] - target, axis=1)))
    radius = gripper.suction_cup_diameter_m / 2
    chosen = np.flatnonzero(on_face)[nearest]
    if np.linalg.norm(centre[chosen] - target) > radius / 2:
        target = centre[chosen]
    n = normal[chosen]
    approach = -n
    closing = cross(approach, np.eye(3)[int(np.argmin(np.abs(approach)))])
    score = 0.5 * max(0.0, float(facing[chosen])) + 0.5 * (
        1 - rms[chosen] / gripper.suction_max_rms_m
    )
    return Grasp(
        SUCTION,
        target,
        _frame(approach, closing / np.linalg.norm(closing)),
        gripper.suction_cup_diameter_m,
        float(score),
    )

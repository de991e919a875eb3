"""Where something can be set down on a target: its upward-facing support surface (numpy only).

Optical frame (x right, y down, z forward), metres.

"Put the mug on the plate" names two targets: the mug gets grasps, the plate a place
surface.  The place surface of a target is the largest flat, upward-facing layer of its
surface: the full flat patches (``patches``, flatness within the plane tolerance) whose
normal is within ``max_tilt_deg`` of up (the support plane's normal; without one, image up,
-y of the optical frame, for a camera that is not rolled), grouped by height (the layer
holding the most of them; a plate's top, a shelf's board, a box's lid).  Its plane is
refitted to the patch centres of that layer; its extents are those of the surface points
within a third of the plane tolerance of it, along their two main directions; the pose's
position is their middle on the plane, z the plane's normal
(up), x the longer side (pointing right in the image where it can).  Objects standing on the
destination are not in its mask, so the layer has holes there and its extents say where
the free area lies only roughly: a place planner should check the spot it picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evf_sam_ros.target3d.box_frame import cross, signed_axis
from evf_sam_ros.target3d.patches import Patches
from evf_sam_ros.target3d.support import SupportPlane

#: Image up (-y of the optical frame): "up" without a support plane.
_IMAGE_UP = np.array([0.0, -1.0, 0.0])
#: At least this many patches form a place surface.
_MIN_PATCHES = 3


@dataclass(frozen=True)
class PlaceSurface:
    """centre (3,) float64 metres on the surface; rotation 3x3 float64 (columns x, y, z;
    z = the surface's normal, up); size (2,) float64 metres along x and y; patches: the
    full flat patches it is made of.
    """

    centre: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    patches: int


def place_surface(
    patches: Patches,
    points: np.ndarray,
    support: SupportPlane | None,
    tolerance_m: float,
    max_tilt_deg: float,
) -> PlaceSurface | None:
    """The target's place surface (see the module docstring), or None without one.

    Arguments:
        points: Nx3 metres, a sample of the target's surface; tolerance_m: plane tolerance.
    """
    up = _IMAGE_UP if support is None else support.normal
    facing = (patches.normal @ up >= math.cos(math.radians(max_tilt_deg))) & (
        patches.rms <= tolerance_m
    )
    if np.count_nonzero(facing) < _MIN_PATCHES:
        return None
    centres = patches.centre[facing]
    heights = centres @ up
    levels = np.floor((heights - heights.min()) / tolerance_m).astype(np.intp)
    counts = np.bincount(levels)
    best = int(np.argmax(counts[:-1] + counts[1:])) if counts.size > 1 else 0
    layer = centres[(levels == best) | (levels == best + 1)]
    if len(layer) < _MIN_PATCHES:
        return None
    middle = layer.mean(axis=0)
    _, _, vectors = np.linalg.svd(layer - middle, full_matrices=False)
    normal = vectors[2] if vectors[2] @ up > 0 else -vectors[2]
    if normal @ up < math.cos(math.radians(max_tilt_deg)):
        normal = up  # the layer is one row of patches: its own plane is undefined
    near = np.asarray(points, dtype=np.float64)
    near = near[np.abs((near - middle) @ normal) <= tolerance_m / 3]
    if len(near) < _MIN_PATCHES:
        near = layer
    middle = middle + ((near - middle) @ normal).mean() * normal
    flat = near - middle - np.outer((near - middle) @ normal, normal)
    _, _, vectors = np.linalg.svd(flat, full_matrices=False)
    major = signed_axis(vectors[0])
    minor = cross(normal, major)
    along = flat @ np.stack([major, minor], axis=1)
    low, high = along.min(axis=0), along.max(axis=0)
    centre = middle + ((low + high) / 2) @ np.stack([major, minor])
    rotation = np.stack([major, minor, normal], axis=1)
    return PlaceSurface(centre, rotation, high - low, len(layer))

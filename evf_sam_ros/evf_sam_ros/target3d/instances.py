"""Instances: the objects of a mask that holds several ("all the cans") (numpy only).

Optical frame (x right, y down, z forward), metres; pixels (u, v) = (column, row).

With depth, the instances are the surface's parts (``cloud.target_surface``: connected
regions of the mask, cut where neighbouring depths break apart, parts smaller than
``min_part_fraction`` of the largest dropped), each with its centroid (of its surface
pixels), 3D point (that centroid at the part's median depth), oriented box and grasps.
Without depth, they are the mask's connected regions, with a centroid only.  Instances are
listed only when there are at least two, nearest to the camera first (by the 3D point's
distance; without depth, by area, largest first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evf_sam_ros.target3d.box3d import OrientedBox, fit_oriented_box
from evf_sam_ros.target3d.cloud import Surface
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixel
from evf_sam_ros.target3d.regions import label_regions

#: An instance's box is fitted to at most this many of its points.
_BOX_POINTS = 1024


@dataclass(frozen=True)
class Instance:
    """One object of a target's mask: centroid (u, v) pixels; pixels: its surface pixels
    (with depth) or mask pixels (without); point (x, y, z) metres or None; box or None;
    grasps: ``grasps.Grasp`` candidates, best first. part: its surface part
    (``Surface.part``), -1 without depth.
    """

    centroid: tuple[float, float]
    pixels: int
    part: int = -1
    point: tuple[float, float, float] | None = None
    box: OrientedBox | None = None
    grasps: list = field(default_factory=list)


def surface_instances(
    surface: Surface,
    intr: CameraIntrinsics,
    tolerance_m: float,
    trim: float,
    min_points: int,
    up: np.ndarray | None,
) -> list[Instance]:
    """Instances from the surface's parts (none unless there are two or more).

    Arguments:
        tolerance_m / trim: the box fit's plane tolerance and trim; min_points: fewest
            surface points for a box; up: the support plane's normal or None.
    """
    if surface.part is None or len(surface) == 0 or int(surface.part.max()) < 1:
        return []
    out = []
    for k in range(int(surface.part.max()) + 1):
        part = surface.select(surface.part == k)
        if len(part) == 0:
            continue
        u, v = part.pixels()
        centroid = (float(u.mean()), float(v.mean()))
        point = deproject_pixel(centroid[0], centroid[1], float(np.median(part.z)), intr)
        box = None
        if len(part) >= max(min_points, 3):
            sample = part.points(intr, _BOX_POINTS)
            box = fit_oriented_box(sample, tolerance_m, trim, len(part), up)
        out.append(Instance(centroid, len(part), k, point, box))
    if len(out) < 2:
        return []
    return sorted(out, key=lambda i: float(np.linalg.norm(i.point)))


def mask_instances(mask: np.ndarray, min_pixels: int) -> list[Instance]:
    """Instances without depth: the mask's connected regions of at least ``min_pixels``
    pixels (none unless there are two or more), largest first.
    """
    labels, count = label_regions(mask)
    if count < 2:
        return []
    v, u = np.nonzero(mask)
    sizes = np.bincount(labels, minlength=count)
    out = []
    for k in np.argsort(-sizes, kind='stable'):
        if sizes[k] < min_pixels:
            break
        chosen = labels == k
        out.append(Instance((float(u[chosen].mean()), float(v[chosen].mean())), int(sizes[k])))
    return out if len(out) >= 2 else []

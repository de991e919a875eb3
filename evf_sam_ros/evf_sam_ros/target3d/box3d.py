"""An oriented 3D box around the target's visible surface, and its pose (numpy only).

Points and poses are in metres in the camera optical frame (x right, y down, z forward).

How the box is found (``fit_oriented_box``):

1. z axis: the normal of the dominant plane of the points, signed to point towards the
   camera.  MSAC over 64 fixed-seed point triples (score: sum of min(distance,
   tolerance)^2, so a true plane beats a band of a curved wall), then least-squares refits
   on the points within 3 robust standard deviations.  For a box-shaped object this is its
   most visible face; for a can seen from above, its lid or the strip of its wall facing
   the camera, whichever holds more pixels.
2. x and y axes: in that plane, the rectangle of least area around the points projected
   onto it (a 3-degree scan, then 0.25 degrees around the best; searched again without the
   points its robust extents leave out), so square faces get their edges right where
   principal axes would be arbitrary.  x is the longer side.
3. Extents: along each axis from the ``trim`` to the 1 - ``trim`` quantile, grown to the
   extreme points unless a gap wider than 5 % of that range isolates them (outliers); the
   centre is the middle of the extents, not the mean of the points.

What it measures: the box of the VISIBLE surface.  A cuboid seen with two or three faces
gives its full size and centre; a cuboid seen face-on gives that face (z extent near 0, the
centre on the face); a can seen from above gives 2r x 2r x height; the hidden back of an
object is never guessed.  The extents are of pixel-centre samples, so each is short of the
surface's true extent by up to one pixel footprint (depth / fx).  For round objects the
turn about their axis is not defined by the shape: it follows the dominant plane.

Axis conventions (deterministic, right-handed): z towards the camera (z . centre < 0);
x the longer in-plane side, signed so that it points right in the image (+x of the optical
frame; if perpendicular to it, down, then forward); y = z cross x.  A box is symmetric under
a half turn about z: poses that differ by it describe the same box.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from evf_sam_ros.target3d.box_frame import (
    axis_noise,
    cross,
    denoised_range,
    depth_noise_from_plane,
    label_axes,
)
from evf_sam_ros.target3d.cloud import MAD_TO_SIGMA, evenly_spaced
from evf_sam_ros.target3d.rotations import rotation_to_quaternion

#: MSAC plane hypotheses (point triples) tried; the seed is fixed, so results repeat.
_HYPOTHESES = 64
_SEED = 0
#: MSAC scores hypotheses on this many evenly spaced points; the plane refits and the
#: in-plane axes use _AXES_POINTS; the extents all the points given.
_SCORING_POINTS = 256
_AXES_POINTS = 512
#: Least-squares refits of the plane; each uses the inliers of the previous plane.
_REFITS = 2
_COARSE_DEG, _FINE_DEG = 3.0, 0.25
#: Directions (in the plane, 7.5 degrees apart) whose extreme points stand for the convex
#: hull: every corner of a rectangle is extreme along some of them.
_HULL_ANGLES = np.linspace(0.0, math.pi, 24, endpoint=False)
_HULL_BASIS = np.stack([np.cos(_HULL_ANGLES), np.sin(_HULL_ANGLES)], axis=1)
#: A gap wider than this fraction of the trimmed range separates outliers from the box.
_GAP_FRACTION = 0.05
#: Points whose box is narrower than this (metres) in its second axis form no surface.
_MIN_SPREAD_M = 1e-4


@dataclass(frozen=True)
class OrientedBox:
    """A box in the camera optical frame.

    centre: (3,) float64 metres. rotation: 3x3 float64 whose columns are the box's x, y, z
    axes in the optical frame (a proper rotation). size: (3,) float64 extents along x, y, z
    in metres. point_count: surface points the box describes.
    """

    centre: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    point_count: int

    @property
    def quaternion(self) -> tuple[float, float, float, float]:
        """Orientation as (x, y, z, w), w >= 0, as geometry_msgs/Quaternion orders it."""
        return rotation_to_quaternion(self.rotation)


def _plane_fit(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane: (centroid, unit normal = direction of least spread)."""
    centroid = points.mean(axis=0)
    centred = points - centroid
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return centroid, vectors[:, 0]


@functools.lru_cache(maxsize=64)
def _triples(n: int) -> np.ndarray:
    """_HYPOTHESES x 3 point indices below ``n``, the same for every call with ``n``."""
    index = np.random.default_rng(_SEED).integers(0, n, (_HYPOTHESES, 3))
    index.flags.writeable = False
    return index


def dominant_plane(points: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The plane that best explains the points within ``tolerance_m`` (MSAC), refitted.

    Hypotheses are scored by the sum of min(distance, tolerance)^2, so a true plane (a box
    face, a can's lid) beats a band of a curved wall holding as many points.  Refits use
    the points within 3 robust standard deviations of the plane (at least a tenth of the
    tolerance), so a sliver of a neighbouring face barely tilts it.

    Arguments:
        points: Nx3 float64 (N >= 3), metres.

    Returns:
        (point on the plane, unit normal), normal sign not yet chosen.
    """
    triples = points[_triples(len(points))]
    normals = cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    good = lengths > 1e-12
    if not good.any():
        return _plane_fit(points)
    normals, origins = normals[good] / lengths[good, None], triples[good, 0]
    scoring = points[evenly_spaced(len(points), _SCORING_POINTS)]
    offsets = np.sum(normals * origins, axis=1)
    residuals = np.minimum(np.abs(normals @ scoring.T - offsets[:, None]), tolerance_m)
    best = int(np.argmin(np.sum(residuals * residuals, axis=1)))
    origin, normal = origins[best], normals[best]
    limit = tolerance_m
    for refit in range(_REFITS):
        inliers = points[np.abs((points - origin) @ normal) <= limit]
        if len(inliers) < 3:
            break
        origin, normal = _plane_fit(inliers)
        if refit + 1 < _REFITS:
            spread = MAD_TO_SIGMA * np.median(np.abs((inliers - origin) @ normal))
            limit = float(np.clip(3.0 * spread, tolerance_m / 10, tolerance_m))
    return origin, normal


def _least_area_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians, [0, pi/2)) of the least-area rectangle around 2-D points (a, b)."""
    along = _HULL_BASIS @ np.stack([a, b])
    hull = np.unique(np.concatenate([along.argmin(axis=1), along.argmax(axis=1)]))
    a, b = a[hull], b[hull]

    def areas(angles: np.ndarray) -> np.ndarray:
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        return np.ptp(c * a + s * b, axis=1) * np.ptp(c * b - s * a, axis=1)

    coarse = np.radians(np.arange(0.0, 90.0, _COARSE_DEG))
    best = coarse[int(np.argmin(areas(coarse)))]
    fine = best + np.radians(np.arange(-_COARSE_DEG, _COARSE_DEG + 1e-9, _FINE_DEG))
    return float(fine[int(np.argmin(areas(fine)))] % (math.pi / 2))


def _robust_range(values: np.ndarray, trim: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of NxD ``values``: (low, high) of the points that are not outliers.

    The range starts at the ``trim`` and 1 - ``trim`` quantiles and grows to the extreme
    values unless a gap wider than _GAP_FRACTION of it separates them (isolated outliers).
    """
    n, columns = values.shape
    i_lo, i_hi = int(math.floor(trim * (n - 1))), int(math.ceil((1 - trim) * (n - 1)))
    # Only the tails need order: partition (O(n)), then sort the two tails.
    ordered = np.partition(values, (i_lo, i_hi), axis=0)
    ordered[: i_lo + 1].sort(axis=0)
    ordered[i_hi:].sort(axis=0)
    limit = _GAP_FRACTION * (ordered[i_hi] - ordered[i_lo])
    below = (np.diff(ordered[: i_lo + 1], axis=0) > limit)[::-1]  # gaps below the range,
    above = np.diff(ordered[i_hi:], axis=0) > limit  # nearest first; and above it
    every = np.arange(columns)
    low_at, high_at = 0, n - 1
    if len(below):
        low_at = np.where(below.any(axis=0), i_lo - np.argmax(below, axis=0), 0)
    if len(above):
        high_at = np.where(above.any(axis=0), i_hi + np.argmax(above, axis=0), n - 1)
    return ordered[low_at, every], ordered[high_at, every]


def _in_plane_axes(
    points: np.ndarray, normal: np.ndarray, trim: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two unit axes spanning the plane, along the least-area rectangle's sides.

    The rectangle is searched twice: the second time without the points that the first
    rectangle's robust extents leave out, so isolated outliers do not turn it.
    """
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    e1 = cross(normal, helper)
    e1 /= np.linalg.norm(e1)
    e2 = cross(normal, e1)
    a, b = points @ e1, points @ e2
    angle = _least_area_angle(a, b)
    c, s = math.cos(angle), math.sin(angle)
    flat = np.stack([c * a + s * b, c * b - s * a], axis=1)
    lo, hi = _robust_range(flat, trim)
    inside = np.all((flat >= lo) & (flat <= hi), axis=1)
    if not inside.all():
        angle = _least_area_angle(a[inside], b[inside])
    first = math.cos(angle) * e1 + math.sin(angle) * e2
    return first, cross(normal, first)


def fit_oriented_box(
    points: np.ndarray,
    plane_tolerance_m: float,
    trim: float,
    point_count: int | None = None,
    up: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> OrientedBox | None:
    """Oriented box of a target's visible surface (see the module docstring).

    Arguments:
        points: Nx3 float metres in the optical frame (a sample of the surface is enough:
            ``estimate.estimate_target`` gives up to 2048 evenly spaced ones).
        plane_tolerance_m: largest distance of a point from the dominant plane to count as
            on it (the MSAC threshold), > 0.
        trim: fraction of points that may lie beyond each face when a gap separates them
            from the rest (outliers), in [0, 0.25).
        point_count: surface points the sample stands for (default: N).
        up: (3,) unit normal of the support plane, or None; reference: 3x3 rotation of the
            target's previous box, or None: how the axes are named (``box_frame``).
        The depth noise the extents discount is read from the dominant face's residuals.

    Returns:
        OrientedBox, or None when the points span no surface (fewer than 3, or all on one
        line or at one point).
    """
    if not plane_tolerance_m > 0 or not 0 <= trim < 0.25:
        raise ValueError(
            f'need plane_tolerance_m > 0 and 0 <= trim < 0.25, got {plane_tolerance_m}, {trim}'
        )
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(pts).all():
        pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 3:
        return None
    axes_sample = pts[evenly_spaced(len(pts), _AXES_POINTS)]
    origin, normal = dominant_plane(axes_sample, plane_tolerance_m)
    z = -normal if normal @ origin > 0 else normal
    first, second = _in_plane_axes(axes_sample - origin, z, trim)
    rotation = np.stack([first, second, z], axis=1)
    local = (pts - origin) @ rotation
    lo, hi = _robust_range(local, trim)
    residuals = local[:, 2][np.abs(local[:, 2]) <= plane_tolerance_m]
    noise = depth_noise_from_plane(residuals, z, origin)
    lo, hi = denoised_range(local, lo, hi, axis_noise(rotation, origin, noise))
    centre = origin + rotation @ ((lo + hi) / 2)  # the same whatever the axes' order and sign
    size = hi - lo
    if np.sort(size)[1] < _MIN_SPREAD_M:  # all points on a line or at one point: no surface
        return None
    rotation, size = label_axes(rotation, size, centre, up, reference)
    count = len(pts) if point_count is None else int(point_count)
    return OrientedBox(centre, rotation, size, count)

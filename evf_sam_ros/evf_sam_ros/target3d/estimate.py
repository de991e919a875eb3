"""From a segmentation result to a decision and a 3D target (pure numpy; node and replay share it).

The 3D target is a point (the eroded mask's centroid at its median depth), and, from the
same depth, the target's surface points (``cloud``), their oriented box (``box3d``) and a
point cloud to publish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.target3d.box3d import OrientedBox, fit_oriented_box
from evf_sam_ros.target3d.cloud import (
    Surface,
    SurfaceFilter,
    TargetCloud,
    check_rgb,
    target_surface,
)
from evf_sam_ros.target3d.cloud_publish import build_cloud
from evf_sam_ros.target3d.geometry import CameraIntrinsics, DepthStats, target_point
from evf_sam_ros.target3d.support import SupportPlane, find_support, rest_on


@dataclass(frozen=True)
class TargetSettings:
    """How a result becomes "found" and how its 3D point is estimated.

    score_threshold: least predicted IoU of a found target. object_score_threshold: least
    SAM2 object-score logit (ignored for SAM ViT, and when None). erode_iterations: 3x3
    erosions of the mask before reading depth (drops edge pixels that see the background).
    min_depth_m / max_depth_m: valid depth range in metres. min_valid_fraction: least
    fraction of (eroded) mask pixels with valid depth for a 3D point.

    Surface, cloud and box (see ``cloud`` and ``box3d``): cloud_gate_sigmas /
    cloud_gate_min_m: half-width of the depth gate around the median depth, in robust
    standard deviations (1.4826 x MAD) but at least cloud_gate_min_m metres.
    cloud_max_incidence_deg: mixed-pixel filter, degrees from face-on. cloud_voxel_size:
    voxel edge in metres for the published cloud (0: every surface point).
    cloud_max_points: most points in the published cloud. box_plane_tolerance_m: distance
    in metres within which a point lies on the box's dominant face (keep it above 3x the
    depth noise; it is raised to 3x the noise model's sigma at the target's depth).
    box_trim: fraction of points per face that may be dropped as isolated outliers.
    box_min_points: fewest surface points for a box.

    Noise and edges (issue 16): depth_noise_at_1m: sigma of the depth noise at 1 m, metres
    (stereo: it grows with depth squared); the mixed-pixel and depth-break tests allow
    depth_noise_sigmas x sqrt(2) of it per step, and the box's extents discount it.
    cloud_min_part_fraction: parts of the mask that depth breaks cut off and that are
    smaller than this fraction of the largest are dropped. support_max_gap_m: the support
    plane (``support``) is the one the target's lowest point is within this many metres of.
    """

    score_threshold: float = 0.5
    object_score_threshold: float | None = None
    erode_iterations: int = 2
    min_depth_m: float = 0.1
    max_depth_m: float = 20.0
    min_valid_fraction: float = 0.05
    cloud_gate_sigmas: float = 3.0
    cloud_gate_min_m: float = 0.05
    cloud_max_incidence_deg: float = 80.0
    cloud_voxel_size: float = 0.0
    cloud_max_points: int = 20000
    box_plane_tolerance_m: float = 0.005
    box_trim: float = 0.005
    box_min_points: int = 30
    depth_noise_at_1m: float = 0.002
    depth_noise_sigmas: float = 3.0
    cloud_min_part_fraction: float = 0.1
    support_max_gap_m: float = 0.02

    def surface_filter(self) -> SurfaceFilter:
        """The surface-pixel filter these settings describe (validates them)."""
        return SurfaceFilter(
            self.min_depth_m,
            self.max_depth_m,
            self.cloud_gate_sigmas,
            self.cloud_gate_min_m,
            self.cloud_max_incidence_deg,
            self.depth_noise_at_1m,
            self.depth_noise_sigmas,
            self.cloud_min_part_fraction,
        )

    def noise_m(self, depth_m: float) -> float:
        """Depth-noise sigma in metres at ``depth_m`` metres (the stereo model)."""
        return self.depth_noise_at_1m * depth_m * depth_m

    def plane_tolerance_m(self, depth_m: float) -> float:
        """box_plane_tolerance_m, raised to 3 noise sigmas at ``depth_m`` metres."""
        return max(self.box_plane_tolerance_m, 3.0 * self.noise_m(depth_m))


@dataclass(frozen=True)
class TargetEstimate:
    """found: the model saw the target. point: (x, y, z) metres in the image's optical frame
    (x right, y down, z forward), None without valid depth. depth: the statistics used.

    With a point: cloud_points: the target's surface points (mask pixels with valid depth
    that passed the mixed-pixel filter and the depth gate). box: their oriented box (None
    with fewer than box_min_points, or points on a line). cloud: the cloud to publish
    (those points thinned by cloud_voxel_size and cloud_max_points; None when not asked
    for, or without surface points). support: the plane the target stands on, or None.
    surface: the surface pixels (for grasps, place surfaces and instances). All in the
    image's optical frame, metres.
    """

    found: bool
    point: tuple[float, float, float] | None
    depth: DepthStats | None
    cloud_points: int = 0
    box: OrientedBox | None = None
    cloud: TargetCloud | None = None
    support: SupportPlane | None = None
    surface: Surface | None = None

    @property
    def depth_median(self) -> float:
        """Median valid depth (m) in the target's mask region; NaN without depth statistics."""
        return self.depth.median_m if self.depth else math.nan

    @property
    def depth_valid_fraction(self) -> float:
        """Fraction (0-1) of the mask region's pixels with valid depth; 0.0 without depth."""
        return self.depth.valid_fraction if self.depth else 0.0


def is_found(result: SegmentationResult, settings: TargetSettings) -> bool:
    """Non-empty mask, score over the threshold and (SAM2, if asked) object score too."""
    if result.area == 0 or not result.score >= settings.score_threshold:
        return False
    thr = settings.object_score_threshold
    return thr is None or result.object_score is None or result.object_score >= thr


#: The box is fitted to at most this many surface points, evenly spaced over the surface.
BOX_SAMPLE_POINTS = 2048
#: With fewer of its points above the support plane than this fraction, a target lies in
#: that plane (a sheet on a table, a poster on a wall): the plane is not its support.
FLUSH_FRACTION = 0.2


def estimate_target(
    result: SegmentationResult,
    settings: TargetSettings,
    depth_m: np.ndarray | None = None,
    intrinsics: CameraIntrinsics | None = None,
    rgb: np.ndarray | None = None,
    with_cloud: bool = True,
    reference: np.ndarray | None = None,
) -> TargetEstimate:
    """Decide found and, with depth (HxW float32 metres, aligned to the image) and the
    image's intrinsics, deproject the mask's robust depth and fit the target's box.

    ``rgb`` (HxWx3 uint8 RGB, the segmented image) colours the cloud. ``with_cloud=False``
    skips building the cloud (nobody listens); the box is the same either way.
    ``reference``: 3x3 rotation of the target's previous box (its axes keep their names).

    Raises ValueError when depth, intrinsics or rgb do not match the mask's size.
    """
    found = is_found(result, settings)
    if not found or depth_m is None or intrinsics is None:
        return TargetEstimate(found, None, None)
    point, stats = target_point(
        result.mask,
        depth_m,
        intrinsics,
        settings.erode_iterations,
        settings.min_depth_m,
        settings.max_depth_m,
        settings.min_valid_fraction,
    )
    if point is None:
        return TargetEstimate(found, point, stats)
    if rgb is not None:
        check_rgb(rgb, intrinsics)
    median = stats.median_m
    surface = target_surface(
        result.mask, depth_m, intrinsics, median, settings.surface_filter(), result.bbox
    )
    tolerance = settings.plane_tolerance_m(median)
    sample = surface.points(intrinsics, BOX_SAMPLE_POINTS)
    support = find_support(
        result.mask,
        depth_m,
        intrinsics,
        result.bbox,
        median,
        sample,
        tolerance,
        settings.support_max_gap_m,
    )
    if support is not None:  # points on the support are the table, not the target
        above = support.pixel_heights(surface, intrinsics) > tolerance
        if np.count_nonzero(above) < FLUSH_FRACTION * len(surface):
            support = None  # the target lies in the plane (a sheet, a poster): no support
        elif not above.all():
            surface = surface.select(above)
            sample = surface.points(intrinsics, BOX_SAMPLE_POINTS)
    box = None
    if len(surface) >= max(settings.box_min_points, 3):
        up = None if support is None else support.normal
        box = fit_oriented_box(
            sample,
            tolerance,
            settings.box_trim,
            len(surface),
            up,
            reference,
        )
        if box is not None and support is not None:
            box = rest_on(box, support, tolerance + settings.support_max_gap_m)
    cloud = None
    if with_cloud and len(surface):
        cloud = build_cloud(
            surface, intrinsics, rgb, settings.cloud_voxel_size, settings.cloud_max_points
        )
    return TargetEstimate(found, point, stats, len(surface), box, cloud, support, surface)

"""The plane a target stands on (a table, a shelf), from the depth around its mask (numpy only).

Optical frame (x right, y down, z forward), metres; masks HxW bool, depth HxW float metres
(NaN = no reading).

The support is looked for in a band around the mask's box, below its middle row (for a
camera that is not rolled, what lies at an object's foot): the dominant plane of those
pixels (``box3d.dominant_plane``) is the support when at least half the band's points lie
on it and the target's lowest point is within ``max_gap_m`` above it (the object rests on
it; a wall far behind or a floor far below is not a support).  Its normal points up, to the
side of the plane the target is on.

Uses: it names the box's z axis (the axis nearest to up, ``box_frame``); surface points on
it or below it are not the target (a mask spilling onto the table at the object's foot,
which no depth edge separates); grasps approach from above it and must not reach into it;
suction and place surfaces prefer faces against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evf_sam_ros.target3d.box3d import OrientedBox, dominant_plane
from evf_sam_ros.target3d.cloud import Surface, evenly_spaced
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixels

#: The band around the mask's box is this wide (metres at the target's depth), and starts
#: this many pixels out (the silhouette's mixed pixels).
_BAND_M, _BAND_GAP_PX = 0.04, 2
#: Points of the band used for the plane.
_BAND_POINTS = 512
#: Least fraction of the band's points on the plane.
_MIN_INLIERS = 0.5
#: A box rests on the support when one of its axes is within 10 degrees of up.
_REST_COSINE = 0.985


@dataclass(frozen=True)
class SupportPlane:
    """A plane: point (3,) float64 metres on it; normal (3,) unit float64, pointing up (to
    the target's side).
    """

    point: np.ndarray
    normal: np.ndarray

    def height(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distance in metres of Nx3 points above the plane."""
        return (np.asarray(points, dtype=np.float64) - self.point) @ self.normal

    def pixel_heights(self, surface: Surface, intr: CameraIntrinsics) -> np.ndarray:
        """(N,) float32 height in metres above the plane of each surface pixel (the same as
        ``height`` of its deprojected point, without building the points).
        """
        u, v = surface.pixels()
        n = self.normal.astype(np.float32)
        ray = (u.astype(np.float32) - np.float32(intr.cx)) * (n[0] / np.float32(intr.fx))
        ray += (v.astype(np.float32) - np.float32(intr.cy)) * (n[1] / np.float32(intr.fy))
        ray += n[2]
        return surface.z * ray - np.float32(self.point @ self.normal)


def _band_points(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intr: CameraIntrinsics,
    bbox: tuple[int, int, int, int],
    median_m: float,
) -> np.ndarray:
    """Nx3 float64 points of valid depth in the band below the box's middle row."""
    x0, y0, x1, y1 = bbox
    pad = max(int(_BAND_M * intr.fx / median_m), _BAND_GAP_PX + 4)
    height, width = mask.shape
    r0, r1 = (y0 + y1) // 2, min(y1 + pad, height)
    c0, c1 = max(x0 - pad, 0), min(x1 + pad, width)
    if r1 <= r0 or c1 <= c0:
        return np.zeros((0, 3))
    crop = depth_m[r0:r1, c0:c1]
    cols = np.arange(c0, c1)
    beside = (cols < x0 - _BAND_GAP_PX) | (cols >= x1 + _BAND_GAP_PX)
    below = np.arange(r0, r1) >= y1 + _BAND_GAP_PX
    keep = (below[:, None] | beside[None, :]) & ~mask[r0:r1, c0:c1] & np.isfinite(crop)
    index = np.flatnonzero(keep)
    index = index[evenly_spaced(index.size, _BAND_POINTS)]
    v, u = np.divmod(index, c1 - c0)
    return deproject_pixels(u + c0, v + r0, crop.reshape(-1)[index], intr).astype(np.float64)


def find_support(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intr: CameraIntrinsics,
    bbox: tuple[int, int, int, int],
    median_m: float,
    target_points: np.ndarray,
    tolerance_m: float,
    max_gap_m: float,
) -> SupportPlane | None:
    """The target's support plane, or None (see the module docstring).

    Arguments:
        mask: HxW bool target mask; depth_m: HxW float metres; intr at that size.
        bbox: the mask's (x0, y0, x1, y1), x1/y1 exclusive. median_m: the target's depth.
        target_points: Nx3 metres, a sample of the target's surface.
        tolerance_m: distance within which a point lies on the plane (> 0).
        max_gap_m: largest gap in metres between the plane and the target's lowest point.
    """
    band = _band_points(mask, depth_m, intr, bbox, median_m)
    if len(band) < 30 or len(target_points) == 0:
        return None
    origin, normal = dominant_plane(band, tolerance_m)
    if np.mean(np.abs((band - origin) @ normal) <= tolerance_m) < _MIN_INLIERS:
        return None
    if normal @ origin > 0:  # towards the camera, then to the target's side
        normal = -normal
    heights = (np.asarray(target_points, dtype=np.float64) - origin) @ normal
    if np.median(heights) < 0:
        normal, heights = -normal, -heights
    if np.quantile(heights, 0.02) > max_gap_m:
        return None
    return SupportPlane(origin, normal)


def rest_on(box: OrientedBox, support: SupportPlane, gap_m: float) -> OrientedBox:
    """``box`` grown down to the support plane when one of its axes is within 10 degrees of
    up and its bottom is within ``gap_m`` above the plane (the points the plane's tolerance
    removed at the object's foot); otherwise ``box`` itself.
    """
    alignment = support.normal @ box.rotation
    k = int(np.argmax(np.abs(alignment)))
    if abs(alignment[k]) < _REST_COSINE:
        return box
    axis = box.rotation[:, k] * np.sign(alignment[k])  # the box axis that points up
    bottom = box.centre - axis * box.size[k] / 2
    gap = float(support.height(bottom[None])[0]) / abs(float(alignment[k]))
    if not 0.0 < gap <= gap_m:
        return box
    size = box.size.copy()
    size[k] += gap
    return OrientedBox(box.centre - axis * gap / 2, box.rotation, size, box.point_count)

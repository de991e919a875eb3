"""Pick-and-place scenes and a depth-sensor model for them (numpy only; tests, benchmarks, docs).

Built on ``depth_scenes`` (same ray caster, same conventions: optical frame, metres; world
frame x right, y away from the camera along the table, z up, table top z = 0).  Each scene's
``notes`` hold its ground truth in the optical frame: ``up`` (the table's normal), and per
scene the centres, widths and faces the tests compare with.

``sensor_depth`` turns a rendered depth into what a stereo camera sends: noise growing with
the square of the depth, stereo shadows (no reading just left of a nearer edge, the mixed
edge pixel kept), holes, and 16UC1 millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evf_sam_ros.codecs.depth import depth_array_to_metres
from evf_sam_ros.model.masks import erode_mask, mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.synthetic.depth_scenes import (
    HD_INTRINSICS,
    TABLE_LOOK,
    Camera,
    Cuboid,
    Cylinder,
    Plane,
    Scene,
    rotation_z,
    table_plane,
)


@dataclass(frozen=True)
class Compound:
    """Several shapes that form one target (a mug and its handle, two cans)."""

    parts: tuple
    colour: tuple[int, int, int] = (200, 40, 30)

    def intersect(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, normal) of the nearest part hit by each ray from the origin (t inf: a miss)."""
        best_t, best_n = np.full(len(dirs), np.inf), np.zeros_like(dirs)
        for part in self.parts:
            t, normal = part.intersect(dirs)
            nearer = t < best_t
            best_t[nearer], best_n[nearer] = t[nearer], normal[nearer]
        return best_t, best_n

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance in metres of each point from the nearest part's surface."""
        return np.min([part.distance(points) for part in self.parts], axis=0)


def table_camera(elevation_deg: float = 48.0, distance_m: float = 0.66) -> Camera:
    """A camera ``distance_m`` from the table's look point, ``elevation_deg`` above the table
    plane (a little to the right, 6 degrees of azimuth, so no face is seen exactly edge-on).
    """
    e, a = math.radians(elevation_deg), math.radians(6.0)
    offset = distance_m * np.array(
        [math.cos(e) * math.sin(a), -math.cos(e) * math.cos(a), math.sin(e)]
    )
    return Camera(np.asarray(TABLE_LOOK) + offset, TABLE_LOOK)


def _on_table(camera: Camera, target, extra: Sequence = (), **notes) -> Scene:
    notes['up'] = camera.vector([0.0, 0.0, 1.0])
    return Scene(target, (table_plane(camera),) + tuple(extra), HD_INTRINSICS, notes)


def box_seen_from(
    elevation_deg: float,
    yaw_deg: float = 30.0,
    size: Sequence[float] = (0.20, 0.12, 0.08),
    neighbour_gap_m: float | None = None,
) -> Scene:
    """``depth_scenes.box_on_table`` seen from ``elevation_deg`` above the table; with
    ``neighbour_gap_m``, a second box that far behind it (a neighbour the mask can spill on).
    """
    camera = table_camera(elevation_deg)
    size = np.asarray(size, dtype=np.float64)
    turn = rotation_z(yaw_deg)
    rotation = camera.world_from_cam.T @ turn
    box = Cuboid(camera.point([0.0, 0.0, size[2] / 2]), rotation, size)
    extra = ()
    if neighbour_gap_m is not None:
        behind = turn @ np.array([0.0, size[1] + neighbour_gap_m, 0.0])
        centre = camera.point(behind + [0.0, 0.0, 0.06])
        extra = (Cuboid(centre, rotation, np.array([0.16, 0.12, 0.12]), (60, 160, 60)),)
    top = camera.point([0.0, 0.0, size[2]])
    return _on_table(camera, box, extra, top_centre=top)


def mug_on_table(radius: float = 0.04, height: float = 0.10) -> Scene:
    """A closed mug body (cylinder) with a square handle on its right (world +x)."""
    camera = table_camera()
    up = camera.vector([0.0, 0.0, 1.0])
    body = Cylinder(camera.point([0.0, 0.0, height / 2]), up, radius, height)
    rot = camera.world_from_cam.T
    bars = (
        ((radius + 0.015, 0.0, 0.075), (0.03, 0.012, 0.01)),
        ((radius + 0.015, 0.0, 0.025), (0.03, 0.012, 0.01)),
        ((radius + 0.025, 0.0, 0.05), (0.01, 0.012, 0.06)),
    )
    handle = tuple(Cuboid(camera.point(c), rot, np.asarray(s), (200, 40, 30)) for c, s in bars)
    return _on_table(camera, Compound((body,) + handle), body=body, body_width=2 * radius)


def plate_on_table(radius: float = 0.11, height: float = 0.02) -> Scene:
    """A flat round plate; its place surface is the top: centre ``top_centre``, normal up."""
    camera = table_camera()
    up = camera.vector([0.0, 0.0, 1.0])
    plate = Cylinder(camera.point([0.0, 0.0, height / 2]), up, radius, height, (235, 235, 230))
    return _on_table(camera, plate, top_centre=camera.point([0.0, 0.0, height]))


def two_cans(radius: float = 0.033, height: float = 0.12, gap_m: float = 0.014) -> Scene:
    """Two cans side by side (``gap_m`` apart) as one target ("all the cans")."""
    camera = table_camera()
    up = camera.vector([0.0, 0.0, 1.0])
    x = radius + gap_m / 2
    cans = tuple(
        Cylinder(camera.point([s * x, 0.0, height / 2]), up, radius, height) for s in (-1, 1)
    )
    return _on_table(camera, Compound(cans), cans=cans)


def box_against_wall(size: Sequence[float] = (0.16, 0.10, 0.12)) -> Scene:
    """A box on the table whose back face touches a wall (world plane y = size[1] / 2)."""
    camera = table_camera()
    size = np.asarray(size, dtype=np.float64)
    box = Cuboid(camera.point([0.0, 0.0, size[2] / 2]), camera.world_from_cam.T, size)
    wall = Plane(
        camera.point([0.0, size[1] / 2, 0.0]), camera.vector([0.0, -1.0, 0.0]), (200, 200, 190)
    )
    return _on_table(camera, box, (wall,), top_centre=camera.point([0.0, 0.0, size[2]]))


def mask_result(
    mask: np.ndarray, prompt: str = 'target', score: float = 0.9
) -> SegmentationResult:
    """A segmentation result whose mask is ``mask`` (HxW bool): a scene's ground truth as
    the segmenter's answer.
    """
    mask = np.asarray(mask, dtype=bool)
    return SegmentationResult(
        prompt, mask, np.zeros(mask.shape, np.float32), score, None,
        mask_bbox(mask), mask_centroid(mask), int(mask.sum()),
    )  # fmt: skip


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """HxW bool: ``mask`` grown by ``pixels`` (3x3 steps), as a segmenter's too-large mask."""
    padded = np.pad(~np.asarray(mask, dtype=bool), pixels, constant_values=True)
    return ~erode_mask(padded, pixels)[pixels:-pixels, pixels:-pixels]


def _stereo_shadow(depth: np.ndarray, width_px: int, step_m: float = 0.02) -> np.ndarray:
    """Depth with no reading on the ``width_px`` pixels left of each far-to-near step (the
    projector's shadow on the background); the pixel at the step keeps its mixed depth.
    """
    out = depth.copy()
    with np.errstate(invalid='ignore'):
        step = depth[:, :-1] - depth[:, 1:] > step_m  # left pixel far, right one near
    rows, cols = np.nonzero(step)
    for k in range(1, width_px + 1):
        keep = cols - k >= 0
        out[rows[keep], cols[keep] - k] = np.nan
    return out


def _holes(depth: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Depth with ``count`` discs of no reading in the middle half of the image."""
    rng = np.random.default_rng(seed + 1)
    height, width = depth.shape
    rows, cols = np.ogrid[0:height, 0:width]
    out = depth.copy()
    for _ in range(count):
        u, v = rng.integers(width // 4, 3 * width // 4), rng.integers(height // 4, 3 * height // 4)
        out[(cols - u) ** 2 + (rows - v) ** 2 <= rng.uniform(2, 8) ** 2] = np.nan
    return out


def sensor_depth(
    depth_m: np.ndarray,
    noise_at_1m: float = 0.0,
    seed: int = 0,
    encoding: str = '32FC1',
    shadow_px: int = 0,
    holes: int = 0,
) -> np.ndarray:
    """What a stereo depth camera sends for a rendered depth, read back in metres.

    Arguments:
        depth_m: HxW float32 metres (NaN = no reading). noise_at_1m: standard deviation in
            metres of the depth noise at 1 m; it grows with depth squared (stereo).
        seed: noise seed. encoding: '32FC1' (metres) or '16UC1' (millimetres, 0 = none).
        shadow_px: width of the stereo shadow left of near edges (0: none). holes: discs
            of no reading (radius 2-8 px, seeded by ``seed``) over the image's middle half.

    Returns:
        HxW float32 metres, NaN = no reading (through ``codecs.depth.depth_array_to_metres``).
    """
    depth = np.asarray(depth_m, dtype=np.float64)
    if noise_at_1m > 0:
        noise = np.random.default_rng(seed).standard_normal(depth.shape)
        depth = depth + noise * noise_at_1m * depth * depth
    if shadow_px:
        depth = _stereo_shadow(depth, shadow_px)
    if holes:
        depth = _holes(depth, holes, seed)
    if encoding == '16UC1':
        raw = np.where(np.isfinite(depth), np.rint(depth * 1000.0), 0).astype(np.uint16)
    else:
        raw = depth.astype(np.float32)
    return depth_array_to_metres(raw, encoding)

"""Synthetic depth scenes with known geometry, ray cast (numpy only; tests, benchmarks, docs).

Every shape lives in the camera optical frame (x right, y down, z forward, metres; rays
leave the origin with direction ((u - cx) / fx, (v - cy) / fy, 1), so a ray's parameter at
a hit is the depth along z).  ``render`` casts ``supersample``^2 rays per pixel and, like a
real depth camera at a depth edge, reports their MEAN depth: pixels on a silhouette get
mixed depths between the object and what is behind it.  The target mask is the pixels
where at least half of the rays hit the target first (a mask a careful annotator draws).

Scenes (``box_on_table``, ``can_on_table``, ``board_before_wall``) are set up in a world
frame (x right, y away from the camera along the table, z up; table top z = 0) and moved
into the camera frame, so their true pose in the optical frame is known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from evf_sam_ros.target3d.geometry import CameraIntrinsics

#: A RealSense D435-like colour camera at 1280x720.
HD_INTRINSICS = CameraIntrinsics(910.0, 910.0, 639.5, 359.5, 1280, 720)


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _near(dirs: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the rays from the origin that pass within ``radius`` of ``centre``."""
    along = dirs @ centre
    squared = np.einsum('ij,ij->i', dirs, dirs)
    return np.flatnonzero(centre @ centre - along * along / squared <= radius * radius)


def _bounded(intersect):
    """Run a shape's ray test only on the rays that pass near its bounding sphere."""

    def wrapper(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, normal = np.full(len(dirs), np.inf), np.zeros_like(dirs)
        index = _near(dirs, self.centre, self.bounding_radius)
        t[index], normal[index] = intersect(self, dirs[index])
        return t, normal

    wrapper.__doc__ = intersect.__doc__
    return wrapper


@dataclass(frozen=True)
class Cuboid:
    """Box: centre (3,) metres; rotation 3x3, columns = its x, y, z axes; size (3,) metres."""

    centre: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    colour: tuple[int, int, int] = (40, 80, 200)

    @property
    def bounding_radius(self) -> float:
        """Radius in metres of the sphere around the centre that holds the box."""
        return float(np.linalg.norm(self.size)) / 2

    @_bounded
    def intersect(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, normal) of rays from the origin: t (N,) inf on a miss, normal (N, 3)."""
        origin = -self.centre @ self.rotation
        local = dirs @ self.rotation
        half = np.asarray(self.size) / 2
        with np.errstate(divide='ignore', invalid='ignore'):
            t0, t1 = (-half - origin) / local, (half - origin) / local
        near, far = np.fmin(t0, t1), np.fmax(t0, t1)
        t_near, t_far = near.max(axis=1), far.min(axis=1)
        t = np.where((t_near <= t_far) & (t_near > 1e-9), t_near, np.inf)
        axis = near.argmax(axis=1)
        rows = np.arange(len(dirs))
        normal_local = np.zeros_like(dirs)
        normal_local[rows, axis] = -np.sign(local[rows, axis])
        return t, normal_local @ self.rotation.T

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance in metres of each point from the box's surface."""
        q = np.abs((points - self.centre) @ self.rotation) - np.asarray(self.size) / 2
        return _surface_distance(q)


def _surface_distance(q: np.ndarray) -> np.ndarray:
    """(N,) |signed distance| from per-axis excesses q (N, k) of a box-like shape's extents."""
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    return np.abs(outside + np.minimum(q.max(axis=1), 0))


@dataclass(frozen=True)
class Cylinder:
    """Capped cylinder: centre (3,), unit axis (3,), radius and length in metres."""

    centre: np.ndarray
    axis: np.ndarray
    radius: float
    length: float
    colour: tuple[int, int, int] = (200, 40, 30)

    @property
    def bounding_radius(self) -> float:
        """Radius in metres of the sphere around the centre that holds the cylinder."""
        return math.hypot(self.radius, self.length / 2)

    @_bounded
    def intersect(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, normal) of rays from the origin: t (N,) inf on a miss, normal (N, 3)."""
        a, o = self.axis, -self.centre
        d_par, o_par = dirs @ a, o @ a
        d_perp, o_perp = dirs - d_par[:, None] * a, o - o_par * a
        qa = np.sum(d_perp * d_perp, axis=1)
        qb = 2 * d_perp @ o_perp
        qc = o_perp @ o_perp - self.radius**2
        with np.errstate(invalid='ignore', divide='ignore'):
            t_side = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
            h = o_par + t_side * d_par
            t_side = np.where((np.abs(h) <= self.length / 2) & (t_side > 1e-9), t_side, np.inf)
            t_caps = [((s * self.length / 2) - o_par) / d_par for s in (-1.0, 1.0)]
        best_t = t_side
        normal = o + np.where(np.isfinite(t_side), t_side, 0.0)[:, None] * dirs
        normal = (normal - (normal @ a)[:, None] * a) / self.radius
        for sign, t_cap in zip((-1.0, 1.0), t_caps):
            p = o + np.nan_to_num(t_cap, posinf=0, neginf=0)[:, None] * dirs
            radial = p - (p @ a)[:, None] * a
            ok = (t_cap > 1e-9) & (np.sum(radial * radial, axis=1) <= self.radius**2)
            better = ok & (t_cap < best_t)
            best_t = np.where(better, t_cap, best_t)
            normal[better] = sign * a
        return best_t, normal

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance in metres of each point from the cylinder's surface."""
        rel = points - self.centre
        along = rel @ self.axis
        radial = np.linalg.norm(rel - along[:, None] * self.axis, axis=1)
        q = np.stack([radial - self.radius, np.abs(along) - self.length / 2], axis=1)
        return _surface_distance(q)


@dataclass(frozen=True)
class Plane:
    """Infinite plane through ``point`` with unit ``normal`` (a table, a wall)."""

    point: np.ndarray
    normal: np.ndarray
    colour: tuple[int, int, int] = (150, 110, 70)

    def intersect(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, normal) of rays from the origin: t (N,) inf on a miss, normal (N, 3)."""
        with np.errstate(divide='ignore', invalid='ignore'):
            t = (self.point @ self.normal) / (dirs @ self.normal)
        t = np.where(t > 1e-9, t, np.inf)
        return t, np.broadcast_to(self.normal, dirs.shape)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance in metres of each point from the plane."""
        return np.abs((points - self.point) @ self.normal)


Shape = Cuboid | Cylinder | Plane


@dataclass(frozen=True)
class Scene:
    """A target and what surrounds it, in the optical frame of a camera with ``intrinsics``."""

    target: Shape
    background: tuple[Shape, ...]
    intrinsics: CameraIntrinsics = HD_INTRINSICS
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """depth_m: HxW float32 metres (mean of the pixel's rays; NaN where a ray hit nothing).
    mask: HxW bool target mask. rgb: HxWx3 uint8 RGB (flat colours, Lambert shading).
    """

    depth_m: np.ndarray
    mask: np.ndarray
    rgb: np.ndarray


def render(scene: Scene, supersample: int = 2) -> Rendered:
    """Ray cast ``scene``: supersample^2 rays per pixel, depth averaged (see module doc)."""
    intr, s = scene.intrinsics, supersample
    offsets = (np.arange(s) + 0.5) / s - 0.5
    us = (np.arange(intr.width)[:, None] + offsets).reshape(-1)
    vs = (np.arange(intr.height)[:, None] + offsets).reshape(-1)
    uu, vv = np.meshgrid((us - intr.cx) / intr.fx, (vs - intr.cy) / intr.fy)
    dirs = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], axis=1)
    shapes = (scene.target,) + tuple(scene.background)
    best_t, best_id = np.full(len(dirs), np.inf), np.full(len(dirs), -1)
    shade = np.zeros(len(dirs))
    for index, shape in enumerate(shapes):
        t, normal = shape.intersect(dirs)
        better = t < best_t
        best_t[better], best_id[better] = t[better], index
        cosine = np.abs(np.sum(normal * dirs, axis=1)) / np.linalg.norm(dirs, axis=1)
        shade[better] = cosine[better]
    colours = np.array([sh.colour for sh in shapes] + [(0, 0, 0)], dtype=np.float64)
    rgb = colours[best_id] * (0.35 + 0.65 * shade)[:, None]
    grid = (intr.height, s, intr.width, s)
    depth = best_t.reshape(grid).mean(axis=(1, 3))
    depth[~np.isfinite(depth)] = np.nan
    mask = (best_id == 0).reshape(grid).mean(axis=(1, 3)) >= 0.5
    rgb = rgb.reshape(grid + (3,)).mean(axis=(1, 3))
    return Rendered(depth.astype(np.float32), mask, np.rint(rgb).astype(np.uint8))


def look_at(eye: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """3x3 world-from-camera rotation (columns: optical x, y, z in a z-up world)."""
    forward = _unit(np.subtract(target, eye))
    right = _unit(np.cross(forward, [0.0, 0.0, 1.0]))
    return np.stack([right, np.cross(forward, right), forward], axis=1)


def rotation_z(degrees: float) -> np.ndarray:
    """3x3 rotation about z by ``degrees``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class Camera:
    """Moves world-frame shapes into the optical frame of a camera at ``eye``."""

    def __init__(self, eye: Sequence[float], target: Sequence[float]):
        self.eye, self.world_from_cam = np.asarray(eye, dtype=np.float64), look_at(eye, target)

    def point(self, p: Sequence[float]) -> np.ndarray:
        """(3,) optical-frame position of world point ``p`` (metres)."""
        return (np.asarray(p, dtype=np.float64) - self.eye) @ self.world_from_cam

    def vector(self, v: Sequence[float]) -> np.ndarray:
        """(3,) optical-frame direction of world direction ``v``."""
        return np.asarray(v, dtype=np.float64) @ self.world_from_cam


TABLE_EYE, TABLE_LOOK = (0.05, -0.42, 0.52), (0.0, 0.02, 0.03)


def table_plane(camera: Camera) -> Plane:
    """The table top (world z = 0) in the camera's optical frame."""
    return Plane(camera.point([0.0, 0.0, 0.0]), camera.vector([0.0, 0.0, 1.0]))


def box_on_table(
    size: Sequence[float] = (0.20, 0.12, 0.08),
    yaw_deg: float = 30.0,
    intrinsics: CameraIntrinsics = HD_INTRINSICS,
) -> Scene:
    """A cuboid (length, width, height) standing on a table, turned ``yaw_deg`` about the
    vertical, seen from 0.65 m, about 45 degrees from above: its top and two sides show.
    """
    camera = Camera(TABLE_EYE, TABLE_LOOK)
    size = np.asarray(size, dtype=np.float64)
    rotation = camera.world_from_cam.T @ rotation_z(yaw_deg)
    box = Cuboid(camera.point([0.0, 0.0, size[2] / 2]), rotation, size)
    return Scene(box, (table_plane(camera),), intrinsics)


def can_on_table(
    radius: float = 0.035, height: float = 0.12, intrinsics: CameraIntrinsics = HD_INTRINSICS
) -> Scene:
    """An upright cylinder (a can) on the table, seen like ``box_on_table``."""
    camera = Camera(TABLE_EYE, TABLE_LOOK)
    can = Cylinder(
        camera.point([0.0, 0.0, height / 2]), camera.vector([0.0, 0.0, 1.0]), radius, height
    )
    return Scene(can, (table_plane(camera),), intrinsics)


def board_before_wall(
    size: Sequence[float] = (0.05, 0.30, 0.012),
    yaw_deg: float = 25.0,
    distance_m: float = 0.8,
    wall_m: float = 2.0,
    intrinsics: CameraIntrinsics = HD_INTRINSICS,
) -> Scene:
    """A thin upright board (width, height, thickness) ``distance_m`` in front of the camera,
    turned ``yaw_deg`` about the vertical (image y), a wall at ``wall_m`` behind it.
    """
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    board = Cuboid(
        np.array([0.02, 0.0, distance_m]), rotation, np.asarray(size, float), colour=(230, 200, 60)
    )
    wall = Plane(np.array([0.0, 0.0, wall_m]), np.array([0.0, 0.0, -1.0]), (200, 200, 190))
    return Scene(board, (wall,), intrinsics)

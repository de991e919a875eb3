"""A synthetic tabletop scene rendered by ray casting (numpy only, no ROS imports).

A camera 0.55 m above a wooden table looks down at about 40 degrees at three objects: a
red mug (cylinder with a handle) left of a white plate (flat disc), and a blue box behind
the plate. The mug slides towards the camera and back (``mug_position``), staying left of
the plate, so a sequence of frames exercises tracking. Every pixel is a ray cast through a
pinhole camera, so colour, depth and the ground-truth mask of the mug agree exactly (depth
is "aligned to colour").

World frame: x right, y away from the camera along the table, z up; the table top is
z = 0, in metres.  Images follow ROS conventions: colour HxWx3 uint8 RGB, depth HxW
uint16 millimetres along the optical axis (0 = no reading), masks HxW bool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.target3d.geometry import CameraIntrinsics

#: Intrinsics at 640x480 (a RealSense D435-like colour camera); other sizes scale them.
BASE_WIDTH, BASE_HEIGHT = 640, 480
BASE_FX = BASE_FY = 615.0
#: Optical frame of the rendered images (the sample bag's header.frame_id).
FRAME_ID = 'camera_color_optical_frame'
#: The prompt that names the ground-truth object.
MUG_PROMPT = 'the red mug left of the plate'
#: The mug's path on the table (world x, y in metres) and the seconds of one way along it.
MUG_START, MUG_END = (-0.17, 0.26), (-0.125, 0.10)
SWEEP_S = 3.0

_CAMERA_POS = np.array([0.0, -0.30, 0.50])
_LOOK_AT = np.array([0.02, 0.32, 0.0])
_LIGHT_DIR = np.array([-0.45, -0.35, 0.82]) / np.linalg.norm([-0.45, -0.35, 0.82])
_WALL_Y = 1.25
_TABLE_HALF_WIDTH = 1.2
_FAR = 1e9

# Object ids of the id map; the mug is all ids in _MUG_IDS.
_WALL, _TABLE, _MUG_SIDE, _MUG_INSIDE, _HANDLE, _PLATE, _BOX = range(7)
_MUG_IDS = (_MUG_SIDE, _MUG_INSIDE, _HANDLE)
_ALBEDO = {  # linear-ish RGB in 0..1
    _MUG_SIDE: (0.78, 0.07, 0.06),
    _MUG_INSIDE: (0.42, 0.03, 0.03),
    _HANDLE: (0.72, 0.06, 0.05),
    _PLATE: (0.93, 0.93, 0.91),
    _BOX: (0.10, 0.22, 0.75),
}


@dataclass(frozen=True)
class SceneFrame:
    """One rendered frame.

    rgb: HxWx3 uint8 RGB. depth_mm: HxW uint16, millimetres along the optical axis,
    aligned to rgb. gt_mask: HxW bool, True on the red mug (body, inside and handle).
    intrinsics: pinhole intrinsics of all three images (optical frame ``FRAME_ID``).
    """

    rgb: np.ndarray
    depth_mm: np.ndarray
    gt_mask: np.ndarray
    intrinsics: CameraIntrinsics


@dataclass(frozen=True)
class _Hits:
    t: np.ndarray  # (N,) ray parameter = depth in metres (rays have optical z = 1)
    ids: np.ndarray  # (N,) object id
    normal: np.ndarray  # (N, 3) world-frame unit normal


def scene_intrinsics(width: int = BASE_WIDTH, height: int = BASE_HEIGHT) -> CameraIntrinsics:
    """Intrinsics of the scene camera at ``width`` x ``height`` pixels."""
    base = CameraIntrinsics(
        BASE_FX, BASE_FY, (BASE_WIDTH - 1) / 2, (BASE_HEIGHT - 1) / 2, BASE_WIDTH, BASE_HEIGHT
    )
    return base if (width, height) == (BASE_WIDTH, BASE_HEIGHT) else base.scaled(width, height)


def _camera_rotation() -> np.ndarray:
    """3x3 matrix whose columns are the optical x (right), y (down), z (forward) in world."""
    forward = _LOOK_AT - _CAMERA_POS
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward], axis=1)


def _rays(intr: CameraIntrinsics, supersample: int) -> np.ndarray:
    """World-frame ray directions (N, 3), optical z component 1, row-major over sub-pixels."""
    s = supersample
    offsets = (np.arange(s) + 0.5) / s - 0.5
    us = (np.arange(intr.width)[:, None] + offsets[None, :]).reshape(-1)
    vs = (np.arange(intr.height)[:, None] + offsets[None, :]).reshape(-1)
    uu, vv = np.meshgrid((us - intr.cx) / intr.fx, (vs - intr.cy) / intr.fy)
    cam = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], axis=1)
    return cam @ _camera_rotation().T


def _closer(hits: _Hits, t: np.ndarray, obj: int, normal: np.ndarray) -> None:
    """Keep hit ``t`` (inf = miss) where it is nearer than the current one (in place)."""
    better = t < hits.t
    hits.t[better] = t[better]
    hits.ids[better] = obj
    hits.normal[better] = normal[better] if normal.ndim == 2 else normal


def _plane_t(origin: np.ndarray, dirs: np.ndarray, axis: int, value: float) -> np.ndarray:
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (value - origin[..., axis]) / dirs[:, axis]
    return np.where(t > 1e-6, t, np.inf)


def _cylinder(
    hits: _Hits,
    origin: np.ndarray,
    dirs: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    height: float,
    side_id: int,
    top_id: int,
) -> None:
    """Vertical cylinder standing on the table: side wall and top cap."""
    ox, oy = origin[..., 0] - centre[0], origin[..., 1] - centre[1]
    a = dirs[:, 0] ** 2 + dirs[:, 1] ** 2
    b = 2 * (ox * dirs[:, 0] + oy * dirs[:, 1])
    c = ox**2 + oy**2 - radius**2
    disc = b * b - 4 * a * c
    with np.errstate(invalid='ignore'):
        t = (-b - np.sqrt(disc)) / (2 * a)
    z = origin[..., 2] + t * dirs[:, 2]
    t = np.where((disc >= 0) & (t > 1e-6) & (z >= 0) & (z <= height), t, np.inf)
    point = origin + t[:, None] * dirs
    normal = np.zeros_like(dirs)
    normal[:, 0] = (point[:, 0] - centre[0]) / radius
    normal[:, 1] = (point[:, 1] - centre[1]) / radius
    _closer(hits, t, side_id, np.nan_to_num(normal))
    t_top = _plane_t(origin, dirs, 2, height)
    top = origin + np.where(np.isfinite(t_top), t_top, 0)[:, None] * dirs
    inside = (top[:, 0] - centre[0]) ** 2 + (top[:, 1] - centre[1]) ** 2 <= radius**2
    _closer(hits, np.where(inside, t_top, np.inf), top_id, np.array([0.0, 0.0, 1.0]))


def _box(
    hits: _Hits,
    origin: np.ndarray,
    dirs: np.ndarray,
    lo: tuple[float, ...],
    hi: tuple[float, ...],
    obj: int,
) -> None:
    """Axis-aligned box (slab method)."""
    with np.errstate(divide='ignore', invalid='ignore'):
        t0 = (np.asarray(lo) - origin) / dirs
        t1 = (np.asarray(hi) - origin) / dirs
    near, far = np.fmin(t0, t1), np.fmax(t0, t1)
    t_near, t_far = near.max(axis=1), far.min(axis=1)
    t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
    axis = near.argmax(axis=1)
    normal = np.zeros_like(dirs)
    normal[np.arange(len(dirs)), axis] = -np.sign(dirs[np.arange(len(dirs)), axis])
    _closer(hits, t, obj, normal)


def mug_position(time_s: float) -> tuple[float, float]:
    """(x, y) of the mug's axis on the table at ``time_s``, metres in the world frame.

    The mug slides from MUG_START to MUG_END in SWEEP_S seconds and back, easing in and out
    (so a 3 s bag, the sample bag's default, is one sweep); it stays left of the plate.
    """
    progress = 0.5 - 0.5 * math.cos(math.pi * time_s / SWEEP_S)
    return (
        MUG_START[0] + progress * (MUG_END[0] - MUG_START[0]),
        MUG_START[1] + progress * (MUG_END[1] - MUG_START[1]),
    )


def _objects(time_s: float) -> dict[str, Any]:
    """Object placements at ``time_s``: the mug slides (``mug_position``), the box drifts."""
    mug_x, mug_y = mug_position(time_s)
    box_y = 0.46 + 0.006 * math.sin(2 * math.pi * time_s / 2.0)
    handle_y = (mug_y - 0.006, mug_y + 0.006)
    return {
        'mug': ((mug_x, mug_y), 0.042, 0.10),
        'handle': [  # a rectangular loop: top bar, bottom bar, outer bar
            ((mug_x - 0.075, handle_y[0], 0.064), (mug_x - 0.038, handle_y[1], 0.078)),
            ((mug_x - 0.075, handle_y[0], 0.024), (mug_x - 0.038, handle_y[1], 0.038)),
            ((mug_x - 0.075, handle_y[0], 0.024), (mug_x - 0.062, handle_y[1], 0.078)),
        ],
        'plate': ((0.06, 0.28), 0.105, 0.012),
        'box': ((0.21, box_y - 0.045, 0.0), (0.30, box_y + 0.045, 0.13)),
    }


def _cast(origin: np.ndarray, dirs: np.ndarray, time_s: float, with_room: bool = True) -> _Hits:
    """Nearest hit of every ray against the scene; ids start as _WALL at t = inf."""
    n = len(dirs)
    hits = _Hits(np.full(n, np.inf), np.full(n, _WALL, dtype=np.int8), np.zeros((n, 3)))
    objects = _objects(time_s)
    if with_room:
        _closer(hits, _plane_t(origin, dirs, 1, _WALL_Y), _WALL, np.array([0.0, -1.0, 0.0]))
        t_table = _plane_t(origin, dirs, 2, 0.0)
        x = origin[..., 0] + np.where(np.isfinite(t_table), t_table, 0) * dirs[:, 0]
        t_table = np.where(np.abs(x) <= _TABLE_HALF_WIDTH, t_table, np.inf)
        _closer(hits, t_table, _TABLE, np.array([0.0, 0.0, 1.0]))
    _cylinder(hits, origin, dirs, *objects['mug'], _MUG_SIDE, _MUG_INSIDE)
    for lo, hi in objects['handle']:
        _box(hits, origin, dirs, lo, hi, _HANDLE)
    _cylinder(hits, origin, dirs, *objects['plate'], _PLATE, _PLATE)
    _box(hits, origin, dirs, *objects['box'], _BOX)
    return hits


def _albedo(hits: _Hits, points: np.ndarray, time_s: float) -> np.ndarray:
    """(N, 3) surface colour in 0..1: wood grain on the table, a rim on the plate."""
    colour = np.zeros((len(hits.t), 3))
    for obj, rgb in _ALBEDO.items():
        colour[hits.ids == obj] = rgb
    table = hits.ids == _TABLE
    x, y = points[table, 0], points[table, 1]
    grain = 0.025 * np.sin(x * 140.0 + 3.0 * np.sin(y * 5.0)) + 0.02 * np.sin(x * 37.0 + y * 2.0)
    seam = np.abs(((x + 0.05) / 0.16) % 1.0 - 0.5) > 0.485  # planks 16 cm wide
    shade = 1.0 + grain - 0.12 * y - 0.25 * seam
    colour[table] = np.array([0.55, 0.36, 0.20])[None, :] * shade[:, None]
    wall = hits.ids == _WALL
    brightness = 0.9 + 0.1 * np.clip(points[wall, 2], 0, 1)
    colour[wall] = np.array([0.80, 0.80, 0.76]) * brightness[:, None]
    inside = hits.ids == _MUG_INSIDE
    (mx, my), mug_radius, _ = _objects(time_s)['mug']
    rim = np.hypot(points[inside, 0] - mx, points[inside, 1] - my) > 0.86 * mug_radius
    colour[np.flatnonzero(inside)[rim]] = _ALBEDO[_MUG_SIDE]
    plate = hits.ids == _PLATE
    (px, py), radius, _ = _objects(time_s)['plate']
    r = np.hypot(points[plate, 0] - px, points[plate, 1] - py) / radius
    colour[plate] *= (1.0 - 0.10 * np.exp(-(((r - 0.72) / 0.05) ** 2)))[:, None]
    return colour


def _shade(hits: _Hits, dirs: np.ndarray, time_s: float) -> np.ndarray:
    """(N, 3) linear radiance: ambient + Lambert with cast shadows + a highlight on the mug."""
    points = _CAMERA_POS + np.where(np.isfinite(hits.t), hits.t, _FAR)[:, None] * dirs
    lambert = np.clip(hits.normal @ _LIGHT_DIR, 0.0, 1.0)
    shadow_origin = points + 1e-4 * hits.normal
    blocked = np.isfinite(
        _cast(
            shadow_origin, np.broadcast_to(_LIGHT_DIR, dirs.shape).copy(), time_s, with_room=False
        ).t
    )
    light = 0.35 + 0.75 * lambert * np.where(blocked, 0.15, 1.0)
    view = -dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    half = (view + _LIGHT_DIR) / np.linalg.norm(view + _LIGHT_DIR, axis=1, keepdims=True)
    glossy = np.isin(hits.ids, (_MUG_SIDE, _HANDLE, _PLATE))
    spec = np.where(glossy, np.clip(np.sum(hits.normal * half, axis=1), 0, 1) ** 40, 0.0)
    return _albedo(hits, points, time_s) * light[:, None] + 0.5 * spec[:, None]


def _to_srgb8(linear: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(255.0 * np.clip(linear, 0, 1) ** (1 / 1.6)), 0, 255).astype(np.uint8)


def render_tabletop(
    time_s: float = 0.0, width: int = BASE_WIDTH, height: int = BASE_HEIGHT, supersample: int = 2
) -> SceneFrame:
    """Render the tabletop scene at ``time_s`` seconds (the mug slides, the box drifts).

    Arguments:
        time_s: scene time in seconds; the same time always gives the same images.
        width, height: image size in pixels (intrinsics scale with it).
        supersample: colour anti-aliasing, ``supersample``^2 rays per pixel (depth and
            mask use one ray through each pixel centre).

    Returns:
        SceneFrame with HxWx3 uint8 RGB, HxW uint16 depth in mm (aligned, no invalid
        pixels), HxW bool ground-truth mask of the red mug, and the intrinsics.
    """
    if width < 8 or height < 8 or supersample < 1:
        raise ValueError(
            f'need width, height >= 8 and supersample >= 1, got {width}x{height}, {supersample}'
        )
    intr = scene_intrinsics(width, height)
    dirs = _rays(intr, 1)
    hits = _cast(_CAMERA_POS, dirs, time_s)
    depth_mm = np.clip(np.rint(hits.t * 1000.0), 0, 65535).astype(np.uint16).reshape(height, width)
    gt_mask = np.isin(hits.ids, _MUG_IDS).reshape(height, width)
    if supersample > 1:
        dirs = _rays(intr, supersample)
        hits = _cast(_CAMERA_POS, dirs, time_s)
    radiance = _shade(hits, dirs, time_s)
    s = supersample
    radiance = radiance.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return SceneFrame(_to_srgb8(radiance), depth_mm, gt_mask, intr)

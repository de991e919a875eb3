"""The target's surface points: which mask pixels to trust, and its point cloud (numpy only).

Conventions as in ``geometry``: masks HxW (non-zero = target), depth HxW float metres with
NaN = no reading, pixel-aligned with the mask; colour images HxWx3 uint8 RGB; points in
metres in the camera optical frame (x right, y down, z forward).

Three filters decide which mask pixels with valid depth belong to the target's surface:

* Mixed ("flying") pixels: at a depth edge a sensor averages the near and the far surface
  and reports a depth in between.  Such a pixel steps by a large depth to BOTH of its
  neighbours along a row or a column; a pixel on the object's edge steps only to one side
  and is kept.  A neighbour without a reading counts as a step (a mixed pixel next to a
  stereo shadow has a hole on one side).  "Large" is the step of a surface seen at
  ``max_incidence_deg`` from face-on plus ``noise_sigmas`` x sqrt(2) x the depth noise at
  the target's depth (``noise_at_1m_m`` x depth^2, the stereo model), so the test does not
  eat noisy but good pixels far away; surfaces seen more obliquely are dropped too.
* Depth breaks: the mask is cut where neighbouring pixels step by more than that step (the
  far pixel goes), and only its large parts stay (at least ``min_part_fraction`` of the
  largest): a spill onto an object behind or in front is cut off where depth separates it.
  The parts are kept apart (``Surface.part``): the instances of a mask holding several
  objects.
* The depth gate: a pixel is kept when its depth is within
  max(``gate_sigmas`` x 1.4826 x MAD, ``gate_min_m``) of the target's median depth (MAD:
  median absolute deviation from that median).  It removes the background seen through or
  around the object (a wall behind a mug's handle).  It cannot remove a surface at the
  object's own depth and joined to it without a break: a spill onto the table at the
  object's foot (``support.py`` removes that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.model.masks import mask_bbox
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixels
from evf_sam_ros.target3d.regions import depth_breaks, label_regions

#: The MAD of a normal distribution times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
#: At most this many depths estimate the MAD (an evenly spaced subset of larger surfaces).
_MAD_SAMPLES = 4096


@dataclass(frozen=True)
class SurfaceFilter:
    """How mask pixels become surface points (see the module docstring).

    min_depth_m / max_depth_m: valid depth range in metres. gate_sigmas: half-width of the
    depth gate in robust standard deviations (1.4826 x MAD). gate_min_m: least half-width
    of the gate in metres. max_incidence_deg: angle from face-on in degrees (0 < a < 90)
    beyond which a pixel stepping to both neighbours is dropped as mixed. noise_at_1m_m:
    standard deviation of the depth noise at 1 m, metres (it grows with depth squared);
    noise_sigmas: how many of them a step between neighbours may add. min_part_fraction:
    parts of the mask split by depth breaks smaller than this fraction of the largest are
    dropped (1: the largest only).  The defaults live in ``estimate.TargetSettings``.
    """

    min_depth_m: float
    max_depth_m: float
    gate_sigmas: float
    gate_min_m: float
    max_incidence_deg: float
    noise_at_1m_m: float = 0.0
    noise_sigmas: float = 3.0
    min_part_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_depth_m <= self.max_depth_m:
            raise ValueError(
                f'need 0 <= min_depth_m <= max_depth_m, got {self.min_depth_m}, {self.max_depth_m}'
            )
        if not (self.gate_sigmas > 0 and self.gate_min_m >= 0):
            raise ValueError(
                f'need gate_sigmas > 0 and gate_min_m >= 0, got '
                f'{self.gate_sigmas}, {self.gate_min_m}'
            )
        if not 0.0 < self.max_incidence_deg < 90.0:
            raise ValueError(
                f'max_incidence_deg must be in (0, 90) degrees, got {self.max_incidence_deg}'
            )
        if not (self.noise_at_1m_m >= 0 and self.noise_sigmas >= 0):
            raise ValueError(
                f'need noise_at_1m_m >= 0 and noise_sigmas >= 0, got '
                f'{self.noise_at_1m_m}, {self.noise_sigmas}'
            )
        if not 0.0 < self.min_part_fraction <= 1.0:
            raise ValueError(f'min_part_fraction must be in (0, 1], got {self.min_part_fraction}')

    def step_m(self, depth_m: float, focal_px: float) -> float:
        """Largest depth step (m) between neighbouring pixels of one surface at ``depth_m``."""
        slope = math.tan(math.radians(self.max_incidence_deg)) * depth_m / focal_px
        noise = self.noise_sigmas * math.sqrt(2.0) * self.noise_at_1m_m * depth_m * depth_m
        return slope + noise


@dataclass(frozen=True)
class Surface:
    """Pixels of the target's surface, N of them in row-major pixel order.

    index: int array of the pixels' positions in a window of the image that starts at
    pixel ``origin`` = (u0, v0) and is ``stride`` pixels wide (u = u0 + index % stride,
    v = v0 + index // stride). z: float32 depth in metres of each pixel. part: int32 of
    each pixel, its part of the mask (0 the largest, then by size), or None (one part).
    """

    index: np.ndarray
    z: np.ndarray
    origin: tuple[int, int] = (0, 0)
    stride: int = 1
    part: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.z.size)

    def pixels(self, selection: Any = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(u, v): column and row of the selected pixels (all by default)."""
        rows, cols = np.divmod(self.index[selection], self.stride)
        return cols + self.origin[0], rows + self.origin[1]

    def points(self, intr: CameraIntrinsics, count: int | None = None) -> np.ndarray:
        """Nx3 float32 points (metres, optical frame); with ``count``, at most that many,
        evenly spaced over the pixels (the same ones on every call).
        """
        selection = evenly_spaced(len(self), count) if count is not None else slice(None)
        u, v = self.pixels(selection)
        return deproject_pixels(u, v, self.z[selection], intr)

    def select(self, keep: Any) -> Surface:
        """The surface of the pixels ``keep`` selects (a bool array or indices)."""
        part = None if self.part is None else self.part[keep]
        return Surface(self.index[keep], self.z[keep], self.origin, self.stride, part)


@dataclass(frozen=True)
class TargetCloud:
    """The target's point cloud in the image's optical frame.

    points: Nx3 float32, metres (x right, y down, z forward). colours: Nx3 uint8 RGB of
    the image at those pixels (voxel means when downsampled), or None without an image.
    """

    points: np.ndarray
    colours: np.ndarray | None

    def __len__(self) -> int:
        return int(self.points.shape[0])


def evenly_spaced(n: int, count: int) -> np.ndarray:
    """Indices of at most ``count`` of ``n`` items, evenly spaced, first and last included."""
    if count <= 0:
        raise ValueError(f'count must be > 0, got {count}')
    if n <= count:
        return np.arange(n)
    return np.linspace(0, n - 1, count).round().astype(np.intp)


def _window(shape: tuple[int, int], bbox: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """Rows and columns of ``bbox`` (x1, y1 exclusive) grown by one pixel, inside the image."""
    x0, y0, x1, y1 = bbox
    return (
        slice(max(y0 - 1, 0), min(y1 + 1, shape[0])),
        slice(max(x0 - 1, 0), min(x1 + 1, shape[1])),
    )


def _mixed_pixels(depth: np.ndarray, step_u: float, step_v: float) -> np.ndarray:
    """HxW bool: pixels whose depth steps by more than step_u to both row neighbours, or by
    more than step_v to both column neighbours (a neighbour without a reading, NaN, counts
    as a step; a pixel without a reading is never mixed).
    """
    mixed = np.zeros(depth.shape, dtype=bool)
    with np.errstate(invalid='ignore'):
        jump = ~(np.abs(np.diff(depth, axis=1)) <= step_u)
        mixed[:, 1:-1] = jump[:, :-1] & jump[:, 1:]
        jump = ~(np.abs(np.diff(depth, axis=0)) <= step_v)
        mixed[1:-1, :] |= jump[:-1, :] & jump[1:, :]
    return mixed & np.isfinite(depth)


def _large_parts(keep: np.ndarray, min_fraction: float) -> tuple[np.ndarray | None, np.ndarray]:
    """Which kept pixels (in row-major order) lie in parts of at least ``min_fraction`` of
    the largest part's size (None: all of them), and each chosen one's part number (0 the
    largest, then by size).
    """
    labels, count = label_regions(keep)
    if count <= 1:
        return None, np.zeros(labels.size, dtype=np.int32)
    sizes = np.bincount(labels, minlength=count)
    order = np.argsort(-sizes, kind='stable')
    rank = np.empty(count, dtype=np.int32)
    rank[order] = np.arange(count, dtype=np.int32)
    large = sizes >= min_fraction * sizes.max()
    chosen = None if large.all() else large[labels]
    return chosen, rank[labels if chosen is None else labels[chosen]]


def _gate(z: np.ndarray, median_m: float, flt: SurfaceFilter) -> np.ndarray:
    """Bool per depth: within the depth gate around ``median_m``."""
    deviation = np.abs(z - np.float32(median_m))
    mad = float(np.median(deviation[evenly_spaced(z.size, _MAD_SAMPLES)]))
    half_width = max(flt.gate_sigmas * MAD_TO_SIGMA * mad, flt.gate_min_m)
    return deviation <= half_width


def target_surface(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intr: CameraIntrinsics,
    median_m: float,
    flt: SurfaceFilter,
    bbox: tuple[int, int, int, int] | None = None,
) -> Surface:
    """The mask's pixels with valid depth that pass the mixed-pixel filter and the gate.

    Arguments:
        mask: HxW bool (or non-zero = target). depth_m: HxW float depth in metres, NaN =
            no reading, aligned with the mask. intr: intrinsics at the mask's size.
        median_m: the target's robust depth in metres (e.g. ``DepthStats.median_m`` of the
            eroded mask): the centre of the gate.
        bbox: the mask's (x0, y0, x1, y1), x1/y1 exclusive, if known (saves a full scan).

    Returns:
        Surface (possibly empty).

    Raises:
        ValueError: shapes differ, intrinsics are for another size, or median_m is not a
            finite positive depth.
    """
    mask, depth = np.asarray(mask), np.asarray(depth_m)
    if mask.ndim != 2 or depth.shape != mask.shape:
        raise ValueError(
            f'mask and depth must be HxW of one size, got {mask.shape}, {depth.shape}'
        )
    if (intr.height, intr.width) != mask.shape:
        raise ValueError(
            f'intrinsics are for {intr.width}x{intr.height} but the mask is '
            f'{mask.shape[1]}x{mask.shape[0]}; use CameraIntrinsics.scaled()'
        )
    if not (math.isfinite(median_m) and median_m > 0):
        raise ValueError(f'median_m must be a finite depth > 0 metres, got {median_m}')
    bbox = bbox if bbox is not None else mask_bbox(mask)
    if bbox is None:
        return Surface(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32))
    rows, cols = _window(mask.shape, bbox)
    crop = depth[rows, cols]
    keep = mask[rows, cols] != 0
    with np.errstate(invalid='ignore'):  # NaN is never in range
        keep &= crop >= flt.min_depth_m
        keep &= crop <= flt.max_depth_m
    step_u, step_v = flt.step_m(median_m, intr.fx), flt.step_m(median_m, intr.fy)
    keep &= ~_mixed_pixels(crop, step_u, step_v)
    keep &= ~depth_breaks(np.where(keep, crop, np.float32(np.nan)), max(step_u, step_v))
    chosen, part = _large_parts(keep, flt.min_part_fraction)
    index, z = np.flatnonzero(keep), crop[keep].astype(np.float32, copy=False)
    if chosen is not None:
        index, z = index[chosen], z[chosen]
    surface = Surface(index, z, (cols.start, rows.start), crop.shape[1], part)
    if z.size:
        inside = _gate(z, median_m, flt)
        if not inside.all():
            surface = surface.select(inside)
    return surface


def check_rgb(rgb: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """``rgb`` as an array after checking it is HxWx3 uint8 at the intrinsics' size.

    Raises:
        ValueError: it is not (it must be the image the mask was segmented from).
    """
    rgb = np.asarray(rgb)
    if rgb.shape != (intr.height, intr.width, 3) or rgb.dtype != np.uint8:
        raise ValueError(
            f'rgb must be {intr.height}x{intr.width}x3 uint8 (the image the '
            f'mask belongs to), got {rgb.shape} {rgb.dtype}'
        )
    return rgb

"""The target's surface points: which mask pixels to trust, and its point cloud (numpy only).

Conventions as in ``geometry``: masks HxW (non-zero = target), depth HxW float metres with
NaN = no reading, pixel-aligned with the mask; colour images HxWx3 uint8 RGB; points in
metres in the camera optical frame (x right, y down, z forward).

Two filters decide which mask pixels with valid depth belong to the target's surface:

* Mixed ("flying") pixels: at a depth edge a sensor averages the near and the far surface
  and reports a depth in between.  Such a pixel steps by a large depth to BOTH of its
  neighbours along a row or a column; a pixel on the object's edge steps only to one side
  and is kept.  "Large" is the step of a surface seen at ``max_incidence_deg`` from
  face-on, so surfaces seen more obliquely than that are dropped too (their depth is
  unreliable anyway).
* The depth gate: a pixel is kept when its depth is within
  max(``gate_sigmas`` x 1.4826 x MAD, ``gate_min_m``) of the target's median depth (MAD:
  median absolute deviation from that median).  It removes the background seen through or
  around the object (a wall behind a mug's handle, the table beyond the mask's edge when it
  lies more than the gate behind).  It cannot remove a surface at the object's own depth:
  a mask that spills onto the table at the object's foot brings table points with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evf_sam_ros.model.masks import mask_bbox
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixels

#: The MAD of a normal distribution times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
#: At most this many depths estimate the MAD (an evenly spaced subset of larger surfaces).
_MAD_SAMPLES = 4096
#: Dense voxel grids up to this many cells per point use bincount instead of a sort.
_DENSE_VOXEL_CELLS_PER_POINT = 16


@dataclass(frozen=True)
class SurfaceFilter:
    """How mask pixels become surface points (see the module docstring).

    min_depth_m / max_depth_m: valid depth range in metres. gate_sigmas: half-width of the
    depth gate in robust standard deviations (1.4826 x MAD). gate_min_m: least half-width
    of the gate in metres. max_incidence_deg: angle from face-on in degrees (0 < a < 90)
    beyond which a pixel stepping to both neighbours is dropped as mixed.  The defaults
    live in ``targets.TargetSettings`` (``surface_filter()``).
    """

    min_depth_m: float
    max_depth_m: float
    gate_sigmas: float
    gate_min_m: float
    max_incidence_deg: float

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


@dataclass(frozen=True)
class Surface:
    """Pixels of the target's surface, N of them in row-major pixel order.

    index: int array of the pixels' positions in a window of the image that starts at
    pixel ``origin`` = (u0, v0) and is ``stride`` pixels wide (u = u0 + index % stride,
    v = v0 + index // stride). z: float32 depth in metres of each pixel.
    """

    index: np.ndarray
    z: np.ndarray
    origin: tuple[int, int] = (0, 0)
    stride: int = 1

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
    more than step_v to both column neighbours (NaN neighbours never count as a step).
    """
    mixed = np.zeros(depth.shape, dtype=bool)
    with np.errstate(invalid='ignore'):
        jump = np.abs(np.diff(depth, axis=1)) > step_u
        mixed[:, 1:-1] = jump[:, :-1] & jump[:, 1:]
        jump = np.abs(np.diff(depth, axis=0)) > step_v
        mixed[1:-1, :] |= jump[:-1, :] & jump[1:, :]
    return mixed


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
    slope = math.tan(math.radians(flt.max_incidence_deg)) * median_m
    keep = mask[rows, cols] != 0
    with np.errstate(invalid='ignore'):  # NaN is never in range and never a step
        keep &= crop >= flt.min_depth_m
        keep &= crop <= flt.max_depth_m
    keep &= ~_mixed_pixels(crop, slope / intr.fx, slope / intr.fy)
    index = np.flatnonzero(keep)
    z = crop.reshape(-1)[index] if crop.flags.c_contiguous else crop[keep]
    z = z.astype(np.float32, copy=False)
    if z.size:
        inside = _gate(z, median_m, flt)
        if not inside.all():
            index, z = index[inside], z[inside]
    return Surface(index, z, (cols.start, rows.start), crop.shape[1])


def voxel_downsample(
    points: np.ndarray, colours: np.ndarray | None, voxel_size_m: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """One point per occupied voxel: the mean of its points (and of their colours).

    Arguments:
        points: Nx3 float32 metres. colours: Nx3 uint8 or None. voxel_size_m: edge of the
            cubic voxels in metres (> 0), aligned to the frame's origin.

    Returns:
        (Mx3 float32, Mx3 uint8 rounded means or None), voxels in x-major, then y, then z
        order of their grid index.
    """
    if not voxel_size_m > 0:
        raise ValueError(f'voxel_size_m must be > 0, got {voxel_size_m}')
    if len(points) == 0:
        return points, colours
    # Per column: reductions over axis 0 of an Nx3 array are 20x slower (strided).
    key, cells = np.zeros(len(points), dtype=np.int64), 1
    for axis in range(3):
        cell = np.floor(points[:, axis] / np.float32(voxel_size_m)).astype(np.int64)
        low = cell.min()
        span = int(cell.max() - low) + 1
        key = key * span + (cell - low)
        cells *= span
    if cells <= _DENSE_VOXEL_CELLS_PER_POINT * len(points):
        counts = np.bincount(key, minlength=cells)
        occupied = np.flatnonzero(counts)
        voxel_of_cell = np.empty(cells, dtype=np.intp)
        voxel_of_cell[occupied] = np.arange(len(occupied))
        inverse, counts = voxel_of_cell[key], counts[occupied]
    else:
        occupied, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    groups = len(occupied)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=values, minlength=groups) / counts

    down = np.empty((groups, 3), dtype=np.float32)
    for axis in range(3):
        down[:, axis] = mean(points[:, axis])
    if colours is None:
        return down, None
    rgb = np.empty((groups, 3), dtype=np.uint8)
    for channel in range(3):
        rgb[:, channel] = np.rint(mean(colours[:, channel]))
    return down, rgb


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


def build_cloud(
    surface: Surface,
    intr: CameraIntrinsics,
    rgb: np.ndarray | None,
    voxel_size_m: float,
    max_points: int,
) -> TargetCloud:
    """The published cloud of a surface: deprojected, coloured, voxel-downsampled, capped.

    Arguments:
        rgb: HxWx3 uint8 RGB image the surface's pixels index into, or None (no colours).
        voxel_size_m: voxel edge in metres; 0 keeps every point.
        max_points: most points kept (> 0); more are thinned evenly after downsampling.

    Raises:
        ValueError: rgb is not HxWx3 uint8 of the intrinsics' size, or bad sizes.
    """
    if max_points <= 0 or voxel_size_m < 0:
        raise ValueError(
            f'need max_points > 0 and voxel_size_m >= 0, got {max_points}, {voxel_size_m}'
        )
    pixels = None if rgb is None else check_rgb(rgb, intr).reshape(-1, 3)
    selection = slice(None) if voxel_size_m > 0 else evenly_spaced(len(surface), max_points)
    u, v = surface.pixels(selection)
    points = deproject_pixels(u, v, surface.z[selection], intr)
    # np.take: 4x faster than fancy indexing for rows of 3 bytes (0.05 vs 0.22 ms, 20000).
    colours = None if pixels is None else np.take(pixels, v * intr.width + u, axis=0)
    if voxel_size_m > 0:
        points, colours = voxel_downsample(points, colours, voxel_size_m)
        keep = evenly_spaced(len(points), max_points)
        points, colours = points[keep], None if colours is None else colours[keep]
    return TargetCloud(points, colours)

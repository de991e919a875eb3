"""The published cloud of a target's surface: coloured, voxel-downsampled, capped (numpy only).

Points in metres in the camera optical frame (x right, y down, z forward); colours Nx3
uint8 RGB.  What the box sees does not depend on any of this (``cloud.target_surface``).
"""

from __future__ import annotations

import numpy as np

from evf_sam_ros.target3d.cloud import Surface, TargetCloud, check_rgb, evenly_spaced
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixels

#: Dense voxel grids up to this many cells per point use bincount instead of a sort.
_DENSE_VOXEL_CELLS_PER_POINT = 16


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

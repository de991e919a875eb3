"""Flat patches of a target's surface: where a suction cup seals, where something can be set
down (numpy only).

Points in metres in the camera optical frame (x right, y down, z forward).

A patch is the square of pixels around a grid point that a disc of ``radius_m`` at the
target's depth covers (the square around the disc, so the test is on the safe side).  A
patch counts only when every pixel in it is a surface point (no edge, hole or mixed pixel
in it): a patch over an edge is never "full".  Its plane is the least-squares plane of its
points, its flatness the RMS distance from that plane.  Sums over each square come from
summed-area tables of the surface points on a grid thinned to about ``_GRID`` pixels a
side, so all patches cost one pass over the surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evf_sam_ros.target3d.cloud import Surface, evenly_spaced
from evf_sam_ros.target3d.geometry import CameraIntrinsics, deproject_pixels

#: The surface is thinned to about this many grid points along its longer side.
_GRID = 96
#: At most this many full patches get a plane (evenly spaced over the surface).
_MAX_PATCHES = 256


@dataclass(frozen=True)
class Patches:
    """N full patches: centre Nx3 float64 metres (the mean of the patch's points), normal
    Nx3 unit float64 (pointing towards the camera), rms (N,) float64 metres (flatness),
    part (N,) int32: the surface part (``Surface.part``) the patch lies on.
    """

    centre: np.ndarray
    normal: np.ndarray
    rms: np.ndarray
    part: np.ndarray

    def select(self, keep: np.ndarray) -> Patches:
        """The patches ``keep`` (bool or indices) selects."""
        return Patches(self.centre[keep], self.normal[keep], self.rms[keep], self.part[keep])

    def __len__(self) -> int:
        return int(self.rms.size)


def _grid(surface: Surface, step: int, intr: CameraIntrinsics) -> tuple:
    """(valid HxW bool, points HxWx3 float64 (0 where not valid), parts HxW int32) of the
    surface's pixels on every ``step``-th row and column of its window.
    """
    rows = int(surface.index.max()) // surface.stride + 1
    dense = np.full(rows * surface.stride, np.nan, dtype=np.float32)
    dense[surface.index] = surface.z
    z = dense.reshape(rows, surface.stride)[::step, ::step]
    valid = np.isfinite(z)
    v, u = np.nonzero(valid)
    points = np.zeros(z.shape + (3,), dtype=np.float64)
    u0, v0 = surface.origin
    points[v, u] = deproject_pixels(u * step + u0, v * step + v0, z[v, u], intr)
    parts = np.zeros(z.shape, dtype=np.int32)
    if surface.part is not None and surface.part.size and surface.part.max() > 0:
        labels = np.zeros(rows * surface.stride, dtype=np.int32)
        labels[surface.index] = surface.part
        parts = labels.reshape(rows, surface.stride)[::step, ::step]
    return valid, points, parts


def _window_sums(values: np.ndarray, half: int) -> np.ndarray:
    """Sum over the (2 half + 1)^2 square around each cell that lies wholly in the grid."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1) + values.shape[2:])
    table[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    k = 2 * half + 1
    return table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]


def flat_patches(
    surface: Surface, intr: CameraIntrinsics, radius_m: float, median_m: float
) -> Patches:
    """The full patches of disc radius ``radius_m`` metres (see the module docstring).

    Arguments:
        surface: the target's surface pixels; intr: the intrinsics they index into.
        median_m: the target's depth in metres (sets the patch's size in pixels).
    """
    empty = Patches(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int32))
    if len(surface) == 0:
        return empty
    radius_px = radius_m * intr.fx / median_m
    longest = max(int(surface.index.max()) // surface.stride + 1, surface.stride)
    step = max(int(math.ceil(radius_px / 4.0)), int(math.ceil(longest / _GRID)), 1)
    valid, grid, parts = _grid(surface, step, intr)
    half = max(1, int(math.ceil(radius_px / step)))
    if min(valid.shape) < 2 * half + 1:
        return empty
    count = _window_sums(valid.astype(np.float64), half)
    full = np.flatnonzero(count.reshape(-1) >= (2 * half + 1) ** 2 - 0.5)
    if full.size == 0:
        return empty
    full = full[evenly_spaced(full.size, _MAX_PATCHES)]
    x, y, z = grid[..., 0], grid[..., 1], grid[..., 2]
    channels = np.stack([x, y, z, x * x, x * y, x * z, y * y, y * z, z * z], axis=-1)
    sums = _window_sums(channels, half).reshape(-1, 9)[full] / count.reshape(-1)[full, None]
    mean = sums[:, :3]
    second = sums[:, [3, 4, 5, 4, 6, 7, 5, 7, 8]].reshape(-1, 3, 3)
    cov = second - mean[:, :, None] * mean[:, None, :]
    values, vectors = np.linalg.eigh(cov)
    normal = vectors[:, :, 0]
    normal *= np.where(np.sum(normal * mean, axis=1) > 0, -1.0, 1.0)[:, None]
    rows, cols = np.divmod(full, count.shape[1])
    part = parts[rows + half, cols + half]
    return Patches(mean, normal, np.sqrt(np.maximum(values[:, 0], 0.0)), part)

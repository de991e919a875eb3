"""Connected regions of a mask, and the pixels where depth breaks it apart (numpy only).

Masks are HxW bool; depth HxW float metres (NaN = no reading).  Regions are 4-connected.
Labelling works on runs of pixels along rows: runs in neighbouring rows that share a column
are joined (minimum-label propagation with pointer jumping, vectorised), so the cost grows
with the number of runs, not of pixels (a 300x300 mask is a few hundred runs).
"""

from __future__ import annotations

import numpy as np


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of each run of True, end exclusive, in row-major order."""
    height, width = mask.shape
    padded = np.zeros((height, width + 1), dtype=bool)  # a False column ends every row
    padded[:, :width] = mask
    flat = padded.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # starts and ends alternate
    if flat[0]:
        change = np.concatenate([[0], change])
    rows, starts = np.divmod(change[0::2], width + 1)
    return rows, starts, change[1::2] - rows * (width + 1)


def _join(pairs_a: np.ndarray, pairs_b: np.ndarray, count: int) -> np.ndarray:
    """Component label (0..k-1, in order of first run) of each of ``count`` nodes."""
    labels = np.arange(count)
    while True:
        low = np.minimum(labels[pairs_a], labels[pairs_b])
        new = labels.copy()
        np.minimum.at(new, pairs_a, low)
        np.minimum.at(new, pairs_b, low)
        new = new[new]
        while True:  # pointer jumping: every node points at its root
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            break
        labels = new
    _, dense = np.unique(labels, return_inverse=True)
    return dense


def _one_region(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether the runs form one region for certain: one run per row, in consecutive rows,
    each overlapping the one above (the common case of a compact mask; no labelling needed).
    """
    if rows.size == 1:
        return True
    return bool(
        np.all(np.diff(rows) == 1)
        and np.all(starts[1:] < ends[:-1])
        and np.all(starts[:-1] < ends[1:])
    )


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected regions of ``mask``.

    Returns:
        (labels, count): labels is an int32 array with one entry per True pixel of ``mask``
        in row-major order (the order of ``np.flatnonzero(mask)``), 0..count-1, regions
        numbered in order of their first pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f'mask must be HxW, got shape {mask.shape}')
    rows, starts, ends = _runs(mask)
    if rows.size == 0:
        return np.zeros(0, dtype=np.int32), 0
    if _one_region(rows, starts, ends):
        return np.zeros(int(np.sum(ends - starts)), dtype=np.int32), 1
    width = mask.shape[1] + 1
    key_start, key_end = rows * width + starts, rows * width + ends
    # Runs of the row above that overlap run b form one range of the sorted run list.
    above = (rows - 1) * width
    low = np.searchsorted(key_end, above + starts, side='right')
    high = np.searchsorted(key_start, above + ends, side='left')
    overlaps = np.maximum(high - low, 0)
    b = np.repeat(np.arange(rows.size), overlaps)
    a = np.repeat(low, overlaps) + (
        np.arange(b.size) - np.repeat(np.cumsum(overlaps) - overlaps, overlaps)
    )
    run_labels = _join(a, b, rows.size) if b.size else np.arange(rows.size)
    labels = np.repeat(run_labels.astype(np.int32), ends - starts)
    return labels, int(run_labels.max()) + 1


def depth_breaks(depth: np.ndarray, step_m: float | np.ndarray) -> np.ndarray:
    """HxW bool: pixels farther than a 4-neighbour by more than ``step_m`` (the far side of a
    depth discontinuity).  Removing them splits a mask where depth separates its parts: a
    spill onto an object behind, or two objects at different depths.

    Arguments:
        depth: HxW float metres, NaN = no reading (NaN never makes a break).
        step_m: metres, a scalar or HxW per pixel: the largest depth step between
            neighbours on one surface.
    """
    far = np.zeros(depth.shape, dtype=bool)
    step = np.broadcast_to(np.asarray(step_m, dtype=np.float32), depth.shape)
    with np.errstate(invalid='ignore'):
        d = depth[:, 1:] - depth[:, :-1]  # > 0: the right pixel is farther
        far[:, 1:] |= d > step[:, 1:]
        far[:, :-1] |= -d > step[:, :-1]
        d = depth[1:, :] - depth[:-1, :]
        far[1:, :] |= d > step[1:, :]
        far[:-1, :] |= -d > step[:-1, :]
    return far

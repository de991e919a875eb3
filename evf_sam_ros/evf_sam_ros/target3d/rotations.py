"""Rotation matrices and quaternions (x, y, z, w) as geometry_msgs orders them (numpy only)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f'rotation must be 3x3, got {m.shape}')
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = (trace, m[0, 0], m[1, 1], m[2, 2])
    largest = int(np.argmax(candidates))
    if largest == 0:
        s = 2.0 * math.sqrt(max(1.0 + trace, 0.0))
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        i = largest - 1
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 0.0))
        v = [0.0, 0.0, 0.0]
        v[i] = s / 4
        v[j] = (m[j, i] + m[i, j]) / s
        v[k] = (m[k, i] + m[i, k]) / s
        q = (v[0], v[1], v[2], (m[k, j] - m[j, k]) / s)
    q = np.array(q) / np.linalg.norm(q)
    return tuple(float(c) for c in (q if q[3] >= 0 else -q))


def quaternion_to_rotation(quaternion: Sequence[float]) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); normalised first.

    Raises:
        ValueError: not 4 finite values, or all zero.
    """
    q = np.asarray(quaternion, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(q)) if q.size == 4 else 0.0
    if q.size != 4 or not (math.isfinite(norm) and norm > 0):
        raise ValueError(
            f'quaternion must be 4 finite values (x, y, z, w), not all zero, got {quaternion!r}'
        )
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )

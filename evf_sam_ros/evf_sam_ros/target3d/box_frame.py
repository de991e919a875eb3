"""Which of a box's axes is x, y and z, and extents that depth noise does not inflate.

Numpy only; optical frame (x right, y down, z forward), metres.

A box fitted to one view has three axes; naming them is a choice that must not change
between frames of a static object.  The most visible face (``box3d``'s dominant plane)
changes with the noise seed where two faces show equally (a box seen from about 45
degrees), so ``label_axes`` names them, in this order of preference:

1. z: with ``up`` (the support plane's normal, ``support.py``) the axis nearest to up
   (the top face's normal of an object standing on a table); else with ``reference`` (the
   same target's box on the previous frame) the axis nearest to its z; else the dominant
   face's normal (as before);
2. x: with ``reference`` the remaining axis (and sign) nearest to its x, so the pose
   follows the object; else the longer of the other two.

z always points towards the camera (z . centre < 0); x points right in the image where the
reference does not decide (+x of the optical frame; if perpendicular to it, down, then
forward); y = z cross x.

Depth noise moves each point along its ray; the extreme points of a face are its noisiest,
so the raw extents grow by about 3 sigma per side.  ``denoised_range`` moves each end that
is a face (a dense layer of points) to the face's median and pulls each other end in by
the noise's expected overshoot.
"""

from __future__ import annotations

import math

import numpy as np

#: An end of the box is a face when this fraction of the points lies within 3 sigma of it.
FACE_FRACTION = 0.08
#: Half-width of the window around a face, and the pull on other ends, in noise sigmas.
_FACE_SIGMAS = 3.0
_EDGE_PULL_SIGMAS = 2.0


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of 3-vectors (or ...x3 arrays); np.cross costs 10x more on small inputs."""
    a, b = np.asarray(a), np.asarray(b)
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def signed_axis(axis: np.ndarray) -> np.ndarray:
    """``axis`` or its negative: +x of the optical frame first, then +y, then +z."""
    for component in axis:
        if abs(component) > 1e-9:
            return axis if component > 0 else -axis
    return axis


def _candidates(rotation: np.ndarray, centre: np.ndarray):
    """Every naming of the axes with z towards the camera: (3x3 rotation, axis order)."""
    for k in range(3):
        z = rotation[:, k] if rotation[:, k] @ centre < 0 else -rotation[:, k]
        for i in range(3):
            if i == k:
                continue
            for sign in (1.0, -1.0):
                x = sign * rotation[:, i]
                yield np.stack([x, cross(z, x), z], axis=1), (i, 3 - i - k, k)


def label_axes(
    rotation: np.ndarray,
    size: np.ndarray,
    centre: np.ndarray,
    up: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 rotation, (3,) size) of a box with its axes named (see the module docstring).

    Arguments:
        rotation: 3x3, columns the box's axes in any order, column 2 the dominant face's
            normal. size: (3,) extents along those columns, metres. centre: (3,) metres.
        up: (3,) unit support-plane normal, or None. reference: 3x3 rotation of the
            target's previous box, or None.
    """
    if reference is not None:
        candidates = list(_candidates(rotation, centre))
        if up is not None:
            k = int(np.argmax(np.abs(up @ rotation)))
            candidates = [c for c in candidates if c[1][2] == k]
        best = max(candidates, key=lambda c: np.trace(reference.T @ c[0]))
        return best[0], size[list(best[1])]
    k = 2 if up is None else int(np.argmax(np.abs(up @ rotation)))
    others = [i for i in range(3) if i != k]
    if size[others[1]] > size[others[0]]:
        others.reverse()
    z = rotation[:, k] if rotation[:, k] @ centre < 0 else -rotation[:, k]
    x = signed_axis(rotation[:, others[0]])
    return np.stack([x, cross(z, x), z], axis=1), size[[others[0], others[1], k]]


def _face_at(values: np.ndarray, guess: float, sigma: float) -> float | None:
    """Median of the dense layer of ``values`` near ``guess`` (a face), or None."""
    window = _FACE_SIGMAS * sigma
    position = guess
    for _ in range(2):
        near = values[np.abs(values - position) <= window]
        if near.size < FACE_FRACTION * values.size:
            return None
        position = float(np.median(near))
    return position


def denoised_range(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of NxD ``values``: the robust range (low, high) corrected for noise.

    Arguments:
        sigma: (D,) standard deviation in metres of the depth noise along each column's
            axis.  Where it is 0 the range is returned unchanged.
    """
    low, high = low.copy(), high.copy()
    for c in range(values.shape[1]):
        s = float(sigma[c])
        if not s > 0:
            continue
        column = values[:, c]
        pull = min(_EDGE_PULL_SIGMAS * s, 0.25 * (high[c] - low[c]))
        face = _face_at(column, high[c] - _FACE_SIGMAS * s, s)
        high[c] = face if face is not None else high[c] - pull
        face = _face_at(column, low[c] + _FACE_SIGMAS * s, s)
        low[c] = face if face is not None else low[c] + pull
    return low, high


def axis_noise(rotation: np.ndarray, centre: np.ndarray, sigma_depth_m: float) -> np.ndarray:
    """(3,) noise sigma (m) along each box axis for noise ``sigma_depth_m`` along the rays."""
    ray = centre / max(float(np.linalg.norm(centre)), 1e-9)
    return sigma_depth_m * np.abs(ray @ rotation)


def depth_noise_from_plane(residuals: np.ndarray, normal: np.ndarray, centre: np.ndarray) -> float:
    """Depth noise sigma (m along the rays) from a plane's inlier residuals (metres)."""
    if residuals.size < 10:
        return 0.0
    spread = 1.4826 * float(np.median(np.abs(residuals)))
    ray = centre / max(float(np.linalg.norm(centre)), 1e-9)
    return spread / max(abs(float(normal @ ray)), 0.3)


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two directions (sign ignored)."""
    cosine = abs(float(a @ b)) / (float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)
    return math.degrees(math.acos(min(cosine, 1.0)))

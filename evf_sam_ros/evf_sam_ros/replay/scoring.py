"""Scores over frames: IoU against ground truth, latency percentiles, 3D target statistics,
box size and pose stability.

Pure numpy; every function takes plain arrays/lists so it can be tested on known answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evf_sam_ros.pipeline.stats import percentile
from evf_sam_ros.target3d.rotations import quaternion_to_rotation


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two HxW masks (bool, or non-zero = target).

    Returns:
        |P & T| / |P | T| in [0, 1]; 1.0 when both masks are empty (they agree).

    Raises:
        ValueError: the masks differ in shape or are not 2-D.
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape or predicted.ndim != 2:
        raise ValueError(
            f'masks must be HxW of the same shape, got {predicted.shape} and {truth.shape}'
        )
    p, t = predicted != 0, truth != 0
    union = int(np.count_nonzero(p | t))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & t)) / union


@dataclass(frozen=True)
class IouSummary:
    """IoU per scored frame and over all of them.

    per_frame: (frame index, IoU) for each frame with a prediction and a ground truth.
    mean: mean IoU (NaN when no frame was scored). hit_rate: fraction of scored frames
    with IoU >= ``threshold`` (NaN when none).
    """

    per_frame: tuple[tuple[int, float], ...]
    mean: float
    hit_rate: float
    threshold: float

    def as_dict(self, per_frame: bool = True) -> dict:
        """JSON-ready: frames_scored, mean, hit_rate_at_<threshold>, and per_frame unless
        ``per_frame`` is False (a replay's report keeps them in frames.jsonl).
        """
        out = {
            'frames_scored': len(self.per_frame),
            'mean': _json_float(self.mean),
            f'hit_rate_at_{self.threshold:g}': _json_float(self.hit_rate),
        }
        if per_frame:
            out['per_frame'] = [{'frame': i, 'iou': round(v, 6)} for i, v in self.per_frame]
        return out


def score_frames(
    pairs: Sequence[tuple[int, np.ndarray | None, np.ndarray | None]], threshold: float = 0.5
) -> IouSummary:
    """IoU of (frame index, predicted HxW mask, ground-truth HxW mask) triples.

    Frames where either mask is None (not processed, no ground truth) are left out.
    """
    return iou_summary(
        [
            (index, mask_iou(pred, truth))
            for index, pred, truth in pairs
            if pred is not None and truth is not None
        ],
        threshold,
    )


def iou_summary(per_frame: Sequence[tuple[int, float]], threshold: float = 0.5) -> IouSummary:
    """The IouSummary of (frame index, IoU) pairs already computed."""
    per_frame = tuple((int(i), float(v)) for i, v in per_frame)
    values = np.array([v for _, v in per_frame], dtype=np.float64)
    if values.size == 0:
        return IouSummary(per_frame, math.nan, math.nan, threshold)
    return IouSummary(
        per_frame, float(values.mean()), float(np.mean(values >= threshold)), threshold
    )


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """count, p50, p95 (``stats.percentile``), max and mean of latencies in milliseconds
    (None when empty).
    """
    values = np.asarray([v for v in latencies_ms if math.isfinite(v)], dtype=np.float64)
    if values.size == 0:
        return {'count': 0, 'p50': None, 'p95': None, 'max': None, 'mean': None}
    return {
        'count': int(values.size),
        'p50': percentile(values, 50),
        'p95': percentile(values, 95),
        'max': float(values.max()),
        'mean': float(values.mean()),
    }


def target_stats(
    points: Sequence[tuple[float, float, float] | None], depth_medians: Sequence[float]
) -> dict:
    """Statistics of 3D targets (x, y, z metres, optical frame; None = no valid point).

    Returns:
        count_valid, count_total, mean_m and std_m of (x, y, z) over valid points (None when
        there are none), and median_depth_m: the median of the finite per-frame depth medians.
    """
    valid = np.array([p for p in points if p is not None], dtype=np.float64).reshape(-1, 3)
    depths = np.array([d for d in depth_medians if d is not None and math.isfinite(d)])
    out: dict = {
        'count_valid': int(len(valid)),
        'count_total': len(points),
        'mean_m': None,
        'std_m': None,
        'median_depth_m': float(np.median(depths)) if depths.size else None,
    }
    if len(valid):
        out['mean_m'] = [float(v) for v in valid.mean(axis=0)]
        out['std_m'] = [float(v) for v in valid.std(axis=0)]
    return out


#: A half turn about the box's z axis: the same box (see box3d).
_HALF_TURN_Z = np.diag([-1.0, -1.0, 1.0])


def _rotation_angles_deg(reference: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Angle in degrees of each of Kx3x3 ``rotations`` from ``reference``."""
    cosine = (np.einsum('ij,kij->k', reference, rotations) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _nearest_equivalent(reference: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Each rotation, or it turned half about its z, whichever is nearer ``reference``."""
    turned = rotations @ _HALF_TURN_Z
    nearer = _rotation_angles_deg(reference, turned) < _rotation_angles_deg(reference, rotations)
    return np.where(nearer[:, None, None], turned, rotations)


def _mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of Kx3x3 rotations: their average projected onto SO(3)."""
    u, _, vt = np.linalg.svd(rotations.mean(axis=0))
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def box_stability(
    boxes: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]] | None],
) -> dict:
    """Size and pose stability of one target's box over frames.

    Arguments:
        boxes: per frame (position (x, y, z) metres, orientation quaternion (x, y, z, w),
            size (x, y, z) metres) of the box in the camera's optical frame, or None when
            the frame had no valid box.  Segmentation.box_pose / box_size give these.

    Returns:
        count_valid, count_total; size_mean_m and size_std_m (per axis); centre_std_m (per
        axis) and centre_rms_m (RMS distance of the centre from its mean); orientation_std_deg
        (RMS angle from the mean rotation) and orientation_max_deg.  A box turned half about
        its z axis is the same box, so each frame's orientation is compared in the form
        nearer the mean.  Values are None without valid boxes.
    """
    valid = [b for b in boxes if b is not None]
    out: dict = {
        'count_valid': len(valid),
        'count_total': len(boxes),
        'size_mean_m': None,
        'size_std_m': None,
        'centre_std_m': None,
        'centre_rms_m': None,
        'orientation_std_deg': None,
        'orientation_max_deg': None,
    }
    if not valid:
        return out
    centres = np.array([b[0] for b in valid], dtype=np.float64).reshape(-1, 3)
    sizes = np.array([b[2] for b in valid], dtype=np.float64).reshape(-1, 3)
    rotations = np.stack([quaternion_to_rotation(b[1]) for b in valid])
    mean = _mean_rotation(_nearest_equivalent(rotations[0], rotations))
    for _ in range(2):  # re-pick each frame's form against the mean, then re-average
        mean = _mean_rotation(_nearest_equivalent(mean, rotations))
    angles = _rotation_angles_deg(mean, _nearest_equivalent(mean, rotations))
    spread = np.linalg.norm(centres - centres.mean(axis=0), axis=1)
    out.update(
        size_mean_m=[float(v) for v in sizes.mean(axis=0)],
        size_std_m=[float(v) for v in sizes.std(axis=0)],
        centre_std_m=[float(v) for v in centres.std(axis=0)],
        centre_rms_m=float(np.sqrt(np.mean(spread**2))),
        orientation_std_deg=float(np.sqrt(np.mean(angles**2))),
        orientation_max_deg=float(angles.max()),
    )
    return out


def _json_float(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def centroid_motion(centroids: Sequence[tuple[float, float] | None]) -> dict:
    """Frame-to-frame motion of a target's mask centroid (u, v pixels; None = not found).

    Returns centroid_step_px: mean distance between consecutive frames' centroids (motion
    plus jitter); centroid_jitter_px: mean length of the second difference c[t+1] - 2 c[t] +
    c[t-1] over three consecutive found frames (0 for steady motion, so it measures the
    jumps and shakes a grasp would suffer). None when too few consecutive frames.
    """
    steps, jitters = [], []
    for i in range(1, len(centroids)):
        a, b = centroids[i - 1], centroids[i]
        if a is not None and b is not None:
            steps.append(math.dist(a, b))
        if i >= 2 and centroids[i - 2] is not None and a is not None and b is not None:
            c = centroids[i - 2]
            jitters.append(math.hypot(b[0] - 2 * a[0] + c[0], b[1] - 2 * a[1] + c[1]))
    return {
        'centroid_step_px': float(np.mean(steps)) if steps else None,
        'centroid_jitter_px': float(np.mean(jitters)) if jitters else None,
    }

"""One target's per-frame numbers over a replay, kept compact for its summary in report.json.

A replay may be hours long, so the report keeps no per-frame objects (masks, dicts): each
result's record is streamed to frames.jsonl, and a target keeps only the numbers its summary
needs (medians, percentiles and the box's mean rotation need them all), 44 float64 per
result (22 of them the pick outputs: candidates, best grasp, place surface, instances): about
350 bytes, 38 MB for an hour at 30 Hz.
"""

from __future__ import annotations

import array
import math
from typing import Any

import numpy as np

from evf_sam_ros.replay.pick_report import pick_summary
from evf_sam_ros.replay.scoring import box_stability, centroid_motion, target_stats

#: Columns, one float64 per result (NaN: none).
_COLUMNS = (
    'found',
    'score',
    'iou',
    'u',
    'v',
    'x',
    'y',
    'z',
    'depth',
    'lost_count',
    'reground_count',
    *(f'box{i}' for i in range(10)),  # centre xyz, orientation xyzw, size xyz
    'point_valid',
    'grasps',
    'instances',
    *(f'grasp{i}' for i in range(10)),  # the best candidate: centre, orientation, size
    *(f'place{i}' for i in range(10)),  # the place surface: centre, orientation, size
)


class TargetColumns:
    """The per-frame numbers of one target (or one-shot prompt) over a replay."""

    def __init__(self, target_id: int, prompt: str):
        self.target_id, self.prompt = target_id, prompt
        self.columns = {name: array.array('d') for name in _COLUMNS}

    def add(self, entry: dict[str, Any]) -> None:
        """Append one result (a frames.jsonl result record: found, score, centroid, point_m,
        depth_median_m, box, lost_count, reground_count, the pick fields of
        pick_report.pick_entry, and iou when scored).
        """
        centroid = entry['centroid'] or (math.nan, math.nan)
        point = entry['point_m'] or (math.nan,) * 3
        box = _flat(entry['box'])
        values = [
            float(entry['found']),
            entry['score'],
            entry.get('iou', math.nan),
            *centroid,
            *point,
            math.nan if entry['depth_median_m'] is None else entry['depth_median_m'],
            entry['lost_count'],
            entry['reground_count'],
            *box,
            float(entry['point_m'] is not None),
            entry.get('grasps', 0),
            entry.get('instances', 0),
            *_flat(entry.get('best_grasp')),
            *_flat(entry.get('place')),
        ]
        for name, value in zip(_COLUMNS, values, strict=True):
            self.columns[name].append(float(value))

    def _column(self, name: str) -> np.ndarray:
        return np.frombuffer(self.columns[name], dtype=np.float64)

    def summary(self, with_depth: bool) -> dict[str, Any]:
        """The target's entry of report.json's ``targets`` (3D statistics ``with_depth``)."""
        found = self._column('found') > 0
        ious = self._column('iou')
        ious = ious[np.isfinite(ious)]
        results = len(found)
        summary: dict[str, Any] = {
            'target_id': self.target_id,
            'prompt': self.prompt,
            'results': results,
            'found': int(found.sum()),
            'found_rate': float(found.mean()) if results else None,
            'mean_score': float(self._column('score').mean()) if results else None,
            'iou_mean': float(ious.mean()) if ious.size else None,
            'lost': int(self._column('lost_count').max(initial=0)),
            'regrounded': int(self._column('reground_count').max(initial=0)),
            **centroid_motion(self._centroids(found)),
        }
        if with_depth:
            summary['target'] = target_stats(self._points(), list(self._column('depth')))
            summary['box'] = box_stability(self._boxes())
            summary['pick'] = self._pick(found)
        return summary

    def _pick(self, found: np.ndarray) -> dict[str, Any]:
        """pick_report.pick_summary over the found frames."""
        counts = self._column('grasps')[found].astype(int).tolist()
        instances = self._column('instances')[found].astype(int).tolist()
        best = [b for b, f in zip(self._boxes('grasp'), found) if f]
        places = [b for b, f in zip(self._boxes('place'), found) if f]
        return pick_summary(counts, best, places, instances)

    def _centroids(self, found: np.ndarray) -> list[tuple[float, float] | None]:
        u, v = self._column('u'), self._column('v')
        return [
            (float(a), float(b)) if f and math.isfinite(a) else None
            for a, b, f in zip(u, v, found)
        ]

    def _points(self) -> list[tuple[float, float, float] | None]:
        xyz = np.stack([self._column(c) for c in 'xyz'], axis=1)
        valid = self._column('point_valid') > 0
        return [tuple(map(float, p)) if ok else None for p, ok in zip(xyz, valid)]

    def _boxes(self, prefix: str = 'box') -> list[Any]:
        """Per result the (centre, quaternion, size) of columns ``prefix``0-9, or None."""
        boxes = np.stack([self._column(f'{prefix}{i}') for i in range(10)], axis=1)
        return [
            (b[:3].tolist(), b[3:7].tolist(), b[7:].tolist()) if math.isfinite(b[0]) else None
            for b in boxes
        ]


def _flat(pose_size: Any) -> list[float]:
    """(centre, quaternion, size) as 10 floats; NaN x 10 for None."""
    return [v for part in pose_size for v in part] if pose_size else [math.nan] * 10

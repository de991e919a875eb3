"""The replay report: counts, warnings, found rate, latency, IoU and 3D statistics.

IoU compares the ground truth with the mask of the prompt the ground truth shows; a result
that is not "found" (score under the threshold) counts as an empty mask.

``ReplayReport`` collects per-frame outcomes; ``to_dict`` gives the JSON document
(report.json) and ``format_table`` the text table printed at the end of a run.
"""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from evf_sam_ros.replay.frames import BagFrame
from evf_sam_ros.replay.pick_report import pick_entry, pick_rows, pick_summary
from evf_sam_ros.replay.results import FrameOutcome
from evf_sam_ros.replay.scoring import (
    box_stability,
    centroid_motion,
    latency_stats,
    mask_iou,
    score_frames,
    target_stats,
)

_MAX_EXAMPLES = 3  # details kept per warning kind


class ReplayReport:
    """Accumulates what happened to every frame.

    meta: anything to show at the top of report.json (bag, mode, checkpoint, topics ...).
    latency_kind: "model" (offline: predictor time per frame) or "stamp_to_output" (live:
    from publishing a frame to receiving its segmentation).
    """

    def __init__(self, meta: dict[str, Any], latency_kind: str):
        self.meta, self.latency_kind = meta, latency_kind
        self.frames: list[dict[str, Any]] = []
        self.counts = collections.Counter()
        self.warning_counts: collections.Counter = collections.Counter()
        self.warning_examples: dict[str, list[str]] = collections.defaultdict(list)
        self._latencies: list[float] = []
        self._iou_pairs: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._per_target: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.depth_seen = False

    def warn(self, kind: str, detail: str, count: int = 1) -> None:
        """Count ``count`` warnings of ``kind`` (keeps the first few details as examples)."""
        self.warning_counts[kind] += count
        if len(self.warning_examples[kind]) < _MAX_EXAMPLES:
            self.warning_examples[kind].append(detail)

    def add(
        self,
        frame: BagFrame,
        status: str,
        outcome: FrameOutcome | None = None,
        scored_prompt: str | None = None,
    ) -> None:
        """Record a frame: status "processed" (with ``outcome``), "skipped" or "dropped".

        scored_prompt: the prompt whose mask is compared with ``frame.gt_mask``.
        """
        for kind, detail in frame.problems:
            self.warn(kind, f'frame {frame.index}: {detail}')
        self.counts['in'] += 1
        self.counts[status] += 1
        self.depth_seen |= frame.depth is not None
        record: dict[str, Any] = {
            'frame': frame.index,
            'stamp_ns': frame.stamp_ns,
            'status': status,
            'warnings': [k for k, _ in frame.problems],
        }
        if outcome is not None:
            record['latency_ms'] = round(outcome.latency_ms, 3)
            self._latencies.append(outcome.latency_ms)
            record['results'] = [
                self._prompt_record(frame, p, scored_prompt) for p in outcome.prompts
            ]
        self.frames.append(record)

    def _prompt_record(self, frame: BagFrame, p: Any, scored_prompt: str | None) -> dict:
        entry: dict[str, Any] = {
            'prompt': p.prompt,
            'found': p.found,
            'score': round(p.score, 6),
            'area': p.area,
            'centroid': list(p.centroid) if p.centroid else None,
            'point_m': list(p.point) if p.point else None,
            'depth_median_m': _finite(p.depth_median_m),
            'inference_ms': round(p.inference_ms, 3),
            'target_id': p.target_id,
            'box': [list(part) for part in p.box] if p.box else None,
            'grounded': p.grounded,
            'lost': p.lost,
            'lost_count': p.lost_count,
            'reground_count': p.reground_count,
            **pick_entry(p),
        }
        if frame.gt_mask is not None and p.prompt == scored_prompt:
            # what the robot would act on: a target that was not found is an empty mask
            predicted = p.mask if p.found else np.zeros_like(frame.gt_mask)
            self._iou_pairs.append((frame.index, predicted, frame.gt_mask))
            entry['iou'] = mask_iou(predicted, frame.gt_mask)
        self._per_target[target_key(p.target_id, p.prompt)].append(entry)
        return entry

    def _target_summary(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        found = sum(1 for e in entries if e['found'])
        ious = [e['iou'] for e in entries if 'iou' in e]
        summary: dict[str, Any] = {
            'target_id': entries[0]['target_id'],
            'prompt': entries[0]['prompt'],
            'results': len(entries),
            'found': found,
            'found_rate': found / len(entries) if entries else None,
            'mean_score': float(np.mean([e['score'] for e in entries])) if entries else None,
            'iou_mean': float(np.mean(ious)) if ious else None,
            'lost': max(e['lost_count'] for e in entries),
            'regrounded': max(e['reground_count'] for e in entries),
            **centroid_motion(
                [tuple(e['centroid']) if e['centroid'] and e['found'] else None for e in entries]
            ),
        }
        if self.depth_seen:
            summary['target'] = target_stats(
                [tuple(e['point_m']) if e['point_m'] else None for e in entries],
                [e['depth_median_m'] for e in entries if e['depth_median_m'] is not None],
            )
            summary['box'] = box_stability(
                [tuple(e['box']) if e['box'] else None for e in entries]
            )
            summary['pick'] = pick_summary(entries)
        return summary

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report (NaN written as null)."""
        iou = score_frames(self._iou_pairs)
        return {
            **self.meta,
            'frames': {
                k: self.counts.get(k, 0) for k in ('in', 'processed', 'skipped', 'dropped')
            },
            'warnings': dict(sorted(self.warning_counts.items())),
            'warning_examples': {k: v for k, v in sorted(self.warning_examples.items())},
            'latency_ms': {'kind': self.latency_kind, **latency_stats(self._latencies)},
            'targets': {k: self._target_summary(e) for k, e in self._per_target.items()},
            'iou': iou.as_dict() if iou.per_frame else None,
            'per_frame': self.frames,
        }

    def save(self, path: str | Path) -> dict[str, Any]:
        """Write report.json; returns the dict written."""
        data = self.to_dict()
        Path(path).write_text(json.dumps(_clean(data), indent=2) + '\n')
        return data


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _clean(value: Any) -> Any:
    """Replace NaN/inf by None so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt(value: float | None, digits: int = 1, unit: str = '') -> str:
    return '-' if value is None or not math.isfinite(value) else f'{value:.{digits}f}{unit}'


def _of_bag(read: int, in_bag: int | None) -> str:
    return '' if in_bag is None or in_bag == read else f' (of {in_bag} expected)'


def _xyz(values: list[float] | None) -> str:
    return '-' if not values else '(' + ', '.join(f'{v:+.3f}' for v in values) + ')'


def target_key(target_id: int, prompt: str) -> str:
    """report.json's key of a target: its id, or the prompt of a one-shot result (id -1)."""
    return str(target_id) if target_id >= 0 else prompt


def _target_rows(key: str, s: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (
            f'target {key}: "{s["prompt"]}"' if s['target_id'] >= 0 else f'prompt "{key}"',
            f'found {s["found"]}/{s["results"]} '
            f'({_fmt(100 * s["found_rate"] if s["found_rate"] is not None else None)}%), '
            f'mean score {_fmt(s["mean_score"], 3)}, lost {s["lost"]}, '
            f're-grounded {s["regrounded"]}, centroid jitter '
            f'{_fmt(s["centroid_jitter_px"], 2, " px")}',
        )
    ]
    target = s.get('target')
    if target is not None:
        text = f'{target["count_valid"]} valid'
        if target['count_valid']:
            text += (
                f', mean xyz {_xyz(target["mean_m"])} m, std {_xyz(target["std_m"])} m, '
                f'median depth {_fmt(target["median_depth_m"], 3, " m")}'
            )
        rows.append(('  3D target', text))
    box = s.get('box')
    if box is not None and box['count_valid']:
        rows.append(
            (
                '  3D box',
                f'{box["count_valid"]} valid, size {_xyz(box["size_mean_m"])} m, '
                f'centre std {_fmt(box["centre_rms_m"], 4, " m")}, '
                f'orientation std {_fmt(box["orientation_std_deg"], 1, " deg")}',
            )
        )
    if s.get('pick') is not None:
        rows += pick_rows(s['pick'])
    return rows


def format_table(data: dict[str, Any]) -> str:
    """A plain-text table of a report dict (as returned by ``to_dict``)."""
    f, lat = data['frames'], data['latency_ms']
    rows = [
        ('bag', str(data.get('bag', '?'))),
        ('mode', str(data.get('mode', '?'))),
        (
            'frames',
            f'in {f["in"]}{_of_bag(f["in"], data.get("frames_in_bag"))}, '
            f'processed {f["processed"]}, skipped {f["skipped"]}, '
            f'dropped {f["dropped"]}',
        ),
        (
            f'latency ({lat["kind"]})',
            f'p50 {_fmt(lat["p50"], 1, " ms")}, '
            f'p95 {_fmt(lat["p95"], 1, " ms")}, '
            f'max {_fmt(lat["max"], 1, " ms")}',
        ),
    ]
    for key, summary in data['targets'].items():
        rows += _target_rows(key, summary)
    iou = data.get('iou')
    if iou:
        hit = next((k for k in iou if k.startswith('hit_rate_at_')), None)
        rows.append(
            (
                'IoU vs ground truth',
                f'mean {_fmt(iou["mean"], 3)} over '
                f'{iou["frames_scored"]} frames, {hit.replace("hit_rate_at_", "IoU>=")}: '
                f'{_fmt(100 * iou[hit] if iou[hit] is not None else None)}%',
            )
        )
    warnings = data['warnings']
    rows.append(('warnings', ', '.join(f'{k} {v}' for k, v in warnings.items()) or 'none'))
    width = max(len(label) for label, _ in rows)
    return '\n'.join(f'{label:<{width}}  {value}' for label, value in rows)

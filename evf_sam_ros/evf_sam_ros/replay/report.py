"""The replay report: counts, warnings, found rate, latency, IoU and 3D statistics.

IoU compares the ground truth with the mask of the prompt the ground truth shows; a result
that is not "found" (score under the threshold) counts as an empty mask.

``ReplayReport`` takes per-frame outcomes; each frame's record goes straight to
``frames.jsonl`` (one JSON object a line) and only counts and a few numbers per result stay
in memory (``target_columns``), so a replay's memory does not grow with its length.
``to_dict`` gives the JSON document (report.json), ``format_table`` the text table printed at
the end of a run and ``failure`` the reason a run failed (the CLI's exit code 1).
"""

from __future__ import annotations

import array
import collections
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from evf_sam_ros.replay.frames import BagFrame
from evf_sam_ros.replay.pick_report import pick_entry, pick_rows
from evf_sam_ros.replay.results import FrameOutcome
from evf_sam_ros.replay.scoring import iou_summary, latency_stats, mask_iou
from evf_sam_ros.replay.target_columns import TargetColumns

_MAX_EXAMPLES = 3  # details kept per warning kind
FRAMES_FILE = 'frames.jsonl'


class ReplayReport:
    """Accumulates what happened to every frame.

    meta: anything to show at the top of report.json (bag, mode, checkpoint, topics ...).
    latency_kind: "model" (offline: predictor time per frame) or "stamp_to_output" (live:
    from publishing a frame to receiving its segmentation). frames_path: where each frame's
    record is written as a JSON line (opened now; None: records are not kept).
    """

    def __init__(
        self, meta: dict[str, Any], latency_kind: str, frames_path: str | Path | None = None
    ):
        self.meta, self.latency_kind = meta, latency_kind
        self.frames_path = Path(frames_path) if frames_path is not None else None
        self._frames_file = self.frames_path.open('w') if self.frames_path else None
        self.counts = collections.Counter()
        self.warning_counts: collections.Counter = collections.Counter()
        self.warning_examples: dict[str, list[str]] = collections.defaultdict(list)
        self._latencies = array.array('d')
        self._ious: tuple[array.array, array.array] = (array.array('q'), array.array('d'))
        self._targets: dict[str, TargetColumns] = {}
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
        if self._frames_file is not None:
            self._frames_file.write(json.dumps(_clean(record)) + '\n')

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
            entry['iou'] = mask_iou(predicted, frame.gt_mask)
            self._ious[0].append(frame.index)
            self._ious[1].append(entry['iou'])
        key = target_key(p.target_id, p.prompt)
        if key not in self._targets:
            self._targets[key] = TargetColumns(p.target_id, p.prompt)
        self._targets[key].add(entry)
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report (NaN written as null; per-frame records are in frames.jsonl)."""
        iou = iou_summary(list(zip(*self._ious)))
        return {
            **self.meta,
            'frames': {
                k: self.counts.get(k, 0) for k in ('in', 'processed', 'skipped', 'dropped')
            },
            'warnings': dict(sorted(self.warning_counts.items())),
            'warning_examples': {k: v for k, v in sorted(self.warning_examples.items())},
            'latency_ms': {'kind': self.latency_kind, **latency_stats(self._latencies)},
            'targets': {k: t.summary(self.depth_seen) for k, t in self._targets.items()},
            'iou': iou.as_dict(per_frame=False) if iou.per_frame else None,
            'per_frame_file': self.frames_path.name if self.frames_path else None,
        }

    def save(self, path: str | Path) -> dict[str, Any]:
        """Close frames.jsonl and write report.json; returns the dict written."""
        if self._frames_file is not None:
            self._frames_file.close()
            self._frames_file = None
        data = self.to_dict()
        Path(path).write_text(json.dumps(_clean(data), indent=2) + '\n')
        return data


def read_frames(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The per-frame records of a replay's output directory (frames.jsonl), in frame order."""
    with (Path(out_dir) / FRAMES_FILE).open() as stream:
        for line in stream:
            yield json.loads(line)


def failure(data: dict[str, Any], strict: bool = False) -> str | None:
    """Why a finished replay failed (None: it did not): no frame processed, with the reason
    (no prompt, every frame bad, the node answered none); with ``strict``, any counted problem.
    """
    frames, warnings = data['frames'], data['warnings']
    if frames['processed'] == 0:
        if not frames['in']:
            return 'no frame was read from the image topic'
        if warnings.get('no_prompt'):
            return (
                'no prompt was set, so no frame was processed: pass --prompt TEXT or record '
                'a command on the command topic (--command-topic)'
            )
        kinds = ', '.join(f'{k} {n}' for k, n in warnings.items()) or 'no problem counted'
        return (
            f'none of the {frames["in"]} frames was processed ({frames["skipped"]} skipped, '
            f'{frames["dropped"]} dropped; problems: {kinds}); see report.json'
        )
    if strict and warnings:
        kinds = ', '.join(f'{k} {n}' for k, n in warnings.items())
        return f'--strict: problems were counted ({kinds}); see report.json'
    return None


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

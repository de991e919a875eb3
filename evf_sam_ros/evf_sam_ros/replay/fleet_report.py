"""The fleet report: one summary over many bags' replay reports (fleet_report.json + table).

Each bag's own report stays in its subdirectory (``OUT/<name>/report.json``); the fleet report
gives per bag and in total: frames, found rate, IoU against ground truth, latency and problems
by kind, and lists the bags that failed with their reason.

``results_sha256`` fingerprints what a bag's replay found (every frame's record in its
frames.jsonl: status, problems and per-target results, timings left out), so runs of the same
bag alone, in a local worker or on Ray can be compared exactly.
"""

from __future__ import annotations

import array
import collections
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evf_sam_ros.replay.report import failure, read_frames
from evf_sam_ros.replay.scoring import latency_stats

#: Per-frame fields that are timings (differ from run to run) and so are not fingerprinted.
TIMING_FIELDS = frozenset({'latency_ms', 'inference_ms'})


@dataclass
class BagOutcome:
    """What happened to one bag of a fleet run.

    status: "ok" or "failed" (``reason`` says why: the bag could not be replayed, so
    ``report`` is None, or its replay failed as a one-bag run fails: no frame processed, or
    with --strict a counted problem). resumed: its report existed and was kept (--resume).
    wall_s: seconds the bag took in its worker (0 when resumed). digest: ``results_digest``.
    """

    name: str
    bag: str
    output: str
    status: str
    reason: str | None = None
    wall_s: float = 0.0
    worker: str = ''
    report: dict[str, Any] | None = field(default=None, repr=False)
    resumed: bool = False
    digest: str | None = None


def _strip_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def results_digest(out_dir: str | Path) -> str:
    """SHA-256 (hex) of a replay's per-frame records (OUT/frames.jsonl) without timings.

    Equal digests: the same frames were processed, skipped or dropped with the same problems,
    and every target got the same found, score, area, centroid, 3D point, box and IoU.
    """
    digest = hashlib.sha256()
    for record in read_frames(out_dir):
        text = json.dumps(_strip_timings(record), sort_keys=True, separators=(',', ':'))
        digest.update(text.encode() + b'\n')
    return digest.hexdigest()


def finished_outcome(
    name: str, bag: str, output: str, strict: bool = False, **extra: Any
) -> BagOutcome:
    """The outcome of a bag whose replay wrote OUT/report.json: "failed" when the one-bag
    run would fail (``report.failure``: no frame processed; with ``strict`` any problem).

    Raises:
        OSError, ValueError: no readable report.json (or frames.jsonl) in ``output``.
    """
    report = json.loads((Path(output) / 'report.json').read_text())
    if not isinstance(report, dict) or 'frames' not in report:
        raise ValueError(f'{output}/report.json is not a replay report')
    reason = failure(report, strict)
    status = 'failed' if reason else 'ok'
    digest = results_digest(output)
    return BagOutcome(name, bag, output, status, reason, report=report, digest=digest, **extra)


def _found(report: dict[str, Any]) -> tuple[int, int]:
    targets = report.get('targets', {}).values()
    return sum(t['found'] for t in targets), sum(t['results'] for t in targets)


def bag_summary(outcome: BagOutcome) -> dict[str, Any]:
    """The fleet report's entry of one bag (its own report summarised)."""
    entry: dict[str, Any] = {
        'name': outcome.name,
        'bag': outcome.bag,
        'output': outcome.output,
        'status': outcome.status,
        'reason': outcome.reason,
        'resumed': outcome.resumed,
        'wall_s': round(outcome.wall_s, 3),
        'worker': outcome.worker,
    }
    if outcome.report is None:
        return entry
    report = outcome.report
    found, results = _found(report)
    iou = report.get('iou') or {}
    entry.update(
        frames=report['frames'],
        found=found,
        results=results,
        found_rate=found / results if results else None,
        iou_mean=iou.get('mean'),
        iou_frames=iou.get('frames_scored', 0),
        latency_ms={k: report['latency_ms'].get(k) for k in ('kind', 'p50', 'p95', 'max')},
        problems=dict(report.get('warnings', {})),
        results_sha256=outcome.digest,
    )
    return entry


def _latencies(outcomes: list[BagOutcome]) -> array.array:
    """Every frame's latency (ms) of the bags with a report, read from their frames.jsonl."""
    values = array.array('d')
    for outcome in outcomes:
        if outcome.report is not None:
            values.extend(
                f['latency_ms'] for f in read_frames(outcome.output) if 'latency_ms' in f
            )
    return values


def fleet_totals(outcomes: list[BagOutcome], wall_s: float) -> dict[str, Any]:
    """Totals over every bag with a report: frame counts, found rate, frame-weighted IoU,
    latency percentiles over all frames, problems by kind, and throughput (frames/s of wall
    time of this run; resumed bags are not counted in it).
    """
    reports = [o.report for o in outcomes if o.report is not None]
    frames: collections.Counter = collections.Counter()
    problems: collections.Counter = collections.Counter()
    found = results = iou_frames = 0
    iou_sum = 0.0
    for report in reports:
        frames.update(report['frames'])
        problems.update(report.get('warnings', {}))
        f, r = _found(report)
        found, results = found + f, results + r
        iou = report.get('iou') or {}
        if iou.get('frames_scored') and iou.get('mean') is not None:
            iou_frames += iou['frames_scored']
            iou_sum += iou['mean'] * iou['frames_scored']
    latency = latency_stats(_latencies(outcomes))
    ran = sum(o.report['frames']['in'] for o in outcomes if o.report and not o.resumed)
    return {
        'bags': len(outcomes),
        'ok': sum(o.status == 'ok' for o in outcomes),
        'failed': sum(o.status == 'failed' for o in outcomes),
        'resumed': sum(o.resumed for o in outcomes),
        'frames': dict(frames),
        'found': found,
        'results': results,
        'found_rate': found / results if results else None,
        'iou_mean': iou_sum / iou_frames if iou_frames else None,
        'iou_frames': iou_frames,
        'latency_ms': {k: latency[k] for k in ('p50', 'p95', 'max')},
        'problems': dict(sorted(problems.items())),
        'wall_s': round(wall_s, 3),
        'frames_per_s': ran / wall_s if wall_s > 0 else None,
    }


def fleet_report(outcomes: list[BagOutcome], meta: dict[str, Any], wall_s: float) -> dict:
    """The fleet report dict: ``meta`` (engine, workers ...), totals, bags, failed."""
    return {
        **meta,
        'total': fleet_totals(outcomes, wall_s),
        'bags': [bag_summary(o) for o in outcomes],
        'failed': [
            {'name': o.name, 'bag': o.bag, 'reason': o.reason}
            for o in outcomes
            if o.status == 'failed'
        ],
    }


def _fmt(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return '-' if value is None or not math.isfinite(value) else f'{value * scale:.{digits}f}'


def _problems(problems: dict[str, int]) -> str:
    return ', '.join(f'{k} {v}' for k, v in sorted(problems.items())) or '-'


def _row(name: str, status: str, s: dict[str, Any]) -> list[str]:
    frames = s.get('frames') or {}
    latency = s.get('latency_ms') or {}
    return [
        name,
        status,
        str(frames.get('in', '-')),
        str(frames.get('processed', '-')),
        _fmt(s.get('found_rate'), 1, 100.0),
        _fmt(s.get('iou_mean'), 3),
        _fmt(latency.get('p50')),
        _fmt(latency.get('p95')),
        s.get('reason') or _problems(s.get('problems') or {}),
    ]


def format_fleet_table(data: dict[str, Any]) -> str:
    """A plain-text table of a fleet report dict: one row per bag, then the total."""
    header = [
        'bag',
        'status',
        'frames',
        'processed',
        'found %',
        'IoU',
        'p50 ms',
        'p95 ms',
        'problems / reason',
    ]
    rows = [
        _row(b['name'], b['status'] + (' (kept)' if b['resumed'] else ''), b) for b in data['bags']
    ]
    total = data['total']
    status = f'{total["ok"]}/{total["bags"]} ok'
    rows.append(_row('TOTAL', status, total))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append('  '.join(c.ljust(w) for c, w in zip(r, widths)) + '  ' + r[-1])
    rate = total['frames_per_s']
    lines.append(
        f'{total["wall_s"]:.1f} s wall, {_fmt(rate, 2)} frames/s, engine {data.get("engine")}, '
        f'{data.get("workers")} workers'
    )
    return '\n'.join(lines)


def save_fleet_report(data: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/fleet_report.json and OUT/fleet_report.txt (the table); returns both paths."""
    out_dir = Path(out_dir)
    json_path, table_path = out_dir / 'fleet_report.json', out_dir / 'fleet_report.txt'
    json_path.write_text(json.dumps(data, indent=2) + '\n')
    table_path.write_text(format_fleet_table(data) + '\n')
    return json_path, table_path


def fleet_failure(data: dict[str, Any]) -> str | None:
    """Why a fleet run failed (None: every bag is ok): the failed bags and their reasons."""
    failed = data['failed']
    if not failed:
        return None
    listed = '; '.join(f'{f["name"]}: {f["reason"]}' for f in failed[:3])
    more = f'; {len(failed) - 3} more' if len(failed) > 3 else ''
    bags = data['total']['bags']
    return f'{len(failed)} of {bags} bags failed ({listed}{more}); see fleet_report.json'

"""The replay report's pick-and-place part: per frame a target's grasp candidates, place
surface and instances; per target how many candidates were found and how stable the best
candidate's pose and the place pose were over the frames (``scoring.box_stability``: a half
turn about the pose's z axis, the approach or the surface normal, is the same pose, as it is
for two symmetric jaws and for a surface).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evf_sam_ros.replay.scoring import box_stability


def pick_entry(p: Any) -> dict[str, Any]:
    """JSON-ready fields of one PromptOutcome's grasps, place surface and instances."""
    return {
        'grasps': len(p.grasps),
        'best_grasp': [list(part) for part in p.grasps[0]] if p.grasps else None,
        'best_grasp_kind': p.grasp_kinds[0] if p.grasps else None,
        'best_grasp_score': round(p.grasp_scores[0], 4) if p.grasps else None,
        'place': [list(part) for part in p.place] if p.place else None,
        'instances': p.instances,
    }


def pick_summary(
    counts: list[int],
    best_grasps: list[Any],
    places: list[Any],
    instances: list[int],
) -> dict[str, Any]:
    """Per target, over its found frames (one item each): frames with candidates, mean
    candidates per found frame, stability of the best candidate's pose and of the place pose
    ((centre, quaternion, size) or None), and the mean number of instances.
    """
    return {
        'frames_with_grasps': sum(1 for c in counts if c),
        'grasps_mean': float(np.mean(counts)) if counts else None,
        'best_grasp': box_stability(best_grasps),
        'place': box_stability(places),
        'instances_mean': float(np.mean(instances)) if instances else None,
    }


def _stability(s: dict[str, Any]) -> str:
    std = s['orientation_std_deg']
    return (
        f'centre std {s["centre_rms_m"]:.4f} m, orientation std '
        f'{"n/a" if std is None else f"{std:.1f} deg"}'
    )


def pick_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Text rows of a target's pick summary (nothing when it had no candidates or place)."""
    rows = []
    g = summary['best_grasp']
    if g['count_valid']:
        rows.append(
            (
                '  grasps',
                f'{summary["frames_with_grasps"]} frames with candidates, '
                f'{summary["grasps_mean"]:.1f} per frame; best: {_stability(g)}',
            )
        )
    if summary['place']['count_valid']:
        rows.append(
            (
                '  place surface',
                f'{summary["place"]["count_valid"]} valid, ' + _stability(summary['place']),
            )
        )
    if summary['instances_mean']:
        rows.append(('  instances', f'{summary["instances_mean"]:.1f} per frame'))
    return rows

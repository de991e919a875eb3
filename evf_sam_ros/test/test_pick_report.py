"""Known answers for the replay report's pick-and-place part (replay.pick_report), through the
compact per-target columns the report keeps (replay.target_columns).
"""

import math

import numpy as np
import pytest

from evf_sam_ros.replay.pick_report import pick_entry, pick_rows
from evf_sam_ros.replay.results import PromptOutcome
from evf_sam_ros.replay.target_columns import TargetColumns
from evf_sam_ros.target3d.rotations import rotation_to_quaternion


def _rot_z(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _outcome(grasp_x=None, place=True, instances=0, turn=0.0):
    grasps = ()
    if grasp_x is not None:
        q = rotation_to_quaternion(_rot_z(turn))
        grasps = (((grasp_x, 0.0, 0.5), q, (0.06, 0.0, 0.0)), ((0.0, 0.0, 0.6), q, (0.03, 0, 0)))
    surface = ((0.1, 0.0, 0.7), (0.0, 0.0, 0.0, 1.0), (0.2, 0.2, 0.0)) if place else None
    return PromptOutcome(
        'the mug', True, 0.9, np.zeros((2, 2), bool), None, None, 4, (0.0, 0.0, 0.5), 0.5, 1.0,
        place=surface, instances=instances, grasps=grasps, grasp_kinds=(0, 1)[: len(grasps)],
        grasp_scores=(0.7, 0.5)[: len(grasps)],
    )  # fmt: skip


def _summary(outcomes):
    """The pick part of a target's report summary over these frames' outcomes."""
    columns = TargetColumns(0, 'the mug')
    for o in outcomes:
        columns.add(
            {
                'found': o.found,
                'score': o.score,
                'centroid': None,
                'point_m': None,
                'depth_median_m': None,
                'box': None,
                'lost_count': 0,
                'reground_count': 0,
                **pick_entry(o),
            }
        )
    return columns.summary(with_depth=True)['pick']


def test_entry_holds_the_best_candidate():
    entry = pick_entry(_outcome(0.01, instances=2))
    assert entry['grasps'] == 2 and entry['best_grasp_kind'] == 0
    assert entry['best_grasp'][0] == [0.01, 0.0, 0.5] and entry['best_grasp_score'] == 0.7
    assert entry['instances'] == 2 and entry['place'][2] == [0.2, 0.2, 0.0]


def test_summary_known_spreads():
    out = _summary([_outcome(0.01), _outcome(-0.01), _outcome(None, place=False)])
    assert out['frames_with_grasps'] == 2 and out['grasps_mean'] == pytest.approx(4 / 3)
    assert out['best_grasp']['count_valid'] == 2
    assert out['best_grasp']['centre_rms_m'] == pytest.approx(0.01)
    assert out['place']['count_valid'] == 2 and out['place']['centre_rms_m'] == pytest.approx(0)
    rows = dict(pick_rows(out))
    assert '2 frames with candidates' in rows['  grasps'] and '  instances' not in rows


def test_grasp_turned_half_about_its_approach_is_the_same():
    out = _summary([_outcome(0.0, turn=0.0), _outcome(0.0, turn=180.0)])
    assert out['best_grasp']['orientation_std_deg'] == pytest.approx(0.0, abs=1e-6)

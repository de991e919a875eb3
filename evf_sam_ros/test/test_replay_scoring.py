"""Scores with known answers: IoU, scoring over frames (directly and through the report),
latency percentiles and 3D statistics.
"""

import json
import math

import numpy as np
import pytest

from evf_sam_ros.replay.bagio import IMAGE, STRING, BagWriter
from evf_sam_ros.replay.report import read_frames
from evf_sam_ros.replay.results import FrameOutcome, FrameResult, PromptOutcome
from evf_sam_ros.replay.runner import ReplayOptions, replay_bag
from evf_sam_ros.replay.sample_bag import image_cdr, string_cdr
from evf_sam_ros.replay.scoring import latency_stats, mask_iou, score_frames, target_stats


def _rect(shape=(40, 60), x0=10, y0=5, w=20, h=10):
    mask = np.zeros(shape, dtype=bool)
    mask[y0 : y0 + h, x0 : x0 + w] = True
    return mask


def test_mask_iou_known_values():
    gt = _rect()
    assert mask_iou(gt, gt) == 1.0
    assert mask_iou(_rect(x0=15), gt) == pytest.approx(150 / 250)  # 15x10 overlap of 25x10
    assert mask_iou(_rect(x0=40), gt) == 0.0
    assert mask_iou(np.zeros((40, 60)), np.zeros((40, 60), dtype=bool)) == 1.0
    assert mask_iou(gt.astype(np.uint8) * 255, gt) == 1.0  # non-zero = target


def test_mask_iou_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match='same shape'):
        mask_iou(np.zeros((4, 4)), np.zeros((4, 5)))


def test_score_frames_skips_missing_and_averages():
    gt = _rect()
    summary = score_frames([(0, gt, gt), (1, _rect(x0=15), gt), (2, None, gt), (3, gt, None)])
    assert [i for i, _ in summary.per_frame] == [0, 1]
    assert summary.mean == pytest.approx((1.0 + 0.6) / 2)
    assert summary.hit_rate == 1.0
    empty = score_frames([])
    assert math.isnan(empty.mean) and empty.as_dict()['mean'] is None


def test_latency_stats():
    stats = latency_stats([float(v) for v in range(1, 101)] + [math.nan])
    assert stats['count'] == 100
    assert stats['p50'] == pytest.approx(50.5)
    assert stats['p95'] == pytest.approx(95.05)
    assert stats['max'] == 100.0
    assert latency_stats([])['p50'] is None


def test_target_stats():
    stats = target_stats([(0.0, 0.0, 1.0), None, (0.2, -0.2, 3.0)], [1.0, math.nan, 3.0, 2.0])
    assert stats['count_valid'] == 2 and stats['count_total'] == 3
    assert stats['mean_m'] == pytest.approx([0.1, -0.1, 2.0])
    assert stats['std_m'] == pytest.approx([0.1, 0.1, 1.0])
    assert stats['median_depth_m'] == 2.0
    none = target_stats([None], [])
    assert none['mean_m'] is None and none['median_depth_m'] is None


class ShiftedTruth:
    """A FrameProcessor whose prediction is the frame's own ground truth shifted right."""

    mode = 'oracle'
    latency_kind = 'model'

    def __init__(self, shift_px, found=True):
        self.shift_px, self.found = shift_px, found

    def process(self, frame):
        mask = np.roll(frame.gt_mask, self.shift_px, axis=1)
        result = PromptOutcome(
            'the box', self.found, 1.0, mask, None, None, int(mask.sum()), None, math.nan, 1.0
        )
        return FrameResult('processed', FrameOutcome([result], latency_ms=float(frame.index + 1)))


@pytest.fixture(scope='module')
def rect_bag(tmp_path_factory):
    """3 frames, 60x40 grey images, ground truth a 20x10 rectangle, command "the box"."""
    path = tmp_path_factory.mktemp('scoring') / 'rect_bag'
    with BagWriter(path, 'mcap') as bag:
        bag.write('/command', STRING, 1, string_cdr('the box'))
        for i in range(3):
            stamp = (i + 1) * 100_000_000
            bag.write(
                '/cam/image',
                IMAGE,
                stamp,
                image_cdr(np.full((40, 60, 3), 90, np.uint8), 'rgb8', stamp),
            )
            gt = np.where(_rect(), np.uint8(255), np.uint8(0))
            bag.write('/gt/mask', IMAGE, stamp + 1, image_cdr(gt, 'mono8', stamp))
    return path


@pytest.mark.parametrize(
    'shift, found, expected',
    [
        (0, True, 1.0),
        (5, True, 150 / 250),
        (25, True, 0.0),
        (0, False, 0.0),  # a target not found counts as an empty mask
    ],
)
def test_report_iou_of_known_answers(rect_bag, tmp_path, shift, found, expected):
    options = ReplayOptions(video=False, progress=False, ground_truth_topic='/gt/mask')
    report = replay_bag(rect_bag, tmp_path, ShiftedTruth(shift, found), options, {})
    assert report['iou']['frames_scored'] == 3
    assert report['iou']['mean'] == pytest.approx(expected)
    ious = [r['iou'] for f in read_frames(tmp_path) for r in f['results']]
    assert ious == pytest.approx([expected] * 3)
    assert report['frames'] == {'in': 3, 'processed': 3, 'skipped': 0, 'dropped': 0}
    assert report['latency_ms']['max'] == 3.0
    saved = json.loads((tmp_path / 'report.json').read_text())
    assert saved['iou']['mean'] == pytest.approx(expected)
    assert saved['per_frame_file'] == 'frames.jsonl' and 'per_frame' not in saved['iou']

"""Known answers for replay.scoring.box_stability (box size and pose stability over frames)."""

import math

import numpy as np
import pytest

from evf_sam_ros.replay.scoring import box_stability
from evf_sam_ros.target3d.rotations import rotation_to_quaternion


def _rot_x(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


BASE = _rot_x(180) @ _rot_z(30)  # z towards the camera, turned 30 degrees


def _frame(centre=(0.0, 0.0, 0.8), rotation=BASE, size=(0.2, 0.1, 0.05)):
    return centre, rotation_to_quaternion(rotation), size


def test_still_box_is_perfectly_stable():
    out = box_stability([_frame()] * 5)
    assert out['count_valid'] == out['count_total'] == 5
    assert out['size_mean_m'] == pytest.approx([0.2, 0.1, 0.05])
    assert out['size_std_m'] == pytest.approx([0, 0, 0], abs=1e-12)
    assert out['centre_rms_m'] == pytest.approx(0, abs=1e-12)
    assert out['orientation_std_deg'] == pytest.approx(0, abs=1e-6)


def test_known_spreads():
    frames = [
        _frame(centre=(0.01, 0.0, 0.8), rotation=BASE @ _rot_x(2), size=(0.21, 0.1, 0.05)),
        _frame(centre=(-0.01, 0.0, 0.8), rotation=BASE @ _rot_x(-2), size=(0.19, 0.1, 0.05)),
        None,
    ]
    out = box_stability(frames)
    assert (out['count_valid'], out['count_total']) == (2, 3)
    assert out['size_mean_m'] == pytest.approx([0.2, 0.1, 0.05])
    assert out['size_std_m'] == pytest.approx([0.01, 0, 0], abs=1e-12)
    assert out['centre_std_m'] == pytest.approx([0.01, 0, 0], abs=1e-12)
    assert out['centre_rms_m'] == pytest.approx(0.01)
    assert out['orientation_std_deg'] == pytest.approx(2.0, abs=1e-6)  # mean is BASE
    assert out['orientation_max_deg'] == pytest.approx(2.0, abs=1e-6)


def test_half_turn_about_z_is_the_same_box():
    """X flipping sign between frames (a symmetric box) is not instability."""
    frames = [
        _frame(rotation=BASE),
        _frame(rotation=BASE @ _rot_z(180)),
        _frame(rotation=BASE @ _rot_z(181)),
    ]
    out = box_stability(frames)
    assert out['orientation_max_deg'] == pytest.approx(2 / 3, abs=1e-3)  # mean at +1/3 deg
    assert out['orientation_std_deg'] < 1.0


def test_no_valid_box():
    out = box_stability([None, None])
    assert out['count_valid'] == 0 and out['count_total'] == 2
    assert out['size_mean_m'] is None and out['orientation_std_deg'] is None

"""Tests for evf_sam_ros.target3d.geometry with known answers."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from evf_sam_ros.model.masks import erode_mask, mask_bbox, mask_centroid
from evf_sam_ros.target3d.geometry import (
    CameraIntrinsics,
    DepthStats,
    deproject_pixel,
    mask_depth_stats,
    target_point,
)


def rect_mask(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def intrinsics(fx=500.0, fy=500.0, cx=50.0, cy=40.0, width=100, height=80):
    return CameraIntrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)


def reference_erode(mask):
    """Naive 3x3 erosion: a pixel survives when all 9 neighbours are inside and True."""
    height, width = mask.shape
    out = np.zeros_like(mask)
    for r in range(height):
        for c in range(width):
            window = mask[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            out[r, c] = 0 < r < height - 1 and 0 < c < width - 1 and window.all()
    return out


def test_centroid_of_rectangle():
    mask = rect_mask((10, 30), (2, 5), (10, 20))
    assert mask_centroid(mask) == (14.5, 3.0)


def test_centroid_single_pixel_and_l_shape():
    mask = np.zeros((9, 9), bool)
    mask[7, 3] = True
    assert mask_centroid(mask) == (3.0, 7.0)
    mask[7, 4] = mask[6, 3] = True  # pixels (u, v): (3, 7), (4, 7), (3, 6)
    u, v = mask_centroid(mask)
    assert u == pytest.approx(10 / 3) and v == pytest.approx(20 / 3)


def test_centroid_accepts_uint8_and_empty_is_none():
    mask = np.zeros((4, 4), np.uint8)
    assert mask_centroid(mask) is None
    mask[1:3, 0:2] = 255
    assert mask_centroid(mask) == (0.5, 1.5)
    with pytest.raises(ValueError, match='HxW'):
        mask_centroid(np.zeros((2, 2, 1), bool))


def test_bbox_has_exclusive_ends():
    mask = rect_mask((10, 30), (2, 5), (10, 20))
    x0, y0, x1, y1 = mask_bbox(mask)
    assert (x0, y0, x1, y1) == (10, 2, 20, 5)
    assert (x1 - x0, y1 - y0) == (10, 3)
    assert mask[y0:y1, x0:x1].sum() == mask.sum()


def test_bbox_corner_pixel_and_empty():
    mask = np.zeros((6, 8), bool)
    assert mask_bbox(mask) is None
    mask[5, 7] = True
    assert mask_bbox(mask) == (7, 5, 8, 6)
    mask[0, 2] = True
    assert mask_bbox(mask) == (2, 0, 8, 6)
    assert all(type(v) is int for v in mask_bbox(mask))


def test_erosion_of_5x5_square():
    mask = rect_mask((9, 9), (2, 7), (2, 7))
    np.testing.assert_array_equal(erode_mask(mask, 1), rect_mask((9, 9), (3, 6), (3, 6)))
    np.testing.assert_array_equal(erode_mask(mask, 2), rect_mask((9, 9), (4, 5), (4, 5)))
    assert not erode_mask(mask, 3).any()


def test_erosion_pads_with_false():
    mask = np.ones((4, 5), bool)
    np.testing.assert_array_equal(erode_mask(mask, 1), rect_mask((4, 5), (1, 3), (1, 4)))


def test_erosion_zero_iterations_is_a_copy():
    mask = rect_mask((5, 5), (1, 4), (1, 4))
    out = erode_mask(mask, 0)
    np.testing.assert_array_equal(out, mask)
    out[2, 2] = False
    assert mask[2, 2]


def test_erosion_matches_reference_on_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((13, 17)) < 0.8
        original = mask.copy()
        np.testing.assert_array_equal(erode_mask(mask, 1), reference_erode(mask))
        np.testing.assert_array_equal(erode_mask(mask, 2), reference_erode(reference_erode(mask)))
        np.testing.assert_array_equal(mask, original)


def test_erosion_rejects_negative_iterations():
    with pytest.raises(ValueError, match='iterations'):
        erode_mask(np.ones((3, 3), bool), -1)


def test_intrinsics_from_camera_info():
    msg = CameraInfo(width=1280, height=720)
    msg.k = [600.0, 0.0, 640.5, 0.0, 610.0, 359.5, 0.0, 0.0, 1.0]
    intr = CameraIntrinsics.from_camera_info(msg)
    assert intr == CameraIntrinsics(600.0, 610.0, 640.5, 359.5, 1280, 720)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'fx'"):
        intr.fx = 1.0


def test_intrinsics_from_ros1_style_capital_k():
    msg = SimpleNamespace(K=(300.0, 0, 160.0, 0, 310.0, 120.0, 0, 0, 1), width=320, height=240)
    assert CameraIntrinsics.from_camera_info(msg) == CameraIntrinsics(
        300.0, 310.0, 160.0, 120.0, 320, 240
    )


def test_camera_info_with_zero_k_rejected():
    with pytest.raises(ValueError, match='all zeros'):
        CameraIntrinsics.from_camera_info(CameraInfo(width=640, height=480))


@pytest.mark.parametrize('fx, fy', [(0.0, 500.0), (500.0, -1.0)])
def test_camera_info_with_non_positive_focal_length_rejected(fx, fy):
    msg = CameraInfo(width=640, height=480)
    msg.k = [fx, 0.0, 320.0, 0.0, fy, 240.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match='focal lengths'):
        CameraIntrinsics.from_camera_info(msg)


def test_camera_info_with_zero_size_rejected():
    msg = CameraInfo(width=0, height=0)
    msg.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match='image size'):
        CameraIntrinsics.from_camera_info(msg)


def test_scaled_intrinsics():
    intr = CameraIntrinsics(600.0, 610.0, 640.0, 360.0, 1280, 720)
    assert intr.scaled(640, 360) == CameraIntrinsics(300.0, 305.0, 320.0, 180.0, 640, 360)
    stretched = intr.scaled(2560, 360)
    assert (stretched.fx, stretched.cx, stretched.fy, stretched.cy) == (
        1200.0,
        1280.0,
        305.0,
        180.0,
    )


def test_deproject_principal_point_is_on_axis():
    intr = intrinsics()
    assert deproject_pixel(50.0, 40.0, 3.0, intr) == (0.0, 0.0, 3.0)


def test_deproject_offsets():
    intr = intrinsics(fx=500.0, fy=250.0)
    x, y, z = deproject_pixel(150.0, 40.0, 2.0, intr)
    assert (x, y, z) == (pytest.approx(0.4), 0.0, 2.0)
    x, y, z = deproject_pixel(50.0, -10.0, 1.0, intr)
    assert (x, y, z) == (0.0, pytest.approx(-0.2), 1.0)


def test_depth_stats_known_fraction_and_robust_median():
    mask = rect_mask((20, 20), (5, 15), (5, 15))  # 100 pixels
    depth = np.full((20, 20), 7.0, np.float32)  # background at 7 m must not count
    depth[5:15, 5:15] = 2.0
    depth[5, 5:15] = np.nan  # 10 invalid pixels
    depth[6, 5:10] = 0.0  # 5 invalid pixels (below min_depth)
    depth[6, 10:15] = 100.0  # 5 invalid pixels (above max_depth)
    stats = mask_depth_stats(mask, depth, erode_iterations=0)
    assert stats == DepthStats(median_m=2.0, valid_fraction=0.8, valid_count=80, pixel_count=100)


def test_median_is_robust_to_valid_outliers():
    mask = rect_mask((20, 20), (5, 15), (5, 15))
    depth = np.full((20, 20), 2.0, np.float32)
    depth[5, 5:15] = 150.0  # 10% far outliers inside the depth window
    stats = mask_depth_stats(mask, depth, erode_iterations=0, max_depth=200.0)
    assert stats.median_m == 2.0 and stats.valid_fraction == 1.0


def test_depth_stats_uses_eroded_mask():
    mask = rect_mask((20, 20), (5, 15), (5, 15))
    depth = np.full((20, 20), 2.0, np.float32)
    depth[5:15, [5, 6, 7, 12, 13, 14]] = 9.0  # 60 of 100 mask pixels near its edges at 9 m
    assert mask_depth_stats(mask, depth, erode_iterations=0).median_m == 9.0
    stats = mask_depth_stats(mask, depth, erode_iterations=2)  # 6x6 region remains
    assert stats.pixel_count == 36
    assert stats.median_m == 2.0  # 24 of 36 pixels at 2 m


def test_thin_mask_falls_back_to_uneroded():
    mask = np.zeros((10, 10), bool)
    mask[4, 1:9] = True  # 1-pixel line, erodes to nothing
    depth = np.full((10, 10), 3.0, np.float32)
    stats = mask_depth_stats(mask, depth, erode_iterations=2)
    assert stats == DepthStats(3.0, 1.0, 8, 8)


def test_depth_stats_empty_mask_and_no_valid_depth():
    depth = np.full((4, 4), np.nan, np.float32)
    stats = mask_depth_stats(np.zeros((4, 4), bool), depth)
    assert math.isnan(stats.median_m)
    assert (stats.valid_fraction, stats.valid_count, stats.pixel_count) == (0.0, 0, 0)
    stats = mask_depth_stats(np.ones((4, 4), bool), depth, erode_iterations=0)
    assert math.isnan(stats.median_m)
    assert (stats.valid_fraction, stats.valid_count, stats.pixel_count) == (0.0, 0, 16)


def test_depth_stats_validation():
    with pytest.raises(ValueError, match=r'mask \(4, 4\), depth \(4, 5\)'):
        mask_depth_stats(np.ones((4, 4), bool), np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match='min_depth'):
        mask_depth_stats(np.ones((4, 4), bool), np.ones((4, 4)), min_depth=5.0, max_depth=1.0)


def test_target_point_known_answer():
    intr = intrinsics(fx=500.0, fy=500.0, cx=50.0, cy=40.0)
    mask = rect_mask((80, 100), (35, 46), (80, 91))  # 11x11 centred on (u=85, v=40)
    depth = np.full((80, 100), np.nan, np.float32)
    depth[30:50, 75:95] = 2.0
    point, stats = target_point(mask, depth, intr)
    assert point == pytest.approx((0.14, 0.0, 2.0))  # x = (85 - 50) * 2 / 500
    assert stats.pixel_count == 49 and stats.valid_fraction == 1.0


def test_target_point_100px_right_of_cx():
    intr = intrinsics(fx=500.0, fy=500.0, cx=50.0, cy=40.0, width=200, height=80)
    mask = rect_mask((80, 200), (38, 43), (148, 153))  # centred on (150, 40)
    depth = np.full((80, 200), 2.0, np.float32)
    point, _ = target_point(mask, depth, intr, erode_iterations=1)
    assert point == pytest.approx((0.4, 0.0, 2.0))


def test_target_point_uses_centroid_of_eroded_region():
    intr = intrinsics()
    mask = rect_mask((80, 100), (35, 46), (45, 56))  # 11x11 centred on (50, 40)
    mask[40, 56:80] = True  # 1-pixel tail to the right, removed by erosion
    depth = np.full((80, 100), 1.5, np.float32)
    point, _ = target_point(mask, depth, intr)
    assert point == pytest.approx((0.0, 0.0, 1.5))
    point, _ = target_point(mask, depth, intr, erode_iterations=0)
    raw_u = (121 * 50 + 24 * 67.5) / 145  # the tail pulls the raw centroid right
    assert point == pytest.approx(((raw_u - 50) * 1.5 / 500, 0.0, 1.5))


def test_target_point_none_cases():
    intr = intrinsics()
    depth = np.full((80, 100), 2.0, np.float32)
    point, stats = target_point(np.zeros((80, 100), bool), depth, intr)
    assert point is None and stats.pixel_count == 0
    mask = rect_mask((80, 100), (0, 10), (0, 10))  # 100 px, 6x6 = 36 after erosion by 2
    point, stats = target_point(mask, np.full((80, 100), np.nan, np.float32), intr)
    assert point is None and stats.valid_count == 0
    sparse = np.full((80, 100), np.nan, np.float32)
    sparse[3, 3] = 2.0  # 1 of 49 eroded pixels valid: ~2%
    mask = rect_mask((80, 100), (0, 11), (0, 11))
    point, stats = target_point(mask, sparse, intr)
    assert point is None and stats.valid_fraction == pytest.approx(1 / 49)
    point, _ = target_point(mask, sparse, intr, min_valid_fraction=0.01)
    assert point is not None and point[2] == 2.0


def test_target_point_rejects_intrinsics_for_other_resolution():
    intr = intrinsics(width=1280, height=720)
    with pytest.raises(ValueError, match='scaled'):
        target_point(np.ones((80, 100), bool), np.ones((80, 100), np.float32), intr)

"""Known answers for evf_sam_ros.target3d.cloud (surface pixels, voxels, the published cloud) and
evf_sam_ros.target3d.box3d (box conventions, outliers, quaternions).
"""

import dataclasses
import math

import numpy as np
import pytest

from evf_sam_ros.target3d.box3d import OrientedBox, fit_oriented_box
from evf_sam_ros.target3d.cloud import Surface, SurfaceFilter, evenly_spaced, target_surface
from evf_sam_ros.target3d.cloud_publish import build_cloud, voxel_downsample
from evf_sam_ros.target3d.geometry import CameraIntrinsics
from evf_sam_ros.target3d.rotations import quaternion_to_rotation, rotation_to_quaternion

FILTER = SurfaceFilter(
    min_depth_m=0.1, max_depth_m=20.0, gate_sigmas=3.0, gate_min_m=0.05, max_incidence_deg=80.0
)
INTR = CameraIntrinsics(500.0, 500.0, 19.5, 14.5, 40, 30)


def _plane_scene(depth=1.0):
    """A flat target (rows 5..24, columns 10..29) at ``depth`` in a 40x30 image."""
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:25, 10:30] = True
    return mask, np.full((30, 40), depth, dtype=np.float32)


def test_surface_keeps_a_flat_target_whole():
    mask, depth = _plane_scene()
    surface = target_surface(mask, depth, INTR, 1.0, FILTER)
    assert len(surface) == 400
    u, v = surface.pixels()
    assert (u.min(), u.max(), v.min(), v.max()) == (10, 29, 5, 24)
    points = surface.points(INTR)
    assert points.dtype == np.float32 and points.shape == (400, 3)
    assert points[0] == pytest.approx([(10 - 19.5) / 500, (5 - 14.5) / 500, 1.0])


def test_surface_drops_invalid_depth():
    mask, depth = _plane_scene()
    depth[5, 10], depth[6, 10], depth[7, 10] = np.nan, 0.05, 25.0  # NaN, too near, too far
    surface = target_surface(mask, depth, INTR, 1.0, FILTER)
    assert len(surface) == 397 and np.all(np.isfinite(surface.z))


def test_mixed_pixel_between_two_depths_is_dropped_edge_pixels_stay():
    mask, depth = _plane_scene()
    depth[:, 30:] = 2.0  # background right of the target
    depth[5:25, 29] = 1.5  # the target's last column reads a mix of 1 m and 2 m
    surface = target_surface(mask, depth, INTR, 1.0, FILTER)
    u, _ = surface.pixels()
    assert 29 not in u and len(surface) == 380
    assert 28 in u  # the true edge (a step to one side only) is kept


def test_isolated_spike_is_dropped():
    mask, depth = _plane_scene()
    depth[15, 20] = 1.03  # within the gate, but steps 3 cm to all four neighbours
    surface = target_surface(mask, depth, INTR, 1.0, FILTER)
    u, v = surface.pixels()
    assert len(surface) == 399 and not np.any((u == 20) & (v == 15))


def test_steep_surface_within_the_incidence_limit_is_kept():
    """A plane tilted 70 degrees from face-on: every pixel steps to both sides, but less than
    an 80-degree surface would.
    """
    mask, depth = _plane_scene()
    step = math.tan(math.radians(70)) * 1.0 / INTR.fx  # depth change per column
    depth[:] = (1.0 + step * (np.arange(40) - 20))[None, :]
    assert len(target_surface(mask, depth, INTR, 1.0, FILTER)) == 400


def test_depth_gate_removes_background_seen_through_the_mask():
    mask, depth = _plane_scene()
    depth[10:14, 15:19] = 1.8  # a hole in the object shows a wall (16 px)
    depth[20:24, 25:29] = 1.03  # a bump on the object, within the 5 cm floor of the gate
    # Depth breaks cut both 16-pixel patches off as parts of their own; keep small parts
    # here so that the gate alone decides.
    keep_parts = dataclasses.replace(FILTER, min_part_fraction=0.01)
    surface = target_surface(mask, depth, INTR, 1.0, keep_parts)
    assert surface.z.max() == pytest.approx(1.03) and len(surface) >= 360
    wide = dataclasses.replace(keep_parts, gate_min_m=1.0)  # a 1 m gate lets the wall in
    walled = target_surface(mask, depth, INTR, 1.0, wide)
    assert len(walled) > len(surface) and walled.z.max() == pytest.approx(1.8)
    # With the default part size both are cut off (4 % of the surface each).
    assert target_surface(mask, depth, INTR, 1.0, FILTER).z.max() == pytest.approx(1.0)


def test_gate_widens_with_the_spread_of_the_target():
    """A target spanning 15 cm in depth (a shelf seen along its length, 75 degrees from
    face-on) is kept whole, though the gate's floor is 5 cm.
    """
    mask, depth = _plane_scene()
    depth[:] = np.linspace(0.85, 1.15, 40, dtype=np.float32)[None, :]
    surface = target_surface(mask, depth, INTR, 1.0, FILTER)
    assert len(surface) == 400 and np.ptp(surface.z) > 0.14
    floor_only = SurfaceFilter(0.1, 20.0, 1e-6, 0.05, 80.0)
    assert len(target_surface(mask, depth, INTR, 1.0, floor_only)) < 400


def test_surface_checks_its_inputs():
    mask, depth = _plane_scene()
    with pytest.raises(ValueError, match='same|one size'):
        target_surface(mask, depth[:, :-1], INTR, 1.0, FILTER)
    with pytest.raises(ValueError, match='scaled'):
        target_surface(mask, depth, INTR.scaled(80, 60), 1.0, FILTER)
    with pytest.raises(ValueError, match='median_m'):
        target_surface(mask, depth, INTR, math.nan, FILTER)
    with pytest.raises(ValueError, match='max_incidence_deg'):
        SurfaceFilter(0.1, 20.0, 3.0, 0.05, 90.0)
    assert len(target_surface(np.zeros_like(mask), depth, INTR, 1.0, FILTER)) == 0


def test_evenly_spaced():
    assert evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert evenly_spaced(101, 5).tolist() == [0, 25, 50, 75, 100]
    with pytest.raises(ValueError, match='count must be > 0, got 0'):
        evenly_spaced(5, 0)


def test_voxel_downsample_means_per_voxel():
    points = np.array(
        [
            [0.001, 0.001, 1.001],
            [0.009, 0.009, 1.009],  # one 1 cm voxel
            [0.051, 0.0, 1.0],
        ],
        dtype=np.float32,
    )  # another
    colours = np.array([[10, 20, 30], [30, 40, 50], [200, 0, 0]], dtype=np.uint8)
    down, rgb = voxel_downsample(points, colours, 0.01)
    assert down.dtype == np.float32 and rgb.dtype == np.uint8
    assert down == pytest.approx(np.array([[0.005, 0.005, 1.005], [0.051, 0.0, 1.0]]), abs=1e-6)
    assert rgb.tolist() == [[20, 30, 40], [200, 0, 0]]
    far = np.vstack([points, [[30.0, -20.0, 19.0]]]).astype(np.float32)  # sparse grid path
    down, _ = voxel_downsample(far, None, 0.01)
    assert len(down) == 3 and down[:2] == pytest.approx(
        np.array([[0.005, 0.005, 1.005], [0.051, 0.0, 1.0]]), abs=1e-6
    )
    with pytest.raises(ValueError, match='voxel_size_m must be > 0, got 0.0'):
        voxel_downsample(points, None, 0.0)


def test_build_cloud_colours_cap_and_errors():
    # pixels (u, v) = (0, 0), (1, 0), (2, 1), (3, 1) in a window 4 pixels wide at (0, 0)
    surface = Surface(
        np.array([0, 1, 6, 7]), np.array([1.0, 1.0, 2.0, 2.0], np.float32), (0, 0), 4
    )
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[0, 1] = (255, 0, 0)
    cloud = build_cloud(surface, INTR, rgb, 0.0, 100)
    assert len(cloud) == 4 and cloud.colours[1].tolist() == [255, 0, 0]
    assert cloud.points[2] == pytest.approx([(2 - 19.5) * 2 / 500, (1 - 14.5) * 2 / 500, 2.0])
    assert len(build_cloud(surface, INTR, None, 0.0, 2)) == 2
    assert build_cloud(surface, INTR, None, 0.0, 100).colours is None
    with pytest.raises(ValueError, match='rgb must be 30x40x3 uint8'):
        build_cloud(surface, INTR, rgb[:, :, 0], 0.0, 100)


# ---- box3d -------------------------------------------------------------------------------


def _rotation(axis, degrees):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    x, y, z = axis
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * k + (1 - c) * k @ k


def _face_grid(centre, rotation, size_xy, step=0.002):
    """Points on a rectangle (size_xy, metres) in the plane of the rotation's x and y."""
    xs = np.arange(-size_xy[0] / 2, size_xy[0] / 2 + 1e-9, step)
    ys = np.arange(-size_xy[1] / 2, size_xy[1] / 2 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    local = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    return np.asarray(centre) + local @ rotation.T


def test_flat_face_box_conventions():
    """A 16 x 8 cm card facing the camera, turned 20 degrees in its plane."""
    rotation = _rotation([0, 0, 1], 20)
    points = _face_grid([0.05, -0.02, 0.9], rotation, (0.16, 0.08))
    box = fit_oriented_box(points, 0.01, 0.0)
    assert box.centre == pytest.approx([0.05, -0.02, 0.9], abs=1e-6)
    assert box.size == pytest.approx([0.16, 0.08, 0.0], abs=1e-6)
    assert box.rotation[:, 2] == pytest.approx([0, 0, -1], abs=1e-6)  # towards the camera
    assert box.rotation[:, 0] == pytest.approx(rotation[:, 0], abs=1e-6)  # right in the image
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    assert box.point_count == len(points)


def test_square_face_gets_its_edges_not_an_arbitrary_axis():
    rotation = _rotation([0, 0, 1], 35)
    box = fit_oriented_box(_face_grid([0, 0, 1.0], rotation, (0.1, 0.1), 0.001), 0.01, 0.0)
    turn = math.degrees(math.atan2(box.rotation[1, 0], box.rotation[0, 0]))
    assert turn % 90 == pytest.approx(35, abs=0.3)
    assert box.size == pytest.approx([0.1, 0.1, 0.0], abs=1e-6)


def test_sign_rule_is_deterministic_for_a_vertical_long_axis():
    """X along the image's y (it has no image-right component): it points down (+y)."""
    points = _face_grid([0, 0, 1.0], _rotation([0, 0, 1], 90), (0.2, 0.05))
    box = fit_oriented_box(points, 0.01, 0.0)
    assert box.rotation[:, 0] == pytest.approx([0, 1, 0], abs=1e-9)
    assert box.rotation[:, 1] == pytest.approx([1, 0, 0], abs=1e-9)  # z x x with z = -z_cam


def test_isolated_outliers_do_not_grow_the_box():
    points = _face_grid([0, 0, 1.0], np.eye(3), (0.16, 0.08))
    outliers = np.array([[0.3, 0.0, 1.0], [0.0, 0.0, 0.8], [-0.1, 0.2, 1.1]])
    box = fit_oriented_box(np.vstack([points, outliers]), 0.01, 0.005)
    assert box.size == pytest.approx([0.16, 0.08, 0.0], abs=1e-6)
    untrimmed = fit_oriented_box(np.vstack([points, outliers]), 0.01, 0.0)
    assert untrimmed.size[0] > 0.3


def test_degenerate_points_give_no_box():
    assert fit_oriented_box(np.zeros((0, 3)), 0.01, 0.0) is None
    assert fit_oriented_box(np.ones((50, 3)), 0.01, 0.0) is None
    line = np.outer(np.linspace(0, 1, 50), [1.0, 0.0, 0.0]) + [0, 0, 1]
    assert fit_oriented_box(line, 0.01, 0.0) is None
    with pytest.raises(ValueError, match='plane_tolerance_m > 0 .*got 0.0, 0.0'):
        fit_oriented_box(line, 0.0, 0.0)


@pytest.mark.parametrize(
    'axis, degrees',
    [
        ([1, 0, 0], 0),
        ([0, 0, 1], 90),
        ([1, 2, 3], 170),
        ([1, 0, 0], 180),
        ([0, 1, 0], 180),
        ([1, -1, 0.5], 250),
    ],
)
def test_quaternion_round_trip(axis, degrees):
    rotation = _rotation(axis, degrees)
    q = rotation_to_quaternion(rotation)
    assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
    assert quaternion_to_rotation(q) == pytest.approx(rotation, abs=1e-12)
    half = math.radians(degrees) / 2
    unit = np.asarray(axis, float) / np.linalg.norm(axis)
    expected = np.append(unit * math.sin(half), math.cos(half))
    assert np.allclose(q, expected, atol=1e-12) or np.allclose(q, -expected, atol=1e-12)


def test_quaternion_errors():
    with pytest.raises(ValueError, match='quaternion'):
        quaternion_to_rotation([0, 0, 0, 0])
    with pytest.raises(ValueError, match='quaternion'):
        quaternion_to_rotation([0, 0, 1])
    assert OrientedBox(np.zeros(3), np.eye(3), np.ones(3), 1).quaternion == (0.0, 0.0, 0.0, 1.0)

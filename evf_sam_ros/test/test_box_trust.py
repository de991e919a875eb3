"""A box and cloud a gripper can trust (issue 16 item 0), on ray-cast scenes of known geometry
(synthetic.pick_scenes; 1280x720, depth noise growing with depth squared).

Baselines before this work (benchmarks/box_quality.py, docs/3d_outputs.md): a 90-degree axis
jump at 45 degrees, 20 mm / 28 % with a mask spilling 3 px onto a box behind, a mixed pixel
next to a stereo shadow 40 mm off the object, 29 % of good points dropped at 2.5 m, sizes
4-8 % too large with 1-3 mm noise.
"""

import math

import numpy as np
import pytest

from evf_sam_ros.synthetic import depth_scenes, pick_scenes
from evf_sam_ros.target3d.box_frame import label_axes
from evf_sam_ros.target3d.cloud import SurfaceFilter
from evf_sam_ros.target3d.estimate import TargetSettings, estimate_target
from evf_sam_ros.target3d.regions import depth_breaks, label_regions

ELEVATIONS = range(30, 61, 5)
#: A box whose top and front show equally from 45 degrees: the case whose axes jumped.
EVEN_BOX = dict(yaw_deg=0.0, size=(0.16, 0.10, 0.10))


def _estimate(scene, mask, depth, **settings):
    return estimate_target(
        pick_scenes.mask_result(mask), TargetSettings(**settings), depth, scene.intrinsics
    )


def _box_angle_deg(a, b):
    """Angle between two box rotations; a half turn about z is the same box."""
    angles = []
    for r in (b, b @ np.diag([-1.0, -1.0, 1.0])):
        cosine = np.clip((np.trace(a.T @ r) - 1.0) / 2.0, -1.0, 1.0)
        angles.append(math.degrees(math.acos(cosine)))
    return min(angles)


def _size_error(box, truth):
    """Largest relative error of the box's extents, each matched to the truth's axis."""
    errors = []
    for i in range(3):
        j = int(np.argmax(np.abs(truth.rotation.T @ box.rotation[:, i])))
        errors.append(abs(box.size[i] - truth.size[j]) / truth.size[j])
    return max(errors)


@pytest.fixture(scope='module')
def sweep():
    """The even box rendered from every elevation (about a second each)."""
    out = {}
    for elevation in ELEVATIONS:
        scene = pick_scenes.box_seen_from(elevation, **EVEN_BOX)
        out[elevation] = (scene, depth_scenes.render(scene))
    return out


@pytest.mark.parametrize('elevation', ELEVATIONS)
def test_axes_do_not_jump_between_noise_seeds(sweep, elevation):
    scene, rendered = sweep[elevation]
    rotations = []
    for seed in range(20):
        depth = pick_scenes.sensor_depth(rendered.depth_m, 0.002, seed)
        box = _estimate(scene, rendered.mask, depth).box
        rotations.append(box.rotation)
        assert _box_angle_deg(box.rotation, scene.target.rotation) <= 5.0
    worst = max(_box_angle_deg(a, b) for a in rotations for b in rotations)
    assert worst <= 5.0, f'axes jump by {worst:.1f} degrees between seeds'


@pytest.mark.parametrize('elevation', ELEVATIONS)
def test_mask_spilling_onto_the_table_moves_nothing(sweep, elevation):
    scene, rendered = sweep[elevation]
    depth = pick_scenes.sensor_depth(rendered.depth_m, 0.002, 5)
    box = _estimate(scene, pick_scenes.dilate(rendered.mask, 3), depth).box
    assert np.linalg.norm(box.centre - scene.target.centre) <= 0.005
    assert _size_error(box, scene.target) <= 0.05


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
def test_mask_spilling_onto_a_box_behind_is_cut_off(encoding):
    scene = pick_scenes.box_seen_from(48, neighbour_gap_m=0.03)
    rendered = depth_scenes.render(scene)
    depth = pick_scenes.sensor_depth(rendered.depth_m, 0.002, 2, encoding)
    grown = pick_scenes.dilate(rendered.mask, 3)
    v, u = np.nonzero(grown & ~rendered.mask)
    assert np.sum(np.abs(depth[v, u] - scene.target.centre[2]) < 0.2) > 100  # spill exists
    est = _estimate(scene, grown, depth)
    assert np.linalg.norm(est.box.centre - scene.target.centre) <= 0.005
    assert _size_error(est.box, scene.target) <= 0.05
    behind = scene.background[1].distance(est.cloud.points.astype(np.float64))
    assert behind.min() > 0.01  # no point of the box behind is left


def test_mixed_pixel_next_to_a_stereo_shadow_is_dropped():
    scene = pick_scenes.box_seen_from(48)
    rendered = depth_scenes.render(scene)
    depth = pick_scenes.sensor_depth(rendered.depth_m, shadow_px=3)
    assert np.isnan(depth).sum() > np.isnan(rendered.depth_m).sum() + 100  # the shadow
    est = estimate_target(
        pick_scenes.mask_result(rendered.mask),
        TargetSettings(),
        depth,
        scene.intrinsics,
        rendered.rgb,
    )
    distance = scene.target.distance(est.cloud.points.astype(np.float64))
    assert distance.max() <= 0.003, f'worst cloud point {1000 * distance.max():.1f} mm off'


def test_noisy_far_surface_keeps_its_points():
    scene = depth_scenes.board_before_wall(distance_m=2.5, wall_m=4.0)
    rendered = depth_scenes.render(scene)
    clean = _estimate(scene, rendered.mask, rendered.depth_m).cloud_points
    noisy = pick_scenes.sensor_depth(rendered.depth_m, 0.002, 1)
    assert _estimate(scene, rendered.mask, noisy).cloud_points >= 0.9 * clean
    # The old test (no noise allowance) drops about 30 % of them.
    strict = _estimate(scene, rendered.mask, noisy, depth_noise_at_1m=0.0)
    assert strict.cloud_points < 0.8 * clean


@pytest.mark.parametrize('sigma_mm', [1, 2, 3])
def test_noise_does_not_inflate_the_box(sweep, sigma_mm):
    scene, rendered = sweep[45]
    z = float(scene.target.centre[2])
    depth = pick_scenes.sensor_depth(rendered.depth_m, sigma_mm / 1000.0 / z**2, 7)
    box = _estimate(scene, rendered.mask, depth).box
    assert _size_error(box, scene.target) <= 0.03


def test_previous_pose_names_the_axes():
    """With a reference the axes keep the reference's names, whatever face dominates."""
    rotation = np.eye(3)[:, [1, 2, 0]]  # columns: a box's axes in some order
    size = np.array([0.1, 0.2, 0.3])
    centre = np.array([0.0, 0.0, 1.0])
    reference = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    named, sizes = label_axes(rotation, size, centre, reference=reference)
    assert np.allclose(named, reference)
    assert sizes == pytest.approx([0.1, 0.3, 0.2])  # each extent stays with its axis


def test_every_tolerance_is_a_setting():
    flt = TargetSettings(depth_noise_at_1m=0.004, cloud_min_part_fraction=0.5).surface_filter()
    assert isinstance(flt, SurfaceFilter)
    assert flt.step_m(2.0, 1000.0) > TargetSettings().surface_filter().step_m(2.0, 1000.0)
    assert TargetSettings(box_plane_tolerance_m=0.001).plane_tolerance_m(2.0) == pytest.approx(
        3 * 0.002 * 4
    )
    with pytest.raises(ValueError, match='min_part_fraction'):
        TargetSettings(cloud_min_part_fraction=0.0).surface_filter()


def test_regions_are_four_connected_and_breaks_are_the_far_side():
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:3, 1:4] = True
    mask[3, 3] = True
    mask[4, 4:7] = True  # touches the first region only diagonally
    labels, count = label_regions(mask)
    assert count == 2
    image = np.full(mask.shape, -1)
    image[mask] = labels
    assert image[1, 1] == image[3, 3] == 0 and image[4, 5] == 1
    depth = np.full((3, 4), 1.0, dtype=np.float32)
    depth[:, 2:] = 1.1
    depth[0, 0] = np.nan
    breaks = depth_breaks(depth, 0.05)
    assert breaks[:, 2].all() and not breaks[:, [0, 1, 3]].any()


def test_support_names_z_and_the_previous_pose_names_x():
    """Up decides z even when the reference disagrees; the reference then decides x."""
    rotation, size = np.eye(3), np.array([0.1, 0.2, 0.3])
    centre = np.array([0.0, 1.0, 1.0])
    up = np.array([0.0, -1.0, 0.0])
    named, sizes = label_axes(rotation, size, centre, up=up)
    assert np.allclose(named[:, 2], [0, -1, 0]) and np.allclose(named[:, 0], [0, 0, 1])
    assert sizes == pytest.approx([0.3, 0.1, 0.2])  # x the longer side without a reference
    reference = np.diag([-1.0, 1.0, -1.0])  # z along the line of sight, x = -x
    assert np.linalg.det(reference) == pytest.approx(1.0)
    named, sizes = label_axes(rotation, size, centre, up=up, reference=reference)
    assert np.allclose(named[:, 2], [0, -1, 0]) and np.allclose(named[:, 0], [-1, 0, 0])
    assert sizes == pytest.approx([0.1, 0.3, 0.2])


def test_box_memory_follows_persistent_targets_only():
    from evf_sam_ros.pipeline import BoxMemory, NamedTarget, TargetOutput
    from evf_sam_ros.target3d.box3d import OrientedBox
    from evf_sam_ros.target3d.estimate import TargetEstimate

    def output(target_id, rotation):
        box = OrientedBox(np.zeros(3), rotation, np.ones(3), 10)
        estimate = TargetEstimate(True, (0.0, 0.0, 1.0), None, 10, box)
        return TargetOutput(NamedTarget(target_id, 'a box'), None, estimate, None)

    memory, turned = BoxMemory(), np.diag([-1.0, -1.0, 1.0])
    memory.update([output(3, np.eye(3)), output(-1, turned)])  # -1: a one-shot request
    assert np.array_equal(memory.get(3), np.eye(3)) and memory.get(-1) is None
    memory.update([output(3, turned)])
    assert np.array_equal(memory.get(3), turned)
    memory.update([output(4, np.eye(3))])  # target 3 removed
    assert memory.get(3) is None and memory.get(4) is not None

"""The target's cloud and box on ray-cast depth scenes of known geometry (1280x720).

Scenes (synthetic.depth_scenes; the depth of an edge pixel is the mean of its 2x2 rays, so
silhouettes carry mixed depths like a real sensor's):

* box_on_table: a 20 x 12 x 8 cm box turned 30 degrees on a table, seen from 0.65 m about 45
  degrees from above. Its top and two sides show, so the box of the visible surface IS the
  object's box: centre, size and axes are compared with the object's.
* can_on_table: a can (r 3.5 cm, 12 cm tall), lid and front wall visible: again the full
  object (2r x 2r x height); only its axis is defined (round about it).
* board_before_wall: a 5 x 30 x 1.2 cm board 0.8 m away, turned 25 degrees, a wall at 2 m.
  The camera sees its front face and a sliver of one edge: the box is the front face's
  (5 x 30 cm) with a z extent between 0 and the board's thickness, its centre between the
  front face and the board's middle.

Tolerances are the issue's: centre within 1 cm, size within 5 %, axes within 5 degrees; no
cloud point farther than 3 mm from the object's surface (no background).
"""

import math

import numpy as np
import pytest

from evf_sam_ros.codecs.depth import depth_array_to_metres
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.synthetic import depth_scenes
from evf_sam_ros.target3d.estimate import TargetSettings, estimate_target

SURFACE_TOLERANCE_M = 0.003


@pytest.fixture(scope='module')
def scenes():
    """Each scene rendered once (about a second each on the development machine)."""
    made = {
        'box': depth_scenes.box_on_table(),
        'can': depth_scenes.can_on_table(),
        'board': depth_scenes.board_before_wall(),
    }
    return {name: (scene, depth_scenes.render(scene)) for name, scene in made.items()}


def _result(mask):
    return SegmentationResult(
        prompt='target',
        mask=mask,
        logits=np.where(mask, 5.0, -5.0),
        score=0.9,
        object_score=None,
        bbox=mask_bbox(mask),
        centroid=mask_centroid(mask),
        area=int(mask.sum()),
    )


def _as_encoding(depth_m, encoding):
    """The rendered depth as a camera would send it, read back through conversions."""
    if encoding == '16UC1':
        raw = np.where(np.isfinite(depth_m), np.rint(depth_m * 1000.0), 0).astype(np.uint16)
    else:
        raw = depth_m.astype(np.float32)
    return depth_array_to_metres(raw, encoding)


def _punch_holes(depth_m, encoding, seed=1, count=40):
    """Discs of no reading (0 in 16UC1; NaN or 0 in 32FC1) all over the image."""
    rng = np.random.default_rng(seed)
    out = depth_m.copy()
    rows, cols = np.mgrid[0 : out.shape[0], 0 : out.shape[1]]
    box = mask_bbox(np.isfinite(out))
    for i in range(count):
        u, v = rng.integers(box[0], box[2]), rng.integers(box[1], box[3])
        radius = rng.uniform(2, 8)
        hole = (cols - u) ** 2 + (rows - v) ** 2 <= radius**2
        out[hole] = 0.0 if encoding == '16UC1' or i % 2 else np.nan
    return out


def _estimate(scene, rendered, encoding='32FC1', holes=False, mask=None, **settings):
    depth = rendered.depth_m
    if holes:
        depth = _punch_holes(depth, encoding)
    depth = _as_encoding(depth, encoding)
    mask = rendered.mask if mask is None else mask
    return estimate_target(
        _result(mask), TargetSettings(**settings), depth, scene.intrinsics, rendered.rgb
    )


def _angle_deg(a, b):
    """Angle between two directions, ignoring sign (axes), in degrees."""
    cosine = abs(float(np.dot(a, b))) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(cosine, 1.0)))


def _check_frame(box):
    r = box.rotation
    assert np.allclose(r.T @ r, np.eye(3), atol=1e-9) and np.linalg.det(r) == pytest.approx(1.0)
    assert r[:, 2] @ box.centre < 0, 'z must point towards the camera'
    assert box.size[0] >= box.size[1], 'x is the longer side of the dominant face'


def _check_no_background(estimate, target):
    distance = target.distance(estimate.cloud.points.astype(np.float64))
    assert distance.max() <= SURFACE_TOLERANCE_M, (
        f'{np.sum(distance > SURFACE_TOLERANCE_M)} points off the object, worst {distance.max()}'
    )


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
@pytest.mark.parametrize('holes', [False, True])
def test_box_on_table_gives_the_object_box(scenes, encoding, holes):
    scene, rendered = scenes['box']
    estimate = _estimate(scene, rendered, encoding, holes)
    box, truth = estimate.box, scene.target
    _check_frame(box)
    assert np.linalg.norm(box.centre - truth.centre) <= 0.01
    # Its top face is the most visible: z is the box's up axis, x its 20 cm side.
    assert _angle_deg(box.rotation[:, 2], truth.rotation[:, 2]) <= 5.0
    assert _angle_deg(box.rotation[:, 0], truth.rotation[:, 0]) <= 5.0
    assert box.size == pytest.approx(truth.size, rel=0.05)
    assert box.point_count == estimate.cloud_points
    assert len(estimate.cloud) == min(estimate.cloud_points, TargetSettings.cloud_max_points)
    _check_no_background(estimate, truth)
    if holes:
        assert estimate.cloud_points < _estimate(scene, rendered, encoding).cloud_points


def test_box_on_table_with_sensor_noise(scenes):
    """1 mm (1 sigma) depth noise, as a stereo camera has at 0.65 m. Noise widens each extent
    by about 2 sigma per side (the extreme points of a face are its noisiest), so sizes get
    4 sigma on top of the 5 %; centre and axes keep the issue's tolerances.
    """
    sigma = 0.001
    scene, rendered = scenes['box']
    noise = np.random.default_rng(3).normal(0.0, sigma, rendered.depth_m.shape)
    noisy = depth_scenes.Rendered(
        (rendered.depth_m + noise).astype(np.float32), rendered.mask, rendered.rgb
    )
    box = _estimate(scene, noisy).box
    assert np.linalg.norm(box.centre - scene.target.centre) <= 0.01
    assert _angle_deg(box.rotation[:, 2], scene.target.rotation[:, 2]) <= 5.0
    assert _angle_deg(box.rotation[:, 0], scene.target.rotation[:, 0]) <= 5.0
    assert np.all(np.abs(box.size - scene.target.size) <= 0.05 * scene.target.size + 4 * sigma)


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
@pytest.mark.parametrize('holes', [False, True])
def test_can_gives_its_axis_and_size(scenes, encoding, holes):
    scene, rendered = scenes['can']
    estimate = _estimate(scene, rendered, encoding, holes)
    box, can = estimate.box, scene.target
    _check_frame(box)
    assert np.linalg.norm(box.centre - can.centre) <= 0.01
    along = int(np.argmin([_angle_deg(box.rotation[:, i], can.axis) for i in range(3)]))
    assert _angle_deg(box.rotation[:, along], can.axis) <= 5.0
    expected = np.full(3, 2 * can.radius)
    expected[along] = can.length
    assert box.size == pytest.approx(expected, rel=0.05)
    _check_no_background(estimate, can)


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
@pytest.mark.parametrize('holes', [False, True])
def test_thin_board_before_far_wall(scenes, encoding, holes):
    scene, rendered = scenes['board']
    board = scene.target
    # The segmenter's mask spills 3 pixels onto the wall all round.
    mask = rendered.mask.copy()
    for _ in range(3):
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        mask = grown
    estimate = _estimate(scene, rendered, encoding, holes, mask=mask)
    _check_no_background(estimate, board)
    assert estimate.cloud.points[:, 2].max() < 1.0  # the wall is at 2 m
    box = estimate.box
    _check_frame(box)
    front_normal = -board.rotation[:, 2]  # the board's face that looks at the camera
    assert _angle_deg(box.rotation[:, 2], front_normal) <= 5.0
    assert _angle_deg(box.rotation[:, 0], board.rotation[:, 1]) <= 5.0  # its 30 cm side
    assert box.size[:2] == pytest.approx([board.size[1], board.size[0]], rel=0.05)
    assert 0.0 <= box.size[2] <= board.size[2]
    front_centre = board.centre + front_normal * board.size[2] / 2
    assert np.linalg.norm(box.centre - front_centre) <= 0.01
    assert np.linalg.norm(box.centre - board.centre) <= 0.01


def test_mixed_pixels_exist_and_are_dropped(scenes):
    """The scene's edge pixels do carry mixed depths; the surface filter removes them."""
    scene, rendered = scenes['board']
    from evf_sam_ros.target3d.geometry import deproject_pixels

    v, u = np.nonzero(rendered.mask)
    raw = deproject_pixels(u, v, rendered.depth_m[v, u], scene.intrinsics)
    off = scene.target.distance(raw.astype(np.float64)) > SURFACE_TOLERANCE_M
    assert off.sum() > 20  # mixed pixels inside the ground-truth mask itself
    estimate = _estimate(scene, rendered)
    _check_no_background(estimate, scene.target)
    assert estimate.cloud_points >= 0.9 * len(u)  # and little else is lost


def test_without_cloud_the_box_is_the_same(scenes):
    scene, rendered = scenes['box']
    result = _result(rendered.mask)
    with_cloud = estimate_target(
        result, TargetSettings(), rendered.depth_m, scene.intrinsics, rendered.rgb
    )
    without = estimate_target(
        result,
        TargetSettings(),
        rendered.depth_m,
        scene.intrinsics,
        rendered.rgb,
        with_cloud=False,
    )
    assert without.cloud is None and with_cloud.cloud is not None
    assert np.array_equal(without.box.centre, with_cloud.box.centre)
    assert np.array_equal(without.box.rotation, with_cloud.box.rotation)
    assert without.point == with_cloud.point and without.cloud_points == with_cloud.cloud_points


def test_cloud_colours_come_from_the_image(scenes):
    scene, rendered = scenes['can']
    estimate = _estimate(scene, rendered)
    cloud = estimate.cloud
    assert cloud.colours.dtype == np.uint8 and cloud.colours.shape == cloud.points.shape
    # The can is red: every point's colour is the can's shaded red, none the table's brown.
    assert np.all(cloud.colours[:, 0] > 2 * cloud.colours[:, 1])


def test_voxel_size_and_cap_thin_the_published_cloud_only(scenes):
    scene, rendered = scenes['box']
    full = _estimate(scene, rendered)
    voxel = _estimate(scene, rendered, cloud_voxel_size=0.01)
    capped = _estimate(scene, rendered, cloud_max_points=1000)
    assert len(capped.cloud) == 1000 and len(voxel.cloud) < len(full.cloud) / 10
    for est in (voxel, capped):
        assert est.cloud_points == full.cloud_points
        assert np.array_equal(est.box.centre, full.box.centre)
    # One point per occupied 1 cm voxel, each the mean of points inside it.
    cells = np.floor(voxel.cloud.points / np.float32(0.01)).astype(np.int64)
    assert len(np.unique(cells, axis=0)) == len(cells)
    _check_no_background(voxel, scene.target)

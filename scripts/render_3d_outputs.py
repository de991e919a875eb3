"""Render docs/images/3d_outputs.png: what RViz would show of the 3D outputs (PIL only).

    python scripts/render_3d_outputs.py [--out docs/images/3d_outputs.png]

A ray-cast tabletop (evf_sam_ros.synthetic.depth_scenes) with two targets, a box and a can, each
segmented by its ground-truth mask and run through targets.estimate_target. Left: the
camera image with each target's box (edges), axes (x red, y green, z blue, 5 cm), 3D point
and label, projected with the camera's intrinsics. Right: the same outputs seen from a
virtual camera to the right and above: the coloured target clouds (target_cloud), the boxes
and poses (target_pose), as the markers topic draws them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.synthetic import depth_scenes as ds
from evf_sam_ros.target3d.estimate import TargetSettings, estimate_target
from evf_sam_ros.target3d.geometry import CameraIntrinsics

COLOURS = ((30, 144, 255), (255, 160, 0))
AXIS_COLOURS = ((230, 40, 40), (40, 200, 40), (60, 90, 255))
CORNERS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)]) / 2
FONT = ImageFont.load_default(size=22)
EDGES = [
    (a, b)
    for a in range(8)
    for b in range(a + 1, 8)
    if np.count_nonzero(CORNERS[a] != CORNERS[b]) == 1
]


EYE, LOOK = np.array([0.05, -0.45, 0.50]), np.array([0.0, 0.05, 0.04])  # world, z up
WORLD_FROM_CAM = ds.look_at(EYE, LOOK)


def _scenes() -> list[ds.Scene]:
    """A box and a can on a table, each scene with one of them as the target."""

    def cam(p):
        return (np.asarray(p, float) - EYE) @ WORLD_FROM_CAM

    box = ds.Cuboid(
        cam([-0.08, 0.06, 0.04]),
        WORLD_FROM_CAM.T @ ds.rotation_z(25),
        np.array([0.18, 0.10, 0.08]),
    )
    can = ds.Cylinder(
        cam([0.11, 0.0, 0.06]), np.array([0.0, 0.0, 1.0]) @ WORLD_FROM_CAM, 0.035, 0.12
    )
    table = ds.Plane(cam([0, 0, 0]), np.array([0.0, 0.0, 1.0]) @ WORLD_FROM_CAM)
    return [ds.Scene(box, (can, table)), ds.Scene(can, (box, table))]


def _project(points: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    return np.stack(
        [
            intr.fx * points[:, 0] / points[:, 2] + intr.cx,
            intr.fy * points[:, 1] / points[:, 2] + intr.cy,
        ],
        axis=1,
    )


def _draw_target(
    draw: ImageDraw.ImageDraw,
    view: np.ndarray,
    intr: CameraIntrinsics,
    estimate,
    colour,
    label: str,
) -> None:
    """Box edges, axes, point and label of one target, in a view's optical frame."""
    box = estimate.box
    to_view = lambda p: (np.atleast_2d(p) @ view[:3, :3].T) + view[:3, 3]  # noqa: E731
    corners = _project(to_view(box.centre + (CORNERS * box.size) @ box.rotation.T), intr)
    for a, b in EDGES:
        draw.line([tuple(corners[a]), tuple(corners[b])], fill=colour, width=3)
    origin = _project(to_view(box.centre), intr)[0]
    for axis in range(3):
        tip = _project(to_view(box.centre + 0.05 * box.rotation[:, axis]), intr)[0]
        draw.line([tuple(origin), tuple(tip)], fill=AXIS_COLOURS[axis], width=4)
    u, v = _project(to_view(np.array(estimate.point)), intr)[0]
    draw.ellipse([u - 6, v - 6, u + 6, v + 6], fill=colour, outline=(255, 255, 255))
    top = corners[:, 1].min()
    draw.rectangle(
        [origin[0] - 4, top - 32, origin[0] + 11 * len(label), top - 6], fill=(24, 24, 24)
    )
    draw.text((origin[0], top - 30), label, fill=(255, 255, 255), font=FONT)


def _side_view() -> np.ndarray:
    """4x4 transform from the camera's optical frame to a virtual camera's that looks down
    at the table from above and to the right.
    """
    eye, look = np.array([0.35, -0.10, 0.70]), np.array([0.02, 0.03, 0.03])
    world_from_virtual = ds.look_at(eye, look)
    rotation = world_from_virtual.T @ WORLD_FROM_CAM  # optical -> virtual
    view = np.eye(4)
    view[:3, :3], view[:3, 3] = rotation, world_from_virtual.T @ (EYE - eye)
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='docs/images/3d_outputs.png')
    args = parser.parse_args()
    scenes = _scenes()
    rendered = ds.render(scenes[0])
    intr = scenes[0].intrinsics
    estimates = []
    for scene, name in zip(scenes, ('the blue box', 'the red can')):
        mask = ds.render(scene).mask
        result = SegmentationResult(
            name,
            mask,
            np.zeros(mask.shape, np.float32),
            0.93,
            None,
            mask_bbox(mask),
            mask_centroid(mask),
            int(mask.sum()),
        )
        estimates.append(
            (name, estimate_target(result, TargetSettings(), rendered.depth_m, intr, rendered.rgb))
        )
    left = Image.fromarray(rendered.rgb)
    draw = ImageDraw.Draw(left)
    for (name, est), colour in zip(estimates, COLOURS):
        _draw_target(draw, np.eye(4), intr, est, colour, f'{name} (0.93)')
    right = Image.new('RGB', left.size, (40, 40, 48))
    draw = ImageDraw.Draw(right)
    view = _side_view()
    for _, est in estimates:
        pts = est.cloud.points @ view[:3, :3].T + view[:3, 3]
        uv = np.rint(_project(pts, intr)).astype(int)
        order = np.argsort(-pts[:, 2])  # far first
        for (u, v), c in zip(uv[order], est.cloud.colours[order]):
            draw.rectangle([u - 1, v - 1, u + 1, v + 1], fill=tuple(int(x) for x in c))
    for (name, est), colour in zip(estimates, COLOURS):
        _draw_target(draw, view, intr, est, colour, name)
    for index, (name, est) in enumerate(estimates):
        size = ' x '.join(f'{100 * s:.1f}' for s in est.box.size)
        draw.text(
            (20, 20 + 28 * index),
            f'{name}: box {size} cm, {est.cloud_points} points',
            fill=(255, 255, 255),
            font=FONT,
        )
    draw.text(
        (20, left.size[1] - 64),
        'seen from above right: target_cloud (points), markers (box, point, label),',
        fill=(220, 220, 220),
        font=FONT,
    )
    draw.text(
        (20, left.size[1] - 36),
        'target_pose (axes: x red, y green, z blue); only the camera-facing surfaces are seen',
        fill=(220, 220, 220),
        font=FONT,
    )
    sheet = Image.new('RGB', (left.size[0] * 2, left.size[1]))
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.size[0], 0))
    sheet = sheet.resize((sheet.size[0] * 3 // 4, sheet.size[1] * 3 // 4), Image.LANCZOS)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(
        f'wrote {args.out}: '
        + '; '.join(
            f'{n}: centre {np.round(e.box.centre, 3).tolist()} m, size '
            f'{np.round(e.box.size, 3).tolist()} m'
            for n, e in estimates
        )
    )


if __name__ == '__main__':
    main()

"""Render docs/images/3d_outputs.png: what RViz would show of the 3D outputs (PIL only).

    python scripts/render_3d_outputs.py [--out docs/images/3d_outputs.png]
    python scripts/render_3d_outputs.py --pick [--out docs/images/pick_and_place.png]

With --pick: "pick up the mug" and "the plate" on a ray-cast table; the mug's grasp
candidates (arrows along the approach ending at the grasp, the jaws' opening; the suction
cup as a circle) and the plate's place surface (its extents and normal), from
target3d.pick.pick_target, over the camera image.

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
from evf_sam_ros.synthetic.pick_scenes import Compound, mask_result
from evf_sam_ros.target3d.estimate import TargetSettings, estimate_target
from evf_sam_ros.target3d.geometry import CameraIntrinsics
from evf_sam_ros.target3d.grasps import SUCTION
from evf_sam_ros.target3d.pick import PickSettings, pick_target

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


def _pick_scenes() -> list[ds.Scene]:
    """A mug (body and handle) and a plate on a table, each scene with one as the target."""

    def cam(p):
        return (np.asarray(p, float) - EYE) @ WORLD_FROM_CAM

    up = np.array([0.0, 0.0, 1.0]) @ WORLD_FROM_CAM
    body = ds.Cylinder(cam([-0.09, 0.02, 0.05]), up, 0.04, 0.10)
    bars = (
        ((-0.035, 0.02, 0.075), (0.03, 0.012, 0.01)),
        ((-0.035, 0.02, 0.025), (0.03, 0.012, 0.01)),
    )
    bars += (((-0.025, 0.02, 0.05), (0.01, 0.012, 0.06)),)
    handle = tuple(ds.Cuboid(cam(c), WORLD_FROM_CAM.T, np.asarray(s)) for c, s in bars)
    mug = Compound((body,) + handle)
    plate = ds.Cylinder(cam([0.10, 0.06, 0.01]), up, 0.11, 0.02, (235, 235, 230))
    table = ds.Plane(cam([0, 0, 0]), up)
    return [ds.Scene(mug, (plate, table)), ds.Scene(plate, (mug, table))]


def _draw_pick(draw: ImageDraw.ImageDraw, intr: CameraIntrinsics, picked, colour, grasps) -> None:
    """Grasp candidates (arrow, opening), or the place surface (outline, normal)."""
    for grasp in picked.grasps[:3] if grasps else []:
        x, z, p = grasp.rotation[:, 0], grasp.rotation[:, 2], grasp.position
        start, end = _project(np.stack([p - 0.08 * z, p]), intr)
        draw.line([tuple(start), tuple(end)], fill=colour, width=5)
        draw.ellipse([end[0] - 5, end[1] - 5, end[0] + 5, end[1] + 5], fill=colour)
        if grasp.kind == SUCTION:
            ring = [
                p + grasp.width / 2 * (np.cos(a) * x + np.sin(a) * grasp.rotation[:, 1])
                for a in np.linspace(0, 2 * np.pi, 25)
            ]
            draw.line([tuple(q) for q in _project(np.array(ring), intr)], fill=colour, width=3)
            continue
        half, back = x * grasp.width / 2, z * 0.015
        for side in (-1, 1):
            a, b = _project(np.stack([p + side * half - back, p + side * half + back]), intr)
            draw.line([tuple(a), tuple(b)], fill=(255, 255, 255), width=5)
    if picked.place is not None and not grasps:
        place = picked.place
        corners = [
            place.centre
            + (
                sx * place.size[0] * place.rotation[:, 0]
                + sy * place.size[1] * place.rotation[:, 1]
            )
            / 2
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))
        ]
        draw.line(
            [tuple(q) for q in _project(np.array(corners), intr)], fill=(60, 220, 90), width=4
        )
        a, b = _project(np.stack([place.centre, place.centre + 0.06 * place.rotation[:, 2]]), intr)
        draw.line([tuple(a), tuple(b)], fill=(60, 220, 90), width=5)


def pick_sheet(out: str) -> None:
    """docs/images/pick_and_place.png (see the module docstring)."""
    scenes = _pick_scenes()
    rendered = ds.render(scenes[0])
    intr = scenes[0].intrinsics
    image = Image.fromarray(rendered.rgb)
    draw = ImageDraw.Draw(image)
    lines = []
    for scene, name, colour in zip(scenes, ('pick up the mug', 'the plate'), COLOURS):
        mask = ds.render(scene).mask
        result = mask_result(mask, name, 0.93)
        settings = TargetSettings()
        est = estimate_target(result, settings, rendered.depth_m, intr, rendered.rgb)
        picked = pick_target(est, mask, intr, settings, PickSettings())
        first = not lines
        _draw_pick(draw, intr, picked, colour, first)
        if first:
            kinds = ', '.join(
                f'{("parallel jaw", "suction")[g.kind]} {100 * g.width:.1f} cm ({g.score:.2f})'
                for g in picked.grasps[:3]
            )
            lines.append(f'"{name}": grasps {kinds}')
        else:
            size = picked.place.size
            lines.append(f'"{name}": place surface {100 * size[0]:.0f} x {100 * size[1]:.0f} cm')
    for index, text in enumerate(lines):
        draw.rectangle(
            [14, 14 + 30 * index, 20 + 11 * len(text), 42 + 30 * index], fill=(24, 24, 24)
        )
        draw.text((20, 16 + 30 * index), text, fill=(255, 255, 255), font=FONT)
    image = image.resize((image.size[0] * 3 // 4, image.size[1] * 3 // 4), Image.LANCZOS)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f'wrote {out}: ' + '; '.join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None)
    parser.add_argument('--pick', action='store_true', help='the pick-and-place picture')
    args = parser.parse_args()
    if args.pick:
        pick_sheet(args.out or 'docs/images/pick_and_place.png')
        return
    args.out = args.out or 'docs/images/3d_outputs.png'
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

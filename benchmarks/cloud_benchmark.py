"""Cost of the 3D outputs per target at 1280x720 (a benchmark, not a test).

    python benchmarks/cloud_benchmark.py [--repeats 200] [--json out.json]

Scenes from evf_sam_ros.synthetic.depth_scenes (ray cast, 1280x720, RealSense-like intrinsics), the
ground-truth mask as the segmentation. Per scene, milliseconds of CPU time (min and
median of the repeats) and of wall time (min), single thread, after a warm-up:

  point only       targets.estimate_target before the 3D outputs existed: geometry.target_point
  + box            estimate_target(with_cloud=False) minus "point only": the surface filter and
                   the box the Segmentation message carries (always computed)
  + cloud          estimate_target(with_cloud=True) minus with_cloud=False (skipped while no
                   one subscribes to target_cloud)
  PointCloud2      messages.point_cloud2_msg of that cloud (only while subscribed)
  pose + markers   messages.pose_stamped_msg + markers.target_markers (only while subscribed)
  added, all on    everything above except "point only": the issue's budget is 2 ms
  + pick           issue 16: target3d.pick.pick_target (grasp candidates, place surface,
                   instances) after estimate_target
  pick messages    pipeline.pick_messages (GraspCandidateArray, the Segmentation's place and
                   instance fields) + markers.pick_markers (only while subscribed)
  issue 16, all on "+ pick" + "pick messages": the issue's budget is 3 ms
The same with cloud_voxel_size = 5 mm is reported as "+ cloud (5 mm voxels)".  The "+ box"
column includes issue 16's surface work (depth breaks, support plane, denoised extents).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np

from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.synthetic import depth_scenes, pick_scenes
from evf_sam_ros.target3d.estimate import TargetSettings, estimate_target
from evf_sam_ros.target3d.geometry import target_point
from evf_sam_ros.target3d.pick import PickSettings, pick_target

STATS = ('cpu min', 'cpu median', 'wall min')


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(min, median) of the thread's CPU time and min wall time, in milliseconds, of
    ``repeats`` calls after 3 warm-up calls. CPU time leaves out the time other processes
    held the core (the development machine is shared); wall time includes it.
    """
    for _ in range(3):
        fn()
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000.0)
        wall.append((time.perf_counter() - start_wall) * 1000.0)
    return min(cpu), statistics.median(cpu), min(wall)


def _scene_rows(name: str, scene: Any, repeats: int) -> dict[str, Any]:
    from std_msgs.msg import Header

    from evf_sam_msgs.msg import Segmentation
    from evf_sam_ros.pipeline.markers import pick_markers, target_markers
    from evf_sam_ros.pipeline.messages import point_cloud2_msg, pose_stamped_msg
    from evf_sam_ros.pipeline.pick_messages import fill_pick, grasp_array_msg

    rendered = depth_scenes.render(scene)
    mask, depth, rgb, intr = rendered.mask, rendered.depth_m, rendered.rgb, scene.intrinsics
    result = SegmentationResult(
        'target',
        mask,
        np.zeros(mask.shape, np.float32),
        0.9,
        None,
        mask_bbox(mask),
        mask_centroid(mask),
        int(mask.sum()),
    )
    settings, voxel = TargetSettings(), TargetSettings(cloud_voxel_size=0.005)
    full = estimate_target(result, settings, depth, intr, rgb)
    header = Header(frame_id='camera_color_optical_frame')
    pick = PickSettings()
    picked = pick_target(full, mask, intr, settings, pick)
    times = {
        'point': _timed(
            lambda: target_point(
                mask,
                depth,
                intr,
                settings.erode_iterations,
                settings.min_depth_m,
                settings.max_depth_m,
                settings.min_valid_fraction,
            ),
            repeats,
        ),
        'box': _timed(lambda: estimate_target(result, settings, depth, intr, rgb, False), repeats),
        'cloud': _timed(lambda: estimate_target(result, settings, depth, intr, rgb), repeats),
        'voxel': _timed(lambda: estimate_target(result, voxel, depth, intr, rgb), repeats),
        'pc2': _timed(lambda: point_cloud2_msg(header, full.cloud), repeats),
        'markers': _timed(
            lambda: (
                pose_stamped_msg(header, full.box),
                target_markers(header, 0, 'target', 0.9, full.box, full.point),
            ),
            repeats,
        ),
        'pick': _timed(lambda: pick_target(full, mask, intr, settings, pick), repeats),
        'pick msgs': _timed(
            lambda: (
                grasp_array_msg(header, [(0, picked)]),
                fill_pick(Segmentation(), picked),
                pick_markers(header, 0, picked),
            ),
            repeats,
        ),
    }
    row: dict[str, Any] = {
        'scene': name,
        'mask_pixels': int(mask.sum()),
        'surface_points': full.cloud_points,
        'cloud_points': len(full.cloud),
        'grasps': len(picked.grasps),
        'instances': len(picked.instances),
    }
    for i, stat in enumerate(STATS):
        t = {k: v[i] for k, v in times.items()}
        row[stat] = {
            'point only': t['point'],
            '+ box': t['box'] - t['point'],
            '+ cloud': t['cloud'] - t['box'],
            '+ cloud (5 mm voxels)': t['voxel'] - t['box'],
            'PointCloud2': t['pc2'],
            'pose + markers': t['markers'],
            'added, all on': t['cloud'] - t['point'] + t['pc2'] + t['markers'],
            '+ pick': t['pick'],
            'pick messages': t['pick msgs'],
            'issue 16, all on': t['pick'] + t['pick msgs'],
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    scenes = {
        'box_on_table': depth_scenes.box_on_table(),
        'can_on_table': depth_scenes.can_on_table(),
        'board_before_wall': depth_scenes.board_before_wall(),
        'mug_on_table': pick_scenes.mug_on_table(),
        'plate_on_table': pick_scenes.plate_on_table(),
        'two_cans': pick_scenes.two_cans(),
    }
    rows = [_scene_rows(name, scene, args.repeats) for name, scene in scenes.items()]
    meta = {
        'machine': f'{platform.machine()} {os.cpu_count()} cores, {platform.processor()}',
        'load_average_1min': os.getloadavg()[0],
        'numpy': np.__version__,
        'repeats': args.repeats,
        'image': '1280x720',
    }
    print(json.dumps(meta))
    for stat in STATS:
        print(f'\n{stat} ms | ' + ' | '.join(rows[0][stat]))
        for row in rows:
            print(
                f'{row["scene"]} ({row["mask_pixels"]} px, {row["surface_points"]} surface, '
                f'{row["cloud_points"]} published) | '
                + ' | '.join(f'{v:.3f}' for v in row[stat].values())
            )
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'meta': meta, 'rows': rows}, f, indent=2)


if __name__ == '__main__':
    main()

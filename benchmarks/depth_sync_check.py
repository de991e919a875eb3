r"""Depth matching under CPU load (issue: "nearest depth is 0.199 s from the image" although every
depth image carried its colour image's stamp).

Publishes 640x480 rgb8 + aligned 16UC1 depth (identical stamps) + camera_info at 5 Hz to an
evf_sam_node process (tiny checkpoint) while ``--hogs`` processes keep the CPU busy, and
counts what the node reports: segmentations with a valid target_point, and the depth problems
it counted on /diagnostics. Run it once per --depth-wait to compare.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 ROS_DOMAIN_ID=77 \
      .venv/bin/python benchmarks/depth_sync_check.py --depth-wait 0.1 --frames 200 --hogs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'evf_sam_ros' / 'test'))


def _hog(stop: 'multiprocessing.synchronize.Event') -> None:
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1000003


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--depth-wait', type=float, default=0.5)
    p.add_argument('--frames', type=int, default=200)
    p.add_argument('--rate', type=float, default=5.0)
    p.add_argument('--hogs', type=int, default=2)
    args = p.parse_args()
    assert os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') == 'LOCALHOST', 'localhost only'
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from ros_harness import Client, diagnostics_values, wait_for
    from sensor_msgs.msg import CameraInfo, Image

    from evf_sam_msgs.msg import Segmentation
    from evf_sam_ros.codecs.image import array_to_imgmsg
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix='depth_sync_'))
    ckpt = write_tiny_checkpoint(tmp / 'ckpt', 'evf-sam2', image_size=1024)
    params = {
        'checkpoint': str(ckpt),
        'device': 'cpu',
        'prompt': 'the mug',
        'score_threshold': 0.0,
        'depth_wait': args.depth_wait,
        'depth_erode_iterations': 0,
        'diagnostics_period': 0.5,
        'publish_overlay': False,
    }
    (tmp / 'p.yaml').write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
    exe = Path(sys.executable).with_name('evf_sam_node')
    log = open(tmp / 'node.log', 'w')
    node = subprocess.Popen(
        [str(exe), '--ros-args', '-r', '__ns:=/dsync', '--params-file', str(tmp / 'p.yaml')],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    c = Client()
    segs = c.collect(Segmentation, '/dsync/segmentation')
    diags = c.collect(DiagnosticArray, '/diagnostics')
    wait_for(lambda: c.lifecycle_state('/dsync/evf_sam') == 'active', 120, 'the node')
    pubs = {
        t: c.publisher(m, f'/dsync/{t}')
        for t, m in (('image', Image), ('depth', Image), ('camera_info', CameraInfo))
    }
    for pub in pubs.values():
        wait_for(lambda: pub.get_subscription_count() > 0, 10, 'subscribers')
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    depth = np.full((480, 640), 1500, np.uint16)
    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320.0, 0, 500.0, 240.0, 0, 0, 1.0])
    stop = multiprocessing.Event()
    hogs = [multiprocessing.Process(target=_hog, args=(stop,)) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    start = time.monotonic()
    for i in range(args.frames):
        stamp_ns = 1000 * 10**9 + int(i * 1e9 / args.rate)  # camera stamps at the frame rate
        for name, msg in (
            ('image', array_to_imgmsg(rgb, 'rgb8')),
            ('depth', array_to_imgmsg(depth, '16UC1')),
            ('camera_info', info),
        ):
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            msg.header.frame_id = 'cam'
            pubs[name].publish(msg)
        time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    stop.set()
    for h in hogs:
        h.join()
    last = 1000 * 10**9 + int((args.frames - 1) * 1e9 / args.rate)
    wait_for(
        lambda: (
            any(s.header.stamp.sec * 10**9 + s.header.stamp.nanosec == last for s in segs)
            or time.monotonic() - start > args.frames / args.rate + 20
        ),
        30,
        'the last output',
    )
    time.sleep(1.5)  # one more /diagnostics period after the last frame
    values = diagnostics_values(diags, '/dsync/evf_sam') or {}
    node.terminate()
    node.wait(10)
    c.close()
    rclpy.try_shutdown()
    result = {
        'depth_wait_s': args.depth_wait,
        'frames_sent': args.frames,
        'hogs': args.hogs,
        'segmentations': len(segs),
        'with_target_point': sum(1 for s in segs if s.target_point_valid),
        'problems': {k: v for k, v in values.items() if k.startswith('problem.')},
        'gaps_logged_s': [
            line.split('nearest depth is ')[1].split(' s')[0]
            for line in (tmp / 'node.log').read_text().splitlines()
            if 'nearest depth is' in line
        ],
    }
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""``evf-sam-make-sample-bag``: write a small synthetic tabletop bag (no ROS install needed).

Topics (all frames share one header stamp per frame; frame_id ``camera_color_optical_frame``):

======================================== =========================== =========================
topic                                    type                        content
======================================== =========================== =========================
/camera/color/image_raw                  sensor_msgs/Image           rgb8 colour
/camera/color/image_raw/compressed       sensor_msgs/CompressedImage (instead, with --compressed)
/camera/aligned_depth_to_color/image_raw sensor_msgs/Image           16UC1 depth in mm, aligned
/camera/color/camera_info                sensor_msgs/CameraInfo      pinhole K, plumb_bob, D = 0
/command                                 std_msgs/String             "the red mug left of the plate"
/ground_truth/mask                       sensor_msgs/Image           mono8, 255 on the red mug
======================================== =========================== =========================

The command is recorded 1 ms before the first frame.  Bag times are the header stamps plus a
few milliseconds (as a recorder would see them).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image as PILImage

from .bagio import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, STRING, BagWriter, typestore
from .errors import ReplayError
from .scene import FRAME_ID, MUG_PROMPT, render_tabletop
from ..geometry import CameraIntrinsics

COLOR_TOPIC = '/camera/color/image_raw'
COMPRESSED_TOPIC = '/camera/color/image_raw/compressed'
DEPTH_TOPIC = '/camera/aligned_depth_to_color/image_raw'
INFO_TOPIC = '/camera/color/camera_info'
COMMAND_TOPIC = '/command'
GT_TOPIC = '/ground_truth/mask'
#: Header stamp of the first frame (2023-11-14T22:13:20Z), in nanoseconds.
START_NS = 1_700_000_000 * 1_000_000_000
_ENCODING_BYTES = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, '16UC1': 2, '32FC1': 4}


def _header(stamp: int, frame_id: str) -> Any:
    types = typestore().types
    time = types['builtin_interfaces/msg/Time'](sec=stamp // 1_000_000_000,
                                                 nanosec=stamp % 1_000_000_000)
    return types['std_msgs/msg/Header'](stamp=time, frame_id=frame_id)


def image_cdr(array: np.ndarray, encoding: str, stamp: int, frame_id: str = FRAME_ID) -> bytes:
    """CDR bytes of a sensor_msgs/Image holding ``array`` as-is (little-endian, no padding).

    array: HxW or HxWxC, its dtype and channel order already those of ``encoding``;
    unknown encodings are allowed (step = width x array bytes per pixel) for testing.
    stamp: header stamp in nanoseconds.
    """
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    msg = typestore().types[IMAGE](
        header=_header(stamp, frame_id), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=array.nbytes // max(height, 1),
        data=np.frombuffer(array.tobytes(), dtype=np.uint8))
    return bytes(typestore().serialize_cdr(msg, IMAGE))


def compressed_cdr(rgb: np.ndarray, stamp: int, fmt: str = 'jpeg',
                   frame_id: str = FRAME_ID) -> bytes:
    """CDR bytes of a sensor_msgs/CompressedImage of HxWx3 uint8 RGB (format "jpeg" or "png")."""
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format='JPEG' if fmt == 'jpeg' else 'PNG', quality=90)
    msg = typestore().types[COMPRESSED_IMAGE](
        header=_header(stamp, frame_id), format=fmt,
        data=np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    return bytes(typestore().serialize_cdr(msg, COMPRESSED_IMAGE))


def camera_info_cdr(intr: CameraIntrinsics, stamp: int, frame_id: str = FRAME_ID) -> bytes:
    """CDR bytes of a sensor_msgs/CameraInfo: K from ``intr``, no distortion, P = [K | 0]."""
    types = typestore().types
    k = np.array([intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1], dtype=np.float64)
    p = np.array([intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0], dtype=np.float64)
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
    msg = types[CAMERA_INFO](
        header=_header(stamp, frame_id), height=intr.height, width=intr.width,
        distortion_model='plumb_bob', d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=p,
        binning_x=0, binning_y=0, roi=roi)
    return bytes(typestore().serialize_cdr(msg, CAMERA_INFO))


def string_cdr(text: str) -> bytes:
    """CDR bytes of a std_msgs/String."""
    return bytes(typestore().serialize_cdr(typestore().types[STRING](data=text), STRING))


def write_sample_bag(out_dir: str | Path, storage: str = 'mcap', frames: int = 30,
                     size: tuple[int, int] = (640, 480), rate_hz: float = 10.0,
                     compressed: bool = False, supersample: int = 1,
                     prompt: str = MUG_PROMPT) -> Path:
    """Render ``frames`` frames of the tabletop scene at ``rate_hz`` into a new bag.

    Arguments:
        out_dir: bag directory to create (must not exist).
        storage: "mcap" or "sqlite3".
        size: (width, height) in pixels.
        compressed: write JPEG CompressedImage on ``COMPRESSED_TOPIC`` instead of rgb8.
        supersample: colour anti-aliasing of the renderer (1 is fast, 2 is prettier).

    Returns:
        The bag directory.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ReplayError(f'{str(out_dir)!r} already exists; choose a new directory')
    if frames < 1 or rate_hz <= 0:
        raise ReplayError(f'need frames >= 1 and rate > 0, got {frames} and {rate_hz}')
    period = int(round(1e9 / rate_hz))
    with BagWriter(out_dir, storage) as bag:
        bag.write(COMMAND_TOPIC, STRING, START_NS - 1_000_000, string_cdr(prompt))
        for index in range(frames):
            stamp = START_NS + index * period
            scene = render_tabletop(index * period / 1e9, size[0], size[1], supersample)
            if compressed:
                bag.write(COMPRESSED_TOPIC, COMPRESSED_IMAGE, stamp + 4_000_000,
                          compressed_cdr(scene.rgb, stamp))
            else:
                bag.write(COLOR_TOPIC, IMAGE, stamp + 4_000_000,
                          image_cdr(scene.rgb, 'rgb8', stamp))
            bag.write(INFO_TOPIC, CAMERA_INFO, stamp + 4_100_000,
                      camera_info_cdr(scene.intrinsics, stamp))
            bag.write(DEPTH_TOPIC, IMAGE, stamp + 6_000_000,
                      image_cdr(scene.depth_mm, '16UC1', stamp))
            gt = np.where(scene.gt_mask, np.uint8(255), np.uint8(0))
            bag.write(GT_TOPIC, IMAGE, stamp + 6_500_000, image_cdr(gt, 'mono8', stamp))
    return out_dir


def write_sample_image(path: str | Path, time_s: float = 0.0, size: tuple[int, int] = (640, 480),
                       supersample: int = 2) -> Path:
    """Save one rendered colour frame as an optimized PNG (the bundled sample image is
    ``write_sample_image("evf_sam_ros/data/sample_tabletop.png")``)."""
    path = Path(path)
    scene = render_tabletop(time_s, size[0], size[1], supersample)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(scene.rgb).save(path, optimize=True)
    return path


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WxH, e.g. 640x480, got {text!r}') from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f'size must be at least 8x8, got {text!r}')
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``evf-sam-make-sample-bag``; returns the exit code (2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog='evf-sam-make-sample-bag',
        description='Write a synthetic tabletop rosbag2 bag (colour, aligned depth, camera_info, '
                    'a command and ground-truth masks of the red mug).')
    parser.add_argument('out_dir', type=Path, nargs='?',
                        help='bag directory to create (must not exist)')
    parser.add_argument('--storage', choices=['mcap', 'sqlite3'], default='mcap')
    parser.add_argument('--frames', type=int, default=30, help='number of frames (default 30)')
    parser.add_argument('--rate', type=float, default=10.0, help='frame rate in Hz (default 10)')
    parser.add_argument('--size', type=_size, default=(640, 480), help='WxH (default 640x480)')
    parser.add_argument('--compressed', action='store_true',
                        help=f'write JPEG CompressedImage on {COMPRESSED_TOPIC} instead of rgb8')
    parser.add_argument('--supersample', type=int, default=None,
                        help='colour anti-aliasing: N x N rays per pixel (default 1 for the bag, '
                             '2 for --png)')
    parser.add_argument('--png', type=Path, help='also save frame 0 as this PNG')
    args = parser.parse_args(argv)
    if args.out_dir is None and args.png is None:
        parser.error('give OUT_DIR, --png PATH or both')
    try:
        if args.png is not None:
            print(f'wrote {write_sample_image(args.png, 0.0, args.size, args.supersample or 2)}')
        if args.out_dir is not None:
            path = write_sample_bag(args.out_dir, args.storage, args.frames, args.size, args.rate,
                                    args.compressed, args.supersample or 1)
            print(f'wrote {args.frames} frames to {path}')
    except (ReplayError, ValueError, OSError) as exc:
        print(f'evf-sam-make-sample-bag: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

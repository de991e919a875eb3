"""``evf-sam-make-sample-bag``: write a small synthetic tabletop bag (no ROS install needed).

Topics (one header stamp per frame, frame_id ``camera_color_optical_frame``):

* ``/camera/color/image_raw``: sensor_msgs/Image, rgb8 (with --compressed instead
  ``/camera/color/image_raw/compressed``, a JPEG sensor_msgs/CompressedImage);
* ``/camera/aligned_depth_to_color/image_raw``: sensor_msgs/Image, depth aligned to colour,
  16UC1 mm or 32FC1 m (with --depth-format compressedDepth instead ``.../compressedDepth``,
  image_transport's compressedDepth png in a sensor_msgs/CompressedImage);
* ``/camera/color/camera_info``: sensor_msgs/CameraInfo, pinhole K, plumb_bob, D = 0;
* ``/command``: std_msgs/String, "the red mug left of the plate";
* ``/ground_truth/mask``: sensor_msgs/Image, mono8, 255 on the red mug.

The mug slides towards the camera over the bag (``scene.mug_position``), so tracking has
something to follow.  The command is recorded 1 ms before the first frame.  Bag times are
the header stamps plus a few milliseconds (as a recorder would see them).  The bag is a
rosbag2 directory (mcap or sqlite3; zstd per file, per message or per mcap chunk) or a ROS 1
``.bag`` file (lz4 chunks optional), as ``bagio.open_writer`` writes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image as PILImage

from evf_sam_ros.replay.bagio import (
    BAG_FORMATS,
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    COMPRESSIONS,
    IMAGE,
    STORAGES,
    STRING,
    open_writer,
)

# The message builders live in .cdr; they are importable from here too (older callers).
from evf_sam_ros.replay.cdr import (
    camera_info_cdr,
    compressed_cdr,
    compressed_depth_cdr,
    image_cdr,
    string_cdr,
)
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.synthetic.tabletop import MUG_PROMPT, SceneFrame, render_tabletop

COLOR_TOPIC = '/camera/color/image_raw'
COMPRESSED_TOPIC = '/camera/color/image_raw/compressed'
DEPTH_TOPIC = '/camera/aligned_depth_to_color/image_raw'
COMPRESSED_DEPTH_TOPIC = DEPTH_TOPIC + '/compressedDepth'
#: How depth is recorded: sensor_msgs/Image, or image_transport's compressedDepth png.
DEPTH_FORMATS = ('raw', 'compressedDepth')
#: Depth encodings: 16UC1 millimetres (RealSense-like) or 32FC1 metres.
DEPTH_ENCODINGS = ('16UC1', '32FC1')
INFO_TOPIC = '/camera/color/camera_info'
COMMAND_TOPIC = '/command'
GT_TOPIC = '/ground_truth/mask'
#: Header stamp of the first frame (2023-11-14T22:13:20Z), in nanoseconds.
START_NS = 1_700_000_000 * 1_000_000_000


def _depth_message(
    scene: SceneFrame, stamp: int, depth_format: str, depth_encoding: str
) -> tuple[str, str, bytes]:
    """(topic, type, CDR bytes) of one frame's depth in the requested format and encoding."""
    depth = scene.depth_mm
    if depth_encoding == '32FC1':
        depth = np.where(depth > 0, depth.astype(np.float32) / np.float32(1000.0), np.nan)
        depth = depth.astype(np.float32)
    if depth_format == 'compressedDepth':
        return (
            COMPRESSED_DEPTH_TOPIC,
            COMPRESSED_IMAGE,
            compressed_depth_cdr(depth, depth_encoding, stamp),
        )
    return DEPTH_TOPIC, IMAGE, image_cdr(depth, depth_encoding, stamp)


def _check_options(frames: int, rate_hz: float, depth_format: str, depth_encoding: str) -> None:
    if frames < 1 or rate_hz <= 0:
        raise ReplayError(f'need frames >= 1 and rate > 0, got {frames} and {rate_hz}')
    if depth_format not in DEPTH_FORMATS or depth_encoding not in DEPTH_ENCODINGS:
        raise ReplayError(
            f'depth format {depth_format!r} / encoding {depth_encoding!r}: use '
            f'one of {", ".join(DEPTH_FORMATS)} / {", ".join(DEPTH_ENCODINGS)}'
        )


def write_sample_bag(
    out_dir: str | Path,
    storage: str = 'mcap',
    frames: int = 30,
    size: tuple[int, int] = (640, 480),
    rate_hz: float = 10.0,
    compressed: bool = False,
    supersample: int = 1,
    prompt: str = MUG_PROMPT,
    *,
    bag_format: str = 'rosbag2',
    compression: str = 'none',
    depth_format: str = 'raw',
    depth_encoding: str = '16UC1',
    start_ns: int = START_NS,
) -> Path:
    """Render ``frames`` frames of the tabletop scene at ``rate_hz`` into a new bag.

    Arguments:
        out_dir: bag to create (must not exist): a rosbag2 directory, or the ``.bag`` file
            for ``bag_format="ros1"``.
        storage: "mcap" or "sqlite3" (rosbag2 only).
        frames: number of frames; rate_hz: frames per second (scene time 1 / rate_hz apart).
        size: (width, height) in pixels.
        compressed: write JPEG CompressedImage on ``COMPRESSED_TOPIC`` instead of rgb8.
        supersample: colour anti-aliasing of the renderer (1 is fast, 2 is prettier).
        prompt: the command recorded before the first frame.
        bag_format: "rosbag2" or "ros1".
        compression: rosbag2: "none", "file", "message" (zstd) or "chunk" (zstd mcap
            chunks); ros1: "none" or "chunk" (lz4).
        depth_format: "raw" (sensor_msgs/Image on ``DEPTH_TOPIC``) or "compressedDepth"
            (image_transport's png on ``COMPRESSED_DEPTH_TOPIC``).
        depth_encoding: "16UC1" (mm) or "32FC1" (metres).
        start_ns: header stamp of the first frame, nanoseconds (frames follow every
            1 / ``rate_hz`` s; the scene's time starts at 0 whatever the stamp).

    Returns:
        The bag path.
    """
    out_dir = Path(out_dir)
    _check_options(frames, rate_hz, depth_format, depth_encoding)
    period = int(round(1e9 / rate_hz))
    with open_writer(out_dir, bag_format, storage, compression) as bag:
        bag.write(COMMAND_TOPIC, STRING, start_ns - 1_000_000, string_cdr(prompt))
        for index in range(frames):
            stamp = start_ns + index * period
            scene = render_tabletop(index * period / 1e9, size[0], size[1], supersample)
            if compressed:
                bag.write(
                    COMPRESSED_TOPIC,
                    COMPRESSED_IMAGE,
                    stamp + 4_000_000,
                    compressed_cdr(scene.rgb, stamp),
                )
            else:
                bag.write(
                    COLOR_TOPIC, IMAGE, stamp + 4_000_000, image_cdr(scene.rgb, 'rgb8', stamp)
                )
            bag.write(
                INFO_TOPIC,
                CAMERA_INFO,
                stamp + 4_100_000,
                camera_info_cdr(scene.intrinsics, stamp),
            )
            topic, msgtype, depth = _depth_message(scene, stamp, depth_format, depth_encoding)
            bag.write(topic, msgtype, stamp + 6_000_000, depth)
            gt = np.where(scene.gt_mask, np.uint8(255), np.uint8(0))
            bag.write(GT_TOPIC, IMAGE, stamp + 6_500_000, image_cdr(gt, 'mono8', stamp))
    return out_dir


def write_sample_image(
    path: str | Path, time_s: float = 0.0, size: tuple[int, int] = (640, 480), supersample: int = 2
) -> Path:
    """Save one rendered colour frame as an optimized PNG (the bundled sample image is
    ``write_sample_image("evf_sam_ros/data/sample_tabletop.png")``).
    """
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='evf-sam-make-sample-bag',
        description='Write a synthetic tabletop bag (colour, aligned depth, camera_info, a '
        'command and ground-truth masks of the red mug) as rosbag2 or ROS 1.',
    )
    parser.add_argument(
        'out_dir',
        type=Path,
        nargs='?',
        help='bag to create (must not exist): a rosbag2 directory, or a .bag '
        'file with --format ros1',
    )
    parser.add_argument('--format', dest='bag_format', choices=BAG_FORMATS, default='rosbag2')
    parser.add_argument(
        '--storage', choices=STORAGES, default='mcap', help='rosbag2 storage (default mcap)'
    )
    parser.add_argument(
        '--compression',
        choices=COMPRESSIONS,
        default='none',
        help='rosbag2: zstd per file, per message or per mcap chunk; ros1: '
        'chunk = lz4 chunks (default none)',
    )
    parser.add_argument('--frames', type=int, default=30, help='number of frames (default 30)')
    parser.add_argument('--rate', type=float, default=10.0, help='frame rate in Hz (default 10)')
    parser.add_argument('--size', type=_size, default=(640, 480), help='WxH (default 640x480)')
    parser.add_argument(
        '--compressed',
        action='store_true',
        help=f'write JPEG CompressedImage on {COMPRESSED_TOPIC} instead of rgb8',
    )
    parser.add_argument(
        '--depth-format',
        choices=DEPTH_FORMATS,
        default='raw',
        help=f'raw: sensor_msgs/Image on {DEPTH_TOPIC}; compressedDepth: '
        f'image_transport png on {COMPRESSED_DEPTH_TOPIC}',
    )
    parser.add_argument(
        '--depth-encoding',
        choices=DEPTH_ENCODINGS,
        default='16UC1',
        help='16UC1 millimetres or 32FC1 metres (default 16UC1)',
    )
    parser.add_argument(
        '--supersample',
        type=int,
        default=None,
        help='colour anti-aliasing: N x N rays per pixel (default 1 for the bag, 2 for --png)',
    )
    parser.add_argument('--png', type=Path, help='also save frame 0 as this PNG')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``evf-sam-make-sample-bag``; returns the exit code (2 on bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out_dir is None and args.png is None:
        parser.error('give OUT_DIR, --png PATH or both')
    try:
        if args.png is not None:
            print(f'wrote {write_sample_image(args.png, 0.0, args.size, args.supersample or 2)}')
        if args.out_dir is not None:
            path = write_sample_bag(
                args.out_dir,
                args.storage,
                args.frames,
                args.size,
                args.rate,
                args.compressed,
                args.supersample or 1,
                bag_format=args.bag_format,
                compression=args.compression,
                depth_format=args.depth_format,
                depth_encoding=args.depth_encoding,
            )
            print(f'wrote {args.frames} frames to {path}')
    except (ReplayError, ValueError, OSError) as exc:
        print(f'evf-sam-make-sample-bag: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

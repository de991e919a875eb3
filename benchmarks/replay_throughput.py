r"""Offline replay throughput (a benchmark, not a test): frames per second of one
``replay_bag`` pass over the sample bag with a tiny checkpoint on the CPU.

    python benchmarks/replay_throughput.py                       # 30 frames, 640x480, mcap
    python benchmarks/replay_throughput.py --repeats 5 -- --format ros1
    python benchmarks/replay_throughput.py -- --storage sqlite3 --compression message \
        --depth-format compressedDepth
    python benchmarks/replay_throughput.py --bag /tmp/my_bag     # an existing bag
    python benchmarks/replay_throughput.py --read-only -- --format ros1   # no model

Arguments after ``--`` go to ``evf-sam-make-sample-bag`` (the bag is written once, not
timed).  The model is loaded once and one warm-up pass runs (neither timed); each repeat
times the whole pass: bag reading, decoding, depth matching, the model, message building,
the results bag (no video).  With ``--read-only`` a repeat only reads the frames
(``FrameReader``: decoding, depth, ground truth), no model.  Prints one JSON line: the
median and best frames/s over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _env() -> None:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
    os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1))


def _read_pass(bag: Path, out: Path) -> int:
    """Read every frame of ``bag`` (decode colour, depth, ground truth); returns the count."""
    from evf_sam_ros.replay.bagio import open_bag
    from evf_sam_ros.replay.frames import FrameReader
    from evf_sam_ros.replay.pipeline import ReplayOptions, inspect_bag

    selection, _ = inspect_bag(bag, ReplayOptions())
    with open_bag(bag) as reader:
        return sum(1 for frame in FrameReader(reader, selection) if frame.rgb is not None)


def _replay_pass(tmp: Path, image_size: int):
    """A function running one offline replay of a bag (tiny model loaded once here)."""
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.replay.offline import OfflineSegmenter
    from evf_sam_ros.replay.pipeline import ReplayOptions, replay_bag
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint
    from evf_sam_ros.target3d.estimate import TargetSettings

    checkpoint = write_tiny_checkpoint(tmp / 'ckpt', 'evf-sam2', image_size=image_size)
    predictor = EvfSamPredictor.from_pretrained(checkpoint, 'cpu', 'float32')
    options = ReplayOptions(video=False, overwrite=True, progress=False)

    def run(bag: Path, out: Path) -> int:
        segmenter = OfflineSegmenter(predictor, TargetSettings(score_threshold=0.0))
        return replay_bag(bag, out, segmenter, options, {})['frames']['processed']

    return run


def main(argv: list[str] | None = None) -> int:
    """Write the bag, load the tiny model, time ``--repeats`` replay passes; print JSON."""
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index('--') if '--' in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--image-size', type=int, default=256, help='tiny model input size')
    parser.add_argument('--bag', type=Path, help='replay this bag instead of writing one')
    parser.add_argument('--read-only', action='store_true', help='only read frames, no model')
    args = parser.parse_args(argv[:split])
    bag_args = argv[split + 1 :]
    _env()
    import torch

    from evf_sam_ros.replay.sample_bag import main as make_bag

    with tempfile.TemporaryDirectory() as tmp:
        bag = args.bag or Path(tmp) / 'bag'
        if args.bag is None and make_bag([str(bag), '--frames', str(args.frames), *bag_args]) != 0:
            return 2
        passes = _read_pass if args.read_only else _replay_pass(Path(tmp), args.image_size)
        passes(bag, Path(tmp) / 'warmup')  # first-call costs (allocations, caches) not timed
        rates = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            frames = passes(bag, Path(tmp) / f'out{repeat}')
            rates.append(frames / (time.perf_counter() - start))
    print(
        json.dumps(
            {
                'bag': str(args.bag or bag_args),
                'read_only': args.read_only,
                'frames': frames,
                'repeats': args.repeats,
                'fps_median': round(statistics.median(rates), 2),
                'fps_best': round(max(rates), 2),
                'machine': f'{platform.processor() or platform.machine()}, '
                f'{os.cpu_count()} cores, '
                f'torch threads {torch.get_num_threads()}',
            }
        )
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())

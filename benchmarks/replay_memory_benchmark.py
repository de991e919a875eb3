"""Peak memory of an offline replay against the bag's length (issue 17 item 2).

One run: renders ``--unique`` frames of the sample tabletop scene, writes a short and a long
bag of the same scene by cycling them (header stamps and bag times shifted, so every frame
is new to the replay), replays each with ``evf-sam-replay`` in its own process (tiny
checkpoint, CPU, every output on: results bag, report, frames.jsonl, overlay.mp4, contact
sheet) and prints each process's peak RSS (``wait4``'s ru_maxrss) as JSON.

    .venv/bin/python benchmarks/replay_memory_benchmark.py --short 100 --long 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evf_sam_ros.replay.bagio import list_topics, open_bag, open_writer, read_messages
from evf_sam_ros.replay.sample_bag import START_NS, write_sample_bag
from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint


def _stamp(raw: bytes) -> int:
    """Header stamp (ns) of CDR bytes of a message starting with a std_msgs/Header."""
    sec, nsec = struct.unpack_from('<iI' if raw[1] & 1 else '>iI', raw, 4)
    return sec * 1_000_000_000 + nsec


def _shift_stamp(raw: bytes, shift_ns: int) -> bytes:
    """The same message with its header stamp moved by ``shift_ns``."""
    order = '<' if raw[1] & 1 else '>'
    stamp = struct.pack(order + 'iI', *divmod(_stamp(raw) + shift_ns, 1_000_000_000))
    return raw[:4] + stamp + raw[12:]


def cycled_bag(source: Path, out: Path, frames: int, unique: int, rate_hz: float) -> Path:
    """``frames`` frames made of ``source``'s ``unique`` frames repeated in order (stamps and
    bag times shifted by whole cycles; the command once, before the first frame).
    """
    period = int(round(1e9 / rate_hz))
    with open_bag(source) as reader, open_writer(out) as writer:
        topics = list_topics(reader)
        for cycle in range((frames + unique - 1) // unique):
            shift = cycle * unique * period
            for topic, msgtype, log_ns, raw in read_messages(reader, topics):
                if msgtype.endswith('/String'):
                    if cycle == 0:
                        writer.write(topic, msgtype, log_ns, raw)
                elif cycle * unique + round((_stamp(raw) - START_NS) / period) < frames:
                    writer.write(topic, msgtype, log_ns + shift, _shift_stamp(raw, shift))
    return out


def replay_peak_rss(bag: Path, out: Path, checkpoint: Path) -> dict:
    """Run evf-sam-replay on ``bag`` in a child process; its peak RSS (MB) and wall time."""
    command = [
        str(Path(sys.executable).with_name('evf-sam-replay')),
        str(bag),
        '--checkpoint',
        str(checkpoint),
        '-o',
        str(out),
        '--device',
        'cpu',
        '--quiet',
    ]
    started = time.monotonic()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads((out / 'report.json').read_text())
    return {
        'frames_processed': report['frames']['processed'],
        'exit_code': child.returncode,
        'peak_rss_mb': round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        'wall_s': round(time.monotonic() - started, 1),
    }


def main() -> int:
    """Write the bags, replay both, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--short', type=int, default=100)
    parser.add_argument('--long', type=int, default=2000)
    parser.add_argument('--unique', type=int, default=25, help='frames rendered (then cycled)')
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--work', type=Path, default=None, help='keep the bags here')
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split('x'))
    work = args.work or Path(tempfile.mkdtemp(prefix='replay_memory_'))
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = write_tiny_checkpoint(work / 'tiny', 'evf-sam2', seed=0, image_size=256)
    base = write_sample_bag(work / 'base', 'mcap', args.unique, (width, height))
    results = {
        'machine': f'{platform.machine()}, {os.cpu_count()} cores, {platform.system()}',
        'frame_size': args.size,
        'unique_frames': args.unique,
    }
    for frames in (args.short, args.long):
        bag = cycled_bag(base, work / f'bag_{frames}', frames, args.unique, 10.0)
        results[f'{frames}_frames'] = replay_peak_rss(bag, work / f'out_{frames}', checkpoint)
        print(json.dumps(results), flush=True)
    short, long = results[f'{args.short}_frames'], results[f'{args.long}_frames']
    results['peak_rss_growth_mb'] = round(long['peak_rss_mb'] - short['peak_rss_mb'], 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

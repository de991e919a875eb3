r"""Fleet replay throughput (a benchmark, not a test): many copies of the sample bag replayed
by ``evf-sam-replay`` with 1 and 2 local workers and on Ray, with a tiny checkpoint on the CPU.

    python benchmarks/fleet_throughput.py                  # 20 copies of the 30-frame bag
    python benchmarks/fleet_throughput.py --copies 6 --frames 10 --no-ray

Every run uses one torch thread per worker (``--threads-per-worker 1``): on the 2-core VM,
two workers of two threads each would fight over the cores.  The Ray run starts a private
local instance (``--ray local``, loopback only, no dashboard, no usage statistics) with as
many workers as the second local run.  Times are the fleet report's ``wall_s``: from the first
bag handed to a worker to the last result, worker start and model loading included (Ray's own
start is not; it is printed apart).  Per-bag results (``results_sha256``) must be identical in
all runs.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _env() -> None:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
    os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1))


def _bags(tmp: Path, copies: int, frames: int) -> Path:
    from evf_sam_ros.replay.sample_bag import write_sample_bag

    one = write_sample_bag(tmp / 'sample', 'mcap', frames)
    bags = tmp / 'bags'
    for i in range(copies):
        shutil.copytree(one, bags / f'sample_{i:02d}')
    return bags


def _run(bags: Path, checkpoint: Path, out: Path, extra: list[str]) -> dict:
    from evf_sam_ros.replay import cli

    argv = [str(bags), '--checkpoint', str(checkpoint), '-o', str(out), '--device', 'cpu']
    argv += ['--dtype', 'float32', '--no-video', '--quiet', '--threads-per-worker', '1']
    start = time.perf_counter()
    data = cli.run(argv + extra)
    command_s = time.perf_counter() - start
    total = data['total']
    if total['failed']:
        raise SystemExit(f'bags failed: {data["failed"]}')
    return {
        'wall_s': total['wall_s'],
        'command_s': round(command_s, 2),
        'frames': total['frames']['in'],
        'frames_per_s': round(total['frames_per_s'], 2),
        'digests': [b['results_sha256'] for b in data['bags']],
    }


def main(argv: list[str] | None = None) -> int:
    """Write the bags and the tiny checkpoint, run the fleets, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--copies', type=int, default=20)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--image-size', type=int, default=256, help='tiny model input size')
    parser.add_argument('--workers', type=int, default=2, help='workers of the parallel runs')
    parser.add_argument('--no-ray', action='store_true', help='skip the Ray run')
    args = parser.parse_args(argv)
    _env()
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bags = _bags(tmp, args.copies, args.frames)
        checkpoint = write_tiny_checkpoint(tmp / 'ckpt', 'evf-sam2', image_size=args.image_size)
        runs = {
            'local_1': _run(bags, checkpoint, tmp / 'local_1', ['--workers', '1']),
            f'local_{args.workers}': _run(
                bags, checkpoint, tmp / 'local_n', ['--workers', str(args.workers)]
            ),
        }
        if not args.no_ray:
            runs[f'ray_{args.workers}'] = _run(
                bags, checkpoint, tmp / 'ray', ['--ray', 'local', '--workers', str(args.workers)]
            )
    digests = {name: run.pop('digests') for name, run in runs.items()}
    one, many = runs['local_1'], runs[f'local_{args.workers}']
    result = {
        'machine': f'{platform.machine()}, {os.cpu_count()} cores',
        'copies': args.copies,
        'frames_per_bag': args.frames,
        'threads_per_worker': 1,
        'runs': runs,
        'speedup_local': round(many['frames_per_s'] / one['frames_per_s'], 3),
        'identical_per_bag_results': all(d == digests['local_1'] for d in digests.values()),
    }
    if not args.no_ray:
        ray = runs[f'ray_{args.workers}']
        result['ray_vs_local'] = round(ray['frames_per_s'] / many['frames_per_s'], 3)
    print(json.dumps(result))
    return 0 if result['identical_per_bag_results'] else 1


if __name__ == '__main__':
    sys.exit(main())

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
all runs.  ``--rounds`` repeats the three runs in turn (medians reported), each with the
machine's load average at its end, and for local runs the CPU seconds its workers used
(on a shared machine the scheduler gives each login session an equal share of the cores, so
wall times there measure that share; CPU seconds per frame do not depend on it).  Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
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
    start, children = time.perf_counter(), _children_cpu_s()
    data = cli.run(argv + extra)
    command_s = time.perf_counter() - start
    cpu_s = _children_cpu_s() - children  # local workers only: Ray's are not our children
    total = data['total']
    if total['failed']:
        raise SystemExit(f'bags failed: {data["failed"]}')
    return {
        'wall_s': total['wall_s'],
        'command_s': round(command_s, 2),
        'frames': total['frames']['in'],
        'frames_per_s': round(total['frames_per_s'], 2),
        'worker_cpu_s': round(cpu_s, 1) if '--ray' not in extra else None,
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
    parser.add_argument('--rounds', type=int, default=1, help='runs of each configuration')
    args = parser.parse_args(argv)
    _env()
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    n = str(args.workers)
    configs = {'local_1': ['--workers', '1'], f'local_{n}': ['--workers', n]}
    if not args.no_ray:
        configs[f'ray_{n}'] = ['--ray', 'local', '--workers', n]
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bags = _bags(tmp, args.copies, args.frames)
        checkpoint = write_tiny_checkpoint(tmp / 'ckpt', 'evf-sam2', image_size=args.image_size)
        for round_ in range(args.rounds):  # interleaved: a change of machine load hits all
            for name, extra in configs.items():
                out = tmp / f'{name}_{round_}'
                runs[name].append(_run(bags, checkpoint, out, extra) | {'load': _load()})
    digests = [d for name in runs for run in runs[name] for d in [run.pop('digests')]]
    rate = {name: statistics.median(r['frames_per_s'] for r in runs[name]) for name in runs}
    result = {
        'machine': f'{platform.machine()}, {os.cpu_count()} cores',
        'copies': args.copies,
        'frames_per_bag': args.frames,
        'threads_per_worker': 1,
        'runs': runs,
        'median_frames_per_s': rate,
        'speedup_local': round(rate[f'local_{n}'] / rate['local_1'], 3),
        'identical_per_bag_results': all(d == digests[0] for d in digests),
    }
    if not args.no_ray:
        result['ray_vs_local'] = round(rate[f'ray_{n}'] / rate[f'local_{n}'], 3)
    print(json.dumps(result))
    return 0 if result['identical_per_bag_results'] else 1


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's ended child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> float:
    """The machine's 1-minute load average (other users' work skews every figure)."""
    return os.getloadavg()[0]


if __name__ == '__main__':
    sys.exit(main())

"""Many bags, one command: ``evf-sam-replay`` over several bags, a directory or a glob.

    evf-sam-replay bags/ --checkpoint CKPT -o OUT --workers 2      # local worker processes
    evf-sam-replay 'bags/*.bag' --checkpoint CKPT -o OUT --ray auto  # on a Ray cluster

Each bag is replayed exactly as a one-bag run would (offline mode, same options) into
``OUT/<name>/``; ``OUT/fleet_report.json`` and ``OUT/fleet_report.txt`` sum them up.  A bag
that fails is listed with its reason and the others go on; ``--resume`` keeps bags whose
report exists and replays the rest.

A directory is one bag when it holds ``metadata.yaml`` or ``.db3``/``.mcap`` files, else a
folder searched (recursively) for bag directories and ROS 1 ``.bag`` files.
"""

from __future__ import annotations

import argparse
import copy
import glob
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.fleet_report import (
    BagOutcome,
    finished_outcome,
    fleet_report,
    format_fleet_table,
    save_fleet_report,
)
from evf_sam_ros.replay.workers import BagJob, WorkerConfig, cuda_count, run_local

_GLOB_CHARS = set('*?[')
_STORAGE_SUFFIXES = ('.db3', '.mcap')


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """The fleet options of evf-sam-replay."""
    fleet = parser.add_argument_group(
        'many bags (several BAGs, a directory of bags or a glob; offline mode)'
    )
    fleet.add_argument(
        '--workers',
        type=int,
        metavar='N',
        help='bags replayed at once, one model per worker process (default: one per '
        'CUDA device, else 1; with --ray: as many as the cluster holds)',
    )
    fleet.add_argument(
        '--ray',
        metavar='ADDRESS',
        help='run the bags as tasks on Ray: auto (the cluster of this machine), HOST:PORT, '
        'or local (a private one-machine instance)',
    )
    fleet.add_argument(
        '--threads-per-worker',
        type=int,
        metavar='N',
        help='torch threads of each worker (default: CPU cores / workers, 1 on Ray)',
    )
    fleet.add_argument(
        '--resume', action='store_true', help='keep the bags whose report exists in OUTPUT'
    )


def is_bag_dir(path: Path) -> bool:
    """A rosbag2 bag directory: metadata.yaml, or storage files without it."""
    if (path / 'metadata.yaml').is_file():
        return True
    return any(p.suffix in _STORAGE_SUFFIXES and p.is_file() for p in path.iterdir())


def _bags_below(folder: Path) -> list[Path]:
    """Bag directories and .bag files in ``folder`` and its subfolders, sorted by path."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            found += [entry] if is_bag_dir(entry) else _bags_below(entry)
        elif entry.suffix == '.bag':
            found.append(entry)
    return found


def _expand_one(arg: str) -> list[Path]:
    path = Path(arg)
    if not path.exists() and _GLOB_CHARS & set(arg):
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            raise ReplayError(f'no file matches {arg!r}')
        return [p for m in matches for p in _expand_one(m)]
    if not path.exists():
        raise ReplayError(f'bag {arg!r} does not exist')
    if path.is_dir() and not is_bag_dir(path):
        bags = _bags_below(path)
        if not bags:
            raise ReplayError(
                f'no bags in {arg!r}: looked for rosbag2 directories (metadata.yaml, .db3, '
                '.mcap) and ROS 1 .bag files'
            )
        return bags
    return [path]


def expand_bags(args: list[str]) -> list[Path]:
    """The bags named by ``args`` (bags, directories of bags, globs), in the order given, each
    once.  Raises ReplayError for a path that does not exist or a pattern or folder without
    bags.
    """
    bags, seen = [], set()
    for arg in args:
        for bag in _expand_one(str(arg)):
            if bag.resolve() not in seen:
                seen.add(bag.resolve())
                bags.append(bag)
    return bags


def is_fleet(args: argparse.Namespace) -> bool:
    """Whether the command line asks for a fleet run (not a single-bag replay)."""
    named = [str(b) for b in args.bag]
    if len(named) > 1 or args.workers is not None or args.ray is not None or args.resume:
        return True
    path = Path(named[0])
    if not path.exists():
        return bool(_GLOB_CHARS & set(named[0]))
    # a folder without bags goes to the one-bag replay, whose error says what a bag needs
    return path.is_dir() and not is_bag_dir(path) and bool(_bags_below(path))


def bag_names(bags: list[Path]) -> list[str]:
    """Output subdirectory names: the bag's name (a file without its suffix); names that two
    bags share get a short hash of the bag's absolute path.
    """
    plain = [(b.stem if b.is_file() else b.name) or 'bag' for b in bags]
    return [
        name
        if plain.count(name) == 1
        else f'{name}-{hashlib.sha1(str(b.resolve()).encode()).hexdigest()[:8]}'
        for name, b in zip(plain, bags)
    ]


def _kept(name: str, bag: Path, out: Path, strict: bool) -> BagOutcome | None:
    """The outcome of a bag replayed before (None: no complete report in ``out``)."""
    try:
        return finished_outcome(name, str(bag), str(out), strict, resumed=True)
    except (OSError, ValueError):
        return None


def plan_jobs(args: argparse.Namespace) -> tuple[list[str], list[BagJob], list[BagOutcome]]:
    """Every bag's name (in order), the bags to replay, and those kept by --resume (their
    reports read back).

    Raises:
        ReplayError: no bags, or OUTPUT holds reports and neither --resume nor --overwrite.
    """
    bags = expand_bags([str(b) for b in args.bag])
    out = Path(args.output)
    names, jobs, kept = bag_names(bags), [], []
    for name, bag in zip(names, bags):
        bag_out = out / name
        outcome = _kept(name, bag, bag_out, args.strict) if args.resume else None
        if outcome is not None and not args.overwrite:
            kept.append(outcome)
            continue
        bag_args = copy.copy(args)
        bag_args.bag, bag_args.output, bag_args.overwrite = bag, bag_out, True
        bag_args.quiet = True
        jobs.append(BagJob(name, str(bag), str(bag_out), bag_args))
    done = [j.name for j in jobs if (Path(j.output) / 'report.json').exists()]
    if done and not (args.resume or args.overwrite):
        raise ReplayError(
            f'{str(out)!r} already holds the reports of {len(done)} bags ({", ".join(done[:3])}'
            f'{" ..." if len(done) > 3 else ""}); use --resume to keep them, --overwrite to '
            'replay them again, or another --output'
        )
    return names, jobs, kept


def _check(args: argparse.Namespace) -> None:
    if args.live:
        raise ReplayError('--live replays one bag at a time; leave out --workers/--ray/--resume')
    if not args.checkpoint:
        raise ReplayError('--checkpoint is required (a hub id or a directory)')
    if args.workers is not None and args.workers < 1:
        raise ReplayError(f'--workers must be >= 1, got {args.workers}')
    if args.threads_per_worker is not None and args.threads_per_worker < 1:
        raise ReplayError(f'--threads-per-worker must be >= 1, got {args.threads_per_worker}')


def _workers_and_threads(args: argparse.Namespace) -> tuple[int | None, int]:
    if args.ray is not None:
        return args.workers, args.threads_per_worker or 1
    workers = args.workers
    if workers is None:
        workers = cuda_count() if args.device in ('auto', 'cuda') else 0
        workers = max(1, workers)
    return workers, args.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)


def _printer(total: int, quiet: bool) -> Any:
    count = [0]

    def on_done(outcome: BagOutcome) -> None:
        count[0] += 1
        if quiet:
            return
        if outcome.status == 'ok':
            frames = outcome.report['frames']['in'] if outcome.report else 0
            text = f'ok, {frames} frames in {outcome.wall_s:.1f} s'
        else:
            text = f'failed: {outcome.reason}'
        print(f'[{count[0]}/{total}] {outcome.name}: {text}', file=sys.stderr, flush=True)

    return on_done


def run_fleet(args: argparse.Namespace) -> dict[str, Any]:
    """Replay every bag the command line names; returns the fleet report (saved, and printed
    as a table unless --quiet).

    Raises:
        ReplayError: bad input before any bag ran (see plan_jobs); bags that fail later are
        listed in the report instead.
    """
    _check(args)
    names, jobs, kept = plan_jobs(args)
    workers, threads = _workers_and_threads(args)
    config = WorkerConfig(str(args.checkpoint), args.device, args.dtype, threads)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    on_done = _printer(len(jobs), args.quiet)
    if args.ray is not None:
        from evf_sam_ros.replay import fleet_ray

        connected = fleet_ray.connect(args.ray) if jobs else False
        start = time.perf_counter()  # Ray's own start is not the bags' time
        try:
            outcomes = fleet_ray.run_ray(jobs, config, workers, on_done) if jobs else []
        finally:
            wall_s = time.perf_counter() - start
            if connected:
                fleet_ray.disconnect()
    else:
        start = time.perf_counter()
        outcomes = run_local(jobs, config, workers, on_done) if jobs else []
        wall_s = time.perf_counter() - start
    everything = sorted([*kept, *outcomes], key=lambda o: names.index(o.name))
    meta = {
        'engine': 'ray' if args.ray is not None else 'local',
        'ray_address': args.ray,
        'workers': workers,
        'threads_per_worker': threads,
        'checkpoint': str(args.checkpoint),
        'device': args.device,
        'dtype': args.dtype,
    }
    data = fleet_report(everything, meta, wall_s)
    save_fleet_report(data, args.output)
    if not args.quiet:
        print(format_fleet_table(data))
        print(f'outputs in {args.output}')
    return data

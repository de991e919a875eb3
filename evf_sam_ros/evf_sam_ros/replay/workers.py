"""Fleet workers: separate processes holding one model each, replaying one bag at a time.

``replay_job`` is what a worker runs for a bag, locally (``run_local``: a
``concurrent.futures.ProcessPoolExecutor`` with spawned processes) and on Ray
(``fleet_ray``): the single-bag replay (``cli.replay``, the very code a one-bag
``evf-sam-replay`` runs) with the worker's model, loaded once per process.  A bag that fails
gives a failed ``BagOutcome`` with its reason and never stops the other bags.

Threads: each worker runs ``WorkerConfig.threads`` torch threads (default: the machine's
cores divided by the workers), and its OpenMP/BLAS pools as many (set in the environment it
starts with), so N workers do not fight over the cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from evf_sam_ros.model.errors import EvfSamError
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.fleet_report import BagOutcome, finished_outcome

#: Environment variables that size the thread pools of the math libraries torch uses.
THREAD_ENV = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS')


@dataclass(frozen=True)
class WorkerConfig:
    """The model every worker loads: checkpoint (hub id or directory), device (auto, cpu,
    cuda, cuda:N), dtype, and torch threads per worker.
    """

    checkpoint: str
    device: str = 'auto'
    dtype: str = 'auto'
    threads: int = 1


@dataclass(frozen=True)
class BagJob:
    """One bag of a fleet: its name (the output subdirectory), path, output directory and the
    evf-sam-replay arguments to replay it with (bag and output already set to this bag's).
    """

    name: str
    bag: str
    output: str
    args: argparse.Namespace


# This process's worker state: set by init_worker (local) or on the first job (Ray).
_worker: dict[str, Any] = {}


def set_threads(threads: int) -> None:
    """Limit this process's torch threads to ``threads``."""
    import torch

    torch.set_num_threads(threads)


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Within: processes started get ``THREAD_ENV`` = ``threads``, read by OpenMP and
    OpenBLAS when they load (numpy's BLAS is loaded before a worker's code runs).
    """
    saved = {name: os.environ.get(name) for name in THREAD_ENV}
    os.environ.update({name: str(threads) for name in THREAD_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def init_worker(config: WorkerConfig, gpu_slots: Any = None) -> None:
    """Start a local worker: threads, and its own GPU when ``gpu_slots`` (a queue of CUDA
    device indices, one taken per worker) is given.
    """
    set_threads(config.threads)
    device = config.device
    if gpu_slots is not None:
        device = f'cuda:{gpu_slots.get()}'
    _worker.clear()
    _worker.update(config=config, device=device)


def _predictor(config: WorkerConfig) -> Any:
    """The worker's model, loaded on its first bag (a load error is kept and re-raised)."""
    if _worker.get('config') != config:
        init_worker(config)
    if 'predictor' not in _worker and 'error' not in _worker:
        from evf_sam_ros.model import EvfSamPredictor

        try:
            _worker['predictor'] = EvfSamPredictor.from_pretrained(
                config.checkpoint, _worker['device'], config.dtype
            )
        except EvfSamError as exc:
            _worker['error'] = exc
    if 'error' in _worker:
        raise _worker['error']
    return _worker['predictor']


def worker_name() -> str:
    """host:pid of this process (which worker replayed a bag)."""
    return f'{socket.gethostname()}:{os.getpid()}'


def failed(job: BagJob, reason: str, wall_s: float = 0.0, worker: str = '') -> BagOutcome:
    """A failed BagOutcome of ``job`` (reason on one line)."""
    reason = ' '.join(reason.split())
    return BagOutcome(job.name, job.bag, job.output, 'failed', reason, wall_s, worker)


def replay_job(job: BagJob, config: WorkerConfig) -> BagOutcome:
    """Replay one bag with this worker's model; never raises for a bad bag.

    Returns:
        ``fleet_report.finished_outcome`` of the bag's outputs, or "failed" with the reason
        it could not be replayed (the error's one-line message; for an unexpected error its
        type too).
    """
    from evf_sam_ros.replay import cli

    start, worker = time.perf_counter(), worker_name()
    try:
        cli.replay(job.args, _predictor(config))
        wall_s = time.perf_counter() - start
        return finished_outcome(
            job.name, job.bag, job.output, job.args.strict, wall_s=wall_s, worker=worker
        )
    except (ReplayError, EvfSamError) as exc:
        return failed(job, str(exc), time.perf_counter() - start, worker)
    except Exception as exc:  # noqa: BLE001 - one bag's bug or library error: the others go on
        reason = f'{type(exc).__name__}: {exc}'
        return failed(job, reason, time.perf_counter() - start, worker)


def cuda_count() -> int:
    """CUDA devices visible here (0 without torch CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _pool(config: WorkerConfig, workers: int, gpus: int) -> concurrent.futures.ProcessPoolExecutor:
    context = multiprocessing.get_context('spawn')  # no fork of a process holding torch
    slots = None
    if gpus:
        slots = context.Queue()
        for i in range(workers):
            slots.put(i % gpus)
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(config, slots)
    )


def _died(job: BagJob) -> BagOutcome:
    return failed(job, 'its worker process died (killed, or out of memory?)')


def run_local(
    jobs: list[BagJob],
    config: WorkerConfig,
    workers: int,
    on_done: Callable[[BagOutcome], None],
) -> list[BagOutcome]:
    """Replay ``jobs`` in ``workers`` local processes (one model each; with CUDA devices
    for "auto"/"cuda", worker i uses device i modulo their number).

    A worker that dies takes the pool down: the bags not finished then are replayed again,
    each in a fresh process of its own, so only the bag that kills its worker fails.
    """
    gpus = cuda_count() if config.device in ('auto', 'cuda') else 0
    outcomes: list[BagOutcome] = []
    unfinished: list[BagJob] = []
    with _pool(config, workers, gpus) as pool:
        with thread_env(config.threads):  # the pool starts its processes on submit
            futures = {pool.submit(replay_job, job, config): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    outcomes.append(future.result())
                    on_done(outcomes[-1])
                except concurrent.futures.process.BrokenProcessPool:
                    unfinished.append(futures[future])
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)  # the workers got the signal too
            raise
    for job in unfinished:
        with _pool(config, 1, gpus) as pool, thread_env(config.threads):
            try:
                outcomes.append(pool.submit(replay_job, job, config).result())
            except concurrent.futures.process.BrokenProcessPool:
                outcomes.append(_died(job))
        on_done(outcomes[-1])
    return outcomes

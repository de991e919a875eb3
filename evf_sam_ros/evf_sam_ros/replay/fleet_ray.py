"""Fleet bags on a Ray cluster: Ray schedules, this module only submits and collects.

Each bag is one Ray task running ``workers.replay_job``; a task asks for ``threads`` CPUs
(and one GPU when the device is CUDA), so Ray runs as many at once as the cluster holds and
places them.  Ray reuses its worker processes, and each keeps its model between bags: one model
per worker.  Bags and the output directory must be on a file system every node sees.

``--ray auto`` joins the cluster this machine belongs to (``ray start`` ran here, or
RAY_ADDRESS), ``--ray HOST:PORT`` a given one, ``--ray local`` starts a private one-machine
instance (stopped at the end) that listens on 127.0.0.1 only.  Ray's usage statistics are
off (RAY_USAGE_STATS_ENABLED=0) and no dashboard is started.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.fleet_report import BagOutcome
from evf_sam_ros.replay.workers import BagJob, WorkerConfig, failed, replay_job

#: Environment of every Ray process started from here: no usage statistics sent.
RAY_ENV = {'RAY_USAGE_STATS_ENABLED': '0'}
#: Environment of a one-machine instance: Ray takes the loopback address as the node's (as on
#: macOS and Windows), so GCS, raylet and workers listen on 127.0.0.1 only (checked with
#: ``ss -ltnp`` on Ray 2.60; without it they listen on every interface).  Ray reads it when
#: imported: ``connect`` sets it first.
LOOPBACK_ENV = {'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER': '0'}
_LOOPBACK_HOSTS = ('127.0.0.1', 'localhost')


def is_loopback(address: str) -> bool:
    """Whether ``address`` ("local" or HOST:PORT) is an instance on this machine only."""
    return address == 'local' or address.rsplit(':', 1)[0] in _LOOPBACK_HOSTS


def connect(address: str) -> bool:
    """Connect to Ray (see the module doc for ``address``); returns whether this call did
    (False: this process was already connected, and stays so after the run).

    Raises:
        ReplayError: ray is not installed, or no cluster answers at ``address``.
    """
    os.environ.update(RAY_ENV)
    if is_loopback(address):
        os.environ.update(LOOPBACK_ENV)
    try:
        import ray
    except ImportError as exc:
        raise ReplayError(
            'the ray package is not installed: pip install ray (see requirements/dev.txt)'
        ) from exc
    if ray.is_initialized():
        return False
    try:
        if address == 'local':
            ray.init(
                address='local',
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ReplayError(
            f'cannot connect to Ray at {address!r}: {exc}; start a cluster with '
            "'ray start --head' or use --ray local (or --workers N without Ray)"
        ) from exc
    return True


def disconnect() -> None:
    """Leave Ray (stops a ``--ray local`` instance; a cluster keeps running)."""
    import ray

    ray.shutdown()


def _task(config: WorkerConfig, gpu: bool) -> Any:
    import ray

    return ray.remote(
        num_cpus=config.threads,
        num_gpus=1 if gpu else 0,
        max_calls=0,  # keep the worker (and its model) between bags, GPU tasks too
        max_retries=0,  # a bag that kills its worker fails; it is not run again
    )(replay_job)


def _outcome(ref: Any, job: BagJob) -> BagOutcome:
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        return failed(job, f'Ray task failed ({type(exc).__name__}): {first}')


def run_ray(
    jobs: list[BagJob],
    config: WorkerConfig,
    workers: int | None,
    on_done: Callable[[BagOutcome], None],
) -> list[BagOutcome]:
    """Replay ``jobs`` as Ray tasks (connect first); at most ``workers`` at once when given,
    else as many as the cluster's resources allow.
    """
    import ray

    gpu = config.device.startswith('cuda') or (
        config.device == 'auto' and ray.cluster_resources().get('GPU', 0) > 0
    )
    task = _task(config, gpu)
    limit = workers or len(jobs)
    todo, running, outcomes = list(jobs), {}, []
    try:
        while todo or running:
            while todo and len(running) < limit:
                job = todo.pop(0)
                running[task.remote(job, config)] = job
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                outcomes.append(_outcome(ref, running.pop(ref)))
                on_done(outcomes[-1])
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    return outcomes

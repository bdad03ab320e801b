"""Where "assemble + write" jobs run: this process, a process pool, or a Dask cluster.

The stages know nothing of scheduling; a job is a picklable value holding a
``VolumePlan`` (paths and numbers), and its result is a small picklable
record (:mod:`dicomvol.batch.jobs`). With Dask, workers read inputs and write
outputs on a shared file system and the client gathers only those records. Dask reschedules the task
of a worker that dies, so a lost worker costs time, not outputs; outputs are
written atomically, so a task that ran twice leaves one complete file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from dicomvol.errors import UsageError

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: on_error(job, exception) -> the result standing for a job that raised or whose worker died.
OnError = Callable[[J, BaseException], R]


def run_local(fn: Callable[[J], R], jobs: Sequence[J], workers: int,
              pool: ProcessPoolExecutor | None = None,
              on_error: OnError[J, R] | None = None) -> Iterator[R]:
    """Run ``fn`` over ``jobs`` in this process (workers <= 1) or a process pool.

    ``pool`` reuses an open pool (one fork round for a whole run), even for a
    single job (its workers have imported the code already, this process need
    not); without it a pool is opened for two jobs or more. Results are yielded
    as jobs finish (pool) or in order (in process). With ``on_error``, a job that raises (or whose
    worker process dies: ``BrokenProcessPool``) yields ``on_error(job, exc)``
    and the others go on; without it the exception propagates.
    """
    if workers <= 1 or (pool is None and len(jobs) <= 1):
        for job in jobs:
            yield _guarded(fn, job, on_error)
        return
    if pool is not None:
        yield from _gather(pool, fn, jobs, on_error)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as own:
        yield from _gather(own, fn, jobs, on_error)


def _guarded(fn: Callable[[J], R], job: J, on_error: OnError[J, R] | None) -> R:
    """``fn(job)``, or ``on_error(job, exc)`` when it raises (any exception)."""
    if on_error is None:
        return fn(job)
    try:
        return fn(job)
    except Exception as exc:  # fault isolation: one job, not the run
        log.debug("job failed", exc_info=True)
        return on_error(job, exc)


def _gather(pool: ProcessPoolExecutor, fn: Callable[[J], R], jobs: Sequence[J],
            on_error: OnError[J, R] | None) -> Iterator[R]:
    """Submit every job to ``pool``; results as they finish (failures through on_error)."""
    futures: dict[Future[R], J] = {}
    for job in jobs:
        try:
            futures[pool.submit(fn, job)] = job
        except Exception as exc:  # a broken pool refuses new work
            if on_error is None:
                raise
            yield on_error(job, exc)
    for fut in as_completed(futures):
        if on_error is None:
            yield fut.result()
            continue
        try:
            yield fut.result()
        except Exception as exc:  # the job raised in the worker, or the worker died
            log.debug("job failed in a worker", exc_info=True)
            yield on_error(futures[fut], exc)


def run_dask(fn: Callable[[J], R], jobs: Sequence[J], address: str,
             workers: int, on_error: OnError[J, R] | None = None) -> Iterator[R]:
    """Run ``fn`` over ``jobs`` as tasks on a Dask distributed cluster.

    Parameters
    ----------
    address : str
        Scheduler address (``tcp://host:8786``), or ``"local"`` to start a
        ``LocalCluster`` with ``workers`` single-threaded worker processes.
    on_error : callable, optional
        As in :func:`run_local`: the result of a task that failed (after its
        retries) or was lost.
    """
    try:
        import distributed
    except ImportError as exc:
        raise UsageError("--dask needs the distributed package: pip install 'dicomvol[dask]'"
                         ) from exc
    cluster: Any = None
    client: Any
    if address == "local":
        cluster = distributed.LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(address, timeout="20s")
        except OSError as exc:
            raise UsageError(f"cannot reach Dask scheduler at {address}: {exc}") from exc
    try:
        futures = [client.submit(fn, job, pure=False, retries=2) for job in jobs]
        job_of = {fut.key: job for fut, job in zip(futures, jobs, strict=True)}
        completed: Any = distributed.as_completed(futures)
        for fut in completed:
            if on_error is None:
                yield fut.result()
                continue
            try:
                yield fut.result()
            except Exception as exc:  # the task raised, or its worker was lost for good
                yield on_error(job_of[fut.key], exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

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
from concurrent.futures import ProcessPoolExecutor, as_completed
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


def run_local(fn: Callable[[J], R], jobs: Sequence[J], workers: int,
              pool: ProcessPoolExecutor | None = None) -> Iterator[R]:
    """Run ``fn`` over ``jobs`` in this process (workers <= 1) or a process pool.

    ``pool`` reuses an open pool (one fork round for a whole run); without it a
    pool is opened for these jobs. Results are yielded as jobs finish (pool) or
    in order (in process).
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    if pool is not None:
        for fut in as_completed([pool.submit(fn, job) for job in jobs]):
            yield fut.result()
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as own:
        for fut in as_completed([own.submit(fn, job) for job in jobs]):
            yield fut.result()


def run_dask(fn: Callable[[J], R], jobs: Sequence[J], address: str,
             workers: int) -> Iterator[R]:
    """Run ``fn`` over ``jobs`` as tasks on a Dask distributed cluster.

    Parameters
    ----------
    address : str
        Scheduler address (``tcp://host:8786``), or ``"local"`` to start a
        ``LocalCluster`` with ``workers`` single-threaded worker processes.
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
        completed: Any = distributed.as_completed(futures)
        for fut in completed:
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

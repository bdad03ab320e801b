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
from concurrent.futures import Future, as_completed  # concurrent.futures._base only
from typing import TYPE_CHECKING, Any, TypeVar

from dicomvol.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover - multiprocessing is imported where a pool starts
    from concurrent.futures import ProcessPoolExecutor

    from dicomvol.inputs.discover import Candidate

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: A run whose number of workers was not chosen (``dicomvol convert`` without ``-j``) runs
#: in this process when its inputs are at most this many files *and*
#: :data:`IN_PROCESS_MAX_BYTES`: two header chunks (``2 * batch.scan.INDEX_CHUNK``), below
#: which the headers are read in this process anyway, so that a pool would only run the
#: jobs, and its start (fork, each worker importing the job code) costs more than they
#: gain. Measured on 2 cores, whole series of the 30-series study (load < 1): 41 files
#: 0.44 s in-process vs 0.47 s pooled, 121 files 0.47 vs 0.50, 177 files 0.50 vs 0.49,
#: 414 files 0.61 vs 0.56, all 1,075 files 0.74 vs 0.66 (docs/ARCHITECTURE.md, "Speed").
IN_PROCESS_MAX_FILES = 128
#: The bytes half of the rule (see :data:`IN_PROCESS_MAX_FILES`): a few large files (a
#: CT series of 128 slices of 512 x 512) still run in this process.
IN_PROCESS_MAX_BYTES = 64 * 2**20
#: Local files whose sizes estimate the bytes of a run (one ``stat`` each, evenly spaced).
SIZE_SAMPLE = 16


def run_workers(workers: int, candidates: Sequence[Candidate], adaptive: bool) -> int:
    """The processes a run uses: ``workers``, or 1 for small inputs when ``adaptive``.

    With ``adaptive`` (the worker count is a default, not a choice), local inputs of at
    most :data:`IN_PROCESS_MAX_FILES` files and :data:`IN_PROCESS_MAX_BYTES` bytes
    (estimated from :data:`SIZE_SAMPLE` files' sizes), or a single file of any size
    or place (one header, one series: a pool would only move its job to another process;
    the 5,000-frame enhanced DWI of ``benchmarks/dwi.py``: 1.31 s pooled, 0.89 s in
    this process), run in this process. Object-store inputs keep the pool (their reads
    wait on the network, which workers overlap).
    """
    if not adaptive or workers <= 1 or len(candidates) > IN_PROCESS_MAX_FILES:
        return workers
    if len(candidates) == 1:
        return 1
    from dicomvol.inputs import fs  # numpy: not for `dicomvol --help`

    if any(fs.is_url(c.path) for c in candidates):
        return workers
    return 1 if estimated_bytes(candidates) <= IN_PROCESS_MAX_BYTES else workers


def estimated_bytes(candidates: Sequence[Candidate]) -> int:
    """The total size of ``candidates``: known sizes, or the mean of an evenly spaced
    sample of :data:`SIZE_SAMPLE` ``stat`` calls times their number (0 for none)."""
    if not candidates:
        return 0
    step = max(1, len(candidates) // SIZE_SAMPLE)
    sizes = []
    for cand in candidates[::step][:SIZE_SAMPLE]:
        if cand.size is not None:
            sizes.append(cand.size)
            continue
        try:
            sizes.append(os.stat(cand.path).st_size)
        except OSError:  # gone or unreadable: indexing reports it
            continue
    return sum(sizes) * len(candidates) // len(sizes) if sizes else 0


def open_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` processes.

    ``multiprocessing`` (with ``concurrent.futures.process``, sockets and
    ``subprocess``) is imported here, so a run that does not start a pool never loads it.
    """
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers)


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
    with open_pool(min(workers, len(jobs))) as own:
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

"""Scanning: discover files, index their headers in parallel chunks, plan volumes, pair
derived objects (SEG, RTSTRUCT) with the image plans they reference."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

from dicomvol._typing import PathLike
from dicomvol.batch.executors import run_local
from dicomvol.batch.pairing import pair_derived
from dicomvol.dicom.index import IndexResult, IndexTask, index_task
from dicomvol.inputs import fs
from dicomvol.inputs.discover import discover_all
from dicomvol.model.plan import ScanResult
from dicomvol.model.records import FileError, IgnoredFile
from dicomvol.options import PlanOptions
from dicomvol.pixels.digest import SamePixels
from dicomvol.plan.planner import plan_index

#: progress(done, total, what) is called as work advances.
ProgressFn = Callable[[int, int, str], None]
#: Files per header-reading task (large enough to amortise process overhead).
INDEX_CHUNK = 64
#: Objects per header-reading task: each task reads its heads in one concurrent batch of
#: range GETs, so a larger batch hides the network's latency better.
OBJECT_CHUNK = 512


def scan_inputs(paths: Iterable[PathLike], progress: ProgressFn | None = None,
                options: PlanOptions | None = None, jobs: int = 1,
                pool: ProcessPoolExecutor | None = None,
                names: Sequence[str] = ()) -> ScanResult:
    """Find DICOM files, read their headers and plan volumes (no pixel data is read).

    ``pool`` reuses a run's process pool; ``names`` are header keywords the
    frame records carry for output names. See :func:`dicomvol.scan`.
    """
    fs.forget_listings()  # list every prefix afresh for this scan (once)
    found = discover_all(paths)
    candidates = found.candidates
    total = len(candidates)
    index = IndexResult()
    index.ignored.extend(IgnoredFile(url, url, why) for url, why in found.ignored)
    index.errors.extend(FileError(where, where, why) for where, why in found.problems)
    remote = bool(candidates) and all(fs.is_url(c.path) for c in candidates)
    chunk = OBJECT_CHUNK if remote else INDEX_CHUNK
    tasks = [IndexTask(tuple(candidates[i:i + chunk]), tuple(names), fs.storage_options())
             for i in range(0, total, chunk)]
    done = 0
    for part in run_local(index_task, tasks, jobs if total > 2 * chunk else 1, pool):
        index.extend(part)
        done = min(total, done + chunk)  # chunks finish in any order; all are full-size
        if progress is not None:
            progress(done, total, "reading headers")
    index.sort()
    result = plan_index(index.frames, index.ignored, index.errors, n_files=total,
                        options=options, same_pixels=SamePixels())
    pair_derived(result, index.derived, options)
    return result

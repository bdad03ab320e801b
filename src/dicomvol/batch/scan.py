"""Scanning: discover files, index their headers in parallel chunks, plan volumes, pair
derived objects (SEG, RTSTRUCT) with the image plans they reference."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from dicomvol._gc import paused
from dicomvol._typing import PathLike
from dicomvol.batch.executors import run_local
from dicomvol.batch.pairing import pair_derived
from dicomvol.batch.tasks import index_chunk
from dicomvol.dicom.results import IndexResult, IndexTask
from dicomvol.inputs import fs
from dicomvol.inputs.discover import Discovered, discover_all
from dicomvol.model.plan import ScanResult
from dicomvol.model.records import FileError, IgnoredFile
from dicomvol.options import PlanOptions
from dicomvol.pixels.digest import SamePixels
from dicomvol.plan.planner import plan_index
from dicomvol.report.ledger import Ledger

if TYPE_CHECKING:  # pragma: no cover - multiprocessing is imported where a pool starts
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

#: progress(done, total, what) is called as work advances.
ProgressFn = Callable[[int, int, str], None]
#: Files per header-reading task (large enough to amortise process overhead).
INDEX_CHUNK = 64
#: Objects per header-reading task: each task reads its heads in one concurrent batch of
#: range GETs, so a larger batch hides the network's latency better.
OBJECT_CHUNK = 512


@paused()  # records, header items and plans hold no cycles
def scan_inputs(paths: Iterable[PathLike], progress: ProgressFn | None = None,
                options: PlanOptions | None = None, jobs: int = 1,
                pool: ProcessPoolExecutor | None = None,
                names: Sequence[str] = (), ledger: Ledger | None = None,
                jpeg_color: str = "auto", found: Discovered | None = None) -> ScanResult:
    """Find DICOM files, read their headers and plan volumes (no pixel data is read).

    ``pool`` reuses a run's process pool; ``names`` are header keywords the
    frame records carry for output names; ``ledger`` is given every frame
    indexing found. A chunk of files whose worker fails (or dies) costs those
    files an ``errors`` entry each; ``jpeg_color`` is the slide colour policy
    (:data:`dicomvol.slide.colour.COLOR_MODES`); ``found`` is what
    :func:`discover_inputs` found under ``paths`` already. See :func:`dicomvol.scan`.
    """
    if found is None:
        found = discover_inputs(paths)
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
    for part in run_local(index_chunk, tasks, jobs if total > 2 * chunk else 1, pool,
                          on_error=_chunk_failed):
        index.extend(part)
        done = min(total, done + chunk)  # chunks finish in any order; all are full-size
        if progress is not None:
            progress(done, total, "reading headers")
    index.sort()
    if ledger is not None:
        ledger.enter_frames(index.frames)
        ledger.enter_derived(index.derived)
    result = plan_index(index.frames, index.ignored, index.errors, n_files=total,
                        options=options, same_pixels=SamePixels())
    try:
        pair_derived(result, index.derived, options)
    except Exception as exc:  # a bug in pairing costs the derived objects, not the run
        log.error("pairing SEG/RTSTRUCT failed: %s: %s", type(exc).__name__, exc)
        log.debug("pairing failed", exc_info=True)
        result.derived.clear()
        result.errors.extend(FileError(o.path, o.rel, "internal: pairing with the image "
                                       f"series failed: {type(exc).__name__}: {exc}")
                             for o in index.derived)
    if result.slide_frames:
        from dicomvol.slide.index import index_slides

        result.slides, errors = index_slides(result.slide_frames, jpeg_color)
        result.errors.extend(errors)
    return result


def discover_inputs(paths: Iterable[PathLike], out_dir: PathLike | None = None) -> Discovered:
    """Every candidate file under ``paths``, each prefix listed afresh (once) for this scan;
    ``out_dir``, the run's output folder, is not read where it lies inside an input."""
    fs.forget_listings()
    return discover_all(paths, outputs=out_dir)


def _chunk_failed(task: IndexTask, exc: BaseException) -> IndexResult:
    """The result of an index chunk whose worker raised or died: an error per file."""
    why = f"internal: header reading failed: {type(exc).__name__}: {exc}".rstrip(": ")
    return IndexResult(errors=[FileError(c.path, c.rel, why) for c in task.candidates])

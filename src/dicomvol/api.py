"""The library's entry points: scan, read and convert.

>>> import dicomvol
>>> result = dicomvol.scan(["study/"])            # headers only, no pixels
>>> vol = dicomvol.read_volume(result.plans[0])   # one Volume in memory
>>> img = vol.to_nifti()                          # a nibabel.Nifti1Image
>>> report = dicomvol.convert(["study/"], "out/") # NIfTI + sidecars + report
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dicomvol.assemble import read_volume
from dicomvol.discover import discover
from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.executors import default_workers, run_dask, run_local
from dicomvol.index import IndexResult, header_of, index_files
from dicomvol.naming import NameAllocator, render, template_fields
from dicomvol.options import ConvertOptions, PlanOptions
from dicomvol.plan import ScanResult, SkippedFrame, VolumePlan, plan_index, plan_series
from dicomvol.records import FileError
from dicomvol.report import OutputRecord, RunReport, write_json_atomic
from dicomvol.volume import Volume

log = logging.getLogger(__name__)

__all__ = ["ProgressFn", "convert", "read_series", "read_volume", "scan"]

#: progress(done, total, what) is called as work advances.
ProgressFn = Callable[[int, int, str], None]
#: Files per header-reading task (large enough to amortise process overhead).
INDEX_CHUNK = 64
#: How many times a series is re-planned after a file in it fails to decode.
_MAX_REPLANS = 3

PathLike = str | os.PathLike[str]


def scan(
    paths: Iterable[PathLike],
    progress: ProgressFn | None = None,
    options: PlanOptions | None = None,
    jobs: int = 1,
    pool: ProcessPoolExecutor | None = None,
) -> ScanResult:
    """Find DICOM files, read their headers and plan volumes (no pixel data is read).

    Parameters
    ----------
    paths : iterable of str or PathLike
        Files and folders; folders are walked recursively.
    progress : callable, optional
        ``progress(done, total, what)``, called as headers are read.
    options : PlanOptions, optional
        Policy for tilted and irregular series (default: resample, and for
        tilt both the sheared stack and a resampled copy).
    jobs : int
        Processes reading headers (in chunks of INDEX_CHUNK files).

    Returns
    -------
    ScanResult
        ``plans`` (one :class:`VolumePlan` per output volume), ``skipped``
        frames with reasons, ``ignored`` non-image files and read ``errors``.
    """
    candidates = discover(paths)
    total = len(candidates)
    index = IndexResult()
    chunks = [candidates[i:i + INDEX_CHUNK] for i in range(0, total, INDEX_CHUNK)]
    done = 0
    for part in run_local(index_files, chunks, jobs if total > 2 * INDEX_CHUNK else 1, pool):
        index.extend(part)
        done = min(total, done + INDEX_CHUNK)  # chunks finish in any order; all are full-size
        if progress is not None:
            progress(done, total, "reading headers")
    index.sort()
    return plan_index(index, n_files=total, options=options)


def read_series(
    paths: Iterable[PathLike], options: PlanOptions | None = None
) -> list[Volume]:
    """Scan ``paths`` and read every planned volume into memory.

    Returns
    -------
    list of Volume
        Arrays indexed ``[i, j, k(, t)]`` with LPS affines (see :class:`Volume`).
    """
    return [read_volume(plan) for plan in scan(paths, options=options).plans]


@dataclass(frozen=True)
class _Job:
    plan: VolumePlan
    image: str
    sidecar: str
    options: ConvertOptions
    threads: int = 1  # compression threads for this job


@dataclass(frozen=True)
class _Done:
    job: _Job
    output: OutputRecord | None = None
    failed_path: str | None = None
    error: str | None = None
    exists: bool = False


def plan_digest(plan: VolumePlan) -> str:
    """A stable digest of what a plan reads and how (for ``--resume``)."""
    h = hashlib.sha256()
    for f in plan.all_frames:
        h.update(f"{f.sop_instance_uid}|{f.frame}|{f.rel}\n".encode())
    h.update(repr((plan.shape, plan.suffix, plan.resample)).encode())
    return h.hexdigest()[:32]


def _resumable(job: _Job, digest: str) -> bool:
    """True when the job's outputs exist, are complete and come from the same sources."""
    image, sidecar = Path(job.image), Path(job.sidecar)
    if not (image.is_file() and sidecar.is_file()):
        return False
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(meta.get("DicomvolPlanDigest") == digest)


def _record(job: _Job, spacing: tuple[float, ...], shape: tuple[int, ...],
            status: str, resampled: bool) -> OutputRecord:
    plan = job.plan
    return OutputRecord(
        path=Path(job.image).name, sidecar=Path(job.sidecar).name,
        series_instance_uid=plan.series_instance_uid, label=plan.label, shape=shape,
        spacing=spacing, n_frames=len(plan.all_frames), warnings=plan.warnings,
        sheared=plan.sheared, resampled=resampled, geometry=plan.geometry, status=status)


def _run_job(job: _Job) -> _Done:
    """Assemble and write one volume (runs in a worker process or on a Dask worker).

    Always writes: whether to skip an existing output (or keep it under
    ``--resume``) is decided by the client before submitting, so a task that a
    cluster runs twice (after losing a worker) rewrites the same complete files.
    """
    image, sidecar = Path(job.image), Path(job.sidecar)
    try:
        if _streamable(job):
            from dicomvol.stream import stream_nifti

            volume = stream_nifti(job.plan, image, job.options.compress, job.threads)
        else:
            volume = _read_and_write(job)
        from dicomvol.derived import write_diffusion

        write_diffusion(volume, image)
        content = volume.sidecar()
        if job.options.anonymize:
            from dicomvol.sidecar import anonymized

            content = anonymized(content)
        write_json_atomic(sidecar, {**content, "DicomvolPlanDigest": plan_digest(job.plan)})
    except PixelDataError as exc:
        return _Done(job, failed_path=exc.path, error=str(exc))
    except HeaderError as exc:  # e.g. SUV asked for but not computable: names the attribute
        return _Done(job, error=f"{Path(job.image).name} not written: {exc}")
    except Exception as exc:  # a bug or an I/O failure must cost this volume only
        log.debug("volume %s failed", image.name, exc_info=True)
        image.unlink(missing_ok=True)
        return _Done(job, error=f"{image.name} not written: {type(exc).__name__}: {exc}")
    return _Done(job, _record(job, volume.spacing, volume.shape, "written",
                              volume.plan is not None and volume.plan.resample is not None))


def _streamable(job: _Job) -> bool:
    """NIfTI without per-volume transforms: written slice by slice (bounded memory)."""
    from dicomvol.stream import can_stream

    opts = job.options
    return (opts.format == "nifti" and not opts.suv and not opts.reorient
            and can_stream(job.plan))


def _read_and_write(job: _Job) -> Volume:
    """Assemble the whole volume in memory, derive, and write it."""
    volume = read_volume(job.plan, workers=job.threads)
    if job.options.suv:
        from dicomvol.derived import apply_suv

        volume = apply_suv(volume)
    if job.options.reorient:
        from dicomvol.reorient import reorient_to_ras

        volume = reorient_to_ras(volume)
    from dicomvol.writers import write_volume

    write_volume(volume, job.image, job.options.format, compress=job.options.compress,
                 threads=job.threads)
    return volume


def _triage(job: _Job) -> _Done | None:
    """Decide in the client whether a job runs: None to run it, else its outcome."""
    image, sidecar = Path(job.image), Path(job.sidecar)
    if job.options.resume and _resumable(job, plan_digest(job.plan)):
        from dicomvol.output import read_grid

        shape, spacing = read_grid(image)
        return _Done(job, _record(job, spacing, shape, "resumed", job.plan.resample is not None))
    if not (job.options.overwrite or job.options.resume) and (
            image.exists() or sidecar.exists()):
        return _Done(job, exists=True)
    return None


def convert(
    paths: Iterable[PathLike],
    out_dir: PathLike,
    options: ConvertOptions | None = None,
    progress: ProgressFn | None = None,
) -> RunReport:
    """Convert every volume under ``paths`` into ``out_dir``.

    Writes one image and one JSON sidecar per volume, atomically, and
    ``dicomvol_report.json`` (plus ``dicomvol_report.parquet`` or ``.csv``)
    accounting for every input file and frame. A file that cannot be read is
    reported in ``errors`` and the rest of its series is planned again
    without it; nothing raises for bad input.

    Raises
    ------
    UsageError
        An input does not exist, the name template is malformed, or the
        options cannot be honoured (e.g. Dask not installed).
    """
    options = options or ConvertOptions()
    _check_template(options)
    paths = list(paths)
    with ExitStack() as stack:
        pool = None
        if options.jobs > 1 and not options.dask:  # one pool for headers and volumes
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=options.jobs))
        return _convert(paths, Path(out_dir), options, progress, pool)


def _convert(paths: list[PathLike], out_dir: Path, options: ConvertOptions,
             progress: ProgressFn | None, pool: ProcessPoolExecutor | None) -> RunReport:
    result = scan(paths, progress, options.plan, jobs=1 if options.dask else options.jobs,
                  pool=pool)
    out = out_dir.resolve()  # workers elsewhere (Dask) need an absolute path
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    report = RunReport(out_dir=str(out), skipped=list(result.skipped),
                       errors=list(result.errors), ignored=list(result.ignored),
                       n_files=result.n_files)
    allocator = NameAllocator()
    # Per-job parallelism (decode processes/threads, gzip threads) when volumes are fewer
    # than workers; on Dask the cluster owns parallelism.
    threads = 1 if options.dask else max(
        1, min(options.jobs, default_workers()) // max(1, min(options.jobs, len(result.plans))))
    pending = [replace(_job_for(plan, out, options, allocator), threads=threads)
               for plan in result.plans]
    for _ in range(_MAX_REPLANS + 1):
        failures = _execute(pending, options, report, progress,
                            pool if threads == 1 else None)
        if not failures:
            break
        pending = _replan(failures, out, options, allocator, report)
    _remove_stale_temporaries(out)  # e.g. left by a cluster worker that died mid-write
    report.outputs.sort(key=lambda o: o.path)
    report.write()
    return report


def _check_template(options: ConvertOptions) -> None:
    """Fail early on a bad template, or one that names the patient under --anonymize."""
    fields = template_fields(options.template)
    if options.anonymize:
        from dicomvol.bids import PATIENT_IDENTIFYING_KEYS
        from dicomvol.errors import UsageError

        named = sorted(set(fields) & (PATIENT_IDENTIFYING_KEYS | {"PatientName"}))
        if named:
            raise UsageError(f"--anonymize: the name template uses {', '.join(named)}; "
                             "choose a template without patient identifiers")


def _remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files left by an interrupted run (``.NAME.PID.tmp``)."""
    from dicomvol.atomic import TEMPORARY_GLOB

    for tmp in out.glob(TEMPORARY_GLOB):
        try:
            tmp.unlink()
        except OSError:
            log.warning("cannot remove stale temporary file %s", tmp)


def _job_for(plan: VolumePlan, out: Path, options: ConvertOptions,
             allocator: NameAllocator) -> _Job:
    from dicomvol.writers import extension

    stem = allocator.allocate(_stem(plan, options.template))
    ext = extension(options.format, options.compress)
    return _Job(plan, str(out / f"{stem}{ext}"), str(out / f"{stem}.json"), options)


def _stem(plan: VolumePlan, template: str) -> str:
    values: dict[str, object] = {}
    try:
        from dicomvol.fastheader import KEYWORDS, read_lean

        fields = template_fields(template)
        lean = read_lean(plan.first.path) if set(fields) <= set(KEYWORDS) else None
        ds: Any = lean[0] if lean is not None else header_of(plan.first.path)
        for name in fields:
            values[name] = ds.get(name)
    except Exception as exc:  # header was readable when indexed; never fail naming
        log.warning("%s: cannot read header for naming: %s", plan.first.rel, exc)
    return render(template, values) + plan.suffix


def _execute(jobs: Sequence[_Job], options: ConvertOptions, report: RunReport,
             progress: ProgressFn | None,
             pool: ProcessPoolExecutor | None = None) -> list[_Done]:
    failures: list[_Done] = []
    total = len(jobs)
    decided = [(job, _triage(job)) for job in jobs]
    to_run = [job for job, done in decided if done is None]
    if options.dask:
        results = run_dask(_run_job, to_run, options.dask, options.jobs)
    else:
        results = run_local(_run_job, to_run, options.jobs, pool)
    outcomes = itertools.chain((d for _, d in decided if d is not None), results)
    for n, done in enumerate(outcomes, 1):
        if done.output is not None:
            report.outputs.append(done.output)
        elif done.exists:
            reason = (f"output exists: {Path(done.job.image).name} "
                      f"(use --overwrite to replace it, or --resume)")
            report.skipped.extend(_skips(done.job.plan, reason))
        else:
            failures.append(done)
        if progress is not None:
            progress(n, total, "writing volumes")
    return failures


def _skips(plan: VolumePlan, reason: str) -> list[SkippedFrame]:
    return [SkippedFrame.of(f, reason) for f in plan.all_frames]


def _replan(failures: list[_Done], out: Path, options: ConvertOptions,
            allocator: NameAllocator, report: RunReport) -> list[_Job]:
    """Report each failing file and plan its series again without it."""
    jobs: list[_Job] = []
    for done in failures:
        plan = done.job.plan
        bad = done.failed_path
        frames = plan.all_frames
        if bad is None or all(f.path == bad for f in frames):
            first = frames[0]
            report.errors.append(FileError(bad or first.path, first.rel if bad is None else
                                           next(f.rel for f in frames if f.path == bad),
                                           done.error or "conversion failed"))
            if bad is None:
                report.skipped.extend(_skips(plan, f"volume failed: {done.error}"))
            continue
        rel = next(f.rel for f in frames if f.path == bad)
        report.errors.append(FileError(bad, rel, done.error or "cannot decode"))
        rest = [f for f in frames if f.path != bad]
        plans, skipped, _ = plan_series(rest, options.plan)
        report.skipped.extend(skipped)
        for new in plans:
            new = replace(new, suffix=plan.suffix + new.suffix) if new.suffix else replace(
                new, suffix=plan.suffix)
            jobs.append(_job_for(new, out, options, allocator))
    return jobs

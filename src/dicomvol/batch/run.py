"""A conversion run: scan, name, triage, execute jobs, re-plan around bad files, report.

One process pool serves a run (header reading, then one job per volume).
A file that fails to decode is reported in ``errors`` and the rest of its
series is planned again without it; nothing raises for bad input.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dicomvol._typing import PathLike
from dicomvol.batch.archive import Archive, mark_revised, start_report
from dicomvol.batch.executors import (
    default_workers,
    open_pool,
    run_dask,
    run_local,
    run_workers,
)
from dicomvol.batch.naming import NameAllocator, render, template_fields
from dicomvol.batch.scan import ProgressFn, discover_inputs, scan_inputs
from dicomvol.batch.tasks import run_job
from dicomvol.batch.work import Done, Job, triage
from dicomvol.errors import UsageError
from dicomvol.inputs import fs
from dicomvol.inputs.discover import Discovered
from dicomvol.io.atomic import TEMPORARY_GLOB
from dicomvol.io.formats import extension
from dicomvol.model.plan import ScanResult, VolumePlan
from dicomvol.model.records import FileError, SkippedFrame
from dicomvol.options import ConvertOptions
from dicomvol.pixels.digest import SamePixels
from dicomvol.plan.planner import plan_series
from dicomvol.report.ledger import Ledger
from dicomvol.report.run import RunReport

if TYPE_CHECKING:  # pragma: no cover - multiprocessing is imported where a pool starts
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

#: How many times a series is re-planned after a file in it fails to decode.
MAX_REPLANS = 3


def convert_run(paths: Sequence[PathLike], out_dir: PathLike, options: ConvertOptions,
                progress: ProgressFn | None = None, archive: Archive | None = None
                ) -> RunReport:
    """Convert every volume under ``paths`` into ``out_dir`` (see :func:`dicomvol.convert`).

    ``archive`` (IDC selections, bucket inputs) adds the completeness check
    against the IDC index to the report; without it one is made for URL inputs.
    """
    check_template(options)
    check_output(Path(out_dir))
    fs.configure(options.storage)
    if archive is None:
        archive = Archive(inputs=[str(p) for p in paths])
    if options.qc:  # imported before the pool forks, so that no worker imports it again
        import dicomvol.qc.capture  # noqa: F401
    found = discover_inputs(paths, out_dir)
    if not options.dask:  # small inputs run in this process unless -j was chosen
        options = replace(options, jobs=run_workers(options.jobs, found.candidates,
                                                    options.adaptive_jobs))
    with ExitStack() as stack:
        pool = None
        if options.jobs > 1 and not options.dask:  # one pool for headers and volumes
            pool = stack.enter_context(open_pool(options.jobs))
        return _convert(list(paths), Path(out_dir), options, progress, pool, archive, found)


def _convert(paths: list[PathLike], out_dir: Path, options: ConvertOptions,
             progress: ProgressFn | None, pool: ProcessPoolExecutor | None,
             archive: Archive, found: Discovered) -> RunReport:
    """Scan, run every job, then settle the frame ledger and write the report.

    Whatever fails inside (a bug included) costs the frames it concerns, never
    the report: the ledger reports what ended nowhere.
    """
    names = template_fields(options.template)
    ledger = Ledger()
    result = scan_inputs(paths, progress, options.plan, jobs=1 if options.dask else options.jobs,
                         pool=pool, names=names, ledger=ledger,
                         jpeg_color=options.slide.jpeg_color, found=found)
    out = out_dir.resolve()  # workers elsewhere (Dask) need an absolute path
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    report = RunReport(out_dir=str(out), skipped=list(result.skipped),
                       errors=list(result.errors), ignored=list(result.ignored),
                       n_files=result.n_files)
    revised = start_report(archive, report, result.series_checks, out, options.resume)
    unused: list[SkippedFrame] = []
    try:
        _run_jobs(result, out, options, report, unused, progress, pool)
    except Exception as exc:  # a bug in the run itself: report what was done, and the rest
        log.error("the run stopped early: %s: %s (frames not converted are reported as "
                  "errors)", type(exc).__name__, exc)
        log.debug("run failed", exc_info=True)
    report.skipped.extend(_still_unused(unused, report))
    remove_stale_temporaries(out)  # e.g. left by a cluster worker that died mid-write
    mark_revised(report, revised)
    report.outputs.sort(key=lambda o: o.path)
    report.settle(ledger)
    report.write()
    if options.qc:
        _qc_page(out, report, progress)
    return report


def _run_jobs(result: ScanResult, out: Path, options: ConvertOptions, report: RunReport,
              unused: list[SkippedFrame], progress: ProgressFn | None,
              pool: ProcessPoolExecutor | None) -> None:
    """Image jobs (re-planned around bad files), then label-map jobs."""
    allocator = NameAllocator()
    # Per-job parallelism (decode processes/threads, gzip threads) when volumes are fewer
    # than workers; on Dask the cluster owns parallelism. Jobs run in the run's pool even
    # then (a worker starts its own decode processes): its workers have imported the job
    # code while reading headers, and this process never imports pydicom.
    threads = 1 if options.dask else max(
        1, min(options.jobs, default_workers()) // max(1, min(options.jobs, len(result.plans))))
    pending = [replace(job_for(plan, out, options, allocator), threads=threads)
               for plan in result.plans]
    image_jobs = list(pending)
    for _ in range(MAX_REPLANS + 1):
        failures = _execute(pending, options, report, unused, progress, pool)
        pending = _replan(failures, out, options, allocator, report, unused)
        if not pending:
            break
    for job in pending:  # still failing after MAX_REPLANS rounds
        report.skipped.extend(_skips(job.plan, f"not converted: its series was planned again "
                                               f"{MAX_REPLANS} times around files that failed"))
    if result.derived:  # imported only then: objects/ and the label-map writers
        from dicomvol.batch.labelmaps import label_jobs, run_label_jobs

        jobs, not_run = label_jobs(result.derived, image_jobs, out, options, allocator, report)
        run_label_jobs(jobs, not_run, options, report, progress, pool)
    if result.slide_frames:  # whole-slide microscopy: pyramids, not volumes
        from dicomvol.batch.slides import run_slides

        run_slides(result, out, options, allocator, report, progress)


def _still_unused(unused: Sequence[SkippedFrame], report: RunReport) -> list[SkippedFrame]:
    """Frames a job's output left out that no other output holds (e.g. a resampled copy
    of a tilted series leaves out a slice that the exact sheared output holds)."""
    if not unused:
        return []
    held = {(k[0], k[1], k[2]) for o in report.outputs for k in o.sources}
    return [s for s in unused if (s.path, s.sop_instance_uid, s.frame) not in held]


def _qc_page(out: Path, report: RunReport, progress: ProgressFn | None) -> None:
    """Build ``qc/index.html``; a failure is logged, the conversion stands."""
    from dicomvol.qc.build import build_page

    try:
        build_page(out, progress=progress, report=report.to_json())
    except Exception as exc:  # the outputs and the report are written: never lose them
        log.error("QC page not written: %s: %s (run dicomvol qc %s)", type(exc).__name__,
                  exc, out)
        log.debug("QC page failed", exc_info=True)


def check_template(options: ConvertOptions) -> None:
    """Fail early on a bad template, or one that names the patient under --anonymize."""
    fields = template_fields(options.template)
    if options.anonymize:
        from dicomvol.metadata.bids import PATIENT_IDENTIFYING_KEYS

        named = sorted(set(fields) & (PATIENT_IDENTIFYING_KEYS | {"PatientName"}))
        if named:
            raise UsageError(f"--anonymize: the name template uses {', '.join(named)}; "
                             "choose a template without patient identifiers")


def check_output(out_dir: Path) -> None:
    """Fail early (a usage error) when the output folder, or a folder above it, is a file."""
    for path in (out_dir, *out_dir.absolute().parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                where = "" if path == out_dir else f" (in the output folder {out_dir})"
                raise UsageError(f"{path}{where} is an existing file, not a folder; name a "
                                 "new or an existing folder for the outputs")
            return


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files left by an interrupted run (``.NAME.PID.tmp``)."""
    for tmp in out.glob(TEMPORARY_GLOB):
        try:
            tmp.unlink()
        except OSError:
            log.warning("cannot remove stale temporary file %s", tmp)


def job_for(plan: VolumePlan, out: Path, options: ConvertOptions,
            allocator: NameAllocator) -> Job:
    """The job writing ``plan``, under a name from the template that no other output has."""
    stem = allocator.allocate(render(options.template, dict(plan.first.names)) + plan.suffix)
    ext = extension(options.format, options.compress)
    return Job(plan, str(out / f"{stem}{ext}"), str(out / f"{stem}.json"), options)


def _job_failed(job: Job, exc: BaseException) -> Done:
    """The outcome of a job that raised outside its own guard, or whose worker died."""
    return Done(job, error=f"{Path(job.image).name} not written: internal: "
                           f"{type(exc).__name__}: {exc}".rstrip(": "))


def _triage(job: Job) -> Done | None:
    """:func:`triage`, a failure (e.g. an unreadable existing output) costing this job."""
    try:
        return triage(job)
    except Exception as exc:
        return _job_failed(job, exc)


def _execute(jobs: Sequence[Job], options: ConvertOptions, report: RunReport,
             unused: list[SkippedFrame], progress: ProgressFn | None,
             pool: ProcessPoolExecutor | None = None) -> list[Done]:
    failures: list[Done] = []
    total = len(jobs)
    decided = [(job, _triage(job)) for job in jobs]
    to_run = [job for job, done in decided if done is None]
    if options.dask:
        results = run_dask(run_job, to_run, options.dask, options.jobs, on_error=_job_failed)
    elif _runs_here(to_run):
        results = run_local(run_job, to_run, 1, None, on_error=_job_failed)
    else:
        results = run_local(run_job, to_run, options.jobs, pool, on_error=_job_failed)
    outcomes = itertools.chain((d for _, d in decided if d is not None), results)
    for n, done in enumerate(outcomes, 1):
        if done.output is not None:
            report.outputs.append(done.output)
            unused.extend(done.unused)
        elif done.exists:
            reason = (f"output exists: {Path(done.job.image).name} "
                      f"(use --overwrite to replace it, or --resume)")
            report.skipped.extend(_skips(done.job.plan, reason))
        else:
            failures.append(done)
        if progress is not None:
            progress(n, total, "writing volumes")
    return failures


def _runs_here(jobs: Sequence[Job]) -> bool:
    """Whether the only job of a run runs in this process rather than in the pool: when
    every frame's pixel data is uncompressed in its file (no decoder that could crash the
    process, no decode processes to start), a worker would only add the plan's pickling
    and the job code's imports while this process waits (0.1 s of a 5,000-file series)."""
    return len(jobs) == 1 and all(f.uncompressed for f in jobs[0].plan.all_frames)


def _skips(plan: VolumePlan, reason: str) -> list[SkippedFrame]:
    return [SkippedFrame.of(f, reason) for f in plan.all_frames]


def _replan(failures: list[Done], out: Path, options: ConvertOptions,
            allocator: NameAllocator, report: RunReport,
            unused: list[SkippedFrame]) -> list[Job]:
    """Report each failing file and plan its series again without it.

    A volume that failed as a whole (no file to blame) is an error naming its
    first file; its frames are skipped unless another output holds them.
    """
    jobs: list[Job] = []
    reported = {e.path for e in report.errors}
    replanned: set[frozenset[tuple[str, str, int, int]]] = set()
    # Plans over the same frames (a tilted series' sheared and resampled volumes) fail on
    # the same file: the series is planned again once, from the plan with the shortest name.
    for done in sorted(failures, key=lambda d: (len(d.job.plan.suffix), d.job.image)):
        plan = done.job.plan
        frames = plan.all_frames
        rel_of = {f.path: f.rel for f in frames}
        bad = done.failed_path if done.failed_path in rel_of else None
        if bad is None or len(rel_of) == 1:
            first = frames[0]
            path = bad or first.path
            if path not in reported or bad is None:
                report.errors.append(FileError(path, rel_of.get(path, first.rel),
                                               done.error or "conversion failed"))
                reported.add(path)
            if bad is None:
                unused.extend(_skips(plan, f"volume failed: {done.error}"))
            continue
        if bad not in reported:
            report.errors.append(FileError(bad, rel_of[bad], done.error or "cannot decode"))
            reported.add(bad)
        rest = [f for f in frames if f.path != bad]
        same = frozenset((f.path, f.sop_instance_uid, f.frame, f.tile or 0) for f in rest)
        if same in replanned:
            continue
        replanned.add(same)
        try:
            plans, skipped, _ = plan_series(rest, options.plan, SamePixels())
        except Exception as exc:  # a bug in re-planning costs this series only
            log.debug("re-planning failed", exc_info=True)
            report.skipped.extend(SkippedFrame.of(f, "not converted: planning the series "
                                                  f"again without {rel_of[bad]} failed: "
                                                  f"{type(exc).__name__}: {exc}") for f in rest)
            continue
        report.skipped.extend(skipped)
        for new in plans:
            new = replace(new, suffix=plan.suffix + new.suffix) if new.suffix else replace(
                new, suffix=plan.suffix)
            jobs.append(job_for(new, out, options, allocator))
    return jobs

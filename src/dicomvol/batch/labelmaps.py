"""Label maps in a run: name them after their image, run their jobs, account for every frame.

Runs after the image jobs: a label map is written only when the image output
whose grid it shares was written (or resumed) in this run, so that the map
and the image always sit on the same grid. Every SEG frame ends in a label
map's ``SourceInstances``, in ``skipped`` (with why it is in no map) or, by
file, in ``errors``; every RTSTRUCT instance likewise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dicomvol.batch.executors import run_dask, run_local
from dicomvol.batch.labels import LabelDone, LabelJob, run_label_job, triage_label
from dicomvol.batch.naming import NameAllocator, render
from dicomvol.batch.scan import ProgressFn
from dicomvol.batch.work import Job
from dicomvol.io.formats import extension, stem_of
from dicomvol.model.plan import DerivedPlan
from dicomvol.model.records import FileError, SkippedFrame
from dicomvol.options import ConvertOptions
from dicomvol.report.run import RunReport

if TYPE_CHECKING:  # pragma: no cover - multiprocessing is imported where a pool starts
    from concurrent.futures import ProcessPoolExecutor


def label_jobs(derived: Sequence[DerivedPlan], image_jobs: Sequence[Job], out: Path,
               options: ConvertOptions, allocator: NameAllocator,
               report: RunReport) -> tuple[list[LabelJob], list[tuple[DerivedPlan, str]]]:
    """One job per derived plan whose image output was written (or exists from an earlier
    run: the label job's own triage then applies ``--overwrite``/``--resume``); the rest with
    why not."""
    by_plan = {id(job.plan): job for job in image_jobs}
    written = {o.path for o in report.outputs}
    ext = extension(options.format, options.compress)
    jobs = []
    not_run: list[tuple[DerivedPlan, str]] = []
    for plan in derived:
        referenced: str | None = None
        if plan.own_grid:
            stem = (render(options.template, dict(plan.target.first.names)) + plan.target.suffix
                    + "_" + plan.kind.lower())
        else:
            image = by_plan.get(id(plan.target))
            name = Path(image.image).name if image is not None else None
            if image is None or (name not in written and not Path(image.image).is_file()):
                not_run.append((plan, "the image output whose grid the label map shares was "
                                      "not written in this run"))
                continue
            referenced = name
            stem = Path(stem_of(image.image)).name + "_" + plan.kind.lower()
        stem = allocator.allocate(stem)
        jobs.append(LabelJob(plan, str(out / f"{stem}{ext}"), str(out / f"{stem}.json"),
                             referenced, options))
    return jobs, not_run


def run_label_jobs(jobs: Sequence[LabelJob], not_run: Sequence[tuple[DerivedPlan, str]],
                   options: ConvertOptions, report: RunReport,
                   progress: ProgressFn | None = None,
                   pool: ProcessPoolExecutor | None = None) -> None:
    """Run label jobs and enter their outcomes (outputs, skips, errors) in the report."""
    decided = [(job, _triage(job)) for job in jobs]
    to_run = [job for job, done in decided if done is None]
    if options.dask:
        results = run_dask(run_label_job, to_run, options.dask, options.jobs,
                           on_error=_label_failed)
    else:
        results = run_local(run_label_job, to_run, options.jobs, pool, on_error=_label_failed)
    outcomes = itertools.chain((d for _, d in decided if d is not None), results)
    dones: list[LabelDone] = []
    for n, done in enumerate(outcomes, 1):
        dones.append(done)
        if progress is not None:
            progress(n, len(jobs), "writing label maps")
    account(dones, not_run, report)


def _label_failed(job: LabelJob, exc: BaseException) -> LabelDone:
    """The outcome of a label job that raised outside its guard, or whose worker died."""
    return LabelDone(job, error=f"{Path(job.image).name} not written: internal: "
                                f"{type(exc).__name__}: {exc}".rstrip(": "),
                     failed_path=job.plan.obj.path)


def _triage(job: LabelJob) -> LabelDone | None:
    """:func:`triage_label`, a failure (e.g. an unreadable sidecar) costing this map only."""
    try:
        return triage_label(job)
    except Exception as exc:
        return _label_failed(job, exc)


def account(dones: Sequence[LabelDone], not_run: Sequence[tuple[DerivedPlan, str]],
            report: RunReport) -> None:
    """Outputs, errors and the frames of each object that no written map holds.

    An object none of whose maps was written is skipped whole (one entry, Frame
    None) with the first reason; a map that failed is an error naming the file.
    """
    used: dict[str, set[tuple[str, int]]] = {}
    unplaced: dict[tuple[str, int], SkippedFrame] = {}
    plans: dict[str, DerivedPlan] = {}
    failed: set[str] = set()
    why_not: dict[str, tuple[DerivedPlan, str]] = {}
    for plan, reason in not_run:
        why_not.setdefault(plan.obj.sop_instance_uid, (plan, reason))
    for done in sorted(dones, key=lambda d: d.job.image):
        plan = done.job.plan
        key = plan.obj.sop_instance_uid
        plans.setdefault(key, plan)
        if done.output is not None:
            obj = plan.obj  # the map's sources, as ledger keys: the SEG frames or the RTSTRUCT
            report.outputs.append(replace(done.output, sources=tuple(
                (obj.path, sop, frame, 0) for sop, frame in done.used)))
            used.setdefault(key, set()).update(done.used)
            for s in done.unplaced:
                unplaced.setdefault((s.sop_instance_uid, s.frame or 0), s)
        elif done.exists:
            why_not.setdefault(key, (plan, f"output exists: {Path(done.job.image).name} (use "
                                           "--overwrite to replace it, or --resume)"))
        else:
            report.errors.append(FileError(done.failed_path or plan.obj.path, plan.obj.rel,
                                           done.error or "label map failed"))
            failed.add(key)
    for key, (plan, reason) in why_not.items():
        if key not in used and key not in failed:
            report.skipped.append(plan.obj.skip(reason))
    for key, plan in plans.items():
        if key in failed or key not in used:
            continue
        for frame in plan.frames:
            if (frame.sop_instance_uid, frame.frame) in used[key]:
                continue
            report.skipped.append(unplaced.get(
                (frame.sop_instance_uid, frame.frame),
                SkippedFrame.of(frame, "SEG frame in no label map (outside every paired grid)")))


"""A job as a value: :class:`Job` (one output volume), its :class:`Done`, and the
client's :func:`triage` (``--overwrite``, ``--resume``).

Kept apart from :mod:`dicomvol.batch.jobs`, which runs a job (pydicom, the pixel,
metadata and writer stages), so that the planning process holds jobs and their
results without importing any of that (see :mod:`dicomvol.batch.tasks`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dicomvol.inputs.names import name_bytes
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import SkippedFrame
from dicomvol.options import ConvertOptions
from dicomvol.pixels.digest import sha256
from dicomvol.report.ledger import FrameKey
from dicomvol.report.run import OutputRecord


@dataclass(frozen=True)
class Job:
    """One volume to write: its plan, output paths, options and thread budget."""

    plan: VolumePlan
    image: str
    sidecar: str
    options: ConvertOptions
    threads: int = 1  # decode processes / compression threads for this job


@dataclass(frozen=True)
class Done:
    """What became of a job: an output record, a failure (naming the file), or 'exists'."""

    job: Job
    output: OutputRecord | None = None
    failed_path: str | None = None
    error: str | None = None
    exists: bool = False
    #: Frames of the plan the output does not hold (a resampled grid no plane of which
    #: draws on them), with why; the client skips those that no other output holds.
    unused: tuple[SkippedFrame, ...] = ()


def plan_digest(plan: VolumePlan) -> str:
    """A stable digest of what a plan reads and how (for ``--resume``)."""
    h = sha256()  # CPython's own SHA-256: no OpenSSL (same digests as hashlib's)
    for f in plan.all_frames:
        h.update(name_bytes(f"{f.sop_instance_uid}|{f.frame}|{f.rel}\n"))
    h.update(repr((plan.shape, plan.suffix, plan.resample)).encode())
    return h.hexdigest()[:32]


def _resumable(job: Job, digest: str) -> dict[str, Any] | None:
    """The sidecar when the job's outputs exist, are complete and come from the same
    sources, else None."""
    image, sidecar = Path(job.image), Path(job.sidecar)
    if not (image.is_file() and sidecar.is_file()):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("DicomvolPlanDigest") != digest:
        return None
    return meta


def source_keys(plan: VolumePlan, entries: Sequence[Any]) -> tuple[FrameKey, ...]:
    """Ledger keys of the ``SourceInstances`` entries a sidecar names (O(frames)).

    Entries are matched to the plan's frames by file, instance, frame and tile;
    an entry that names no frame of the plan is left out (the ledger then
    finds its frame unaccounted for).
    """
    by_entry = {(f.rel, f.sop_instance_uid, f.frame, f.tile or 0): f.path
                for f in plan.all_frames}
    keys = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        try:
            ident = (str(e["File"]), str(e["SOPInstanceUID"]), int(e["Frame"]),
                     int(e.get("Tile") or 0))
        except (KeyError, TypeError, ValueError):
            continue
        path = by_entry.get(ident)
        if path is not None:
            keys.append((path, ident[1], ident[2], ident[3]))
    return tuple(keys)


def unused_frames(plan: VolumePlan, sources: Sequence[FrameKey]) -> tuple[SkippedFrame, ...]:
    """The plan's frames its output does not name, each with why (a resampled grid)."""
    held = set(sources)
    unused = [f for f in plan.all_frames
              if (f.path, f.sop_instance_uid, f.frame, f.tile or 0) not in held]
    if not unused:
        return ()
    reason = ("not in the resampled volume: no plane of its regular grid "
              f"({plan.resample.spacing:g} mm) lies near enough to draw on this slice"
              if plan.resample is not None else "not in the volume written for its series")
    return tuple(SkippedFrame.of(f, reason) for f in unused)


def record(job: Job, spacing: tuple[float, ...], shape: tuple[int, ...],
           status: str, resampled: bool) -> OutputRecord:
    """The report's entry for a job's output."""
    plan = job.plan
    return OutputRecord(
        path=Path(job.image).name, sidecar=Path(job.sidecar).name,
        series_instance_uid=plan.series_instance_uid, label=plan.label, shape=shape,
        spacing=spacing, n_frames=len(plan.all_frames), warnings=plan.warnings,
        sheared=plan.sheared, resampled=resampled, checks=plan.checks, status=status)


def triage(job: Job) -> Done | None:
    """Decide in the client whether a job runs: None to run it, else its outcome."""
    image, sidecar = Path(job.image), Path(job.sidecar)
    meta = _resumable(job, plan_digest(job.plan)) if job.options.resume else None
    if meta is not None:
        from dicomvol.io.readback import read_grid  # nibabel: only to resume

        shape, spacing = read_grid(image)
        sources = source_keys(job.plan, meta.get("SourceInstances") or ())
        return Done(job, replace(record(job, spacing, shape, "resumed",
                                        job.plan.resample is not None), sources=sources),
                    unused=unused_frames(job.plan, sources))
    if not (job.options.overwrite or job.options.resume) and (
            image.exists() or sidecar.exists()):
        return Done(job, exists=True)
    return None

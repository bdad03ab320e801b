"""One job = one output volume: read its headers once, assemble or stream, derive, write.

A :class:`Job` is a picklable value (a plan, output paths, options); its
result a small :class:`Done`. Jobs run in this process, in a process pool or
on Dask workers (:mod:`dicomvol.batch.executors`); a job always writes
(atomically), so a task that a cluster runs twice rewrites the same files.
Whether a job runs at all (``--overwrite``, ``--resume``) is decided by the
client (:func:`triage`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dicomvol.batch.derive import apply_suv, suv_factor, with_object_metadata, write_diffusion
from dicomvol.batch.reading import read_volume
from dicomvol.dicom.cache import JobSources
from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.io.formats import write_volume
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.io.readback import read_grid
from dicomvol.io.stream import can_stream, stream_nifti
from dicomvol.metadata.diffusion import plan_diffusion
from dicomvol.metadata.sidecar import anonymized, build_metadata
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import SkippedFrame
from dicomvol.model.reorient import reorient_to_ras
from dicomvol.model.volume import Volume
from dicomvol.options import ConvertOptions
from dicomvol.report.ledger import FrameKey
from dicomvol.report.run import OutputRecord

if TYPE_CHECKING:  # pragma: no cover - the QC modules are imported only for --qc
    from dicomvol.qc.sample import Sample, SliceSampler

log = logging.getLogger(__name__)


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
    h = hashlib.sha256()
    for f in plan.all_frames:
        h.update(f"{f.sop_instance_uid}|{f.frame}|{f.rel}\n".encode())
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
        shape, spacing = read_grid(image)
        sources = source_keys(job.plan, meta.get("SourceInstances") or ())
        return Done(job, replace(record(job, spacing, shape, "resumed",
                                        job.plan.resample is not None), sources=sources),
                    unused=unused_frames(job.plan, sources))
    if not (job.options.overwrite or job.options.resume) and (
            image.exists() or sidecar.exists()):
        return Done(job, exists=True)
    return None


def run_job(job: Job) -> Done:
    """Assemble and write one volume (runs in a worker process or on a Dask worker).

    Every header the job needs is read first, from one :class:`JobSources`, so
    that each input file is opened once; then the pixels are streamed or
    assembled, the derived values applied and the image, bval/bvec and sidecar
    written. Any failure costs this volume only and comes back as a
    :class:`Done` naming what went wrong.
    """
    image = Path(job.image)
    fs.configure(job.options.storage)  # this worker's own object-store client
    try:
        return _run(job, image)
    except PixelDataError as exc:
        return Done(job, failed_path=exc.path, error=str(exc))
    except HeaderError as exc:  # e.g. SUV asked for but not computable: names the attribute
        return Done(job, error=f"{image.name} not written: {exc}")
    except Exception as exc:  # a bug or an I/O failure must cost this volume only
        log.debug("volume %s failed", image.name, exc_info=True)
        image.unlink(missing_ok=True)
        return Done(job, error=f"{image.name} not written: {type(exc).__name__}: {exc}")


def _run(job: Job, image: Path) -> Done:
    plan, opts = job.plan, job.options
    sources = JobSources(list(dict.fromkeys(f.path for f in plan.all_frames)),
                         opts.storage.max_bytes_in_flight)
    try:
        return _run_with(job, image, sources)
    finally:
        sources.close()


def _run_with(job: Job, image: Path, sources: JobSources) -> Done:
    plan, opts = job.plan, job.options
    metadata = with_object_metadata(build_metadata(plan, sources), plan, sources)
    diffusions = plan_diffusion(plan, sources)
    factor = suv_factor(plan, sources) if opts.suv else None
    sample: Sample | None = None
    if opts.format == "nifti" and factor is None and not opts.reorient and can_stream(plan):
        sampler = _qc_sampler(plan) if opts.qc else None
        mode = stream_nifti(plan, image, opts.compress, metadata, job.threads, sources, sampler)
        if sampler is not None:
            sample = sampler.result(mode.scl_slope, mode.scl_inter)
        affine = plan.affine
        content = {**metadata, "SourceInstances": [f.source() for f in plan.all_frames]}
        spacing, shape, resampled = plan.geometry.spacing, tuple(plan.shape), False
    else:
        volume = read_volume(plan, job.threads, sources, metadata,
                             writable=factor is not None or opts.reorient)  # else written only
        if factor is not None:
            volume = apply_suv(volume, factor)
        if opts.reorient:
            volume = reorient_to_ras(volume)
        write_volume(volume, image, opts.format, compress=opts.compress, threads=job.threads)
        if opts.qc:
            sample = _qc_sample(volume)
        affine = volume.affine
        content = volume.sidecar()
        spacing, shape, resampled = volume.spacing, volume.shape, plan.resample is not None
    write_diffusion(diffusions, affine, image)
    if opts.anonymize:
        content = anonymized(content)
    write_json_atomic(Path(job.sidecar), {**content, "DicomvolPlanDigest": plan_digest(plan)})
    if sample is not None:
        _draw_qc(job, sample, affine, shape)
    keys = source_keys(plan, content.get("SourceInstances") or ())
    return Done(job, replace(record(job, spacing, shape, "written", resampled), sources=keys),
                unused=unused_frames(plan, keys))


def _qc_sampler(plan: VolumePlan) -> SliceSampler:
    """What samples the QC thumbnails while the streaming writer passes each slice by."""
    from dicomvol.qc.capture import wants_mip
    from dicomvol.qc.sample import SliceSampler

    return SliceSampler(plan.shape, wants_mip(plan.modality))


def _qc_sample(volume: Volume) -> Sample:
    """The QC sample of a volume in memory."""
    from dicomvol.qc.capture import wants_mip
    from dicomvol.qc.sample import sample_array

    return sample_array(volume.data, volume.scl_slope, volume.scl_inter,
                        wants_mip(volume.plan.modality if volume.plan else ""))


def _draw_qc(job: Job, sample: Sample, affine: np.ndarray, shape: tuple[int, ...]) -> None:
    """The QC thumbnails and record of a written volume; a failure costs the pictures only.

    The page then draws the volume from its file (``dicomvol.qc.build``).
    """
    from dicomvol.qc.capture import from_job

    try:
        from_job(job.plan, Path(job.image), Path(job.sidecar).stem, sample, affine, shape)
    except Exception as exc:  # never lose a written volume over its thumbnails
        log.warning("QC thumbnails of %s not drawn: %s: %s", Path(job.image).name,
                    type(exc).__name__, exc)
        log.debug("QC drawing failed", exc_info=True)

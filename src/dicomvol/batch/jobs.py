"""One job = one output volume: read its headers once, assemble or stream, derive, write.

A :class:`~dicomvol.batch.work.Job` is a picklable value (a plan, output paths,
options); its result a small :class:`~dicomvol.batch.work.Done` (both in
:mod:`dicomvol.batch.work`, which the planning process imports without this
module and its pydicom). Jobs run in this process, in a process pool or
on Dask workers (:mod:`dicomvol.batch.executors`); a job always writes
(atomically), so a task that a cluster runs twice rewrites the same files.
Whether a job runs at all (``--overwrite``, ``--resume``) is decided by the
client (:func:`dicomvol.batch.work.triage`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomvol._typing import AffineLike
from dicomvol.batch.derive import suv_factor, with_object_metadata, write_diffusion
from dicomvol.batch.work import Done, Job, plan_digest, record, source_keys, unused_frames
from dicomvol.dicom.cache import JobSources
from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.io.stream import can_stream, stream_nifti
from dicomvol.metadata.diffusion import plan_diffusion
from dicomvol.metadata.sidecar import anonymized, build_metadata
from dicomvol.model.plan import VolumePlan

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:  # pragma: no cover - the QC modules are imported only for --qc
    from dicomvol.metadata.suv import SuvFactor
    from dicomvol.model.volume import Volume
    from dicomvol.qc.sample import Sample, SliceSampler

log = logging.getLogger(__name__)


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
    heads = {f.path: f.pixel_offset for f in plan.all_frames  # read their headers only
             if f.number_of_frames > 1 and f.pixel_offset and not f.gzipped}
    sources = JobSources(list(dict.fromkeys(f.path for f in plan.all_frames)),
                         opts.storage.max_bytes_in_flight, heads)
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
        affine: AffineLike = plan.affine_rows  # no ndarray for a streamed plan
        content = {**metadata, "SourceInstances": [f.source() for f in plan.all_frames]}
        spacing, shape, resampled = plan.spacing, tuple(plan.shape), False
    else:
        volume = _write_assembled(job, image, sources, metadata, factor)
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


def _write_assembled(job: Job, image: Path, sources: JobSources, metadata: dict[str, Any],
                     factor: SuvFactor | None) -> Volume:
    """Assemble the volume in memory (SUV, --reorient, resampling, NRRD/MHA), write it.

    Its code (assembly, resampling, the format registry) is imported here: a plain
    series is streamed and never needs it.
    """
    from dicomvol.batch.derive import apply_suv
    from dicomvol.batch.reading import read_volume
    from dicomvol.io.formats import write_volume
    from dicomvol.model.reorient import reorient_to_ras

    opts = job.options
    volume = read_volume(job.plan, job.threads, sources, metadata,
                         writable=factor is not None or opts.reorient)  # else written only
    if factor is not None:
        volume = apply_suv(volume, factor)
    if opts.reorient:
        volume = reorient_to_ras(volume)
    write_volume(volume, image, opts.format, compress=opts.compress, threads=job.threads)
    return volume


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


def _draw_qc(job: Job, sample: Sample, affine: AffineLike, shape: tuple[int, ...]) -> None:
    """The QC thumbnails and record of a written volume; a failure costs the pictures only.

    The page then draws the volume from its file (``dicomvol.qc.build``).
    """
    import numpy as np

    from dicomvol.qc.capture import from_job

    try:
        from_job(job.plan, Path(job.image), Path(job.sidecar).stem, sample,
                 np.asarray(affine, dtype=np.float64), shape)
    except Exception as exc:  # never lose a written volume over its thumbnails
        log.warning("QC thumbnails of %s not drawn: %s: %s", Path(job.image).name,
                    type(exc).__name__, exc)
        log.debug("QC drawing failed", exc_info=True)

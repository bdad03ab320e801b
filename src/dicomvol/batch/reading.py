"""A planned volume read into memory: pixels assembled, sidecar metadata attached."""

from __future__ import annotations

from typing import Any

from dicomvol.batch.derive import with_object_metadata
from dicomvol.dicom.cache import JobSources
from dicomvol.metadata.sidecar import build_metadata, mark_resampled
from dicomvol.model.plan import VolumePlan
from dicomvol.model.volume import Volume
from dicomvol.pixels.assemble import assemble


def read_volume(plan: VolumePlan, workers: int = 1, sources: JobSources | None = None,
                metadata: dict[str, Any] | None = None, writable: bool = True) -> Volume:
    """Decode a plan's frames into a :class:`~dicomvol.model.volume.Volume` with its sidecar.

    Parameters
    ----------
    plan : VolumePlan
        From :func:`dicomvol.scan`.
    workers : int
        Threads decoding files in parallel.
    sources : JobSources, optional
        The job's file cache (each file opened once); a fresh one when not given.
    metadata : dict, optional
        Sidecar content already built from ``sources`` (built here when not given).
    writable : bool
        False: ``data`` may be a read-only view of an input file's bytes (a
        caller that only writes the volume out; see :func:`assemble`).

    Raises
    ------
    PixelDataError
        A frame cannot be decoded; the message names the file.
    """
    sources = sources if sources is not None else JobSources()
    meta = metadata if metadata is not None else with_object_metadata(
        build_metadata(plan, sources), plan, sources)
    pixels = assemble(plan, workers, sources, writable=writable)
    if pixels.resampling is not None:
        meta = mark_resampled(meta, plan, pixels.resampling, tuple(pixels.data.shape))
    return Volume(data=pixels.data, affine=pixels.affine, scl_slope=pixels.scl_slope,
                  scl_inter=pixels.scl_inter, metadata=meta,
                  source_instances=tuple(f.source() for f in pixels.used), plan=plan)

"""The JSON sidecar: contract fields plus dcm2niix-named acquisition metadata.

Headers come from the job's :class:`~dicomvol.dicom.cache.JobSources` (each
file opened once per job), never from files opened here.
"""

from __future__ import annotations

import logging
from typing import Any

from dicomvol._version import __version__
from dicomvol.dicom.cache import JobSources
from dicomvol.dicom.header import merged_header
from dicomvol.errors import DicomvolError
from dicomvol.metadata.bids import PATIENT_IDENTIFYING_KEYS, bids_metadata
from dicomvol.metadata.diffusion import sidecar_keys as diffusion_sidecar_keys
from dicomvol.metadata.fieldmap import part_metadata
from dicomvol.metadata.slicetiming import slice_timing
from dicomvol.model.detail import checks_json
from dicomvol.model.plan import VolumePlan
from dicomvol.plan.temporal import order_values

log = logging.getLogger(__name__)


def source_instances(plan: VolumePlan) -> list[dict[str, Any]]:
    """One entry per output slice in voxel order (k fastest, then t)."""
    return [f.source() for f in plan.all_frames]


#: Keys the output contract requires in every sidecar (kept by ``--anonymize``).
CONTRACT_KEYS = frozenset({"SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesNumber",
                           "SeriesDescription", "SourceInstances", "Resampled", "Geometry",
                           "Warnings"})


def anonymized(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The sidecar without patient-identifying keys, at any depth.

    Removed: the keys of ``bids.PATIENT_IDENTIFYING_KEYS``, any key naming the
    patient (``Patient*``) and any absolute date or date-time (keys containing
    ``Date``), also inside nested objects such as ``SUVbw.Inputs``; durations
    and factors stay. The contract's keys stay, UIDs included: they are
    pseudonymous and the contract requires them. De-identify the DICOM first
    when UIDs must go.
    """
    drop = PATIENT_IDENTIFYING_KEYS - CONTRACT_KEYS

    def identifying(key: str) -> bool:
        return key not in CONTRACT_KEYS and (
            key in drop or key.startswith("Patient") or "Date" in key)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not identifying(k)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    cleaned: dict[str, Any] = clean(sidecar)
    return cleaned


def build_metadata(plan: VolumePlan, sources: JobSources | None = None) -> dict[str, Any]:
    """Sidecar content for a plan, without ``SourceInstances``.

    Acquisition keys come from the first slice's header under dcm2niix's BIDS
    key names; the contract keys (``SeriesInstanceUID``, ``Resampled``,
    ``Geometry``, ``Warnings``, ...) come from the plan. ``sources`` is the
    job's file cache (a fresh one when not given).
    """
    sources = sources if sources is not None else JobSources()
    first = plan.first
    meta: dict[str, Any] = {}
    try:
        header = merged_header(sources.first_frame_header(first.path))  # one frame's groups
        meta.update(bids_metadata(header))
        meta.update(part_metadata(plan, header, meta))
    except (DicomvolError, OSError) as exc:  # the pixels were readable; keep going
        log.warning("%s: header metadata unavailable: %s", first.rel, exc)
    meta.update({
        "SeriesInstanceUID": first.series_instance_uid,
        "StudyInstanceUID": first.study_instance_uid,
        "Modality": first.modality,
        "SeriesNumber": first.series_number,
        "SeriesDescription": first.series_description,
    })
    ss = {f.philips_scale_slope for f in plan.all_frames if f.philips_scale_slope}
    if ss:
        meta["PhilipsScaleSlope"] = sorted(ss)[0] if len(ss) == 1 else sorted(ss)
        fp = all(abs(f.rescale_slope * (f.philips_scale_slope or 0) - 1) < 1e-9
                 for f in plan.all_frames if f.philips_scale_slope)
        meta["UsePhilipsFloatNotDisplayScaling"] = 1 if fp else 0
    if first.modality == "MR" and plan.resample is None:
        timing = slice_timing(plan, sources)
        if timing is not None:
            meta["SliceTiming"] = timing  # seconds, per slice k (dcm2niix/BIDS)
    echo_times = sorted({f.echo_time for f in plan.all_frames if f.echo_time is not None})
    if (meta.get("ImageType") or [""])[-1] == "FIELDMAPHZ":  # a map in Hz: EchoTime1/2 only
        meta.pop("EchoTime", None)
    elif len(echo_times) == 1:
        meta["EchoTime"] = round(echo_times[0] / 1000.0, 6)
    meta.update({
        "ImageOrientationPatientDICOM": list(first.orientation or ()),
        "Resampled": False,
        "Sheared": plan.sheared,
        "Geometry": checks_json(plan.checks),
        "GeometryDetail": plan.detail.to_json(),
        "Warnings": list(plan.warnings),
        "ConversionSoftware": "dicomvol",
        "ConversionSoftwareVersion": __version__,
    })
    if plan.detail.temporal_order:
        meta["TemporalOrderSource"] = list(plan.detail.temporal_order)
        meta["TemporalOrderValues"] = order_values(plan.frames, plan.detail.temporal_order)
    if plan.label:
        meta["VolumeLabel"] = plan.label
    meta.update(diffusion_sidecar_keys(plan))
    return meta


def mark_resampled(meta: dict[str, Any], plan: VolumePlan,
                   resampling: dict[str, Any], output_shape: tuple[int, ...]) -> dict[str, Any]:
    """The sidecar of a resampled volume: ``Resampled``, the reason and the resampler's account."""
    spec = plan.resample
    assert spec is not None
    out = dict(meta)
    out.update({"Resampled": True, "ResampleReason": spec.reason, "Resampling": resampling})
    out["GeometryDetail"] = {**plan.detail.to_json(), "output_shape": list(output_shape)}
    return out

"""One job = one label map: a SEG or RTSTRUCT written on the grid of an image output.

A :class:`LabelJob` is a picklable value (a :class:`~dicomvol.model.plan.DerivedPlan`,
output paths, options), run like an image job in this process, a pool or on
Dask. The map's grid is the image plan's output grid, known before any pixel
is read (exact, sheared or resampled), so label jobs need no image pixels.
``labels`` maps are one integer volume; ``one-hot`` and ``fractional`` maps
are written one segment volume at a time (4D NIfTI streaming), so memory is
one output volume per segment in flight. Beside the map: its JSON sidecar
(``LabelMap``) and the two colour tables (:mod:`dicomvol.objects.labels`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol._version import __version__
from dicomvol.constants import SEG_SNAP_TOLERANCE_MM, SEG_SNAP_TOLERANCE_VOXELS
from dicomvol.dicom.cache import JobSources
from dicomvol.errors import DicomvolError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.inputs.names import name_bytes
from dicomvol.io.atomic import write_text_atomic
from dicomvol.io.formats import stem_of, write_volume
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.io.nifti import NiftiSpec, write_nifti_volumes
from dicomvol.io.readback import read_grid
from dicomvol.metadata.sidecar import anonymized
from dicomvol.model.derived import SegmentInfo
from dicomvol.model.detail import checks_json
from dicomvol.model.plan import DerivedPlan
from dicomvol.model.records import SkippedFrame
from dicomvol.model.reorient import reorient_to_ras
from dicomvol.model.volume import Volume
from dicomvol.objects.frames import FrameReader, snap_tolerance_voxels
from dicomvol.objects.labels import (
    ITKSNAP_TABLE_SUFFIX,
    SLICER_TABLE_SUFFIX,
    itksnap_table,
    segments_json,
    slicer_table,
    table_entries,
)
from dicomvol.objects.rtstruct import (
    ContourAccount,
    fill_rois,
    labels_or_none,
    read_contours,
    roi_volumes,
)
from dicomvol.objects.seg import MapAccount, SegMapper
from dicomvol.options import ConvertOptions
from dicomvol.pixels.digest import sha256
from dicomvol.report.run import OutputRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelJob:
    """One label map to write: its plan, output paths, the image it shares a grid with."""

    plan: DerivedPlan
    image: str
    sidecar: str
    referenced_image: str | None
    options: ConvertOptions


@dataclass(frozen=True)
class LabelDone:
    """What became of a label job: its output, the frames it used and could not place."""

    job: LabelJob
    output: OutputRecord | None = None
    used: tuple[tuple[str, int], ...] = ()
    unplaced: tuple[SkippedFrame, ...] = ()
    error: str | None = None
    failed_path: str | None = None
    exists: bool = False


@dataclass
class Built:
    """A map ready to write: encoding, data (or a volume iterator), account."""

    encoding: str
    segments: list[SegmentInfo]
    label_values: list[int]
    labels: np.ndarray | None = None
    volumes: Iterator[np.ndarray] | None = None
    dtype: Any = np.uint8
    voxels: dict[int, int] = field(default_factory=dict)
    used: list[dict[str, Any]] = field(default_factory=list)
    unplaced: list[SkippedFrame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resample_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: A SEG's account, complete only once every volume was built.
    account: MapAccount | None = None


def label_digest(plan: DerivedPlan) -> str:
    """A stable digest of what a label map reads and where it goes (for ``--resume``)."""
    h = sha256()  # CPython's own: no OpenSSL (same digests as hashlib's)
    h.update(name_bytes(f"{plan.obj.sop_instance_uid}|{plan.obj.rel}|{plan.obj.number_of_frames}\n"))
    h.update(np.asarray(plan.grid.affine, dtype=np.float64).tobytes())
    h.update(repr(tuple(plan.grid.spatial_shape)).encode())
    return h.hexdigest()[:32]


def triage_label(job: LabelJob) -> LabelDone | None:
    """Decide in the client whether a label job runs: None to run it, else its outcome."""
    image, sidecar = Path(job.image), Path(job.sidecar)
    if job.options.resume and image.is_file() and sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if meta.get("DicomvolPlanDigest") == label_digest(job.plan):
            shape, spacing = read_grid(image)
            used = tuple((e["SOPInstanceUID"], int(e["Frame"])) for e in meta["SourceInstances"])
            return LabelDone(job, _record(job, shape, spacing, "resumed",
                                          bool(meta.get("Resampled"))), used=used)
    if not (job.options.overwrite or job.options.resume) and (image.exists() or sidecar.exists()):
        return LabelDone(job, exists=True)
    return None


def run_label_job(job: LabelJob) -> LabelDone:
    """Build and write one label map (in a worker process or on a Dask worker).

    Any failure costs this map only and comes back as a :class:`LabelDone`
    naming what went wrong.
    """
    image = Path(job.image)
    try:
        return _run(job, image)
    except PixelDataError as exc:
        return LabelDone(job, error=str(exc), failed_path=exc.path or job.plan.obj.path)
    except (DicomvolError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.debug("label map %s failed", image.name, exc_info=True)
        return LabelDone(job, error=f"{image.name} not written: {type(exc).__name__}: {exc}",
                         failed_path=job.plan.obj.path)
    except Exception as exc:  # a bug or an I/O failure must cost this map only
        log.debug("label map %s failed", image.name, exc_info=True)
        image.unlink(missing_ok=True)
        return LabelDone(job, error=f"{image.name} not written: {type(exc).__name__}: {exc}",
                         failed_path=job.plan.obj.path)


def _run(job: LabelJob, image: Path) -> LabelDone:
    plan, opts = job.plan, job.options
    fs.configure(opts.storage)  # this worker's own object-store client
    sources = JobSources()
    built = build_seg(plan, sources) if plan.kind == "SEG" else build_rtstruct(plan, sources)
    shape, spacing, reoriented = write_map(job, built, image)
    _write_tables(image, built)
    metadata = sidecar(job, built)
    if opts.reorient:
        metadata["Reoriented"] = reoriented
    content = {**metadata, "SourceInstances": built.used}
    if opts.anonymize:
        content = anonymized(content)
    write_json_atomic(Path(job.sidecar), {**content, "DicomvolPlanDigest": label_digest(plan)})
    used = tuple((e["SOPInstanceUID"], int(e["Frame"])) for e in built.used)
    record = _record(job, shape, spacing, "written", bool(metadata["Resampled"]))
    return LabelDone(job, record, used=used, unplaced=tuple(built.unplaced))


def build_seg(plan: DerivedPlan, sources: JobSources) -> Built:
    """A SEG on the plan's grid: labels when segments do not overlap, else one-hot/fractional."""
    obj = plan.obj
    reader = FrameReader(plan.frames[0], sources)
    mapper = SegMapper(obj, plan.frames, plan.grid, reader)
    segments = mapper.segments
    values = [s.number for s in segments]
    built = Built(encoding=mapper.encoding, segments=segments, label_values=values)
    if mapper.encoding == "labels":
        built.labels = mapper.labels()
        if built.labels is None:
            built.encoding = "one-hot"
            built.warnings.append("segments overlap: written one-hot, one volume per segment")
    if built.labels is None:
        built.dtype = np.float32 if built.encoding == "fractional" else np.uint8
        built.volumes = (volume for _, volume in mapper.volumes())
    account = mapper.account
    built.extra = {"SnapToleranceMm": SEG_SNAP_TOLERANCE_MM,
                   "SnapToleranceVoxels": SEG_SNAP_TOLERANCE_VOXELS,
                   "SnapToleranceAppliedVoxels": [round(float(t), 6) for t in
                                                  snap_tolerance_voxels(plan.grid)],
                   "SegmentationType": obj.segmentation_type}
    if obj.segmentation_type == "FRACTIONAL":
        built.extra.update({"SegmentationFractionalType": obj.fractional_type,
                            "MaximumFractionalValue": obj.max_fractional_value})
    built.account = account
    return built


def build_rtstruct(plan: DerivedPlan, sources: JobSources) -> Built:
    """An RTSTRUCT rasterised on the plan's grid: labels unless ROIs share voxels."""
    obj = plan.obj
    ds = sources.take_dataset(obj.path)
    account = ContourAccount()
    filled = fill_rois(read_contours(ds, obj, plan.grid, account), plan.grid)
    rois = list(obj.segments)
    built = Built(encoding="labels", segments=rois, label_values=[r.number for r in rois],
                  voxels=account.voxels, used=[obj.instance_source()])
    built.labels = labels_or_none(filled, rois, plan.grid, account)
    if built.labels is None:
        built.encoding = "one-hot"
        built.warnings.append("ROIs overlap: written one-hot, one volume per ROI")

        def volumes() -> Iterator[np.ndarray]:
            for info, volume in roi_volumes(filled, rois, plan.grid):
                account.voxels[info.number] = int(np.count_nonzero(volume))
                yield volume.astype(np.uint8)

        built.volumes = volumes()
    if account.skipped:
        built.warnings.append(f"{len(account.skipped)} contours not drawn (see "
                              "LabelMap.SkippedContours)")
    built.extra = {"ContoursDrawn": {str(k): v for k, v in sorted(account.drawn.items())},
                   "SkippedContours": account.skipped,
                   "Rasterisation": "even-odd rule over all contours of an ROI on a slice, "
                                    "voxel centres; inner contours are holes"}
    return built


def sidecar(job: LabelJob, built: Built) -> dict[str, Any]:
    """The label map's sidecar without SourceInstances and Segments (filled after writing)."""
    plan = job.plan
    obj, target = plan.obj, plan.target
    account = built.account
    if account is not None:
        built.resample_reason = account.resample_reason
        built.voxels = account.voxels
    reason = built.resample_reason
    if target.resample is not None and not plan.own_grid:
        reason = "; ".join(r for r in (f"on the resampled grid of {job.referenced_image}",
                                       reason) if r)
    resampled = reason is not None
    meta: dict[str, Any] = {
        "SeriesInstanceUID": obj.series_instance_uid,
        "StudyInstanceUID": obj.study_instance_uid,
        "Modality": obj.kind,
        "SeriesNumber": obj.series_number,
        "SeriesDescription": obj.series_description,
        "SOPClassUID": obj.sop_class_uid,
        "FrameOfReferenceUID": obj.frame_of_reference_uid or None,
        "Resampled": bool(resampled),
    }
    if resampled:
        meta["ResampleReason"] = reason or "written on a regular grid of the SEG's own frames"
    meta.update({
        "Sheared": plan.grid.sheared,
        "Geometry": checks_json(target.checks),
        "Warnings": [*plan.warnings, *built.warnings],
        "ConversionSoftware": "dicomvol",
        "ConversionSoftwareVersion": __version__,
    })
    if account is not None:
        meta["Warnings"] += account.warnings
        built.used = [f.source() for f in account.used]
        built.unplaced = [SkippedFrame.of(f, why) for f, why in account.unplaced]
        if account.unplaced:
            meta["Warnings"].append(f"{len(account.unplaced)} SEG frames are not in this map "
                                    f"(e.g. frame {account.unplaced[0][0].frame}: "
                                    f"{account.unplaced[0][1]})")
        built.extra["MaxFrameDriftMm"] = round(account.max_drift_mm, 6)
    stem = Path(stem_of(job.image)).name
    meta["LabelMap"] = {
        "SourceObject": obj.source(),
        "ReferencedImage": job.referenced_image,
        "OwnGrid": plan.own_grid,
        "Encoding": built.encoding,
        "Segments": segments_json(built.segments, plan.kind, built.encoding,
                                  built.label_values, built.voxels),
        "ColorTables": {"Slicer": stem + SLICER_TABLE_SUFFIX,
                        "ITK-SNAP": stem + ITKSNAP_TABLE_SUFFIX},
        **built.extra,
    }
    return meta


def write_map(job: LabelJob, built: Built,
              image: Path) -> tuple[tuple[int, ...], tuple[float, ...], Any]:
    """Write the map (3D labels or 4D volumes); its (shape, spacing, Reoriented account)."""
    opts, grid = job.options, job.plan.grid
    n = len(built.segments)
    stream = (built.labels is None and opts.format == "nifti" and not opts.reorient
              and built.volumes is not None)
    if stream:
        assert built.volumes is not None
        shape4 = (*grid.spatial_shape, n)
        spec = NiftiSpec(shape=shape4, dtype=np.dtype(built.dtype), affine=grid.affine,
                         sheared=grid.sheared, description=f"dicomvol {job.plan.kind} label map")
        write_nifti_volumes(spec, built.volumes, image, opts.compress)
        return shape4, grid.spacing, None
    if built.labels is not None:
        data = built.labels
    else:
        assert built.volumes is not None
        data = np.stack(list(built.volumes), axis=3) if n else np.zeros(
            (*grid.spatial_shape, 0), dtype=built.dtype)
        data = np.asfortranarray(data)
    volume = Volume(data=data, affine=np.array(grid.affine, dtype=np.float64),
                    metadata={"Modality": job.plan.kind, "Sheared": grid.sheared})
    if opts.reorient:
        volume = reorient_to_ras(volume)
    write_volume(volume, image, opts.format, compress=opts.compress)
    return volume.shape, volume.spacing, volume.metadata.get("Reoriented")


def _write_tables(image: Path, built: Built) -> None:
    entries = table_entries(built.segments, built.encoding, built.label_values)
    stem = stem_of(image)
    write_text_atomic(stem + SLICER_TABLE_SUFFIX, slicer_table(entries))
    write_text_atomic(stem + ITKSNAP_TABLE_SUFFIX, itksnap_table(entries))


def _record(job: LabelJob, shape: tuple[int, ...], spacing: tuple[float, ...], status: str,
            resampled: bool) -> OutputRecord:
    plan = job.plan
    return OutputRecord(
        path=Path(job.image).name, sidecar=Path(job.sidecar).name,
        series_instance_uid=plan.obj.series_instance_uid,
        label=f"{plan.kind} label map" + (f" on {job.referenced_image}"
                                          if job.referenced_image else " (own grid)"),
        shape=tuple(shape), spacing=tuple(spacing),
        n_frames=len(plan.frames) if plan.kind == "SEG" else 1,
        warnings=plan.warnings, sheared=plan.grid.sheared, resampled=resampled,
        checks=plan.target.checks, status=status)

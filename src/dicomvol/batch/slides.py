"""Slide outputs in a run: one pyramid file per slide, label/overview/thumbnail apart.

Every SM frame ends in exactly one place: an output's ``SourceInstances``
(the pyramid, or the label/overview/thumbnail file), ``skipped`` (under
``--anonymize`` for labels and overviews, an existing output, a failed
slide, an instance no slide uses), or, by file, ``errors``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dicomvol._version import __version__
from dicomvol.batch.naming import NameAllocator, render
from dicomvol.batch.scan import ProgressFn
from dicomvol.constants import SLIDE_FORMATS
from dicomvol.errors import DicomvolError, PixelDataError
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.model.plan import ScanResult
from dicomvol.model.records import FileError, SkippedFrame
from dicomvol.model.slide import SlideInfo, SlideLevel
from dicomvol.options import ConvertOptions
from dicomvol.report.run import OutputRecord, RunReport

log = logging.getLogger(__name__)


def write_slide_file(info: SlideInfo, levels: list[SlideLevel], path: Path, fmt: str,
                     workers: int = 1, fill: float | None = None,
                     apply_icc: bool = False) -> list[str]:
    """Write ``levels`` of one slide in ``fmt`` (a key of ``SLIDE_FORMATS``)."""
    if fmt == "ome.zarr":
        from dicomvol.io.slide_zarr import write_slide_zarr

        return write_slide_zarr(info, levels, path, workers=workers, fill=fill,
                                apply_icc=apply_icc)
    from dicomvol.io.slide_tiff import write_slide_tiff

    return write_slide_tiff(info, levels, path, ome=fmt == "ome.tif", workers=workers,
                            fill=fill, apply_icc=apply_icc)


def slide_sidecar(info: SlideInfo, levels: list[SlideLevel], warnings: list[str],
                  image: str, anonymize: bool, icc_applied: bool = False) -> dict[str, Any]:
    """The JSON sidecar of one slide output (contract keys, then ``Slide``)."""
    instances = [i for lv in levels for i in lv.instances]
    missing = [{"Level": n, "OpticalPath": lv.optical_paths[p], "FocalPlane": lv.focal_planes[z],
                "TileRow": r, "TileColumn": c}
               for n, lv in enumerate(levels) for p, z, r, c in lv.missing_tiles()]
    side: dict[str, Any] = {
        "SeriesInstanceUID": info.series_instance_uid,
        "StudyInstanceUID": info.study_instance_uid,
        "Modality": info.modality, "SeriesNumber": info.series_number,
        "SeriesDescription": info.series_description,
        "SourceInstances": [s for i in instances for s in i.sources()],
        "Resampled": False, "Geometry": None, "Warnings": list(warnings),
        "ConversionSoftware": "dicomvol", "ConversionSoftwareVersion": __version__,
        "Slide": {
            "Image": image, "Flavour": levels[0].flavour,
            "PyramidUID": info.pyramid_uid or None,
            "Levels": [lv.describe() for lv in levels],
            "OpticalPaths": [{"Identifier": p.identifier, "Description": p.description}
                             for p in info.optical_paths],
            "FocalPlanesUm": list(levels[0].focal_planes),
            "ColorDecision": [{"SOPInstanceUID": i.sop_instance_uid, "File": i.rel,
                               **i.colour.to_json()} for i in instances],
            "ICCProfileBytes": len(info.icc_profile) if info.icc_profile else 0,
            "ICCApplied": icc_applied and bool(info.icc_profile),
            "MissingTiles": missing, "Anonymized": anonymize,
        },
    }
    return side


def _record(info: SlideInfo, levels: list[SlideLevel], image: Path, sidecar: Path,
            out: Path, label: str, warnings: list[str]) -> OutputRecord:
    base = levels[0]
    shape = (base.width, base.height) + ((base.samples,) if base.samples > 1 else ())
    return OutputRecord(
        path=str(image.relative_to(out)), sidecar=str(sidecar.relative_to(out)),
        series_instance_uid=info.series_instance_uid, label=label, shape=shape,
        spacing=(base.pixel_spacing_um[0] / 1000.0, base.pixel_spacing_um[1] / 1000.0),
        n_frames=sum(lv.n_frames for lv in levels), warnings=tuple(warnings), sheared=False,
        sources=tuple((i.path, i.sop_instance_uid, n + 1, 0)  # ledger keys of every frame
                      for lv in levels for i in lv.instances for n in range(i.n_frames)))


def _outputs(info: SlideInfo, anonymize: bool) -> tuple[list[tuple[str, list[SlideLevel]]],
                                                        list[tuple[SlideLevel, str]]]:
    """(name suffix, levels) of each file to write, and the images left out with why."""
    todo: list[tuple[str, list[SlideLevel]]] = []
    left: list[tuple[SlideLevel, str]] = []
    if info.levels:
        todo.append(("", list(info.levels)))
    for name, level in info.others.items():
        if anonymize and name in ("label", "overview"):
            left.append((level, f"slide {name} image left out under --anonymize (it may show "
                                "names and barcodes)"))
        else:
            todo.append((f"_{name}", [level]))
    return todo, left


def run_slides(result: ScanResult, out: Path, options: ConvertOptions,
               allocator: NameAllocator, report: RunReport,
               progress: ProgressFn | None = None) -> None:
    """Write every slide of ``result`` and account for every SM frame in ``report``."""
    fmt = options.slide.format
    ext = SLIDE_FORMATS[fmt]
    used: set[str] = set()  # SOPInstanceUIDs placed in an output or skipped by a slide
    for n, info in enumerate(result.slides, 1):
        stem = allocator.allocate(render(options.template, dict(info.names)) + info.suffix)
        todo, left = _outputs(info, options.anonymize)
        for level, reason in left:
            _skip(report, level, reason, used)
        for suffix, levels in todo:
            image = out / f"{stem}{suffix}{ext}"
            sidecar = out / f"{stem}{suffix}.json"
            if image.exists() and not options.overwrite:
                for lv in levels:
                    _skip(report, lv, f"output exists: {image.name} (use --overwrite to "
                          "replace it)", used)
                continue
            try:
                warnings = list(info.warnings) + write_slide_file(
                    info, levels, image, fmt, options.jobs, options.slide.fill,
                    options.slide.apply_icc)
            except (DicomvolError, OSError, ValueError, RuntimeError) as exc:
                _failed(report, levels, exc, used)
                continue
            write_json_atomic(sidecar, slide_sidecar(info, levels, warnings, image.name,
                                                     options.anonymize, options.slide.apply_icc))
            report.outputs.append(_record(info, levels, image, sidecar, out,
                                          "slide" + suffix, warnings))
            used.update(i.sop_instance_uid for lv in levels for i in lv.instances)
        if progress is not None:
            progress(n, len(result.slides), "writing slides")
    errored = {e.path for e in report.errors}
    for frame in result.slide_frames:
        if frame.sop_instance_uid not in used and frame.path not in errored:
            report.skipped.append(SkippedFrame(frame.sop_instance_uid, None, frame.path,
                                               frame.rel, "SM instance in no slide image "
                                               "(a smaller duplicate label/overview)",
                                               frame.number_of_frames))
            used.add(frame.sop_instance_uid)


def _skip(report: RunReport, level: SlideLevel, reason: str, used: set[str]) -> None:
    for inst in level.instances:
        report.skipped.append(SkippedFrame(inst.sop_instance_uid, None, inst.path, inst.rel,
                                           reason, inst.n_frames))
        used.add(inst.sop_instance_uid)


def _failed(report: RunReport, levels: list[SlideLevel], exc: Exception,
            used: set[str]) -> None:
    """A slide that cannot be written: the failing file in ``errors``, the rest skipped."""
    bad = exc.path if isinstance(exc, PixelDataError) else None
    message = f"slide not written: {type(exc).__name__}: {exc}"
    log.error("%s", message)
    for lv in levels:
        for inst in lv.instances:
            used.add(inst.sop_instance_uid)
            if bad is None or inst.path == bad:
                report.errors.append(FileError(inst.path, inst.rel, message))
                bad = inst.path if bad is None else bad
            else:
                report.skipped.append(SkippedFrame(inst.sop_instance_uid, None, inst.path,
                                                   inst.rel, message, inst.n_frames))

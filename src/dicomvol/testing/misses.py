"""Why a dcm2niix volume is not reproduced by dicomvol: one kind per miss, from the headers.

Used by ``benchmarks/reproduced.py`` (which lists every miss) and by
``tests/integration/test_dcm2niix_corpus.py`` (which asserts, per kind, the header fact that
decides it). Independent of dicomvol's code paths, like :mod:`dicomvol.testing.reproduce`:
headers and pixels are read with pydicom, outputs with nibabel, dicomvol's own decisions only
from its written sidecars and run report.

Each dcm2niix file with a volume that :func:`~dicomvol.testing.reproduce.reproduced` does not
find gets the first :data:`KINDS` entry whose test holds (see :func:`classify`). Kinds ending
in ``_policy`` are volumes dcm2niix writes from valid headers that dicomvol deliberately
writes otherwise (or not); every other kind is one where the headers contradict dcm2niix's
volume; ``unexplained`` is a miss nobody has looked at yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from dicomvol.testing import reproduce
from dicomvol.testing.grids import (
    header_support,
    match_slices,
    outside_sources,
    planes_through_sources,
    resampled_same_grid,
    sub_grid_values,
    tiles_in_slide,
)

#: Every kind of miss, with what it means (the headers' side of the argument).
KINDS: dict[str, str] = {
    "overlay_policy": "dcm2niix writes the overlay plane (60xx,3000) as its own image; a "
                      "graphics overlay (OverlayType G) is drawn over the image, not patient "
                      "data",
    "slide_tiles": "the frames are tiles of one slide plane (TotalPixelMatrixColumns/Rows, "
                   "slide coordinates): dcm2niix stacks side-by-side tiles as slices",
    "no_patient_geometry": "the source has no ImagePositionPatient/ImageOrientationPatient "
                           "(a projection image, a screenshot, or a SEG of one): dcm2niix's "
                           "affine is invented",
    "seg_segments_stacked": "SEG frames of several segments at the same positions: dcm2niix "
                            "stacks them as slices one after another",
    "seg_frames_misplaced": "SEG frames stacked by dcm2niix at SpacingBetweenSlices although "
                            "their PlanePositionSequence puts them elsewhere (sparse frames)",
    "seg_fraction_unscaled": "FRACTIONAL SEG: dcm2niix writes stored values, not the fraction "
                             "(stored / MaximumFractionalValue, PS3.3 C.8.20.2)",
    "seg_on_image_grid": "dicomvol writes the same labels on the referenced image's grid, of "
                         "which dcm2niix's frame stack is a part",
    "localizer_policy": "ImageType LOCALIZER (a scout): dicomvol skips it with a reason, as "
                        "dcm2niix -i y does",
    "misplaced_stack": "dcm2niix's un-resampled stack of a tilted or irregular series: its "
                       "affine puts slices away from their ImagePositionPatient",
    "resampled_outside_field": "both tools resample onto the same grid and agree inside the "
                               "slices' field; outside it dicomvol writes its fill, dcm2niix "
                               "values no source pixel supports",
    "resampled_misplaced": "dcm2niix's resampled volume is far from the source pixels at "
                           "their own ImagePositionPatient; dicomvol's fits them",
    "resampled_other_grid_policy": "both tools resample and both fit the source pixels, onto "
                                   "different grids; dicomvol's has a plane through more of "
                                   "the source slices",
    "unexplained": "not classified: look at it",
}
#: dcm2niix's derived files (no sidecar): tilt-corrected, equidistant, overlays.
DERIVED_SUFFIX = re.compile(r"(_Tilt_Eq_\d+|_Tilt_\d+|_Eq_\d+|_ROI\d+)$")
SM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
#: A placement error above this (mm) means dcm2niix's affine misplaces a slice.
PLACEMENT_TOL_MM = 0.01
#: dcm2niix's resampled volume is "far" when its median |difference| from the source pixels
#: exceeds this many times dicomvol's (and at least MISPLACED_MIN_UNITS modality units).
MISPLACED_RATIO = 3.0
MISPLACED_MIN_UNITS = 5.0


@dataclass(frozen=True)
class Source:
    """One corpus file's header facts (no pixels)."""

    path: Path
    rel: str
    sop_class: str
    image_type: tuple[str, ...]
    plane: bool  # ImagePositionPatient and ImageOrientationPatient (or their frame groups)
    tilt: float | None
    slide: bool  # TotalPixelMatrixColumns present (SM image, or SEG on one)
    overlay: bool  # an overlay plane (60xx,3000)
    seg: dict[str, Any] | None  # frames, segments, positions, type, max fraction


def _seg_facts(ds: Any) -> dict[str, Any]:
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    segments, positions = set(), []
    for item in per:
        seg = item.get("SegmentIdentificationSequence")
        segments.add(int(seg[0].ReferencedSegmentNumber) if seg else None)
        pos = item.get("PlanePositionSequence") or (
            shared.get("PlanePositionSequence") if shared else None)
        if pos:
            positions.append(tuple(round(float(v), 4) for v in pos[0].ImagePositionPatient))
    return {"frames": len(per), "segments": len(segments - {None}) or 1,
            "positions": len(set(positions)), "ipp": sorted(set(positions)),
            "type": str(ds.get("SegmentationType", "")),
            "max_fraction": int(ds.get("MaximumFractionalValue", 0) or 0)}


def read_source(path: Path, root: Path) -> tuple[str, Source] | None:
    """(SeriesInstanceUID, facts) of one file, or None for a file pydicom cannot read."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # not DICOM, or damaged: not a source of any dcm2niix volume here
        return None
    if "SeriesInstanceUID" not in ds:
        return None
    sop = str(ds.get("SOPClassUID", ""))
    seg = _seg_facts(ds) if sop in SEG_SOP_CLASSES else None
    plane = ("ImagePositionPatient" in ds and "ImageOrientationPatient" in ds) or bool(
        seg and seg["positions"])
    tilt = ds.get("GantryDetectorTilt")
    return str(ds.SeriesInstanceUID), Source(
        path, str(path.relative_to(root)), sop,
        tuple(str(v) for v in (ds.get("ImageType") or ())), plane,
        float(tilt) if tilt not in (None, "") else None,
        "TotalPixelMatrixColumns" in ds,
        any((g, 0x3000) in ds for g in range(0x6000, 0x6020, 2)), seg)


def index_sources(root: Path) -> dict[str, list[Source]]:
    """Every readable DICOM file under ``root`` by SeriesInstanceUID."""
    out: dict[str, list[Source]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        found = read_source(path, root)
        if found:
            out.setdefault(found[0], []).append(found[1])
    return out


@dataclass
class Miss:
    """A dcm2niix file with volumes dicomvol does not reproduce, and why."""

    name: str
    missed: int
    volumes: int
    series: str
    files: list[str]
    kind: str = "unexplained"
    evidence: str = ""
    dicomvol: list[str] = field(default_factory=list)

    def line(self) -> str:
        files = ", ".join(self.files[:2]) + (f" (+{len(self.files) - 2})"
                                              if len(self.files) > 2 else "")
        return (f"{self.name} ({self.missed}/{self.volumes} volumes) [{self.kind}] from "
                f"{files}: {self.evidence}; dicomvol: {'; '.join(self.dicomvol) or 'nothing'}")


@dataclass
class Outputs:
    """Both tools' outputs for one converted folder, and the folder's headers."""

    src: Path
    dx: list[reproduce.Image]
    dv: list[reproduce.Image]
    report: dict[str, Any]
    sources: dict[str, list[Source]]
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)  # dicomvol's, any format
    dv_dir: Path = Path()

    @classmethod
    def load(cls, src: Path, dx: Path, dv: Path) -> Outputs:
        report_path = dv / "dicomvol_report.json"
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        images = reproduce.load_images(dv)
        for im in images:  # dicomvol's sidecars, for SeriesInstanceUID and Resampling
            side = im.path.with_name(im.path.name.removesuffix(".gz").removesuffix(".nii")
                                     + ".json")
            im.meta = json.loads(side.read_text()) if side.is_file() else {}
        sidecars = {p.name: json.loads(p.read_text()) for p in sorted(dv.glob("*.json"))
                    if p.name != "dicomvol_report.json"} if dv.is_dir() else {}
        return cls(src, reproduce.load_images(dx, dcm2niix=True), images, report,
                   index_sources(src), sidecars, dv)

    def sidecar(self, image: reproduce.Image) -> dict[str, Any]:
        """dcm2niix's sidecar of a file, or of the file it was derived from (_Tilt, _ROI)."""
        if image.meta:
            return image.meta
        stem = DERIVED_SUFFIX.sub("", image.path.name.removesuffix(".nii"))
        side = image.path.with_name(stem + ".json")
        return json.loads(side.read_text()) if side.is_file() else {}

    def files_of(self, image: reproduce.Image) -> list[Source]:
        """The corpus files of a dcm2niix output: its series, narrowed by ImageType."""
        meta = self.sidecar(image)
        files = self.sources.get(str(meta.get("SeriesInstanceUID")), [])
        want = meta.get("ImageType")
        narrowed = [s for s in files if want and _split_type(s.image_type) == list(want)]
        # one series can hold several images (exam summaries): narrowed when the count fits
        return narrowed if len(narrowed) == image.shape[2] * image.n_volumes else files

    def slides_of(self, files: Sequence[Source]) -> list[Path]:
        """dicomvol's slide images (OME-TIFF, TIFF) written from any of the files."""
        rels = {s.rel for s in files}
        return [self.dv_dir / meta["Slide"]["Image"] for meta in self.sidecars.values()
                if "Slide" in meta and str(meta["Slide"].get("Image", "")).endswith(".tif")
                and rels & {str(x.get("File")) for x in meta.get("SourceInstances", [])}]

    def dicomvol_of(self, files: Sequence[Source]) -> tuple[list[reproduce.Image], list[str]]:
        """dicomvol's outputs naming any of the files, and its skip reasons for them."""
        rels = {s.rel for s in files}
        named = {name for name, meta in self.sidecars.items()
                 if rels & {str(x.get("File")) for x in meta.get("SourceInstances", [])}
                 or (meta.get("LabelMap") or {}).get("SourceObject", {}).get("File") in rels}
        outs = [im for im in self.dv if im.path.with_suffix(".json").name in named]
        others = sorted(named - {im.path.with_suffix(".json").name for im in outs})
        reasons = sorted({f"skipped: {e.get('Reason')}" for e in self.report.get("skipped", [])
                          if e.get("File") in rels})
        return outs, [f"{name} (not NIfTI)" for name in others] + reasons


def _split_type(image_type: Sequence[str]) -> list[str]:
    """ImageType values as dcm2niix's sidecar lists them (split at '_' and spaces too)."""
    return [w for v in image_type for w in re.split(r"[_ ]", v) if w]


def explain(out: Outputs, rows: Sequence[tuple[str, int, bool]]) -> list[Miss]:
    """A :class:`Miss` for every dcm2niix file with a volume not reproduced (``rows`` from
    :func:`~dicomvol.testing.reproduce.reproduced`)."""
    by_name: dict[str, list[bool]] = {}
    for name, _, ok in rows:
        by_name.setdefault(name, []).append(ok)
    images = {im.path.name: im for im in out.dx}
    misses = []
    for name, oks in by_name.items():
        if all(oks):
            continue
        image = images[name]
        files = out.files_of(image)
        miss = Miss(name, oks.count(False), len(oks),
                    str(out.sidecar(image).get("SeriesInstanceUID")), [s.rel for s in files])
        mine, others = out.dicomvol_of(files)
        miss.dicomvol = [im.path.name for im in mine] + others
        if files:
            miss.kind, miss.evidence = classify(image, files, mine, out.slides_of(files))
        misses.append(miss)
        image.__dict__.pop("data", None)  # large CT volumes: keep memory small
    return misses


def classify(image: reproduce.Image, files: Sequence[Source],
             mine: Sequence[reproduce.Image], slides: Sequence[Path] = ()) -> tuple[str, str]:
    """(kind, evidence) of one dcm2niix file that is not reproduced (``slides``: dicomvol's
    slide images from the same files)."""
    first = files[0]
    if DERIVED_SUFFIX.search(image.path.stem) and "_ROI" in image.path.stem:
        with_overlay = [s for s in files if s.overlay]
        if with_overlay:
            ds = pydicom.dcmread(with_overlay[0].path, stop_before_pixels=True)
            kind = ds.get((0x6000, 0x0040))
            return "overlay_policy", (f"overlay plane (60xx,3000) in {with_overlay[0].rel}, "
                                      f"OverlayType {kind.value if kind else 'absent'}")
    if all(s.slide for s in files):
        found = max((tiles_in_slide(image, p) for p in slides), default=0.0)
        where = f"; {found:.0%} of dcm2niix's slices are tiles of dicomvol's slide" if (
            slides) else ""
        return "slide_tiles", _slide_evidence(first) + where
    if not all(s.plane for s in files):
        return "no_patient_geometry", (f"SOPClassUID {first.sop_class}, no "
                                       "ImagePositionPatient/ImageOrientationPatient")
    if first.seg is not None:
        return _classify_seg(image, first, mine)
    if all("LOCALIZER" in s.image_type for s in files):
        return "localizer_policy", "ImageType " + "\\".join(first.image_type)
    stem = image.path.stem
    resampled = [im for im in mine if im.meta.get("Resampled")]
    if ("_Tilt" in stem or "_Eq" in stem) and resampled:
        return _classify_resampled(image, files, resampled[0])
    if not DERIVED_SUFFIX.search(stem):
        errors = match_slices(image, [s.path for s in files])
        if errors is not None and float(errors.max()) > PLACEMENT_TOL_MM:
            tilts = sorted({s.tilt for s in files if s.tilt is not None})
            bad = int((errors > PLACEMENT_TOL_MM).sum())
            return "misplaced_stack", (
                f"slices up to {errors.max():.3f} mm from their ImagePositionPatient "
                f"({bad} of {errors.size} more than {PLACEMENT_TOL_MM} mm); "
                f"GantryDetectorTilt {tilts or 'absent'}")
    return "unexplained", ""


def _slide_evidence(s: Source) -> str:
    ds = pydicom.dcmread(s.path, stop_before_pixels=True)
    return (f"SOPClassUID {s.sop_class}, {ds.get('NumberOfFrames')} frames of "
            f"{ds.Columns}x{ds.Rows} in a {ds.TotalPixelMatrixColumns}x"
            f"{ds.TotalPixelMatrixRows} total pixel matrix, "
            f"DimensionOrganizationType {ds.get('DimensionOrganizationType', 'absent')}")


def _classify_seg(image: reproduce.Image, s: Source,
                  mine: Sequence[reproduce.Image]) -> tuple[str, str]:
    seg = s.seg or {}
    facts = (f"{seg['frames']} frames, {seg['segments']} segment(s) at {seg['positions']} "
             f"position(s), SegmentationType {seg['type']}")
    if seg["frames"] > seg["positions"]:
        return "seg_segments_stacked", facts
    off = seg_misplacement(image, seg["ipp"])
    if off is not None and off > PLACEMENT_TOL_MM:
        return "seg_frames_misplaced", f"{facts}; a frame {off:.3f} mm from dcm2niix's slice"
    for label in mine:
        found = sub_grid_values(image, label)
        if found is None:
            continue
        ref, ours = found
        if seg["type"] == "FRACTIONAL" and seg["max_fraction"] and np.allclose(
                ref, ours * seg["max_fraction"], atol=0.5):
            return "seg_fraction_unscaled", (
                f"{facts}, MaximumFractionalValue {seg['max_fraction']}: dcm2niix's values = "
                f"dicomvol's fraction x {seg['max_fraction']} on {label.path.name}'s grid")
        if np.array_equal(ref > 0, ours > 0):
            return "seg_on_image_grid", (f"{facts}; dcm2niix's {image.shape[:3]} grid is part "
                                         f"of {label.path.name}'s {label.shape[:3]}, same "
                                         "labelled voxels")
    return "unexplained", facts


def seg_misplacement(image: reproduce.Image, ipps: Sequence[Sequence[float]]) -> float | None:
    """Largest distance (mm, along the slice normal) between the SEG frames' positions and
    dcm2niix's slices (both sorted), or None when their counts differ."""
    if len(ipps) != image.shape[2] or image.n_volumes != 1:
        return None
    m = image.affine[:3, :3]
    normal = np.cross(m[:, 0], m[:, 1])
    normal /= np.linalg.norm(normal)
    theirs = sorted(float(normal @ (image.affine @ [0.0, 0.0, k, 1.0])[:3])
                    for k in range(image.shape[2]))
    frames = sorted(float(normal @ np.asarray(p)) for p in ipps)
    return float(np.abs(np.array(theirs) - np.array(frames)).max())


def _classify_resampled(image: reproduce.Image, files: Sequence[Source],
                        ours: reproduce.Image) -> tuple[str, str]:
    fill = float((ours.meta.get("Resampling") or {}).get("fill", np.nan))
    same = resampled_same_grid(image, ours, fill)
    paths = [s.path for s in files]
    if same is not None and same[0] == 0 and outside_sources(ours, same[3], paths).all():
        return "resampled_outside_field", (
            f"same grid as {ours.path.name}; inside the field the largest |difference| is "
            f"{same[2]:.3g}; {same[1]} voxels differ, all outside the source slices they "
            f"draw on (by the headers), where dicomvol writes its fill {fill:g}")
    dc, dv = header_support(image, paths), header_support(ours, paths)
    text = (f"median |difference| from the source pixels: dcm2niix {dc[0]:.3g} "
            f"({dc[1]:.0%} inside), dicomvol's {ours.path.name} {dv[0]:.3g} ({dv[1]:.0%} "
            "inside)")
    if dc[0] > max(MISPLACED_RATIO * dv[0], MISPLACED_MIN_UNITS) or dc[1] < 0.5 * dv[1]:
        return "resampled_misplaced", text
    kept = planes_through_sources(image, paths), planes_through_sources(ours, paths)
    return "resampled_other_grid_policy", (f"{text}; a plane through {kept[0]:.0%} of the "
                                           f"source slices (dicomvol {kept[1]:.0%})")

"""Plan volumes from frame records: deduplicate, triage, group by series and grid.

Pure and pixel-free (the one rule that compares pixels receives a
``same_pixels`` callable from its caller). Every input frame ends in exactly
one plan or one :class:`~dicomvol.model.records.SkippedFrame`.

Rules, in order:

1. The same (SOPInstanceUID, frame) read twice is used once; the copy is skipped.
2. SEG frames are set aside for pairing with the image they segment
   (``ScanResult.derived_frames``), SM frames for the slide index
   (``ScanResult.slide_frames``). Frames that are not part of a
   cross-sectional volume are skipped with a reason: secondary captures without an image
   plane (ImagePositionPatient, ImageOrientationPatient, PixelSpacing), projection
   images, localizers, colour images, frames without position/orientation.
3. Frames are grouped by SeriesInstanceUID, then by grid: orientation,
   Rows/Columns and PixelSpacing.
4. Within a grid, frames sharing a slice position are split and joined as 4D
   (:mod:`dicomvol.plan.splits`).
5. Slices are sorted by their position projected on the slice normal and
   planned as exact, sheared, split, resampled or skipped stacks
   (:mod:`dicomvol.plan.stacks`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from dicomvol.constants import COLOUR_PHOTOMETRICS
from dicomvol.model import geometry
from dicomvol.model.derived import SEG_SOP_CLASSES
from dicomvol.model.detail import GeometryChecks
from dicomvol.model.plan import ScanResult, VolumePlan
from dicomvol.model.records import FileError, FrameRecord, IgnoredFile, SkippedFrame
from dicomvol.options import PlanOptions
from dicomvol.plan.splits import SamePixels, plan_grid, with_part_suffix
from dicomvol.plan.stacks import StackContext

log = logging.getLogger(__name__)

#: Whole Slide Microscopy Image Storage: set aside for the slide index (dicomvol.slide).
SM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
#: SOP classes that hold pixel data but are never stacked into a volume.
NON_VOLUME_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.1": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.2": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.3": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.4": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.1": "computed radiography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.1": "digital X-ray (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "digital X-ray (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.2": "mammography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "mammography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT image (a projection image)",
}
#: Secondary Capture classes. PS3.3 A.8.1.3 (note): when ImagePositionPatient and
#: ImageOrientationPatient are present, PixelSpacing is meant for 3D spatial computations, so
#: a secondary capture with the whole image plane is placed like any image (as dcm2niix, GDCM
#: and ITK do); one without it stays a screenshot and is skipped.
SC_SOP_CLASSES = frozenset(uid for uid in NON_VOLUME_SOP_CLASSES
                           if uid.startswith("1.2.840.10008.5.1.4.1.1.7"))

def plan_index(
    frames_in: Sequence[FrameRecord], ignored: Sequence[IgnoredFile] = (),
    errors: Sequence[FileError] = (), n_files: int = 0, options: PlanOptions | None = None,
    same_pixels: SamePixels | None = None,
) -> ScanResult:
    """Turn indexed frames into volume plans and skipped frames.

    Parameters
    ----------
    frames_in : sequence of FrameRecord
        Every frame indexing found.
    ignored, errors : sequences
        Indexing's other findings, carried into the result.
    n_files : int
        Files looked at.
    options : PlanOptions, optional
        Policy for tilted and irregular series.
    same_pixels : callable, optional
        Compares two frames' decoded pixels; without it, frames at one position
        that no attribute tells apart are skipped instead of checked for copies.
    """
    options = options or PlanOptions()
    result = ScanResult(ignored=list(ignored), errors=list(errors), n_files=n_files)
    frames, duplicates = _dedupe(frames_in, same_pixels)
    if options.philips_scaling == "fp":
        frames = [_philips_fp(f) for f in frames]
    result.skipped.extend(duplicates)
    volume_frames: list[FrameRecord] = []
    known: dict[tuple[Any, ...], str | None] = {}
    for frame in frames:
        if frame.sop_class_uid in SEG_SOP_CLASSES:
            result.derived_frames.append(frame)  # placed by pairing (batch), not stacked
            continue
        if frame.sop_class_uid == SM_SOP_CLASS:
            result.slide_frames.append(frame)  # indexed as slides (batch/scan), not stacked
            continue
        reason = non_volume_reason(frame, known)
        if reason is None:
            volume_frames.append(frame)
        else:
            result.skipped.append(SkippedFrame.of(frame, reason))
    by_series: dict[str, list[FrameRecord]] = defaultdict(list)
    for frame in volume_frames:
        by_series[frame.series_instance_uid].append(frame)
    for uid in sorted(by_series, key=lambda u: (_series_sort_key(by_series[u]), u)):
        try:
            plans, skipped, checks = plan_series(by_series[uid], options, same_pixels)
        except Exception as exc:  # a bug or an absurd header costs this series, not the run
            log.debug("planning series %s failed", uid, exc_info=True)
            result.errors.extend(_series_failed(by_series[uid], exc))
            continue
        result.plans.extend(plans)
        result.skipped.extend(skipped)
        result.series_checks[uid] = checks
    result.skipped = _collapse_instances(result.skipped, frames_in)
    return result


def _series_failed(frames: Sequence[FrameRecord], exc: Exception) -> list[FileError]:
    """One ``errors`` entry per file of a series that could not be planned."""
    why = (f"internal: planning series {frames[0].series_instance_uid} failed: "
           f"{type(exc).__name__}: {exc}")
    files = {f.path: f.rel for f in frames}
    return [FileError(path, rel, why) for path, rel in sorted(files.items())]


def _philips_fp(frame: FrameRecord) -> FrameRecord:
    """Philips floating-point scaling: value = (RS * SV + RI) / (RS * SS)."""
    ss = frame.philips_scale_slope
    if not ss:
        return frame
    rs, ri = frame.rescale_slope, frame.rescale_intercept
    return replace(frame, rescale_slope=1.0 / ss, rescale_intercept=ri / (rs * ss))


def _series_sort_key(frames: Sequence[FrameRecord]) -> tuple[str, int]:
    f = frames[0]
    return (f.study_instance_uid, f.series_number if f.series_number is not None else 1 << 30)


def _dedupe(frames: Iterable[FrameRecord], same_pixels: SamePixels | None = None
            ) -> tuple[list[FrameRecord], list[SkippedFrame]]:
    """One frame per (SOPInstanceUID, frame, tile), unless the headers tell them apart.

    Frames read from several files under one UID are compared: where their
    placement differs (series, grid, position) they are different images and
    all are kept; at one placement, a copy (same pixels, when ``same_pixels``
    can tell) is skipped as a duplicate, and different pixel data is a
    conflict: the first file read is used, the others are skipped as
    conflicting, never called copies.
    """
    kept: dict[tuple[Any, ...], FrameRecord] = {}
    by_key: dict[tuple[str, int, int], list[FrameRecord]] = {}
    skipped = []
    warned: set[tuple[str, str]] = set()
    for frame in sorted(frames, key=lambda f: (f.rel, f.path, f.frame, f.tile or 0)):
        if not frame.sop_instance_uid:  # no UID at all: nothing to compare it by
            kept[(frame.path, frame.frame, frame.tile, _placement(frame))] = frame
            continue
        key = frame.key
        same = by_key.get(key)
        if same is None:  # the common case: the first frame of this identity
            by_key[key] = [frame]
            kept[(*key, _placement(frame))] = frame
            continue
        placement = _placement(frame)
        first = next((f for f in same if _placement(f) == placement), None)
        if first is None:
            log.warning("%s and %s share SOPInstanceUID %s but are different images "
                        "(placement differs): both kept", same[0].rel, frame.rel,
                        frame.sop_instance_uid)
            same.append(frame)
            kept[(*key, placement)] = frame
        elif same_pixels is not None and _comparable(same_pixels, first, frame) and not (
                same_pixels(first, frame)):
            if (first.rel, frame.rel) not in warned:
                warned.add((first.rel, frame.rel))
                log.warning("%s: conflict: SOPInstanceUID %s as in %s, different pixel data",
                            frame.rel, frame.sop_instance_uid, first.rel)
            skipped.append(SkippedFrame.of(
                frame, f"conflict: the same SOPInstanceUID as {first.rel} at the same place, "
                "but different pixel data (not a copy; which one is right cannot be told "
                f"from the headers): {first.rel} is used"))
        else:
            checked = same_pixels is not None and _comparable(same_pixels, first, frame)
            skipped.append(SkippedFrame.of(
                frame, f"duplicate: {'a copy of' if checked else 'the same SOPInstanceUID as'} "
                f"{first.rel}" + (" (the same SOPInstanceUID, same pixel data)" if checked
                                  else " (pixel data not compared)")))
    return list(kept.values()), skipped


def _comparable(same_pixels: SamePixels, a: FrameRecord, b: FrameRecord) -> bool:
    """Whether both frames' pixels can be compared (a comparer may say it cannot decode)."""
    decodable = getattr(same_pixels, "decodable", None)
    return decodable is None or bool(decodable(a) and decodable(b))


def _placement(frame: FrameRecord) -> tuple[Any, ...]:
    """What tells two images apart without their pixels: series, grid and position."""
    return (frame.series_instance_uid, frame.rows, frame.columns, frame.orientation,
            frame.position, frame.pixel_spacing)


def _has_image_plane(frame: FrameRecord) -> bool:
    """ImagePositionPatient, ImageOrientationPatient and PixelSpacing all present."""
    return None not in (frame.position, frame.orientation, frame.pixel_spacing)


def non_volume_reason(frame: FrameRecord,
                      known: dict[tuple[Any, ...], str | None] | None = None) -> str | None:
    """Why a frame can never be part of a volume, or None when it can.

    ``known``: the reasons found so far, kept by the caller across the frames of a run, by
    what frames share (all but the position) and whether the position is present and
    finite: the same reason for the same inputs, looked up (this runs per frame).
    """
    if known is None:
        return _reason(frame)
    position = frame.position
    key = (frame.layout_error, frame.sop_class_uid, frame.image_type, frame.samples_per_pixel,
           frame.bits_allocated, frame.photometric, frame.orientation, frame.pixel_spacing,
           position is None or all(map(math.isfinite, position)), position is None)
    if key not in known:
        known[key] = _reason(frame)
    return known[key]


def _reason(frame: FrameRecord) -> str | None:
    """:func:`non_volume_reason`, worked out."""
    if frame.layout_error:
        return f"{frame.layout_error}; the image is not converted"
    known = NON_VOLUME_SOP_CLASSES.get(frame.sop_class_uid)
    if known and not (frame.sop_class_uid in SC_SOP_CLASSES and _has_image_plane(frame)):
        return known
    if "LOCALIZER" in frame.image_type:
        return "localizer (scout) image, not part of a volume"
    if frame.samples_per_pixel != 1 and not (
            frame.samples_per_pixel == 3 and frame.bits_allocated == 8
            and frame.photometric in COLOUR_PHOTOMETRICS):
        return (f"colour image ({frame.photometric}, {frame.samples_per_pixel} samples per "
                f"pixel, {frame.bits_allocated} bits); dicomvol writes greyscale volumes and "
                "8-bit RGB volumes")
    missing = [name for name, value in (("ImagePositionPatient", frame.position),
                                        ("ImageOrientationPatient", frame.orientation),
                                        ("PixelSpacing", frame.pixel_spacing)) if value is None]
    if missing:
        return f"no {', '.join(missing)}: cannot be placed in patient space"
    garbled = [name for name, value in (("ImagePositionPatient", frame.position),
                                        ("ImageOrientationPatient", frame.orientation),
                                        ("PixelSpacing", frame.pixel_spacing))
               if not all(math.isfinite(v) for v in value or ())]
    if garbled or min(frame.pixel_spacing or (1.0,)) <= 0:
        what = ", ".join(garbled) or f"PixelSpacing {frame.pixel_spacing}"
        return f"{what} not finite positive numbers: cannot be placed in patient space"
    if geometry.cross_norm(frame.orientation or (0, 0, 0, 0, 0, 0)) < 0.5:
        return f"ImageOrientationPatient {frame.orientation} is degenerate"
    return None


def _collapse_instances(
    skipped: list[SkippedFrame], all_frames: Sequence[FrameRecord]
) -> list[SkippedFrame]:
    """One entry per skipped frame (mosaic tiles folded into their frame); a multi-frame
    instance whose frames all share one reason becomes one entry with Frame None."""
    n_frames: dict[tuple[str, str], int] = {}
    for f in all_frames:
        n_frames[(f.path, f.sop_instance_uid)] = f.number_of_frames
    by_instance: dict[tuple[str, str], dict[tuple[int | None, str], SkippedFrame]] = (
        defaultdict(dict))
    for s in skipped:
        by_instance[(s.path, s.sop_instance_uid)].setdefault((s.frame, s.reason), s)
    out = []
    for key, entries in by_instance.items():
        total = n_frames.get(key, 1)
        frames = {frame for frame, _ in entries}
        reasons = {reason for _, reason in entries}
        items = list(entries.values())
        if total > 1 and len(frames) == total and len(reasons) == 1:
            s = items[0]
            out.append(SkippedFrame(s.sop_instance_uid, None, s.path, s.rel, s.reason, total))
        else:
            out.extend(items)
    return out


def plan_series(
    frames: Sequence[FrameRecord], options: PlanOptions | None = None,
    same_pixels: SamePixels | None = None,
) -> tuple[list[VolumePlan], list[SkippedFrame], GeometryChecks | None]:
    """Plan the volumes of one series (frames that can join a volume)."""
    options = options or PlanOptions()
    checks = geometry.idc_checks([f for f in frames if f.number_of_frames == 1] or frames)
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    grids = _grid_groups(frames)
    assumed = sorted({f.assumed for f in frames if f.assumed})
    for text in assumed:  # once per series, not once per file (each sidecar's Warnings too)
        n = sum(f.assumed == text for f in frames)
        log.warning("series %s: %s (%d frames)", frames[0].series_instance_uid, text, n)
    for g, grid in enumerate(grids):
        prefix = f"_g{g + 1}" if len(grids) > 1 else ""
        label = _grid_label(grid[0]) if len(grids) > 1 else ""
        if len(grids) > 1:
            note = (f"series holds {len(grids)} different grids (orientation, matrix or pixel "
                    f"spacing); this is grid {g + 1}: {label}")
        else:
            note = ""
        ctx = StackContext(prefix, label, ((note,) if note else ()) + tuple(assumed), checks,
                           options)
        p, s = plan_grid(grid, ctx, same_pixels)
        plans.extend(with_part_suffix(plan) for plan in p)
        skipped.extend(s)
    return plans, skipped, checks


def _grid_label(f: FrameRecord) -> str:
    ps = f.pixel_spacing or (0.0, 0.0)
    return (f"{geometry.describe_orientation(f.orientation or (1, 0, 0, 0, 1, 0))}, "
            f"{f.columns}x{f.rows}, {ps[1]:g}x{ps[0]:g} mm")


def _grid_groups(frames: Sequence[FrameRecord]) -> list[list[FrameRecord]]:
    """Frames by grid: matrix equal, orientation and pixel spacing within tolerance of the
    group's first frame (each distinct grid compared once)."""
    groups: list[list[FrameRecord]] = []
    group_of: dict[tuple[Any, ...], list[FrameRecord]] = {}
    for frame in sorted(frames, key=lambda f: (f.instance_number or 0, f.rel, f.frame)):
        grid = (frame.rows, frame.columns, frame.orientation, frame.pixel_spacing)
        found = group_of.get(grid)
        if found is None:
            for group in groups:
                ref = group[0]
                if (ref.rows == frame.rows and ref.columns == frame.columns
                        and geometry.same_orientation(ref.orientation or (),
                                                      frame.orientation or ())
                        and geometry.same_spacing(ref.pixel_spacing or (),
                                                  frame.pixel_spacing or ())):
                    found = group
                    break
            else:
                found = []
                groups.append(found)
            group_of[grid] = found
        found.append(frame)
    return groups



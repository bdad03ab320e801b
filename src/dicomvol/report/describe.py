"""``describe``: a scan's plans, skips, ignored files and errors as JSON-ready rows.

``dicomvol inspect`` prints these (the CLI only formats them); ``--json``
writes them as they are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from dicomvol.model.detail import GeometryDetail, checks_json
from dicomvol.model.plan import DerivedPlan, ScanResult, VolumePlan


def describe(result: ScanResult) -> dict[str, Any]:
    """Plans, skips, ignored files and errors as plain JSON-ready data."""
    skipped: dict[str, Counter[str]] = defaultdict(Counter)
    for s in result.skipped:
        skipped[s.reason][s.rel.split("/")[0] if "/" in s.rel else "."] += s.n_frames
    return {
        "volumes": [describe_plan(plan) for plan in result.plans],
        "derived": [describe_derived(d) for d in result.derived],
        "slides": [s.describe() for s in result.slides],
        "skipped": [{"Reason": r, "Frames": sum(c.values())} for r, c in skipped.items()],
        "ignored": [{"File": i.rel, "Reason": i.reason} for i in result.ignored],
        "errors": [{"File": e.rel, "Error": e.error} for e in result.errors],
        "series_checks": {uid: checks_json(c) for uid, c in result.series_checks.items()},
    }


def describe_plan(plan: VolumePlan) -> dict[str, Any]:
    """One row: what a volume is and what ``convert`` will do with it."""
    f = plan.first
    ps = f.pixel_spacing or (0.0, 0.0)
    detail = plan.detail
    return {
        "SeriesInstanceUID": plan.series_instance_uid,
        "SeriesNumber": f.series_number,
        "Modality": f.modality,
        "SeriesDescription": f.series_description,
        "Label": plan.label,
        "Files": len({fr.path for fr in plan.all_frames}),
        "Frames": len(plan.all_frames),
        "Matrix": list(plan.shape),
        "PixelSpacing": [ps[1], ps[0]],
        "SliceSpacing": detail.slice_step_mm,
        "Orientation": detail.orientation,
        "Geometry": checks_json(plan.checks),
        "GeometryDetail": detail.to_json(),
        "Case": case_text(detail),
        "Action": action_text(plan),
        "Warnings": list(plan.warnings),
    }


def action_text(plan: VolumePlan) -> str:
    """What convert does: write, write 4D, write an exact piece, resample (sheared affine)."""
    detail = plan.detail
    if plan.resample is not None:
        action = f"resample to {plan.resample.spacing:g} mm ({plan.resample.reason})"
    elif detail.split is not None:
        action = f"write exact piece {detail.split.piece}/{detail.split.pieces}"
    elif len(plan.shape) == 4:
        action = f"write 4D ({plan.shape[3]} volumes by {detail.fourth_dimension})"
    else:
        action = "write"
    if plan.sheared:
        action += " (sheared affine)"
    return action


def case_text(detail: GeometryDetail) -> str:
    """The geometry case with its measured numbers, e.g. 'gantry tilt 18.50°'."""
    case = detail.case
    m = detail.measures
    if "tilt" in case and m is not None:
        case += f" {m.step_angle_degrees:.2f}°"
    if "spacing" in case and m is not None:
        case += (f" {m.min_spacing_mm:g}/{m.median_spacing_mm:g}/"
                 f"{m.max_spacing_mm:g} mm (min/median/max)")
    if case == "missing slices":
        case += ": " + ", ".join(f"{g.missing_slices} after {g.after_position_mm:g} mm"
                                 for g in detail.gaps or ())
    if case == "lateral shift" and m is not None:
        case += f" up to {m.in_plane_shift_mm:g} mm"
    return case


def describe_derived(plan: DerivedPlan) -> dict[str, Any]:
    """One row per label map: the SEG or RTSTRUCT, what it references, what convert does."""
    obj, target = plan.obj, plan.target
    if plan.own_grid:
        grid = "the SEG's own frames"
    else:
        t = target.first
        grid = (f"series {t.series_number if t.series_number is not None else '-'} "
                f"{t.modality} {t.series_description!r}" + (f" [{target.label}]"
                                                            if target.label else ""))
    if target.resample is not None and not plan.own_grid:
        how = "resampled grid"
    elif plan.grid.sheared:
        how = "sheared grid"
    else:
        how = "exact grid"
    kind = {"BINARY": "binary", "FRACTIONAL": "fractional", "LABELMAP": "label map"}.get(
        obj.segmentation_type, "contours")
    return {
        "Modality": obj.kind,
        "File": obj.rel,
        "SOPInstanceUID": obj.sop_instance_uid,
        "SeriesInstanceUID": obj.series_instance_uid,
        "SeriesDescription": obj.series_description,
        "Type": kind,
        "Segments": [s.label for s in obj.segments if not (s.number == 0 and kind == "label map")],
        "Frames": len(plan.frames) if obj.kind == "SEG" else None,
        "ReferencedSeries": list(obj.referenced_series),
        "ReferencedInstances": len(obj.referenced_instances),
        "FrameOfReferenceUID": obj.frame_of_reference_uid or None,
        "TargetSeriesInstanceUID": None if plan.own_grid else target.series_instance_uid,
        "OwnGrid": plan.own_grid,
        "Grid": list(plan.grid.spatial_shape),
        "Action": f"write a label map on the {how} of {grid}",
        "Warnings": list(plan.warnings),
    }

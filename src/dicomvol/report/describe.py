"""``describe``: a scan's plans, skips, ignored files and errors as JSON-ready rows.

``dicomvol inspect`` prints these (the CLI only formats them); ``--json``
writes them as they are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from dicomvol.model.detail import GeometryDetail, checks_json
from dicomvol.model.plan import ScanResult, VolumePlan


def describe(result: ScanResult) -> dict[str, Any]:
    """Plans, skips, ignored files and errors as plain JSON-ready data."""
    skipped: dict[str, Counter[str]] = defaultdict(Counter)
    for s in result.skipped:
        skipped[s.reason][s.rel.split("/")[0] if "/" in s.rel else "."] += 1
    return {
        "volumes": [describe_plan(plan) for plan in result.plans],
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

"""``dicomvol inspect INPUT... [--json]``: what is there and what convert would do."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from typing import Any

#: IDC check columns shown when they fail.
CHECK_NAMES = (
    "single_orientation", "orthogonal_orientation", "unique_slice_positions",
    "consistent_in_plane_row", "consistent_in_plane_col", "consistent_pixel_spacing",
    "consistent_image_dimensions", "uniform_slice_spacing",
)


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("inspect", help="list series and what convert would do (reads headers only)",
                       description="One row per output volume: modality, description, files, "
                       "matrix, spacing, orientation, IDC geometry checks and the action.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files or folders")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from dicomvol.cli.convert import add_policy_arguments

    add_policy_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan and print; exit 1 when files could not be read."""
    from dicomvol.api import scan
    from dicomvol.cli.convert import plan_options
    from dicomvol.cli.progress import Progress

    progress = Progress(enabled=False if args.quiet else None)
    try:
        result = scan(args.inputs, progress, plan_options(args))
    finally:
        progress.close()
    rows = describe(result)
    from dicomvol.cli.convert import warn_if_nothing_found

    warn_if_nothing_found(result.n_files, len(result.plans) + len(result.skipped)
                          + len(result.errors), len(result.ignored))
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_table(rows)
    return 1 if result.errors else 0


def describe(result: Any) -> dict[str, Any]:
    """Plans, skips, ignored files and errors as plain JSON-ready data."""
    volumes = []
    for plan in result.plans:
        f = plan.first
        ps = f.pixel_spacing or (0.0, 0.0)
        files = len({fr.path for fr in plan.all_frames})
        detail = plan.detail
        if plan.resample is not None:
            action = f"resample to {plan.resample.spacing:g} mm ({plan.resample.reason})"
        elif "split" in detail:
            s = detail["split"]
            action = f"write exact piece {s['piece']}/{s['pieces']}"
        elif len(plan.shape) == 4:
            action = f"write 4D ({plan.shape[3]} volumes by {detail.get('fourth_dimension')})"
        else:
            action = "write"
        if plan.sheared:
            action += " (sheared affine)"
        volumes.append({
            "SeriesInstanceUID": plan.series_instance_uid,
            "SeriesNumber": f.series_number,
            "Modality": f.modality,
            "SeriesDescription": f.series_description,
            "Label": plan.label,
            "Files": files,
            "Frames": len(plan.all_frames),
            "Matrix": list(plan.shape),
            "PixelSpacing": [ps[1], ps[0]],
            "SliceSpacing": detail.get("slice_step_mm"),
            "Orientation": detail.get("orientation"),
            "Geometry": plan.geometry,
            "GeometryDetail": detail,
            "Case": case_text(detail),
            "Action": action,
            "Warnings": list(plan.warnings),
        })
    skipped: dict[str, Counter[str]] = defaultdict(Counter)
    for s in result.skipped:
        skipped[s.reason][s.rel.split("/")[0] if "/" in s.rel else "."] += 1
    return {
        "volumes": volumes,
        "skipped": [{"Reason": r, "Frames": sum(c.values())} for r, c in skipped.items()],
        "ignored": [{"File": i.rel, "Reason": i.reason} for i in result.ignored],
        "errors": [{"File": e.rel, "Error": e.error} for e in result.errors],
        "series_checks": result.series_checks,
    }


def case_text(detail: dict[str, Any]) -> str:
    """The geometry case with its measured numbers, e.g. 'gantry tilt 18.50°'."""
    case = str(detail.get("case", "regular"))
    if "tilt" in case and detail.get("step_angle_degrees") is not None:
        case += f" {detail['step_angle_degrees']:.2f}°"
    if "spacing" in case and "min_spacing_mm" in detail:
        case += (f" {detail['min_spacing_mm']:g}/{detail['median_spacing_mm']:g}/"
                 f"{detail['max_spacing_mm']:g} mm (min/median/max)")
    if case == "missing slices":
        gaps = detail.get("gaps", [])
        case += ": " + ", ".join(f"{g['missing_slices']} after {g['after_position_mm']:g} mm"
                                 for g in gaps)
    if case == "lateral shift":
        case += f" up to {detail.get('in_plane_shift_mm', 0):g} mm"
    return case


def print_table(rows: dict[str, Any]) -> None:
    """A fixed-width table, one row per volume, then skips, ignored files and errors."""
    out = sys.stdout
    if not rows["volumes"]:
        out.write("no volumes\n")
    header = ("#", "Mod", "Description", "Files", "Matrix", "Pixel mm", "Slice mm",
              "Orientation", "IDC regular", "Case", "Action")
    table = [header]
    notes: list[str] = []
    for v in rows["volumes"]:
        checks = v["Geometry"]
        failed = [c for c in CHECK_NAMES if checks.get(c) is False]
        if checks.get("regularly_spaced_3d_volume"):
            regular = "yes"
        elif not failed:
            regular = "n/a"
        elif len(failed) <= 2:
            regular = "no: " + ",".join(failed)
        else:
            regular = f"no ({len(failed)} checks fail)"
        desc = v["SeriesDescription"] + (f" [{v['Label']}]" if v["Label"] else "")
        table.append((
            str(v["SeriesNumber"] if v["SeriesNumber"] is not None else "-"),
            v["Modality"], desc[:40], str(v["Files"]),
            "x".join(str(s) for s in v["Matrix"]),
            "x".join(f"{s:.3g}" for s in v["PixelSpacing"]),
            f"{v['SliceSpacing']:.4g}" if v["SliceSpacing"] is not None else "-",
            v["Orientation"] or "-", regular, v["Case"], v["Action"],
        ))
        notes.extend(f"  {v['SeriesNumber']}: {w}" for w in v["Warnings"])
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    for r in table if len(table) > 1 else []:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                  + "\n")
    if notes:
        out.write("\nwarnings:\n" + "\n".join(notes) + "\n")
    for s in rows["skipped"]:
        out.write(f"skip {s['Frames']} frame(s): {s['Reason']}\n")
    ignored = Counter(i["Reason"] for i in rows["ignored"])
    for reason, n in ignored.most_common():
        out.write(f"ignore {n} file(s): {reason}\n")
    for e in rows["errors"]:
        out.write(f"error: {e['File']}: {e['Error']}\n")

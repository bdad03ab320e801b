"""``dicomvol inspect INPUT... [--json]``: what is there and what convert would do."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("inspect", help="list series and what convert would do (reads headers only)",
                       description="One row per output volume: modality, description, files, "
                       "matrix, spacing, orientation, IDC geometry checks and the action.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="DICOM files or folders, s3:// or gs:// URLs, manifests")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from dicomvol.cli.convert import add_archive_arguments, add_policy_arguments

    add_archive_arguments(p)
    add_policy_arguments(p)
    from dicomvol.options import JPEG_COLOR_CHOICES

    p.add_argument("--jpeg-color", choices=JPEG_COLOR_CHOICES, default="auto",
                   help="slides: colour decision for JPEG/JPEG 2000 frames (default auto)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan and print; exit 1 when files could not be read."""
    from dicomvol.api import scan
    from dicomvol.batch.archive import check_run
    from dicomvol.cli.convert import archive_of, plan_options, storage_of
    from dicomvol.cli.progress import Progress

    archive = archive_of(args)
    progress = Progress(enabled=False if args.quiet else None)
    try:
        result = scan(archive.inputs, progress, plan_options(args), storage=storage_of(args),
                      jpeg_color=args.jpeg_color)
    finally:
        progress.close()
    from dicomvol.report.describe import describe

    rows = describe(result)
    completeness, version = check_run(archive)
    if version is not None:
        rows["idc"] = {"idc_version": version,
                       "series": [c.to_json() for c in completeness],
                       "skipped_series": [s.to_json() for s in archive.skipped]}
    from dicomvol.cli.convert import warn_if_nothing_found

    warn_if_nothing_found(result.n_files, len(result.plans) + len(result.skipped)
                          + len(result.errors) + len(result.slides), len(result.ignored))
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_table(rows)
        print_idc(rows.get("idc"))
    return 1 if result.errors or not all(c.complete for c in completeness) else 0


def print_table(rows: dict[str, Any]) -> None:
    """A fixed-width table, one row per volume, then skips, ignored files and errors."""
    from dicomvol.model.detail import IDC_CHECK_NAMES

    out = sys.stdout
    if not rows["volumes"] and not rows.get("slides"):
        out.write("no volumes\n")
    header = ("#", "Mod", "Description", "Files", "Matrix", "Pixel mm", "Slice mm",
              "Orientation", "IDC regular", "Case", "Action")
    table = [header]
    notes: list[str] = []
    for v in rows["volumes"]:
        checks = v["Geometry"]
        failed = [c for c in IDC_CHECK_NAMES if checks.get(c) is False]
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
    derived = rows.get("derived") or []
    if derived:
        out.write("\nderived objects:\n")
    for d in derived:
        what = f"{len(d['Segments'])} {'ROIs' if d['Modality'] == 'RTSTRUCT' else 'segments'}"
        frames = f", {d['Frames']} frames" if d["Frames"] is not None else ""
        refs = ", ".join(d["ReferencedSeries"]) or "(no series named)"
        out.write(f"  {d['Modality']} {d['File']} ({d['Type']}, {what}{frames}) references "
                  f"{refs}: {d['Action']} {'x'.join(str(n) for n in d['Grid'])}\n")
        out.writelines(f"    {w}\n" for w in d["Warnings"])
    print_slides(rows.get("slides") or [])
    for s in rows["skipped"]:
        out.write(f"skip {s['Frames']} frame(s): {s['Reason']}\n")
    ignored = Counter(i["Reason"] for i in rows["ignored"])
    for reason, n in ignored.most_common():
        out.write(f"ignore {n} file(s): {reason}\n")
    for e in rows["errors"]:
        out.write(f"error: {e['File']}: {e['Error']}\n")


def print_idc(idc: dict[str, Any] | None) -> None:
    """One line per IDC series: complete or not against the index, and series not fetched."""
    if not idc:
        return
    out = sys.stdout
    for c in idc["series"]:
        state = "complete" if c["complete"] else "INCOMPLETE"
        out.write(f"IDC {c['idc_version']} {c['Modality']} {c['SeriesInstanceUID']}: {state}, "
                  f"{c['listed_objects']}/{c['idc_instance_count']} objects, "
                  f"{c['listed_bytes']:,}/{c['idc_bytes']:,} bytes\n")
    for s in idc["skipped_series"]:
        out.write(f"not fetched: {s['SeriesInstanceUID']} ({s['Modality']}): {s['Reason']}\n")
#: Short names of the transfer syntaxes slides use.
_TS = {"1.2.840.10008.1.2.1": "native", "1.2.840.10008.1.2": "native-implicit",
       "1.2.840.10008.1.2.4.50": "JPEG", "1.2.840.10008.1.2.4.51": "JPEG-12",
       "1.2.840.10008.1.2.4.80": "JPEG-LS", "1.2.840.10008.1.2.4.81": "JPEG-LS-near",
       "1.2.840.10008.1.2.4.90": "J2K-lossless", "1.2.840.10008.1.2.4.91": "J2K",
       "1.2.840.10008.1.2.4.201": "HTJ2K-lossless", "1.2.840.10008.1.2.4.203": "HTJ2K",
       "1.2.840.10008.1.2.5": "RLE"}


def print_slides(slides: list[dict[str, Any]]) -> None:
    """One row per slide (levels, flags, other images, colour), then one line per level."""
    out = sys.stdout
    if slides:
        out.write("\nslides:\n")
    for s in slides:
        flags = [f"{len(s['OpticalPaths'])} optical path(s)", f"{s['FocalPlanes']} plane(s)"]
        flags += [name for name in ("Sparse", "Concatenated") if s[name]]
        others = [name.lower() for name in ("Label", "Overview", "Thumbnail") if s[name]]
        out.write(f"  {s['SeriesNumber'] if s['SeriesNumber'] is not None else '-'}"
                  f"{s['Suffix']} {s['Modality']} {s['SeriesDescription']!r}: "
                  f"{len(s['Levels'])} levels, {s['Frames']} frames, {', '.join(flags)}; "
                  f"{'/'.join(others) or 'no label/overview'}; colour: "
                  f"{'; '.join(s['ColorDecision'])}\n")
        for n, lv in enumerate(s["Levels"]):
            ts = "/".join(_TS.get(t, t) for t in lv["TransferSyntax"])
            um = "x".join(f"{v:.4g}" for v in lv["PixelSpacingUm"])
            out.write(f"    level {n}: {lv['Width']}x{lv['Height']}, tile {lv['TileWidth']}x"
                      f"{lv['TileHeight']}, {um} um/px, x{lv['Downsample']:g}, "
                      f"{lv['Frames']} frames, {ts}, {'/'.join(lv['Photometric'])}"
                      + (f", {lv['MissingTiles']} missing tiles" if lv["MissingTiles"] else "")
                      + "\n")
        out.writelines(f"    warning: {w}\n" for w in s["Warnings"])

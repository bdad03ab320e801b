"""``dicomvol convert INPUT... -o OUTDIR``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from dicomvol.batch.executors import default_workers
from dicomvol.options import DEFAULT_TEMPLATE, FORMAT_CHOICES


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("convert", help="convert DICOM files and folders to NIfTI volumes",
                       description="Convert every volume found under the inputs. Writes "
                       "NAME.nii.gz + NAME.json per volume and dicomvol_report.json.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files or folders")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("-z", "--compress", choices=["y", "n"], default="y",
                   help="gzip the NIfTI files: y (.nii.gz, default) or n (.nii)")
    p.add_argument("-f", "--filename", default=DEFAULT_TEMPLATE, metavar="TEMPLATE",
                   help="output name template of DICOM keywords in braces "
                   f"(default {DEFAULT_TEMPLATE.replace('%', '%%')!r})")
    p.add_argument("-e", "--format", choices=FORMAT_CHOICES, default="nifti",
                   help="output format (default nifti)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--resume", action="store_true",
                   help="keep outputs whose sidecar shows the same sources; convert the rest")
    p.add_argument("--anonymize", action="store_true",
                   help="leave patient-identifying keys out of sidecars and file names")
    p.add_argument("--suv", choices=["bw"], help="PET: write body-weight SUV (g/ml)")
    p.add_argument("--reorient", action="store_true",
                   help="write voxel axes in the nearest RAS orientation (axis permutation/flip "
                   "only, no interpolation)")
    p.add_argument("--qc", action="store_true",
                   help="also write the visual quality-control page OUTDIR/qc/index.html")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: scheduler address (tcp://host:8786) or 'local'")
    add_policy_arguments(p)
    p.add_argument("-j", "--jobs", type=int, default=default_workers(), metavar="N",
                   help="worker processes (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p.add_argument("--json", action="store_true", help="print the run report as JSON on stdout")
    p.set_defaults(run=run)


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """Options for tilted and irregular series (shared by convert and inspect)."""
    from dicomvol.constants import MAX_RESAMPLE_GAP_SLICES
    from dicomvol.options import (
        INTERPOLATION_CHOICES,
        IRREGULAR_CHOICES,
        PHILIPS_CHOICES,
        TILT_CHOICES,
    )

    p.add_argument("--tilt", choices=TILT_CHOICES, default="both",
                   help="gantry tilt: exact sheared stack, resampled orthogonal copy, or both "
                   "(default both)")
    p.add_argument("--irregular", choices=IRREGULAR_CHOICES, default="resample",
                   help="variable spacing / missing slices / lateral shift: resample onto a "
                   "regular grid (default), split into exact regular pieces, or skip")
    p.add_argument("--max-gap-slices", type=int, default=MAX_RESAMPLE_GAP_SLICES, metavar="N",
                   help="--irregular resample: split a series where more than N slices are "
                   f"missing instead of interpolating across the gap (default "
                   f"{MAX_RESAMPLE_GAP_SLICES})")
    p.add_argument("--interpolation", choices=INTERPOLATION_CHOICES, default="linear",
                   help="interpolation when resampling (default linear)")
    p.add_argument("--philips-scaling", choices=PHILIPS_CHOICES, default="display",
                   help="Philips MR: DICOM display values (default, = dcm2niix -p n) or "
                   "Philips floating-point values (fp, = dcm2niix's default -p y)")


def plan_options(args: argparse.Namespace) -> Any:
    """PlanOptions from parsed arguments."""
    from dicomvol.options import PlanOptions

    return PlanOptions(tilt=args.tilt, irregular=args.irregular,
                       interpolation=args.interpolation, philips_scaling=args.philips_scaling,
                       max_gap_slices=args.max_gap_slices)


def run(args: argparse.Namespace) -> int:
    """Convert and print a summary; exit 1 when any file or series failed."""
    from dicomvol.api import convert
    from dicomvol.cli.progress import Progress
    from dicomvol.errors import UsageError
    from dicomvol.options import ConvertOptions

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    options = ConvertOptions(compress=args.compress == "y", template=args.filename,
                             overwrite=args.overwrite, jobs=args.jobs, plan=plan_options(args),
                             format=args.format, resume=args.resume, dask=args.dask,
                             anonymize=args.anonymize, suv=args.suv == "bw",
                             reorient=args.reorient, qc=args.qc)
    progress = Progress(enabled=False if args.quiet else None)
    try:
        report = convert(args.inputs, args.output, options, progress)
    finally:
        progress.close()
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif not args.quiet:
        print_summary(report)
    warn_if_nothing_found(report.n_files, len(report.outputs) + len(report.skipped)
                          + len(report.errors), len(report.ignored))
    return 0 if report.ok else 1


def warn_if_nothing_found(n_files: int, n_images: int, n_ignored: int) -> None:
    """One line on stderr when the inputs hold no DICOM image at all."""
    if n_images:
        return
    if n_files == 0:
        print("dicomvol: no files found in the inputs", file=sys.stderr)
    else:
        print(f"dicomvol: no DICOM images found: {n_files} file(s) looked at, {n_ignored} not "
              "DICOM or without pixel data (see the report's 'ignored')", file=sys.stderr)


def print_summary(report: Any) -> None:
    """Human summary on stdout: outputs with warnings, skips and errors grouped by reason."""
    from collections import Counter

    out = sys.stdout
    for o in report.outputs:
        shape = "x".join(str(s) for s in o.shape)
        spacing = "x".join(f"{s:.3g}" for s in o.spacing)
        out.write(f"wrote {o.path}  {shape}  {spacing} mm\n")
        for w in o.warnings:
            out.write(f"  warning: {w}\n")
    reasons = Counter(s.reason for s in report.skipped)
    for reason, n in reasons.most_common():
        out.write(f"skipped {n} frame(s): {reason}\n")
    ignored = Counter(i.reason for i in report.ignored)
    for reason, n in ignored.most_common():
        out.write(f"ignored {n} file(s): {reason}\n")
    for e in report.errors:
        out.write(f"error: {e.rel}: {e.error}\n")
    out.write(f"{len(report.outputs)} volume(s) written to {report.out_dir}, "
              f"{len(report.skipped)} frame(s) skipped, {len(report.ignored)} file(s) ignored, "
              f"{len(report.errors)} error(s); report: "
              f"{os.path.join(report.out_dir, 'dicomvol_report.json')}\n")

"""``dicomvol convert INPUT... -o OUTDIR``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from dicomvol.batch.executors import (
    IN_PROCESS_MAX_BYTES,
    IN_PROCESS_MAX_FILES,
    default_workers,
)
from dicomvol.options import (
    DEFAULT_TEMPLATE,
    FORMAT_CHOICES,
    JPEG_COLOR_CHOICES,
    SLIDE_FORMAT_CHOICES,
)


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("convert", help="convert DICOM files and folders to NIfTI volumes",
                       description="Convert every volume found under the inputs. Writes "
                       "NAME.nii.gz + NAME.json per volume and dicomvol_report.json.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="DICOM files or folders, s3:// or gs:// URLs, manifests")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_archive_arguments(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be fetched (objects, bytes) and exit; no GET")
    p.add_argument("-z", "--compress", choices=["y", "n"], default="y",
                   help="gzip the NIfTI files: y (.nii.gz, default) or n (.nii)")
    p.add_argument("-f", "--filename", default=DEFAULT_TEMPLATE, metavar="TEMPLATE",
                   help="output name template of DICOM keywords in braces "
                   f"(default {DEFAULT_TEMPLATE.replace('%', '%%')!r})")
    p.add_argument("-e", "--format", action="append", metavar="FORMAT",
                   choices=FORMAT_CHOICES + SLIDE_FORMAT_CHOICES,
                   help="output format: volumes nifti (default), nrrd or mha; slide microscopy "
                   "ome.tif (default), tif (plain pyramidal TIFF) or ome.zarr; may be given "
                   "twice (one of each)")
    p.add_argument("--jpeg-color", choices=JPEG_COLOR_CHOICES, default="auto",
                   help="slides: colour of JPEG/JPEG 2000 frames from the codestream when it "
                   "says (auto, default), from the PhotometricInterpretation (pi), or the "
                   "codestream only (stream)")
    p.add_argument("--apply-icc", action="store_true",
                   help="slides: convert RGB to sRGB with the slide's ICC profile (default: "
                   "carry the profile, pixels as stored)")
    p.add_argument("--slide-fill", type=float, metavar="VALUE",
                   help="slides: value of missing tiles (default white for RGB, 0 otherwise)")
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
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help=f"worker processes (default: all cores, {default_workers()} here; "
                   "without -j, local inputs of at most "
                   f"{IN_PROCESS_MAX_FILES} files and {IN_PROCESS_MAX_BYTES // 2**20} MiB "
                   "are converted in this process, where a pool is slower to start than "
                   "to finish; -j N always uses N)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p.add_argument("--json", action="store_true", help="print the run report as JSON on stdout")
    p.set_defaults(run=run)


def add_archive_arguments(p: argparse.ArgumentParser) -> None:
    """IDC selections and object-store options (shared by convert and inspect)."""
    p.add_argument("--idc", metavar="ID[,ID...]", action="append", default=[],
                   help="IDC series to fetch: SeriesInstanceUID, StudyInstanceUID, PatientID, "
                   "collection_id or crdc_series_uuid (resolved on the installed idc-index-data)")
    p.add_argument("--idc-query", metavar="SQL",
                   help="SQL over the IDC index tables (index, prior_versions_index) returning "
                   "SeriesInstanceUID")
    p.add_argument("--idc-check", action="store_true",
                   help="also check local folders made by idc download/s5cmd against the index")
    p.add_argument("--gcs", action="store_true",
                   help="fetch IDC selections from IDC's Google Cloud buckets (gs://), not S3")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="object-store endpoint (default: AWS_ENDPOINT_URL, else the provider's)")


def archive_of(args: argparse.Namespace) -> Any:
    """The :class:`~dicomvol.batch.archive.Archive` the arguments select (usage error if none)."""
    from dicomvol.batch.archive import select
    from dicomvol.errors import UsageError

    ids = [i for arg in args.idc for i in arg.split(",") if i.strip()]
    if not (args.inputs or ids or args.idc_query):
        raise UsageError("give an INPUT, --idc or --idc-query")
    return select(args.inputs, ids, args.idc_query, "gs" if args.gcs else "s3",
                  local_check=args.idc_check)


def storage_of(args: argparse.Namespace) -> Any:
    """StorageOptions from parsed arguments."""
    from dicomvol.options import StorageOptions

    return StorageOptions(endpoint_url=args.endpoint_url)


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
    from dicomvol.options import ConvertOptions, SlideOptions

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    archive = archive_of(args)
    if args.dry_run:
        return print_dry_run(archive, storage_of(args), args.json)
    formats = args.format or []
    volume = [f for f in formats if f in FORMAT_CHOICES]
    slide = [f for f in formats if f in SLIDE_FORMAT_CHOICES]
    if len(volume) > 1 or len(slide) > 1:
        raise UsageError("-e: give at most one volume format and one slide format")
    options = ConvertOptions(compress=args.compress == "y", template=args.filename,
                             overwrite=args.overwrite, jobs=args.jobs or default_workers(),
                             adaptive_jobs=args.jobs is None, plan=plan_options(args),
                             format=volume[0] if volume else "nifti", resume=args.resume,
                             dask=args.dask, anonymize=args.anonymize, suv=args.suv == "bw",
                             reorient=args.reorient, qc=args.qc, storage=storage_of(args),
                             slide=SlideOptions(format=slide[0] if slide else "ome.tif",
                                                jpeg_color=args.jpeg_color,
                                                fill=args.slide_fill,
                                                apply_icc=args.apply_icc))
    progress = Progress(enabled=False if args.quiet else None)
    try:
        report = convert(archive.inputs, args.output, options, progress, archive)
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


def print_dry_run(archive: Any, storage: Any, as_json: bool) -> int:
    """What a run would fetch, one line per input, and the series skipped by the index."""
    from dicomvol.batch.archive import dry_run
    from dicomvol.inputs import fs

    fs.configure(storage)
    rows = dry_run(archive)
    skipped = [s.to_json() for s in archive.skipped]
    if as_json:
        json.dump({"fetch": rows, "skipped_series": skipped}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        sys.stdout.write(f"would fetch {r['input']}  {r['objects']} object(s)  "
                         f"{r['bytes']:,} bytes  ({r['from']})\n")
    for s in skipped:
        sys.stdout.write(f"would skip {s['SeriesInstanceUID']} ({s['Modality']}, "
                         f"{s['idc_instance_count']} object(s)): {s['Reason']}\n")
    total = sum(int(str(r["bytes"])) for r in rows)
    sys.stdout.write(f"{len(rows)} input(s), {total:,} bytes to fetch; "
                     f"{len(skipped)} series skipped\n")
    return 0


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
    reasons: Counter[str] = Counter()
    for s in report.skipped:
        reasons[s.reason] += s.n_frames
    for reason, n in reasons.most_common():
        out.write(f"skipped {n} frame(s): {reason}\n")
    ignored = Counter(i.reason for i in report.ignored)
    for reason, n in ignored.most_common():
        out.write(f"ignored {n} file(s): {reason}\n")
    for e in report.errors:
        out.write(f"error: {e.rel}: {e.error}\n")
    for s in report.skipped_series:
        out.write(f"skipped series {s.series.series_instance_uid} ({s.series.modality}, not "
                  f"fetched): {s.reason}\n")
    for c in report.completeness:
        state = "complete" if c.complete else "INCOMPLETE"
        out.write(f"IDC {c.idc_version} series {c.series.series_instance_uid}: {state}, "
                  f"{c.listed_objects}/{c.series.instance_count} objects, "
                  f"{c.listed_bytes:,}/{c.series.size_bytes:,} bytes ({c.source})\n")
    out.write(f"{len(report.outputs)} volume(s) written to {report.out_dir}, "
              f"{report.n_skipped_frames} frame(s) skipped, "
              f"{len(report.ignored)} file(s) ignored, "
              f"{len(report.errors)} error(s); report: "
              f"{os.path.join(report.out_dir, 'dicomvol_report.json')}\n")

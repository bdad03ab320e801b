"""``dicomvol demo``: build a small synthetic study, convert it, show what happened."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - the parser of every command is built on each run
    from pathlib import Path


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser("demo", help="convert a built-in synthetic study and explain the result",
                       description="Writes a synthetic DICOM study (an oblique CT with "
                       "shuffled files, descending instance numbers and per-slice rescale, "
                       "plus an MR series) to a temporary folder, converts it, and checks "
                       "every slice against the known geometry.")
    p.add_argument("--keep", metavar="DIR", help="write the study and outputs here and keep them")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 1 if any check fails."""
    import tempfile
    from pathlib import Path

    if args.keep:
        root = Path(args.keep)
        root.mkdir(parents=True, exist_ok=True)
        return _demo(root)
    with tempfile.TemporaryDirectory(prefix="dicomvol-demo-") as tmp:
        return _demo(Path(tmp))


def _demo(root: Path) -> int:
    import numpy as np

    from dicomvol.api import convert
    from dicomvol.cli.convert import print_summary
    from dicomvol.options import ConvertOptions
    from dicomvol.testing.demo import write_demo_study

    out = sys.stdout
    dicom_dir, out_dir = root / "dicom", root / "nifti"
    series = write_demo_study(dicom_dir)
    n_files = sum(len(s.paths) for s in series)
    out.write(f"dicomvol demo: wrote {n_files} synthetic DICOM files in {len(series)} series "
              f"to {dicom_dir}\n  (file names are random, InstanceNumber runs against the slice "
              "order, the CT is oblique and each slice has its own rescale slope)\n\n")
    report = convert([dicom_dir], out_dir, ConvertOptions(jobs=1))
    print_summary(report)
    out.write("\nchecking every voxel against the synthetic ground truth:\n")
    import nibabel as nib

    from dicomvol.constants import LPS_TO_RAS

    ok = True
    by_uid = {o.series_instance_uid: o for o in report.outputs}
    for s in series:
        o = by_uid.get(s.series_instance_uid)
        if o is None:
            out.write(f"  series {s.series_instance_uid}: NOT WRITTEN\n")
            ok = False
            continue
        img: Any = nib.load(out_dir / o.path)
        values = np.asarray(img.dataobj, dtype=np.float64)
        affine_err = float(np.max(np.abs(img.affine - np.array(LPS_TO_RAS) @ s.affine_lps)))
        value_err = float(np.max(np.abs(values - s.values)))
        good = affine_err < 1e-3 and value_err < 1e-2
        ok &= good
        out.write(f"  {o.path}: max affine error {affine_err:.2e} mm, max value error "
                  f"{value_err:.2e} -> {'OK' if good else 'MISMATCH'}\n")
    if args_keep_hint := str(root):
        out.write(f"\noutputs in {out_dir}" + (" (temporary; use --keep DIR to keep them)\n"
                                               if "dicomvol-demo-" in args_keep_hint else "\n"))
    return 0 if ok and report.ok else 1

#!/usr/bin/env python3
"""The fraction of dcm2niix's volumes that dicomvol reproduces on the shared corpus (issue 9).

Usage::

    python benchmarks/reproduced.py                    # every set with radiology images
    python benchmarks/reproduced.py --only edge_cases --only mr_4d_nih
    python benchmarks/reproduced.py --diffusion        # the corpus diffusion series only

Each corpus set (or diffusion series) is converted by dcm2niix (``-z n -b y -ba n -x i -f
%s_%d``, as ``tests/integration/test_dcm2niix.py`` runs it) and by dicomvol (``-z n``,
default options) into empty folders; every volume of every dcm2niix NIfTI counts once, and it
is *reproduced* when some dicomvol output holds it on the same world grid, with the same values
and the same bval/bvec (``dicomvol.testing.reproduce``). Prints the fraction per set and over
all, and writes ``benchmarks/results/reproduced.json``. dcm2niix's tilt-corrected,
equidistant and overlay copies (``_Tilt``, ``_Eq``, ``_ROI``) are counted as written.

Every dcm2niix file with a volume not reproduced is listed with the corpus files it came from,
what dicomvol wrote from them (or why it skipped them) and a kind computed from the headers
(``dicomvol.testing.misses.KINDS``); then the misses are counted by kind. ``--keep DIR``
leaves both tools' outputs in DIR. dicomvol runs with its defaults, which are the options that
match dcm2niix's: ``--tilt both`` (the exact sheared stack and a resampled copy, like
dcm2niix's raw stack and ``_Tilt``), ``--irregular resample`` (like ``_Eq``), and display
values for Philips (dcm2niix's floating-point values are scaled back before comparing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from dicomvol.testing.misses import KINDS, Miss, Outputs, explain  # noqa: E402
from dicomvol.testing.reproduce import reproduced  # noqa: E402

#: Every corpus set with radiology images (tests/regression/outputs.py converts the same).
SETS = ("ct_tilt", "ct_lung1", "pet_wholebody_seg", "edge_cases", "mr_orientation",
        "mr_4d_nih", "transfer_syntaxes", "enhanced_mr", "seg_dcmqi", "seg_highdicom")
#: The corpus diffusion series (corpus README: GE and Philips enhanced DTI).
DIFFUSION = ("edge_cases/ge/dti/001", "edge_cases/ge/dti/001_implicit", "edge_cases/ge/dti/002",
             "edge_cases/philips_enhanced/dti/001", "edge_cases/philips_enhanced/dti/001_implicit")
DCM2NIIX_ARGS = ["-z", "n", "-b", "y", "-ba", "n", "-x", "i", "-f", "%s_%d"]


def corpus_root() -> Path:
    env = os.environ.get("DICOMVOL_CORPUS")
    return Path(env) if env else (REPO.parent / "shared" / "corpus").resolve()


def tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found")
    return found


def measure(src: Path, work: Path) -> tuple[list[tuple[str, int, bool]], list[Miss]]:
    """(dcm2niix file, volume, reproduced?) for every volume dcm2niix writes from ``src``,
    and why each file with a volume not reproduced is not."""
    dx, dv = work / "dcm2niix", work / "dicomvol"
    dx.mkdir(parents=True)
    subprocess.run([tool("dcm2niix"), *DCM2NIIX_ARGS, "-o", str(dx), str(src)],
                   capture_output=True, check=False)
    subprocess.run([tool("dicomvol"), "convert", str(src), "-o", str(dv), "-z", "n", "-q"],
                   capture_output=True, check=False)
    out = Outputs.load(src, dx, dv)
    rows = reproduced(out.dx, out.dv)
    return rows, explain(out, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="a corpus set or folder")
    parser.add_argument("--diffusion", action="store_true", help="the diffusion series only")
    parser.add_argument("--keep", type=Path, help="keep both tools' outputs in this folder")
    args = parser.parse_args(argv)
    root = corpus_root()
    keys = args.only or (list(DIFFUSION) if args.diffusion else list(SETS))
    rows: dict[str, list[tuple[str, int, bool]]] = {}
    misses: dict[str, list[Miss]] = {}
    with tempfile.TemporaryDirectory(prefix="dicomvol-reproduced-") as tmp:
        work = args.keep or Path(tmp)
        for n, key in enumerate(keys):
            rows[key], misses[key] = measure(root / key, work / f"{n:02d}")
            done = sum(ok for _, _, ok in rows[key])
            print(f"{key:40s} {done:5d} / {len(rows[key]):5d} dcm2niix volumes reproduced",
                  flush=True)
    total = sum(len(r) for r in rows.values())
    done = sum(ok for r in rows.values() for _, _, ok in r)
    print(f"{'all':40s} {done:5d} / {total:5d} = {done / max(total, 1):.1%}")
    by_kind: dict[str, list[int]] = {}
    for key, found in misses.items():
        for m in found:
            print(f"  not reproduced: {key}: {m.line()}")
            counts = by_kind.setdefault(m.kind, [0, 0])
            counts[0] += 1
            counts[1] += m.missed
    print("misses by kind (files, volumes):")
    for kind, (files, volumes) in sorted(by_kind.items()):
        print(f"  {kind:30s} {files:3d} {volumes:4d}  {KINDS[kind]}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "reproduced.json").write_text(json.dumps(
        {"sets": {k: {"volumes": len(r), "reproduced": sum(ok for _, _, ok in r),
                      "missed": [vars(m) for m in misses[k]]} for k, r in rows.items()},
         "by_kind": {k: {"files": f, "volumes": v} for k, (f, v) in by_kind.items()},
         "volumes": total, "reproduced": done}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

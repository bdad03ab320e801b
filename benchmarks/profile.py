#!/usr/bin/env python3
"""Profile one ``dicomvol convert`` with py-spy and summarise where the time goes.

Usage::

    python benchmarks/profile.py [--dataset ct_study] [--quick] [-z n] [-j 1] [--native]

Runs ``dicomvol convert DATA -o OUT -z n -j 1 -q`` under ``py-spy record`` (``pip install
py-spy``; it samples every thread of the process, which matters because dicomvol decodes and
writes on helper threads) and writes ``benchmarks/results/profile_<data>_z<z>_j<j>.txt`` (raw
collapsed stacks, usable with flamegraph.pl or speedscope) plus ``..._summary.txt``: sampled CPU
by conversion phase (the innermost dicomvol function on the stack decides the phase; gzip and
imports are recognised anywhere on the stack) and the functions with the most self time.
Percentages are of all non-idle samples of all threads. ``--native`` adds C frames (zlib, read).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import data as bench_data  # noqa: E402

RESULTS = HERE / "results"
BIN = REPO / ".venv" / "bin"

#: dicomvol package (folder under ``src/dicomvol``) -> phase, for the innermost dicomvol
#: frame of a stack; a few modules are named on their own (``MODULE_PHASES`` wins).
PACKAGE_PHASES = {
    "inputs": "discovery + fetching",
    "dicom": "header indexing",
    "model": "planning + geometry checks",
    "plan": "planning + geometry checks",
    "pixels": "pixel read + placement",
    "io": "output write",
    "metadata": "sidecar / report",
    "report": "sidecar / report",
    "objects": "label maps (SEG, RTSTRUCT, dose)",
    "slide": "slides",
    "batch": "orchestration (batch)",
    "cli": "command line",
    "qc": "QC page",
}

#: ``package/module.py`` -> phase, where a module's work is not its package's.
MODULE_PHASES = {
    "batch/naming.py": "planning + geometry checks",
    "batch/reading.py": "header indexing",
    "batch/scan.py": "header indexing",
    "io/stream.py": "pixel read + placement",
}


def parse_frame(frame: str) -> tuple[str, str]:
    """``"func (path/file.py:12)"`` -> ``("func", "path/file.py")``."""
    if frame.endswith(")") and " (" in frame:
        func, loc = frame[:-1].rsplit(" (", 1)
        return func, loc.rsplit(":", 1)[0]
    return frame, ""


def phase_of(stack: list[tuple[str, str]]) -> str:
    """Phase of one sample; ``stack`` is outermost first."""
    for func, path in stack:
        if func in ("_find_and_load", "_call_with_frames_removed") and "importlib" in path:
            return "imports"
    if any(path.endswith("gzip.py") or "zlib" in path or "deflate" in func.lower()
           or func.startswith("crc32") for func, path in stack):
        return "gzip compression"
    if any("openjpeg" in path or "pylibjpeg" in path or "libjpeg" in path
           for _, path in stack):
        return "JPEG 2000 decode"
    for func, path in reversed(stack):
        if "dicomvol/" in path:
            rel = path.rsplit("dicomvol/", 1)[-1]
            if rel == "io/stream.py" and func == "_write":
                return "output write"
            if rel in MODULE_PHASES:
                return MODULE_PHASES[rel]
            package = rel.split("/", 1)[0] if "/" in rel else ""
            return PACKAGE_PHASES.get(package, f"dicomvol {rel}")
    return "other (interpreter, threads)"


def summarise(raw: Path, top: int) -> tuple[str, int]:
    phases: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    leaf_lib: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack_text, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [parse_frame(f) for f in stack_text.split(";") if f]
        # py-spy prefixes a thread frame ("process 1:..." / "thread (0x...)") with --threads.
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        phases[phase_of(frames)] += count
        func, path = frames[-1]
        short = "/".join(path.split("/")[-2:]) if path else "?"
        leaves[f"{func}  ({short})"] += count
        lib = ("dicomvol" if "dicomvol/" in path else "pydicom" if "pydicom/" in path
               else "numpy" if "numpy/" in path else "nibabel" if "nibabel/" in path
               else "stdlib/other")
        leaf_lib[lib] += count
    if not total:
        return "no samples", 0
    lines = ["sampled CPU by phase (innermost dicomvol frame; all threads):"]
    for name, n in phases.most_common():
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    lines += ["", "self time by library of the leaf frame:"]
    for name, n in leaf_lib.most_common():
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    lines += ["", f"top {top} leaf functions (self time):"]
    for name, n in leaves.most_common(top):
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    return "\n".join(lines), total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ct_study", choices=sorted(bench_data.BUILDERS))
    ap.add_argument("--quick", action="store_true", help="the small data variant")
    ap.add_argument("-z", default="n", choices=("y", "n"))
    ap.add_argument("-j", default="1")
    ap.add_argument("--rate", type=int, default=250, help="samples per second")
    ap.add_argument("--native", action="store_true", help="include C frames")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the unprofiled warm-up run (page cache, .pyc files)")
    args = ap.parse_args(argv)

    py_spy = shutil.which("py-spy", path=f"{BIN}:{Path(sys.executable).parent}")
    if py_spy is None:
        print("py-spy not found: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    spec = bench_data.specs(args.quick)[args.dataset]
    path = bench_data.ensure(spec)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"profile_{spec.name}_z{args.z}_j{args.j}{'_native' if args.native else ''}"
    raw = stem.with_suffix(".txt")
    out = Path(tempfile.mkdtemp(prefix="dicomvol-profile-"))
    def convert(dest: Path) -> list[str]:
        return [str(BIN / "dicomvol"), "convert", str(path), "-o", str(dest), "-z", args.z,
                "-j", args.j, "-q"]

    cmd = [py_spy, "record", "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--subprocesses"]
    if args.native:
        cmd.append("--native")
    # Same environment as run.py: a bytecode cache under benchmarks/data.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bench_data.DATA_DIR / "pycache")
    try:
        if not args.no_warmup:
            subprocess.run(convert(out / "warm"), capture_output=True, check=False, env=env)
        proc = subprocess.run([*cmd, "--", *convert(out / "o")], capture_output=True,
                              text=True, env=env)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
    text, total = summarise(raw, args.top)
    head = (f"dicomvol convert {spec.name} -z {args.z} -j {args.j}: {total} samples at "
            f"{args.rate}/s (~{total / args.rate:.1f} s of CPU, all threads)\n")
    (stem.parent / f"{stem.name}_summary.txt").write_text(head + "\n" + text + "\n")
    print(head)
    print(text)
    print(f"\nraw stacks: {raw}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

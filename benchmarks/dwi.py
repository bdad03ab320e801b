#!/usr/bin/env python3
"""Diffusion benchmark (issue 9): a 100-volume, 80-direction DTI series, classic and enhanced.

Usage::

    python benchmarks/dwi.py                  # build (cached) + 3 timed runs per tool and case
    python benchmarks/dwi.py --runs 1 --quick # 20 volumes: a smoke test

Data (``benchmarks/data/dwi_<case>``, rebuilt when the spec changes): 20 b = 0 volumes
interleaved with 80 unit directions (a deterministic spiral on the sphere), b = 1000, on a
112 x 112 x 50 oblique grid, written by :func:`dicomvol.testing.diffusion.write_dwi_series`:

* ``classic``: GE, one file per slice (5,000 files, the GE private encoding);
* ``enhanced``: Philips Enhanced MR, one file of 5,000 frames (per-frame MRDiffusionSequence
  and the Philips private per-frame items);
* ``undefined``: the same file with every functional-group sequence and item of undefined
  length (delimited, as some scanners write them; pydicom writes defined lengths);
* ``perframe``: the same file with what Philips writes per frame besides position and
  content: a private item holding the frame's own UID and instance number, and a window.

Each tool converts into an empty folder (``-z n``, uncompressed NIfTI), one untimed warm-up
run first; wall and CPU time (the child and its workers, ``os.wait4``) come from
``run.measure``. dicomvol runs with its default ``-j`` (all cores: 2 here). The tools' runs
alternate, and the ratio dicomvol / dcm2niix is the median of the ratios of neighbouring
runs (wall and CPU), printed with each tool's median times and written to
``benchmarks/results/dwi.json``. The machine may be shared: CPU time is the fairer figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench_run  # noqa: E402  (benchmarks/run.py)

from dicomvol.testing.diffusion import DwiVolume, write_dwi_series  # noqa: E402

DATA = HERE / "data"
SPEC_VERSION = 3


def directions(n: int) -> list[tuple[float, float, float]]:
    """``n`` unit vectors on a golden-angle spiral (deterministic, well spread)."""
    out = []
    for i in range(n):
        z = 1.0 - (i + 0.5) / n
        r = float(np.sqrt(max(0.0, 1.0 - z * z)))
        t = i * np.pi * (3.0 - np.sqrt(5.0))
        out.append((float(r * np.cos(t)), float(r * np.sin(t)), float(z)))
    return out


def volumes(n_dirs: int, n_b0: int) -> list[DwiVolume]:
    """``n_b0`` b = 0 volumes spread evenly among ``n_dirs`` directions (b = 1000)."""
    every = max(1, (n_dirs + n_b0) // n_b0)
    dirs = iter(directions(n_dirs))
    out: list[DwiVolume] = []
    while len(out) < n_dirs + n_b0:
        if len(out) % every == 0 and sum(v.b == 0 for v in out) < n_b0:
            out.append(DwiVolume(0.0))
        else:
            out.append(DwiVolume(1000.0, next(dirs)))
    return out


def _undefined_lengths(source: Path, out: Path) -> None:
    """``source`` rewritten with its per-frame sequences and items of undefined length."""
    import pydicom

    ds = pydicom.dcmread(source)
    ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
    for item in ds.PerFrameFunctionalGroupsSequence:
        item.is_undefined_length_sequence_item = True
        for elem in item:
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for sub in elem.value:
                    sub.is_undefined_length_sequence_item = True
    out.mkdir(parents=True)
    ds.save_as(out / source.name, enforce_file_format=True)


def _per_frame_values(source: Path, out: Path) -> None:
    """``source`` rewritten as Philips scanners write their per-frame items: a private item
    holding the frame's own SOPInstanceUID and InstanceNumber beside its scale factors,
    and a window (FrameVOILUTSequence) per frame."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(source)
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = 500 + (n * 7) % 900, 1000 + (n * 13) % 1700
        item.FrameVOILUTSequence = Sequence([voi])
        private = item[0x2005100F].value[0]
        private.InstanceNumber = n + 1
        private.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{1000000 + n}"
    out.mkdir(parents=True)
    ds.save_as(out / source.name, enforce_file_format=True)


#: Cases made from the enhanced file: case -> how.
DERIVED = {"undefined": _undefined_lengths, "perframe": _per_frame_values}


def build(case: str, quick: bool) -> Path:
    """The data set of ``case`` (cached; rebuilt when its spec changed)."""
    if case in DERIVED:
        source = build("enhanced", quick)
        folder = source.with_name(source.name.replace("enhanced", case))
        marker = folder.with_name(folder.name + ".complete.json")
        spec = {"from": json.loads(source.with_name(source.name + ".complete.json").read_text())}
        if not (marker.is_file() and json.loads(marker.read_text()) == spec):
            shutil.rmtree(folder, ignore_errors=True)
            DERIVED[case](source / "ENHANCED.dcm", folder)
            marker.write_text(json.dumps(spec))
        return folder
    n_dirs, n_b0, slices = (16, 4, 20) if quick else (80, 20, 50)
    spec = {"version": SPEC_VERSION, "case": case, "dirs": n_dirs, "b0": n_b0,
            "slices": slices, "matrix": 112}
    folder = DATA / f"dwi_{case}{'_quick' if quick else ''}"
    marker = folder.with_name(folder.name + ".complete.json")
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    vendor, enhanced = ("GE", False) if case == "classic" else ("Philips", True)
    c, s = np.cos(np.radians(12)), np.sin(np.radians(12))
    write_dwi_series(folder, vendor, volumes(n_dirs, n_b0), enhanced=enhanced,
                     shape=(112, 112), n_slices=slices, row=(c, s, 0.0), col=(-s, c, 0.0),
                     spacing=2.5)
    marker.write_text(json.dumps(spec))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    tools = bench_run.discover_tools()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for case in ("classic", "enhanced", "undefined", "perframe"):
        folder = build(case, args.quick)
        results[case] = {}
        names = ("dicomvol", "dcm2niix")
        commands = {}
        for name in names:
            out = bench_run.SCRATCH / f"dwi_{name}"
            commands[name] = (tools[name].command(folder, out, "n"), out)
            bench_run.measure(*commands[name], ".nii", args.timeout, sample_memory=False)
        # The tools' runs alternate: a machine whose speed drifts (shared hosts do) slows
        # both alike, and each ratio compares neighbouring runs.
        samples: dict[str, list[bench_run.Sample]] = {name: [] for name in names}
        for _ in range(args.runs):
            for name in names:
                samples[name].append(bench_run.measure(*commands[name], ".nii", args.timeout,
                                                       sample_memory=False))
        for name in names:
            bad = [s for s in samples[name] if s.returncode != 0 or s.timed_out]
            if bad:
                print(f"{case} {name} failed:\n{bad[0].log_tail}", file=sys.stderr)
                return 1
            results[case][name] = {
                "wall_s": statistics.median(s.wall_s for s in samples[name]),
                "cpu_s": statistics.median(s.cpu_s for s in samples[name]),
                "outputs": float(samples[name][0].outputs),
                "background_cores": statistics.median(s.background_cores or 0.0
                                                      for s in samples[name]),
            }
        dv, dx = results[case]["dicomvol"], results[case]["dcm2niix"]
        pairs = list(zip(samples["dicomvol"], samples["dcm2niix"], strict=True))
        dv["wall_ratio"] = statistics.median(a.wall_s / b.wall_s for a, b in pairs)
        dv["cpu_ratio"] = statistics.median(a.cpu_s / b.cpu_s for a, b in pairs)
        print(f"{case:10s} dicomvol {dv['wall_s']:.2f} s wall / {dv['cpu_s']:.2f} s CPU; "
              f"dcm2niix {dx['wall_s']:.2f} s / {dx['cpu_s']:.2f} s; ratio wall "
              f"{dv['wall_ratio']:.2f}, CPU {dv['cpu_ratio']:.2f} "
              f"(other load ~{dv['background_cores']:.1f} cores)")
    bench_run.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench_run.RESULTS / "dwi.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

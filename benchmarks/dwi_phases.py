#!/usr/bin/env python3
"""Where one DWI conversion spends its time, per phase, in one process (issue 9).

Usage::

    python benchmarks/dwi_phases.py                 # the enhanced case of benchmarks/dwi.py
    python benchmarks/dwi_phases.py --case classic  # (add -j 1: the header pass in process)
    python benchmarks/dwi_phases.py --case perframe # (undefined, perframe: see dwi.py)
    PYTHONPATH=/other/src python benchmarks/dwi_phases.py   # another checkout, same data

Runs ``dicomvol convert DATA -o OUT -z n -q`` in this process with the main steps wrapped
(by module attribute, so a checkout without one of them just shows no line for it) and
prints wall and CPU seconds per phase: imports, header walk, records, planning, sidecar,
pixels, NIfTI writing, bval/bvec, JSON. The data must exist (``benchmarks/dwi.py`` builds
it). Phases nest: "scan" holds walk, records and planning; "jobs" the rest.
"""

from __future__ import annotations

import time

T0, C0 = time.perf_counter(), time.process_time()

import argparse  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
#: (module, attribute, phase): the attribute is wrapped where its caller looks it up.
WRAPPED = (
    ("dicomvol.dicom.index", "read_enhanced", "header walk (leanmf)"),
    ("dicomvol.dicom.index", "read_lean", "header walk (lean)"),
    ("dicomvol.dicom.index", "frame_records", "records"),
    ("dicomvol.batch.scan", "plan_index", "planning"),
    ("dicomvol.batch.run", "scan_inputs", "scan (total)"),
    ("dicomvol.batch.jobs", "build_metadata", "sidecar"),
    ("dicomvol.batch.jobs", "read_volume", "pixels"),
    ("dicomvol.batch.jobs", "stream_nifti", "pixels + NIfTI (streamed)"),
    ("dicomvol.batch.jobs", "write_volume", "NIfTI write"),
    ("dicomvol.batch.jobs", "write_diffusion", "bval/bvec"),
    ("dicomvol.batch.jobs", "write_json_atomic", "JSON"),
    ("dicomvol.batch.run", "_run_jobs", "jobs (total)"),
)


def _wrap(times: dict[str, list[float]]) -> None:
    for module_name, attr, phase in WRAPPED:
        module = importlib.import_module(module_name)
        real = getattr(module, attr, None)
        if real is None:
            continue

        def timed(*args: Any, _real: Callable[..., Any] = real, _phase: str = phase,
                  **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _real(*args, **kwargs)
            finally:
                acc = times.setdefault(_phase, [0.0, 0.0])
                acc[0] += time.perf_counter() - wall
                acc[1] += time.process_time() - cpu

        setattr(module, attr, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("enhanced", "classic", "undefined", "perframe"),
                        default="enhanced")
    parser.add_argument("-j", "--jobs", type=int, default=None)
    parser.add_argument("--data", type=Path, default=None, help="another folder to convert")
    args = parser.parse_args()
    import dicomvol.api  # noqa: F401  (what `dicomvol convert` imports)
    from dicomvol.cli.main import main as cli_main

    imports = (time.perf_counter() - T0, time.process_time() - C0)
    data = args.data or HERE / "data" / f"dwi_{args.case}"
    if not data.is_dir():
        print(f"{data} missing: run benchmarks/dwi.py first", file=sys.stderr)
        return 2
    times: dict[str, list[float]] = {}
    _wrap(times)
    out = Path(tempfile.mkdtemp(prefix="dwi_phases_"))
    wall, cpu = time.perf_counter(), time.process_time()
    argv = ["convert", str(data), "-o", str(out), "-z", "n", "-q"]
    rc = cli_main(argv + (["-j", str(args.jobs)] if args.jobs else []))
    run = (time.perf_counter() - wall, time.process_time() - cpu)
    shutil.rmtree(out, ignore_errors=True)
    print(f"{'phase':28s} {'wall s':>7s} {'CPU s':>7s}")
    print(f"{'imports':28s} {imports[0]:7.3f} {imports[1]:7.3f}")
    for phase, (w, c) in times.items():
        print(f"{phase:28s} {w:7.3f} {c:7.3f}")
    print(f"{'convert after imports':28s} {run[0]:7.3f} {run[1]:7.3f}  (exit {rc})")
    print(f"{'whole process':28s} {time.perf_counter() - T0:7.3f} {time.process_time() - C0:7.3f}")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

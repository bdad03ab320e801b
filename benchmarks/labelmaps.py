"""Label-map benchmarks: dicomvol against dcmqi, plastimatch, rt-utils and highdicom.

Cases (data built once into ``benchmarks/data/``, see ``build``):

- ``lung1_seg``: a 4-segment SEG (GTV, cord, lungs; overlapping, so one-hot)
  made with ``dicomvol.testing.write_seg`` from the LUNG1 RTSTRUCT masks, on
  the corpus LUNG1 CT (134 x 512^2). Tools: ``dicomvol convert`` of CT + SEG
  (label map on the CT grid, CT written too), ``dicomvol convert`` of the SEG
  alone (own grid), dcmqi ``segimage2itkimage``, plastimatch ``convert``.
- ``lung1_rtstruct``: the corpus LUNG1 CT + RTSTRUCT. Tools: ``dicomvol
  convert`` (CT and label map), plastimatch ``convert --xor-contours``
  (masks on the CT grid), rt-utils (``RTStructBuilder`` masks saved as .npy).
- ``big_seg``: 100 non-overlapping segments over a synthetic 512 x 512 x 300
  CT, ``--frames-per-segment`` frames each (default 200: 20,000 frames).
  Tools: ``dicomvol convert`` (CT + SEG), highdicom ``segread(...).get_volume()``
  (saved as .npy), dcmqi ``segimage2itkimage``.

Every tool runs as a subprocess into an empty folder (``run.measure``: wall
time, peak RSS of the process tree). Usage::

    make bench                                              # builds the venvs (once)
    .venv/bin/python benchmarks/labelmaps.py --quick        # small data, 1 run
    .venv/bin/python benchmarks/labelmaps.py --runs 3       # what the lead times
    .venv/bin/python benchmarks/labelmaps.py --only big_seg --only dicomvol

dicomvol's bytecode is compiled first (``compileall`` on the package), as a wheel
install has it: an editable install run with ``PYTHONDONTWRITEBYTECODE`` set
would otherwise compile its ~100 modules again in every timed run (~0.1 s
CPU, a sixth of the LUNG1 SEG case). The peers' packages are compiled by pip.

Run it with the test venv (``make test`` installs highdicom, rt-utils and
plastimatch there); dcmqi ``segimage2itkimage`` comes from PyPI (``pip install
dcmqi``) and is found on PATH or in ``.venv-bench-peers`` (``make bench``
installs it there). A tool that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (the timing harness beside this file)

DATA = HERE / "data"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent


#: Where peer executables are looked for besides PATH: this interpreter's venv, then the
#: peers venv ``make bench`` builds (dcmqi and plastimatch from PyPI).
TOOL_DIRS = (BIN, HERE.parent / ".venv-bench-peers" / "bin")


def find_tool(name: str) -> str:
    """The executable ``name`` on PATH or in :data:`TOOL_DIRS` (the last candidate if none)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in TOOL_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return str(TOOL_DIRS[-1] / name)


def corpus_root() -> Path:
    import os

    env = os.environ.get("DICOMVOL_CORPUS")
    return Path(env) if env else HERE.parent.parent / "shared" / "corpus"


def series_of(folder: Path) -> Any:
    """The attributes ``write_seg`` needs, read from a real single-frame series."""
    import pydicom

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())
               if p.is_file()]
    first = headers[0]
    iop = np.array(first.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    headers.sort(key=lambda h: float(np.array(h.ImagePositionPatient, float) @ normal))
    return SimpleNamespace(
        study_instance_uid=str(first.StudyInstanceUID),
        series_instance_uid=str(first.SeriesInstanceUID),
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
        sop_instance_uids=tuple(str(h.SOPInstanceUID) for h in headers),
        positions=np.array([np.array(h.ImagePositionPatient, float) for h in headers]),
        row_dir=iop[:3], col_dir=iop[3:],
        pixel_spacing=tuple(float(v) for v in first.PixelSpacing),
        modality=str(first.Modality), shape=(int(first.Columns), int(first.Rows), len(headers)))


def build_lung1_seg(out: Path) -> Path:
    """A SEG of the LUNG1 RTSTRUCT ROIs (rasterised by dicomvol), on the LUNG1 CT."""
    import dicomvol
    from dicomvol.testing import SegFrame, write_seg

    corpus = corpus_root() / "ct_lung1"
    tmp = out.parent / "lung1_masks.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    dicomvol.convert([corpus], tmp, dicomvol.ConvertOptions(compress=False))
    (sidecar,) = [p for p in tmp.glob("*.json") if "LabelMap" in json.loads(p.read_text())]
    meta = json.loads(sidecar.read_text())
    import nibabel as nib

    data = np.asanyarray(nib.load(str(sidecar.with_suffix(".nii"))).dataobj)
    series = series_of(corpus / "image")
    frames = []
    names = {}
    for n, s in enumerate(meta["LabelMap"]["Segments"], 1):
        names[n] = s["Label"]
        mask = data[..., s["Volume"]] != 0
        for k in range(mask.shape[2]):
            if mask[:, :, k].any():
                frames.append(SegFrame(n, tuple(series.positions[k]), mask[:, :, k].T,
                                       series.sop_instance_uids[k]))
    path = write_seg(out / "seg.dcm", series, frames, names)
    shutil.rmtree(tmp, ignore_errors=True)
    return path


def build_big_seg(out: Path, shape: tuple[int, int, int], segments: int, per_segment: int
                  ) -> None:
    """A synthetic CT and a SEG of ``segments`` cylinders (shared frame arrays: little RAM)."""
    from dicomvol.testing import SegFrame, write_seg, write_series

    series = write_series(out / "ct", shape=shape, pixel_spacing=(0.7, 0.7), slice_spacing=1.0,
                          modality="CT", shuffle_seed=None)
    rng = np.random.default_rng(11)
    side = int(np.ceil(np.sqrt(segments)))
    cell = min(shape[0], shape[1]) // side
    radius = max(1, int(cell * 0.4))
    jj, ii = np.mgrid[0:shape[1], 0:shape[0]]
    frames = []
    for s in range(segments):
        ci, cj = (s % side) * cell + cell // 2, (s // side) * cell + cell // 2
        disc = (ii - ci) ** 2 + (jj - cj) ** 2 <= radius ** 2  # (rows, cols)
        span = min(per_segment, shape[2])
        k0 = int(rng.integers(0, shape[2] - span + 1))
        frames.extend(SegFrame(s + 1, tuple(series.positions[k]), disc,
                               series.sop_instance_uids[k]) for k in range(k0, k0 + span))
    write_seg(out / "seg" / "seg.dcm", series, frames, {s + 1: f"segment {s + 1}"
                                                        for s in range(segments)})


def build(quick: bool, per_segment: int) -> dict[str, Path]:
    """Build (once) and return the data folders."""
    suffix = "_quick" if quick else ""
    paths = {"lung1": corpus_root() / "ct_lung1"}
    seg = DATA / f"lung1_seg{suffix}"
    if not (seg / "seg.dcm").is_file():
        seg.mkdir(parents=True, exist_ok=True)
        build_lung1_seg(seg)
    paths["lung1_seg"] = seg
    big = DATA / f"big_seg{suffix}"
    marker = big.with_suffix(".complete.json")
    spec = {"shape": (128, 128, 40) if quick else (512, 512, 300),
            "segments": 10 if quick else 100, "per_segment": 10 if quick else per_segment}
    if not marker.is_file() or json.loads(marker.read_text()) != json.loads(json.dumps(spec)):
        shutil.rmtree(big, ignore_errors=True)
        build_big_seg(big, tuple(spec["shape"]), spec["segments"], spec["per_segment"])
        marker.write_text(json.dumps(spec))
    paths["big_seg"] = big
    return paths


HIGHDICOM = ("import sys, numpy, highdicom as hd; v = hd.seg.segread(sys.argv[1]).get_volume("
             "combine_segments=True); numpy.save(sys.argv[2] + '/volume.npy', v.array)")
RT_UTILS = ("import sys, numpy; from rt_utils import RTStructBuilder; "
            "rt = RTStructBuilder.create_from(dicom_series_path=sys.argv[1], "
            "rt_struct_path=sys.argv[2]); [numpy.save(f'{sys.argv[3]}/{i}.npy', "
            "rt.get_roi_mask_by_name(n)) for i, n in enumerate(rt.get_roi_names())]")


def commands(paths: dict[str, Path], out: Path) -> dict[str, dict[str, list[str] | None]]:
    """Per case, per tool: the command line (None when the tool is not installed)."""
    py = sys.executable
    dicomvol = [str(BIN / "dicomvol"), "convert", "-z", "n", "-q", "-j", "1", "-o", str(out)]
    seg2itk = find_tool("segimage2itkimage")
    plasti = find_tool("plastimatch")
    have = {"dcmqi": Path(seg2itk).is_file(), "plastimatch": Path(plasti).is_file()}
    lung = paths["lung1"]
    lseg = paths["lung1_seg"] / "seg.dcm"
    big = paths["big_seg"]
    rt = lung / "mask_rtstruct" / "1-1.dcm"

    def dcmqi(seg: Path) -> list[str] | None:
        return [seg2itk, "--inputDICOM", str(seg), "--outputDirectory", str(out), "-t", "nii"
                ] if have["dcmqi"] else None

    return {
        "lung1_seg": {
            "dicomvol": [*dicomvol, str(lung / "image"), str(lseg)],
            "dicomvol (SEG only)": [*dicomvol, str(lseg)],
            "dcmqi segimage2itkimage": dcmqi(lseg),
            "plastimatch": [plasti, "convert", "--input", str(lseg), "--output-prefix",
                            str(out / "pm")] if have["plastimatch"] else None,
        },
        "lung1_rtstruct": {
            "dicomvol": [*dicomvol, str(lung)],
            "plastimatch --xor-contours": [
                plasti, "convert", "--input", str(rt), "--referenced-ct", str(lung / "image"),
                "--xor-contours", "--output-prefix", str(out / "pm")]
            if have["plastimatch"] else None,
            "rt-utils": [py, "-c", RT_UTILS, str(lung / "image"), str(rt), str(out)],
        },
        "big_seg": {
            "dicomvol": [*dicomvol, str(big / "ct"), str(big / "seg")],
            "highdicom get_volume": [py, "-c", HIGHDICOM, str(big / "seg" / "seg.dcm"),
                                     str(out)],
            "dcmqi segimage2itkimage": dcmqi(big / "seg" / "seg.dcm"),
        },
    }


def compile_package() -> None:
    """Write dicomvol's bytecode (as installing a wheel does), whatever PYTHONDONTWRITEBYTECODE."""
    import compileall

    import dicomvol

    compileall.compile_dir(str(Path(dicomvol.__file__).parent), quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data, 1 run (a smoke test)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per cell (default 3)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="a case or a tool (repeatable)")
    ap.add_argument("--frames-per-segment", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    compile_package()
    paths = build(args.quick, args.frames_per_segment)
    out = DATA / "labelmaps_out"
    results: dict[str, dict[str, Any]] = {}
    for case, tools in commands(paths, out).items():
        if args.only and case not in args.only and not any(t in args.only for t in tools):
            continue
        for tool, cmd in tools.items():
            if args.only and tool.split()[0] not in args.only and case not in args.only:
                continue
            if cmd is None:
                results.setdefault(case, {})[tool] = {"status": "not installed"}
                continue
            samples = [bench.measure(cmd, out, ".nii", args.timeout) for _ in range(runs)]
            ok = all(s.returncode == 0 and not s.timed_out for s in samples)
            results.setdefault(case, {})[tool] = {
                "status": "ok" if ok else f"failed: {samples[-1].log_tail[-300:]}",
                "wall_s": statistics.median(s.wall_s for s in samples),
                "cpu_s": statistics.median(s.cpu_s for s in samples),
                "bg_cores": statistics.median(s.background_cores or 0.0 for s in samples),
                "peak_mib": statistics.median((s.tree_pss_mib or s.maxrss_mib) for s in samples),
            }
            r = results[case][tool]
            print(f"{case:16s} {tool:26s} {r['wall_s']:8.2f} s wall {r['cpu_s']:8.2f} s cpu "
                  f"{r['peak_mib']:8.0f} MiB bg {r['bg_cores']:.1f} cores "
                  f"{r['status'][:60]}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "labelmaps.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Slide benchmark: full-level decode on one core (dicomvol vs wsidicom and OpenSlide) and
conversion times (OME-TIFF, plain TIFF, OME-Zarr).

    .venv/bin/python benchmarks/slide.py [--runs 5] [--big] [--corpus PATH]

The process is pinned to one core (``sched_setaffinity``) for the decode rows, so that
readers with thread pools are compared on the same CPU. Wall and CPU (process) times are
both reported: the machine may be shared. ``--big`` adds a synthetic 8192 x 8192 JPEG level
(tiles of 256: copied into TIFF tiles, and of 250: decoded and re-tiled). Peers that are not
installed are reported as such.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

warnings.simplefilter("ignore")
REPO = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``runs`` calls (after one warm-up call)."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def decode_rows(folder: Path, runs: int) -> list[tuple[str, float, float, str]]:
    import dicomvol

    rows = []
    slide = dicomvol.open_slide(folder)
    w, h = slide.levels[0].width, slide.levels[0].height
    wall, cpu, ours = timed(lambda: slide.read_level(0), runs)
    rows.append(("dicomvol", wall, cpu, f"{w}x{h}, mean RGB {_mean(ours)}"))
    try:
        from wsidicom import Settings, WsiDicom

        # no frame caches: every run decodes, as dicomvol does
        wsi = WsiDicom.open(folder, settings=Settings(decoded_frame_cache_size=0,
                                                      encoded_frame_cache_size=0))
        wall, cpu, img = timed(lambda: np.asarray(wsi.read_region((0, 0), 0, (w, h))), runs)
        rows.append((f"wsidicom ({len(wsi.levels)} levels)", wall, cpu,
                     f"mean RGB {_mean(img[..., :3])}"))
    except ImportError:
        rows.append(("wsidicom", float("nan"), float("nan"), "not installed"))
    except Exception as exc:  # a peer that cannot open the file is a result, not a crash
        rows.append(("wsidicom", float("nan"), float("nan"), f"{type(exc).__name__}: {exc}"))
    try:
        import openslide

        first = min(folder.glob("*.dcm"), key=lambda p: -p.stat().st_size)
        osr = openslide.OpenSlide(str(first))
        wall, cpu, img = timed(lambda: np.asarray(osr.read_region((0, 0), 0, (w, h))), runs)
        rows.append((f"OpenSlide ({osr.level_count} levels)", wall, cpu,
                     f"mean RGB {_mean(img[..., :3])}"))
    except ImportError:
        rows.append(("OpenSlide", float("nan"), float("nan"), "not installed"))
    except Exception as exc:  # a peer that cannot open the file is a result, not a crash
        rows.append(("OpenSlide", float("nan"), float("nan"), f"{type(exc).__name__}: {exc}"))
    return rows


def _mean(img: np.ndarray) -> str:
    return "/".join(f"{v:.1f}" for v in img.reshape(-1, img.shape[-1]).mean(axis=0))


def convert_rows(folder: Path, runs: int, jobs: int) -> list[tuple[str, float, float, str]]:
    import dicomvol
    from dicomvol.options import SlideOptions

    rows = []
    for fmt in ("ome.tif", "tif", "ome.zarr"):
        def run(fmt: str = fmt) -> Any:
            with tempfile.TemporaryDirectory() as out:
                opts = dicomvol.ConvertOptions(jobs=jobs, overwrite=True,
                                               slide=SlideOptions(format=fmt))
                report = dicomvol.convert([folder], out, opts)
                size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
                return report.outputs[0].n_frames, size

        wall, cpu, (frames, size) = timed(run, runs)
        rows.append((f"convert -e {fmt} -j {jobs}", wall, cpu,
                     f"{frames} frames, {size / 2**20:.1f} MiB written"))
    return rows


def big_level(root: Path, tile: int, size: int = 8192) -> Path:
    """A synthetic ``size``-square JPEG level of one repeated tile."""
    import pydicom
    from pydicom.encaps import encapsulate

    sys.path.insert(0, str(REPO / "src"))
    from dicomvol.testing.slides import SlideSpec, _base, encode_jpeg, smooth_image

    folder = root / f"big{tile}"
    folder.mkdir(parents=True, exist_ok=True)
    n = (-(-size // tile)) ** 2
    spec = SlideSpec([[np.zeros((1, 1, 3), np.uint8)]], tile=(tile, tile), codec="jpeg")
    ds = _base(spec, np.zeros((size, size, 3), np.uint8), n)
    ds.PixelData = encapsulate([encode_jpeg(smooth_image(tile, tile, 3, seed=1))] * n)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    ds.file_meta = meta
    ds.save_as(folder / "level0.dcm", enforce_file_format=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", action="store_true")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("DICOMVOL_CORPUS", REPO.parent / "shared"
                                                    / "corpus")))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"# slide benchmark: {cores} cores, load average {os.getloadavg()[0]:.2f}, "
          f"{args.runs} runs (median)")
    cases = [("CMU level 0", args.corpus / "slide_cmu")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.big:
            cases += [(f"synthetic 8192² tiles {t}", big_level(Path(tmp), t)) for t in (256, 250)]
        for name, folder in cases:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            rows = decode_rows(folder, args.runs)
            os.sched_setaffinity(0, set(range(cores)))
            rows += convert_rows(folder, max(1, args.runs // 2), 1)
            print(f"\n## {name}\n\n| what | wall s | CPU s | notes |\n|---|---|---|---|")
            for what, wall, cpu, note in rows:
                print(f"| {what} | {wall:.3f} | {cpu:.3f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A 16k x 16k level converts in tile rows: peak memory growth stays far below the level."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("imagecodecs")

#: Peak RSS growth allowed while converting a 16384 x 16384 RGB level (768 MiB decoded).
MAX_GROWTH_MIB = 400

SCRIPT = textwrap.dedent("""
    import gc, json, resource, sys, time, tracemalloc, warnings
    from pathlib import Path
    import numpy as np
    import pydicom
    from pydicom.encaps import encapsulate
    warnings.simplefilter("ignore")
    import dicomvol
    from dicomvol.testing.slides import SlideSpec, _base, encode_jpeg, smooth_image
    import tifffile, imagecodecs  # imported before the baseline

    src, out, fmt = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    size, tile = 16384, 250  # 250 is not a multiple of 16: every tile is decoded, re-tiled
    n = (-(-size // tile)) ** 2
    frame = encode_jpeg(smooth_image(tile, tile, 3, seed=1))
    spec = SlideSpec([[np.zeros((1, 1, 3), np.uint8)]], tile=(tile, tile), codec="jpeg")
    ds = _base(spec, np.zeros((size, size, 3), np.uint8), n)
    ds.PixelData = encapsulate([frame] * n, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    ds.file_meta = meta
    src.mkdir()
    ds.save_as(src / "big.dcm", enforce_file_format=True)
    del ds
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    opts = dicomvol.ConvertOptions(jobs=1, slide=dicomvol.options.SlideOptions(format=fmt))
    report = dicomvol.convert([src], out, opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    traced_peak = tracemalloc.get_traced_memory()[1]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_growth_mib": (after - before) / 1024,
                      "traced_peak_mib": traced_peak / 2**20, "wall": wall, "cpu": cpu,
                      "ok": report.ok, "frames": report.outputs[0].n_frames}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ome.tif", "ome.zarr"])
def test_16k_level_converts_in_bounded_memory(tmp_path: Path, fmt: str) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "src"),
                          str(tmp_path / "out"), fmt], capture_output=True, text=True,
                         check=False, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["frames"] == 66 * 66
    # numpy, imagecodecs, tifffile and zarr buffers are all traced; RSS as a second opinion
    assert 0 < result["traced_peak_mib"] < MAX_GROWTH_MIB, result
    assert result["rss_growth_mib"] < MAX_GROWTH_MIB, result

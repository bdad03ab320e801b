"""A plain series is converted by processes that never import numpy (issue 15).

numpy alone is about 22 MiB of a process's resident memory (numpy 2.4: 30.7 MiB
with the interpreter, against 28.6 MiB for the whole of dcm2niix on the study30
benchmark). A run's main process plans in plain Python, and its workers read
headers and stream uncompressed slices as bytes; numpy is imported only where
pixel values are converted (per-slice rescale, resampling, SUV, compressed
pixels, label maps, QC). These tests run the command line with numpy made
unimportable in every process (a ``sitecustomize`` on ``PYTHONPATH``, which the
pool's workers load too) and check the outputs against the series' truth.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomvol.testing import write_series

BLOCKER = '''
import os, sys, traceback
class _NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            with open(os.environ["NUMPY_IMPORT_LOG"], "a") as log:
                log.write(f"pid {os.getpid()} imports {name}:\\n")
                log.write("".join(traceback.format_stack(limit=12)) + "\\n")
            raise ImportError("numpy is blocked in this test")
        return None
sys.meta_path.insert(0, _NoNumpy())
'''

#: (name, write_series keywords): CT as scanners store it (unsigned 12 bits, intercept
#: -1024: int16 HU), CT with 16 stored bits (raw + scl_inter), signed MR (raw).
SERIES = {
    "ct12": dict(modality="CT", rescale=(1.0, -1024.0), pixel_representation=0,
                 extra={"BitsStored": 12, "HighBit": 11}, shape=(24, 20, 7)),
    "ct16": dict(modality="CT", rescale=(1.0, -1024.0), pixel_representation=0,
                 shape=(16, 16, 5), row_dir=(0.96, 0.28, 0.0), col_dir=(-0.28, 0.96, 0.0)),
    "mr": dict(modality="MR", rescale=(1.0, 0.0), pixel_representation=1, shape=(12, 10, 6),
               row_dir=(0, 1, 0), col_dir=(0, 0, -1)),
    # signed CT (many scanners): int16 HU, every sum checked for int16 on the bytes
    "cts": dict(modality="CT", rescale=(1.0, -1024.0), pixel_representation=1,
                shape=(14, 12, 5)),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("plain")
    truth = {}
    for n, (name, kw) in enumerate(SERIES.items()):
        truth[name] = write_series(root / "in" / name, series_number=n + 1,
                                   series_description=name, seed=n, **kw)  # type: ignore[arg-type]
    # an Enhanced MR object of the mr series' slices: frames streamed at their offsets
    from dicomvol.testing.enhanced import enhanced_from_files

    (root / "in" / "enhanced").mkdir()
    mr = truth["mr"]
    enhanced_from_files(mr.paths, root / "in" / "enhanced" / "mr_enhanced.dcm")  # type: ignore[attr-defined]
    (root / "block").mkdir()
    (root / "block" / "sitecustomize.py").write_text(BLOCKER)
    return root, truth


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    log = root / "numpy-imports.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root / "block"), "NUMPY_IMPORT_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-m", "dicomvol", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not log.exists(), log.read_text()
    return proc


def test_the_blocker_blocks(study: tuple[Path, dict[str, object]]) -> None:
    """The harness itself: with the blocker, importing numpy fails and is logged."""
    root, _ = study
    log = root / "numpy-imports.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root / "block"), "NUMPY_IMPORT_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "blocked" in proc.stderr and log.exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("compress", ["n", "y"])
def test_plain_study_converts_without_numpy(study: tuple[Path, dict[str, object]], jobs: str,
                                            compress: str) -> None:
    """In one process (-j 1) and with a pool (-j 2): every series written, values and
    geometry those of the files (read back here, where numpy is allowed)."""
    root, truth = study
    out = root / f"out-j{jobs}-{compress}"
    _run(root, "convert", str(root / "in"), "-o", str(out), "-j", jobs, "-z", compress, "-q")
    ext = ".nii.gz" if compress == "y" else ".nii"
    images = sorted(out.glob(f"*{ext}"))
    assert len(images) == len(SERIES) + 1  # and the Enhanced MR copy of "mr"
    for image in images:
        name = next(n for n in SERIES if f"_{n}" in image.name)
        series = truth[name]
        img = nib.load(image)
        np.testing.assert_array_equal(img.get_fdata(), series.values)  # type: ignore[attr-defined]
        expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ series.affine_lps  # type: ignore[attr-defined]
        np.testing.assert_allclose(img.affine, expected, atol=1e-4)
        assert img.get_qform(coded=True)[1] == 1  # orthogonal grids: a qform too
        np.testing.assert_allclose(img.get_qform(), expected, atol=1e-4)
        if name in ("ct12", "cts"):  # stored + intercept as int16 HU ("shift"), on bytes
            assert img.get_data_dtype() == np.dtype("<i2") and float(img.dataobj.inter) == 0


def test_signed_values_that_overflow_int16_are_written_raw_without_numpy(
        tmp_path: Path) -> None:
    """Signed stored values near the top of int16 plus a positive intercept leave int16:
    the byte path raises Overflow as the numpy path does, and the volume is written
    again as stored values with scl_inter, still without numpy."""
    import pydicom

    series = write_series(tmp_path / "in", modality="MR", rescale=(1.0, 2000.0),
                          pixel_representation=1, shape=(8, 6, 4))
    top = pydicom.dcmread(series.paths[2])
    stored = np.frombuffer(top.PixelData, "<i2").copy()
    stored[:5] = (32767, 32000, 31000, -32768, 0)
    top.PixelData = stored.tobytes()
    top.save_as(series.paths[2])
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER)
    _run(tmp_path, "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-z", "n",
         "-q")
    (image,) = (tmp_path / "out").glob("*.nii")
    img = nib.load(image)
    assert float(img.dataobj.inter) == 2000.0 and img.get_data_dtype() == np.dtype("<i2")
    data = img.get_fdata()
    assert data[:5, 0, 2].tolist() == [34767.0, 34000.0, 33000.0, -30768.0, 2000.0]
    np.testing.assert_array_equal(data[..., [0, 1, 3]], series.values[..., [0, 1, 3]])


def test_inspect_plans_without_numpy(study: tuple[Path, dict[str, object]]) -> None:
    root, _ = study
    proc = _run(root, "inspect", str(root / "in"))
    assert proc.stdout.count("regular") >= len(SERIES)


def test_enhanced_diffusion_converts_without_numpy(tmp_path: Path) -> None:
    """A Philips Enhanced MR DWI object (b = 0 and three oblique directions): records,
    planning, the 4D stream and the FSL tables in plain Python; the bvecs are the
    numpy solution of R c = g in the written image's axes (x negated, FSL)."""
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series
    from dicomvol.testing.geometry import oblique_directions

    row, col = oblique_directions(17.0, (1.0, 0.3, 0.2))
    dirs = [(1.0, 0.0, 0.0), (0.0, 0.6, 0.8), (0.48, -0.6, 0.64)]
    volumes = [DwiVolume(0.0), *(DwiVolume(1000.0, d) for d in dirs)]
    write_dwi_series(tmp_path / "in", "Philips", volumes, enhanced=True, row=row, col=col)
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER)
    _run(tmp_path, "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "1",
         "-z", "n", "-q")
    (image,) = (tmp_path / "out").glob("*.nii")
    img = nib.load(image)
    assert img.shape[3] == len(volumes)
    bvals = np.loadtxt(image.with_suffix(".bval"))
    bvecs = np.loadtxt(image.with_suffix(".bvec"))
    np.testing.assert_allclose(bvals, [v.b for v in volumes])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    r = lps[:3, :3] / np.linalg.norm(lps[:3, :3], axis=0)
    for n, vol in enumerate(volumes):
        expected = np.zeros(3) if vol.direction is None else np.linalg.solve(r, vol.direction)
        if np.linalg.det(lps[:3, :3]) > 0:
            expected[0] = -expected[0]
        np.testing.assert_allclose(bvecs[:, n], expected, atol=1e-5)

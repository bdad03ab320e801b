"""A conversion's main process plans; it never imports pydicom (issue 15, peak RSS).

Headers are read and volumes written in the pool's workers, which import the
index and job code themselves (:mod:`dicomvol.batch.tasks`); the main process
holds records and plans only, so its memory is that of numpy and the planner. The
one exception: the only job of a run whose files are all uncompressed runs here.
Checked in a fresh interpreter through ``sys.modules``; with ``-j 1`` the same
run does everything in-process and must import pydicom (the check can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomvol.batch.scan import INDEX_CHUNK
from dicomvol.testing import write_series

#: Heavy modules a planning process has no use for.
WORKER_ONLY = ("pydicom", "nibabel", "_hashlib", "dicomvol.batch.jobs", "dicomvol.dicom.index",
               "dicomvol.pixels.decode", "dicomvol.metadata.sidecar")

_SCRIPT = """
import json, sys
from dicomvol.cli.main import main
code = main(["convert", sys.argv[1], "-o", sys.argv[2], "-q", "-z", "n", "-j", sys.argv[3]])
print(json.dumps({"code": code, "modules": sorted(m for m in json.loads(sys.argv[4])
                                                 if m in sys.modules)}))
"""


def _convert_in_fresh_process(inp: Path, out: Path, jobs: int) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(inp), str(out), str(jobs),
                           json.dumps(WORKER_ONLY)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two series with more files than two index chunks, so that the pool reads them."""
    inp = tmp_path_factory.mktemp("study")
    per_series = INDEX_CHUNK + 8
    write_series(inp / "a", shape=(6, 5, per_series))
    write_series(inp / "b", shape=(6, 5, per_series), series_number=2, modality="MR",
                 rescale=(1.0, 0.0))
    return inp


def test_main_process_of_a_pooled_convert_imports_no_pydicom(study: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _convert_in_fresh_process(study, out, jobs=2)
    assert result["code"] == 0
    assert result["modules"] == []  # none of WORKER_ONLY in the main process
    assert len(list(out.glob("*.nii"))) == 2
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert len(report["outputs"]) == 2 and not report["errors"]


def test_in_process_convert_imports_them(study: Path, tmp_path: Path) -> None:
    """-j 1: the same run reads and writes in this process (the check above can fail);
    a plain series needs no pydicom even there (tests/batch/test_lean_imports.py)."""
    result = _convert_in_fresh_process(study, tmp_path / "out", jobs=1)
    assert result["code"] == 0
    modules = set(result["modules"])  # type: ignore[arg-type]
    assert {"dicomvol.batch.jobs", "dicomvol.dicom.index"} <= modules
    assert "pydicom" not in modules


def test_the_only_job_of_uncompressed_files_runs_here(tmp_path: Path) -> None:
    """One uncompressed series read by the pool: its only job runs in this process (no
    decoder to isolate, and a worker would add the plan's pickling and the job code's
    imports while this process waits), still without pydicom; the same volume as -j 1."""
    inp = tmp_path / "in"
    write_series(inp, shape=(6, 5, 2 * INDEX_CHUNK + 4), modality="MR", rescale=(1.0, 0.0))
    pooled = _convert_in_fresh_process(inp, tmp_path / "pooled", jobs=2)
    assert pooled["code"] == 0
    assert set(pooled["modules"]) & {"dicomvol.batch.jobs", "dicomvol.pixels.decode"} == {
        "dicomvol.batch.jobs", "dicomvol.pixels.decode"}  # type: ignore[operator]
    assert "pydicom" not in pooled["modules"]  # type: ignore[operator]
    alone = _convert_in_fresh_process(inp, tmp_path / "alone", jobs=1)
    (image,) = (tmp_path / "pooled").glob("*.nii")
    assert alone["code"] == 0
    assert image.read_bytes() == (tmp_path / "alone" / image.name).read_bytes()


def test_the_only_job_of_a_run_runs_in_a_pool_worker(tmp_path: Path) -> None:
    """One compressed series: its job runs in the run's pool (which starts its own decode
    processes there), not here; the volume equals the one written in-process."""
    import pydicom.uid

    inp = tmp_path / "in"
    write_series(inp, shape=(6, 5, 2 * INDEX_CHUNK + 4), modality="MR", rescale=(1.0, 0.0),
                 transfer_syntax=pydicom.uid.RLELossless)
    pooled = _convert_in_fresh_process(inp, tmp_path / "pooled", jobs=2)
    assert pooled["code"] == 0 and pooled["modules"] == []
    alone = _convert_in_fresh_process(inp, tmp_path / "alone", jobs=1)
    assert alone["code"] == 0
    (image,) = (tmp_path / "pooled").glob("*.nii")
    assert image.read_bytes() == (tmp_path / "alone" / image.name).read_bytes()


def test_a_guarded_pydicom_import_refuses_requests_and_imports_nothing_itself() -> None:
    """The workers' guard (batch/tasks.guard_pydicom_import) imports nothing; pydicom,
    when a file does need it, comes without requests, which stays importable after."""
    script = ("import sys\n"
              "from dicomvol.batch.tasks import guard_pydicom_import\n"
              "guard_pydicom_import()\n"
              "guard_pydicom_import()\n"
              "assert 'pydicom' not in sys.modules\n"
              "import pydicom.dataset\n"
              "assert 'requests' not in sys.modules\n"
              "from pydicom.data import download\n"
              "assert download.HAVE_REQUESTS is False\n"
              "assert not [f for f in sys.meta_path if type(f).__name__ == '_PydicomFinder']\n"
              "import requests\n"
              "print(requests.__name__)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "requests"

"""The common job path imports no heavy module it has no use for (issue 15, peak RSS).

A fresh interpreter converts a small plain synthetic CT series (and an enhanced DWI file)
with ``dicomvol convert`` (default ``-j``, which runs such a small input in-process, and
``-j 1``), or only scans it, and reports which of :data:`HEAVY` ended in ``sys.modules``
after each stage. :data:`NEVER` lists, per stage, what must never be imported there.

The scan reads keywords from a static table (``dicom/tags.py``), enhanced items are not
pydicom datasets (``dicom/leanmf.py``), the sidecar reads a lean header
(``dicom/leands.py``) and the NIfTI header is packed with ``struct`` (``io/nifti.py``):
a plain job imports none of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicomvol.testing import write_series

#: Heavy modules (and the OpenSSL binding): what the common path must do without.
HEAVY = ("pydicom", "nibabel", "scipy", "_hashlib", "multiprocessing.pool",
         "concurrent.futures.process", "multiprocessing", "requests", "PIL")
#: The pool's modules: imported only where a pool starts (batch/executors.open_pool).
POOL = ("multiprocessing", "multiprocessing.pool", "concurrent.futures.process")
#: What only some runs use, loaded where they do: the IDC index and completeness check
#: (an IDC selection or bucket input), fetch threads (objects), manifests (a manifest
#: given as input), resampling (a resampled plan), the demo's temporary folder.
ON_DEMAND = ("dicomvol.inputs.idc", "dicomvol.report.completeness", "dicomvol.inputs.fetch",
             "dicomvol.inputs.manifest", "dicomvol.pixels.resample", "tempfile")

#: stage -> modules that must not be imported at its end.
NEVER: dict[str, tuple[str, ...]] = {
    # the main process of a pooled run: it plans, the workers read and write
    # (multiprocessing itself imports tempfile)
    "pooled-main": ("pydicom", "nibabel", "scipy", "_hashlib", "requests", "PIL",
                    *(m for m in ON_DEMAND if m != "tempfile")),
    # discovering, indexing and planning a plain series in this process
    "scan": HEAVY + ON_DEMAND,
    # a whole conversion in this process (default -j on a small input, or -j 1)
    "convert": HEAVY + ON_DEMAND,
}

_SCRIPT = """
import json, sys
HEAVY = json.loads(sys.argv[1])
stage, inp, out = sys.argv[2], sys.argv[3], sys.argv[4]
if stage == "scan":
    from dicomvol.batch.scan import scan_inputs
    result = scan_inputs([inp], jobs=1)
    code = 0 if result.plans and not result.errors else 1
else:
    from dicomvol.cli.main import main
    code = main(["convert", inp, "-o", out, "-q", "-z", "n", *sys.argv[5:]])
print(json.dumps({"code": code, "modules": [m for m in HEAVY if m in sys.modules]}))
"""


def imported(stage: str, inp: Path, out: Path, *args: str) -> list[str]:
    """The :data:`HEAVY` and :data:`ON_DEMAND` modules a fresh interpreter holds after
    ``stage`` (it must succeed)."""
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(HEAVY + ON_DEMAND), stage,
                           str(inp), str(out), *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, proc.stderr[-2000:]
    modules: list[str] = result["modules"]
    return modules


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small plain CT series: 12 single-frame uncompressed files."""
    inp = tmp_path_factory.mktemp("ct")
    write_series(inp, shape=(6, 5, 12))
    return inp


@pytest.fixture(scope="module")
def dwi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One enhanced MR diffusion file (SiemensXA layout, 3 volumes x 4 slices)."""
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    inp = tmp_path_factory.mktemp("dwi")
    write_dwi_series(inp, "SiemensXA", [DwiVolume(0.0), DwiVolume(1000.0, (1.0, 0.0, 0.0)),
                                        DwiVolume(1000.0, (0.0, 1.0, 0.0))], enhanced=True)
    return inp


@pytest.mark.parametrize("inputs,stage,args", [
    pytest.param("ct", "scan", (), id="ct-scan"),
    pytest.param("ct", "convert", (), id="ct-default-j"),
    pytest.param("ct", "convert", ("-j", "1"), id="ct-j1"),
    pytest.param("dwi", "scan", (), id="dwi-scan"),
    pytest.param("dwi", "convert", (), id="dwi-default-j"),
    pytest.param("dwi", "convert", ("-j", "1"), id="dwi-j1"),
])
def test_the_common_path_never_imports_heavy_modules(request: pytest.FixtureRequest,
                                                     tmp_path: Path, inputs: str, stage: str,
                                                     args: tuple[str, ...]) -> None:
    """The full assertion (:data:`NEVER`): no pydicom, nibabel, scipy, OpenSSL, pool,
    requests or PIL anywhere on the common path."""
    inp: Path = request.getfixturevalue(inputs)
    found = imported(stage, inp, tmp_path / "out", *args)
    assert not set(found) & set(NEVER[stage]), found
    if stage == "convert":  # the check can fail: the job ran and wrote its volume
        assert list((tmp_path / "out").glob("*.nii"))


def test_the_main_process_of_a_pooled_run_plans_only(tmp_path: Path) -> None:
    """-j 2 over more than two header chunks: the main process imports the pool and
    nothing of what the workers read and write with."""
    from dicomvol.batch.scan import INDEX_CHUNK

    inp = tmp_path / "in"
    write_series(inp / "a", shape=(6, 5, INDEX_CHUNK + 8))
    write_series(inp / "b", shape=(6, 5, INDEX_CHUNK + 8), series_number=2, modality="MR",
                 rescale=(1.0, 0.0))
    found = imported("convert", inp, tmp_path / "out", "-j", "2")
    assert not set(found) & set(NEVER["pooled-main"]), found
    assert "concurrent.futures.process" in found  # the check can fail: a pool was used


def test_the_sop_classes_of_object_units_are_the_readers_own() -> None:
    """batch/derive names the RT Dose and Parametric Map classes itself (not importing
    their readers for every job): the same UIDs."""
    from dicomvol.batch.derive import OBJECT_SOP_CLASSES
    from dicomvol.dicom.frames import RTDOSE_SOP_CLASS
    from dicomvol.objects.dose import PARAMETRIC_MAP_SOP_CLASS

    assert {RTDOSE_SOP_CLASS, PARAMETRIC_MAP_SOP_CLASS} == OBJECT_SOP_CLASSES

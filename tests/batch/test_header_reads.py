"""Each input file is opened once per job (issue: the house, item 3).

File opens are counted with a Python audit hook (the ``open`` event fires for
every ``open()`` of a path), only while one job runs in this process: the
sidecar, slice timing, SUV, diffusion table and the pixels must all come from
one read of each file.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as PydicomSequence

import dicomvol
from dicomvol.batch.jobs import Job, run_job
from dicomvol.model.plan import VolumePlan
from dicomvol.options import ConvertOptions
from dicomvol.testing import write_series

_OPENS: list[list[str]] = []


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENS and isinstance(args[0], str | bytes | Path):
        _OPENS[-1].append(str(args[0]))


sys.addaudithook(_hook)  # stays for the process: records only inside counting()


@contextmanager
def counting(under: Path) -> Iterator[Counter[str]]:
    """Count opens of files under ``under`` while the block runs."""
    _OPENS.append([])
    found: Counter[str] = Counter()
    try:
        yield found
    finally:
        opened = _OPENS.pop()
        root = str(under.resolve())
        found.update(p for p in opened if str(Path(p).resolve()).startswith(root))


def _run_counted(plan: VolumePlan, src: Path, out: Path, **options: Any) -> Counter[str]:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"v{len(list(out.iterdir()))}"
    opts = ConvertOptions(**options)
    ext = ".nii.gz" if opts.format == "nifti" and opts.compress else (
        ".nii" if opts.format == "nifti" else f".{opts.format}")
    job = Job(plan, f"{stem}{ext}", f"{stem}.json", opts)
    with counting(src) as opens:
        done = run_job(job)
    assert done.output is not None, done.error
    return opens


def _assert_once(opens: Counter[str], plan: VolumePlan) -> None:
    files = {f.path for f in plan.all_frames}
    twice = {p: n for p, n in opens.items() if n > 1}
    assert not twice, f"opened more than once per job: {twice}"
    assert set(map(str, (Path(p).resolve() for p in opens))) == {
        str(Path(p).resolve()) for p in files}, "every source file is read (once)"


@pytest.mark.parametrize("fmt", ["nifti", "nrrd"])
def test_ct_series_reads_each_file_once(tmp_path: Path, fmt: str) -> None:
    write_series(tmp_path / "in", shape=(16, 12, 6))
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    _assert_once(_run_counted(plan, tmp_path / "in", tmp_path / "out", format=fmt), plan)


def test_counting_sees_every_open(tmp_path: Path) -> None:
    from dicomvol.dicom.header import header_of

    (path,) = write_series(tmp_path / "in", shape=(8, 6, 1)).paths
    with counting(tmp_path / "in") as opens:
        header_of(str(path))
        header_of(str(path))
    assert opens[str(path)] == 2


def test_pet_suv_reads_each_file_once(tmp_path: Path) -> None:
    drug = Dataset()
    drug.RadionuclideTotalDose = "370000000"
    drug.RadionuclideHalfLife = "6586.2"
    drug.RadiopharmaceuticalStartTime = "110000"
    write_series(tmp_path / "in", shape=(10, 8, 5), modality="PT", rescale=(2.0, 0.0),
                 extra={"Units": "BQML", "DecayCorrection": "START", "PatientWeight": "70",
                        "CorrectedImage": ["ATTN", "DECY"], "AcquisitionTime": "120000",
                        "RadiopharmaceuticalInformationSequence": PydicomSequence([drug])})
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    opens = _run_counted(plan, tmp_path / "in", tmp_path / "out", suv=True)
    _assert_once(opens, plan)
    sidecar = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert sidecar["Units"] == "g/ml" and sidecar["SUVbw"]["SUVbwScaleFactor"] > 0


def test_mr_4d_reads_each_file_once(tmp_path: Path) -> None:
    n = 4
    write_series(tmp_path / "in", shape=(12, 10, n * 3), modality="MR",
                 positions=[(0.0, 0.0, 2.0 * (k % n)) for k in range(n * 3)],
                 per_slice={"TemporalPositionIdentifier": [k // n + 1 for k in range(n * 3)],
                            "AcquisitionTime": [f"1200{k // n:02d}.{k % n}"
                                                for k in range(n * 3)]})
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    assert len(plan.shape) == 4
    _assert_once(_run_counted(plan, tmp_path / "in", tmp_path / "out"), plan)


@pytest.mark.corpus
@pytest.mark.parametrize("series", ["mr_4d_nih/20180918GE/mr_0004",
                                    "mr_orientation/ax/axasc35",
                                    "edge_cases/philips_enhanced/dti",
                                    "pet_wholebody_seg/image"])
def test_corpus_jobs_read_each_file_once(corpus: Path, tmp_path: Path, series: str) -> None:
    src = corpus / series
    result = dicomvol.scan([src])
    assert result.plans
    for plan in result.plans:
        _assert_once(_run_counted(plan, src, tmp_path / "out", suv=series.startswith("pet")),
                     plan)

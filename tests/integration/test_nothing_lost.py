"""Issue 8: nothing lost, never a crash, on data from the wild (each case built here).

One test per case seen in the wild (1, 3, 4, 5, 6, 8 of the issue; 2 is the
4D splits' own test), and the frame ledger itself: it runs in every
conversion (library, CLI, pool), balances on good and damaged inputs, and
turns a frame that a bug would lose into an ``errors`` entry and exit 1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pydicom
import pytest

import dicomvol
from dicomvol.batch import jobs as batch_jobs
from dicomvol.cli.main import main
from dicomvol.constants import MAX_RESAMPLE_GAP_SLICES
from dicomvol.dicom.index import index_file
from dicomvol.errors import UsageError
from dicomvol.inputs.discover import Candidate
from dicomvol.options import ConvertOptions, PlanOptions
from dicomvol.report.ledger import NOT_ACCOUNTED, Ledger
from dicomvol.testing import (
    write_conflicting_copy,
    write_nested_sequences,
    write_overlong_element,
    write_raw_value,
    write_series,
)
from exactness import assert_accounted, check_exact

STEP = 2.5


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return report


def _sidecars(out: Path) -> list[dict[str, Any]]:
    return [json.loads((out / v["Sidecar"]).read_text()) for v in _report(out)["volumes"]]


def _assert_balanced(out: Path, frames_in: int) -> dict[str, Any]:
    ledger: dict[str, Any] = _report(out)["ledger"]
    assert ledger["frames_in"] == frames_in
    assert ledger["balanced"] is True, ledger
    assert ledger["frames_written"] + ledger["frames_skipped"] + ledger["frames_errors"] == (
        frames_in)
    return ledger


# --- 1. one file with 10,000-deep nested sequences does not abort the run --------------------

@pytest.mark.parametrize("jobs", [1, 2])
def test_deeply_nested_file_costs_itself_only(tmp_path: Path, jobs: int) -> None:
    inp = tmp_path / "in"
    good = write_series(inp / "good", shape=(8, 6, 4), shuffle_seed=None)
    other = write_series(tmp_path / "src", shape=(8, 6, 2), shuffle_seed=None)
    write_nested_sequences(other.paths[0], inp / "deep" / "NESTED", depth=10_000)
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions(jobs=jobs))
    assert len(report.outputs) == 1 and report.outputs[0].n_frames == 4
    (error,) = _report(out)["errors"]
    assert error["File"] == "deep/NESTED"
    assert "nested too deeply" in error["Error"], error  # named, not an internal error
    check_exact(out / report.outputs[0].path, [inp])
    _assert_balanced(out, 4)
    assert good.paths  # the good series beside it is whole


def test_deeply_nested_file_in_the_lean_reader_and_pydicom(tmp_path: Path) -> None:
    src = write_series(tmp_path / "src", shape=(8, 6, 2), shuffle_seed=None)
    path = write_nested_sequences(src.paths[0], tmp_path / "NESTED", depth=10_000)
    for lean in (True, False):  # the lean reader declines; pydicom's recursion is guarded
        result = index_file(Candidate(str(path), "NESTED"), lean=lean)
        assert not result.frames and not result.ignored
        assert len(result.errors) == 1 and result.errors[0].rel == "NESTED"
        assert "nested too deeply" in result.errors[0].error, result.errors[0]
    shallow = write_nested_sequences(src.paths[0], tmp_path / "SHALLOW", depth=3)
    assert len(index_file(Candidate(str(shallow), "SHALLOW")).frames) == 1


# --- 3. a resampled volume never drops a source ----------------------------------------------

def test_resampled_volume_accounts_for_every_source(tmp_path: Path) -> None:
    """Resampling across the gap (forced): a slice no output plane draws on is skipped."""
    inp = tmp_path / "in"
    positions = [(0.0, 0.0, 0.0), (0.0, 0.0, STEP), (0.0, 0.0, 2 * STEP),
                 (0.0, 0.0, 2 * STEP + 162 * STEP)]
    series = write_series(inp, shape=(8, 8, 4), positions=positions)
    out = tmp_path / "out"
    options = ConvertOptions(plan=PlanOptions(max_gap_slices=1000))
    report = dicomvol.convert([inp], out, options)
    (volume,) = report.outputs
    assert volume.resampled
    named = {s["SOPInstanceUID"] for s in _sidecars(out)[0]["SourceInstances"]}
    skipped = {s.sop_instance_uid: s.reason for s in report.skipped}
    assert named | set(skipped) == set(series.sop_instance_uids)
    assert not named & set(skipped)
    assert all("resampled" in r for r in skipped.values())
    _assert_balanced(out, 4)
    assert_accounted(inp, out)


def test_ledger_catches_a_source_a_job_drops(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is generic: a job that silently leaves a frame out fails the run."""
    inp = tmp_path / "in"
    positions = [(0.0, 0.0, 0.0), (0.0, 0.0, STEP), (0.0, 0.0, 2 * STEP),
                 (0.0, 0.0, 2 * STEP + 162 * STEP)]
    series = write_series(inp, shape=(8, 8, 4), positions=positions)
    monkeypatch.setattr(batch_jobs, "unused_frames", lambda plan, sources: ())  # the old bug
    out = tmp_path / "out"
    code = main(["convert", str(inp), "-o", str(out), "-q", "-j", "1",
                 "--max-gap-slices", "1000"])
    assert code == 1
    report = _report(out)
    (error,) = report["errors"]
    assert error["Error"].startswith(NOT_ACCOUNTED)
    assert series.series_instance_uid in error["Error"]
    assert error["File"] in {p.name for p in series.paths}
    assert report["ledger"]["frames_unaccounted"] == 1
    assert report["ledger"]["balanced"] is False


# --- 4. a damaged image is an error, never "not an image" ------------------------------------

@pytest.mark.parametrize("lean", [True, False])
def test_damaged_header_with_pixel_data_is_an_error(tmp_path: Path, lean: bool) -> None:
    src = write_series(tmp_path / "src", shape=(8, 6, 2), shuffle_seed=None)
    path = write_overlong_element(src.paths[0], tmp_path / "DAMAGED")
    result = index_file(Candidate(str(path), "DAMAGED"), lean=lean)
    assert not result.ignored and not result.frames
    (error,) = result.errors
    assert "damaged header" in error.error and "Pixel Data" in error.error
    assert "SeriesDescription" in error.error  # what is wrong: the element that runs over it


def test_damaged_image_in_a_run_is_reported_in_errors(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    series = write_series(inp, shape=(8, 6, 4), shuffle_seed=None)
    damaged = inp / "DAMAGED"
    write_overlong_element(series.paths[3], damaged)
    series.paths[3].unlink()
    out = tmp_path / "out"
    dicomvol.convert([inp], out, ConvertOptions())
    report = _report(out)
    assert [i["File"] for i in report["ignored"]] == []
    assert [e["File"] for e in report["errors"]] == ["DAMAGED"]
    _assert_balanced(out, 3)


def test_object_without_pixels_is_still_ignored(tmp_path: Path) -> None:
    src = write_series(tmp_path / "src", shape=(8, 6, 1), shuffle_seed=None)
    ds = pydicom.dcmread(src.paths[0])
    del ds.PixelData
    ds.save_as(tmp_path / "CUT", enforce_file_format=True)  # an image header, pixels gone
    for name in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                 "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, name)
    ds.save_as(tmp_path / "CUT2", enforce_file_format=True)  # a CT without the pixel module
    raw = "1.2.840.10008.5.1.4.1.1.66"  # Raw Data Storage: not an image
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = raw
    ds.save_as(tmp_path / "NOPIXELS", enforce_file_format=True)
    result = index_file(Candidate(str(tmp_path / "NOPIXELS"), "NOPIXELS"))
    assert [i.reason for i in result.ignored] == ["no pixel data (Raw Data Storage)"]
    (error,) = index_file(Candidate(str(tmp_path / "CUT2"), "CUT2")).errors
    assert "CT Image Storage" in error.error and "no Pixel Data" in error.error
    (error,) = index_file(Candidate(str(tmp_path / "CUT"), "CUT")).errors
    assert "no Pixel Data" in error.error and "truncated" in error.error


# --- 5. no interpolation across a large gap -------------------------------------------------

def test_large_gap_splits_into_exact_pieces(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    positions = [(0.0, 0.0, 0.0), (0.0, 0.0, STEP), (0.0, 0.0, 2 * STEP),
                 (0.0, 0.0, 2 * STEP + 162 * STEP)]
    write_series(inp, shape=(8, 8, 4), positions=positions)
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions())
    assert sorted(o.shape[2] for o in report.outputs) == [1, 3]
    assert not any(o.resampled for o in report.outputs)
    for sidecar in _sidecars(out):
        assert sidecar["Resampled"] is False
        assert any("MAX_RESAMPLE_GAP_SLICES" in w and "161 slices" in w
                   for w in sidecar["Warnings"])
    for o in report.outputs:
        check_exact(out / o.path, [inp])
    _assert_balanced(out, 4)
    assert_accounted(inp, out)


@pytest.mark.parametrize("missing", [MAX_RESAMPLE_GAP_SLICES, MAX_RESAMPLE_GAP_SLICES + 1])
def test_gap_threshold(tmp_path: Path, missing: int) -> None:
    """Up to MAX_RESAMPLE_GAP_SLICES missing: resampled; one more: split."""
    inp = tmp_path / "in"
    z = [k * STEP for k in range(4)] + [(4 + missing + k) * STEP for k in range(4)]
    write_series(inp, shape=(8, 8, 8), positions=[(0.0, 0.0, v) for v in z])
    report = dicomvol.convert([inp], tmp_path / "out", ConvertOptions())
    if missing <= MAX_RESAMPLE_GAP_SLICES:
        (only,) = report.outputs
        assert only.resampled
    else:
        assert [o.shape[2] for o in report.outputs] == [4, 4]
        assert not any(o.resampled for o in report.outputs)


# --- 6. the same UID with different pixels is a conflict, never a copy -----------------------

def test_same_uid_different_pixels_is_a_conflict(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    series = write_series(inp, shape=(8, 6, 4), shuffle_seed=None)
    write_conflicting_copy(series.paths[1], inp / "Z_CONFLICT1")
    write_conflicting_copy(series.paths[1], inp / "Z_CONFLICT2", delta=9)
    shutil.copy(series.paths[2], inp / "Z_COPY")
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions())
    (volume,) = report.outputs
    assert volume.n_frames == 4
    reasons = {s.rel: s.reason for s in report.skipped}  # the first file read (by name) is used
    assert set(reasons) == {"Z_CONFLICT1", "Z_CONFLICT2", "Z_COPY"}
    for name in ("Z_CONFLICT1", "Z_CONFLICT2"):
        assert reasons[name].startswith("conflict:") and "different pixel data" in reasons[name]
        assert "copy" not in reasons[name].replace("not a copy", "")
    assert reasons["Z_COPY"].startswith("duplicate: a copy of") and "same pixel data" in (
        reasons["Z_COPY"])
    check_exact(out / volume.path, [inp])
    _assert_balanced(out, 7)


def test_same_uid_told_apart_by_position_is_kept(tmp_path: Path) -> None:
    """Two different images that share a UID (a broken exporter): both are kept."""
    inp = tmp_path / "in"
    series = write_series(inp / "a", shape=(8, 6, 3), shuffle_seed=None)
    other = write_series(inp / "b", shape=(8, 6, 3), shuffle_seed=None, origin=(50, 0, 0))
    ds = pydicom.dcmread(other.paths[0])
    ds.SOPInstanceUID = series.sop_instance_uids[0]
    ds.file_meta.MediaStorageSOPInstanceUID = series.sop_instance_uids[0]
    ds.save_as(other.paths[0], enforce_file_format=True)
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions())
    assert sorted(o.n_frames for o in report.outputs) == [3, 3]
    assert not report.skipped
    _assert_balanced(out, 6)


def test_a_series_without_sop_instance_uids(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A careless de-identification drops SOPInstanceUID: the file meta's
    MediaStorageSOPInstanceUID names each instance (in every record, so that frames are
    not compared by an empty UID: no warning per pair); a file with neither UID cannot be
    named in SourceInstances and is an error, by name."""
    inp = tmp_path / "in"
    with_meta = write_series(inp / "meta", shape=(8, 6, 4), series_number=1,
                             extra={"SOPInstanceUID": None})
    bare = write_series(inp / "bare", shape=(8, 6, 4), series_number=2,
                        extra={"SOPInstanceUID": None}, origin=(0, 0, 80))
    for path in bare.paths:  # no file meta either: an ACR-NEMA style stream
        ds = pydicom.dcmread(path)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True,
                         enforce_file_format=False)
    out = tmp_path / "out"
    with caplog.at_level("WARNING"):
        report = dicomvol.convert([inp], out, ConvertOptions(jobs=1))
    assert not [r for r in caplog.records if "share SOPInstanceUID" in r.getMessage()]
    (output,) = report.outputs
    meta_uids = [pydicom.dcmread(p).file_meta.MediaStorageSOPInstanceUID
                 for p in with_meta.paths]
    (sidecar,) = _sidecars(out)
    assert sorted(e["SOPInstanceUID"] for e in sidecar["SourceInstances"]) == sorted(meta_uids)
    check_exact(out / output.path, [inp])
    assert sorted(e.rel for e in report.errors) == sorted(
        f"bare/{Path(p).name}" for p in bare.paths)
    assert {e.error for e in report.errors} == {
        "image without SOPInstanceUID (0008,0018) or MediaStorageSOPInstanceUID (0002,0003): "
        "it cannot be named in SourceInstances"}
    _assert_balanced(out, 4)  # the files in errors hold no indexed frame


# --- garbled numbers and geometry ------------------------------------------------------------

@pytest.mark.parametrize(("keyword", "raw", "vr"), [
    ("NumberOfFrames", b"1A", None),
    ("Rows", b"\x00", b"US"),
    ("ImagePositionPatient", b"1\\x\\3", None),
    ("PixelSpacing", b"0.5", b"FD"),
    ("ImageOrientationPatient", b"1\\0\\0\\0\\1\\nan", None),
    ("RescaleSlope", b"1e999", None),
])
def test_unparsable_numbers_cost_the_file_only(tmp_path: Path, keyword: str, raw: bytes,
                                               vr: bytes | None) -> None:
    inp = tmp_path / "in"
    series = write_series(inp, shape=(8, 6, 4), shuffle_seed=None)
    bad = write_raw_value(series.paths[0], tmp_path / "bad", keyword, raw, vr)
    shutil.move(bad, series.paths[0])
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions())
    assert sum(o.n_frames for o in report.outputs) >= 3
    for o in report.outputs:
        if not o.resampled:
            check_exact(out / o.path, [inp])
    report_json = _report(out)
    assert not [i for i in report_json["ignored"] if i["File"] == series.paths[0].name]
    assert report_json["ledger"]["balanced"] is True


# --- 8. -o naming an existing file ------------------------------------------------------------

def test_output_naming_a_file_is_a_usage_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    write_series(inp, shape=(8, 6, 2))
    target = tmp_path / "taken.txt"
    target.write_text("not a folder")
    assert main(["convert", str(inp), "-o", str(target), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an existing file, not a folder" in err
    assert "Traceback" not in err and str(target) in err
    assert main(["convert", str(inp), "-o", str(target / "sub"), "-q"]) == 2
    with pytest.raises(UsageError, match="existing file"):
        dicomvol.convert([inp], target)
    assert target.read_text() == "not a folder"


# --- the ledger -----------------------------------------------------------------------------

def test_ledger_in_every_run_local_and_pool(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    write_series(inp / "a", shape=(8, 6, 5))
    write_series(inp / "b", shape=(8, 6, 3), series_number=2)
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        report = dicomvol.convert([inp], out, ConvertOptions(jobs=jobs))
        assert report.ledger is not None and report.ledger.balanced
        ledger = _assert_balanced(out, 8)
        assert ledger["frames_written"] == 8


def test_ledger_counts_each_frame_once() -> None:
    ledger = Ledger()
    for frame in (1, 2, 3):
        ledger.enter("/in/mf.dcm", "mf.dcm", "1.2.3", frame, series="1.2")
    ledger.enter("/in/mf.dcm", "mf.dcm", "1.2.3", 1, series="1.2")  # entered twice: one frame
    ledger.enter("/in/a.dcm", "a.dcm", "1.2.4", series="1.2")
    ledger.enter("/in/b.dcm", "b.dcm", "1.2.5", series="1.2")
    assert len(ledger) == 5
    summary, lost = ledger.settle([[("/in/mf.dcm", "1.2.3", 1, 0)]],
                                  [("/in/mf.dcm", "1.2.3", 2), ("/in/mf.dcm", "1.2.3", 3)],
                                  ["/in/a.dcm"])
    assert (summary.frames_written, summary.frames_skipped, summary.frames_errors) == (1, 2, 2)
    assert summary.unaccounted == 1 and not summary.balanced
    (error,) = lost
    assert error.rel == "b.dcm" and NOT_ACCOUNTED in error.error and "1.2" in error.error
    summary, lost = ledger.settle([], [("/in/mf.dcm", "1.2.3", None), ("/in/b.dcm", "1.2.5", 1)],
                                  ["/in/a.dcm"])  # frame None: every frame of the instance
    assert summary.balanced and not lost and summary.frames_skipped == 4
    summary, _ = ledger.settle([[("/in/b.dcm", "1.2.5", 1, 0)]], [("/in/b.dcm", "1.2.5", 1)],
                               ["/in/mf.dcm", "/in/a.dcm"])
    assert summary.written_and_skipped == 1 and not summary.balanced


def test_a_crashing_stage_still_writes_the_report(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a job's code outside its own guard: the run goes on and reports it."""
    from dicomvol.batch import run as batch_run

    inp = tmp_path / "in"
    write_series(inp / "a", shape=(8, 6, 3))
    write_series(inp / "b", shape=(8, 6, 3), series_number=2)

    def broken(job: Any) -> Any:
        if job.plan.first.series_number == 2:
            raise MemoryError("absurd length")
        return batch_jobs.run_job(job)

    monkeypatch.setattr(batch_run, "run_job", broken)
    out = tmp_path / "out"
    report = dicomvol.convert([inp], out, ConvertOptions())
    assert len(report.outputs) == 1
    assert any("MemoryError" in e.error for e in report.errors)
    _assert_balanced(out, 6)


@pytest.mark.parametrize("workers", [1, 2])
def test_executor_turns_a_failing_job_into_its_entry(workers: int) -> None:
    """In this process and in a pool, a job that raises yields on_error's result, and the
    other jobs' results still come."""
    from dicomvol.batch.executors import run_local

    failed: list[str] = []

    def on_error(job: str, exc: BaseException) -> int:
        failed.append(f"{job}: {type(exc).__name__}")
        return -1

    results = sorted(run_local(int, ["1", "x", "3"], workers, on_error=on_error))
    assert results == [-1, 1, 3]
    assert failed == ["x: ValueError"]
    with pytest.raises(ValueError):  # without on_error, the failure propagates
        list(run_local(int, ["1", "x"], 1))

"""Batch conversion: manifests, the tabular report, --resume, interruption and Dask.

The Dask tests start a real scheduler and two workers with distributed's
command-line tools on 127.0.0.1; the interruption tests SIGKILL a real
``dicomvol convert`` process and a real Dask worker in the middle of a run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from dicomvol.api import convert
from dicomvol.batch import run as batch_run
from dicomvol.cli.main import main
from dicomvol.errors import UsageError
from dicomvol.options import ConvertOptions
from dicomvol.report.run import RunReport
from dicomvol.testing import SyntheticSeries, write_series
from exactness import check_exact

BIN = Path(sys.executable).parent
REPORT_FILES = ("dicomvol_report.json", "dicomvol_report.parquet", "dicomvol_report.csv")
#: Columns of the tabular report: per output, and the IDC volume_geometry_index checks.
ROW_COLUMNS = ("series_instance_uid", "path", "sidecar", "shape", "spacing_mm", "status",
               "warnings", "frames", "sheared", "resampled")
IDC_COLUMNS = ("single_orientation", "orthogonal_orientation", "unique_slice_positions",
               "consistent_in_plane_row", "consistent_in_plane_col",
               "consistent_pixel_spacing", "consistent_image_dimensions",
               "uniform_slice_spacing", "regularly_spaced_3d_volume", "obliquity_degrees",
               "slice_spacing_mm")
#: The interruption tests: this many series of this shape (a -j 1 run takes seconds).
KILL_SERIES = 16
KILL_SHAPE = (256, 256, 48)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _small_series(folder: Path, n: int) -> list[SyntheticSeries]:
    """``n`` small regular series in ``folder/sNN`` with distinct names."""
    return [write_series(folder / f"s{i:02d}", series_number=i + 1,
                         series_description=f"small{i}", seed=i) for i in range(n)]


def _names(folder: Path) -> list[str]:
    """Visible output files (images and sidecars), without the run report."""
    return sorted(p.name for p in folder.iterdir()
                  if not p.name.startswith(".") and p.name not in REPORT_FILES)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.nii.gz") if not p.name.startswith("."))


def _stamp(path: Path) -> tuple[int, int]:
    """(inode, mtime_ns): a file replaced by an atomic rename gets a new inode."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def _assert_same_nifti(a: Path, b: Path) -> None:
    img_a: Any = nib.load(str(a))
    img_b: Any = nib.load(str(b))
    assert img_a.header.binaryblock == img_b.header.binaryblock, f"{a.name}: headers differ"
    data_a, data_b = np.asarray(img_a.dataobj), np.asarray(img_b.dataobj)
    assert data_a.dtype == data_b.dtype, f"{a.name}: {data_a.dtype} != {data_b.dtype}"
    assert np.array_equal(data_a, data_b), f"{a.name}: voxel data differ"


def _assert_same_outputs(a: Path, b: Path) -> list[str]:
    """Same file names, same NIfTI headers and voxels, equal sidecars; returns the names."""
    names = _names(a)
    assert names == _names(b)
    assert names, "no outputs to compare"
    for name in names:
        if name.endswith(".json"):
            assert json.loads((a / name).read_text()) == json.loads((b / name).read_text()), (
                f"sidecar {name} differs")
        else:
            assert name.endswith(".nii.gz"), name
            _assert_same_nifti(a / name, b / name)
    return names


def _report_json(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "dicomvol_report.json").read_text()))


def _statuses(report: RunReport) -> dict[str, str]:
    return {o.path: o.status for o in report.outputs}


# --------------------------------------------------------------------------------------------
# 1. manifests
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def three_series(tmp_path: Path) -> dict[str, SyntheticSeries]:
    study = tmp_path / "study"
    return {name: write_series(study / name, series_number=n, series_description=name, seed=n)
            for n, name in enumerate(("a", "b", "c"), 1)}


def _write_manifest(path: Path, kind: str, entries: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "txt":
        lines = ["# series selected for conversion", "", *entries, ""]
        path.write_text("\n".join(lines), encoding="utf-8")
    elif kind == "csv":  # the path column is not the first one
        with open(path, "w", newline="", encoding="utf-8") as fp:
            writer = csv.writer(fp)
            writer.writerow(["subject", "path"])
            writer.writerows([f"S{n}", e] for n, e in enumerate(entries))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"subject": [f"S{n}" for n in range(len(entries))],
                                 "path": pa.array(entries, pa.string())}), path)
    return path


@pytest.mark.parametrize("kind", ["txt", "csv", "parquet"])
def test_manifest_converts_exactly_the_listed_series(
        tmp_path: Path, three_series: dict[str, SyntheticSeries], kind: str) -> None:
    study = tmp_path / "study"
    lists = tmp_path / "lists"
    lists.mkdir()
    # one path relative to the manifest's folder, one absolute; "c" is not listed
    entries = [os.path.relpath(study / "a", lists), str((study / "b").resolve())]
    assert not Path(entries[0]).is_absolute()
    manifest = _write_manifest(lists / f"series.{kind}", kind, entries)

    out = tmp_path / "out"
    report = convert([manifest], out)

    assert report.ok
    assert report.n_files == 16  # 8 slices of a and of b: no file of c, not the manifest
    assert sorted(o.series_instance_uid for o in report.outputs) == sorted(
        three_series[k].series_instance_uid for k in ("a", "b"))
    assert all(o.shape == three_series["a"].shape for o in report.outputs)
    assert len(_images(out)) == 2
    assert not report.skipped and not report.ignored


def test_manifest_mixed_with_a_folder(tmp_path: Path,
                                      three_series: dict[str, SyntheticSeries]) -> None:
    manifest = _write_manifest(tmp_path / "m.txt", "txt", ["study/a"])
    report = convert([manifest, tmp_path / "study" / "c"], tmp_path / "out")
    assert sorted(o.series_instance_uid for o in report.outputs) == sorted(
        three_series[k].series_instance_uid for k in ("a", "c"))


@pytest.mark.parametrize("kind", ["txt", "csv", "parquet"])
def test_manifest_with_a_missing_path_is_a_usage_error(
        tmp_path: Path, three_series: dict[str, SyntheticSeries], kind: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "study" / "no_such_series"
    manifest = _write_manifest(tmp_path / f"m.{kind}", kind,
                               [str(tmp_path / "study" / "a"), str(missing)])
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="missing"):
        convert([manifest], out)
    assert not out.exists()  # nothing is written before the inputs are known

    capsys.readouterr()
    assert main(["convert", str(manifest), "-o", str(out), "-q"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dicomvol: error:") and "no_such_series" in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()


@pytest.mark.parametrize("name, content", [
    ("empty.txt", ""),
    ("comments.txt", "# nothing selected\n\n   \n# still nothing\n"),
    ("header_only.csv", "path\n"),
    ("blank_paths.csv", "subject,path\nS1,\nS2,  \n"),
    ("no_rows.parquet", None),
])
def test_empty_manifest_is_a_usage_error(tmp_path: Path, name: str, content: str | None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / name
    if content is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"path": pa.array([], pa.string())}), manifest)
    else:
        manifest.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match="no paths"):
        convert([manifest], tmp_path / "out")
    capsys.readouterr()
    assert main(["convert", str(manifest), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------
# 2. tabular report
# --------------------------------------------------------------------------------------------


def test_tabular_report_matches_the_json_report(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    inp = tmp_path / "in"
    regular = write_series(inp / "regular", series_number=1, series_description="regular",
                           seed=1)
    gapped = write_series(inp / "gapped", series_number=2, series_description="gapped", seed=2,
                          positions=[(-10.0, -20.0, 30.0 + 2.5 * k)
                                     for k in (0, 1, 2, 3, 5, 6, 7, 8)])
    out = tmp_path / "out"
    report = convert([inp], out)
    assert report.ok

    assert (out / "dicomvol_report.parquet").is_file()
    assert not (out / "dicomvol_report.csv").exists()
    table = pq.read_table(out / "dicomvol_report.parquet")
    missing = set(ROW_COLUMNS + IDC_COLUMNS) - set(table.column_names)
    assert not missing, f"report table lacks {sorted(missing)}"
    rows = {r["path"]: r for r in table.to_pylist()}
    volumes = {v["Path"]: v for v in _report_json(out)["volumes"]}
    assert table.num_rows == len(report.outputs) == 2
    assert set(rows) == set(volumes) == {p.name for p in _images(out)}

    for path, row in rows.items():
        vol = volumes[path]
        assert row["series_instance_uid"] == vol["SeriesInstanceUID"]
        assert row["sidecar"] == vol["Sidecar"]
        assert row["status"] == vol["Status"] == "written"
        assert row["shape"] == "x".join(str(v) for v in vol["Shape"])
        spacing = [float(v) for v in row["spacing_mm"].split("x")]
        assert np.allclose(spacing, vol["Spacing"], rtol=1e-5)
        assert row["warnings"] == " | ".join(vol["Warnings"])
        assert row["frames"] == vol["Frames"]
        assert row["sheared"] == vol["Sheared"]
        assert row["resampled"] == vol["Resampled"]

    by_uid = {r["series_instance_uid"]: r for r in rows.values()}
    reg, gap = by_uid[regular.series_instance_uid], by_uid[gapped.series_instance_uid]
    assert reg["shape"] == "16x12x8" and reg["warnings"] == "" and not reg["resampled"]
    assert all(reg[c] is True for c in IDC_COLUMNS[:9])
    assert reg["slice_spacing_mm"] == pytest.approx(2.5)
    assert reg["obliquity_degrees"] == pytest.approx(0.0)
    # the source of the gapped series is not a regular volume: it is resampled, with a warning
    assert gap["regularly_spaced_3d_volume"] is False
    assert gap["uniform_slice_spacing"] is False
    assert gap["unique_slice_positions"] is True
    assert gap["resampled"] is True and gap["warnings"]

    # without pyarrow the same rows go to dicomvol_report.csv
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    written = report.write_table()
    assert written == out / "dicomvol_report.csv"
    with open(written, newline="", encoding="utf-8") as fp:
        reader = csv.DictReader(fp)
        assert reader.fieldnames == table.column_names
        csv_rows = {r["path"]: r for r in reader}
    assert set(csv_rows) == set(rows)
    for path, row in rows.items():
        assert csv_rows[path] == {k: "" if v is None else str(v) for k, v in row.items()}


# --------------------------------------------------------------------------------------------
# 3. resume
# --------------------------------------------------------------------------------------------


def test_resume_keeps_complete_outputs_and_redoes_missing_ones(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    series = _small_series(inp, 6)
    first = convert([inp], out)
    assert first.ok and len(first.outputs) == 6
    assert set(_statuses(first).values()) == {"written"}
    files = _names(out)
    assert len(files) == 12
    stamps = {name: _stamp(out / name) for name in files}
    first_volumes = _report_json(out)["volumes"]

    again = convert([inp], out, ConvertOptions(resume=True))
    assert again.ok and not again.skipped
    assert set(_statuses(again).values()) == {"resumed"}
    assert {name: _stamp(out / name) for name in files} == stamps, "resume rewrote files"
    # a resumed output is described as it was when written (apart from its status)
    resumed_volumes = _report_json(out)["volumes"]
    assert [{**v, "Status": "written"} for v in resumed_volumes] == first_volumes

    # an image deleted: only that volume is converted again
    victim = first.outputs[2]
    (out / victim.path).unlink()
    third = convert([inp], out, ConvertOptions(resume=True))
    assert third.ok
    assert _statuses(third) == {o.path: "written" if o.path == victim.path else "resumed"
                                for o in first.outputs}
    assert _names(out) == files
    unchanged = [n for n in files if n not in (victim.path, victim.sidecar)]
    assert {n: _stamp(out / n) for n in unchanged} == {n: stamps[n] for n in unchanged}

    # a source that changed (its last slice removed): the sidecar's digest no longer matches
    changed = next(o for o in first.outputs
                   if o.series_instance_uid == series[4].series_instance_uid)
    series[4].paths[-1].unlink()
    fourth = convert([inp], out, ConvertOptions(resume=True))
    assert fourth.ok
    assert _statuses(fourth) == {o.path: "written" if o.path == changed.path else "resumed"
                                 for o in first.outputs}
    assert nib.load(str(out / changed.path)).shape == (16, 12, 7)


def _dicomvol_command() -> list[str]:
    exe = BIN / "dicomvol"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dicomvol.cli.main"]


@pytest.fixture(scope="module")
def kill_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SyntheticSeries]]:
    """Sixteen 256x256x48 series: big enough that converting them takes seconds."""
    inp = tmp_path_factory.mktemp("kill_study")
    series = [write_series(inp / f"s{i:02d}", shape=KILL_SHAPE, series_number=i + 1,
                           series_description=f"big{i}", seed=100 + i)
              for i in range(KILL_SERIES)]
    return inp, series


def _kill_a_run(inp: Path, out: Path, tmp_path: Path) -> tuple[int, int]:
    """Start ``dicomvol convert -j 1``, SIGKILL it once 2 outputs exist; (returncode, seen)."""
    for _attempt in range(3):
        shutil.rmtree(out, ignore_errors=True)
        log = tmp_path / "killed_run.log"
        with open(log, "wb") as fp:
            proc = subprocess.Popen([*_dicomvol_command(), "convert", str(inp), "-o", str(out),
                                     "-j", "1", "-q"], stdout=fp, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            seen = 0
            while proc.poll() is None and time.monotonic() < deadline:
                seen = len(_images(out))
                if seen >= 2:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
        finally:
            if proc.poll() is None and seen < 2:  # timed out: never leave it running
                proc.kill()
            proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL and seen < KILL_SERIES:
            return proc.returncode, seen
        assert proc.returncode in (0, -signal.SIGKILL), log.read_text()
    return proc.returncode, seen  # the caller's assertions report the failure


@pytest.mark.slow
def test_killed_run_leaves_no_partial_file_and_resume_completes_it(
        kill_study: tuple[Path, list[SyntheticSeries]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    inp, _series = kill_study
    out, out2 = tmp_path / "out", tmp_path / "out2"
    returncode, seen = _kill_a_run(inp, out, tmp_path)
    assert returncode == -signal.SIGKILL, "the run was not killed"
    assert 2 <= seen < KILL_SERIES

    # what an interrupted run leaves: complete files, or hidden temporaries
    complete: dict[str, tuple[int, int]] = {}
    leftovers = sorted(p.name for p in out.iterdir())
    assert len(_images(out)) < KILL_SERIES
    for name in leftovers:
        path = out / name
        if name.startswith("."):
            assert name.endswith(".tmp"), f"hidden file that is not a temporary: {name}"
            continue
        assert name not in REPORT_FILES, "the report is written only at the end"
        assert name.endswith((".nii.gz", ".json")), f"unexpected file {name}"
        if name.endswith(".json"):
            json.loads(path.read_text())  # complete JSON
            image = out / name.replace(".json", ".nii.gz")
            assert image.is_file(), f"sidecar {name} without its image"
            complete[image.name] = _stamp(image)
            complete[name] = _stamp(path)
        else:
            np.asarray(nib.load(str(path)).dataobj)  # a truncated gzip stream would raise
    unpaired = [n for n in leftovers
                if n.endswith(".nii.gz") and not (out / n.replace(".nii.gz", ".json")).exists()]
    assert len(unpaired) <= 1, f"several images without sidecars: {unpaired}"
    assert complete, "no complete output before the kill"

    capsys.readouterr()
    assert main(["convert", str(inp), "-o", str(out), "-j", "1", "-q", "--resume"]) == 0
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], \
        "temporaries left after the resumed run"
    report = _report_json(out)
    assert report["errors"] == [] and report["skipped"] == []
    statuses = {v["Path"]: v["Status"] for v in report["volumes"]}
    assert len(statuses) == KILL_SERIES
    assert statuses == {name: "resumed" if name in complete else "written" for name in statuses}
    assert {n: _stamp(out / n) for n in complete} == complete, "resume rewrote complete files"

    full = convert([inp], out2, ConvertOptions(jobs=2))
    assert full.ok and len(full.outputs) == KILL_SERIES
    names = _assert_same_outputs(out, out2)
    assert len(names) == 2 * KILL_SERIES


def test_resume_and_overwrite_exclude_each_other(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    write_series(inp)
    out = tmp_path / "out"
    assert main(["convert", str(inp), "-o", str(out), "--resume", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "--overwrite" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("first_attempt", ["finished", "killed_before_sidecar"])
def test_a_job_run_twice_is_still_reported_as_an_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_attempt: str) -> None:
    from dicomvol.api import read_volume
    from dicomvol.io.formats import write_volume

    inp = tmp_path / "in"
    _small_series(inp, 2)

    def run_twice(fn: Any, jobs: Any, workers: int, pool: Any = None,
                  on_error: Any = None) -> Iterator[Any]:
        """What Dask does when a worker dies: the task runs again on another worker."""
        for job in jobs:
            if not hasattr(job, "plan"):  # header-reading chunks also run through run_local
                yield fn(job)
                continue
            if first_attempt == "finished":
                fn(job)  # its result is lost with the worker
            else:
                write_volume(read_volume(job.plan), job.image, job.options.format,
                             compress=job.options.compress)
            yield fn(job)

    monkeypatch.setattr(batch_run, "run_local", run_twice)
    out = tmp_path / "out"
    report = convert([inp], out)
    assert all(p.with_name(p.name.replace(".nii.gz", ".json")).is_file() for p in _images(out))
    assert not report.skipped, report.skipped[0].reason
    assert len(report.outputs) == 2


# --------------------------------------------------------------------------------------------
# 4. Dask
# --------------------------------------------------------------------------------------------


def _dask_command(role: str) -> list[str]:
    exe = BIN / "dask"
    if exe.exists():
        return [str(exe), role]
    return [sys.executable, "-m", f"distributed.cli.dask_{role}"]


@dataclass
class DaskCluster:
    """A scheduler and workers started as processes (each the leader of its own group)."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        n = len(self.workers) + (self.scheduler is not None)
        with open(self.folder / f"{role}{n}.log", "wb") as log:
            return subprocess.Popen([*_dask_command(role), *args], cwd=self.folder,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def kill_worker(self, n: int) -> int:
        proc = self.workers[n]
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and its nanny
        return proc.wait(timeout=30)

    def stop(self) -> None:
        procs = [*self.workers, *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        for proc in procs:  # children left in a group whose leader exited
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A scheduler and two single-threaded workers on 127.0.0.1, torn down afterwards."""
    distributed = pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask")
    cluster = DaskCluster(folder)
    sched_file = folder / "scheduler.json"
    try:
        cluster.scheduler = cluster.start(
            "scheduler", "--host", "127.0.0.1", "--port", "0",
            "--scheduler-file", str(sched_file), "--no-dashboard")
        deadline = time.monotonic() + 60
        while not cluster.address:
            assert cluster.scheduler.poll() is None, "scheduler exited\n" + cluster.logs()
            assert time.monotonic() < deadline, "scheduler not ready\n" + cluster.logs()
            try:
                cluster.address = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        for _ in range(2):
            cluster.workers.append(cluster.start(
                "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                "--local-directory", str(folder / "space"), "--death-timeout", "60"))
        with distributed.Client(cluster.address, timeout="30s") as client:
            try:
                client.wait_for_workers(2, timeout=90)
            except TimeoutError:
                pytest.fail("Dask workers not ready\n" + cluster.logs())
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.dask
def test_dask_cluster_gives_the_same_outputs_as_local(corpus: Path, dask_cluster: DaskCluster,
                                                      tmp_path: Path) -> None:
    # a gantry tilt (sheared + resampled copy), a missing slice (resampled), and
    # compressed transfer syntaxes (decoded on the workers)
    edge = corpus / "edge_cases"
    inputs = [edge / "failing" / "gantrytilting", edge / "generic"]
    for path in inputs:
        assert path.is_dir(), f"corpus lacks {path}"
    local_out, dask_out = tmp_path / "local", tmp_path / "dask"
    local = convert(inputs, local_out, ConvertOptions(jobs=1))
    remote = convert(inputs, dask_out, ConvertOptions(dask=dask_cluster.address))
    assert local.outputs, "nothing converted"
    assert any(o.sheared for o in local.outputs) and any(o.resampled for o in local.outputs)
    _assert_same_outputs(local_out, dask_out)
    assert _report_json(local_out) == _report_json(dask_out)
    import pyarrow.parquet as pq

    assert (pq.read_table(local_out / "dicomvol_report.parquet").to_pylist()
            == pq.read_table(dask_out / "dicomvol_report.parquet").to_pylist())
    assert local.to_json() == remote.to_json()
    assert remote.ledger is not None and remote.ledger.balanced  # the frame ledger on Dask
    assert remote.ledger == local.ledger


@dataclass
class KilledDaskRun:
    inp: Path
    out: Path
    series: list[SyntheticSeries]
    outputs_at_kill: int
    returncode: int
    report: RunReport | None = None
    error: BaseException | None = None


@pytest.fixture(scope="module")
def killed_dask_run(kill_study: tuple[Path, list[SyntheticSeries]], dask_cluster: DaskCluster,
                    tmp_path_factory: pytest.TempPathFactory) -> KilledDaskRun:
    """Convert the sixteen big series on the cluster and SIGKILL a worker in the middle."""
    inp, series = kill_study
    out = tmp_path_factory.mktemp("killed_dask") / "out"
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["report"] = convert([inp], out, ConvertOptions(dask=dask_cluster.address))
        except BaseException as exc:  # reported by the tests
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120

    def first_complete_output() -> bool:
        return any(p.with_name(p.name.replace(".nii.gz", ".json")).is_file()
                   for p in _images(out))

    while thread.is_alive() and not first_complete_output() and time.monotonic() < deadline:
        time.sleep(0.01)
    # let the client take that result, so that the kill lands inside the next tasks
    time.sleep(0.2)
    at_kill = len(_images(out))
    assert thread.is_alive(), f"the run ended before a worker could be killed: {result}"
    returncode = dask_cluster.kill_worker(0)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the run did not finish after a worker was killed"
    return KilledDaskRun(inp, out, series, at_kill, returncode, result.get("report"),
                         result.get("error"))


@pytest.mark.slow
@pytest.mark.dask
def test_dask_run_survives_a_killed_worker(killed_dask_run: KilledDaskRun) -> None:
    run = killed_dask_run
    assert run.returncode == -signal.SIGKILL
    assert 1 <= run.outputs_at_kill < KILL_SERIES, "the worker was not killed mid-run"
    assert run.error is None, repr(run.error)
    assert run.report is not None
    assert run.report.ok and not run.report.errors, run.report.errors
    assert run.report.ledger is not None and run.report.ledger.balanced, run.report.ledger
    images = _images(run.out)
    assert len(images) == KILL_SERIES
    uids = set()
    for image in images:
        check_exact(image, [run.inp])  # needs the sidecar: every image has one
        sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
        uids.add(sidecar["SeriesInstanceUID"])
    assert uids == {s.series_instance_uid for s in run.series}
    # The report accounts for every series. Not asserted here: that each one is in outputs.
    # A task that finished on the killed worker is run again and may be reported as skipped
    # "output exists" (see test_a_job_run_twice_is_still_reported_as_an_output).
    written = {o.series_instance_uid for o in run.report.outputs}
    skipped = {f.sop_instance_uid for f in run.report.skipped}
    for s in run.series:
        assert s.series_instance_uid in written or set(s.sop_instance_uids) <= skipped
    for name in os.listdir(run.out):
        assert not name.startswith(".") or name.endswith(".tmp"), name


@pytest.mark.dask
def test_dask_relative_output_folder(dask_cluster: DaskCluster, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _small_series(tmp_path / "in", 2)
    monkeypatch.chdir(tmp_path)  # the workers run in another folder
    report = convert(["in"], "out", ConvertOptions(dask=dask_cluster.address))
    assert report.ok and len(report.outputs) == 2
    assert report.ledger is not None and report.ledger.balanced
    assert report.ledger.frames_written == report.ledger.frames_in == 16
    assert sorted(_names(tmp_path / "out")) == sorted(
        n for o in report.outputs for n in (o.path, o.sidecar))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
@pytest.mark.dask
def test_dask_local_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    inp = tmp_path / "in"
    _small_series(inp, 2)
    local = convert([inp], tmp_path / "local")
    remote = convert([inp], tmp_path / "dask", ConvertOptions(dask="local", jobs=1))
    assert len(remote.outputs) == 2 and remote.ok
    _assert_same_outputs(tmp_path / "local", tmp_path / "dask")
    assert local.to_json() == remote.to_json()

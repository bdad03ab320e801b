"""Batch runs from a bucket: Dask workers with their own clients, SIGKILL and --resume."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dicomvol.api import convert
from dicomvol.cli.main import main
from dicomvol.options import ConvertOptions, StorageOptions
from dicomvol.testing import write_series
from s3server import BUCKET, LUNG1_CT_COUNT, LUNG1_CT_UUID, S3Server

pytestmark = pytest.mark.corpus
RTSTRUCT_UUID = "1ba3cf27-75e2-4c5c-82f7-d67bdade722b"


def _outputs(out: Path) -> dict[str, bytes]:
    """Each output's bytes, a .nii.gz decompressed (its gzip stream depends on the job's
    compression threads, which differ between one process and two Dask workers)."""
    return {p.name: gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else
            p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and not p.name.startswith("dicomvol_report")}


@pytest.mark.slow
@pytest.mark.dask
def test_two_dask_workers_from_the_bucket_equal_one_process(
        tmp_path: Path, lung1: str, s3: S3Server, storage: StorageOptions) -> None:
    pytest.importorskip("distributed")
    inputs = [lung1, f"s3://{BUCKET}/{RTSTRUCT_UUID}/"]
    single = convert(inputs, tmp_path / "one", ConvertOptions(jobs=1, storage=storage))
    s3.reset_log()
    dask = convert(inputs, tmp_path / "dask",
                   ConvertOptions(jobs=2, dask="local", storage=storage))
    assert single.ok and dask.ok, dask.to_json()["errors"]
    assert len(single.outputs) == 2  # the CT and the structure set's label map
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "dask")
    assert single.to_json()["idc"] == dask.to_json()["idc"]
    # the workers fetched each object once in full: tasks carry URLs, never contents
    full = [r.path for r in s3.log() if r.is_object_get and r.range is None]
    assert len(full) == len(set(full)) == LUNG1_CT_COUNT + 1


@pytest.mark.slow
def test_sigkill_then_resume_fetches_nothing_already_converted(
        tmp_path: Path, corpus: Path, lung1: str, s3: S3Server, storage: StorageOptions) -> None:
    s3.public_bucket("killed")
    client = s3.client()
    for key in [o["Key"] for o in client.list_objects_v2(
            Bucket=BUCKET, Prefix=LUNG1_CT_UUID + "/")["Contents"]]:
        client.copy_object(Bucket="killed", Key=key, CopySource={"Bucket": BUCKET, "Key": key})
    small = write_series(tmp_path / "small", series_number=7, series_description="small")
    s3.upload_folder(tmp_path / "small", "killed", "small", lambda p: p.name + ".dcm")
    out = tmp_path / "out"
    args = ["convert", "s3://killed/", "-o", str(out), "--endpoint-url", s3.endpoint, "-q",
            "-j", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "dicomvol.cli.main", *args],
                            start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not [p for p in out.glob("*.json") if not p.name.startswith("dicomvol_report")]:
            assert proc.poll() is None or list(out.glob("*.json")), proc.stderr
            assert time.monotonic() < deadline, "no output within 120 s"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    done = {json.loads(p.read_text())["SeriesInstanceUID"] for p in out.glob("*.json")
            if not p.name.startswith("dicomvol_report")}
    assert done  # at least one volume was complete when the run died
    s3.reset_log()
    assert main([*args, "--resume"]) == 0
    report = json.loads((out / "dicomvol_report.json").read_text())
    status = {v["SeriesInstanceUID"]: v["Status"] for v in report["volumes"]}
    assert set(status) == {small.series_instance_uid, _lung1_uid(report)}
    assert all(status[uid] == "resumed" for uid in done)
    full = [r.path for r in s3.log() if r.is_object_get and r.range is None]
    fetched_series = {"small" if "/small/" in p else "ct" for p in full}
    resumed = {"small" if uid == small.series_instance_uid else "ct" for uid in done}
    assert not fetched_series & resumed, (fetched_series, resumed)


def _lung1_uid(report: dict[str, object]) -> str:
    idc = report["idc"]
    assert isinstance(idc, dict)
    return str(idc["series"][0]["SeriesInstanceUID"])

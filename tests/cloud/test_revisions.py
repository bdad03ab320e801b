"""--resume across IDC index versions: a revised series (new crdc_series_uuid) is reconverted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomvol.cli.main import main
from dicomvol.inputs import idc
from s3server import BUCKET, LUNG1_CT_COUNT, LUNG1_CT_UUID, S3Server

pytestmark = pytest.mark.corpus
LUNG1_CT_UID = "1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046"
#: The folder the CT had in the (made-up) earlier index release.
OLD_UUID = "01d00000-0000-4000-8000-000000000001"


def _old_index(folder: Path) -> Path:
    """The shipped index's LUNG1-001 rows, the CT in another folder: an earlier release."""
    import duckdb

    folder.mkdir()
    out = folder / "idc_index.parquet"
    source = idc.index_path()
    duckdb.execute(
        f"COPY (SELECT * REPLACE ("
        f"CASE WHEN SeriesInstanceUID = '{LUNG1_CT_UID}' THEN '{OLD_UUID}' "
        f"ELSE crdc_series_uuid END AS crdc_series_uuid) "
        f"FROM read_parquet('{source}') WHERE PatientID = 'LUNG1-001') "
        f"TO '{out}' (FORMAT parquet)")
    return out


@pytest.mark.slow
def test_resume_reconverts_a_series_revised_in_a_newer_index(
        tmp_path: Path, lung1: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    client = s3.client()
    for key in [o["Key"] for o in client.list_objects_v2(
            Bucket=BUCKET, Prefix=LUNG1_CT_UUID + "/")["Contents"]]:
        client.copy_object(Bucket=BUCKET, Key=key.replace(LUNG1_CT_UUID, OLD_UUID),
                           CopySource={"Bucket": BUCKET, "Key": key})
    out = tmp_path / "out"
    args = ["convert", "--idc", LUNG1_CT_UID, "-o", str(out), "--endpoint-url", s3.endpoint,
            "-q", "-j", "1"]

    monkeypatch.setenv("DICOMVOL_IDC_INDEX", str(_old_index(tmp_path / "old")))
    assert main(args) == 0
    (old,) = json.loads((out / "dicomvol_report.json").read_text())["idc"]["series"]
    assert old["crdc_series_uuid"] == OLD_UUID and old["complete"] is True

    monkeypatch.delenv("DICOMVOL_IDC_INDEX")  # the installed, newer release
    s3.reset_log()
    assert main([*args, "--resume"]) == 0
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert [v["Status"] for v in report["volumes"]] == ["revised"]
    assert report["idc"]["revised"] == [{"SeriesInstanceUID": LUNG1_CT_UID,
                                         "previous_crdc_series_uuid": OLD_UUID,
                                         "in_prior_versions_index": False}]  # made-up release
    full = [r.path for r in s3.log() if r.is_object_get and r.range is None]
    assert len(full) == LUNG1_CT_COUNT and all(LUNG1_CT_UUID in p for p in full)
    sidecar = out / report["volumes"][0]["Sidecar"]
    files = [s["File"] for s in json.loads(sidecar.read_text())["SourceInstances"]]
    assert all(f.startswith(lung1) for f in files)

    s3.reset_log()  # nothing changed since: resumed, no object fetched in full
    assert main([*args, "--resume"]) == 0
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert [v["Status"] for v in report["volumes"]] == ["resumed"]
    assert not [r for r in s3.log() if r.is_object_get and r.range is None]

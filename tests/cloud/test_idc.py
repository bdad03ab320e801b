"""IDC selections on the shipped index, manifests, --dry-run and skipping before fetching."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dicomvol.batch.archive import select
from dicomvol.cli.main import main
from dicomvol.errors import UsageError
from dicomvol.inputs import idc
from dicomvol.inputs.manifest import read_manifest
from dicomvol.options import StorageOptions
from s3server import BUCKET, LUNG1_CT_BYTES, LUNG1_CT_COUNT, LUNG1_CT_UUID, S3Server

LUNG1_CT_UID = "1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046"
LUNG1_STUDY_UID = "1.3.6.1.4.1.32722.99.99.239341353911714368772597187099978969331"


@pytest.fixture(autouse=True)
def _index() -> None:
    if not idc.available():
        from conftest import skip_or_fail

        skip_or_fail("idc-index-data and duckdb are not installed (pip install -e '.[test]')")


@pytest.mark.parametrize("ident", [LUNG1_CT_UID, LUNG1_CT_UUID])
def test_a_series_resolves_by_uid_or_crdc_uuid(ident: str) -> None:
    (series,) = idc.resolve([ident])
    assert series.series_instance_uid == LUNG1_CT_UID
    assert series.crdc_series_uuid == LUNG1_CT_UUID
    assert (series.instance_count, series.size_bytes) == (LUNG1_CT_COUNT, LUNG1_CT_BYTES)
    assert series.s3_url == f"s3://{BUCKET}/{LUNG1_CT_UUID}/"
    assert series.gcs_url == f"gs://idc-open-cr/{LUNG1_CT_UUID}/"
    assert series.license_short_name == "CC BY-NC 3.0"
    assert series.skip_reason is None


def test_patient_study_and_query_resolve_the_patients_series() -> None:
    by_patient = idc.resolve(["LUNG1-001"])
    by_study = idc.resolve([LUNG1_STUDY_UID])
    modalities = sorted(s.modality for s in by_patient)
    assert LUNG1_CT_UID in {s.series_instance_uid for s in by_patient}
    assert {"CT", "RTSTRUCT", "SEG", "SR"} <= set(modalities)
    assert {s.study_instance_uid for s in by_study} == {LUNG1_STUDY_UID}
    assert {s.series_instance_uid for s in by_study} <= {s.series_instance_uid for s in by_patient}
    queried = idc.query("SELECT SeriesInstanceUID FROM index "
                        "WHERE PatientID = 'LUNG1-001' AND Modality = 'CT'")
    assert [s.series_instance_uid for s in queried] == [LUNG1_CT_UID]
    assert idc.data_version().startswith("v")


def test_unknown_ids_and_bad_queries_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="NO-SUCH-PATIENT"):
        idc.resolve(["NO-SUCH-PATIENT"])
    with pytest.raises(UsageError, match="idc-query"):
        idc.query("SELECT nonsense FROM nowhere")
    with pytest.raises(UsageError, match="SeriesInstanceUID"):
        idc.query("SELECT PatientID FROM index LIMIT 1")


def test_selection_skips_what_the_index_shows_cannot_become_a_volume() -> None:
    archive = select([], ["LUNG1-001"])
    skipped = {s.series.modality for s in archive.skipped}
    fetched = {s.modality for s in archive.selected}
    assert skipped == {"SR"} and all("structured report" in s.reason for s in archive.skipped)
    assert fetched == {"CT", "RTSTRUCT", "SEG"}
    assert f"s3://{BUCKET}/{LUNG1_CT_UUID}/" in archive.inputs


def test_dry_run_prints_objects_and_bytes_without_any_request(
        s3: S3Server, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    s3.reset_log()
    rc = main(["convert", "--idc", "LUNG1-001", "-o", str(tmp_path / "out"), "--dry-run",
               "--json", "--endpoint-url", s3.endpoint])
    shown = json.loads(capsys.readouterr().out)
    assert rc == 0 and not (tmp_path / "out").exists()
    assert s3.log() == []  # everything from the index: no LIST, no GET
    ct = next(r for r in shown["fetch"] if r["SeriesInstanceUID"] == LUNG1_CT_UID)
    assert (ct["objects"], ct["bytes"]) == (LUNG1_CT_COUNT, LUNG1_CT_BYTES)
    assert {r["Modality"] for r in shown["fetch"]} == {"CT", "RTSTRUCT", "SEG"}
    assert {s["Modality"] for s in shown["skipped_series"]} == {"SR"}
    rc = main(["convert", "--idc", LUNG1_CT_UID, "-o", str(tmp_path / "out"), "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0 and f"{LUNG1_CT_BYTES:,} bytes" in text


@pytest.mark.slow
def test_idc_patient_converts_what_can_be_converted(
        tmp_path: Path, lung1: str, s3: S3Server, storage: StorageOptions,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["convert", "--idc", "LUNG1-001", "-o", str(out), "--endpoint-url", s3.endpoint,
               "-q", "-j", "1"])
    report = json.loads((out / "dicomvol_report.json").read_text())
    idc_part = report["idc"]
    skipped = idc_part["skipped_series"]
    assert {s["Modality"] for s in skipped} == {"SR"} and len(skipped) == 5
    assert all(s["Reason"].startswith("SR: ") for s in skipped)
    # no request touched a skipped series' folder
    sr_folders = {s["crdc_series_uuid"] for s in skipped}
    assert not [r for r in s3.log() if any(u in r.path or u in r.query for u in sr_folders)]
    series = {s["Modality"] + ":" + s["crdc_series_uuid"]: s for s in idc_part["series"]}
    ct = series[f"CT:{LUNG1_CT_UUID}"]
    assert ct["complete"] is True and ct["listed_objects"] == LUNG1_CT_COUNT
    rtstruct = next(s for s in idc_part["series"] if s["Modality"] == "RTSTRUCT")
    assert rtstruct["complete"] is True
    # the local server holds no SEG objects (the corpus has none of LUNG1-001's): incomplete
    segs = [s for s in idc_part["series"] if s["Modality"] == "SEG"]
    assert len(segs) == 4 and not any(s["complete"] for s in segs)
    assert rc == 1
    volumes = report["volumes"]
    assert [v["Frames"] for v in volumes if v["SeriesInstanceUID"] == LUNG1_CT_UID] == [134]
    labels = [v for v in volumes if v["SeriesInstanceUID"] == rtstruct["SeriesInstanceUID"]]
    assert len(labels) == 1, volumes  # the structure set's label map, on the CT's grid
    assert labels[0]["Shape"][:3] == next(v["Shape"][:3] for v in volumes
                                          if v["SeriesInstanceUID"] == LUNG1_CT_UID)
    assert report["summary"]["files_with_errors"] == 4  # the four empty SEG folders


def test_manifests_list_urls_ids_and_report_unknown_lines(tmp_path: Path) -> None:
    s5cmd = tmp_path / "manifest.s5cmd"
    s5cmd.write_text(f"cp s3://{BUCKET}/{LUNG1_CT_UUID}/* .\n"
                     "# a comment\n"
                     "rm s3://somewhere/else/*\n", encoding="utf-8")
    got = read_manifest(s5cmd)
    assert got.entries == [f"s3://{BUCKET}/{LUNG1_CT_UUID}/"]
    assert got.problems == [("manifest.s5cmd line 3",
                             "not an s5cmd copy of a bucket URL: rm s3://somewhere/else/*")]
    table = tmp_path / "series.csv"
    with open(table, "w", newline="", encoding="utf-8") as fp:
        writer = csv.writer(fp)
        writer.writerow(["PatientID", "series_aws_url"])
        writer.writerow(["LUNG1-001", f"s3://{BUCKET}/{LUNG1_CT_UUID}/*"])
        writer.writerow(["LUNG1-002", "not a url"])
    got = read_manifest(table)
    assert got.entries == [f"s3://{BUCKET}/{LUNG1_CT_UUID}/"]
    assert got.problems == [("series.csv row 3", "neither a path nor a bucket URL: not a url")]
    tsv = tmp_path / "ids.tsv"
    tsv.write_text(f"crdc_series_uuid\tnote\n{LUNG1_CT_UUID}\tct\n", encoding="utf-8")
    assert read_manifest(tsv).idc_ids == [LUNG1_CT_UUID]
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"SeriesInstanceUID": [LUNG1_CT_UID]}), parquet)
    assert read_manifest(parquet).idc_ids == [LUNG1_CT_UID]


@pytest.mark.slow
def test_s5cmd_manifest_converts_and_names_the_unknown_line(
        tmp_path: Path, lung1: str, s3: S3Server, storage: StorageOptions) -> None:
    manifest = tmp_path / "idc.s5cmd"
    manifest.write_text(f"cp s3://{BUCKET}/{LUNG1_CT_UUID}/* .\nthis is not s5cmd\n",
                        encoding="utf-8")
    out = tmp_path / "out"
    rc = main(["convert", str(manifest), "-o", str(out), "--endpoint-url", s3.endpoint, "-q",
               "-j", "1"])
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert rc == 1
    assert report["errors"] == [{"File": "idc.s5cmd line 2",
                                 "Error": "neither a path nor a bucket URL: this is not s5cmd"}]
    assert [v["Frames"] for v in report["volumes"]] == [LUNG1_CT_COUNT]
    assert report["idc"]["series"][0]["complete"] is True


def test_local_idc_download_tree_is_checked(tmp_path: Path, corpus: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``--idc-check`` on the layout ``idc download`` makes, with one file missing."""
    folder = (tmp_path / "nsclc_radiomics" / "LUNG1-001" / LUNG1_STUDY_UID
              / f"CT_{LUNG1_CT_UID}")
    folder.mkdir(parents=True)
    for path in sorted((corpus / "ct_lung1" / "image").iterdir())[1:]:
        (folder / path.name).symlink_to(path)
    rc = main(["inspect", str(tmp_path / "nsclc_radiomics"), "--idc-check", "--json", "-q"])
    rows = json.loads(capsys.readouterr().out)
    (series,) = rows["idc"]["series"]
    assert rc == 1 and series["complete"] is False
    assert (series["listed_objects"], series["idc_instance_count"]) == (133, 134)


def test_prior_versions_list_a_series_earlier_folders() -> None:
    import duckdb

    prior = Path(idc.index_path()).with_name("prior_versions_index.parquet")
    uid, uuid = duckdb.execute(
        f"SELECT SeriesInstanceUID, crdc_series_uuid FROM read_parquet('{prior}') "
        "ORDER BY SeriesInstanceUID, crdc_series_uuid LIMIT 1").fetchall()[0]
    assert uuid in idc.revisions([uid])[uid]
    assert idc.revisions(["1.2.3.not.a.series"]) == {}

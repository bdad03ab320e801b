"""s3:// inputs against a local S3 server holding IDC's real LUNG1-001 layout.

The server (moto, 127.0.0.1) counts every request it answers, so the tests
assert what went over the wire: one LIST per folder, one GET per object in the
header pass (a few bytes of each) and one per object during conversion.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dicomvol.api import convert, scan
from dicomvol.cli.main import main
from dicomvol.dicom.index import index_file
from dicomvol.inputs import fs
from dicomvol.inputs.discover import Candidate
from dicomvol.options import ConvertOptions, StorageOptions
from s3server import BUCKET, LUNG1_CT_BYTES, LUNG1_CT_COUNT, LUNG1_CT_UUID, S3Server

pytestmark = pytest.mark.corpus


def _images(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.nii*"))}


def _payloads(images: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 of each image's NIfTI bytes: a .nii.gz decompressed, because its gzip stream
    depends on the compression threads a job was given (one per job with ``-j 2``)."""
    return {name: hashlib.sha256(gzip.decompress(data) if name.endswith(".gz") else data
                                 ).hexdigest() for name, data in images.items()}


def _sidecar_without_files(path: Path) -> dict[str, Any]:
    meta = json.loads(path.read_text(encoding="utf-8"))
    files = [s.pop("File") for s in meta["SourceInstances"]]
    assert all(files)
    meta.pop("DicomvolPlanDigest")  # keys on the source objects (their URLs): --resume
    return meta


def _full_gets(server: S3Server) -> list[str]:
    return [r.path for r in server.log() if r.is_object_get and r.range is None]


@pytest.mark.slow
def test_bucket_gives_the_same_volumes_as_the_local_folder(
        tmp_path: Path, corpus: Path, lung1: str, s3: S3Server,
        storage: StorageOptions) -> None:
    local = convert([corpus / "ct_lung1" / "image"], tmp_path / "local", ConvertOptions(jobs=1))
    s3.reset_log()
    remote = convert([lung1], tmp_path / "remote", ConvertOptions(jobs=1, storage=storage))

    assert local.ok and remote.ok, remote.to_json()["errors"]
    assert len(remote.outputs) == 1
    local_images, remote_images = _images(tmp_path / "local"), _images(tmp_path / "remote")
    assert list(local_images) == list(remote_images)
    # byte for byte, compared by digest: a difference names the image and says whether the
    # voxels differ or only the gzip stream, where a diff of the bytes kept pytest's
    # difflib busy for minutes (seen once on a fresh CI clone, not reproduced since)
    assert {n: (hashlib.sha256(d).hexdigest(), _payloads({n: d})[n])
            for n, d in local_images.items()} == {
        n: (hashlib.sha256(d).hexdigest(), _payloads({n: d})[n])
        for n, d in remote_images.items()}
    for name in local_images:
        stem = name.split(".nii")[0] + ".json"
        assert (_sidecar_without_files(tmp_path / "local" / stem)
                == _sidecar_without_files(tmp_path / "remote" / stem))
    files = json.loads((tmp_path / "remote" / stem).read_text())["SourceInstances"]
    assert all(f["File"].startswith(lung1) for f in files)
    # one fetch per object during convert (after the ranged header pass), one LIST
    full = _full_gets(s3)
    assert len(full) == LUNG1_CT_COUNT and len(set(full)) == LUNG1_CT_COUNT
    assert sum(r.is_list for r in s3.log()) == 1
    idc = remote.to_json()["idc"]
    assert idc["series"][0]["complete"] is True
    # a process pool: each forked worker builds its own client
    s3.reset_log()
    pooled = convert([lung1], tmp_path / "pool", ConvertOptions(jobs=2, storage=storage))
    assert pooled.ok and _payloads(_images(tmp_path / "pool")) == _payloads(remote_images)
    assert len(_full_gets(s3)) == LUNG1_CT_COUNT


def test_inspect_reads_a_tenth_of_the_bytes_with_one_get_per_object(
        lung1: str, s3: S3Server, storage: StorageOptions,
        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["inspect", lung1, "--endpoint-url", s3.endpoint, "--json", "-q"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0
    log = s3.log()
    gets = [r for r in log if r.is_object_get]
    assert sum(r.is_list for r in log) == 1
    assert len(gets) == LUNG1_CT_COUNT and len({r.path for r in gets}) == LUNG1_CT_COUNT
    assert all(r.range is not None for r in gets)
    fetched = sum(r.sent for r in gets)
    assert fetched <= LUNG1_CT_BYTES / 10, fetched
    assert [v["Files"] for v in rows["volumes"]] == [LUNG1_CT_COUNT]
    assert rows["idc"]["series"][0]["listed_bytes"] == LUNG1_CT_BYTES


@pytest.mark.slow
def test_inspect_takes_at_most_twice_one_batch_of_range_gets(
        lung1: str, s3: S3Server, storage: StorageOptions) -> None:
    """The header pass against the floor: one concurrent batch of 134 range GETs."""
    urls = [u for u, _ in fs.list_objects(lung1)]

    def batch() -> float:
        client = fs.filesystem(lung1)
        start = time.perf_counter()
        got = client.cat_ranges([u.split("://", 1)[1] for u in urls], [0] * len(urls),
                                [fs.HEAD_BYTES] * len(urls))
        assert all(len(g) == fs.HEAD_BYTES for g in got)
        return time.perf_counter() - start

    def inspect() -> float:
        start = time.perf_counter()
        result = scan([lung1], storage=storage)
        assert len(result.plans) == 1
        return time.perf_counter() - start

    scan([lung1], storage=storage)  # warm: imports, the client
    floor = min(batch() for _ in range(3))
    took = min(inspect() for _ in range(3))
    print(f"\ninspect of {len(urls)} objects: {took:.3f} s; "
          f"one batch of {len(urls)} range GETs: {floor:.3f} s ({took / floor:.2f}x)")
    assert took <= 2 * floor + 0.05  # 50 ms for scheduling noise on a shared machine


def test_large_header_is_parsed_completely(tmp_path: Path, corpus: Path, s3: S3Server,
                                           storage: StorageOptions) -> None:
    """A Siemens mosaic whose header (~120 KB) outgrows the first range read."""
    source = corpus / "mr_4d_nih" / "20180918Si" / "mr_0005" / "epi_pe_rl-00001.dcm"
    s3.public_bucket("mosaic")
    s3.client().put_object(Bucket="mosaic", Key="series/one.dcm", Body=source.read_bytes())
    url = "s3://mosaic/series/one.dcm"
    s3.reset_log()
    result = scan(["s3://mosaic/series/"], storage=storage)
    local = index_file(Candidate(str(source), source.name))
    remote = [f for p in result.plans for f in p.all_frames]
    assert not result.errors and len(remote) == len(local.frames) > 1  # the mosaic's tiles
    for a, b in zip(sorted(local.frames, key=lambda f: f.tile or 0),
                    sorted(remote, key=lambda f: f.tile or 0), strict=True):
        assert a.pixel_offset == b.pixel_offset and a.orientation == b.orientation
        assert a.position == b.position and a.tile == b.tile and a.rows == b.rows
    gets = [r for r in s3.log() if r.is_object_get]
    assert len(gets) == 2  # the first read ended inside the header: read again, longer
    assert gets[0].sent == fs.head_length(source.stat().st_size) < gets[1].sent
    assert url.endswith(gets[0].path.split("/")[-1])


@pytest.mark.slow
def test_a_missing_object_makes_the_series_incomplete(
        tmp_path: Path, corpus: Path, lung1: str, s3: S3Server, storage: StorageOptions,
        capsys: pytest.CaptureFixture[str]) -> None:
    client = s3.client()
    s3.public_bucket("broken")
    keys = sorted(o["Key"] for o in client.list_objects_v2(
        Bucket=BUCKET, Prefix=LUNG1_CT_UUID + "/")["Contents"])
    for key in keys[:60] + keys[61:]:  # one object gone from the middle
        client.copy_object(Bucket="broken", Key=key, CopySource={"Bucket": BUCKET, "Key": key})
    broken = f"s3://broken/{LUNG1_CT_UUID}/"

    out = tmp_path / "broken"
    rc = main(["convert", broken, "-o", str(out), "--endpoint-url", s3.endpoint, "-q", "-j", "1"])
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert rc == 1
    series = report["idc"]["series"]
    assert len(series) == 1 and series[0]["complete"] is False
    assert (series[0]["listed_objects"], series[0]["idc_instance_count"]) == (133, 134)
    assert series[0]["listed_bytes"] < LUNG1_CT_BYTES
    assert report["idc"]["idc_version"].startswith("v")

    out = tmp_path / "intact"
    rc = main(["convert", lung1, "-o", str(out), "--endpoint-url", s3.endpoint, "-q", "-j", "1"])
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert rc == 0
    (series,) = report["idc"]["series"]
    assert series["complete"] is True
    assert (series["listed_objects"], series["listed_bytes"]) == (134, LUNG1_CT_BYTES)
    assert series["crdc_series_uuid"] == LUNG1_CT_UUID
    assert series["license_short_name"] == "CC BY-NC 3.0"
    table = _table(out)
    assert table[0]["complete"] in (True, "True")
    assert int(table[0]["idc_instance_count"]) == 134
    assert int(table[0]["listed_bytes"]) == LUNG1_CT_BYTES
    assert str(table[0]["idc_version"]) == report["idc"]["idc_version"]


def _table(out: Path) -> list[dict[str, Any]]:
    parquet = out / "dicomvol_report.parquet"
    if parquet.exists():
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(parquet).to_pylist()
        return rows
    import csv

    with open(out / "dicomvol_report.csv", newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp))


def test_non_dcm_objects_are_ignored(s3: S3Server, lung1: str, storage: StorageOptions,
                                     corpus: Path) -> None:
    s3.public_bucket("mixed")
    body = next((corpus / "ct_lung1" / "image").iterdir()).read_bytes()
    s3.client().put_object(Bucket="mixed", Key="s/a.dcm", Body=body)
    s3.client().put_object(Bucket="mixed", Key="s/README.txt", Body=b"hello")
    result = scan(["s3://mixed/s/"], storage=storage)
    assert [i.reason for i in result.ignored] == ["not a .dcm object"]
    assert result.ignored[0].rel == "s3://mixed/s/README.txt"
    assert sum(len(p.all_frames) for p in result.plans) + len(result.skipped) == 1
    assert not [r for r in s3.log() if r.is_object_get and r.path.endswith("README.txt")]


def test_anonymous_client_and_endpoint_from_the_environment(
        s3: S3Server, lung1: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    fs.configure(StorageOptions(retries=3))
    try:
        client = fs.filesystem(lung1)
        assert client.anon is True
        assert len(fs.list_objects(lung1)) == LUNG1_CT_COUNT
    finally:
        fs.configure(StorageOptions())
        fs.forget_listings()


@pytest.mark.slow
def test_throttled_requests_are_retried(lung1: str, s3: S3Server,
                                        storage: StorageOptions) -> None:
    """503 SlowDown on 20 GETs: the header pass backs off and retries; nothing is lost."""
    s3.throttle(20)
    result = scan([lung1], storage=storage)
    assert not result.errors
    assert [len(p.all_frames) for p in result.plans] == [LUNG1_CT_COUNT]
    log = s3.log()
    assert sum(r.status == 503 for r in log) == 20
    assert sum(r.is_object_get and r.status == 206 for r in log) == LUNG1_CT_COUNT


def test_seg_label_maps_from_the_bucket_equal_the_local_ones(
        tmp_path: Path, corpus: Path, s3: S3Server, storage: StorageOptions) -> None:
    root = corpus / "seg_highdicom"
    names = ["ct_image.dcm", "seg_image_ct_binary.dcm", "seg_image_ct_binary_overlap.dcm"]
    local_in = tmp_path / "in"
    local_in.mkdir()
    s3.public_bucket("segs")
    for name in names:
        (local_in / name).symlink_to(root / name)
        s3.client().put_object(Bucket="segs", Key=f"s/{name}", Body=(root / name).read_bytes())
    local = convert([local_in], tmp_path / "local", ConvertOptions(jobs=1))
    s3.reset_log()
    remote = convert(["s3://segs/s/"], tmp_path / "remote", ConvertOptions(jobs=1, storage=storage))
    assert local.ok and remote.ok, remote.to_json()["errors"]
    assert len(remote.outputs) == len(local.outputs) == 3  # the CT and two label maps
    files = sorted(p.name for p in (tmp_path / "local").iterdir() if p.is_file())
    assert files == sorted(p.name for p in (tmp_path / "remote").iterdir() if p.is_file())
    for name in files:
        if name.startswith("dicomvol_report"):
            continue
        mine, theirs = tmp_path / "local" / name, tmp_path / "remote" / name
        if name.endswith(".json"):
            a = json.loads(mine.read_text())
            b = json.loads(theirs.read_text().replace("s3://segs/s/", ""))
            a.pop("DicomvolPlanDigest", None)
            b.pop("DicomvolPlanDigest", None)
            assert a == b, name
        else:
            assert mine.read_bytes() == theirs.read_bytes(), name
    # each object downloaded once: in full, or by a header read that was the whole object
    # (these SEGs are smaller than the first header range; whether the job reuses that
    # read or fetches again depends on what the header pass still holds)
    gets = [(r.path, r.range) for r in s3.log() if r.is_object_get]
    for name in names:
        size = (root / name).stat().st_size
        full = [g for g in gets if g == (f"/segs/s/{name}", None)]
        whole = [g for g in gets if g == (f"/segs/s/{name}", f"bytes=0-{size - 1}")]
        assert len(full) <= 1 and (full or whole), (name, gets)

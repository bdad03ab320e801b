"""gs:// inputs: a smoke test against a local GCS emulator (gcp-storage-emulator, 127.0.0.1)."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import skip_or_fail
from dicomvol.api import convert
from dicomvol.inputs import fs
from dicomvol.options import ConvertOptions, StorageOptions

pytestmark = pytest.mark.corpus


@pytest.fixture()
def gcs() -> Iterator[str]:
    """An in-memory GCS emulator on 127.0.0.1 with the bucket ``idc-open-cr``; its endpoint."""
    try:
        from gcp_storage_emulator.server import create_server
    except ImportError:
        skip_or_fail("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server: Any = create_server("127.0.0.1", port, in_memory=True, default_bucket="idc-open-cr")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        fs.configure(StorageOptions())
        fs.forget_listings()


def test_gs_folder_converts_like_the_local_files(gcs: str, corpus: Path, tmp_path: Path) -> None:
    from gcsfs.core import GCSFileSystem

    slices = sorted((corpus / "ct_lung1" / "image").iterdir())[:6]
    local = tmp_path / "local_in"
    local.mkdir()
    uploader = GCSFileSystem(endpoint_url=gcs, token="anon")
    for path in slices:
        shutil.copy(path, local / path.name)
        uploader.pipe_file(f"idc-open-cr/smoke/{path.name}", path.read_bytes())

    want = convert([local], tmp_path / "local", ConvertOptions(jobs=1))
    got = convert(["gs://idc-open-cr/smoke/"], tmp_path / "remote",
                  ConvertOptions(jobs=1, storage=StorageOptions(endpoint_url=gcs)))
    assert want.ok and got.ok, got.to_json()["errors"]
    images = sorted(p.name for p in (tmp_path / "local").glob("*.nii.gz"))
    assert images and images == sorted(p.name for p in (tmp_path / "remote").glob("*.nii.gz"))
    for name in images:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "remote" / name).read_bytes()
        sidecar = tmp_path / "remote" / name.replace(".nii.gz", ".json")
        files = [s["File"] for s in json.loads(sidecar.read_text())["SourceInstances"]]
        assert len(files) == len(slices)
        assert all(f.startswith("gs://idc-open-cr/smoke/") for f in files)

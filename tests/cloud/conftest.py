"""Fixtures for the cloud tests: a local S3 server holding IDC's LUNG1-001 layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomvol.inputs import fs
from dicomvol.options import StorageOptions
from s3server import BUCKET, LUNG1_CT_UUID, S3Server, sop_instance_key

#: LUNG1-001's RTSTRUCT series folder (``ct_lung1/mask_rtstruct`` byte for byte).
LUNG1_RTSTRUCT_UUID = "1ba3cf27-75e2-4c5c-82f7-d67bdade722b"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 for this session (stopped in teardown)."""
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lung1(s3: S3Server, corpus: Path) -> str:
    """IDC's bucket rebuilt: the LUNG1-001 CT and RTSTRUCT under their crdc_series_uuids.

    Objects are named ``<SOPInstanceUID>.dcm`` (the shipped index has no instance UUIDs).
    Returns the CT folder's URL.
    """
    s3.public_bucket(BUCKET)
    s3.upload_folder(corpus / "ct_lung1" / "image", BUCKET, LUNG1_CT_UUID, sop_instance_key)
    s3.upload_folder(corpus / "ct_lung1" / "mask_rtstruct", BUCKET, LUNG1_RTSTRUCT_UUID,
                     sop_instance_key)
    return f"s3://{BUCKET}/{LUNG1_CT_UUID}/"


@pytest.fixture()
def storage(s3: S3Server) -> Iterator[StorageOptions]:
    """StorageOptions for the local server, configured in this process; reset afterwards."""
    options = StorageOptions(endpoint_url=s3.endpoint)
    fs.configure(options)
    s3.reset_log()
    yield options
    fs.configure(StorageOptions())
    fs.forget_listings()

"""Fuzzing the whole pipeline (hypothesis): a small study with one damaged file.

Each example converts a folder of good series (regular, tilted, with a gap)
beside one file damaged in one way: truncated at a structural boundary,
bytes flipped, an absurd or odd length, a wrong VR, garbled geometry or
numbers, sequences nested deep. Whatever the damage: ``convert`` returns
(no exception escapes), writes its report, the frame ledger balances, the
independent accounting check holds, and every written volume passes the
exactness check against the files (the resampled ones the resampling check).

Derandomized and bounded (well under a minute on 2 cores), so CI runs the
same examples.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dicomvol
from dicomvol.options import ConvertOptions
from dicomvol.testing import (
    deterministic_uids,
    element_offsets,
    write_nested_sequences,
    write_raw_value,
    write_series,
)
from exactness import assert_accounted, check_exact, check_resampled

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Attributes whose values are garbled (keyword, raw bytes, VR or None for the dictionary's).
GARBLE = [
    ("NumberOfFrames", b"1A", None), ("NumberOfFrames", b"99999999", None),
    ("Rows", b"\xff\xff", b"US"), ("Columns", b"\x00\x00", b"US"),
    ("ImagePositionPatient", b"1\\x\\3", None), ("ImagePositionPatient", b"", None),
    ("ImageOrientationPatient", b"1\\0\\0\\0\\1\\nan", None),
    ("ImageOrientationPatient", b"0\\0\\0\\0\\0\\0", None),
    ("PixelSpacing", b"0.5", b"FD"), ("PixelSpacing", b"-1\\0", None),
    ("SliceThickness", b"inf", None), ("RescaleSlope", b"1e999", None),
    ("RescaleIntercept", b"abc", None), ("BitsAllocated", b"\x07\x00", b"US"),
    ("SamplesPerPixel", b"\x03\x00", b"US"), ("InstanceNumber", b"1.5.3", None),
    ("SeriesInstanceUID", b"", None), ("SOPInstanceUID", b"\x00\x00", None),
]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small good series: regular, tilted, with a gap of one slice."""
    root = tmp_path_factory.mktemp("fuzz_study")
    with deterministic_uids():  # the same bytes on every run: reproducible examples
        write_series(root / "regular", shape=(6, 5, 4), series_number=1, shuffle_seed=None)
        write_series(root / "tilted", shape=(6, 5, 3), series_number=2, shuffle_seed=None,
                     positions=[(0.0, 0.0, 0.0), (0.0, 0.5, 2.0), (0.0, 1.0, 4.0)])
        write_series(root / "gap", shape=(6, 5, 4), series_number=3, shuffle_seed=None,
                     positions=[(0.0, 0.0, z) for z in (0.0, 2.0, 4.0, 8.0)])
    return root


def _damage(data: bytes, how: str, n: int, m: int, tmp: Path) -> bytes:
    """``data`` damaged in one way; ``n``, ``m`` pick where and how."""
    elements = element_offsets(data)
    tag, value, _, _ = elements[n % len(elements)]
    out = bytearray(data)
    if how == "truncate":
        cut = (tag, tag + 4, tag + 6, value, value + 1)[m % 5]
        return data[:cut]
    if how == "flip":
        for k in range(1 + m % 4):
            out[(n * 7919 + k * 104729) % len(out)] ^= 1 + (m + k) % 255
        return bytes(out)
    if how == "length":
        length = (0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 1, 3, 0xFFFF)[m % 6]
        if value - tag == 12:
            struct.pack_into("<I", out, tag + 8, length)
        else:
            struct.pack_into("<H", out, tag + 6, length & 0xFFFF)
        return bytes(out)
    if how == "vr":
        out[tag + 4:tag + 6] = (b"SQ", b"OB", b"UN", b"FD", b"XX", b"\x00\x00")[m % 6]
        return bytes(out)
    src = tmp / "src"
    src.write_bytes(data)
    if how == "nest":
        return write_nested_sequences(src, tmp / "nested", (2, 65, 10_000)[m % 3]).read_bytes()
    keyword, raw, vr = GARBLE[n % len(GARBLE)]
    return write_raw_value(src, tmp / "garbled", keyword, raw, vr).read_bytes()


def _check_run(inp: Path, out: Path) -> None:
    report = dicomvol.convert([inp], out, ConvertOptions(jobs=1))
    written: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    assert written["ledger"]["balanced"] is True, (written["ledger"], written["errors"])
    assert report.ledger is not None and report.ledger.frames_in == written["ledger"][
        "frames_in"]
    assert not [e for e in written["errors"] if e["Error"].startswith("internal")], (
        written["errors"])
    assert_accounted(inp, out)
    for volume in written["volumes"]:
        if volume["Resampled"]:
            check_resampled(out / volume["Path"], [inp])
        else:
            check_exact(out / volume["Path"], [inp])


@FUZZ
@given(series=st.sampled_from(["regular", "tilted", "gap"]), slice_=st.integers(0, 3),
       how=st.sampled_from(["truncate", "flip", "length", "vr", "nest", "garble"]),
       n=st.integers(0, 10_000), m=st.integers(0, 10_000))
def test_pipeline_on_one_damaged_file(study: Path, series: str, slice_: int, how: str,
                                      n: int, m: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inp = tmp / "in"
        shutil.copytree(study, inp)
        files = sorted((inp / series).iterdir())
        victim = files[slice_ % len(files)]
        victim.write_bytes(_damage(victim.read_bytes(), how, n, m, tmp))
        _check_run(inp, tmp / "out")

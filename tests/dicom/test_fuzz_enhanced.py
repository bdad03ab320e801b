"""Fuzzing the Enhanced MR fast paths (shared sequences, frame memo, header cut).

Damage in the functional groups of a small Philips enhanced DWI file: flipped bytes and
odd lengths. Whatever the damage: the lean walk and the header cut return a result or
None (never raise), indexing gives frames or one entry naming the file (never an
internal error), and the lean records are exactly those the lean reader gives without
sharing sequences or memoising (the fast paths change nothing, damaged files included).
On damaged groups the lean reader and pydicom may read differently (pydicom can lose
the groups of every later frame where the lean walk keeps them): that is not compared.
Derandomized and bounded (a few seconds).
"""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomvol.dicom import leanitems, leanmf
from dicomvol.dicom.framememo import Bound
from dicomvol.dicom.header import read_header_from
from dicomvol.dicom.index import index_file
from dicomvol.dicom.leanitems import parse_sequence
from dicomvol.dicom.leanmf import first_frame_only, read_enhanced
from dicomvol.errors import DicomvolError
from dicomvol.inputs.discover import Candidate
from dicomvol.testing import deterministic_uids
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on damaged values
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("fuzz_enhanced")
    with deterministic_uids():
        series = write_dwi_series(root, "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (0, 0, 1)),
                                                    DwiVolume(1000.0, (0, 1, 0))],
                                  enhanced=True, shape=(4, 3), n_slices=2)
    return Path(series.paths[0]).read_bytes()


def _plain(bound: Bound, item: Any) -> Any:
    """A memoised call made every time."""
    return bound._fn(bound._ds, item, *bound._rest)


def _check(data: bytes, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_enhanced(io.BytesIO(data))  # never raises
    cut = first_frame_only(data)  # never raises; when it cuts, pydicom reads the result
    if cut is not None:
        with contextlib.suppress(DicomvolError):
            read_header_from(io.BytesIO(cut), False)
    path = tmp / "F"
    path.write_bytes(data)
    results = [index_file(Candidate(str(path), "F"), lean=lean) for lean in (True, False)]
    for result in results:
        entries = len(result.ignored) + len(result.errors)
        assert (result.frames and not entries) or (not result.frames and entries == 1), result
        assert not [e for e in result.errors if e.error.startswith("internal")], result
    with monkeypatch.context() as patch:  # the lean reader without its shortcuts: no
        patch.setattr(leanitems, "SHARED_MAX", -1)  # shared sequences, no per-frame table,
        patch.setattr(leanmf, "read_table", parse_sequence)  # no memo
        patch.setattr(Bound, "__call__", _plain)
        plain = index_file(Candidate(str(path), "F"))
    # by repr: a damaged value may be NaN on both sides (NaN != NaN, and dataclass equality
    # compares NaN by identity)
    assert [repr(r) for r in results[0].frames] == [repr(r) for r in plain.frames]
    assert [e.error for e in results[0].errors] == [e.error for e in plain.errors]


def _groups_start(data: bytes) -> int:
    return data.find(b"\x00\x52\x30\x92")  # PerFrameFunctionalGroupsSequence


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1,
                      max_size=6))
def test_flipped_bytes_in_the_functional_groups(enhanced: bytes,
                                                tmp_path_factory: pytest.TempPathFactory,
                                                monkeypatch: pytest.MonkeyPatch,
                                                flips: list[tuple[int, int]]) -> None:
    data = bytearray(enhanced)
    start = _groups_start(enhanced)
    pixels = enhanced.rfind(b"\xe0\x7f\x10\x00")
    for offset, mask in flips:
        data[start + offset % (pixels - start)] ^= mask
    _check(bytes(data), tmp_path_factory.mktemp("flip"), monkeypatch)


@FUZZ
@given(offset=st.integers(0, 1 << 16),
       length=st.sampled_from([0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x10001, 0, 1, 3, 8]))
def test_odd_lengths_in_the_functional_groups(enhanced: bytes,
                                              tmp_path_factory: pytest.TempPathFactory,
                                              monkeypatch: pytest.MonkeyPatch,
                                              offset: int, length: int) -> None:
    """A 4-byte length written over any aligned place of the groups (items, sequences)."""
    data = bytearray(enhanced)
    start = _groups_start(enhanced)
    pixels = enhanced.rfind(b"\xe0\x7f\x10\x00")
    at = start + (offset % ((pixels - start) // 2)) * 2
    struct.pack_into("<I", data, at, length)
    _check(bytes(data), tmp_path_factory.mktemp("len"), monkeypatch)

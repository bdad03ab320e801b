"""Fuzzing the header reader (lean and pydicom) on damaged files (hypothesis).

Damage: truncation at every structural boundary (each element's tag, length
and value start), flipped bytes, huge or odd lengths, wrong VRs, undefined
length sequences nested up to 10,000 deep. Whatever the damage: the lean
reader returns a result or None (never raises), the pydicom reader raises
only dicomvol's own errors, and indexing a file gives frames, an ignored
entry or an error naming the file, never an exception. When both readers
succeed they agree on every frame record.

Derandomized and bounded (a few seconds), so CI runs the same examples.
"""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomvol.dicom.header import read_header_from
from dicomvol.dicom.index import index_file
from dicomvol.dicom.lean import read_lean
from dicomvol.errors import DicomvolError
from dicomvol.inputs.discover import Candidate
from dicomvol.testing import (
    deterministic_uids,
    element_offsets,
    write_nested_sequences,
    write_series,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on damaged values
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One explicit and one implicit VR little-endian CT file."""
    root = tmp_path_factory.mktemp("fuzz_header")
    with deterministic_uids():  # the same bytes on every run: reproducible examples
        explicit = write_series(root / "e", shape=(6, 4, 1), shuffle_seed=None)
        implicit = write_series(root / "i", shape=(6, 4, 1), shuffle_seed=None,
                                transfer_syntax=pydicom.uid.ImplicitVRLittleEndian)
    return {"explicit": explicit.paths[0].read_bytes(),
            "implicit": implicit.paths[0].read_bytes()}


def _check(data: bytes, tmp: Path, name: str = "F") -> list[Any]:
    """The reader's promises on one (damaged) file; the index results (lean, pydicom)."""
    found = read_lean(io.BytesIO(data), len(data))  # never raises
    assert found is None or found[3] >= 0
    # only NotDicomError, HeaderError, PixelDataError (each reported by name) may come out
    with contextlib.suppress(DicomvolError):
        read_header_from(io.BytesIO(data))
    path = tmp / name
    path.write_bytes(data)
    results = [index_file(Candidate(str(path), name), lean=lean) for lean in (True, False)]
    for result in results:
        entries = len(result.ignored) + len(result.errors)
        assert (result.frames and not entries) or (not result.frames and entries == 1), (
            result)
        assert all(e.rel == name and e.error for e in result.errors)
    lean, full = results
    if lean.frames and full.frames:  # both read it: the same placement and values
        assert [_placed(f) for f in lean.frames] == [_placed(f) for f in full.frames]
    return results


#: What places a frame and decides its values (garbled text, e.g. a backslash flipped into
#: a UID, may read differently and harms nothing).
PLACED = ("frame", "number_of_frames", "rows", "columns", "samples_per_pixel",
          "bits_allocated", "bits_stored", "pixel_representation", "transfer_syntax",
          "orientation", "position", "pixel_spacing", "rescale_slope", "rescale_intercept",
          "pixel_offset")


def _placed(frame: Any) -> tuple[Any, ...]:
    return tuple(getattr(frame, name) for name in PLACED)


def _boundaries(data: bytes) -> list[int]:
    cuts = set()
    for tag, value, _, _ in element_offsets(data):
        cuts.update((tag, tag + 4, tag + 6, value - 1, value, value + 1))
    return sorted(c for c in cuts if 0 < c < len(data))


def test_truncation_at_every_structural_boundary(valid: dict[str, bytes],
                                                 tmp_path: Path) -> None:
    data = valid["explicit"]
    cuts = [*_boundaries(data), 64, 128, 131, 132, 140]
    for cut in cuts:
        for result in _check(data[:cut], tmp_path, f"cut{cut}"):
            # a cut file is damage the readers name, never an internal error (a bug)
            assert not [e for e in result.errors if e.error.startswith("internal")], result
    assert len(cuts) > 60  # every element of the header, three ways


@FUZZ
@given(kind=st.sampled_from(["explicit", "implicit"]),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1,
                      max_size=8))
def test_flipped_bytes(valid: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory,
                       kind: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray(valid[kind])
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    _check(bytes(data), tmp_path_factory.mktemp("flip"))


@FUZZ
@given(element=st.integers(0, 1000),
       length=st.sampled_from([0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x10001, 1, 3, 0xFFFF]),
       vr=st.one_of(st.none(), st.sampled_from([b"SQ", b"OB", b"UN", b"FD", b"US", b"XX",
                                                 b"\x00\x00", b"ss"])))
def test_odd_lengths_and_wrong_vrs(valid: dict[str, bytes],
                                   tmp_path_factory: pytest.TempPathFactory, element: int,
                                   length: int, vr: bytes | None) -> None:
    data = bytearray(valid["explicit"])
    elements = element_offsets(bytes(data))
    tag, value, _, _ = elements[element % len(elements)]
    if vr is not None:
        data[tag + 4:tag + 6] = vr
    if value - tag == 12:
        struct.pack_into("<I", data, tag + 8, length)
    else:
        struct.pack_into("<H", data, tag + 6, length & 0xFFFF)
    _check(bytes(data), tmp_path_factory.mktemp("len"))


@pytest.mark.parametrize("depth", [1, 63, 64, 65, 500, 10_000])
def test_nested_sequences(valid: dict[str, bytes], tmp_path: Path, depth: int) -> None:
    src = tmp_path / "src"
    src.write_bytes(valid["explicit"])
    data = write_nested_sequences(src, tmp_path / "nested", depth).read_bytes()
    _check(data, tmp_path)
    result = index_file(Candidate(str(tmp_path / "F"), "F"))
    if depth <= 64:  # the lean reader walks it
        assert len(result.frames) == 1
    else:  # deeper than pydicom can recurse, or read: either way one entry, never a crash
        assert len(result.frames) + len(result.errors) == 1

"""The lean header reader gives exactly the records pydicom gives."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomvol.dicom.index import index_file
from dicomvol.dicom.lean import read_lean
from dicomvol.dicom.results import IndexResult
from dicomvol.inputs.discover import Candidate, discover
from dicomvol.testing import write_series


def _via_pydicom(cand: Candidate) -> IndexResult:
    return index_file(cand, lean=False)


def _lean(path: str | Path) -> object:
    with open(path, "rb") as fp:
        return read_lean(fp, os.path.getsize(path))


def _same(a: IndexResult, b: IndexResult) -> list[str]:
    problems = []
    for fa, fb in zip(a.frames, b.frames, strict=False):
        for field in dataclasses.fields(fa):
            va, vb = getattr(fa, field.name), getattr(fb, field.name)
            if va != vb:
                problems.append(f"{fa.rel} {field.name}: lean {va!r} pydicom {vb!r}")
    if len(a.frames) != len(b.frames):
        problems.append(f"{len(a.frames)} vs {len(b.frames)} frames")
    if [e.error for e in a.errors] != [e.error for e in b.errors]:
        problems.append(f"errors {a.errors} vs {b.errors}")
    if [i.reason for i in a.ignored] != [i.reason for i in b.ignored]:
        problems.append(f"ignored {a.ignored} vs {b.ignored}")
    return problems


@pytest.mark.slow
def test_lean_reader_matches_pydicom_on_whole_corpus(corpus: Path) -> None:
    lean_used = 0
    for cand in discover([corpus]):
        if _lean(cand.path) is not None:
            lean_used += 1
        problems = _same(index_file(cand), _via_pydicom(cand))
        assert not problems, problems[:5]
    assert lean_used > 1000, "the fast path should serve most corpus files"


@pytest.mark.parametrize("syntax", [pydicom.uid.ExplicitVRLittleEndian,
                                    pydicom.uid.ImplicitVRLittleEndian])
def test_lean_reader_matches_pydicom_on_synthetic(tmp_path: Path, syntax: str) -> None:
    series = write_series(tmp_path, shape=(8, 6, 3), transfer_syntax=syntax, modality="MR",
                          per_slice={"EchoNumbers": [1, 1, 1]})
    for path in series.paths:
        cand = Candidate(str(path), path.name)
        assert _lean(path) is not None
        assert not _same(index_file(cand), _via_pydicom(cand))


def test_undefined_length_sequences_are_skipped(tmp_path: Path) -> None:
    series = write_series(tmp_path / "in", shape=(8, 6, 1))
    ds = pydicom.dcmread(series.paths[0])
    inner = Dataset()
    inner.ImagePositionPatient = [99, 99, 99]  # must not be taken for the image's own
    inner.ReferencedSOPInstanceUID = "1.2.3"
    nested = Dataset()
    nested.ReferencedImageSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([nested, inner])
    ds["ReferencedImageSequence"].is_undefined_length = True
    for item in ds.ReferencedImageSequence:
        item.is_undefined_length_sequence_item = True
    out = tmp_path / "seq.dcm"
    ds.save_as(out, enforce_file_format=True)
    cand = Candidate(str(out), out.name)
    assert _lean(out) is not None
    result = index_file(cand)
    assert not _same(result, _via_pydicom(cand))
    assert result.frames[0].position == tuple(series.positions[0])


def test_truncated_file_is_an_error_on_both_paths(tmp_path: Path) -> None:
    series = write_series(tmp_path / "in", shape=(16, 12, 1))
    whole = series.paths[0].read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) - 50])
    cand = Candidate(str(cut), cut.name)
    lean, slow = index_file(cand), _via_pydicom(cand)
    assert lean.errors and "truncated" in lean.errors[0].error
    assert not _same(lean, slow)


@pytest.mark.parametrize("change", ["big_endian", "philips", "mosaic", "no_preamble"])
def test_unusual_files_fall_back_to_pydicom(tmp_path: Path, change: str) -> None:
    series = write_series(tmp_path / "in", shape=(8, 6, 1),
                          transfer_syntax=(pydicom.uid.ExplicitVRBigEndian
                                           if change == "big_endian" else
                                           pydicom.uid.ExplicitVRLittleEndian))
    path = series.paths[0]
    if change in ("philips", "mosaic"):
        ds = pydicom.dcmread(path)
        if change == "philips":
            ds.Manufacturer = "Philips Medical Systems"
        else:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
        ds.save_as(path, enforce_file_format=True)
    if change == "no_preamble":
        copy = tmp_path / "raw.dcm"
        shutil.copy(path, copy)
        copy.write_bytes(path.read_bytes()[128 + 4:])
        path = copy
    assert _lean(path) is None


@pytest.mark.parametrize("vendor", ["Philips", "Canon", "SiemensXA"])
def test_lean_enhanced_reader_matches_pydicom(tmp_path: Path, vendor: str) -> None:
    """Enhanced MR (dicom/leanmf.py): the same records as pydicom, per-frame privates included."""
    from dicomvol.dicom.leanmf import read_enhanced
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    volumes = [DwiVolume(0.0), DwiVolume(1000.0, (0.6, 0.48, 0.64)),
               DwiVolume(1000.0, None, "trace"), DwiVolume(0.0, None, "adc")]
    write_dwi_series(tmp_path, vendor, volumes, enhanced=True)
    for cand in discover([tmp_path]):
        with open(cand.path, "rb") as fp:
            assert read_enhanced(fp) is not None
        lean, full = index_file(cand), index_file(cand, lean=False)
        assert not _same(lean, full)
        assert any(f.diffusion_derived == "trace" for f in lean.frames) or vendor == "SiemensXA"


def test_meta_element_with_a_wrong_vr_is_left_to_pydicom(tmp_path: Path) -> None:
    """A File Meta element whose VR is not its dictionary VR (here the group length as FD)
    sends the file to pydicom, which refuses it; the lean reader never reads on past it."""
    from dicomvol.dicom.lean import read_lean
    from dicomvol.testing import write_series

    path = write_series(tmp_path / "s", shape=(6, 5, 2), shuffle_seed=None).paths[0]
    data = bytearray(Path(path).read_bytes())
    assert data[132:136] == b"\x02\x00\x00\x00" and data[136:138] == b"UL"
    data[136:138] = b"FD"
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(bytes(data))
    with open(damaged, "rb") as fp:
        assert read_lean(fp, len(data)) is None


def test_meta_group_walked_once_gives_what_pydicom_reads(tmp_path: Path) -> None:
    """parse_meta returns the end of the meta group, the transfer syntax and the SOP
    class (what index needs to send a SEG to the splitter) as pydicom reads them."""
    from dicomvol.dicom.lean import HEAD_BYTES, parse_meta, read_meta

    for syntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian):
        path = write_series(tmp_path / syntax, shape=(6, 5, 1), transfer_syntax=syntax,
                            modality="MR").paths[0]
        head = Path(path).read_bytes()[:HEAD_BYTES]
        meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
        end, ts, sop_class = parse_meta(head)
        assert (ts, sop_class) == (meta.TransferSyntaxUID, meta.MediaStorageSOPClassUID)
        assert end == 144 + meta.FileMetaInformationGroupLength
        assert read_meta(head) == (end, ts)
    assert parse_meta(b"\0" * 200) == (None, "", "")  # no DICM: not Part 10


def test_lean_reader_on_a_head_already_read_equals_reading_it(tmp_path: Path) -> None:
    """index reads a file's head once and hands it on: the result is the reader's own."""
    from dicomvol.dicom.lean import HEAD_BYTES, parse_meta

    path = write_series(tmp_path, shape=(6, 5, 1), modality="MR").paths[0]
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        head = fp.read(HEAD_BYTES)
        given = read_lean(fp, size, (), head, parse_meta(head))
    own = _lean(path)
    assert given is not None and own is not None
    assert given[1:] == own[1:]  # type: ignore[index]
    assert given[0]._values == own[0]._values  # type: ignore[index]


def test_a_head_cut_inside_its_meta_group_is_left_to_pydicom(tmp_path: Path) -> None:
    """A file that ends inside its meta group: index reports it, never raises."""
    path = write_series(tmp_path / "s", shape=(6, 5, 1)).paths[0]
    data = Path(path).read_bytes()
    for cut in (140, 150, 170, 200):
        short = tmp_path / f"cut{cut}.dcm"
        short.write_bytes(data[:cut])
        result = index_file(Candidate(str(short), short.name))
        assert not result.frames and len(result.errors) + len(result.ignored) == 1


@pytest.mark.parametrize("layout", ["defined", "undefined"])
def test_an_enhanced_header_longer_than_the_first_read(tmp_path: Path, layout: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A header longer than the first read is read on to its PixelData (found by a walk
    of the top level, sequences skipped by length or delimiters) and parsed once: the
    same header as one read of it all; a file cut inside it is left to pydicom."""
    from dicomvol.dicom import leanmf
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    volumes = [DwiVolume(0.0), *(DwiVolume(1000.0, (0.0, 0.6, 0.8) if n % 2 else (0, 0, 1))
                                 for n in range(11))]
    series = write_dwi_series(tmp_path, "Philips", volumes, enhanced=True)
    path = Path(series.paths[0])
    if layout == "undefined":
        ds = pydicom.dcmread(path)
        ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
        for item in ds.PerFrameFunctionalGroupsSequence:
            item.is_undefined_length_sequence_item = True
        ds.save_as(path, enforce_file_format=True)
    with open(path, "rb") as fp:
        whole = leanmf.read_enhanced(fp)
    assert whole is not None
    monkeypatch.setattr(leanmf, "_FIRST_READ", 1024)  # the header is several times this
    reads: list[int] = []
    with open(path, "rb") as raw:
        class Counting:
            def read(self, n: int = -1) -> bytes:
                data = raw.read(n)
                reads.append(len(data))
                return data
        read_on = leanmf.read_enhanced(Counting())  # type: ignore[arg-type]
    assert read_on is not None and read_on[1:] == whole[1:]
    header = whole[2]  # PixelData's value offset: the header's length
    assert header > 16 * 1024 and sum(reads) < 4 * header + 1024  # never far past PixelData
    if layout == "undefined":  # each read walks the header again: the buffer grows fourfold
        assert len(reads) <= 2 + math.ceil(math.log(header / 1024, 4))
    assert read_on[0]._lean_values.keys() == whole[0]._lean_values.keys()
    frames = read_on[0].get("PerFrameFunctionalGroupsSequence")
    assert len(frames) == len(whole[0].get("PerFrameFunctionalGroupsSequence")) > 2
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:whole[1] - 100])  # inside the per-frame sequence
    with open(cut, "rb") as fp:
        assert leanmf.read_enhanced(fp) is None


def _undefined_dwi(tmp_path: Path, private_value: bytes | None = None) -> Path:
    """A Philips enhanced DWI file with undefined-length per-frame items; ``private_value``
    as an OB element at the top level, before the functional groups."""
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    volumes = [DwiVolume(0.0), *(DwiVolume(1000.0, (0.0, 0.6, 0.8)) for _ in range(5))]
    path = Path(write_dwi_series(tmp_path, "Philips", volumes, enhanced=True).paths[0])
    ds = pydicom.dcmread(path)
    ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
    for item in ds.PerFrameFunctionalGroupsSequence:
        item.is_undefined_length_sequence_item = True
    if private_value is not None:
        block = ds.private_block(0x0029, "DICOMVOL TEST", create=True)
        block.add_new(0x01, "OB", private_value)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_header_read_whole_is_parsed_without_a_walk_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PixelData's tag in the first read: the header is parsed at once (no walk of its
    undefined-length sequences to find where it ends)."""
    from dicomvol.dicom import leanmf

    path = _undefined_dwi(tmp_path)
    walks: list[int] = []
    real = leanmf._header_end
    monkeypatch.setattr(leanmf, "_header_end", lambda buf, pos: walks.append(pos) or
                        real(buf, pos))
    with open(path, "rb") as fp:
        found = leanmf.read_enhanced(fp)
    assert found is not None and not walks
    assert found[1] == path.read_bytes().rindex(b"\xe0\x7f\x10\x00OW")


def test_pixel_data_bytes_inside_a_value_do_not_end_the_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tag's bytes in a value before the functional groups, in a first read that ends
    inside them: the parse does not reach PixelData there, the buffer grows, and the header
    is the one a single read gives."""
    from dicomvol.dicom import leanmf

    fake = b"\xe0\x7f\x10\x00OW\x00\x00\x10\x00\x00\x00" * 4
    path = _undefined_dwi(tmp_path, fake)
    data = path.read_bytes()
    assert data.find(fake) < 4096 < data.rindex(b"\xe0\x7f\x10\x00OW")
    with open(path, "rb") as fp:
        whole = leanmf.read_enhanced(fp)
    monkeypatch.setattr(leanmf, "_FIRST_READ", 4096)
    with open(path, "rb") as fp:
        read_on = leanmf.read_enhanced(fp)
    assert whole is not None and read_on is not None and read_on[1:] == whole[1:]
    assert read_on[0].get((0x0029, 0x1001)).value == fake
    assert len(read_on[0].get("PerFrameFunctionalGroupsSequence")) == 6 * 4


def test_the_pixel_data_search_knows_every_pixel_data_tag() -> None:
    import struct

    from dicomvol.dicom import leanmf
    from dicomvol.dicom.tags import PIXEL_DATA_TAGS

    for tag in PIXEL_DATA_TAGS:
        assert leanmf._PIXEL_TAG_BYTES.fullmatch(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
    assert not leanmf._PIXEL_TAG_BYTES.search(struct.pack("<HH", 0x7FE0, 0x0020))

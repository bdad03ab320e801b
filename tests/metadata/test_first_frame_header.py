"""The sidecar reads one frame's groups: the header cut to the first item gives the same keys."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from dicomvol.dicom import cache
from dicomvol.dicom.cache import JobSources
from dicomvol.dicom.header import merged_header, read_header_from
from dicomvol.dicom.leands import LeanDataset
from dicomvol.dicom.leanmf import first_frame_only
from dicomvol.metadata.bids import bids_metadata
from dicomvol.metadata.slicetiming import _repetition_time_ms
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series


def _keys(data: bytes) -> tuple[dict[str, object], float | None]:
    ds, _ = read_header_from(io.BytesIO(data), False)
    return bids_metadata(merged_header(ds)), _repetition_time_ms(ds)


def _assert_same(path: Path) -> bool:
    """True when ``path`` was cut (and then gave the same keys as the whole header)."""
    data = path.read_bytes()
    cut = first_frame_only(data)
    if cut is None:
        return False
    assert len(cut) < len(data)
    short = pydicom.dcmread(io.BytesIO(cut), force=True)
    assert len(short.PerFrameFunctionalGroupsSequence) == 1
    assert _keys(cut) == _keys(data), path
    return True


@pytest.mark.parametrize("vendor", ["Philips", "Canon", "SiemensXA"])
def test_synthetic_enhanced_diffusion(tmp_path: Path, vendor: str) -> None:
    series = write_dwi_series(tmp_path, vendor, [DwiVolume(0.0), DwiVolume(1000.0, (0, 0, 1))],
                              enhanced=True)
    assert all(_assert_same(Path(p)) for p in series.paths)


def test_job_sources_parse_the_cut_header_once(tmp_path: Path) -> None:
    series = write_dwi_series(tmp_path, "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (0, 0, 1))],
                              enhanced=True)
    path = str(series.paths[0])
    sources = JobSources()
    first = sources.first_frame_header(path)
    assert first is sources.first_frame_header(path)
    assert len(first.PerFrameFunctionalGroupsSequence) == 1
    assert len(sources.header(path).PerFrameFunctionalGroupsSequence) == 8  # still whole


def test_nothing_to_cut_or_not_plain_gives_none(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomvol.testing import write_series

    classic = write_series(tmp_path / "c", shape=(6, 5, 2)).paths[0]
    assert first_frame_only(Path(classic).read_bytes()) is None
    series = write_dwi_series(tmp_path / "e", "Philips", [DwiVolume(0.0)], enhanced=True)
    data = Path(series.paths[0]).read_bytes()
    for cut in (200, len(data) // 3):
        assert first_frame_only(data[:cut]) is None  # truncated inside the header
    sources = JobSources()
    lean = sources.first_frame_header(str(classic))
    assert isinstance(lean, LeanDataset)  # a plain header: read without pydicom
    assert bids_metadata(lean) == bids_metadata(sources.header(str(classic)))
    monkeypatch.setattr(cache, "lean_dataset", lambda data: None)  # declined: pydicom's
    sources = JobSources()
    assert sources.first_frame_header(str(classic)) is sources.header(str(classic))


@pytest.mark.slow
def test_corpus_multiframe_files(corpus: Path) -> None:
    cut = sum(_assert_same(p) for p in sorted(corpus.rglob("*")) if p.is_file()
              and p.stat().st_size > 132 and p.read_bytes()[128:132] == b"DICM")
    assert cut > 0, "the corpus has multi-frame files the cut applies to"


@pytest.mark.parametrize("which", ["all", "items", "inner"])
def test_undefined_lengths_are_skipped_by_their_delimiters(tmp_path: Path, which: str) -> None:
    """Per-frame sequence, its items and their sequences of undefined length (as some
    scanners write them): the same keys, and a file cut short gives None."""
    series = write_dwi_series(tmp_path, "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (0, 0, 1))],
                              enhanced=True)
    path = Path(series.paths[0])
    ds = pydicom.dcmread(path)
    ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = which == "all"
    for item in ds.PerFrameFunctionalGroupsSequence:
        item.is_undefined_length_sequence_item = which in ("all", "items")
        for elem in item:
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for sub in elem.value:
                    sub.is_undefined_length_sequence_item = True
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert b"\xfe\xff\xdd\xe0" in data  # sequence delimiters written
    assert _assert_same(path)
    start, pixels = data.find(b"\x00\x52\x30\x92"), data.rfind(b"\xe0\x7f\x10\x00")
    assert 0 < start < pixels
    for cut in (start + 30, start + 700, pixels - 10):  # inside the per-frame sequence
        assert first_frame_only(data[:cut]) is None

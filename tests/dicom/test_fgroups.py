"""The per-frame functional-group walker gives exactly the records pydicom gives."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pydicom
import pytest

import dicomvol.dicom.frames as frames_module
from dicomvol.dicom.fgroups import Memo, split_per_frame
from dicomvol.dicom.index import IndexResult, index_file, index_split
from dicomvol.inputs.discover import Candidate, discover

#: Corpus folders with enhanced multi-frame objects (SEG, enhanced MR, slides).
MULTI_FRAME = ("seg_dcmqi", "seg_highdicom", "pet_wholebody_seg", "enhanced_mr", "edge_cases",
               "slide_cmu")


def _multi_frame(corpus: Path) -> list[Candidate]:
    found = []
    for cand in discover([corpus / name for name in MULTI_FRAME]):
        try:
            ds = pydicom.dcmread(cand.path, stop_before_pixels=True,
                                 specific_tags=["PerFrameFunctionalGroupsSequence"])
        except Exception:
            continue
        if "PerFrameFunctionalGroupsSequence" in ds:
            found.append(cand)
    return found


def _differences(a: IndexResult, b: IndexResult) -> list[str]:
    problems = [f"{fa.rel} frame {fa.frame} {f.name}: {getattr(fa, f.name)!r} vs "
                f"{getattr(fb, f.name)!r}"
                for fa, fb in zip(a.frames, b.frames, strict=False)
                for f in dataclasses.fields(fa) if getattr(fa, f.name) != getattr(fb, f.name)]
    if len(a.frames) != len(b.frames):
        problems.append(f"{len(a.frames)} vs {len(b.frames)} frames")
    if a.derived != b.derived:
        problems.append(f"derived objects differ: {a.derived} vs {b.derived}")
    if [e.error for e in a.errors] != [e.error for e in b.errors]:
        problems.append(f"errors {a.errors} vs {b.errors}")
    return problems


def test_walker_records_equal_pydicom_on_every_corpus_multi_frame_file(corpus: Path) -> None:
    cands = _multi_frame(corpus)
    assert len(cands) >= 25, "the corpus should hold enhanced multi-frame objects"
    used = []
    for cand in cands:
        fast = IndexResult()
        with open(cand.path, "rb") as fp:
            if not index_split(fp, cand, (), fast):
                continue  # declined (private per-frame elements, ...): pydicom reads it
        used.append(cand.rel)
        problems = _differences(fast, index_file(cand, lean=False))
        assert not problems, problems[:5]
    segs = [c for c in cands if "seg" in c.rel.lower() or "mask" in c.rel]
    assert len(used) >= len(segs) >= 15, (used, [c.rel for c in segs])


def test_index_takes_the_walker_for_seg(corpus: Path) -> None:
    path = corpus / "pet_wholebody_seg" / "mask" / "mask.dcm"
    cand = Candidate(str(path), "mask.dcm")
    with open(path, "rb") as fp:
        split = split_per_frame(fp)
    assert split is not None and len(split.per_frame) == 171
    # the cut header is a valid data set without the per-frame sequence
    ds = pydicom.dcmread(io.BytesIO(split.header), stop_before_pixels=True)
    assert "PerFrameFunctionalGroupsSequence" not in ds and "SegmentSequence" in ds
    assert not _differences(index_file(cand), index_file(cand, lean=False))


def test_walker_declines_a_truncated_header(tmp_path: Path, corpus: Path) -> None:
    data = (corpus / "seg_dcmqi" / "segmentations" / "partial_overlaps.dcm").read_bytes()
    with open(corpus / "seg_dcmqi" / "segmentations" / "partial_overlaps.dcm", "rb") as fp:
        split = split_per_frame(fp)
    assert split is not None
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:split.cut_at + split.cut_size // 2])
    with open(cut, "rb") as fp:
        assert split_per_frame(fp) is None
    result = index_file(Candidate(str(cut), "cut.dcm"))
    assert result.errors and not result.frames  # pydicom's error, naming the file


def test_shared_group_items_and_memo_give_pydicom_records(corpus: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared functional group read once into items (and the top-level data set read
    through a memo) give the records that looking them up through pydicom for every frame
    gives, on every corpus multi-frame file."""
    cands = _multi_frame(corpus)
    fast = [index_file(c, lean=False) for c in cands]
    converted = []
    real = frames_module.as_items

    def spy(ds: object) -> object:
        out = real(ds)
        converted.append(out is not ds)
        return out

    monkeypatch.setattr(frames_module, "as_items", spy)
    [index_file(c, lean=False) for c in cands]
    assert sum(converted) >= 25  # the items path was taken
    monkeypatch.setattr(frames_module, "as_items", lambda ds: ds)
    monkeypatch.setattr(frames_module, "Memo", lambda ds: ds)
    for cand, result in zip(cands, fast, strict=True):
        problems = _differences(result, index_file(cand, lean=False))
        assert not problems, (cand.rel, problems[:5])


def test_memo_reads_like_the_data_set() -> None:
    ds = pydicom.Dataset()
    ds.PatientName = None
    ds.Rows = 4
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    memo = Memo(ds)
    for _ in range(2):  # the second time from the memo
        assert memo.get("Rows") == 4
        assert memo.get("PatientName", "x") is None  # present without a value: not the default
        assert memo.get("Columns", 7) == 7 and memo.get("Columns") is None
        assert memo.get((0x0043, 0x0010)).value == "GEMS_PARM_01"
    assert "Rows" in memo and "Columns" not in memo and memo[0x00280010].value == 4
    assert memo.private_block(0x0043, "GEMS_PARM_01").block_start == 0x1000

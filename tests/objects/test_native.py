"""Native frames cut from the file bytes equal pydicom's decoding, bounding boxes included.

The fast path (:mod:`dicomvol.objects.native`) replaces pydicom's
``iter_pixels`` for native little-endian SEG frames; here every frame it
gives is compared with pydicom's ``pixel_array``: on every SEG of the corpus
(10 x 10 frames of 100 bits: frames not starting on a byte boundary) and on
synthetic SEGs of odd sizes (1-bit, 8-bit fractional, label maps), read in
several runs with gaps between the frames asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomvol.dicom.index import index_file
from dicomvol.errors import PixelDataError
from dicomvol.inputs.discover import Candidate, discover
from dicomvol.model.records import FrameRecord
from dicomvol.objects import native
from dicomvol.objects.frames import FrameReader
from dicomvol.objects.native import box_of, native_layout
from dicomvol.testing import SegFrame, write_seg, write_series

SEG_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


def records_of(path: Path) -> list[FrameRecord]:
    result = index_file(Candidate(str(path), path.name))
    assert result.frames, result.errors
    return sorted(result.frames, key=lambda f: f.frame)


def pydicom_frames(path: Path) -> np.ndarray:
    """(frames, rows, columns) as pydicom decodes them."""
    arr = pydicom.dcmread(path).pixel_array
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return np.asarray(arr).reshape(int(ds.get("NumberOfFrames", 1)), ds.Rows, ds.Columns)


def assert_reader_equals_pydicom(path: Path, numbers: list[int] | None = None) -> int:
    """Frames and boxes of ``numbers`` (default all) equal pydicom's; returns frames checked."""
    records = records_of(path)
    reader = FrameReader(records[0])
    assert reader.native is not None, f"{path.name}: expected the native path"
    expected = pydicom_frames(path)
    wanted = numbers or [r.frame for r in records]
    got = dict(reader.frames(wanted))
    assert sorted(got) == sorted(set(wanted))
    for n in wanted:
        assert got[n].dtype == expected[n - 1].dtype or got[n].dtype.kind == "u"
        np.testing.assert_array_equal(got[n], expected[n - 1], err_msg=f"{path.name} {n}")
    for n, box in reader.boxes(wanted):
        truth = box_of(expected[n - 1])
        if truth is None:
            assert box is None, f"{path.name} frame {n}: box of an empty frame"
            continue
        assert box is not None, f"{path.name} frame {n}: no box for a nonempty frame"
        assert (box.row0, box.col0) == (truth.row0, truth.col0)
        np.testing.assert_array_equal(box.values, truth.values)
    return len(wanted)


def test_every_corpus_seg_frame_equals_pydicom(corpus: Path) -> None:
    checked = {}
    for cand in discover([corpus / d for d in ("seg_highdicom", "seg_dcmqi",
                                                 "pet_wholebody_seg")]):
        try:
            ds = pydicom.dcmread(cand.path, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("SOPClassUID") not in SEG_CLASSES:
            continue
        records = records_of(Path(cand.path))
        if native_layout(records[0]) is None:
            continue
        checked[cand.rel] = assert_reader_equals_pydicom(Path(cand.path))
    assert len(checked) >= 12, checked
    odd = [rel for rel in checked if "seg_image_sm" in rel]  # 10 x 10 frames: 100 bits each
    assert odd, checked


def odd_seg(tmp_path: Path, kind: str, shape: tuple[int, int, int] = (7, 5, 13)) -> Path:
    """A SEG of random frames on a (columns, rows, slices) grid whose frames are not whole
    bytes (7 x 5 = 35 bits); some frames are empty."""
    series = write_series(tmp_path / "ct", shape=shape, pixel_spacing=(1.0, 1.0),
                          slice_spacing=1.0, modality="CT")
    rng = np.random.default_rng(7)
    frames = []
    for k in range(shape[2]):
        for seg in (1, 2):
            mask = rng.random((shape[1], shape[0])) < (0.0 if k % 4 == 1 else 0.3)
            if kind == "FRACTIONAL":
                pixels: np.ndarray = mask * rng.random(mask.shape)
            elif kind == "LABELMAP":
                pixels = mask.astype(np.uint8) * seg
            else:
                pixels = mask
            frames.append(SegFrame(0 if kind == "LABELMAP" else seg,
                                   tuple(series.positions[k]), pixels,
                                   series.sop_instance_uids[k]))
    return write_seg(tmp_path / "seg.dcm", series, frames, {1: "a", 2: "b"}, kind=kind)


@pytest.mark.parametrize("kind", ["BINARY", "FRACTIONAL", "LABELMAP"])
def test_odd_sized_frames_equal_pydicom(tmp_path: Path, kind: str) -> None:
    path = odd_seg(tmp_path, kind)
    assert assert_reader_equals_pydicom(path) == 26


def test_runs_with_gaps_and_small_reads_equal_pydicom(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = odd_seg(tmp_path, "BINARY", shape=(17, 9, 40))
    monkeypatch.setattr(native, "SPAN_BYTES", 64)  # a few frames per read
    assert assert_reader_equals_pydicom(path, [1, 2, 3, 9, 10, 40, 41, 77, 80]) == 9


def test_big_aligned_frames_boxes_equal_pydicom(tmp_path: Path) -> None:
    """512-column frames (whole 64-bit words per row) with blobs near the frame edges."""
    series = write_series(tmp_path / "ct", shape=(64, 48, 4), pixel_spacing=(1.0, 1.0),
                          slice_spacing=1.0, modality="CT")
    frames = []
    for k, (r, c) in enumerate([(0, 0), (47, 63), (20, 30), (0, 63)]):
        mask = np.zeros((48, 64), dtype=bool)
        mask[max(0, r - 2):r + 3, max(0, c - 3):c + 4] = True
        frames.append(SegFrame(1, tuple(series.positions[k]), mask, series.sop_instance_uids[k]))
    path = write_seg(tmp_path / "seg.dcm", series, frames, {1: "a"})
    assert assert_reader_equals_pydicom(path) == 4


def test_truncated_pixel_data_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = odd_seg(tmp_path, "BINARY")
    records = records_of(path)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(PixelDataError, match=r"seg\.dcm"):
        list(FrameReader(records[0]).boxes([r.frame for r in records]))

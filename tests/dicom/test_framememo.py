"""Enhanced MR records through shared sequences and the frame memo: the same as pydicom's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomvol.dicom.framememo import FrameMemo
from dicomvol.dicom.index import index_file
from dicomvol.dicom.leanitems import LeanItem
from dicomvol.dicom.leanmf import read_enhanced
from dicomvol.inputs.discover import discover
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

VOLUMES = [DwiVolume(0.0), DwiVolume(1000.0, (0.6, 0.48, 0.64)),
           DwiVolume(1000.0, (0.0, 0.6, 0.8)), DwiVolume(1000.0, None, "trace"),
           DwiVolume(0.0, None, "adc")]


def _write(tmp_path: Path, vendor: str = "Philips") -> Path:
    series = write_dwi_series(tmp_path / vendor, vendor, VOLUMES, enhanced=True,
                              shape=(6, 5), n_slices=3)
    return Path(series.paths[0])


def _check(path: Path) -> list[Any]:
    """Lean records (the fast reader must take the file) equal pydicom's; returns them."""
    with open(path, "rb") as fp:
        assert read_enhanced(fp) is not None, "the lean reader declined"
    (cand,) = discover([path])
    lean, full = index_file(cand), index_file(cand, lean=False)
    assert [e.error for e in lean.errors] == [e.error for e in full.errors]
    assert lean.frames == full.frames
    return lean.frames


def _edit(path: Path, change: Any) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("vendor", ["Philips", "Canon", "SiemensXA"])
def test_shuffled_frames(tmp_path: Path, vendor: str) -> None:
    path = _write(tmp_path, vendor)

    def shuffle(ds: Dataset) -> None:
        items = list(ds.PerFrameFunctionalGroupsSequence)
        order = np.random.default_rng(3).permutation(len(items))
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence([items[i] for i in order])

    for p in sorted(path.parent.glob("*.dcm")):
        _edit(p, shuffle)
        frames = _check(p)
    assert frames


def test_missing_and_differing_attributes(tmp_path: Path) -> None:
    """Groups missing in some frames, a private creator gone, per-frame private scaling."""
    path = _write(tmp_path)

    def vary(ds: Dataset) -> None:
        items = ds.PerFrameFunctionalGroupsSequence
        del items[1].MRDiffusionSequence
        own = Dataset()  # frame 8 rescales on its own (the others: the shared group)
        own.RescaleSlope, own.RescaleIntercept, own.RescaleType = "2.5", "0", "US"
        items[7].PixelValueTransformationSequence = pydicom.Sequence([own])
        del items[4].PlanePositionSequence  # no position: the record says so
        del items[8][0x2005, 0x0010]  # the creator of the private per-frame item
        private = items[10][0x2005, 0x100F].value[0]
        private.add_new((0x2005, 0x100E), "FL", 0.25)  # a Philips scale slope, this frame only
        items[11].MRImageFrameTypeSequence[0].FrameType = ["DERIVED", "PRIMARY", "ADC", "NONE"]

    _edit(path, vary)
    frames = _check(path)
    assert len({f.rescale_slope for f in frames}) == 2
    assert len({f.philips_scale_slope for f in frames}) > 1


def _undefined(ds: Dataset) -> None:
    for item in ds.PerFrameFunctionalGroupsSequence:
        for elem in item:
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for sub in elem.value:
                    sub.is_undefined_length_sequence_item = True


def test_undefined_length_sequences(tmp_path: Path) -> None:
    """Sequences of undefined length are shared once read to their end: the same records."""
    path = _write(tmp_path)
    _edit(path, _undefined)
    assert b"\xfe\xff\xdd\xe0" in path.read_bytes()  # sequence delimiters written
    _check(path)


def test_truncated_files_match_pydicom(tmp_path: Path) -> None:
    path = _write(tmp_path)
    data = path.read_bytes()
    start = data.find(b"\x00\x52\x30\x92")  # the per-frame sequence's tag
    assert start > 0
    for cut in (start + 40, start + 1000, (start + len(data)) // 2, len(data) - 7):
        cut_path = tmp_path / f"cut{cut}.dcm"
        cut_path.write_bytes(data[:cut])
        (cand,) = discover([cut_path])
        lean, full = index_file(cand), index_file(cand, lean=False)
        assert lean.frames == full.frames
        assert [e.error for e in lean.errors] == [e.error for e in full.errors]
        assert not any("Traceback" in e.error or "internal" in e.error for e in lean.errors)


def _item(values: dict[int, Any]) -> LeanItem:
    return LeanItem(values, b"")


def test_memo_calls_once_per_distinct_input() -> None:
    calls: list[Any] = []

    def fn(ds: Any, item: Any, extra: str) -> Any:
        calls.append(extra)
        block = item.private_block(0x2005, "CREATOR") if (0x2005, 0x0010) in item else None
        return item.get("EchoTime"), None if block is None else block[0x0E].value

    shared_seq = [_item({})]
    a = _item({0x00180081: 5.0, 0x20050010: "CREATOR", 0x2005100E: 1.5, 0x00209111: shared_seq})
    b = _item({0x00180081: 5.0, 0x20050010: "CREATOR", 0x2005100E: 1.5, 0x00209111: [_item({})]})
    c = _item({0x00180081: 5.0, 0x20050010: "CREATOR", 0x2005100E: 2.5})
    d = _item({0x00180081: 5.0})
    memo, ds = FrameMemo(), object()
    assert memo.call(fn, ds, a, "x") == (5.0, 1.5)
    assert memo.call(fn, ds, b, "x") == (5.0, 1.5)  # what fn read is the same: memoised
    assert calls == ["x"]
    assert memo.call(fn, ds, c, "x") == (5.0, 2.5)  # a value it read differs
    assert memo.call(fn, ds, d, "x") == (5.0, None)  # the creator is gone
    assert memo.call(fn, ds, a, "y") == (5.0, 1.5)  # other arguments
    assert calls == ["x", "x", "x", "y"]
    plain = Dataset()
    plain.EchoTime = 7.0
    assert memo.call(fn, ds, plain, "x") == (7.0, None)  # pydicom items are not memoised
    assert memo.call(fn, ds, plain, "x") == (7.0, None)
    assert calls[-2:] == ["x", "x"]


def test_memo_tells_sequences_apart_by_what_is_read_in_them() -> None:
    """A sequence matches on its number of items and the values read inside them (at any
    depth, private items too), not on the values it holds that are not read."""
    calls: list[int] = []

    def fn(ds: Any, item: Any) -> Any:
        calls.append(1)
        seq = item.get("MRDiffusionSequence")
        b = None if not seq else seq[0].get("DiffusionBValue")
        inner = seq[0].get("DiffusionGradientDirectionSequence") if seq else None
        direction = inner[0].get("DiffusionGradientOrientation") if inner else None
        scales = [p.get((0x2005, 0x100E)) for p in item.private_items()]
        return b, direction, len(seq or ()), [None if s is None else s.value for s in scales]

    def frame(b: float, uid: str, direction: Any = None, scale: float = 1.5,
              items: int = 1) -> LeanItem:
        grad = {0x00189089: direction} if direction is not None else {}
        diffusion = {0x00189087: b, 0x00080018: uid}
        if direction is not None:
            diffusion[0x00189076] = [_item(grad)]
        private = _item({0x2005100E: scale, 0x00080018: uid})
        return _item({0x00189117: [_item(diffusion) for _ in range(items)],
                      0x2005140F: [private]})

    memo = FrameMemo()
    first = memo.call(fn, None, frame(0.0, "1"))
    assert memo.call(fn, None, frame(0.0, "2")) == first and len(calls) == 1  # UIDs: unread
    assert memo.call(fn, None, frame(1000.0, "3")) == (1000.0, None, 1, [1.5])
    assert memo.call(fn, None, frame(0.0, "4", scale=2.0)) == (0.0, None, 1, [2.0])
    assert memo.call(fn, None, frame(0.0, "5", items=2)) == (0.0, None, 2, [1.5])
    assert memo.call(fn, None, frame(1000.0, "6", [0.0, 0.6, 0.8])) == (
        1000.0, [0.0, 0.6, 0.8], 1, [1.5])
    assert memo.call(fn, None, frame(1000.0, "7", [0.0, 0.6, 0.8])) == (
        1000.0, [0.0, 0.6, 0.8], 1, [1.5])
    assert memo.call(fn, None, frame(1000.0, "8", [1.0, 0.0, 0.0]))[1] == [1.0, 0.0, 0.0]
    assert len(calls) == 6  # frames "2" and "7" matched one before
    one = [_item({0x00189087: 0.0})]
    results = [memo.call(fn, None, _item({0x00189117: seq}))[0] for seq in (one, [], one)]
    assert results == [0.0, None, 0.0]


def test_realistic_private_items_are_read_once_per_volume(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Philips writes a private per-frame item holding the frame's own UID and instance
    number beside the scale factors, and a window per frame: the repeating fields are still
    computed once per volume (what is read in the items repeats), the records pydicom's."""
    import dicomvol.dicom.frames as frames_mod

    path = _write(tmp_path)

    def per_frame_values(ds: Dataset) -> None:
        for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            voi = Dataset()
            voi.WindowCenter, voi.WindowWidth = 100 + n, 400 + n
            item.FrameVOILUTSequence = pydicom.Sequence([voi])
            private = item[0x2005100F].value[0]
            private.InstanceNumber = n + 1
            private.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{1000 + n}"

    _edit(path, per_frame_values)
    calls: list[int] = []
    real = frames_mod.diffusion_fields
    monkeypatch.setattr(frames_mod, "diffusion_fields",
                        lambda *args: calls.append(1) or real(*args))
    frames = _check(path)
    assert len(frames) == len(VOLUMES) * 3
    assert len(calls) == len(VOLUMES) + len(frames)  # once per volume; pydicom per frame


def test_memo_gives_up_when_nothing_repeats() -> None:
    from dicomvol.dicom.framememo import GIVE_UP_AFTER

    calls: list[int] = []

    def fn(ds: Any, item: Any) -> Any:
        calls.append(1)
        return item.get("EchoTime")

    memo = FrameMemo()
    n = GIVE_UP_AFTER + 10
    results = [memo.call(fn, None, _item({0x00180081: float(i)})) for i in range(n)]
    assert results == [float(i) for i in range(n)] and len(calls) == n
    ((recorded, matches),) = memo.counts.values()
    assert (recorded, matches) == (GIVE_UP_AFTER, 0)  # the last calls went straight to fn


@pytest.mark.parametrize("undefined", [False, True])
def test_repeating_groups_are_computed_once_per_volume(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       undefined: bool) -> None:
    """What makes a 5,000-frame file fast: diffusion is read once per volume, not per frame
    (sequences of defined or undefined length alike)."""
    import dicomvol.dicom.frames as frames_mod

    path = _write(tmp_path)
    if undefined:
        _edit(path, _undefined)
    calls: list[int] = []
    real = frames_mod.diffusion_fields

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(frames_mod, "diffusion_fields", counting)
    (cand,) = discover([path])
    lean = index_file(cand)
    assert len(lean.frames) == len(VOLUMES) * 3
    assert len(calls) == len(VOLUMES)  # 3 slices per volume share one diffusion item
    full = index_file(cand, lean=False)  # pydicom items: one call per frame, same records
    assert len(calls) == len(VOLUMES) * 4 and lean.frames == full.frames


def test_memo_tells_present_but_empty_from_absent() -> None:
    def fn(ds: Any, item: Any) -> Any:
        return "EchoTime" in item

    memo = FrameMemo()
    assert [memo.call(fn, None, _item(v)) for v in ({0x00180081: None}, {}, {0x00180081: None})
            ] == [True, False, True]


def test_a_bound_function_is_the_memo_of_call() -> None:
    """``bind`` (the per-frame loop's form) and ``call`` share one memo per function and
    arguments: a result computed through one is found through the other."""
    calls: list[Any] = []

    def fn(ds: Any, item: Any, extra: str) -> Any:
        calls.append(extra)
        return item.get("EchoTime")

    memo, ds = FrameMemo(), object()
    bound = memo.bind(fn, ds, "x")
    assert memo.bind(fn, ds, "x") is bound and memo.bind(fn, ds, "y") is not bound
    assert bound(_item({0x00180081: 5.0})) == 5.0
    assert memo.call(fn, ds, _item({0x00180081: 5.0}), "x") == 5.0
    assert bound(_item({0x00180081: 6.0})) == 6.0
    assert calls == ["x", "x"]
    ((recorded, matches),) = [v for k, v in memo.counts.items() if k[-1] == (str, "x")]
    assert (recorded, matches) == (2, 1)
    plain = Dataset()
    plain.EchoTime = 7.0
    assert bound(plain) == 7.0 and calls[-1] == "x" and len(calls) == 3  # not memoised


def test_record_templates_emptied_when_full_give_the_same_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pydicom's items are not memoised: every frame has a new group, so the per-file table
    of record templates fills and is emptied; the records stay the lean reader's."""
    import dicomvol.dicom.frames as frames_mod

    path = _write(tmp_path)
    (cand,) = discover([path])
    lean = index_file(cand)
    monkeypatch.setattr(frames_mod, "_MAX_TEMPLATES", 2)
    assert index_file(cand, lean=False).frames == lean.frames == index_file(cand).frames
    assert len(lean.frames) == len(VOLUMES) * 3

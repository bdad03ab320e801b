"""Per-frame items read as a table (dicom/frametable.py) give the records item-by-item reading
gives, and the items themselves when asked for."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomvol.dicom import frames, frametable, leanmf
from dicomvol.dicom.frametable import FrameTable
from dicomvol.dicom.index import _fast_records
from dicomvol.dicom.leanitems import LeanItem, parse_sequence
from dicomvol.dicom.values import first_item
from dicomvol.inputs.discover import Candidate
from dicomvol.model.records import FrameRecord
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

VOLUMES = [DwiVolume(0.0), DwiVolume(1000.0, (0.6, 0.48, 0.64)),
           DwiVolume(1000.0, (0.0, 0.6, 0.8)), DwiVolume(1000.0, None, "trace")]


def _read(path: Path) -> tuple[Any, ...]:
    with open(path, "rb") as fp:
        found = leanmf.read_enhanced(fp)
    assert found is not None
    return found


def _read_plain(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The header with its per-frame items parsed one by one, as any sequence is."""
    with monkeypatch.context() as m:
        m.setattr(leanmf, "read_table", parse_sequence)
        return _read(path)


def _records(path: Path, found: tuple[Any, ...]) -> list[FrameRecord]:
    records = _fast_records(found, os.path.getsize(path), Candidate(str(path), path.name), ())
    assert records is not None
    return records


def _differences(a: list[FrameRecord], b: list[FrameRecord]) -> list[str]:
    assert len(a) == len(b)
    return [f"frame {x.frame} {f.name}: {getattr(x, f.name)!r} != {getattr(y, f.name)!r}"
            for x, y in zip(a, b, strict=True) for f in dataclasses.fields(x)
            if getattr(x, f.name) != getattr(y, f.name)]


def _table(found: tuple[Any, ...]) -> FrameTable:
    table = found[0].get("PerFrameFunctionalGroupsSequence")
    assert type(table) is FrameTable
    return table


def _plain(item: LeanItem) -> dict[int, Any]:
    """An item's values, converted, sequences as lists of such dicts."""
    values = {tag: item._value(tag) for tag in list(item._lean_values)}
    return {tag: [_plain(i) for i in value] if isinstance(value, list) and value
            and isinstance(value[0], LeanItem) else value for tag, value in values.items()}


def _write(tmp_path: Path, vendor: str = "Philips", edit: Any = None,
           undefined: bool = False) -> Path:
    series = write_dwi_series(tmp_path, vendor, VOLUMES, enhanced=True)
    path = Path(series.paths[0])
    if edit is not None or undefined:
        ds = pydicom.dcmread(path)
        if edit is not None:
            edit(ds.PerFrameFunctionalGroupsSequence)
        if undefined:
            ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
            for item in ds.PerFrameFunctionalGroupsSequence:
                item.is_undefined_length_sequence_item = True
        ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(("vendor", "undefined"), [("Philips", False), ("Philips", True),
                                                   ("Canon", False), ("SiemensXA", False)])
def test_table_records_equal_item_by_item_records(tmp_path: Path, vendor: str, undefined: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, vendor, undefined=undefined)
    found = _read(path)
    table = _table(found)
    assert all(layout is not None for layout in table.layouts), "no frame read item by item"
    layouts = {id(layout) for layout in table.layouts}
    assert len(table._items) == len(layouts) < len(table), "one item parsed per layout"
    assert not _differences(_records(path, found), _records(path, _read_plain(path,
                                                                               monkeypatch)))


def test_items_read_on_demand_equal_the_plain_reader(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path)
    table = _table(_read(path))
    plain = _read_plain(path, monkeypatch)[0].get("PerFrameFunctionalGroupsSequence")
    assert type(plain) is list and len(plain) == len(table) > 8
    assert [_plain(item) for item in table] == [_plain(item) for item in plain]
    assert table[-1] is table[len(table) - 1] and _plain(table[-2]) == _plain(plain[-2])
    assert [_plain(i) for i in table[1:4]] == [_plain(i) for i in plain[1:4]]
    with pytest.raises(IndexError):
        table[len(table)]
    header = _read(path)[0]
    assert _plain(first_item(header, "PerFrameFunctionalGroupsSequence")) == _plain(plain[0])


def _positions(lengths: list[str]) -> Any:
    """An edit giving frames positions written with differing numbers of digits."""
    def edit(items: Sequence) -> None:
        for n, item in enumerate(items):
            z = lengths[n % len(lengths)]
            item.PlanePositionSequence[0].ImagePositionPatient = ["-30", "-25.5", z]
    return edit


def test_positions_of_other_lengths_are_layouts_of_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = len({id(layout) for layout in _table(_read(_write(tmp_path / "a"))).layouts})
    path = _write(tmp_path / "b", edit=_positions(["1", "2.5", "-12.75", "100.125"]))
    found = _read(path)
    table = _table(found)
    assert len({id(layout) for layout in table.layouts}) == 4 * plain
    records = _records(path, found)
    assert [r.position[2] for r in records[:4]] == pytest.approx([1, 2.5, -12.75, 100.125])
    assert not _differences(records, _records(path, _read_plain(path, monkeypatch)))
    monkeypatch.setattr(frametable, "MAX_LAYOUTS", 2)  # beyond: item by item, same records
    found = _read(path)
    assert 0 < sum(layout is None for layout in _table(found).layouts) < len(records)
    assert not _differences(_records(path, found), records)


def test_a_frame_with_converted_attributes_is_read_item_by_item(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(items: Sequence) -> None:
        own = Dataset()
        own.InstanceNumber = 77
        items[3].UnassignedPerFrameConvertedAttributesSequence = Sequence([own])
    path = _write(tmp_path, edit=edit)
    found = _read(path)
    table = _table(found)
    assert table.layouts[3] is None
    assert all(layout is not None for layout in table.layouts[:3] + table.layouts[4:])
    records = _records(path, found)
    assert records[3].instance_number == 77 and records[2].instance_number != 77
    assert not _differences(records, _records(path, _read_plain(path, monkeypatch)))


def _count_groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Calls of the repeating fields' function (the memo's misses)."""
    calls: list[int] = []
    real = frames._frame_group
    monkeypatch.setattr(frames, "_frame_group",
                        lambda *args: calls.append(1) or real(*args))
    return calls


def test_values_no_field_reads_do_not_part_frames(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each frame with a window and a private UID of its own (as Philips writes them): one
    structure, one item parsed per layout, the repeating fields computed once per distinct
    value of what they read, not per frame; the same records."""
    def edit(items: Sequence) -> None:
        for n, item in enumerate(items):
            voi = Dataset()
            voi.WindowCenter, voi.WindowWidth = 100 + n, 400 + n
            item.FrameVOILUTSequence = Sequence([voi])
            private = item[0x2005100F].value[0]
            private.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{100 + n}"
    path = _write(tmp_path, edit=edit)
    expected = _records(path, _read_plain(path, monkeypatch))
    calls = _count_groups(monkeypatch)
    found = _read(path)
    table = _table(found)
    layouts = {id(layout) for layout in table.layouts}
    assert None not in table.layouts and len(table._items) == len(layouts)
    assert not _differences(_records(path, found), expected)
    assert 0 < len(calls) <= len(VOLUMES) < len(table)


def test_items_of_a_structure_of_their_own_are_no_longer_learnt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every item with a private element the others lack: no item matches another, and
    after GIVE_UP_AFTER of them the rest are parsed without learning; the same records."""
    def edit(items: Sequence) -> None:
        for n, item in enumerate(items):
            item.add_new((0x0009, 0x1000 + n), "LO", "x")
    path = _write(tmp_path, edit=edit)
    monkeypatch.setattr(frametable, "GIVE_UP_AFTER", 3)
    found = _read(path)
    table = _table(found)
    assert None not in table.layouts[:3] and table.layouts[3:] == [None] * (len(table) - 3)
    assert not _differences(_records(path, found), _records(path, _read_plain(path,
                                                                               monkeypatch)))


def test_group_fields_that_read_per_frame_values_get_each_frames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the repeating fields read decides which frames share them, per-frame values
    too: fields made from InStackPositionNumber follow each frame's."""
    path = _write(tmp_path)
    expected = _records(path, _read(path))
    real = frames._frame_group

    def reading_content(ds: Any, frame_fg: Any, *rest: Any) -> dict[str, Any]:
        fields = real(ds, frame_fg, *rest)
        content = first_item(frame_fg, "FrameContentSequence")
        slice_number = content.get("InStackPositionNumber") if content is not None else None
        return {**fields, "series_description": f"slice {slice_number}"}

    monkeypatch.setattr(frames, "_frame_group", reading_content)
    found = _read(path)
    records = _records(path, found)
    assert None not in _table(found).layouts
    numbers = [first_item(item, "FrameContentSequence").get("InStackPositionNumber")
               for item in _table(found)]
    assert len(set(numbers)) > 1
    assert [r.series_description for r in records] == [f"slice {n}" for n in numbers]
    assert not _differences([dataclasses.replace(r, series_description=e.series_description)
                             for r, e in zip(records, expected, strict=True)], expected)


def test_a_value_of_another_vr_is_another_layout(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One frame's DiffusionBValue written with another VR of the same length (SH for FD:
    the same offsets, another value): its own layout, and the records the plain reader
    gives (a shared layout would hand it the b-value bytes of a frame they equal)."""
    path = _write(tmp_path)
    data = bytearray(path.read_bytes())
    element = b"\x18\x00\x87\x90FD\x08\x00"  # (0018,9087) FD, 8 bytes
    first = data.find(element)
    second = data.find(element, first + 1)
    assert 0 < first < second
    data[second + 4:second + 6] = b"SH"
    path.write_bytes(bytes(data))
    found = _read(path)
    table = _table(found)
    assert len({id(layout) for layout in table.layouts}) > len(
        {id(layout) for layout in _table(_read(_write(tmp_path / "plain"))).layouts})
    assert not _differences(_records(path, found), _records(path, _read_plain(path,
                                                                               monkeypatch)))


def test_more_layouts_of_undefined_items_than_tries(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Undefined-length items share one list of layouts: with more layouts than MAX_TRIES
    in turn, an item beyond the tries is parsed (and its layout tried first next); the
    records stay the plain reader's."""
    lengths = ["1", "2.5", "-12.75", "100.125", "7.0625", "-3.03125"]

    def in_pairs(items: Sequence) -> None:  # frames 2k and 2k + 1: one position length
        for n, item in enumerate(items):
            z = lengths[(n // 2) % len(lengths)]
            item.PlanePositionSequence[0].ImagePositionPatient = ["-30", "-25.5", z]

    path = _write(tmp_path, edit=in_pairs, undefined=True)
    monkeypatch.setattr(frametable, "MAX_TRIES", 2)
    found = _read(path)
    table = _table(found)
    assert len({id(layout) for layout in table.layouts}) >= len(lengths) > 2
    assert len(table._items) == len(table) // 2  # the second of each pair matches
    assert not _differences(_records(path, found), _records(path, _read_plain(path,
                                                                               monkeypatch)))

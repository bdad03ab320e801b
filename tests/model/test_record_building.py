"""FrameRecords built from positional values (make_record, record_values): the same records
as ``FrameRecord(...)`` builds, frozen, equal, hashing and pickling alike."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import pytest

from dicomvol.dicom.index import index_files
from dicomvol.inputs.discover import discover
from dicomvol.model.records import RECORD_FIELDS, FrameRecord, make_record, record_values
from dicomvol.testing import write_series


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[FrameRecord]:
    folder = tmp_path_factory.mktemp("series")
    write_series(folder, shape=(8, 6, 3), modality="MR")
    return index_files(discover([folder])).frames


def test_a_built_record_is_a_frame_record_in_every_respect(frames: list[FrameRecord]) -> None:
    for frame in frames:
        values = [getattr(frame, name) for name in RECORD_FIELDS]
        built = make_record(values)
        assert type(built) is FrameRecord
        assert built == frame and hash(built) == hash(frame) and repr(built) == repr(frame)
        assert dataclasses.replace(built, frame=7) == dataclasses.replace(frame, frame=7)
        assert pickle.loads(pickle.dumps(built)) == frame
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.rows = 3  # type: ignore[misc]
        values[RECORD_FIELDS.index("rows")] = frame.rows + 1
        assert make_record(values) != frame  # its own values, not a shared template's


def test_record_values_fill_defaults_and_refuse_what_frame_record_refuses(
        frames: list[FrameRecord]) -> None:
    frame = frames[0]
    given = {f.name: getattr(frame, f.name) for f in dataclasses.fields(FrameRecord)
             if f.default is dataclasses.MISSING}
    assert len(given) < len(RECORD_FIELDS)  # some fields are left to their defaults
    assert make_record(record_values(given)) == FrameRecord(**given)
    with pytest.raises(TypeError, match="not FrameRecord fields"):
        record_values({**given, "colour": 1})
    missing: dict[str, Any] = dict(given)
    del missing["rows"]
    with pytest.raises(TypeError, match="rows"):
        record_values(missing)


def test_records_read_from_files_are_built_records(tmp_path: Path) -> None:
    """The index builds enhanced records with make_record: they equal pydicom's (built by
    FrameRecord(...) from the same header code)."""
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    series = write_dwi_series(tmp_path, "Philips", [DwiVolume(0.0), DwiVolume(1000.0,
                                                                              (0.6, 0.48, 0.64))],
                              enhanced=True, shape=(6, 5), n_slices=3)
    (cand,) = discover([series.paths[0]])
    from dicomvol.dicom.index import index_file

    lean, full = index_file(cand), index_file(cand, lean=False)
    assert len(lean.frames) == 6 and lean.frames == full.frames
    assert [hash(f) for f in lean.frames] == [hash(f) for f in full.frames]

"""FrameRecord pickling: every field round-trips, the text a series repeats is sent once."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

from dicomvol.dicom.index import index_files
from dicomvol.inputs.discover import discover
from dicomvol.testing import write_series


def test_records_round_trip_and_share_series_text(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(8, 6, 5), modality="MR")
    frames = index_files(discover([tmp_path])).frames
    assert len(frames) == 5
    frames = [dataclasses.replace(frames[0], orientation=(-0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
                                  echo_number=1, rescale_slope=1.0), *frames[1:]]
    back = pickle.loads(pickle.dumps(frames, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == frames
    for a, b in zip(back, frames, strict=True):
        for field in dataclasses.fields(a):  # same types too: 1 stays int, -0.0 stays -0.0
            va, vb = getattr(a, field.name), getattr(b, field.name)
            assert type(va) is type(vb) and repr(va) == repr(vb), field.name
    assert len({id(f.series_instance_uid) for f in back}) == 1
    assert len({id(f.sop_instance_uid) for f in back}) == 5


def test_series_text_is_one_object_in_this_process_and_across_messages(tmp_path: Path) -> None:
    """Records built here share their series-level text (one UID object per series, not
    per file), and so do records received in separate messages (the planning process of
    a pooled run holds every record of a run)."""
    write_series(tmp_path, shape=(8, 6, 4), modality="MR")
    frames = index_files(discover([tmp_path])).frames
    assert len({id(f.series_instance_uid) for f in frames}) == 1
    assert len({id(f.image_type) for f in frames}) == 1
    assert len({id(f.orientation) for f in frames}) == 1  # bit-identical float tuples
    assert len({id(f.position) for f in frames}) == 4
    assert len({id(f.sop_instance_uid) for f in frames}) == 4
    messages = [pickle.dumps([f], protocol=pickle.HIGHEST_PROTOCOL) for f in frames]
    back = [pickle.loads(m)[0] for m in messages]
    assert back == frames
    assert len({id(f.study_instance_uid) for f in back}) == 1
    assert len({id(f.sop_instance_uid) for f in back}) == 4


def test_float_tuples_are_shared_only_when_bit_identical() -> None:
    from dicomvol.model.records import _shared_floats

    table: dict[object, object] = {}
    a = _shared_floats((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), table)
    b = _shared_floats((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), table)
    c = _shared_floats((1.0, -0.0, 0.0, 0.0, 1.0, 0.0), table)
    assert a is b and c is not a and repr(c[1]) == "-0.0"
    assert _shared_floats(None, table) is None
    mixed = (1, 2.0)  # not all floats: left as it is
    assert _shared_floats(mixed, table) is mixed

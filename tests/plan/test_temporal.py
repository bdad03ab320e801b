"""4D time series: one 4D volume per series in time order, never a drop or a shatter.

Issue 8 ("second reading of 4D splits", item 2) and issue 9 (items 4, 6, 7): the
parts a split tells apart join into one 4D volume when they share a grid, a
part that is itself 4D contributes all its volumes, and the volumes are put in
time order by the attributes the series varies (``TemporalOrderSource``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import dicomvol
from dicomvol import ConvertOptions
from dicomvol.model.records import FrameRecord
from dicomvol.plan.temporal import time_order, tm_seconds
from dicomvol.testing import mr4d
from dicomvol.testing.enhanced import enhanced_from_files
from dicomvol.testing.series import write_series
from exactness import assert_accounted, check_exact
from records import axial_frame

REPORT = "dicomvol_report.json"


def convert(inp: Path, out: Path, single_frame: bool = True) -> list[tuple[Any, dict[str, Any]]]:
    """(image, sidecar) of every output; the ledger balances and every output is exact."""
    dicomvol.convert([inp], out, ConvertOptions(jobs=1, compress=False))
    report = json.loads((out / REPORT).read_text())
    assert report["errors"] == []
    assert report["skipped"] == []
    if single_frame:  # (assert_accounted knows single-frame files only)
        assert_accounted(inp, out)
    found = []
    for name in report["outputs"]:
        check_exact(out / name, [inp])
        side = json.loads((out / name.replace(".nii", ".json")).read_text())
        found.append((nib.load(out / name), side))
    return found


def sources(side: dict[str, Any]) -> list[str]:
    return [e["SOPInstanceUID"] for e in side["SourceInstances"]]


def test_tm_seconds() -> None:
    assert tm_seconds("123045.5") == pytest.approx(12 * 3600 + 30 * 60 + 45.5)
    assert tm_seconds("12:30:45") == pytest.approx(12 * 3600 + 30 * 60 + 45)
    assert tm_seconds("1230") == pytest.approx(12 * 3600 + 30 * 60)
    assert tm_seconds("") is None
    assert tm_seconds("12a") is None


def _frame(**fields: Any) -> FrameRecord:
    base: dict[str, Any] = dict(path="p", rel="p", sop_instance_uid="1", modality="MR",
                                instance_number=None, rows=2, columns=2, orientation=None,
                                position=None, pixel_spacing=None)
    return axial_frame(**{**base, **fields})


def test_time_order_uses_what_the_series_varies() -> None:
    # AcquisitionTime alone orders: constant InstanceNumber-free volumes, times out of split order
    vols = [[_frame(acquisition_time=t, instance_number=n)] for t, n in
            (("120100", 1), ("120000", 2), ("120200", 3))]
    assert time_order(vols) == ([1, 0, 2], ("AcquisitionTime",))
    # temporal position first, InstanceNumber breaks the tie within it (ASL pairs)
    vols = [[_frame(temporal_position=tp, instance_number=n)] for tp, n in
            ((2, 3), (1, 2), (1, 1), (2, 4))]
    assert time_order(vols) == ([2, 1, 0, 3], ("TemporalPositionIdentifier", "InstanceNumber"))
    # a 2D acquisition times each slice: the volume's earliest slice counts
    vols = [[_frame(acquisition_time="120010"), _frame(acquisition_time="120001")],
            [_frame(acquisition_time="120000"), _frame(acquisition_time="120003")]]
    assert time_order(vols) == ([1, 0], ("AcquisitionTime",))
    # nothing varies: storage order, said so
    vols = [[_frame()], [_frame()]]
    assert time_order(vols) == ([0, 1], ("storage order",))
    # enhanced frames: the multi-frame names
    vols = [[_frame(number_of_frames=4, frame=f, temporal_position=1)] for f in (2, 1)]
    assert time_order(vols) == ([1, 0], ("FrameNumber",))


def test_classic_asl_label_control_pairs_are_one_4d(tmp_path: Path) -> None:
    """Issue 8 item 2: 240 frames, two per position per temporal position, InstanceNumber only."""
    ts = mr4d.write_asl(tmp_path / "in")
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out")
    assert img.shape == (96, 96, 40, 6)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values, rtol=0, atol=1e-6)
    assert sources(side) == list(ts.sop_instance_uids)
    assert side["TemporalOrderSource"] == ["TemporalPositionIdentifier", "InstanceNumber"]
    assert any("InstanceNumber" in w and "no attribute telling them apart" in w
               for w in side["Warnings"])


def test_enhanced_asl_agrees_with_classic(tmp_path: Path) -> None:
    """The enhanced version of the same series: the same 4D (it was skipped before)."""
    ts = mr4d.write_asl(tmp_path / "classic", shape=(24, 20, 8), n_temporal=3)
    (tmp_path / "in").mkdir()
    enhanced = enhanced_from_files(ts.paths, tmp_path / "in" / "asl.dcm")
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out", single_frame=False)
    assert img.shape == (24, 20, 8, 6)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values, rtol=0, atol=1e-6)
    # frame n of the enhanced object is file n: volume t, slice k is frame t * Z + k + 1
    assert [e["Frame"] for e in side["SourceInstances"]] == list(range(1, 8 * 6 + 1))
    assert {e["File"] for e in side["SourceInstances"]} == {enhanced.name}
    # label and control at one temporal position: their DimensionIndexValues (4th item)
    assert side["TemporalOrderSource"] == ["TemporalPositionIndex", "DimensionIndexValues"]


def test_enhanced_shuffled_frames_follow_dimension_index_values(tmp_path: Path) -> None:
    """Issue 9: frames stored in random order; label and control at each temporal position
    told apart by DimensionIndexValues only. Volume order follows the DimensionIndexSequence
    (its first item the slowest varying, PS3.3 7.5.2), not the frame number."""
    import pydicom

    from dicomvol.testing.enhanced import shuffle_frames

    ts = mr4d.write_asl(tmp_path / "classic", shape=(12, 10, 4), n_temporal=3)
    (tmp_path / "in").mkdir()
    enhanced = enhanced_from_files(ts.paths, tmp_path / "in" / "asl.dcm")
    shuffle_frames(enhanced, (), seed=3)
    ds = pydicom.dcmread(enhanced, stop_before_pixels=True)
    values = [tuple(fg.FrameContentSequence[0].DimensionIndexValues)
              for fg in ds.PerFrameFunctionalGroupsSequence]
    assert values != sorted(values)  # the frames are out of order
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out", single_frame=False)
    assert img.shape == (12, 10, 4, 6)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values, rtol=0, atol=1e-6)
    frames = [e["Frame"] for e in side["SourceInstances"]]
    ordered = [values[f - 1] for f in frames]  # (stack, position, temporal, repeat) per slice
    by_volume = [(v[2], v[3]) for v in ordered[::4]]
    assert by_volume == sorted(by_volume) and len(set(by_volume)) == 6
    assert side["TemporalOrderSource"] == ["TemporalPositionIndex", "DimensionIndexValues"]


def test_dce_passes_sharing_an_acquisition_number_are_one_4d_in_time_order(
    tmp_path: Path,
) -> None:
    """Issue 9 item 4: pre-contrast AcquisitionNumber 1, two passes with AcquisitionNumber 2."""
    ts = mr4d.write_dce(tmp_path / "in")
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out")
    assert img.shape == (16, 12, 60, 3)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values, rtol=0, atol=1e-6)
    assert sources(side) == list(ts.sop_instance_uids)
    assert side["TemporalOrderSource"] == ["AcquisitionTime"]
    times = side["TemporalOrderValues"]["AcquisitionTime"]
    assert times == sorted(times) and len(set(times)) == 3
    assert "_stack" not in json.dumps(side)


def test_acquisition_time_decides_against_acquisition_number(tmp_path: Path) -> None:
    """Time order, not AcquisitionNumber order: a pass numbered 1 acquired last comes last."""
    times = ["120200", "120000", "120100"]
    ts = mr4d.write_time_series(tmp_path / "in", shape=(8, 6, 4), n_volumes=3,
                                per_volume={"AcquisitionNumber": [1, 2, 2],
                                            "AcquisitionTime": times})
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out")
    assert img.shape == (8, 6, 4, 3)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values[..., [1, 2, 0]], atol=1e-6)
    assert side["TemporalOrderSource"] == ["AcquisitionTime"]


def test_multiphase_asl_is_one_4d_not_one_file_per_phase(tmp_path: Path) -> None:
    """Issue 9 item 7: temporal positions x trigger delays x label/control: one 4D."""
    ts = mr4d.write_multiphase_asl(tmp_path / "in")
    outputs = convert(tmp_path / "in", tmp_path / "out")
    assert len(outputs) == 1, [side.get("VolumeLabel") for _, side in outputs]
    ((img, side),) = outputs
    assert img.shape == (16, 12, 5, 24)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values, rtol=0, atol=1e-6)
    assert sources(side) == list(ts.sop_instance_uids)
    assert side["TemporalOrderSource"] == ["TemporalPositionIdentifier", "TriggerTime",
                                           "InstanceNumber"]
    values = side["TemporalOrderValues"]
    assert values["TemporalPositionIdentifier"] == [1 + v // 8 for v in range(24)]
    assert values["TriggerTime"] == pytest.approx([[100.0, 400.0, 700.0, 1000.0][v % 8 // 2]
                                                   for v in range(24)])


def test_temporal_parts_split_by_image_type_join_part_by_part(tmp_path: Path) -> None:
    """Magnitude and phase at each temporal position: one 4D of each, not one file per pair."""
    nv = 6
    image_types = [["ORIGINAL", "PRIMARY", "M" if v % 2 == 0 else "P"] for v in range(nv)]
    ts = mr4d.write_time_series(tmp_path / "in", shape=(8, 6, 4), n_volumes=nv,
                                per_volume={"TemporalPositionIdentifier":
                                            [1 + v // 2 for v in range(nv)],
                                            "ImageType": image_types})
    outputs = convert(tmp_path / "in", tmp_path / "out")
    assert sorted(img.shape for img, _ in outputs) == [(8, 6, 4, 3), (8, 6, 4, 3)]
    by_type = {side["SourceInstances"][0]["SOPInstanceUID"]: img for img, side in outputs}
    for first_volume in (0, 1):
        img = by_type[ts.sop_instance_uids[first_volume * 4]]
        np.testing.assert_allclose(np.asarray(img.dataobj),
                                   ts.values[..., first_volume::2], atol=1e-6)


def test_parts_on_different_grids_stay_apart(tmp_path: Path) -> None:
    """Splitting is for frames that cannot share a grid: a shifted second pass is its own."""
    z = 4
    positions = [(0.0, 0.0, 3.0 * k) for k in range(z)] + [(0.0, 0.0, 3.0 * k + 1.5)
                                                          for k in range(z)]
    positions += [(0.0, 0.0, 3.0 * k) for k in range(z)]
    write_series(tmp_path / "in", shape=(8, 6, 3 * z), positions=positions, modality="MR",
                 rescale=(1.0, 0.0), per_slice={"AcquisitionNumber": [1] * z + [2] * (2 * z)},
                 instance_numbers=list(range(1, 3 * z + 1)))
    outputs = convert(tmp_path / "in", tmp_path / "out")
    assert sum(len(side["SourceInstances"]) for _, side in outputs) == 3 * z
    assert all(len(img.shape) == 3 or img.shape[3] < 3 for img, _ in outputs)


def test_content_time_orders_when_nothing_else_varies(tmp_path: Path) -> None:
    """Two passes told apart only by ContentTime: one 4D, ordered by it."""
    ts = mr4d.write_time_series(tmp_path / "in", shape=(8, 6, 4), n_volumes=2,
                                per_volume={"ContentTime": ["121000", "120500"]})
    ((img, side),) = convert(tmp_path / "in", tmp_path / "out")
    assert img.shape == (8, 6, 4, 2)
    np.testing.assert_allclose(np.asarray(img.dataobj), ts.values[..., ::-1], atol=1e-6)
    assert side["TemporalOrderSource"] == ["ContentTime"]
    assert side["TemporalOrderValues"] == {"ContentTime": ["120500", "121000"]}
    assert side["GeometryDetail"]["fourth_dimension"] == "content time"

"""Frames placed together (arrays of frames) land exactly where placing each alone puts them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dicomvol.dicom.index import index_file
from dicomvol.inputs.discover import Candidate
from dicomvol.model.grid import VolumeGeometry
from dicomvol.objects.frames import (
    OffPlane,
    Placement,
    place_frame,
    place_frames,
    snap_tolerance_voxels,
)
from dicomvol.testing import SegFrame, write_seg, write_series


def test_place_frames_equals_place_frame_one_by_one(tmp_path: Path) -> None:
    shape = (12, 10, 8)
    series = write_series(tmp_path / "ct", shape=shape, pixel_spacing=(0.8, 0.7),
                          slice_spacing=2.0, modality="CT")
    normal = np.cross(series.row_dir, series.col_dir)
    mask = np.ones((shape[1], shape[0]), dtype=bool)
    shifts = [0.0, 0.01, -0.03, 0.6, 1.0, 0.0, 0.02, 5.0]  # mm along the normal
    frames = [SegFrame(1, tuple(np.asarray(series.positions[k]) + s * normal), mask,
                       series.sop_instance_uids[k]) for k, s in enumerate(shifts)]
    frames.append(SegFrame(1, tuple(np.asarray(series.positions[2]) + 0.35 * series.row_dir),
                           mask, series.sop_instance_uids[2]))  # between columns
    path = write_seg(tmp_path / "seg.dcm", series, frames, {1: "a"})
    records = sorted(index_file(Candidate(str(path), "seg.dcm")).frames, key=lambda f: f.frame)
    assert len(records) == 9
    o = records[0].orientation
    assert o is not None
    rotated = (o[3], o[4], o[5], o[0], o[1], o[2])  # rows and columns swapped
    records += [dataclasses.replace(records[1], frame=10, orientation=rotated),
                dataclasses.replace(records[2], frame=11, position=None),
                dataclasses.replace(records[3], frame=12, pixel_spacing=(0.8, 0.8))]
    first = records[0]
    assert first.position is not None
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(series.row_dir) * 0.7
    affine[:3, 1] = np.asarray(series.col_dir) * 0.8
    affine[:3, 2] = normal * 2.0
    affine[:3, 3] = series.positions[0]
    grid = VolumeGeometry(affine, shape)
    placed, off = place_frames(records, grid)
    tol = snap_tolerance_voxels(grid)
    alone = [place_frame(r, grid, tol) if r.position is not None else None for r in records]
    assert placed == [a for a in alone if isinstance(a, Placement)]
    assert [o.frame.frame for o in off] == [r.frame for r, a in zip(records, alone, strict=True)
                                           if not isinstance(a, Placement)]
    for o2 in off:
        a = alone[o2.frame.frame - 1]
        if a is not None:
            assert isinstance(a, OffPlane) and a.reason == o2.reason
    assert {p.frame.frame for p in placed} == {1, 2, 3, 6, 7}
    assert max(p.drift_mm for p in placed) > 0.02

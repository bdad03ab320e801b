"""SliceTiming: differential against dcm2niix on the corpus, and one unit test per source."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset

import dicomvol
from dicomvol.dicom.cache import JobSources
from dicomvol.dicom.values import tm_ms
from dicomvol.metadata.slicetiming import round_g, slice_timing
from dicomvol.model import geometry
from dicomvol.model.detail import GeometryDetail
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.testing.siemens import add_csa, csa2

TOL = 1e-4

SERIES = [
    *(f"mr_orientation/{o}/{o}{d}{n}" for o in ("ax", "cor", "sag")
      for d in ("asc", "desc", "int") for n in (35, 36)),
    "mr_orientation/ax/axasc36b",
    "mr_orientation/axmb/AxAsc36mb2a",
    "mr_orientation/axmb/AxInt36mb",  # first volume wraps past midnight
    *(f"mr_4d_nih/20180918Si/mr_000{i}" for i in (3, 4, 5, 6)),
    *(f"mr_4d_nih/20180918GE/mr_000{i}" for i in (4, 5, 6, 7)),
    "edge_cases/ge/fmri/001",  # GE without protocol data block: no SliceTiming anywhere
    "edge_cases/ge/fmri/001_implicit",
    "enhanced_mr/Siemens/XA10",  # FrameAcquisitionDateTime, multiband 2
]


def _slice_centres_dicomvol(plan: VolumePlan) -> np.ndarray:
    """World (LPS) position of each slice k's first voxel."""
    ks = np.arange(len(plan.frames[0]))
    vox = np.stack([np.zeros_like(ks), np.zeros_like(ks), ks, np.ones_like(ks)])
    return (plan.affine @ vox)[:3].T


def _slice_origins_nifti(path: Path) -> np.ndarray:
    """World (LPS) position of each NIfTI slice's first-in-plane voxel, for all i, j corners.

    dcm2niix may flip rows relative to DICOM, so the in-plane corner differs; return the
    positions of the four in-plane corners for each slice: shape (nz, 4, 3).
    """
    img = nib.load(str(path))
    affine = img.affine.copy()
    affine[:2] *= -1  # RAS -> LPS
    nx, ny, nz = img.shape[:3]
    out = np.zeros((nz, 4, 3))
    for k in range(nz):
        for c, (i, j) in enumerate(((0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1))):
            out[k, c] = (affine @ np.array([i, j, k, 1.0]))[:3]
    return out


def _dcm2niix(exe: str, folder: Path, out: Path) -> list[tuple[dict[str, Any], Path]]:
    subprocess.run([exe, "-z", "n", "-b", "y", "-ba", "n", "-f", "%s_%p", "-o", str(out),
                    str(folder)], check=True, capture_output=True)
    found = []
    for js in sorted(out.glob("*.json")):
        nii = js.with_suffix(".nii")
        if nii.exists():
            found.append((json.loads(js.read_text()), nii))
    return found


def _map_order(plan: VolumePlan, nii: Path) -> list[int]:
    """For each dicomvol slice k, the index of the dcm2niix slice at the same world place."""
    ours = _slice_centres_dicomvol(plan)
    theirs = _slice_origins_nifti(nii)
    assert theirs.shape[0] == ours.shape[0], "slice counts differ"
    mapping = []
    for p in ours:
        dist = np.linalg.norm(theirs - p, axis=2).min(axis=1)
        mapping.append(int(np.argmin(dist)))
        assert dist.min() < 0.1, f"no dcm2niix slice at {p}"
    assert sorted(mapping) == list(range(len(ours)))
    return mapping


@pytest.mark.parametrize("series", SERIES)
def test_matches_dcm2niix(series: str, corpus: Path, dcm2niix_exe: str,
                          tmp_path: Path) -> None:
    folder = corpus / series
    if not folder.is_dir():
        pytest.fail(f"corpus series {series} missing")
    plans = [p for p in dicomvol.scan([str(folder)]).plans if len(p.frames[0]) > 1]
    assert len(plans) == 1, [p.label for p in plans]
    plan = plans[0]
    ours = slice_timing(plan)
    outputs = _dcm2niix(dcm2niix_exe, folder, tmp_path)
    assert len(outputs) == 1
    meta, nii = outputs[0]
    theirs = meta.get("SliceTiming")
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    assert len(ours) == len(theirs)
    assert sorted(ours) == pytest.approx(sorted(theirs), abs=TOL)
    mapping = _map_order(plan, nii)
    assert ours == pytest.approx([theirs[m] for m in mapping], abs=TOL)


# --- synthetic: one per source -----------------------------------------------------------


def _record(k: int, **kw: Any) -> FrameRecord:
    base = FrameRecord(
        path=f"/x/{k}.dcm", rel=f"{k}.dcm", sop_instance_uid=f"1.{k}", sop_class_uid="1.2",
        frame=1, number_of_frames=1, series_instance_uid="1.9", study_instance_uid="1.8",
        modality="MR", series_number=1, series_description="", instance_number=k + 1,
        image_type=("ORIGINAL",), rows=4, columns=4, samples_per_pixel=1,
        photometric="MONOCHROME2", bits_allocated=16, bits_stored=16, pixel_representation=0,
        transfer_syntax="1.2.840.10008.1.2.1", orientation=(1, 0, 0, 0, 1, 0),
        position=(0.0, 0.0, float(k)), pixel_spacing=(1.0, 1.0), slice_thickness=1.0,
        spacing_between_slices=None, rescale_slope=1.0, rescale_intercept=0.0,
        echo_number=None, echo_time=None, acquisition_number=None, temporal_position=None,
        trigger_time=None, acquisition_time=None)
    return replace(base, **kw)


def _plan(frames: Sequence[Sequence[FrameRecord]]) -> VolumePlan:
    n = len(frames[0])
    return VolumePlan(series_instance_uid="1.9", frames=tuple(tuple(v) for v in frames),
                      affine_rows=geometry.rows_of(np.eye(4)),
                      shape=(4, 4, n, len(frames)), suffix="", label="",
                      checks=None, detail=GeometryDetail("axial", n), warnings=(), sheared=False)


def _csa_times(times: list[float]) -> Dataset:
    ds = Dataset()
    ds.Manufacturer = "SIEMENS"
    return add_csa(ds, image=csa2({"MosaicRefAcqTimes": ("FD", [repr(t) for t in times])}))


def test_mosaic_csa_times_second_volume_and_tile_order() -> None:
    # k order is the reverse of tile order here (as for a mosaic whose normal is flipped)
    vol0 = [_record(k, path="/v0", tile=4 - k) for k in range(4)]
    vol1 = [_record(k, path="/v1", tile=4 - k) for k in range(4)]
    headers = {"/v0": _csa_times([0.0, 86_399_000.0, 500.0, 86_399_500.0]),  # midnight-wrapped
               "/v1": _csa_times([0.0, 1000.0, 500.0, 1500.0])}
    sources = JobSources.from_headers(headers)
    assert slice_timing(_plan([vol0, vol1]), sources) == [1.5, 0.5, 1.0, 0.0]
    # one volume only: the midnight wrap is undone and times start at 0
    assert slice_timing(_plan([vol0]), sources) == [0.5, 1.5, 0.0, 1.0]


def test_mosaic_reads_csa_from_dataset() -> None:
    sources = JobSources.from_headers({"/m": _csa_times([0.0, 72.5, 145.0])})
    plan = _plan([[_record(k, path="/m", tile=k + 1) for k in range(3)]])
    assert slice_timing(plan, sources) == [0.0, 0.0725, 0.145]


def _ge_dataset(order: str, tr: str = "3000.0", n: int = 5) -> Dataset:
    text = f'TR "{tr}"\nSLICEORDER "{order}"\nNOSLC "{n}"\nIMODE "2D"\n'.encode()
    blob = gzip.compress(text)
    ds = Dataset()
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ScanningSequence = ["EP", "GR"]
    ds.RepetitionTime = tr
    ds.add_new((0x0025, 0x101B), "OB", struct.pack("<I", len(text)) + blob)
    return ds


@pytest.mark.parametrize(("order", "descending", "expected"), [
    ("1", False, [0.0, 1.8, 0.6, 2.4, 1.2]),  # interleaved I to S
    ("1", True, [1.2, 2.4, 0.6, 1.8, 0.0]),  # interleaved S to I (instance 1 at the top)
    ("0", False, [0.0, 0.6, 1.2, 1.8, 2.4]),
    ("0", True, [2.4, 1.8, 1.2, 0.6, 0.0]),
])
def test_ge_protocol_block(order: str, descending: bool, expected: list[float]) -> None:
    ds = _ge_dataset(order)
    n = 5
    vol = [_record(k, instance_number=(n - k if descending else k + 1)) for k in range(n)]
    assert slice_timing(_plan([vol]), _sources(vol, ds)) == pytest.approx(expected, abs=1e-9)


def _sources(frames: Sequence[FrameRecord], ds: Dataset) -> JobSources:
    """Every frame's file has the header ``ds``."""
    return JobSources.from_headers({f.path: ds for f in frames})


def test_ge_without_protocol_block_is_none() -> None:
    ds = Dataset()
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.RepetitionTime = "2000"
    vol = [_record(k, acquisition_time="120000.00") for k in range(3)]
    assert slice_timing(_plan([vol]), _sources(vol, ds)) is None


def test_acquisition_time_single_frame() -> None:
    ds = Dataset()
    ds.Manufacturer = "SIEMENS"
    ds.RepetitionTime = "2000"
    times = ["235959.900000", "000000.900000", "000000.400000"]  # crosses midnight
    vol = [_record(k, acquisition_time=t) for k, t in enumerate(times)]
    sources = _sources(vol, ds)
    assert slice_timing(_plan([vol]), sources) == pytest.approx([0.0, 1.0, 0.5], abs=1e-9)
    same = [_record(k, acquisition_time="120000") for k in range(3)]
    assert slice_timing(_plan([same]), sources) is None
    # spanning more than TR: separate acquisitions, not slice timing
    slow = [_record(k, acquisition_time=f"1200{k * 2:02d}") for k in range(3)]
    assert slice_timing(_plan([slow]), sources) is None


def test_enhanced_frame_acquisition_datetime() -> None:
    ds = Dataset()
    ds.Manufacturer = "SIEMENS"
    ds.RepetitionTime = "500"
    # FrameRecord.acquisition_time holds the time part of FrameAcquisitionDateTime
    times = ["083634.295000", "083634.135000", "083634.455000", "083634.295000"]
    vol = [_record(k, path="/enh", frame=k + 1, number_of_frames=4, acquisition_time=t)
           for k, t in enumerate(times)]
    assert slice_timing(_plan([vol]), _sources(vol, ds)) == pytest.approx(
        [0.16, 0.0, 0.32, 0.16], abs=1e-9)


def test_not_mr_or_single_slice() -> None:
    ct = _plan([[_record(k, modality="CT", acquisition_time=f"12000{k}") for k in range(3)]])
    assert slice_timing(ct) is None
    one = _plan([[_record(0, acquisition_time="120000")]])
    assert slice_timing(one) is None


def test_rounding_like_dcm2niix() -> None:
    assert round_g(5000 / 15 * 8 / 1000) == 2.66667
    assert round_g(1000 / 3 / 1000) == 0.333333
    assert tm_ms("11:48:15.5") == pytest.approx(42_495_500.0)

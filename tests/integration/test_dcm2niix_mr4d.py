"""dicomvol against dcm2niix on synthetic MR time series (issues 8 and 9).

Each test builds a series (``dicomvol.testing.mr4d``), converts it with both
tools, and compares grids (world affine after reorienting both to the closest
canonical orientation) and values volume by volume. Where the tools disagree,
the test asserts which side the DICOM headers support.

dcm2niix runs as ``dcm2niix -z n -b y -ba n -f %s_%d -o OUT DIR``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomvol.testing import mr4d
from dicomvol.testing.enhanced import enhanced_from_files
from peercheck import run_dcm2niix, run_dicomvol, volume_map

pytestmark = [pytest.mark.dcm2niix]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def test_classic_asl_agrees(dcm2niix_exe: str, tmp_path: Path) -> None:
    """96x96x40x6 from 240 frames: both tools, same grid, same volumes, same order."""
    mr4d.write_asl(tmp_path / "in")
    ((theirs, _),) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, side),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert ours.shape == theirs.shape == (96, 96, 40, 6)
    assert volume_map(theirs, ours) == list(range(6))
    assert side["TemporalOrderSource"] == ["TemporalPositionIdentifier", "InstanceNumber"]


def test_enhanced_asl_dcm2niix_stacks_repeated_positions_as_slices(
    dcm2niix_exe: str, tmp_path: Path,
) -> None:
    """Enhanced ASL: dicomvol writes the classic 4D; dcm2niix piles label and control of
    one temporal position into 2 Z slices. The headers hold only Z distinct positions,
    so half of dcm2niix's slices are where no frame is: the headers support dicomvol."""
    z = 8
    ts = mr4d.write_asl(tmp_path / "classic", shape=(24, 20, z), n_temporal=3)
    (tmp_path / "in").mkdir()
    enhanced = enhanced_from_files(ts.paths, tmp_path / "in" / "asl.dcm")
    ((ours, _),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert ours.shape == (24, 20, z, 6)
    np.testing.assert_allclose(np.asarray(ours.dataobj), ts.values, atol=1e-6)
    theirs = [img for img, _ in run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")]
    ds = pydicom.dcmread(enhanced, stop_before_pixels=True)
    ipps = np.array([[float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
                     for fg in ds.PerFrameFunctionalGroupsSequence])
    distinct = np.unique(ipps.round(4), axis=0)
    assert len(distinct) == z
    if [img.shape for img in theirs] == [ours.shape]:  # a dcm2niix that agrees
        assert volume_map(theirs[0], ours) == list(range(6))
        return
    for img in theirs:
        nz = img.shape[2]
        assert nz > z, img.shape  # more slices than the headers have positions
        lps = LPS_TO_RAS @ img.affine
        centres = np.array([(lps @ [0, 0, k, 1])[:3] for k in range(nz)])
        # the in-plane origin of a slice is some frame's IPP up to a flip of i or j; compare
        # along the slice normal only
        normal = np.cross(ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
                          .ImageOrientationPatient[:3], ds.SharedFunctionalGroupsSequence[0]
                          .PlaneOrientationSequence[0].ImageOrientationPatient[3:])
        header_d = np.unique((ipps @ normal).round(3))
        theirs_d = (centres @ normal).round(3)
        misplaced = [d for d in theirs_d if np.min(np.abs(header_d - d)) > 0.01]
        assert len(misplaced) >= nz - z, (theirs_d, header_d)


def test_dce_agrees(dcm2niix_exe: str, tmp_path: Path) -> None:
    """Pre-contrast AcquisitionNumber 1 and two passes sharing 2: both write one 60x3 4D."""
    mr4d.write_dce(tmp_path / "in")
    ((theirs, _),) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, side),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert ours.shape == theirs.shape == (16, 12, 60, 3)
    assert volume_map(theirs, ours) == [0, 1, 2]
    assert side["TemporalOrderSource"] == ["AcquisitionTime"]


def test_time_order_against_instance_order(dcm2niix_exe: str, tmp_path: Path) -> None:
    """InstanceNumber and AcquisitionTime disagree: dcm2niix follows InstanceNumber (and
    warns), dicomvol the acquisition times, which the headers say are the time order."""
    times = ["120200", "120000", "120100"]
    ts = mr4d.write_time_series(tmp_path / "in", shape=(8, 6, 4), n_volumes=3,
                                per_volume={"AcquisitionNumber": [1, 2, 2],
                                            "AcquisitionTime": times})
    ((theirs, _),) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, side),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    mapping = volume_map(theirs, ours)  # dcm2niix volume t is dicomvol volume mapping[t]
    ours_times = side["TemporalOrderValues"]["AcquisitionTime"]
    assert ours_times == sorted(ours_times)
    # what the headers say of dcm2niix's order: the files of its volume t, in its order
    header_times = []
    for t in range(3):
        files = [p for p in ts.paths
                 if int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) - 1
                 in range(4 * t, 4 * t + 4)]
        header_times.append({str(pydicom.dcmread(p, stop_before_pixels=True).AcquisitionTime)
                             for p in files}.pop())
    if mapping != [0, 1, 2]:
        assert header_times != sorted(header_times)  # dcm2niix: not in time order
        assert [ours_times[u] for u in mapping] == header_times


def test_multiphase_asl(dcm2niix_exe: str, tmp_path: Path) -> None:
    """Temporal positions x trigger delays: dicomvol one 4D of 24; dcm2niix one file per
    trigger delay. Every frame shares one series and one grid (the headers need no split):
    each dcm2niix file is exactly our volumes of its TriggerTime, in the same order."""
    mr4d.write_multiphase_asl(tmp_path / "in")
    theirs = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, side),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert ours.shape == (16, 12, 5, 24)
    triggers = side["TemporalOrderValues"]["TriggerTime"]
    if len(theirs) == 1:  # a dcm2niix that writes the series as one 4D: it must agree
        assert volume_map(theirs[0][0], ours) == list(range(24))
        return
    covered: list[int] = []
    for img, _ in theirs:
        mapping = volume_map(img, ours)
        assert mapping == sorted(mapping)
        (trigger,) = {triggers[u] for u in mapping}  # one trigger delay per dcm2niix file
        assert Path(img.get_filename()).stem.endswith(f"_t{trigger:g}")
        covered.extend(mapping)
    assert sorted(covered) == list(range(24))
    assert len({tuple(np.round(img.affine, 3).ravel()) for img, _ in theirs}) == 1


def test_enhanced_shuffled_frames_dimension_index_order(dcm2niix_exe: str,
                                                        tmp_path: Path) -> None:
    """Enhanced ASL whose frames are stored in random order, label and control told apart
    only by the last DimensionIndexValues item. Both tools order frames by
    DimensionIndexValues (their outputs do not depend on the frame order); they differ in
    which item varies slowest. PS3.3 7.5.2: "The first item of the Dimension Index
    Sequence shall be the slowest varying index": (stack, position, temporal, repeat), so
    label and control alternate within each temporal position, as the classic files'
    InstanceNumbers store them (dicomvol). dcm2niix takes the last item as the slowest
    (``compareTDCMdim``), and writes the label and control images as extra slices."""
    from dicomvol.testing.enhanced import shuffle_frames
    from peercheck import canonical

    ts = mr4d.write_asl(tmp_path / "classic", shape=(12, 10, 4), n_temporal=3)
    outputs = {}
    for name, seed in (("stored", None), ("shuffled", 3)):
        (tmp_path / name).mkdir()
        path = enhanced_from_files(ts.paths, tmp_path / name / "asl.dcm")
        if seed is not None:
            shuffle_frames(path, (), seed=seed)
        outputs[name] = (run_dcm2niix(dcm2niix_exe, tmp_path / name, tmp_path / f"dc_{name}"),
                         run_dicomvol(tmp_path / name, tmp_path / f"dv_{name}"))
    for tool in (0, 1):  # neither depends on the storage order of the frames
        (a, _), = outputs["stored"][tool]
        (b, _), = outputs["shuffled"][tool]
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    ((theirs, _),), ((ours, _),) = outputs["shuffled"]
    np.testing.assert_allclose(np.asarray(ours.dataobj), ts.values, atol=1e-6)  # the truth
    dc, _ = canonical(theirs)
    dv, _ = canonical(ours)
    assert dc.shape == (12, 10, 8, 3) and dv.shape == (12, 10, 4, 6)
    # dcm2niix's 2D images in its order = ours with repeat slowest, then temporal position
    for t in range(3):
        for s in range(8):
            index = t * 8 + s  # of dcm2niix's 24 images, 4 slices each of 6 volumes
            repeat, temporal, k = index // 12, index % 12 // 4, index % 4
            np.testing.assert_allclose(dc[:, :, s, t], dv[:, :, k, 2 * temporal + repeat])

"""NM reconstructions (SPECT): slices placed as PS3.3 places them, gates as a 4D axis.

Every voxel of the synthetic files encodes its slice, gate, row and column
(``dicomvol.testing.nm.nm_value``), and the expected place of every pixel is computed
here from the standard's rule (C.8.4.15: slice n at (n - 1) x Spacing Between Slices
along row x column from the Detector Information item's Image Position), independently
of dicomvol's geometry code. dcm2niix converts the plain case to the same world grid
and values.
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
from dicomvol.testing.nm import NmSeries, nm_value, write_nm
from exactness import check_exact
from peercheck import run_dcm2niix, volume_map

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Placement tolerance (the contract's 0.01 voxel).
VOXEL_TOL = 0.01
OBLIQUE = (0.9659258, 0.2588190, 0.0, 0.0, 0.0, -1.0)


def _convert(src: Path, out: Path) -> dict[str, Any]:
    dicomvol.convert([src], out, ConvertOptions(jobs=1, compress=False))
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    assert report["ledger"]["balanced"] is True
    return report


def _assert_every_voxel_where_the_standard_puts_it(image: Any, nm: NmSeries) -> None:
    """Each stored pixel of each frame is found at the voxel its world position maps to."""
    data = np.asarray(image.dataobj)
    data = data.reshape((*data.shape[:3], -1))
    inverse = np.linalg.inv(image.affine)
    iop = np.asarray(nm.orientation)
    row, col, normal = iop[:3], iop[3:], np.cross(iop[:3], iop[3:])
    r, c = np.indices((nm.rows, nm.columns))
    for s, g in zip(nm.slices, nm.gates, strict=True):
        lps = (np.asarray(nm.first_position)[:, None, None]
               + ((s - 1) * nm.spacing * normal)[:, None, None]
               + row[:, None, None] * c * nm.pixel_spacing[1]
               + col[:, None, None] * r * nm.pixel_spacing[0])
        ras = LPS_TO_RAS[:3, :3] @ lps.reshape(3, -1)
        ijk = inverse[:3, :3] @ ras + inverse[:3, 3:]
        assert np.abs(ijk - np.round(ijk)).max() < VOXEL_TOL
        i, j, k = np.round(ijk).astype(int)
        assert all(((n >= 0) & (n < size)).all() for n, size in zip((i, j, k), data.shape,
                                                                    strict=False))
        assert np.array_equal(data[i, j, k, g - 1], nm_value(s, g, r, c).ravel())


@pytest.mark.parametrize("case", ["plain", "negative_spacing", "shuffled_slices", "oblique",
                                  "modality_ot"])
def test_recon_tomo_is_one_exact_volume(tmp_path: Path, case: str) -> None:
    kwargs: dict[str, Any] = {
        "plain": {}, "negative_spacing": {"spacing": -4.5},
        "shuffled_slices": {"slice_order": [3, 1, 8, 2, 7, 4, 6, 5]},
        "oblique": {"orientation": OBLIQUE}, "modality_ot": {"modality": "OT"},
    }[case]
    nm = write_nm(tmp_path / "in" / "spect.dcm", **kwargs)
    report = _convert(tmp_path / "in", tmp_path / "out")
    assert report["skipped"] == [] and report["errors"] == []
    (name,) = report["outputs"]
    image = nib.load(tmp_path / "out" / name)
    assert image.shape == (5, 6, 8)
    np.testing.assert_allclose(image.header.get_zooms(), (3.0, 4.0, 4.5), rtol=1e-6)
    _assert_every_voxel_where_the_standard_puts_it(image, nm)
    check_exact(tmp_path / "out" / name, [tmp_path / "in"])


def test_gated_reconstruction_is_one_4d_of_its_gates(tmp_path: Path) -> None:
    nm = write_nm(tmp_path / "in" / "gated.dcm", n_gates=3, slice_order=[2, 1, 4, 3, 5])
    report = _convert(tmp_path / "in", tmp_path / "out")
    assert report["skipped"] == [] and report["errors"] == []
    (name,) = report["outputs"]
    image = nib.load(tmp_path / "out" / name)
    assert image.shape == (5, 6, 5, 3)
    _assert_every_voxel_where_the_standard_puts_it(image, nm)
    sidecar = json.loads((tmp_path / "out" / name.replace(".nii", ".json")).read_text())
    assert len(sidecar["SourceInstances"]) == 15
    assert [e["Frame"] for e in sidecar["SourceInstances"][:5]] == [2, 1, 4, 3, 5]


@pytest.mark.parametrize(("extra", "geometry", "reason"), [
    ({}, False, "no ImageOrientationPatient or ImagePositionPatient"),
    ({"SpacingBetweenSlices": None}, True, "no SpacingBetweenSlices (0018,0088)"),
    ({"EnergyWindowVector": [1, 2] * 4}, True, "frames differ by EnergyWindowVector"),
    ({"SliceVector": [1, 2, 3]}, True, "SliceVector has 3 values for 8 frames"),
])
def test_an_unplaceable_reconstruction_is_skipped_with_the_reason(
        tmp_path: Path, extra: dict[str, Any], geometry: bool, reason: str) -> None:
    write_nm(tmp_path / "in" / "spect.dcm", extra=extra, detector_geometry=geometry)
    report = _convert(tmp_path / "in", tmp_path / "out")
    assert report["outputs"] == []
    (entry,) = report["skipped"]
    assert entry["Frame"] is None and entry["File"] == "spect.dcm"
    assert entry["Reason"].startswith("NM reconstruction: ") and reason in entry["Reason"]
    # the entry stands for all 8 frames: the summary counts frames, as the ledger does
    assert report["summary"]["frames_skipped"] == report["ledger"]["frames_skipped"] == 8


def test_an_nm_planar_image_is_not_a_reconstruction(tmp_path: Path) -> None:
    write_nm(tmp_path / "in" / "planar.dcm",
             extra={"ImageType": ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]})
    report = _convert(tmp_path / "in", tmp_path / "out")
    assert report["outputs"] == []
    (entry,) = report["skipped"]
    assert "cannot be placed in patient space" in entry["Reason"]


@pytest.mark.parametrize("case", ["oblique", "negative_spacing", "shuffled_slices"])
def test_recon_tomo_against_dcm2niix(dcm2niix_exe: str, tmp_path: Path, case: str) -> None:
    """Same grid and values as dcm2niix, except where dcm2niix's output contradicts the
    headers: it stacks slices along +normal whatever the sign of SpacingBetweenSlices, and
    takes frames in file order whatever SliceVector says (the standard: C.8.4.15, C.8.4.8)."""
    kwargs: dict[str, Any] = {"oblique": {"orientation": OBLIQUE},
                              "negative_spacing": {"spacing": -4.5},
                              "shuffled_slices": {"slice_order": [3, 1, 8, 2, 7, 4, 6, 5]}}[case]
    nm = write_nm(tmp_path / "in" / "spect.dcm", **kwargs)
    (theirs,) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dcm2niix")
    report = _convert(tmp_path / "in", tmp_path / "out")
    (name,) = report["outputs"]
    ours = nib.load(tmp_path / "out" / name)
    _assert_every_voxel_where_the_standard_puts_it(ours, nm)
    if case == "oblique":
        assert volume_map(theirs[0], ours) == [0]
        return
    with pytest.raises(AssertionError):  # dcm2niix: some pixels are not where the headers say
        _assert_every_voxel_where_the_standard_puts_it(theirs[0], nm)


def test_the_terminal_counts_the_frames_of_a_skipped_instance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dicomvol.cli.main import main

    write_nm(tmp_path / "in" / "spect.dcm", extra={"SpacingBetweenSlices": None})
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped 8 frame(s): NM reconstruction: no SpacingBetweenSlices" in out
    assert "0 volume(s) written" in out and ", 8 frame(s) skipped," in out


def test_a_one_slice_reconstruction_is_placed_from_the_detector_item(tmp_path: Path) -> None:
    nm = write_nm(tmp_path / "in" / "one.dcm", n_slices=1, orientation=OBLIQUE)
    report = _convert(tmp_path / "in", tmp_path / "out")
    assert report["skipped"] == [] and report["errors"] == []
    (name,) = report["outputs"]
    _assert_every_voxel_where_the_standard_puts_it(nib.load(tmp_path / "out" / name), nm)

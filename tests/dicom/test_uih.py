"""United Imaging grid ("VFRAME") images (issue 9 item 5): a grid of slices in one image
without ImagePositionPatient, the geometry in private group 0065. Synthetic series from
:func:`dicomvol.testing.uih.write_uih_grid_series`; dcm2niix is the peer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol import ConvertOptions
from dicomvol.dicom.uih import is_uih_grid, uih_grid_info
from dicomvol.testing.uih import write_uih_grid_series
from peercheck import run_dcm2niix, run_dicomvol, volume_map

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("positions", ["all", "first"])
def test_uih_grid_is_exact(tmp_path: Path, positions: str) -> None:
    truth = write_uih_grid_series(tmp_path / "in", positions=positions)
    ds = pydicom.dcmread(truth.paths[0], stop_before_pixels=True)
    assert "ImagePositionPatient" not in ds and is_uih_grid(ds)
    info = uih_grid_info(ds)
    assert (info.n_slices, info.tiles_per_side, info.tile_rows, info.tile_columns) == (
        10, 4, 12, 12)
    # the independent check reads each tile's position from its MRVFrameSequence item
    roots = [tmp_path / "in"] if positions == "all" else [_all_positions(tmp_path)]
    ((img, side),) = run_dicomvol(tmp_path / "in", tmp_path / "out", roots)
    assert img.shape == (12, 12, 10, 2)
    np.testing.assert_allclose(np.asarray(img.dataobj), truth.values, atol=1e-6)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ truth.affine_lps, atol=1e-4)
    assert [e["Tile"] for e in side["SourceInstances"][:10]] == list(range(1, 11))


def _all_positions(tmp_path: Path) -> Path:
    """The same series (same UIDs and names) with every slice's item, for the check."""
    full = write_uih_grid_series(tmp_path / "full", positions="all")
    first = sorted((tmp_path / "in").iterdir())
    for src, path in zip(full.paths, first, strict=True):
        ds = pydicom.dcmread(src)
        ours = pydicom.dcmread(path, stop_before_pixels=True)
        ds.SOPInstanceUID = ours.SOPInstanceUID
        ds.file_meta.MediaStorageSOPInstanceUID = ours.SOPInstanceUID
        ds.save_as(src)
    return tmp_path / "full"


@pytest.mark.parametrize(("variant", "named"), [
    ({"positions": "none"}, "(0065,xx51) MRVFrameSequence"),
    ({"count": False}, "(0065,xx50) MRNumberOfSliceInVolume"),
    ({"positions": "first", "normal": False}, "(0065,xx14) SliceNormalVector"),
])
def test_unreadable_grid_is_skipped_naming_the_tag(tmp_path: Path, variant: dict[str, object],
                                                   named: str) -> None:
    write_uih_grid_series(tmp_path / "in", n_volumes=1, **variant)  # type: ignore[arg-type]
    out = tmp_path / "out"
    dicomvol.convert([tmp_path / "in"], out, ConvertOptions(jobs=1, compress=False))
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert report["outputs"] == [] and report["errors"] == []
    ((entry,),) = [report["skipped"]]
    assert named in entry["Reason"] and entry["Reason"].startswith("UIH grid image")


def test_uih_grid_matches_dcm2niix(dcm2niix_exe: str, tmp_path: Path) -> None:
    write_uih_grid_series(tmp_path / "in")
    ((theirs, _),) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, _),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert volume_map(theirs, ours) == [0, 1]


def test_uih_grid_without_positions_dcm2niix_invents_them(dcm2niix_exe: str,
                                                         tmp_path: Path) -> None:
    """No MRVFrameSequence and no ImagePositionPatient: dcm2niix still writes a volume, at a
    position no header gives; dicomvol skips it, naming (0065,xx51)."""
    write_uih_grid_series(tmp_path / "in", positions="none")
    theirs = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ds = pydicom.dcmread(next((tmp_path / "in").iterdir()), stop_before_pixels=True)
    assert "ImagePositionPatient" not in ds
    with pytest.raises(KeyError):
        ds.private_block(0x0065, "Image Private Header")[0x51]
    result = dicomvol.scan([tmp_path / "in"])
    assert result.plans == [] and len(result.skipped) == 2
    for img, _ in theirs:  # whatever dcm2niix wrote is placed by no header
        assert img.shape[:3] == (12, 12, 10)


#: (b-value, LPS direction) per grid volume: a b = 0 and two oblique directions.
GRID_DWI = [(0.0, None), (1000.0, (0.6, 0.48, 0.64)), (1000.0, (0.36, -0.48, 0.8))]


def test_uih_grid_diffusion_matches_dcm2niix_and_headers(dcm2niix_exe: str,
                                                         tmp_path: Path) -> None:
    """UIH grid DWI: b-value (0065,1009) and direction (0065,1037, along row, column and
    normal) per grid file give one 4D whose bval/bvec equal the headers' and dcm2niix's."""
    from dicomvol.dicom.diffusion import SOURCE_UIH
    from dicomvol.testing.geometry import rotation_matrix
    from dicomvol.testing.reproduce import BVAL_TOL, BVEC_TOL, load_images, reproduced

    rot = rotation_matrix((1.0, 0.3, 0.2), 20.0)
    row, col = rot @ np.array([1.0, 0.0, 0.0]), rot @ np.array([0.0, 1.0, 0.0])
    write_uih_grid_series(tmp_path / "in", n_volumes=3, row_dir=row, col_dir=col,
                          diffusion=GRID_DWI)
    ((img, side),) = run_dicomvol(tmp_path / "in", tmp_path / "dv")
    assert img.shape == (12, 12, 10, 3) and side["DiffusionGradientSource"] == SOURCE_UIH
    (ours,) = load_images(tmp_path / "dv")
    assert ours.table is not None
    np.testing.assert_allclose(ours.table[0], [b for b, _ in GRID_DWI], atol=BVAL_TOL)
    truth = [np.zeros(3) if d is None else np.asarray(d) for _, d in GRID_DWI]
    np.testing.assert_allclose(ours.table[1], truth, atol=BVEC_TOL)
    run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    theirs = load_images(tmp_path / "dc", dcm2niix=True)
    results = reproduced(theirs, [ours])
    assert len(results) == 3 and all(ok for _, _, ok in results), results


def test_uih_diffusion_precedence() -> None:
    """(0065,1009)/(0065,1037) win over the standard attributes; each fills what the other
    lacks; without either private element the standard attributes are read as usual."""
    from pydicom.dataset import Dataset

    from dicomvol.dicom.diffusion import SOURCE_STANDARD, SOURCE_UIH, read_diffusion

    ds = Dataset()
    ds.Manufacturer = "UIH"
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal: row = +y, col = -z
    ds.DiffusionBValue = 500.0
    ds.DiffusionGradientOrientation = [1.0, 0.0, 0.0]
    assert read_diffusion(ds) == ((500.0, (1.0, 0.0, 0.0)), SOURCE_STANDARD)
    block = ds.private_block(0x0065, "Image Private Header", create=True)
    block.add_new(0x09, "FD", 1000.0)  # b-value only: the standard direction stays
    assert read_diffusion(ds) == ((1000.0, (1.0, 0.0, 0.0)), SOURCE_UIH)
    block.add_new(0x37, "FD", [1.0, 0.0, 0.0])  # along the row: patient +y
    (b, direction), source = read_diffusion(ds)  # type: ignore[misc]
    assert source == SOURCE_UIH and b == pytest.approx(1000.0)
    np.testing.assert_allclose(direction, (0.0, 1.0, 0.0), atol=1e-12)
    block.add_new(0x37, "FD", [0.0, 0.0, 1.0])  # along the normal cross(row, col) = -x
    (_, direction), _ = read_diffusion(ds)  # type: ignore[misc]
    np.testing.assert_allclose(direction, (-1.0, 0.0, 0.0), atol=1e-12)
    block.add_new(0x09, "FD", 0.0)
    assert read_diffusion(ds) == ((0.0, None), SOURCE_UIH)

"""Siemens mosaics whose CSA image header was removed (issue 9 item 3).

De-identification often drops (0029,xx10); (0019,xx0A) NumberOfImagesInMosaic
and the protocol in the CSA series header (``sSliceArray``) still give the
slices and their positions. Synthetic series from
:func:`dicomvol.testing.mosaic.write_mosaic_series`; dcm2niix is the peer.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol import ConvertOptions
from dicomvol.dicom.mosaic import mosaic_info
from dicomvol.dicom.private import siemens_protocol
from dicomvol.errors import HeaderError
from dicomvol.testing.mosaic import SyntheticMosaic, mosaic_image_csa, write_mosaic_series
from dicomvol.testing.siemens import add_csa
from peercheck import run_dcm2niix, run_dicomvol, volume_map

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: What each variant leaves of the three places that give NumberOfImagesInMosaic.
VARIANTS = {
    "all headers": {},
    "no image header": {"image_header": False},
    "protocol only": {"image_header": False, "n_images_tag": False},
    "(0019,xx0A) only": {"image_header": False, "protocol": False},
}


def restored(truth: SyntheticMosaic, tmp_path: Path) -> list[Path]:
    """Copies of the files with the CSA image header put back (same names and UIDs): the
    independent exactness check reads mosaics with nibabel, which needs that header."""
    folder = tmp_path / "restored"
    folder.mkdir()
    for path in truth.paths:
        ds = pydicom.dcmread(path)
        add_csa(ds, image=mosaic_image_csa(10, list(truth.affine_lps[:3, 2] / 3.5), (12, 16)))
        ds.save_as(folder / path.name)
    return [folder]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_mosaic_without_image_header_is_exact(tmp_path: Path, variant: str) -> None:
    truth = write_mosaic_series(tmp_path / "in", row_dir=(0.0, 1.0, 0.0),
                                col_dir=(0.0, 0.0, -1.0), **VARIANTS[variant])  # sagittal
    ((img, side),) = run_dicomvol(tmp_path / "in", tmp_path / "out", restored(truth, tmp_path))
    assert img.shape == (16, 12, 10, 2)
    np.testing.assert_allclose(np.asarray(img.dataobj), truth.values, atol=1e-6)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ truth.affine_lps, atol=1e-4)
    assert [e.get("Tile") for e in side["SourceInstances"][:10]] == list(range(1, 11))


def test_protocol_gives_the_normal_sign(tmp_path: Path) -> None:
    """A mosaic whose tiles run against row x column: the protocol's sNormal says so."""
    truth = write_mosaic_series(tmp_path / "in", row_dir=(0.0, 1.0, 0.0),
                                col_dir=(0.0, 0.0, 1.0), image_header=False)
    ds = pydicom.dcmread(truth.paths[0], stop_before_pixels=True)
    info = mosaic_info(ds)
    protocol = siemens_protocol(ds)
    assert protocol is not None and protocol["sSliceArray.lSize"] == "10"
    assert info.n_slices == 10
    np.testing.assert_allclose(info.normal, truth.affine_lps[:3, 2] / 3.5, atol=1e-9)
    step = np.asarray(info.positions[1]) - np.asarray(info.positions[0])
    np.testing.assert_allclose(step, truth.affine_lps[:3, 2], atol=1e-6)


def test_no_layout_names_every_missing_attribute(tmp_path: Path) -> None:
    write_mosaic_series(tmp_path / "in", image_header=False, n_images_tag=False,
                        protocol=False, n_volumes=1)
    out = tmp_path / "out"
    dicomvol.convert([tmp_path / "in"], out, ConvertOptions(jobs=1, compress=False))
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert report["outputs"] == [] and report["errors"] == []
    ((entry,),) = [report["skipped"]]  # an image whose layout cannot be read: skipped, said why
    assert entry["File"] == "MOSAIC0001.dcm"
    for name in ("CSA image header (0029,xx10)", "NumberOfImagesInMosaic (0019,xx0A)",
                 "sSliceArray.lSize", "CSA series header (0029,xx20)"):
        assert name in entry["Reason"]


def test_protocol_disagreeing_with_the_geometry_is_an_error(tmp_path: Path) -> None:
    truth = write_mosaic_series(tmp_path / "in", image_header=False, n_volumes=1)
    ds = pydicom.dcmread(truth.paths[0], stop_before_pixels=True)
    ds.SpacingBetweenSlices = "4.5"  # tiles 1 mm further apart than the protocol's slices
    with pytest.raises(HeaderError, match=r"mm from the slice centres .*sSliceArray"):
        mosaic_info(ds)


@pytest.mark.parametrize("variant", ["all headers", "no image header", "(0019,xx0A) only"])
def test_mosaic_matches_dcm2niix(dcm2niix_exe: str, tmp_path: Path, variant: str) -> None:
    truth = write_mosaic_series(tmp_path / "in", **VARIANTS[variant])
    ((theirs, _),) = run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")
    ((ours, _),) = run_dicomvol(tmp_path / "in", tmp_path / "dv", restored(truth, tmp_path))
    assert volume_map(theirs, ours) == [0, 1]


def test_protocol_only_mosaic_dcm2niix_writes_the_tiles_as_one_image(
    dcm2niix_exe: str, tmp_path: Path,
) -> None:
    """Without (0029,xx10) and (0019,xx0A), dcm2niix writes the whole mosaic as one slice.
    The headers say otherwise: ImageType MOSAIC and the protocol's sSliceArray.lSize 10,
    whose slice centres are where dicomvol puts its 10 tiles (checked by mosaic_info)."""
    truth = write_mosaic_series(tmp_path / "in", **VARIANTS["protocol only"])
    ((ours, _),) = run_dicomvol(tmp_path / "in", tmp_path / "dv", restored(truth, tmp_path))
    theirs = [img for img, _ in run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc")]
    ds = pydicom.dcmread(truth.paths[0], stop_before_pixels=True)
    assert "MOSAIC" in ds.ImageType
    assert (siemens_protocol(ds) or {})["sSliceArray.lSize"] == "10"
    if [img.shape for img in theirs] == [ours.shape]:  # a dcm2niix that reads the protocol
        assert volume_map(theirs[0], ours) == [0, 1]
        return
    (img,) = theirs
    assert img.shape[2] == 1 and img.shape[:2] == (ds.Columns, ds.Rows)
    np.testing.assert_allclose(np.asarray(nib.load(img.get_filename()).dataobj)[..., 0, 0].shape,
                               (ds.Columns, ds.Rows))

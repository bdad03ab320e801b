"""Philips private scaling: per-frame values against dcm2niix's JSON, NIfTI header and voxels.

dcm2niix (default ``-p y``) writes Philips floating-point values: its JSON
reports PhilipsRescaleSlope/Intercept and PhilipsScaleSlope with
``UsePhilipsFloatNotDisplayScaling: 1``, and its NIfTI header holds
``scl_slope = 1/SS``, ``scl_inter = RI/(RS*SS)``. With ``-p n`` it writes the
display scaling ``(RS, RI)``. The scaling dicomvol reads from the per-frame
functional groups (PixelValueTransformationSequence and the private per-frame
item (2005,140F)) must give exactly those numbers.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import require_dcm2niix
from dicomvol.dicom.philips import (
    philips_nifti_scaling,
    philips_scaling,
    philips_values,
)
from dicomvol.errors import UsageError

#: dcm2niix prints JSON numbers with %g (6 significant digits).
JSON_RELATIVE_TOLERANCE = 1e-5
#: NIfTI scl_slope / scl_inter are float32; voxel values are compared at this precision.
FLOAT32_RELATIVE_TOLERANCE = 1e-6
#: dcm2niix's scl_slope against ours. For the Philips B0 field map (Hz) frames of
#: enhanced_mr/Philips dcm2niix writes scl_slope = 4001/16384 = 0.24420166, 5.8e-6
#: relative from 1/SS = 0.24420023 (its scl_inter is exactly RI/(RS*SS) in float32);
#: no header value explains the difference, so headers are compared at JSON precision.
NIFTI_RELATIVE_TOLERANCE = 1e-5

PHILIPS_SERIES = [
    "edge_cases/philips_enhanced/dti/001",
    "edge_cases/philips_enhanced/dti/001_implicit",
    "edge_cases/philips_enhanced/fmri/001",
    "edge_cases/philips_enhanced/anatomical/001",
    "enhanced_mr/Philips",
]


def _dcm2niix() -> str:
    return require_dcm2niix()


def _convert(src: Path, out: Path, *extra: str) -> list[Path]:
    out.mkdir(parents=True)
    subprocess.run([_dcm2niix(), "-z", "n", "-b", "y", *extra, "-f", "%s_%p", "-o", str(out),
                    str(src)], capture_output=True, text=True, check=True)
    return sorted(out.glob("*.nii"))


def _header(nii: Path) -> Any:
    with nii.open("rb") as handle:
        return nib.Nifti1Header.from_fileobj(handle)


def _frame_scalings(src: Path) -> set[tuple[float, float, float]]:
    found: set[tuple[float, float, float]] = set()
    for path in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for fg in ds.PerFrameFunctionalGroupsSequence:
            scaling = philips_scaling(ds, fg)
            assert scaling is not None
            found.add(scaling)
    return found


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def _same(a: tuple[float, ...], b: tuple[float, ...], rel: float) -> bool:
    return all(_close(x, y, rel) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("series", PHILIPS_SERIES)
def test_per_frame_scaling_matches_dcm2niix(corpus: Path, tmp_path: Path, series: str) -> None:
    src = corpus / series
    ours = _frame_scalings(src)
    niis = _convert(src, tmp_path / "fp")
    assert niis
    reported = set()
    for nii in niis:
        meta = json.loads(nii.with_suffix(".json").read_text())
        assert meta["UsePhilipsFloatNotDisplayScaling"] == 1
        triple = (meta["PhilipsRescaleSlope"], meta["PhilipsRescaleIntercept"],
                  meta["PhilipsScaleSlope"])
        reported.add(triple)
        match = [t for t in ours if _same(t, triple, JSON_RELATIVE_TOLERANCE)]
        assert len(match) == 1, f"{nii.name}: dcm2niix {triple} not among ours {ours}"
        rs, ri, ss = match[0]
        header = _header(nii)
        expected = philips_nifti_scaling(rs, ri, ss, "fp")
        assert _same((float(header["scl_slope"]), float(header["scl_inter"])), expected,
                     NIFTI_RELATIVE_TOLERANCE)
    assert len(reported) == len(ours)  # every scaling of the series is one dcm2niix output


def test_display_mode_matches_dcm2niix_p_n(corpus: Path, tmp_path: Path) -> None:
    src = corpus / "enhanced_mr/Philips"
    ours = _frame_scalings(src)
    for nii in _convert(src, tmp_path / "display", "-p", "n"):
        header = _header(nii)
        pair = (float(header["scl_slope"]), float(header["scl_inter"]))
        assert any(_same(pair, philips_nifti_scaling(rs, ri, ss, "display"),
                         NIFTI_RELATIVE_TOLERANCE) for rs, ri, ss in ours), pair


def test_fp_values_equal_dcm2niix_voxels(corpus: Path, tmp_path: Path) -> None:
    """Every FP value we compute from the stored pixels is a voxel of dcm2niix's volume."""
    src = corpus / "edge_cases/philips_enhanced/dti/001"
    path = next(src.glob("*.dcm"))
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    ours = []
    for n, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        scaling = philips_scaling(ds, fg)
        assert scaling is not None
        ours.append(philips_values(pixels[n], *scaling, mode="fp").ravel())
    (nii,) = _convert(src, tmp_path / "fp")
    img: Any = nib.load(str(nii))
    theirs = np.sort(np.asarray(img.get_fdata(), dtype=np.float64).ravel())
    mine = np.sort(np.concatenate(ours))
    np.testing.assert_allclose(mine, theirs, rtol=FLOAT32_RELATIVE_TOLERANCE, atol=1e-6)


def _philips(**kw: Any) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.Manufacturer = "Philips Medical Systems"
    for key, value in kw.items():
        setattr(ds, key, value)
    return ds


def test_fp_formula_on_synthetic_dataset() -> None:
    ds = _philips(RescaleSlope="2", RescaleIntercept="-10")
    assert philips_scaling(ds) is None  # no private ScaleSlope
    ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x0E, "FL", 0.25)
    assert philips_scaling(ds) == (2.0, -10.0, 0.25)
    stored = np.array([0, 5, 10], dtype=np.int16)
    np.testing.assert_array_equal(philips_values(stored, 2.0, -10.0, 0.25, "display"),
                                  [-10.0, 0.0, 10.0])
    # FP = (RS*SV + RI) / (RS*SS) = (2*SV - 10) / 0.5
    np.testing.assert_array_equal(philips_values(stored, 2.0, -10.0, 0.25, "fp"),
                                  [-20.0, 0.0, 20.0])
    slope, inter = philips_nifti_scaling(2.0, -10.0, 0.25, "fp")
    np.testing.assert_allclose(stored * slope + inter, [-20.0, 0.0, 20.0])
    assert philips_nifti_scaling(2.0, -10.0, 0.25, "display") == (2.0, -10.0)
    with pytest.raises(UsageError):
        philips_values(stored, 2.0, -10.0, 0.25, "float")
    with pytest.raises(UsageError):
        philips_values(stored, 2.0, -10.0, 0.0, "fp")


def test_private_tag_variants() -> None:
    # no private creator (anonymised), value read without VR (raw little-endian FL)
    ds = _philips(RescaleSlope="1.5", RescaleIntercept="0")
    ds.add_new((0x2005, 0x100E), "UN", struct.pack("<f", 0.125))
    assert philips_scaling(ds) == (1.5, 0.0, 0.125)
    # another vendor's block at 0x10: not Philips' ScaleSlope
    other = _philips(RescaleSlope="1.5", RescaleIntercept="0")
    other.add_new((0x2005, 0x0010), "LO", "SOMEONE ELSE")
    other.add_new((0x2005, 0x100E), "FL", 0.125)
    assert philips_scaling(other) is None
    siemens = pydicom.Dataset()
    siemens.Manufacturer = "SIEMENS"
    siemens.RescaleSlope = "1"
    assert philips_scaling(siemens) is None


def test_enhanced_without_frame_uses_frame_one(corpus: Path) -> None:
    ds = pydicom.dcmread(corpus / "enhanced_mr/Philips/IM_0027_fMAP.dcm",
                         stop_before_pixels=True)
    first = philips_scaling(ds, ds.PerFrameFunctionalGroupsSequence[0])
    assert philips_scaling(ds) == first

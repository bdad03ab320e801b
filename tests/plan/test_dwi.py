"""Diffusion planning: one 4D of the acquired volumes in acquisition order, derived images apart.

Synthetic series from ``dicomvol.testing.diffusion`` (no dcm2niix here; the per-vendor
differential tests are ``tests/integration/test_dcm2niix_diffusion.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.dicom.diffusion import (
    SOURCE_GE,
    SOURCE_SIEMENS,
    SOURCE_STANDARD,
    diffusion_of,
    read_diffusion,
)
from dicomvol.dicom.dwikind import derived_kind
from dicomvol.plan.dwi import acquisition_volumes
from dicomvol.plan.splits import position_clusters
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

B0 = DwiVolume(0.0)
X, Y, Z = (DwiVolume(1000.0, (1.0, 0.0, 0.0)), DwiVolume(1000.0, (0.0, 1.0, 0.0)),
           DwiVolume(1000.0, (0.0, 0.0, 1.0)))
#: GE-like: the b0 first, six weighted volumes (repeats and a second shell).
GE_VOLUMES = [B0, X, Y, Z, B0, X, DwiVolume(2000.0, (0.0, 0.6, 0.8))]


def _table(out: Path) -> tuple[list[Path], np.ndarray]:
    niis = sorted(out.glob("*.nii.gz"))
    bvals = [n for n in niis if n.with_name(n.name[:-7] + ".bval").is_file()]
    assert len(bvals) == 1, niis
    return niis, np.loadtxt(bvals[0].with_name(bvals[0].name[:-7] + ".bval"))


@pytest.mark.parametrize("b0_image_type", [None, ["ORIGINAL", "PRIMARY", "OTHER"]])
def test_ge_b0_and_weighted_volumes_are_one_4d(tmp_path: Path,
                                               b0_image_type: list[str] | None) -> None:
    """Item 1: b0s and directions in one 4D, in acquisition order, even when the b0's
    ImageType differs (which split the b0 off as a 3D before)."""
    series = write_dwi_series(tmp_path / "in", "GE", GE_VOLUMES)
    if b0_image_type is not None:
        for path in series.paths:
            ds = pydicom.dcmread(path)
            if ds[0x0043, 0x1039].value[0] == 0:
                ds.ImageType = b0_image_type
                ds.save_as(path)
    plans = dicomvol.scan([tmp_path / "in"]).plans
    assert len(plans) == 1 and plans[0].shape == (12, 10, 4, len(GE_VOLUMES))
    assert plans[0].detail.fourth_dimension == "diffusion"
    dicomvol.convert([tmp_path / "in"], tmp_path / "out")
    niis, bvals = _table(tmp_path / "out")
    assert len(niis) == 1
    np.testing.assert_allclose(bvals, [v.b for v in GE_VOLUMES])
    meta = json.loads(niis[0].with_name(niis[0].name[:-7] + ".json").read_text())
    assert meta["DiffusionGradientSource"] == SOURCE_GE
    # pixdim[4] is the RepetitionTime (5000 ms), as dcm2niix writes it for a DWI 4D
    assert float(nib.load(niis[0]).header["pixdim"][4]) == pytest.approx(5.0)


def test_scrambled_instance_numbers_keep_volumes_together(tmp_path: Path) -> None:
    """Philips classic may number slices out of order: volumes follow the encoding."""
    series = write_dwi_series(tmp_path / "in", "Canon", [B0, X, Y, Z])
    rng = np.random.default_rng(3)
    numbers = rng.permutation(len(series.paths)) + 1
    for path, number in zip(series.paths, numbers, strict=True):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = int(number)
        ds.save_as(path)
    records = [f for f in dicomvol.scan([tmp_path / "in"]).plans[0].all_frames]
    volumes = acquisition_volumes(position_clusters(records))
    assert volumes is not None and len(volumes) == 4
    for volume in volumes:
        assert len({(f.diffusion_b, f.diffusion_direction) for f in volume}) == 1


def test_uneven_positions_fall_back() -> None:
    assert acquisition_volumes([]) is None


def test_philips_trace_and_adc_are_separate_outputs(tmp_path: Path) -> None:
    """Item 2: the derived images leave the DWI 4D, named _trace and _ADC, without a table."""
    volumes = [B0, X, Y, Z, DwiVolume(1000.0, None, "trace"), DwiVolume(0.0, None, "adc"),
               DwiVolume(0.0, None, "fa")]
    write_dwi_series(tmp_path / "in", "Philips", volumes)
    dicomvol.convert([tmp_path / "in"], tmp_path / "out")
    niis, bvals = _table(tmp_path / "out")
    np.testing.assert_allclose(bvals, [0, 1000, 1000, 1000])
    names = sorted(n.name for n in niis)
    assert [n for n in names if n.endswith(("_trace.nii.gz", "_ADC.nii.gz", "_FA.nii.gz"))] \
        == sorted(n for n in names if n != min(names, key=len))
    assert len(names) == 4
    for n in niis:
        meta = json.loads(n.with_name(n.name[:-7] + ".json").read_text())
        kind = meta.get("DiffusionDerivedImage")
        assert (kind is None) == (n.name == min(names, key=len))


def test_xa_classic_direction_from_siemens_private(tmp_path: Path) -> None:
    """Item 8: (0018,9087) b = 1000 without (0018,9089): the direction is (0019,xx0E)."""
    series = write_dwi_series(tmp_path / "in", "SiemensXA", [B0, X])
    ds = pydicom.dcmread(series.paths[-1], stop_before_pixels=True)
    assert "DiffusionGradientOrientation" not in ds
    found = read_diffusion(ds)
    assert found is not None
    (b, direction), source = found
    assert b == 1000.0 and source == SOURCE_SIEMENS
    np.testing.assert_allclose(direction, (1.0, 0.0, 0.0))
    del ds[0x0019, 0x100E]  # no private direction either: b stays, no vector invented
    assert diffusion_of(ds) == (1000.0, None)
    ds.DiffusionDirectionality = "ISOTROPIC"
    assert read_diffusion(ds) == ((1000.0, None), SOURCE_STANDARD)


def test_xa_enhanced_direction_from_frame_private_item(tmp_path: Path) -> None:
    """Item 8, enhanced: a frame whose MRDiffusionSequence lacks the direction sequence
    takes (0019,xx0E) from the frame's private functional group item."""
    series = write_dwi_series(tmp_path / "in", "SiemensXA", [B0, Y], enhanced=True)
    ds = pydicom.dcmread(series.paths[-1], stop_before_pixels=True)
    fg = ds.PerFrameFunctionalGroupsSequence[0]
    del fg.MRDiffusionSequence[0].DiffusionGradientDirectionSequence
    assert diffusion_of(ds, fg) == (1000.0, None)
    private = pydicom.Dataset()
    block = private.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0E, "FD", [0.0, 2.0, 0.0])
    fg.private_block(0x0021, "SIEMENS MR SDI 02", create=True).add_new(0xFE, "SQ", [private])
    assert diffusion_of(ds, fg) == (1000.0, (0.0, 1.0, 0.0))


@pytest.mark.parametrize(("image_type", "diffusion", "maker", "iso", "kind"), [
    (("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), (1000.0, (1.0, 0.0, 0.0)), "Siemens",
     False, None),
    (("DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"), (1000.0, None), "Siemens", False, "trace"),
    (("DERIVED", "PRIMARY", "DIFFUSION", "ADC"), (0.0, None), "Siemens", False, "ADC"),
    (("DERIVED", "PRIMARY", "FA"), None, "Siemens", False, "FA"),
    (("ORIGINAL", "PRIMARY", "FA"), None, "Siemens", False, None),
    (("DERIVED", "PRIMARY", "DIFFUSION", "EADC"), (1000.0, None), "Philips", False, "eADC"),
    (("ORIGINAL", "PRIMARY"), (1000.0, None), "Philips", False, "trace"),
    (("ORIGINAL", "PRIMARY"), (1000.0, None), "GE", False, None),
    (("ORIGINAL", "PRIMARY"), (1000.0, None), "Canon", True, "trace"),
    (("ORIGINAL", "PRIMARY"), (0.0, None), "Philips", False, None),
])
def test_derived_kind(image_type: tuple[str, ...], diffusion: tuple[float, tuple[float, ...]]
                      | None, maker: str, iso: bool, kind: str | None) -> None:
    assert derived_kind(image_type, diffusion, maker, iso) == kind  # type: ignore[arg-type]


def test_lean_and_pydicom_records_agree_on_ge_diffusion(tmp_path: Path) -> None:
    """The lean reader reads the GE private encoding as pydicom does (implicit VR too)."""
    from dicomvol.dicom.index import index_file
    from dicomvol.inputs.discover import discover

    for syntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian):
        folder = tmp_path / str(syntax)
        write_dwi_series(folder, "GE", [B0, DwiVolume(1000.0, (0.6, 0.48, 0.64))],
                         transfer_syntax=syntax)
        for cand in discover([folder]):
            lean = index_file(cand).frames
            full = index_file(cand, lean=False).frames
            assert lean == full
            assert lean[0].diffusion_source == SOURCE_GE


def test_ge_phase_encoding_assumption_warned_once_per_series(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A GE DTI series without InPlanePhaseEncodingDirection: one warning for the series
    (not one per file), and every output's sidecar says what was assumed."""
    import logging

    from dicomvol.dicom.diffusion import GE_COL_ASSUMED

    series = write_dwi_series(tmp_path / "in", "GE", [B0, DwiVolume(1000.0, (0.6, 0.0, 0.8)),
                                                      DwiVolume(1000.0, (0.0, 1.0, 0.0))])
    for path in series.paths:
        ds = pydicom.dcmread(path)
        del ds.InPlanePhaseEncodingDirection
        ds.save_as(path)
    with caplog.at_level(logging.DEBUG, logger="dicomvol"):
        report = dicomvol.convert([tmp_path / "in"], tmp_path / "out",
                                  dicomvol.ConvertOptions(jobs=1, compress=False))
    warned = [r for r in caplog.records
              if r.levelno >= logging.WARNING and GE_COL_ASSUMED in r.getMessage()]
    assert len(series.paths) == 12 and len(warned) == 1  # 8 weighted files
    assert series.series_instance_uid in warned[0].getMessage()
    (output,) = report.outputs
    side = json.loads((tmp_path / "out" / output.sidecar).read_text())
    assert GE_COL_ASSUMED in side["Warnings"] and side["DiffusionGradientSource"] == SOURCE_GE

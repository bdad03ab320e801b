"""Diffusion per vendor against dcm2niix, on synthetic series the tests build (issue 9).

Each case writes one oblique DTI series (``dicomvol.testing.diffusion``: b = 0
volumes, repeated and multi-shell directions, and for Philips the trace and ADC
images vendors append), converts it with dcm2niix and with dicomvol, and checks:

* dicomvol writes ONE 4D of the acquired volumes in acquisition order with one
  bval/bvec pair equal to what the headers say (LPS directions mapped through
  dicomvol's own affine), derived images as ``_trace`` / ``_ADC`` outputs
  without a table, and names the gradient source in the sidecar;
* every volume of dcm2niix's diffusion output is reproduced (same world grid,
  same values, same b and physical gradient: ``dicomvol.testing.reproduce``),
  except the disagreements listed in :data:`DISAGREEMENTS`, where the test
  asserts that the headers support dicomvol's side.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.dicom.diffusion import SOURCE_UIH, SOURCES
from dicomvol.testing.diffusion import DwiSeries, DwiVolume, write_dwi_series
from dicomvol.testing.geometry import rotation_matrix
from dicomvol.testing.reproduce import (
    BVAL_TOL,
    BVEC_TOL,
    Image,
    axis_map,
    in_b_axes,
    load_images,
    reproduced,
    same_values,
)

pytestmark = [pytest.mark.dcm2niix]

ROT = rotation_matrix((1.0, 0.3, 0.2), 20.0)
ROW, COL = tuple(ROT @ np.array([1.0, 0, 0])), tuple(ROT @ np.array([0, 1.0, 0]))
DIRECTIONS = [(0.6, 0.48, 0.64), (0.0, 0.0, 1.0), (0.36, -0.48, 0.8), (-0.8, 0.6, 0.0)]
#: Acquisition order: b0, 2 directions, b0, a repeated direction, a second shell.
ACQUIRED = [DwiVolume(0.0), DwiVolume(1000.0, DIRECTIONS[0]), DwiVolume(1000.0, DIRECTIONS[1]),
            DwiVolume(0.0), DwiVolume(1000.0, DIRECTIONS[0]), DwiVolume(2000.0, DIRECTIONS[2]),
            DwiVolume(2000.0, DIRECTIONS[3])]
DERIVED = [DwiVolume(1000.0, None, "trace"), DwiVolume(0.0, None, "adc")]

#: case -> (vendor key, enhanced, with derived images)
CASES = {
    "ge": ("GE", False, False),
    "siemens_csa": ("Siemens", False, False),
    "siemens_xa_classic": ("SiemensXA", False, False),
    "siemens_xa_enhanced": ("SiemensXA", True, False),
    "philips_classic": ("Philips", False, True),
    "philips_enhanced": ("Philips", True, True),
    "canon_classic": ("Canon", False, False),
    "canon_enhanced": ("Canon", True, False),
    "canon_image_comments": ("CanonComments", False, False),
    "uih_classic": ("UIH", False, False),
}
#: Where dcm2niix (v1.0.20260724) and dicomvol disagree, and why the headers support dicomvol.
DISAGREEMENTS = {
    "canon_classic": "dcm2niix does not rotate classic Canon (0018,9089) vectors, which the "
                     "standard defines in patient coordinates",
    "siemens_xa_enhanced": "dcm2niix writes no bval/bvec although every frame's "
                           "MRDiffusionSequence holds the b-value and direction",
    "philips_enhanced": "dcm2niix keeps the ADC map (FrameType ADC) in the DWI 4D as a b = 0 "
                        "volume",
}


def _series(tmp: Path, case: str) -> DwiSeries:
    vendor, enhanced, derived = CASES[case]
    volumes = ACQUIRED + (DERIVED if derived else [])
    return write_dwi_series(tmp / "in", vendor, volumes, enhanced=enhanced, row=ROW, col=COL)


def _dcm2niix(exe: str, src: Path, out: Path) -> list[Image]:
    out.mkdir()
    subprocess.run([exe, "-z", "n", "-b", "y", "-ba", "n", "-f", "%s_%d", "-o", str(out),
                    str(src)], capture_output=True, text=True, check=True)
    return load_images(out, dcm2niix=True)


def _ours(src: Path, out: Path) -> list[Image]:
    dicomvol.convert([src], out)
    images = load_images(out)
    for image in images:
        stem = image.path.name.removesuffix(".gz").removesuffix(".nii")
        image.meta = json.loads(image.path.with_name(stem + ".json").read_text())
    return images


def _truth(series: DwiSeries) -> tuple[np.ndarray, np.ndarray]:
    """(b, LPS unit direction) of the acquired volumes, in acquisition order."""
    acquired = [v for v in series.volumes if v.kind == "dwi"]
    bvals = np.array([v.b for v in acquired])
    dirs = np.array([np.zeros(3) if v.direction is None else
                     np.asarray(v.direction) / np.linalg.norm(v.direction) for v in acquired])
    return bvals, dirs


@pytest.mark.parametrize("case", sorted(CASES))
def test_diffusion_matches_dcm2niix_or_headers(dcm2niix_exe: str, tmp_path: Path,
                                               case: str) -> None:
    series = _series(tmp_path, case)
    ours = _ours(tmp_path / "in", tmp_path / "dv")
    dwi = [o for o in ours if o.table is not None]
    assert len(dwi) == 1, [o.path.name for o in ours]
    dwi4d = dwi[0]
    assert dwi4d.n_volumes == len(ACQUIRED)
    table = dwi4d.table
    assert table is not None
    assert dwi4d.meta["DiffusionGradientSource"] in SOURCES or set(
        dwi4d.meta["DiffusionGradientSource"]) <= set(SOURCES)
    if case == "uih_classic":  # (0065,1037) read, not the unrotated (0018,9089)
        assert dwi4d.meta["DiffusionGradientSource"] == SOURCE_UIH
    bvals, dirs = _truth(series)
    np.testing.assert_allclose(table[0], bvals, atol=BVAL_TOL)
    if CASES[case][0] not in ("GE", "CanonComments"):  # image-frame vectors: dcm2niix decides
        np.testing.assert_allclose(table[1], dirs, atol=BVEC_TOL)
    derived = {o.meta.get("DiffusionDerivedImage"): o for o in ours if o is not dwi4d}
    assert set(derived) == ({"trace", "ADC"} if CASES[case][2] else set())
    assert all(o.path.name.removesuffix(".nii.gz").endswith(f"_{k}") for k, o in derived.items())

    theirs = _dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dx")
    main = max(theirs, key=lambda o: (o.table is not None, o.n_volumes))
    if main.n_volumes > 1:  # pixdim[4]: the RepetitionTime, as dcm2niix writes it
        assert float(dwi4d.img.header["pixdim"][4]) == pytest.approx(
            float(main.img.header["pixdim"][4]))
    results = reproduced([main], [dwi4d])
    missing = [t for _, t, ok in results if not ok]
    if case not in DISAGREEMENTS:
        assert missing == [], f"dcm2niix volumes not reproduced: {missing}"
        if case == "philips_classic":
            _check_philips_classic_derived(theirs, main, derived)
        return
    HEADER_CHECKS[case](series, theirs, main, dwi4d, derived, missing)


def _check_philips_classic_derived(theirs: list[Image], main: Image,
                                   derived: dict[str | None, Image]) -> None:
    """dcm2niix writes trace and ADC as one more 4D (b 1000 and 0); dicomvol as _trace, _ADC."""
    (extra,) = [o for o in theirs if o is not main]
    assert extra.n_volumes == 2
    for t, kind in enumerate(("trace", "ADC")):
        amap = axis_map(extra, derived[kind])
        assert amap is not None
        moved = in_b_axes(extra.data, *amap)
        assert same_values(moved[..., t], derived[kind].data[..., 0])
        assert derived[kind].table is None


def _headers_support_canon_classic(series: DwiSeries, theirs: list[Image], main: Image,
                                   dwi4d: Image, derived: dict[str | None, Image],
                                   missing: list[int]) -> None:
    bvals, dirs = _truth(series)
    assert main.table is not None
    weighted = [t for t in range(len(bvals)) if bvals[t] > 0]
    assert missing == weighted  # b = 0 volumes agree, every weighted one differs
    for t in weighted:  # the headers (LPS by definition) give dicomvol's vector
        assert np.abs(main.table[1][t] - dirs[t]).max() > 10 * BVEC_TOL
        np.testing.assert_allclose(main.table[0][t], bvals[t], atol=BVAL_TOL)


def _headers_support_siemens_xa_enhanced(series: DwiSeries, theirs: list[Image], main: Image,
                                         dwi4d: Image, derived: dict[str | None, Image],
                                         missing: list[int]) -> None:
    """dcm2niix: one 3D per XA enhanced file, all b = 0 ("Diffusion image without gradients")."""
    assert len(theirs) == len(ACQUIRED)
    assert all(o.n_volumes == 1 and (o.table is None or o.table[0][0] == 0) for o in theirs)
    bvals, dirs = _truth(series)
    for o in theirs:  # each of dcm2niix's volumes is one of ours, by grid and values
        amap = axis_map(o, dwi4d)
        assert amap is not None
        moved = in_b_axes(o.data, *amap)[..., 0]
        assert any(same_values(moved, dwi4d.data[..., u]) for u in range(dwi4d.n_volumes))
    for t, path in enumerate(series.paths):  # the headers: b > 0 and a direction per frame
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        item = ds.PerFrameFunctionalGroupsSequence[0].MRDiffusionSequence[0]
        assert float(item.DiffusionBValue) == pytest.approx(bvals[t])
        if bvals[t] > 0:
            vector = item.DiffusionGradientDirectionSequence[0].DiffusionGradientOrientation
            np.testing.assert_allclose(np.asarray(vector, float), dirs[t], atol=1e-6)


def _headers_support_philips_enhanced(series: DwiSeries, theirs: list[Image], main: Image,
                                      dwi4d: Image, derived: dict[str | None, Image],
                                      missing: list[int]) -> None:
    assert missing == [len(ACQUIRED)], "all but the appended ADC map are reproduced"
    assert main.n_volumes == len(ACQUIRED) + 1  # the ADC map appended as b = 0
    assert main.table is not None and main.table[0][-1] == 0
    amap = axis_map(main, derived["ADC"])
    assert amap is not None
    assert same_values(in_b_axes(main.data, *amap)[..., -1], derived["ADC"].data[..., 0])
    ds = pydicom.dcmread(series.paths[0], stop_before_pixels=True)
    last = ds.PerFrameFunctionalGroupsSequence[-1].MRImageFrameTypeSequence[0].FrameType
    assert list(last)[:1] == ["DERIVED"] and "ADC" in list(last)


HEADER_CHECKS = {
    "canon_classic": _headers_support_canon_classic,
    "siemens_xa_enhanced": _headers_support_siemens_xa_enhanced,
    "philips_enhanced": _headers_support_philips_enhanced,
}


#: The corpus diffusion series (GE DTI, a GE all-b0 series, Philips enhanced DTI).
CORPUS_DIFFUSION = ["edge_cases/ge/dti/001", "edge_cases/ge/dti/001_implicit",
                    "edge_cases/ge/dti/002", "edge_cases/philips_enhanced/dti/001",
                    "edge_cases/philips_enhanced/dti/001_implicit"]


@pytest.mark.corpus
@pytest.mark.parametrize("key", CORPUS_DIFFUSION)
def test_corpus_diffusion_reproduces_every_dcm2niix_volume(corpus: Path, dcm2niix_exe: str,
                                                           tmp_path: Path, key: str) -> None:
    """Same grid, values and bval/bvec (up to sign: the GE files lack (0018,1312), so the
    GE polarity is not in the headers) for every volume dcm2niix writes; one 4D per series."""
    theirs = _dcm2niix(dcm2niix_exe, corpus / key, tmp_path / "dx")
    ours = _ours(corpus / key, tmp_path / "dv")
    assert len(ours) == 1 and ours[0].n_volumes == sum(o.n_volumes for o in theirs)
    results = reproduced(theirs, ours)
    assert results and all(ok for _, _, ok in results), results
    if key.endswith("002"):  # all b = 0: neither tool writes a table
        assert ours[0].table is None and all(o.table is None for o in theirs)
    else:
        assert ours[0].table is not None and ours[0].meta["DiffusionGradientSource"] in SOURCES


def _mosaic_dwi(corpus: Path, series: str, dest: Path) -> DwiSeries:
    """A Siemens mosaic DTI series: one real corpus mosaic cloned per volume of ACQUIRED,
    with B_value and DiffusionGradientDirection (LPS) in a rebuilt CSA image header."""
    from dicomvol.testing.siemens import csa2_replace

    source = sorted(p for p in (corpus / "mr_orientation" / series).iterdir()
                    if p.name.startswith("MR."))[0]
    dest.mkdir(parents=True)
    uid = pydicom.uid.generate_uid()
    paths = []
    for n, vol in enumerate(ACQUIRED):
        ds = pydicom.dcmread(source)
        element = ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x10]
        element.value = csa2_replace(element.value, {
            "B_value": [f"{vol.b:g}"],
            "DiffusionGradientDirection": [] if vol.direction is None else [
                f"{c:.8f}" for c in vol.direction]})
        ds.PixelData = (ds.pixel_array + n).astype(ds.pixel_array.dtype).tobytes()
        ds.SeriesInstanceUID, ds.InstanceNumber, ds.AcquisitionNumber = uid, n + 1, n + 1
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AcquisitionTime = f"{120000 + 5 * n:06d}.000000"
        paths.append(dest / f"MOSAIC{n + 1:03d}.dcm")
        ds.save_as(paths[-1])
    return DwiSeries(tuple(paths), tuple(ACQUIRED), (), uid)


@pytest.mark.corpus
@pytest.mark.parametrize("series", ["ax/axasc35", "sag/sagint36"])
def test_siemens_mosaic_dwi_matches_dcm2niix(corpus: Path, dcm2niix_exe: str, tmp_path: Path,
                                             series: str) -> None:
    """Siemens mosaic DTI (CSA): one 4D, bval/bvec = the CSA's, every dcm2niix volume ours."""
    built = _mosaic_dwi(corpus, series, tmp_path / "in")
    ours = _ours(tmp_path / "in", tmp_path / "dv")
    assert len(ours) == 1 and ours[0].n_volumes == len(ACQUIRED)
    table = ours[0].table
    assert table is not None
    bvals, dirs = _truth(built)
    np.testing.assert_allclose(table[0], bvals, atol=BVAL_TOL)
    np.testing.assert_allclose(table[1], dirs, atol=BVEC_TOL)
    assert ours[0].meta["DiffusionGradientSource"] == "Siemens CSA image header (0029,xx10)"
    theirs = _dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dx")
    results = reproduced(theirs, ours)
    assert results and all(ok for _, _, ok in results), results


@pytest.mark.parametrize("label", ["NONE", "ISOTROPIC", "BMATRIX"])
def test_direction_read_whatever_the_directionality(dcm2niix_exe: str, tmp_path: Path,
                                                    label: str) -> None:
    """Item 8: weighted frames labelled NONE/ISOTROPIC/BMATRIX that carry a direction keep it
    (as dcm2niix reads it), instead of b = 1000 with a zero vector."""
    series = write_dwi_series(tmp_path / "in", "Canon", ACQUIRED, enhanced=True, row=ROW,
                              col=COL)
    ds = pydicom.dcmread(series.paths[0])
    for fg in ds.PerFrameFunctionalGroupsSequence:
        item = fg.MRDiffusionSequence[0]
        if float(item.DiffusionBValue) > 0:
            item.DiffusionDirectionality = label
    ds.save_as(series.paths[0])
    ours = [o for o in _ours(tmp_path / "in", tmp_path / "dv") if o.table is not None]
    assert len(ours) == 1 and ours[0].table is not None
    np.testing.assert_allclose(ours[0].table[1], _truth(series)[1], atol=BVEC_TOL)
    theirs = _dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dx")
    results = reproduced(theirs, ours)
    assert results and all(ok for _, _, ok in results), results


#: Scrambled InstanceNumbers: acquired volume n is stored with the n-th block of numbers here.
SCRAMBLE = [3, 6, 0, 5, 1, 4, 2]


def test_philips_classic_scrambled_instance_numbers(dcm2niix_exe: str, tmp_path: Path) -> None:
    """Classic Philips DWI whose InstanceNumbers do not follow acquisition (one
    AcquisitionTime for all): the volumes follow (2005,1596) MRImageDiffVolumeNumber.

    dcm2niix orders these volumes by InstanceNumber (it reads (2005,1596) but uses it as
    the temporal order of enhanced files only); every volume it writes is ours too, with
    the same b and gradient, only its order differs, and the headers support ours: volume
    t of our 4D is made of the files whose (2005,1596) is t + 1."""
    series = write_dwi_series(tmp_path / "in", "Philips", ACQUIRED, row=ROW, col=COL)
    n_slices = len(series.paths) // len(ACQUIRED)
    for i, path in enumerate(series.paths):
        n, k = divmod(i, n_slices)
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = SCRAMBLE[n] * n_slices + k + 1
        ds.AcquisitionTime = "120000.000000"
        ds.add_new((0x2005, 0x0015), "LO", "Philips MR Imaging DD 006")
        ds.add_new((0x2005, 0x1596), "IS", str(n + 1))
        ds.save_as(path)
    (dwi4d,) = _ours(tmp_path / "in", tmp_path / "dv")
    assert dwi4d.table is not None and dwi4d.n_volumes == len(ACQUIRED)
    bvals, dirs = _truth(series)
    np.testing.assert_allclose(dwi4d.table[0], bvals, atol=BVAL_TOL)
    np.testing.assert_allclose(dwi4d.table[1], dirs, atol=BVEC_TOL)
    sources = dwi4d.meta["SourceInstances"]
    for t in range(len(ACQUIRED)):  # the header of every slice of volume t says t + 1
        for entry in sources[t * n_slices:(t + 1) * n_slices]:
            ds = pydicom.dcmread(tmp_path / "in" / entry["File"], stop_before_pixels=True)
            assert int(ds[0x2005, 0x1596].value) == t + 1
    (theirs,) = _dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dx")
    assert all(ok for _, _, ok in reproduced([theirs], [dwi4d]))
    assert theirs.table is not None
    by_instance = [SCRAMBLE.index(m) for m in range(len(ACQUIRED))]  # dcm2niix's order
    np.testing.assert_allclose(theirs.table[0], bvals[by_instance], atol=BVAL_TOL)
    assert not np.allclose(theirs.table[0], bvals)

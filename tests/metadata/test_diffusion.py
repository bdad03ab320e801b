"""b-values, gradient directions and FSL bvecs: differential tests against dcm2niix.

The comparison is about physics, not file conventions: dcm2niix's bvecs are
mapped back to patient LPS through dcm2niix's own NIfTI affine (FSL rule: the
components are along the voxel axes, x negated when the affine's determinant
is positive), and compared with the directions ``diffusion_of`` reads from the
headers. Separately, ``fsl_bvec_for_affine`` applied to dcm2niix's affine must
reproduce dcm2niix's bvec files, and ``fsl_bvec`` must express the same LPS
vector in dicomvol's own voxel axes (the affine of ``dicomvol.scan``).

Real data: the corpus GE DTI (edge_cases/ge/dti) and Philips enhanced DTI
(edge_cases/philips_enhanced/dti). The corpus has no Siemens or Canon DTI and
its GE files lack InPlanePhaseEncodingDirection and PatientPosition (so
dcm2niix leaves GE vectors untransformed), hence synthetic series: the GE
slices re-labelled as GE (with phase-encoding direction), Siemens (CSA image
header built here) and Philips classic (private tags), in axial, coronal,
sagittal and oblique geometries, each converted by dcm2niix.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import require_dcm2niix
from dicomvol.dicom.diffusion import GE_IMAGE_TO_PATIENT, diffusion_of, ge_b_value
from dicomvol.errors import HeaderError, OutputExistsError, UsageError
from dicomvol.io.fsl import write_bval_bvec
from dicomvol.metadata.diffusion import fsl_bvec, fsl_bvec_for_affine, fsl_bvec_to_lps

#: b-values must agree to 4 decimals.
BVAL_TOLERANCE = 1e-4
#: Vector components must agree to 4 decimals (dcm2niix writes 6 significant digits).
BVEC_TOLERANCE = 1e-4
#: LPS -> RAS (and back) for NIfTI affines.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

GE_DTI = "edge_cases/ge/dti"
PHILIPS_DTI = "edge_cases/philips_enhanced/dti"

# A generic direction (no zero component) and a few others, with distinct b-values
# so that volumes can be matched between dcm2niix and the headers by b alone.
DIRECTIONS = [
    (1000.0, (0.6, 0.48, 0.64)),
    (1100.0, (0.0, 0.0, 1.0)),
    (1200.0, (0.36, -0.48, 0.8)),
    (1300.0, (-0.8, 0.6, 0.0)),
]


# --------------------------------------------------------------------------- helpers


def dcm2niix() -> str:
    """Path of the dcm2niix executable (skip locally, fail on CI, when absent)."""
    return require_dcm2niix()


def run_dcm2niix(src: Path, out: Path) -> tuple[list[Path], str]:
    """Convert ``src`` with ``-z n -b y -f %s_%p``; the NIfTI paths and dcm2niix's log."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([dcm2niix(), "-z", "n", "-b", "y", "-f", "%s_%p", "-o", str(out),
                           str(src)], capture_output=True, text=True, check=True)
    return sorted(out.glob("*.nii")), proc.stdout


def read_fsl(nii: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """dcm2niix's (bvals (N,), bvecs (3, N)) beside a NIfTI, or None when it wrote none."""
    bval, bvec = nii.with_suffix(".bval"), nii.with_suffix(".bvec")
    if not bval.exists():
        return None
    return (np.atleast_1d(np.loadtxt(bval)), np.loadtxt(bvec).reshape(3, -1))


def lps_affine(nii: Path) -> np.ndarray:
    """The NIfTI's voxel -> LPS affine (nibabel reports RAS)."""
    img: Any = nib.load(str(nii))
    affine: np.ndarray = LPS_TO_RAS @ img.affine
    return affine


def world_from_fsl(bvec: Sequence[float], affine_lps: np.ndarray) -> np.ndarray:
    """FSL bvec -> LPS, written out here independently of dicomvol.diffusion."""
    m = affine_lps[:3, :3]
    axes = m / np.linalg.norm(m, axis=0)
    c = np.array(bvec, dtype=float)
    if np.linalg.det(m) > 0:
        c[0] = -c[0]
    out: np.ndarray = axes @ c
    return out


def _frame_items(ds: pydicom.Dataset) -> list[pydicom.Dataset | None]:
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    return list(pf) if pf is not None else [None]


def _position(ds: pydicom.Dataset, fg: pydicom.Dataset | None) -> tuple[float, ...]:
    if fg is not None:
        ipp = fg.PlanePositionSequence[0].ImagePositionPatient
    else:
        ipp = ds.ImagePositionPatient
    return tuple(round(float(v), 3) for v in ipp)


def header_volumes(src: Path) -> tuple[list[tuple[float, np.ndarray | None]], np.ndarray]:
    """(b, LPS direction) of every volume: the frames at one slice position; and the IOP.

    Every slice position must give the same list (checked), as a volume's slices
    share one diffusion encoding.
    """
    by_position: dict[tuple[float, ...], list[tuple[int, float, np.ndarray | None]]] = {}
    iop = None
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for n, fg in enumerate(_frame_items(ds)):
            found = diffusion_of(ds, fg)
            assert found is not None, f"no diffusion information in {path} frame {n + 1}"
            b, direction = found
            if iop is None:
                orient = (fg.PlaneOrientationSequence[0].ImageOrientationPatient
                          if fg is not None else ds.ImageOrientationPatient)
                iop = np.array([float(v) for v in orient])
            order = int(ds.get("InstanceNumber", 0)) * 10000 + n
            vec = None if direction is None else np.array(direction)
            by_position.setdefault(_position(ds, fg), []).append((order, b, vec))
    assert iop is not None
    lists = [[(b, v) for _, b, v in sorted(items, key=lambda t: t[0])]
             for items in by_position.values()]
    first = lists[0]
    for other in lists[1:]:
        assert sorted(b for b, _ in other) == sorted(b for b, _ in first)
    return first, iop


def _match(b: float, vec: np.ndarray, pool: list[tuple[float, np.ndarray | None]],
           up_to_sign: bool = False) -> None:
    """Remove from ``pool`` the volume with b-value ``b`` and LPS direction ``vec``."""
    for idx, (pb, pv) in enumerate(pool):
        if abs(pb - b) > BVAL_TOLERANCE:
            continue
        if pv is None:
            if np.linalg.norm(vec) < BVEC_TOLERANCE:
                del pool[idx]
                return
            continue
        if np.max(np.abs(pv - vec)) < BVEC_TOLERANCE or (
                up_to_sign and np.max(np.abs(pv + vec)) < BVEC_TOLERANCE):
            del pool[idx]
            return
    left = [(pb, None if pv is None else np.round(pv, 5).tolist()) for pb, pv in pool]
    raise AssertionError(f"dcm2niix volume b={b} g_LPS={np.round(vec, 5).tolist()} not among "
                         f"the header volumes {left}")


def compare_with_dcm2niix(src: Path, out: Path, up_to_sign: bool = False) -> str:
    """Convert ``src``, then check bvals, physical directions and bvec reproduction."""
    niis, logtext = run_dcm2niix(src, out)
    volumes, _ = header_volumes(src)
    with_fsl = [(n, read_fsl(n)) for n in niis]
    written = [(n, f) for n, f in with_fsl if f is not None]
    assert len(written) == 1, f"expected one diffusion output, got {niis}"
    nii, (bvals, bvecs) = written[0]
    affine = lps_affine(nii)
    assert len(bvals) == len(volumes) == bvecs.shape[1]
    pool = list(volumes)
    for v in range(len(bvals)):
        world = world_from_fsl(bvecs[:, v], affine)
        _match(float(bvals[v]), world, pool, up_to_sign)
        # and, the other way round, our conversion reproduces dcm2niix's file
        if not up_to_sign:
            ours = fsl_bvec_for_affine(None if np.linalg.norm(world) < BVEC_TOLERANCE
                                       else world, affine)
            np.testing.assert_allclose(ours, bvecs[:, v], atol=BVEC_TOLERANCE)
            np.testing.assert_allclose(fsl_bvec_to_lps(bvecs[:, v], affine), world,
                                       atol=1e-9)
    assert pool == []
    return logtext


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("case", ["001", "001_implicit"])
def test_philips_enhanced_dti_matches_dcm2niix(corpus: Path, tmp_path: Path, case: str) -> None:
    compare_with_dcm2niix(corpus / PHILIPS_DTI / case, tmp_path / "out")


def test_philips_private_direction_equals_standard(corpus: Path) -> None:
    """(2005,10B0/B1/B2) and (2001,1003) equal the standard per-frame attributes (LPS)."""
    ds = pydicom.dcmread(corpus / PHILIPS_DTI / "001" / "IM-0001-3835-0001.dcm",
                         stop_before_pixels=True)
    seen = 0
    for fg in ds.PerFrameFunctionalGroupsSequence:
        standard = diffusion_of(ds, fg)
        private_only = pydicom.Dataset()
        for elem in fg:
            if elem.keyword != "MRDiffusionSequence":
                private_only.add(elem)
        private = diffusion_of(ds, private_only)
        assert standard is not None and private is not None
        assert private[0] == pytest.approx(standard[0])
        if standard[1] is None:
            assert private[1] is None
        else:
            np.testing.assert_allclose(private[1], standard[1], atol=1e-7)
            seen += 1
    assert seen == 24  # 8 slices x 3 directions


@pytest.mark.parametrize("case", ["001", "001_implicit"])
def test_ge_corpus_dti_matches_dcm2niix(corpus: Path, tmp_path: Path, case: str) -> None:
    """b-values exactly; directions only up to sign, as dcm2niix cannot transform them here.

    These files lack InPlanePhaseEncodingDirection (0018,1312), so dcm2niix
    writes the private vector untransformed; dicomvol assumes COL (logged). The
    vector is along the row direction, where both readings agree up to sign.
    The full GE transform is checked on the synthetic series below.
    """
    logtext = compare_with_dcm2niix(corpus / GE_DTI / case, tmp_path / "out", up_to_sign=True)
    assert "Unable to determine DTI gradients" in logtext


def test_ge_corpus_all_b0_series(corpus: Path, tmp_path: Path) -> None:
    """edge_cases/ge/dti/002 has b = 0 everywhere: no bval from dcm2niix, b0 from us."""
    niis, _ = run_dcm2niix(corpus / GE_DTI / "002", tmp_path / "out")
    assert niis and all(read_fsl(n) is None for n in niis)
    volumes, _ = header_volumes(corpus / GE_DTI / "002")
    assert volumes and all(b == 0.0 and v is None for b, v in volumes)


def test_bvec_in_dicomvol_axes(corpus: Path) -> None:
    """fsl_bvec gives the LPS direction's components along dicomvol's own voxel axes.

    The axes come from ``dicomvol.scan`` (the affine dicomvol writes): i along
    the row, j along the column, k along +normal, so the determinant is
    positive and FSL's convention negates x. Mapping the bvec back through
    that affine with the FSL rule recovers the header direction.
    """
    import dicomvol

    checked = 0
    for case in (PHILIPS_DTI + "/001", GE_DTI + "/001"):
        plans = dicomvol.scan([corpus / case]).plans
        assert len(plans) == 1
        plan = plans[0]
        affine = np.asarray(plan.affine, dtype=float)
        assert np.linalg.det(affine[:3, :3]) > 0
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        for volume in plan.frames:
            record = volume[0]
            ds = pydicom.dcmread(record.path, stop_before_pixels=True)
            fg = _frame_items(ds)[record.frame - 1]
            found = diffusion_of(ds, fg)
            assert found is not None
            _, direction = found
            assert record.orientation is not None
            bvec = np.array(fsl_bvec(direction, record.orientation))
            if direction is None:
                assert not bvec.any()
                continue
            g = np.array(direction)
            expected = axes.T @ g
            expected[0] = -expected[0]
            np.testing.assert_allclose(bvec, expected, atol=1e-9)
            np.testing.assert_allclose(fsl_bvec_for_affine(g, affine), expected, atol=1e-9)
            np.testing.assert_allclose(world_from_fsl(bvec, affine), g, atol=1e-9)
            checked += 1
    assert checked == 4  # 3 Philips directions + 1 GE


# --------------------------------------------------------------------------- synthetic


def csa2(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 ("SV10") header with the given (VR, string values) tags."""
    out = bytearray(b"SV10" + b"\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77))
    for name, (vr, values) in tags.items():
        out += name.encode().ljust(64, b"\x00")
        out += struct.pack("<i", len(values)) + vr.encode().ljust(4, b"\x00")
        out += struct.pack("<3i", 0, len(values), 77 if values else 205)
        for value in values:
            data = value.encode() + b"\x00"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\x00" * (-len(data) % 4)
    return bytes(out)


def rotation(axis: int, degrees: float) -> np.ndarray:
    """Rotation matrix about LPS axis 0, 1 or 2."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    a, b = [i for i in range(3) if i != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


#: Geometries for the synthetic series: rotations applied to the axial GE slices.
GEOMETRIES = {
    "axial": np.eye(3),
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "sagittal": np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]]),
    "oblique": rotation(0, 25) @ rotation(2, 10),
    "axial_reversed_normal": np.diag([-1.0, 1.0, -1.0]),
}

Tagger = Callable[[pydicom.Dataset, float, tuple[float, float, float] | None], None]


def build_series(corpus: Path, dest: Path, manufacturer: str, tagger: Tagger,
                 geometry: np.ndarray, volumes: Sequence[tuple[float, Any]]) -> Path:
    """Copies of the 4 b = 0 GE slices, one set per volume, re-labelled and re-oriented."""
    sources = []
    for path in sorted((corpus / GE_DTI / "001").glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds[0x0043, 0x1039].value[0] == 0:
            sources.append(path)
    assert len(sources) == 4
    dest.mkdir(parents=True)
    for vol, (b, direction) in enumerate([(0.0, None), *volumes]):
        for path in sources:
            ds = pydicom.dcmread(path)
            for tag in [e.tag for e in ds if e.tag.group in (0x0019, 0x0025, 0x0027, 0x0029,
                                                             0x0043, 0x2001, 0x2005)]:
                del ds[tag]
            ds.Manufacturer = manufacturer
            ds.PatientPosition = "HFS"
            ds.InstanceNumber = vol * 100 + int(ds.InstanceNumber)
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.AcquisitionTime = f"{100000 + vol:06d}"
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            ipp = np.array([float(v) for v in ds.ImagePositionPatient])
            ds.ImageOrientationPatient = [f"{x:.8f}" for x in
                                          np.r_[geometry @ iop[:3], geometry @ iop[3:]]]
            ds.ImagePositionPatient = [f"{x:.5f}" for x in geometry @ ipp]
            tagger(ds, b, direction)
            ds.save_as(dest / f"v{vol:02d}_{path.name}")
    return dest


def ge_tagger(phase_encoding: str | None, b_offset: float = 0.0) -> Tagger:
    def tag(ds: pydicom.Dataset, b: float, direction: tuple[float, float, float] | None) -> None:
        v = direction or (0.0, 0.0, 0.0)
        raw = int(b + (b_offset if b else 0))
        ds.add_new((0x0043, 0x1039), "IS", [raw, 8, 0, 0])
        for elem, value in zip((0x10BB, 0x10BC, 0x10BD), v, strict=True):
            ds.add_new((0x0019, elem), "DS", f"{value:.6f}")
        if phase_encoding:
            ds.InPlanePhaseEncodingDirection = phase_encoding
    return tag


def siemens_tagger(ds: pydicom.Dataset, b: float,
                   direction: tuple[float, float, float] | None) -> None:
    tags = {"B_value": ("IS", [f"{b:g}"]), "NumberOfImagesInMosaic": ("US", [])}
    if direction is not None:
        tags["DiffusionGradientDirection"] = ("FD", [f"{x:.8f}" for x in direction])
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", csa2(tags))
    ds.InPlanePhaseEncodingDirection = "COL"


def philips_tagger(ds: pydicom.Dataset, b: float,
                   direction: tuple[float, float, float] | None) -> None:
    v = direction or (0.0, 0.0, 0.0)
    ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", b)
    block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    for offset, value in zip((0xB0, 0xB1, 0xB2), v, strict=True):
        block.add_new(offset, "FL", value)
    ds.InPlanePhaseEncodingDirection = "COL"


@pytest.mark.parametrize("geometry", ["axial", "coronal", "sagittal", "oblique",
                                      "axial_reversed_normal"])
@pytest.mark.parametrize("phase_encoding", ["COL", "ROW"])
def test_ge_synthetic_matches_dcm2niix(corpus: Path, tmp_path: Path, geometry: str,
                                       phase_encoding: str) -> None:
    src = build_series(corpus, tmp_path / "in", "GE MEDICAL SYSTEMS",
                       ge_tagger(phase_encoding), GEOMETRIES[geometry], DIRECTIONS)
    compare_with_dcm2niix(src, tmp_path / "out")


def test_ge_b_value_offset_and_scaled_vector_match_dcm2niix(corpus: Path,
                                                            tmp_path: Path) -> None:
    """(0043,1039) with the 1e9 flag offset, and a half-length vector (b scaled by 1/4)."""
    volumes = [(15000.0, (1.0, 0.0, 0.0)), (1100.0, (0.0, 0.0, 1.0)),
               (1000.0, (0.3, 0.24, 0.32))]
    src = build_series(corpus, tmp_path / "in", "GE MEDICAL SYSTEMS",
                       ge_tagger("COL", b_offset=1e9), np.eye(3), volumes)
    niis, _ = run_dcm2niix(src, tmp_path / "out")
    fsl = read_fsl(niis[0])
    assert fsl is not None
    expected = [0.0, 250.0, 1100.0, 15000.0]
    assert sorted(fsl[0].tolist()) == pytest.approx(expected, abs=BVAL_TOLERANCE)
    ours, _ = header_volumes(src)
    # 1000 * |(0.3, 0.24, 0.32)|**2 is 249.99999999999994 in binary floating point
    assert sorted(b for b, _ in ours) == pytest.approx(expected, abs=BVAL_TOLERANCE)
    compare_with_dcm2niix(src, tmp_path / "out2")
    assert ge_b_value(1000001000.0) == pytest.approx(1000.0, rel=1e-9)
    assert ge_b_value(20000.0) == pytest.approx(20000.0, rel=1e-9)


@pytest.mark.parametrize("geometry", ["axial", "coronal", "sagittal", "oblique"])
def test_siemens_csa_synthetic_matches_dcm2niix(corpus: Path, tmp_path: Path,
                                                geometry: str) -> None:
    src = build_series(corpus, tmp_path / "in", "SIEMENS", siemens_tagger,
                       GEOMETRIES[geometry], DIRECTIONS)
    compare_with_dcm2niix(src, tmp_path / "out")


@pytest.mark.parametrize("geometry", ["axial", "oblique"])
def test_philips_classic_private_synthetic_matches_dcm2niix(corpus: Path, tmp_path: Path,
                                                            geometry: str) -> None:
    src = build_series(corpus, tmp_path / "in", "Philips Medical Systems", philips_tagger,
                       GEOMETRIES[geometry], DIRECTIONS)
    compare_with_dcm2niix(src, tmp_path / "out")


# --------------------------------------------------------------------------- units


def test_ge_table_is_signed_permutations() -> None:
    for entries in GE_IMAGE_TO_PATIENT.values():
        assert sorted(src for src, _ in entries) == [0, 1, 2]
        assert all(sign in (-1, 1) for _, sign in entries)


def test_standard_top_level_and_directionality() -> None:
    ds = pydicom.Dataset()
    ds.Manufacturer = "Canon_MEC"
    assert diffusion_of(ds) is None
    ds.DiffusionBValue = 800.0
    ds.DiffusionGradientOrientation = [0.0, 2.0, 0.0]
    assert diffusion_of(ds) == (800.0, (0.0, 1.0, 0.0))
    item = pydicom.Dataset()
    item.DiffusionBValue = 800.0
    item.DiffusionDirectionality = "ISOTROPIC"
    fg = pydicom.Dataset()
    fg.MRDiffusionSequence = [item]
    assert diffusion_of(ds, fg) == (800.0, None)
    bm = pydicom.Dataset()
    bm.DiffusionBValueXX, bm.DiffusionBValueXY, bm.DiffusionBValueXZ = 0.0, 0.0, 0.0
    bm.DiffusionBValueYY, bm.DiffusionBValueYZ, bm.DiffusionBValueZZ = 0.0, 0.0, 1000.0
    item.DiffusionDirectionality = "BMATRIX"
    item.DiffusionBMatrixSequence = [bm]
    found = diffusion_of(ds, fg)
    assert found is not None and found[1] is not None
    np.testing.assert_allclose(np.abs(found[1]), [0, 0, 1], atol=1e-12)
    ds.DiffusionBValue = 0.0
    assert diffusion_of(ds) == (0.0, None)


def test_ge_without_orientation_raises() -> None:
    ds = pydicom.Dataset()
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.add_new((0x0043, 0x1039), "IS", [1000, 8, 0, 0])
    for elem, value in zip((0x10BB, 0x10BC, 0x10BD), ("1", "0", "0"), strict=True):
        ds.add_new((0x0019, elem), "DS", value)
    with pytest.raises(HeaderError, match="ImageOrientationPatient"):
        diffusion_of(ds)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InPlanePhaseEncodingDirection = "COL"
    assert diffusion_of(ds) == (1000.0, (-1.0, 0.0, 0.0))


def test_fsl_bvec_convention_and_inverse() -> None:
    iop = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert fsl_bvec(None, iop) == (0.0, 0.0, 0.0)
    assert fsl_bvec((1.0, 0.0, 0.0), iop) == (-1.0, 0.0, 0.0)
    assert fsl_bvec((0.0, 1.0, 0.0), iop) == (0.0, 1.0, 0.0)
    # a negative-determinant affine (dcm2niix's j flip): no x negation
    flipped = np.diag([2.0, -2.0, 3.0, 1.0])
    assert fsl_bvec_for_affine((1.0, 0.0, 0.0), flipped) == (1.0, 0.0, 0.0)
    assert fsl_bvec_for_affine((0.0, 1.0, 0.0), flipped) == (0.0, -1.0, 0.0)
    rng = np.random.default_rng(7)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        affine = np.eye(4)
        affine[:3, :3] = q * rng.uniform(0.5, 3.0, size=3)
        g = rng.normal(size=3)
        g /= np.linalg.norm(g)
        np.testing.assert_allclose(fsl_bvec_to_lps(fsl_bvec_for_affine(g, affine), affine), g,
                                   atol=1e-12)
    with pytest.raises(UsageError):
        fsl_bvec((1.0, 0.0, 0.0), [1.0, 0.0, 0.0])


def test_write_bval_bvec_like_dcm2niix(corpus: Path, tmp_path: Path) -> None:
    """Our files, from header directions in dcm2niix's voxel frame, equal dcm2niix's text."""
    niis, _ = run_dcm2niix(corpus / PHILIPS_DTI / "001", tmp_path / "out")
    nii = niis[0]
    fsl = read_fsl(nii)
    assert fsl is not None
    affine = lps_affine(nii)
    volumes, _ = header_volumes(corpus / PHILIPS_DTI / "001")
    # dcm2niix orders this file's volumes by dimension index: the b0 (index 65) last
    ordered = volumes[1:] + volumes[:1]
    bvals = [b for b, _ in ordered]
    bvecs = [fsl_bvec_for_affine(v, affine) for _, v in ordered]
    bval_path, bvec_path = write_bval_bvec(tmp_path / "ours.nii", bvals, bvecs)
    assert bval_path.name == "ours.bval" and bvec_path.name == "ours.bvec"
    assert bval_path.read_text() == nii.with_suffix(".bval").read_text()
    assert bvec_path.read_text() == nii.with_suffix(".bvec").read_text()
    assert sorted(os.listdir(tmp_path)) == ["ours.bval", "ours.bvec", "out"]
    with pytest.raises(OutputExistsError):
        write_bval_bvec(tmp_path / "ours", bvals, bvecs)
    write_bval_bvec(tmp_path / "ours", [0.0], [(-0.0, 0.0, 0.0)], overwrite=True)
    assert bval_path.read_text() == "0\n"
    assert bvec_path.read_text() == "0\n0\n0\n"
    with pytest.raises(UsageError):
        write_bval_bvec(tmp_path / "bad", [0.0, 1000.0], [(0.0, 0.0, 0.0)])
    with pytest.raises(UsageError):
        write_bval_bvec(tmp_path / "bad", [], [])


def test_siemens_b_matrix_and_old_private_fallbacks() -> None:
    """CSA without DiffusionGradientDirection: principal axis of B_matrix; no CSA: (0019,10xx)."""
    ds = pydicom.Dataset()
    ds.Manufacturer = "SIEMENS"
    g = np.array([0.6, 0.48, 0.64])
    upper = 1000.0 * np.outer(g, g)[np.triu_indices(3)]  # xx, xy, xz, yy, yz, zz
    tags = {"B_value": ("IS", ["1000"]), "B_matrix": ("FD", [f"{x:.6f}" for x in upper])}
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", csa2(tags))
    found = diffusion_of(ds)
    assert found is not None and found[0] == pytest.approx(1000.0) and found[1] is not None
    np.testing.assert_allclose(np.abs(np.dot(found[1], g)), 1.0, atol=1e-6)  # sign arbitrary
    old = pydicom.Dataset()
    old.Manufacturer = "SIEMENS"
    block = old.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "700")
    block.add_new(0x0E, "FD", [0.0, 0.0, -2.0])
    assert diffusion_of(old) == (700.0, (0.0, 0.0, -1.0))
    empty = pydicom.Dataset()
    empty.Manufacturer = "SIEMENS"
    empty.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(
        0x10, "OB", csa2({"B_value": ("IS", [])}))
    assert diffusion_of(empty) is None


def test_bvals_are_written_rounded_as_dcm2niix_writes_them(tmp_path: Path) -> None:
    """Issue 8 item 7: b-values computed in floating point (249.99999999999994, a float32
    1000) are written as dcm2niix writes them (``%g``: "250", "1000"), never with the
    float noise; bvecs likewise."""
    noisy = [0.0, 249.99999999999994, float(np.float32(1000.0001)), 2999.9999999996]
    vecs = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.7071067811865476, 0.7071067811865475),
            (0.0, 0.0, -0.9999999999999998)]
    bval, bvec = write_bval_bvec(tmp_path / "dwi.nii.gz", noisy, vecs)
    assert bval.read_text() == "0 250 1000 3000\n"
    rows = bvec.read_text().splitlines()
    assert rows == ["0 1 0 0", "0 0 0.707107 0", "0 0 0.707107 -1"]

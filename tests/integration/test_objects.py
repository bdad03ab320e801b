"""DICOM objects and encodings end to end: what ``convert`` and the CLI write for them.

1. Transfer syntaxes: one synthetic series written in every syntax the installed
   pydicom encoders produce (same UIDs, one folder each), and the corpus
   ``transfer_syntaxes`` set (one Siemens MOSAIC in 9 syntaxes).
2. Enhanced multi-frame objects (Philips, Siemens, Hyperfine, legacy converted CT):
   exactness, 1-based ``Frame`` in ``SourceInstances``, slices sorted by position
   and not by frame number, and the legacy converted CT against its single-frame source.
3. 4D and diffusion: Philips enhanced DTI ``.bval``/``.bvec`` against the DICOM
   gradients and dcm2niix in world space; a synthetic multi-echo series.
4. PET SUV: the corpus whole-body PET in SUVbw against a hand computation; a PET
   without PatientWeight.
5. Output formats through the CLI (NRRD, MetaImage) against the NIfTI grid;
   sheared volumes; ``Volume.to_simpleitk``.
6. ``--anonymize``.
7. Philips display versus floating-point scaling, and dcm2niix's default output.

Every check reads the written files back with pydicom, nibabel, pynrrd or
SimpleITK; none uses dicomvol's own geometry or scaling code.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pydicom.uid as puid
import pytest
from pydicom.sequence import Sequence as DicomSequence

import dicomvol
from dicomvol.cli.main import main as cli_main
from dicomvol.errors import UsageError
from dicomvol.options import ConvertOptions, PlanOptions
from dicomvol.testing import SyntheticSeries, oblique_directions, write_series
from exactness import check_exact, resolve

#: RAS <-> LPS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: float32 relative precision used for voxel comparisons (a few ulps).
FLOAT32_RTOL = 1e-6
#: Two affines describing the same grid (dcm2niix stores float32 sforms).
GRID_TOL_MM = 1e-3

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")


# ------------------------------------------------------------------------------- helpers


def sidecar_path(image: Path) -> Path:
    """``NAME.json`` beside ``NAME.nii.gz`` / ``.nii`` / ``.nrrd`` / ``.mha``."""
    for ext in IMAGE_EXTENSIONS:
        if image.name.endswith(ext):
            return image.with_name(image.name[: -len(ext)] + ".json")
    raise AssertionError(f"not an image name: {image}")


def stem_of(image: Path) -> str:
    return sidecar_path(image).name[: -len(".json")]


def read_sidecar(image: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sidecar_path(image).read_text(encoding="utf-8"))
    return data


@dataclass
class Run:
    """An output folder and its run report."""

    out: Path
    report: dict[str, Any]
    exit_code: int | None = None

    @property
    def images(self) -> list[Path]:
        return [self.out / p for p in self.report["outputs"]]

    def assert_clean(self) -> None:
        """Everything converted: no errors, nothing skipped, at least one output."""
        assert self.report["errors"] == [], self.report["errors"]
        assert self.report["skipped"] == [], self.report["skipped"][:3]
        assert self.report["outputs"], "no output written"


def run_api(inputs: Sequence[Path], out: Path, **options: Any) -> Run:
    dicomvol.convert([str(p) for p in inputs], out, ConvertOptions(jobs=1, **options))
    return Run(out, json.loads((out / "dicomvol_report.json").read_text(encoding="utf-8")))


def run_cli(inputs: Sequence[Path], out: Path, *flags: str) -> Run:
    code = cli_main(["convert", *(str(p) for p in inputs), "-o", str(out), "-q", "-j", "1",
                     *flags])
    report_path = out / "dicomvol_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return Run(out, report, code)


def load(image: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scaled float64 data, RAS sform) of a NIfTI file."""
    img: Any = nib.load(str(image))
    return np.asarray(img.get_fdata(), dtype=np.float64), np.asarray(img.get_sform())


def assert_float32_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Equal within float32 precision of the values' magnitude."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(got - expected)))
    assert err <= FLOAT32_RTOL * scale, f"{what}: max |difference| {err} (scale {scale})"


def _seconds(tm: Any) -> float:
    """Seconds after midnight of a DICOM TM ``HHMMSS.FFFFFF`` (written out by hand)."""
    text = str(tm).strip()
    return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:] or 0)


def run_dcm2niix(exe: str, src: Path, out: Path, *flags: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-b", "y", *flags, "-f", "%s_%p", "-o", str(out), str(src)],
                   check=True, capture_output=True, text=True, timeout=120)
    return sorted(out.glob("*.nii"))


# ----------------------------------------------------------------- grid matching (48 maps)

AxisMap = tuple[tuple[int, int, int], tuple[bool, bool, bool]]


def as_4d(data: np.ndarray) -> np.ndarray:
    return data.reshape((*data.shape[:3], -1))


def grid_map(a_shape: Sequence[int], a_affine: np.ndarray, b_shape: Sequence[int],
             b_affine: np.ndarray, tol_mm: float = GRID_TOL_MM) -> AxisMap | None:
    """The permutation/flip of a's spatial axes that puts a's voxels on b's grid.

    Tries all 48 maps; a map fits when b's shape is a's shape permuted and every
    corner voxel of a lands, through b's affine, where a's affine puts it.
    """
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in a_shape[:3]])), float)
    world_a = (a_affine @ np.c_[corners, np.ones(len(corners))].T)[:3]
    for perm in itertools.permutations(range(3)):
        if tuple(a_shape[p] for p in perm) != tuple(b_shape[:3]):
            continue
        for flips in itertools.product((False, True), repeat=3):
            q = np.empty_like(corners)
            for d in range(3):
                q[:, d] = corners[:, perm[d]]
                if flips[d]:
                    q[:, d] = b_shape[d] - 1 - q[:, d]
            world_b = (b_affine @ np.c_[q, np.ones(len(q))].T)[:3]
            if float(np.max(np.abs(world_a - world_b))) <= tol_mm:
                return (perm[0], perm[1], perm[2]), (flips[0], flips[1], flips[2])
    return None


def on_grid(data: np.ndarray, axis_map: AxisMap) -> np.ndarray:
    """``data`` (X, Y, Z[, T]) rearranged by ``axis_map`` (further axes keep their order)."""
    perm, flips = axis_map
    out = np.transpose(as_4d(data), (*perm, 3))
    for d in range(3):
        if flips[d]:
            out = np.flip(out, d)
    return out


def fsl_bvec_to_world(bvec: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL b-vectors (3, T) of a NIfTI with RAS ``affine`` as RAS unit vectors, shape (T, 3).

    FSL convention: components along the voxel axes, x negated when det(affine) > 0.
    """
    m = affine[:3, :3]
    axes = m / np.linalg.norm(m, axis=0)
    v = np.array(bvec, dtype=np.float64).reshape(3, -1)
    if np.linalg.det(m) > 0:
        v[0] = -v[0]
    return np.asarray((axes @ v).T)


# =================================================================== 1. transfer syntaxes

#: Syntaxes every installation must encode (pydicom natively, pylibjpeg, pyjpegls, gdcm).
REQUIRED_SYNTAXES = frozenset({
    "ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian",
    "DeflatedExplicitVRLittleEndian", "RLELossless", "JPEGLSLossless", "JPEG2000Lossless",
})
#: Native syntaxes ``write_series`` writes itself.
NATIVE_SYNTAXES = ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian",
                   "DeflatedExplicitVRLittleEndian")
#: Encoder arguments that make the lossy syntaxes really lossy.
LOSSY_KWARGS: dict[str, dict[str, Any]] = {
    "JPEGLSNearLossless": {"jls_error": 3},
    "JPEG2000": {"j2k_cr": [20]},
    "HTJ2K": {"j2k_cr": [20]},
}
#: Maximum |stored difference| a lossy syntax may introduce (JPEG-LS: the NEAR parameter).
LOSSY_BOUND = {"JPEGLSNearLossless": 3}



def is_lossless(keyword: str) -> bool:
    uid = getattr(puid, keyword)
    return not uid.is_compressed or ("Lossless" in keyword and "Near" not in keyword)


def encodable_syntaxes() -> list[str]:
    """Transfer syntax keywords ``write_series`` can produce with the installed encoders."""
    from pydicom.pixels import get_encoder

    found = list(NATIVE_SYNTAXES)
    uids = {v for v in vars(puid).values() if isinstance(v, puid.UID) and v.is_transfer_syntax}
    for uid in sorted(uids, key=lambda u: u.keyword):
        if not uid.is_compressed or uid.keyword in found:
            continue
        try:
            available = get_encoder(uid).is_available
        except NotImplementedError:
            continue
        if available:
            found.append(uid.keyword)
    return found


SYNTAXES = encodable_syntaxes()


def _syntax_param(keyword: str) -> Any:
    return keyword


@contextmanager
def deterministic_uids(seed: str) -> Iterator[None]:
    """``pydicom.uid.generate_uid`` returns the same sequence of UIDs on every use."""
    original = puid.generate_uid
    counter = itertools.count()

    def generate(prefix: str | None = puid.PYDICOM_ROOT_UID,
                 entropy_srcs: list[str] | None = None) -> puid.UID:
        return original(prefix, entropy_srcs=[seed, str(next(counter))])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(puid, "generate_uid", generate)
        yield


@dataclass
class SyntaxCase:
    keyword: str
    series: SyntheticSeries
    folder: Path
    run: Run


@pytest.fixture(scope="module")
def syntax_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SyntaxCase]:
    """The same oblique CT (40x36x6, per-slice rescale, same UIDs) in every syntax."""
    root = tmp_path_factory.mktemp("syntaxes")
    row, col = oblique_directions(17.0, (1.0, 2.0, 0.5))
    cases = {}
    for keyword in SYNTAXES:
        folder = root / keyword / "in"
        with deterministic_uids("dicomvol-test-objects-syntaxes"):
            series = write_series(
                folder, shape=(40, 36, 6), pixel_spacing=(0.7, 0.6), slice_spacing=2.0,
                row_dir=row, col_dir=col, origin=(-12.0, 20.0, -31.5), modality="CT",
                rescale=[(0.5 + 0.25 * k, -1024.0 + 7.0 * k) for k in range(6)],
                shuffle_seed=3, series_description="syntaxes",
                transfer_syntax=getattr(puid, keyword),
                compress_kwargs=LOSSY_KWARGS.get(keyword, {}), seed=11)
        cases[keyword] = SyntaxCase(keyword, series, folder,
                                    run_api([folder], root / keyword / "out"))
    return cases


def test_installed_encoders_cover_the_required_syntaxes() -> None:
    missing = REQUIRED_SYNTAXES - set(SYNTAXES)
    assert not missing, f"no encoder for {sorted(missing)} (found {SYNTAXES})"


@pytest.mark.parametrize("keyword", [_syntax_param(k) for k in SYNTAXES])
def test_synthetic_series_converts_exactly_in_every_syntax(
        syntax_cases: dict[str, SyntaxCase], keyword: str) -> None:
    case = syntax_cases[keyword]
    s = case.series
    with pydicom.dcmread(s.paths[0]) as ds:
        assert ds.file_meta.TransferSyntaxUID == getattr(puid, keyword)
    assert case.run.report["ignored"] == []
    case.run.assert_clean()
    (image,) = case.run.images
    check_exact(image, [case.folder])
    data, affine = load(image)
    # ground truth: the pixels a decoder sees (for lossy syntaxes: the decoded ones)
    assert data.shape == s.shape
    assert_float32_close(data, s.values, keyword)
    np.testing.assert_allclose(affine, LPS_TO_RAS @ s.affine_lps, atol=1e-4)
    sources = read_sidecar(image)["SourceInstances"]
    assert sources == [{"SOPInstanceUID": uid, "Frame": 1, "File": path.name}
                       for uid, path in zip(s.sop_instance_uids, s.paths, strict=True)]


def test_lossless_syntaxes_give_identical_volumes(syntax_cases: dict[str, SyntaxCase]) -> None:
    lossless = [k for k in SYNTAXES if is_lossless(k)]
    assert len(lossless) >= 7
    ref = syntax_cases["ExplicitVRLittleEndian"]
    (ref_image,) = ref.run.images
    ref_img: Any = nib.load(str(ref_image))
    ref_sources = read_sidecar(ref_image)["SourceInstances"]
    for keyword in lossless:
        case = syntax_cases[keyword]
        assert case.series.sop_instance_uids == ref.series.sop_instance_uids  # same UIDs
        (image,) = case.run.images
        assert image.name == ref_image.name
        img: Any = nib.load(str(image))
        assert np.array_equal(np.asarray(img.dataobj.get_unscaled()),
                              np.asarray(ref_img.dataobj.get_unscaled())), keyword
        assert (img.dataobj.slope, img.dataobj.inter) == (ref_img.dataobj.slope,
                                                          ref_img.dataobj.inter), keyword
        assert np.array_equal(img.get_sform(), ref_img.get_sform()), keyword
        assert read_sidecar(image)["SourceInstances"] == ref_sources, keyword


@pytest.mark.parametrize("keyword", [k for k in SYNTAXES if not is_lossless(k)])
def test_lossy_syntaxes_give_the_decoded_pixels(syntax_cases: dict[str, SyntaxCase],
                                                keyword: str) -> None:
    """The volume holds what the decoder returns, which is not the original here."""
    case, ref = syntax_cases[keyword], syntax_cases["ExplicitVRLittleEndian"]
    case.run.assert_clean()
    (image,) = case.run.images
    data, _ = load(image)
    decoded = np.stack([pydicom.dcmread(p).pixel_array.T for p in case.series.paths], axis=-1)
    assert np.array_equal(decoded, case.series.stored)
    assert_float32_close(data, case.series.values, keyword)
    changed = np.abs(case.series.stored.astype(np.int64) - ref.series.stored.astype(np.int64))
    assert changed.max() > 0, f"{keyword} with {LOSSY_KWARGS.get(keyword)} was not lossy"
    if keyword in LOSSY_BOUND:
        assert changed.max() <= LOSSY_BOUND[keyword]


@pytest.mark.slow
def test_corpus_transfer_syntaxes_decode_to_identical_volumes(corpus: Path,
                                                              tmp_path: Path) -> None:
    files = sorted((corpus / "transfer_syntaxes").glob("*.dcm"))
    assert len(files) == 9
    volumes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    syntaxes = set()
    for path in files:
        ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        assert is_lossless(ts.keyword), ts.name
        syntaxes.add(ts.keyword)
        run = run_api([path], tmp_path / path.stem)
        run.assert_clean()
        (image,) = run.images
        check_exact(image, [path])
        volumes[path.name] = load(image)
        assert volumes[path.name][0].shape == (64, 64, 35)  # a 6x6 MOSAIC of 35 slices
    assert {"ExplicitVRBigEndian", "RLELossless", "JPEGLSLossless",
            "JPEG2000Lossless"} <= syntaxes
    ref_data, ref_affine = volumes[files[0].name]
    for name, (data, affine) in volumes.items():
        assert np.array_equal(data, ref_data), name
        assert np.array_equal(affine, ref_affine), name


# ================================================================ 2. enhanced multi-frame

#: Enhanced (multi-frame) inputs and the shapes of their outputs.
ENHANCED: dict[str, list[tuple[int, ...]]] = {
    "edge_cases/philips_enhanced/anatomical/001": [(256, 256, 8)],
    "edge_cases/philips_enhanced/fmri/001": [(64, 64, 8, 4)],
    "edge_cases/philips_enhanced/dti/001": [(128, 128, 8, 4)],
    "edge_cases/siemens_multiframe": [(256, 256, 8)],
    "edge_cases/hyperfine": [(112, 138, 8)],
    "enhanced_mr": [(64, 64, 6, 4), (64, 64, 32), (64, 64, 32)],
    "seg_dcmqi/segmentations/23x38x3/multiframe": [(23, 38, 3)],
    "seg_dcmqi/segmentations/24x38x3/multiframe": [(24, 38, 3)],
}


@pytest.fixture(scope="module")
def enhanced_runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("enhanced")
    return {src: run_api([corpus / src], root / src.replace("/", "_")) for src in ENHANCED}


def frame_position_lps(ds: Any, frame: int) -> np.ndarray:
    item = ds.PerFrameFunctionalGroupsSequence[frame - 1]
    return np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])


@pytest.mark.parametrize("src", list(ENHANCED))
def test_enhanced_outputs_are_exact_with_one_based_frames(
        enhanced_runs: dict[str, Run], corpus: Path, src: str) -> None:
    run = enhanced_runs[src]
    run.assert_clean()
    shapes = sorted(tuple(v["Shape"]) for v in run.report["volumes"])
    assert shapes == sorted(ENHANCED[src])
    root = corpus / src
    for image in run.images:
        check_exact(image, [root])
        _, affine = load(image)
        sources = read_sidecar(image)["SourceInstances"]
        z = nib.load(str(image)).shape[2]
        headers: dict[str, Any] = {}
        # one entry from the middle and the last one: its Frame names the frame that the
        # affine puts at (0, 0, k), by that frame's own PerFrameFunctionalGroups position
        for n in (len(sources) // 2, len(sources) - 1):
            entry = sources[n]
            path = resolve(entry["File"], [root])
            ds = headers.setdefault(entry["File"], pydicom.dcmread(path, stop_before_pixels=True))
            n_frames = int(ds.NumberOfFrames)
            assert n_frames > 1 and 1 <= entry["Frame"] <= n_frames
            assert str(ds.SOPInstanceUID) == entry["SOPInstanceUID"]
            ras = LPS_TO_RAS @ np.r_[frame_position_lps(ds, entry["Frame"]), 1.0]
            index = np.linalg.inv(affine) @ ras
            np.testing.assert_allclose(index[:3], (0, 0, n % z), atol=0.01,
                                       err_msg=f"{image.name} entry {n}: {entry}")


def _permuted_copy(src_file: Path, dest: Path, perm: Sequence[int]) -> None:
    """``src_file`` with frame n of the copy = frame perm[n] of the source (0-based)."""
    ds = pydicom.dcmread(src_file)
    assert ds.file_meta.TransferSyntaxUID in (puid.ExplicitVRLittleEndian,
                                              puid.ImplicitVRLittleEndian)
    pixels = ds.pixel_array
    items = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence([items[p] for p in perm])
    ds.PixelData = np.ascontiguousarray(pixels[list(perm)]).astype(
        pixels.dtype.newbyteorder("<")).tobytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)


def _normal_projections(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    shared = ds.SharedFunctionalGroupsSequence[0]
    first = ds.PerFrameFunctionalGroupsSequence[0]
    ori = (first.get("PlaneOrientationSequence") or shared.PlaneOrientationSequence)[0]
    iop = np.array([float(v) for v in ori.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return np.array([frame_position_lps(ds, f + 1) @ normal for f in range(ds.NumberOfFrames)])


@pytest.mark.parametrize("src", ["edge_cases/philips_enhanced/fmri/001",
                                 "edge_cases/hyperfine/anatomical/001"])
def test_frames_are_sorted_by_position_not_frame_number(corpus: Path, tmp_path: Path,
                                                        src: str) -> None:
    """Every corpus enhanced file stores frames in spatial order, so shuffle one."""
    (original,) = sorted((corpus / src).glob("*.dcm"))
    assert np.all(np.diff(_normal_projections(original)) >= -1e-6)  # spatial order now
    n_frames = int(pydicom.dcmread(original, stop_before_pixels=True).NumberOfFrames)
    perm = [int(p) for p in np.random.default_rng(5).permutation(n_frames)]
    shuffled = tmp_path / "shuffled" / original.name
    _permuted_copy(original, shuffled, perm)
    steps = np.diff(_normal_projections(shuffled))
    assert (steps > 1e-6).any() and (steps < -1e-6).any()  # frame order != spatial order

    ref = run_api([original.parent], tmp_path / "out_original")
    got = run_api([shuffled.parent], tmp_path / "out_shuffled")
    ref.assert_clean()
    got.assert_clean()
    assert len(ref.images) == len(got.images) == 1
    check_exact(got.images[0], [shuffled.parent])
    ref_data, ref_affine = load(ref.images[0])
    data, affine = load(got.images[0])
    assert np.array_equal(data, ref_data)
    np.testing.assert_allclose(affine, ref_affine, atol=1e-6)
    ref_frames = [e["Frame"] for e in read_sidecar(ref.images[0])["SourceInstances"]]
    frames = [e["Frame"] for e in read_sidecar(got.images[0])["SourceInstances"]]
    # original frame f is frame perm.index(f - 1) + 1 of the shuffled copy
    assert frames == [perm.index(f - 1) + 1 for f in ref_frames]


@pytest.mark.parametrize("size", ["23x38x3", "24x38x3"])
def test_legacy_converted_ct_equals_its_single_frame_source(corpus: Path, tmp_path: Path,
                                                            size: str) -> None:
    root = corpus / "seg_dcmqi/segmentations" / size
    mf = pydicom.dcmread(root / "multiframe/mf.dcm", stop_before_pixels=True)
    assert mf.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2.2"  # Legacy Converted Enhanced CT
    single = run_api([root / "image"], tmp_path / "image")
    multi = run_api([root / "multiframe"], tmp_path / "multiframe")
    single.assert_clean()
    multi.assert_clean()
    (a,), (b,) = single.images, multi.images
    data_a, affine_a = load(a)
    data_b, affine_b = load(b)
    assert data_a.shape == data_b.shape == (int(size.split("x")[0]), 38, 3)
    assert np.array_equal(data_a, data_b)
    np.testing.assert_allclose(affine_a, affine_b, atol=1e-6)
    frames = [e["Frame"] for e in read_sidecar(b)["SourceInstances"]]
    assert sorted(frames) == [1, 2, 3]


# =========================================================================== 3. 4D, diffusion

DTI = "edge_cases/philips_enhanced/dti/001"



@dataclass
class DtiComparison:
    image: Path
    sidecar: dict[str, Any]
    bval: np.ndarray
    world: np.ndarray  # (T, 3) RAS
    dc_bval: np.ndarray
    dc_world: np.ndarray
    pairs: list[int]  # our volume t is dcm2niix's volume pairs[t]


@pytest.fixture(scope="module")
def dti(enhanced_runs: dict[str, Run], dcm2niix_exe: str,
        corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> DtiComparison:
    run = enhanced_runs[DTI]
    run.assert_clean()
    (image,) = run.images
    stem = image.with_name(stem_of(image))
    bval = np.loadtxt(f"{stem}.bval", ndmin=1)
    bvec = np.loadtxt(f"{stem}.bvec", ndmin=2)
    data, affine = load(image)
    # dcm2niix -p n: display values, as dicomvol writes by default
    (theirs,) = run_dcm2niix(dcm2niix_exe, corpus / DTI, tmp_path_factory.mktemp("dc_dti"),
                             "-p", "n")
    dc_data, dc_affine = load(theirs)
    dc_bval = np.loadtxt(theirs.with_suffix(".bval"), ndmin=1)
    dc_bvec = np.loadtxt(theirs.with_suffix(".bvec"), ndmin=2)
    axis_map = grid_map(data.shape, affine, dc_data.shape, dc_affine)
    assert axis_map is not None, "dcm2niix's grid is not a permutation/flip of ours"
    ours = on_grid(data, axis_map)
    pairs = []
    for t in range(ours.shape[3]):
        hits = [u for u in range(dc_data.shape[3])
                if np.allclose(ours[..., t], dc_data[..., u], rtol=1e-5, atol=1e-3)]
        assert len(hits) == 1, f"volume {t}: dcm2niix volumes {hits} hold the same voxels"
        pairs.append(hits[0])
    assert sorted(pairs) == list(range(dc_data.shape[3]))
    return DtiComparison(image, read_sidecar(image), bval, fsl_bvec_to_world(bvec, affine),
                         dc_bval, fsl_bvec_to_world(dc_bvec, dc_affine), pairs)


def test_dti_bval_bvec_match_the_dicom_gradients(dti: DtiComparison, corpus: Path) -> None:
    assert nib.load(str(dti.image)).shape == (128, 128, 8, 4)
    assert dti.bval.shape == (4,) and dti.world.shape == (4, 3)
    sources = dti.sidecar["SourceInstances"]
    ds = pydicom.dcmread(resolve(sources[0]["File"], [corpus / DTI]), stop_before_pixels=True)
    z = 8
    for t in range(4):
        for k in range(z):  # every slice of volume t has the same diffusion encoding
            item = ds.PerFrameFunctionalGroupsSequence[sources[t * z + k]["Frame"] - 1]
            diffusion = item.MRDiffusionSequence[0]
            assert float(diffusion.DiffusionBValue) == pytest.approx(dti.bval[t], abs=1e-4)
            grad = diffusion.get("DiffusionGradientDirectionSequence")
            lps = (np.array([float(v) for v in grad[0].DiffusionGradientOrientation])
                   if grad else np.zeros(3))
            expected = np.diag([-1.0, -1.0, 1.0]) @ lps  # the gradient in RAS
            np.testing.assert_allclose(dti.world[t], expected, atol=1e-4,
                                       err_msg=f"volume {t} slice {k}")


def test_dti_bval_bvec_equal_dcm2niix_in_world_space(dti: DtiComparison) -> None:
    """Volumes paired by their voxels carry the same b-value and world-space gradient."""
    for t, u in enumerate(dti.pairs):
        assert round(float(dti.bval[t]), 4) == round(float(dti.dc_bval[u]), 4)
        np.testing.assert_allclose(dti.world[t], dti.dc_world[u], atol=1e-4)


def test_dti_volume_order_follows_the_acquisition(dti: DtiComparison) -> None:
    sources = dti.sidecar["SourceInstances"]
    z = 8
    first_frames = [sources[t * z]["Frame"] for t in range(4)]
    assert first_frames == [1, 2, 3, 4]  # stored order: b0, (1,0,0), (0,-1,0), direction 3
    # dcm2niix moves the b0 last (it sorts on the last DimensionIndexValue, 65 for b0) but
    # keeps the diffusion-weighted volumes in the stored order: so must we
    weighted = [u for t, u in enumerate(dti.pairs) if dti.bval[t] > 0]
    assert weighted == sorted(weighted)


def test_multi_echo_series_gives_one_output_per_echo(tmp_path: Path) -> None:
    uids = {"series_instance_uid": pydicom.uid.generate_uid(),
            "study_instance_uid": pydicom.uid.generate_uid(),
            "frame_of_reference_uid": pydicom.uid.generate_uid()}
    folder = tmp_path / "in"
    echoes = {}
    for echo, te in ((1, "10"), (2, "20")):
        echoes[echo] = write_series(
            folder, shape=(12, 10, 4), modality="MR", rescale=(1.0, 0.0), prefix=f"E{echo}_",
            row_dir=(1.0, 0.0, 0.0), col_dir=(0.0, 0.0, -1.0), seed=echo,
            extra={"EchoNumbers": echo, "EchoTime": te}, **uids)
    run = run_api([folder], tmp_path / "out")
    run.assert_clean()
    assert len(run.images) == 2
    seen = {}
    for image in run.images:
        check_exact(image, [folder])
        meta = read_sidecar(image)
        uids_in = {e["SOPInstanceUID"] for e in meta["SourceInstances"]}
        (echo,) = [e for e, s in echoes.items() if set(s.sop_instance_uids) == uids_in]
        seen[echo] = meta["EchoTime"]
        data, _ = load(image)
        assert np.array_equal(data, echoes[echo].values)
    assert seen == {1: pytest.approx(0.01), 2: pytest.approx(0.02)}


# ===================================================================== 4. PET SUV

PET = "pet_wholebody_seg/image"



@pytest.fixture(scope="module")
def pet_suv(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_api([corpus / PET], tmp_path_factory.mktemp("pet_suv"), suv=True)


@pytest.mark.slow
def test_pet_suv_equals_hand_computation(pet_suv: Run, corpus: Path) -> None:
    pet_suv.assert_clean()
    (image,) = pet_suv.images
    meta = read_sidecar(image)
    assert meta["Units"] == "g/ml"
    suv = meta["SUVbw"]
    factor = suv["SUVbwScaleFactor"]
    inputs = suv["Inputs"]
    sources = meta["SourceInstances"]
    root = corpus / PET
    ds = pydicom.dcmread(resolve(sources[0]["File"], [root]), stop_before_pixels=True)
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    weight_g = float(ds.PatientWeight) * 1000.0
    dose = float(rp.RadionuclideTotalDose)
    half_life = float(rp.RadionuclideHalfLife)
    decay_s = _seconds(ds.SeriesTime) - _seconds(rp.RadiopharmaceuticalStartTime)
    assert decay_s > 0
    expected = weight_g / (dose * 2.0 ** (-decay_s / half_life))
    assert factor == pytest.approx(expected, rel=1e-9)
    assert inputs["PatientWeight_kg"] == pytest.approx(float(ds.PatientWeight))
    assert inputs["RadionuclideTotalDose_Bq"] == pytest.approx(dose)
    assert inputs["RadionuclideHalfLife_s"] == pytest.approx(half_life)
    assert inputs["DecayCorrection"] == "START"
    assert inputs["DecayTime_s"] == pytest.approx(decay_s, abs=1e-3)

    img: Any = nib.load(str(image))
    z = img.shape[2]
    assert len(sources) == z == 545
    for k in (0, 61, 272, 400, z - 1):
        src = pydicom.dcmread(resolve(sources[k]["File"], [root]))
        assert str(src.SOPInstanceUID) == sources[k]["SOPInstanceUID"]
        bqml = (src.pixel_array.astype(np.float64) * float(src.RescaleSlope)
                + float(src.RescaleIntercept))
        got = np.asarray(img.dataobj[:, :, k], dtype=np.float64)
        assert_float32_close(got, (bqml * expected).T, f"slice {k}")


@pytest.fixture
def three_pet_files(pet_suv: Run, corpus: Path) -> list[Path]:
    """Three adjacent slices of the corpus PET (in slice order, from the sidecar)."""
    sources = read_sidecar(pet_suv.images[0])["SourceInstances"]
    return [resolve(e["File"], [corpus / PET]) for e in sources[200:203]]


def test_pet_without_patient_weight_is_an_error(three_pet_files: list[Path],
                                                tmp_path: Path) -> None:
    folder = tmp_path / "no_weight"
    folder.mkdir()
    for path in three_pet_files:
        ds = pydicom.dcmread(path)
        del ds.PatientWeight
        ds.save_as(folder / path.name)
    plain = run_cli([folder], tmp_path / "plain")
    assert plain.exit_code == 0 and len(plain.images) == 1  # the series itself is fine
    run = run_cli([folder], tmp_path / "suv", "--suv", "bw")
    assert run.exit_code == 1
    assert run.report["outputs"] == []
    assert run.report["errors"], run.report
    assert any("PatientWeight" in e["Error"] for e in run.report["errors"]), run.report["errors"]
    skipped = {(s["SOPInstanceUID"], s["File"]) for s in run.report["skipped"]}
    assert len(skipped) == 3  # every frame is accounted for
    assert not [p for p in run.out.iterdir() if p.name.endswith(IMAGE_EXTENSIONS)]


def _keys(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _keys(value)


def test_anonymized_suv_sidecar_keeps_no_patient_data(three_pet_files: list[Path],
                                                      tmp_path: Path) -> None:
    ds = pydicom.dcmread(three_pet_files[0], stop_before_pixels=True)
    run = run_cli(three_pet_files, tmp_path / "out", "--anonymize", "--suv", "bw")
    assert run.exit_code == 0
    (image,) = run.images
    text = sidecar_path(image).read_text(encoding="utf-8")
    meta = json.loads(text)
    assert meta["Units"] == "g/ml"
    assert not [k for k in _keys(meta) if k.startswith(("PatientWeight", "StudyDate"))]
    study_date = str(ds.StudyDate)
    assert study_date not in text
    assert f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}" not in text


# ================================================================ 5. output formats

def _oblique_series(folder: Path, positions: Sequence[Sequence[float]] | None = None
                    ) -> SyntheticSeries:
    row, col = oblique_directions(25.0, (0.3, 1.0, 0.4))
    return write_series(folder, shape=(22, 18, 7), pixel_spacing=(0.9, 0.75),
                        slice_spacing=1.8, row_dir=row, col_dir=col, positions=positions,
                        origin=(40.0, -15.0, 12.0), modality="CT",
                        rescale=[(0.5 * (1 + k % 3), -1000.0 - 3.0 * k) for k in range(7)],
                        series_description="formats", seed=21)


@pytest.fixture(scope="module")
def format_runs(tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[SyntheticSeries, Path, dict[str, Run]]:
    root = tmp_path_factory.mktemp("formats")
    series = _oblique_series(root / "in")
    runs = {fmt: run_cli([root / "in"], root / fmt, "-e", fmt) for fmt in ("nifti", "nrrd", "mha")}
    return series, root / "in", runs


def _nifti_reference(format_runs: Any) -> tuple[SyntheticSeries, np.ndarray, np.ndarray]:
    series, folder, runs = format_runs
    run = runs["nifti"]
    assert run.exit_code == 0
    run.assert_clean()
    (image,) = run.images
    check_exact(image, [folder])
    data, affine = load(image)
    np.testing.assert_allclose(affine, LPS_TO_RAS @ series.affine_lps, atol=1e-4)
    assert_float32_close(data, series.values, "nifti")
    return series, data, affine


def test_nrrd_output_has_the_nifti_grid_and_values(format_runs: Any) -> None:
    import nrrd

    series, ref_data, ref_affine = _nifti_reference(format_runs)
    run = format_runs[2]["nrrd"]
    assert run.exit_code == 0
    run.assert_clean()
    (image,) = run.images
    assert image.suffix == ".nrrd" and sidecar_path(image).is_file()
    data, header = nrrd.read(str(image), index_order="F")
    assert header["space"] == "left-posterior-superior"
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(header["space directions"], dtype=np.float64).T  # rows = axes
    lps[:3, 3] = np.asarray(header["space origin"], dtype=np.float64)
    np.testing.assert_allclose(LPS_TO_RAS @ lps, ref_affine, atol=1e-4)
    np.testing.assert_allclose(lps, series.affine_lps, atol=1e-9)
    assert data.shape == ref_data.shape
    assert_float32_close(data.astype(np.float64), ref_data, "nrrd vs nifti")
    assert_float32_close(data.astype(np.float64), series.values, "nrrd vs DICOM")


def test_mha_output_has_the_nifti_grid_and_values(format_runs: Any) -> None:
    import SimpleITK as sitk

    series, ref_data, ref_affine = _nifti_reference(format_runs)
    run = format_runs[2]["mha"]
    assert run.exit_code == 0
    run.assert_clean()
    (image,) = run.images
    assert image.suffix == ".mha" and sidecar_path(image).is_file()
    img = sitk.ReadImage(str(image))
    data = sitk.GetArrayFromImage(img).T.astype(np.float64)  # (Z, Y, X) -> [i, j, k]
    direction = np.array(img.GetDirection()).reshape(3, 3)  # row-major, columns = axes
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    np.testing.assert_allclose(LPS_TO_RAS @ lps, ref_affine, atol=1e-4)
    np.testing.assert_allclose(lps, series.affine_lps, atol=1e-9)
    assert data.shape == ref_data.shape
    assert_float32_close(data, ref_data, "mha vs nifti")


def _tilted_series(folder: Path) -> SyntheticSeries:
    """Slices stepping 1.8 mm along the normal and 0.7 mm along the columns (gantry tilt)."""
    row, col = oblique_directions(25.0, (0.3, 1.0, 0.4))
    normal = np.cross(row, col)
    origin = np.array([40.0, -15.0, 12.0])
    positions = [origin + k * (1.8 * normal + 0.7 * np.asarray(col)) for k in range(7)]
    return _oblique_series(folder, positions)


def test_sheared_volume_is_an_error_in_mha_but_exact_in_nifti(tmp_path: Path) -> None:
    folder = tmp_path / "tilted"
    _tilted_series(folder)
    mha = run_cli([folder], tmp_path / "mha", "--tilt", "shear", "-e", "mha")
    assert mha.exit_code == 1
    assert mha.report["outputs"] == []
    assert any("shear" in e["Error"].lower() for e in mha.report["errors"]), mha.report
    assert len(mha.report["skipped"]) == 7  # every slice accounted for
    assert not list(mha.out.glob("*.mha"))
    nifti = run_cli([folder], tmp_path / "nifti", "--tilt", "shear")
    assert nifti.exit_code == 0
    nifti.assert_clean()
    (image,) = nifti.images
    assert read_sidecar(image)["Sheared"] is True
    check_exact(image, [folder])


def test_to_simpleitk_geometry_equals_the_affine(tmp_path: Path) -> None:
    series = _oblique_series(tmp_path / "in")
    (volume,) = dicomvol.read_series([tmp_path / "in"])
    img = dicomvol.to_simpleitk(volume)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction * np.array(img.GetSpacing()), volume.affine[:3, :3],
                               atol=1e-9)
    np.testing.assert_allclose(img.GetOrigin(), volume.affine[:3, 3], atol=1e-9)
    np.testing.assert_allclose(volume.affine, series.affine_lps, atol=1e-9)
    import SimpleITK as sitk

    assert_float32_close(sitk.GetArrayFromImage(img).T.astype(np.float64),
                         np.asarray(volume.values, dtype=np.float64), "to_simpleitk")
    (tilted,) = dicomvol.read_series([_tilted_series(tmp_path / "tilted").paths[0].parent],
                                     options=PlanOptions(tilt="shear"))
    with pytest.raises(UsageError, match="shear"):
        dicomvol.to_simpleitk(tilted)


# ===================================================================== 6. anonymize

IDENTIFYING = {"PatientID": "SECRET123", "PatientName": "Doe^Jane",
               "PatientBirthDate": "19700101", "InstitutionName": "Hospital Xyz"}


def test_anonymize_drops_patient_keys_and_keeps_uids(tmp_path: Path) -> None:
    series = write_series(
        tmp_path / "in", shape=(10, 8, 3), patient_id=IDENTIFYING["PatientID"],
        extra={k: v for k, v in IDENTIFYING.items() if k != "PatientID"})
    plain = run_cli([tmp_path / "in"], tmp_path / "plain")
    assert plain.exit_code == 0
    (image,) = plain.images
    meta = read_sidecar(image)
    assert {k for k in IDENTIFYING if k in meta} == set(IDENTIFYING)  # something to remove
    assert IDENTIFYING["PatientID"] in image.name  # the default template names the patient

    anon = run_cli([tmp_path / "in"], tmp_path / "anon", "--anonymize")
    assert anon.exit_code == 0
    anon.assert_clean()
    (image,) = anon.images
    text = sidecar_path(image).read_text(encoding="utf-8")
    meta = json.loads(text)
    assert not set(IDENTIFYING) & set(_keys(meta))
    for value in (IDENTIFYING["PatientID"], "Doe", "Hospital Xyz", "1970-01-01", "19700101"):
        assert value not in text
    assert meta["SeriesInstanceUID"] == series.series_instance_uid
    assert meta["StudyInstanceUID"] == series.study_instance_uid
    for key in ("Modality", "SeriesNumber", "SeriesDescription", "SourceInstances", "Resampled",
                "Geometry", "Warnings"):
        assert key in meta
    names = [p.name for p in anon.out.iterdir()]
    assert not [n for n in names if IDENTIFYING["PatientID"] in n], names
    assert IDENTIFYING["PatientID"] not in (anon.out / "dicomvol_report.json").read_text()
    check_exact(image, [tmp_path / "in"])

    refused = run_cli([tmp_path / "in"], tmp_path / "refused", "--anonymize",
                      "-f", "{PatientID}_{SeriesNumber}")
    assert refused.exit_code == 2
    assert not refused.out.exists() or not [
        p for p in refused.out.iterdir() if p.name.endswith(IMAGE_EXTENSIONS)]


# ==================================================================== 7. Philips scaling

PHILIPS = "enhanced_mr/Philips"
DD_001, DD_005 = "Philips MR Imaging DD 001", "Philips MR Imaging DD 005"


def philips_frame_scaling(ds: Any, frame: int) -> tuple[float, float, float]:
    """(RS, RI, SS) of one enhanced frame, read directly from its functional groups."""
    item = ds.PerFrameFunctionalGroupsSequence[frame - 1]
    pvt = item.PixelValueTransformationSequence[0]
    private = item.private_block(0x2005, DD_005)[0x0F].value[0]
    ss = float(private.private_block(0x2005, DD_001)[0x0E].value)
    return float(pvt.RescaleSlope), float(pvt.RescaleIntercept), ss


@pytest.fixture(scope="module")
def philips_runs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("philips")
    return {mode: run_api([corpus / PHILIPS], root / mode,
                          plan=PlanOptions(philips_scaling=mode)) for mode in ("display", "fp")}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["display", "fp"])
def test_philips_values_per_frame(philips_runs: dict[str, Run], corpus: Path,
                                  mode: str) -> None:
    run = philips_runs[mode]
    run.assert_clean()
    assert len(run.images) == 2  # magnitude and B0 field map
    (path,) = sorted((corpus / PHILIPS).glob("*.dcm"))
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float64)
    for image in run.images:
        meta = read_sidecar(image)
        assert meta["UsePhilipsFloatNotDisplayScaling"] == (1 if mode == "fp" else 0)
        data, _ = load(image)
        for k, entry in enumerate(meta["SourceInstances"]):
            rs, ri, ss = philips_frame_scaling(ds, entry["Frame"])
            assert meta["PhilipsScaleSlope"] == pytest.approx(ss, rel=1e-6)
            display = rs * pixels[entry["Frame"] - 1] + ri
            expected = display if mode == "display" else display / (rs * ss)
            assert_float32_close(data[:, :, k], expected.T, f"{image.name} slice {k}")


def test_philips_fp_values_equal_dcm2niix_default(philips_runs: dict[str, Run], corpus: Path,
                                                  dcm2niix_exe: str, tmp_path: Path) -> None:
    """dcm2niix's default (-p y) writes Philips FP values; so does --philips-scaling fp.

    Voxels agree to float32 precision, plus, for the field map, dcm2niix's own header
    rounding: it writes scl_slope 4001/16384 = 0.24420166 where 1/SS = 0.24420023
    (5.8e-6 relative); that deviation is measured from its header, not assumed.
    """
    theirs = run_dcm2niix(dcm2niix_exe, corpus / PHILIPS, tmp_path / "dc")
    assert len(theirs) == 2
    ds = pydicom.dcmread(next((corpus / PHILIPS).glob("*.dcm")), stop_before_pixels=True)
    matched = []
    for image in philips_runs["fp"].images:
        data, affine = load(image)
        meta = read_sidecar(image)
        rs, ri, ss = philips_frame_scaling(ds, meta["SourceInstances"][0]["Frame"])
        for other in theirs:
            img: Any = nib.load(str(other))
            axis_map = grid_map(data.shape, affine, img.shape, img.get_sform())
            assert axis_map is not None, f"{other.name}: not our grid"
            ours = on_grid(data, axis_map)
            dc = as_4d(np.asarray(img.get_fdata(), dtype=np.float64))
            raw = np.asarray(img.dataobj.get_unscaled(), dtype=np.float64)
            header_dev = (abs(float(img.dataobj.slope) - 1.0 / ss) * float(np.abs(raw).max())
                          + abs(float(img.dataobj.inter) - ri / (rs * ss)))
            scale = max(1.0, float(np.abs(dc).max()))
            if header_dev > 1e-4 * scale:
                continue  # another output's scaling: not this one's twin
            err = float(np.max(np.abs(ours - dc)))
            if err <= FLOAT32_RTOL * scale + header_dev:
                matched.append((image.name, other.name, err, header_dev))
    assert sorted(m[1] for m in matched) == [p.name for p in theirs], matched
    assert len({m[0] for m in matched}) == 2, matched


def test_legacy_converted_attributes_only_in_unassigned_sequences(tmp_path: Path,
                                                                 corpus: Path) -> None:
    """Legacy converted enhanced objects may keep attributes only in the Unassigned*
    ConvertedAttributesSequence items: they are read from there (PS3.3 C.7.6.16.2.25)."""
    import pydicom

    import dicomvol

    folder = corpus / "seg_dcmqi" / "segmentations" / "23x38x3" / "multiframe"
    source = next(p for p in folder.iterdir() if p.is_file())
    ds = pydicom.dcmread(source)
    unassigned = ds.SharedFunctionalGroupsSequence[0].UnassignedSharedConvertedAttributesSequence[0]
    unassigned.SeriesDescription = ds.SeriesDescription
    unassigned.ProtocolName = "only-in-unassigned"
    del ds.SeriesDescription
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.UnassignedPerFrameConvertedAttributesSequence[0].InstanceNumber = 100 + n
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "legacy.dcm")
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    assert plan.first.series_description == unassigned.SeriesDescription
    assert sorted(f.instance_number or 0 for f in plan.all_frames) == [100, 101, 102]
    volume = dicomvol.read_volume(plan)
    assert volume.metadata["SeriesDescription"] == unassigned.SeriesDescription
    assert volume.metadata.get("ProtocolName") == "only-in-unassigned"

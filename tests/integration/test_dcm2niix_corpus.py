"""Every corpus volume dcm2niix writes: reproduced by dicomvol, or a documented difference
whose headers support dicomvol (issue 9).

Each input below is converted once per session by both tools (dcm2niix as
``benchmarks/reproduced.py`` runs it, dicomvol with its defaults, which match dcm2niix's:
``--tilt both``, ``--irregular resample``). Every dcm2niix volume must be reproduced (same
world grid, values, bval/bvec: :mod:`dicomvol.testing.reproduce`), or be one of
:data:`DOCUMENTED`, with the kind :mod:`dicomvol.testing.misses` computes for it; each kind
has its own assertion on the headers here (:data:`CHECKS`). A new miss fails (with the line
``reproduced.py`` prints for it), and so does a documented miss that is now reproduced.

These inputs hold every miss of the whole-corpus measure (``benchmarks/reproduced.py``):
the other sets are reproduced volume for volume (``test_dcm2niix*.py`` compare them in
detail).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from dicomvol.testing import grids, misses
from dicomvol.testing.reproduce import reproduced

pytestmark = [pytest.mark.slow]

DCM2NIIX_ARGS = ["-z", "n", "-b", "y", "-ba", "n", "-x", "i", "-f", "%s_%d"]
INPUTS = ["ct_tilt", "edge_cases/failing", "edge_cases/generic/rgb", "pet_wholebody_seg/mask",
          "seg_dcmqi", "seg_highdicom"]

#: Every dcm2niix file not reproduced, keyed by (input, its first corpus file, dcm2niix's
#: derived suffix: "", "_Tilt", "_Eq", "_Tilt_Eq" or "_ROI"; dcm2niix's own file names change
#: with what else is in the folder): (kind, how many such files).
DOCUMENTED: dict[tuple[str, str, str], tuple[str, int]] = {
    # GE head CT, tilt 18.5 deg, slices 1.08-7.0 mm apart: the raw stack is misplaced; both
    # tools resample (dicomvol onto planes through the slices, dcm2niix onto 2.48 mm)
    ("ct_tilt", "GE/01.dcm", ""): ("misplaced_stack", 1),
    ("ct_tilt", "GE/01.dcm", "_Tilt_Eq"): ("resampled_other_grid_policy", 1),
    # Philips tilts -18.5 (S2010) and +16.5 (S3010): raw stacks misplaced; S2010's _Tilt is
    # dicomvol's resampled grid, S3010's is 79.6 mm off along z (test_dcm2niix.py)
    ("ct_tilt", "Philips/S2010/I10", ""): ("misplaced_stack", 1),
    ("ct_tilt", "Philips/S2010/I10", "_Tilt"): ("resampled_outside_field", 1),
    ("ct_tilt", "Philips/S3010/I10", ""): ("misplaced_stack", 1),
    ("ct_tilt", "Philips/S3010/I10", "_Tilt"): ("resampled_misplaced", 1),
    # Philips exam summary (S4010): RGB screenshots without an image plane; the overlay of the
    # REF_SURVIEW captures (which dicomvol writes, PS3.3 A.8.1.3)
    ("ct_tilt", "Philips/S4010/I30", ""): ("no_patient_geometry", 1),
    ("ct_tilt", "Philips/S4010/I40", ""): ("no_patient_geometry", 1),
    ("ct_tilt", "Philips/S4010/I50", ""): ("no_patient_geometry", 1),
    ("ct_tilt", "Philips/S4010/I10", "_ROI"): ("overlay_policy", 1),
    # dicom2nifti's failing cases: a missing slice (sliceincrement/001), a missing slice in a
    # tilted stack (sliceincrement/002), a 14 deg tilt without GantryDetectorTilt
    ("edge_cases/failing", "sliceincrement/001/IM-0001-0007-0001.dcm", ""):
        ("misplaced_stack", 1),
    ("edge_cases/failing", "sliceincrement/001/IM-0001-0007-0001.dcm", "_Eq"):
        ("resampled_other_grid_policy", 1),
    ("edge_cases/failing", "sliceincrement/002/IM-0001-0001.dcm", ""): ("misplaced_stack", 1),
    ("edge_cases/failing", "sliceincrement/002/IM-0001-0001.dcm", "_Tilt_Eq"):
        ("resampled_outside_field", 1),
    ("edge_cases/failing", "gantrytilting/001/IM-0001-0001.dcm", ""): ("misplaced_stack", 1),
    ("edge_cases/failing", "gantrytilting/001/IM-0001-0001.dcm", "_Tilt"):
        ("resampled_outside_field", 1),
    # SEGs: several segments per position (stacked by dcm2niix), sparse frames (two copies of
    # one SEG: noppv and ppv5), fractions
    ("pet_wholebody_seg/mask", "mask.dcm", ""): ("seg_segments_stacked", 1),
    ("seg_dcmqi", "segmentations/partial_overlaps.dcm", ""): ("seg_segments_stacked", 1),
    ("seg_dcmqi", "segmentations/sparse-labelmap-noppv.dcm", ""): ("seg_frames_misplaced", 2),
    ("seg_highdicom", "seg_image_ct_binary_overlap.dcm", ""): ("seg_segments_stacked", 1),
    ("seg_highdicom", "seg_image_ct_binary_fractional.dcm", ""): ("seg_fraction_unscaled", 1),
    ("seg_highdicom", "seg_image_ct_true_fractional.dcm", ""): ("seg_fraction_unscaled", 1),
    # a DX image and a SEG of a CR image: no patient coordinates at all
    ("seg_highdicom", "dx_image.dcm", ""): ("no_patient_geometry", 1),
    ("seg_highdicom", "seg_image_cr_binary.dcm", ""): ("no_patient_geometry", 1),
    # slide microscopy images (written by dicomvol as slides) and SEGs of slides
    **{("seg_highdicom", name, ""): ("slide_tiles", 1) for name in (
        "sm_image_dots.dcm", "sm_image.dcm", "sm_image_numbers.dcm", "sm_image_grayscale.dcm",
        "sm_image_jpegls.dcm", "seg_image_sm_numbers.dcm", "seg_image_sm_dots.dcm",
        "seg_image_sm_control.dcm", "seg_image_sm_dots_tiled_full.dcm",
        "seg_image_sm_control_labelmap.dcm", "seg_image_sm_control_labelmap_palette_color.dcm")},
}


def documented_key(key: str, miss: misses.Miss) -> tuple[str, str, str]:
    """The :data:`DOCUMENTED` key of a miss."""
    found = misses.DERIVED_SUFFIX.search(miss.name.removesuffix(".nii"))
    suffix = re.sub(r"_?\d+$", "", found.group(1)) if found else ""
    return key, (sorted(miss.files) or [""])[0], suffix


@dataclass
class Run:
    """Both tools' outputs for one input, with the misses and their kinds."""

    key: str
    outputs: misses.Outputs
    rows: list[tuple[str, int, bool]]
    found: list[misses.Miss]


def _convert(job: tuple[Path, Path, str, str]) -> None:
    src, work, dcm2niix, dicomvol = job
    (work / "dcm2niix").mkdir(parents=True)
    subprocess.run([dcm2niix, *DCM2NIIX_ARGS, "-o", str(work / "dcm2niix"), str(src)],
                   capture_output=True, check=False, timeout=600)
    subprocess.run([dicomvol, "convert", str(src), "-o", str(work / "dicomvol"), "-z", "n",
                    "-q", "-j", "1"], capture_output=True, check=False, timeout=600)


@pytest.fixture(scope="session")
def runs(corpus: Path, dcm2niix_exe: str,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """One conversion per input and tool (two inputs at a time), classified."""
    here = Path(sys.executable).with_name("dicomvol")  # the CLI of the venv under test
    dicomvol = str(here) if here.is_file() else shutil.which("dicomvol")
    if dicomvol is None:
        pytest.fail("the dicomvol command is not installed (pip install -e .)")
    tmp = tmp_path_factory.mktemp("dcm2niix_corpus")
    jobs = []
    for n, key in enumerate(INPUTS):
        if not (corpus / key).is_dir():
            pytest.fail(f"corpus input {key} missing from {corpus}")
        jobs.append((corpus / key, tmp / f"{n:02d}", dcm2niix_exe, dicomvol))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(_convert, jobs))
    out = {}
    for key, (src, work, _, _) in zip(INPUTS, jobs, strict=True):
        outputs = misses.Outputs.load(src, work / "dcm2niix", work / "dicomvol")
        rows = reproduced(outputs.dx, outputs.dv)
        out[key] = Run(key, outputs, rows, misses.explain(outputs, rows))
    return out


# ------------------------------------------------------------------- header checks by kind


def _ds(run: Run, miss: misses.Miss, n: int = 0) -> Any:
    return pydicom.dcmread(run.outputs.src / miss.files[n], stop_before_pixels=True)


def _dx(run: Run, miss: misses.Miss) -> Any:
    return next(im for im in run.outputs.dx if im.path.name == miss.name)


def _skipped(miss: misses.Miss, words: str) -> None:
    assert any(d.startswith("skipped:") and words in d for d in miss.dicomvol), miss.line()


def check_slide_tiles(run: Run, miss: misses.Miss) -> None:
    """Tiles of one plane: the total pixel matrix is larger than a frame, so frames sit side
    by side; dicomvol writes SM images as slides and skips SEGs of slides with a reason."""
    ds = _ds(run, miss)
    assert ds.SOPClassUID in (misses.SM_SOP_CLASS, *misses.SEG_SOP_CLASSES)
    assert int(ds.NumberOfFrames) > 1
    assert int(ds.TotalPixelMatrixColumns) * int(ds.TotalPixelMatrixRows) > (
        int(ds.Columns) * int(ds.Rows)), miss.line()
    if ds.SOPClassUID == misses.SM_SOP_CLASS:
        slides = run.outputs.slides_of([s for f in miss.files
                                        for s in run.outputs.sources[miss.series]
                                        if s.rel == f])
        found = max((grids.tiles_in_slide(_dx(run, miss), p) for p in slides), default=0.0)
        if found < 1.0:
            # sm_image.dcm and sm_image_control.dcm: one SOPInstanceUID, different pixels (a
            # conflict the headers cannot settle); each tool keeps a different one
            uids = {str(_ds(run, miss, n).SOPInstanceUID) for n in range(len(miss.files))}
            assert len(miss.files) > 1 and len(uids) == 1, miss.line()
            _skipped(miss, "the same SOPInstanceUID as")
        assert slides, miss.line()
    else:
        _skipped(miss, "slide microscopy")


def check_no_patient_geometry(run: Run, miss: misses.Miss) -> None:
    """No IPP/IOP in the file or its functional groups: dcm2niix's affine is made up."""
    for n in range(len(miss.files)):
        ds = _ds(run, miss, n)
        assert "ImagePositionPatient" not in ds and "ImageOrientationPatient" not in ds
        for group in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
            assert not any("PlanePositionSequence" in item for item in ds.get(group) or [])
    _skipped(miss, "")


def _seg_positions(ds: Any) -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient)
            for item in ds.PerFrameFunctionalGroupsSequence]


def check_seg_segments_stacked(run: Run, miss: misses.Miss) -> None:
    """More frames than positions (several segments per position): dcm2niix's slices are
    segments, not positions; dicomvol writes a label map from the SEG."""
    ds = _ds(run, miss)
    positions = _seg_positions(ds)
    assert len(set(positions)) < len(positions) == _dx(run, miss).shape[2], miss.line()
    assert len(ds.SegmentSequence) > 1
    assert any(not d.startswith("skipped:") for d in miss.dicomvol), miss.line()


def check_seg_frames_misplaced(run: Run, miss: misses.Miss) -> None:
    """The frames' own positions are not where dcm2niix's affine puts its slices."""
    ds = _ds(run, miss)
    positions = sorted(set(_seg_positions(ds)))
    off = misses.seg_misplacement(_dx(run, miss), positions)
    assert off is not None and off > misses.PLACEMENT_TOL_MM, miss.line()


def check_seg_fraction_unscaled(run: Run, miss: misses.Miss) -> None:
    """FRACTIONAL with MaximumFractionalValue M: a fraction is stored / M (<= 1); dcm2niix
    writes stored values above 1, dicomvol fractions on the same grid."""
    ds = _ds(run, miss)
    assert ds.SegmentationType == "FRACTIONAL" and int(ds.MaximumFractionalValue) > 1
    assert float(_dx(run, miss).data.max()) > 1.0
    assert "fraction x" in miss.evidence, miss.line()


def check_seg_on_image_grid(run: Run, miss: misses.Miss) -> None:
    """dcm2niix's frame stack is part of dicomvol's label map grid, with the same voxels set."""
    labels = [im for im in run.outputs.dv if im.path.name in miss.dicomvol
              and im.meta.get("LabelMap")]
    found = [grids.sub_grid_values(_dx(run, miss), im) for im in labels]
    assert any(f is not None and np.array_equal(f[0] > 0, f[1] > 0) for f in found), (
        miss.line())


def check_localizer_policy(run: Run, miss: misses.Miss) -> None:
    assert "LOCALIZER" in _ds(run, miss).ImageType
    _skipped(miss, "localizer")


def check_misplaced_stack(run: Run, miss: misses.Miss) -> None:
    """dcm2niix's slices (found by content) sit away from their own IPP; the headers show a
    tilt (slices step off the normal) or an irregular step; dicomvol wrote the series."""
    files = [run.outputs.src / f for f in miss.files]
    errors = grids.match_slices(_dx(run, miss), files)
    assert errors is not None and float(errors.max()) > misses.PLACEMENT_TOL_MM, miss.line()
    heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    iop = np.array([float(v) for v in heads[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ipp = np.array(sorted((np.array([float(v) for v in h.ImagePositionPatient])
                           for h in heads), key=lambda p: float(normal @ p)))
    steps = np.diff(ipp, axis=0)
    along = steps @ normal
    off_normal = np.degrees(np.arccos(np.clip(np.abs(along) / np.linalg.norm(steps, axis=1),
                                              0, 1)))
    irregular = float(along.max() - along.min()) > 0.01 * float(along.mean())
    assert float(off_normal.max()) > 0.01 or irregular, miss.line()
    # dicomvol's exact (sheared) stacks of the same files put every slice on its IPP
    stacks = [im for im in run.outputs.dv if im.path.name in miss.dicomvol
              and im.meta.get("Resampled") is False]
    assert stacks or irregular, miss.line()  # no exact stack only with irregular spacing
    for im in stacks:
        ours = grids.match_slices(im, files)
        assert ours is not None and float(ours.max()) <= misses.PLACEMENT_TOL_MM, im.path


def _resampled(run: Run, miss: misses.Miss) -> Any:
    return next(im for im in run.outputs.dv
                if im.path.name in miss.dicomvol and im.meta.get("Resampled"))


def check_resampled_outside_field(run: Run, miss: misses.Miss) -> None:
    """Same grid as dicomvol's resampled volume; every differing voxel is one dicomvol fills
    and one that the headers put outside a source slice it draws on (no source pixel there);
    elsewhere the values agree to dcm2niix's rounding."""
    ours = _resampled(run, miss)
    fill = float(ours.meta["Resampling"]["fill"])
    same = grids.resampled_same_grid(_dx(run, miss), ours, fill)
    assert same is not None and same[0] == 0 and same[1] > 0, miss.line()
    assert same[2] <= grids.INTEGER_ROUNDING + 1e-3, miss.line()
    outside = grids.outside_sources(ours, same[3], [run.outputs.src / f for f in miss.files])
    assert outside.all(), f"{miss.line()}: {int((~outside).sum())} inside the field"


def _support(run: Run, miss: misses.Miss) -> tuple[tuple[float, float], tuple[float, float]]:
    files = [run.outputs.src / f for f in miss.files]
    return (grids.header_support(_dx(run, miss), files),
            grids.header_support(_resampled(run, miss), files))


def check_resampled_misplaced(run: Run, miss: misses.Miss) -> None:
    (dc_median, dc_inside), (dv_median, dv_inside) = _support(run, miss)
    assert dc_median > misses.MISPLACED_RATIO * dv_median or dc_inside < 0.5 * dv_inside
    assert dv_inside > 0.95, miss.line()


def check_resampled_other_grid_policy(run: Run, miss: misses.Miss) -> None:
    """Both resamplings fit the source pixels, dicomvol's at least as closely, and dicomvol's
    grid has a plane through more of the source slices than dcm2niix's (which interpolates
    acquired slices away: GE 57 % against 7 %, sliceincrement/001 4 of 4 against 2)."""
    (dc_median, dc_inside), (dv_median, dv_inside) = _support(run, miss)
    assert dv_inside > 0.95 and dc_inside > 0.95, miss.line()
    assert dv_median <= dc_median + 1e-6, miss.line()
    assert dc_median < misses.MISPLACED_MIN_UNITS, miss.line()
    files = [run.outputs.src / f for f in miss.files]
    kept_dc = grids.planes_through_sources(_dx(run, miss), files)
    assert grids.planes_through_sources(_resampled(run, miss), files) > kept_dc, miss.line()


def check_overlay_policy(run: Run, miss: misses.Miss) -> None:
    """The overlay's image is reproduced; the overlay itself is a graphic plane (60xx,3000)."""
    base = misses.DERIVED_SUFFIX.sub("", miss.name.removesuffix(".nii")) + ".nii"
    assert all(ok for name, _, ok in run.rows if name == base), f"{base} not reproduced"
    with_overlay = [ds for ds in (_ds(run, miss, n) for n in range(len(miss.files)))
                    if (0x6000, 0x3000) in ds]
    assert with_overlay, miss.line()
    # PS3.3 C.9.2.1.1: G = graphics (annotation), R = ROI; only a graphics overlay is argued
    assert all(ds[0x6000, 0x0040].value == "G" for ds in with_overlay), miss.line()


CHECKS: dict[str, Callable[[Run, misses.Miss], None]] = {
    "slide_tiles": check_slide_tiles,
    "no_patient_geometry": check_no_patient_geometry,
    "seg_segments_stacked": check_seg_segments_stacked,
    "seg_frames_misplaced": check_seg_frames_misplaced,
    "seg_fraction_unscaled": check_seg_fraction_unscaled,
    "seg_on_image_grid": check_seg_on_image_grid,
    "localizer_policy": check_localizer_policy,
    "misplaced_stack": check_misplaced_stack,
    "resampled_outside_field": check_resampled_outside_field,
    "resampled_misplaced": check_resampled_misplaced,
    "resampled_other_grid_policy": check_resampled_other_grid_policy,
    "overlay_policy": check_overlay_policy,
}


@pytest.mark.parametrize("key", INPUTS)
def test_every_dcm2niix_volume_reproduced_or_documented(runs: dict[str, Run], key: str) -> None:
    run = runs[key]
    assert run.rows, f"{key}: dcm2niix wrote nothing"
    by_key: dict[tuple[str, str, str], list[misses.Miss]] = {}
    for m in run.found:
        by_key.setdefault(documented_key(key, m), []).append(m)
    documented = {k: v for k, v in DOCUMENTED.items() if k[0] == key}
    new = [m.line() for k, found in by_key.items() if k not in documented for m in found]
    assert not new, f"{key}: volumes not reproduced and not documented:\n" + "\n".join(new)
    gone = sorted(set(documented) - set(by_key))
    assert not gone, f"{key}: now reproduced, remove from DOCUMENTED: {gone}"
    for k, (kind, count) in documented.items():
        found = by_key[k]
        assert len(found) == count, f"{k}: {[m.line() for m in found]}"
        for miss in found:
            assert miss.kind == kind, f"{key}: documented {kind}, now {miss.line()}"
            CHECKS[kind](run, miss)


def test_every_kind_has_a_check() -> None:
    assert set(CHECKS) == set(misses.KINDS) - {"unexplained"}
    assert {kind for kind, _ in DOCUMENTED.values()} <= set(CHECKS)

"""Label maps from the corpus SEG and RTSTRUCT objects, checked independently and against peers.

Sets: ``pet_wholebody_seg`` (11 segments on a 9-bed PET, frames drifting
0.045 mm), ``seg_dcmqi`` (non-byte-aligned bit packing, overlapping segments,
the Label Map Segmentation SOP class), ``seg_highdicom`` (binary, fractional,
overlapping SEGs whose CT is not in the corpus: own grid; slide and
projection SEGs: skipped), ``ct_lung1`` (CT + RTSTRUCT with 4 ROIs).

Every SEG map passes ``labelcheck.check_seg`` (pydicom + nibabel: every
segmented pixel of every frame lands where the map holds its segment, on the
image output's grid) and every RTSTRUCT ROI has Dice >= 0.95 against the
test's own even-odd rasterisation. Peers and their systematic differences
(measured here, asserted so that a change is noticed):

- plastimatch ``--xor-contours``: the same voxels as dicomvol (Dice >= 0.9999;
  the lung ROIs differ by one voxel each, a vertex exactly on a voxel centre);
  plastimatch's default fills holes, so its masks contain dicomvol's;
- rt-utils: every ROI grows (1.7 % to 12.6 % more voxels on LUNG1; it rounds
  vertices to pixels and fills the polygon outline) and contains nearly all
  of dicomvol's voxels;
- highdicom ``segread(...).get_volume()``: the same labels, but on a grid
  cropped to the segmented slices (71 of the PET's 545).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

import dicomvol
from conftest import skip_or_fail
from dicomvol.constants import CONTOUR_PLANE_TOLERANCE_MM
from dicomvol.options import ConvertOptions
from labelcheck import (
    FLIP,
    assert_same_grid,
    check_seg,
    dice,
    map_masks,
    rtstruct_reference,
    sidecar_of,
)

pytestmark = pytest.mark.slow

#: Dice of every RTSTRUCT ROI against the test's own rasterisation (the issue's bar).
MIN_DICE = 0.95
#: plastimatch --xor-contours rasterises voxel centres with the even-odd rule too.
MIN_DICE_PLASTIMATCH_XOR = 0.9999


def convert(inputs: list[Path], out: Path) -> dict[str, Any]:
    dicomvol.convert([str(p) for p in inputs], out, ConvertOptions(jobs=1, compress=False))
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return report


def label_maps(report: dict[str, Any], out: Path) -> list[Path]:
    return [out / p for p in report["outputs"] if "LabelMap" in sidecar_of(out / p)]


def source_file(corpus_set: Path, label_map: Path) -> Path:
    return corpus_set / sidecar_of(label_map)["LabelMap"]["SourceObject"]["File"]


def referenced(label_map: Path) -> Path | None:
    name = sidecar_of(label_map)["LabelMap"]["ReferencedImage"]
    return label_map.parent / name if name else None


def assert_every_frame_accounted(report: dict[str, Any], out: Path, root: Path) -> None:
    """Every SEG frame in a label map's SourceInstances or skipped; every RTSTRUCT too."""
    used: set[tuple[str, int]] = set()
    for label_map in label_maps(report, out):
        used.update((e["SOPInstanceUID"], e["Frame"])
                    for e in sidecar_of(label_map)["SourceInstances"])
    skipped = {(s["SOPInstanceUID"], s["Frame"]) for s in report["skipped"]}
    errors = {e["File"] for e in report["errors"]}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("Modality") not in ("SEG", "RTSTRUCT"):
            continue
        rel = path.relative_to(root).as_posix()
        uid = str(ds.SOPInstanceUID)
        n = int(ds.get("NumberOfFrames", 1) or 1)
        if rel in errors or (uid, None) in skipped:
            continue
        for frame in range(1, n + 1):
            assert ((uid, frame) in used) != ((uid, frame) in skipped), (rel, frame)


@pytest.fixture(scope="module")
def pet(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("pet_seg")
    return convert([corpus / "pet_wholebody_seg"], out), out


def test_pet_wholebody_seg_on_the_pet_grid(pet: tuple[dict[str, Any], Path],
                                           corpus: Path) -> None:
    report, out = pet
    assert report["errors"] == [] and report["skipped"] == []
    (label_map,) = label_maps(report, out)
    image = referenced(label_map)
    assert image is not None
    counts = check_seg(corpus / "pet_wholebody_seg/mask/mask.dcm", label_map, image)
    assert len(counts) == 11 and all(v > 0 for v in counts.values())
    meta = sidecar_of(label_map)
    assert meta["Resampled"] is False
    assert nib.load(str(label_map)).shape == (168, 168, 545)
    drift = meta["LabelMap"]["MaxFrameDriftMm"]
    assert 0.01 < drift < 0.05  # the frames drift ~0.045 mm from the PET slices
    assert len(meta["SourceInstances"]) == 171
    assert_every_frame_accounted(report, out, corpus / "pet_wholebody_seg")


def test_highdicom_get_volume_agrees_on_its_cropped_grid(
        pet: tuple[dict[str, Any], Path], corpus: Path) -> None:
    hd = pytest.importorskip("highdicom") if not _ci() else __import__("highdicom")
    report, out = pet
    (label_map,) = label_maps(report, out)
    seg = hd.seg.segread(str(corpus / "pet_wholebody_seg/mask/mask.dcm"))
    volume = seg.get_volume(combine_segments=True)
    theirs = np.asarray(volume.array)
    assert theirs.shape[0] < 545  # cropped to the segmented slices
    img: Any = nib.load(str(label_map))
    ours = np.asarray(img.dataobj)
    to_ours = np.linalg.inv(FLIP @ img.get_sform()) @ np.asarray(volume.affine)
    idx = np.argwhere(np.ones(theirs.shape, dtype=bool))
    mapped = np.rint(idx @ to_ours[:3, :3].T + to_ours[:3, 3]).astype(int)
    assert np.array_equal(ours[tuple(mapped.T)], theirs[tuple(idx.T)])
    assert int(np.count_nonzero(ours)) == int(np.count_nonzero(theirs))


def _ci() -> bool:
    from conftest import in_ci

    return in_ci()


def test_seg_dcmqi(corpus: Path, tmp_path: Path) -> None:
    root = corpus / "seg_dcmqi"
    report = convert([root], tmp_path)
    maps = label_maps(report, tmp_path)
    by_source = {sidecar_of(m)["LabelMap"]["SourceObject"]["File"]: m for m in maps}
    assert {"segmentations/23x38x3/seg/label.seg", "segmentations/24x38x3/seg/label.seg",
            "segmentations/liver.dcm", "segmentations/partial_overlaps.dcm",
            "segmentations/sparse-labelmap-noppv.dcm"} <= set(by_source)
    for label_map in maps:
        image = referenced(label_map)
        check_seg(source_file(root, label_map), label_map, image)
    encoding = {k: sidecar_of(m)["LabelMap"]["Encoding"] for k, m in by_source.items()}
    assert encoding["segmentations/partial_overlaps.dcm"] == "one-hot"
    assert encoding["segmentations/sparse-labelmap-noppv.dcm"] == "labels"
    # 23 x 38 = 874 pixels per frame: frames 2 and 3 do not start on a byte boundary
    assert encoding["segmentations/23x38x3/seg/label.seg"] == "labels"
    assert_every_frame_accounted(report, tmp_path, root)


def test_seg_highdicom(corpus: Path, tmp_path: Path) -> None:
    root = corpus / "seg_highdicom"
    report = convert([root], tmp_path)
    maps = label_maps(report, tmp_path)
    by_source = {sidecar_of(m)["LabelMap"]["SourceObject"]["File"]: m for m in maps}
    assert set(by_source) == {"seg_image_ct_binary.dcm", "seg_image_ct_binary_fractional.dcm",
                              "seg_image_ct_binary_overlap.dcm", "seg_image_ct_true_fractional.dcm",
                              "seg_image_ct_binary_single_frame.dcm"}
    for label_map in maps:
        check_seg(source_file(root, label_map), label_map, referenced(label_map))
    meta = {k: sidecar_of(m)["LabelMap"] for k, m in by_source.items()}
    assert meta["seg_image_ct_true_fractional.dcm"]["Encoding"] == "fractional"
    assert meta["seg_image_ct_binary_overlap.dcm"]["Encoding"] == "one-hot"
    assert meta["seg_image_ct_binary.dcm"]["OwnGrid"] is True
    assert meta["seg_image_ct_binary_single_frame.dcm"]["ReferencedImage"] is not None
    skipped = {s["File"]: s["Reason"] for s in report["skipped"]}
    for name in ("seg_image_sm_control.dcm", "seg_image_cr_binary.dcm"):
        assert "without patient coordinates" in skipped[name]
    assert_every_frame_accounted(report, tmp_path, root)


@pytest.fixture(scope="module")
def lung(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lung")
    report = convert([corpus / "ct_lung1"], out)
    assert report["errors"] == []
    (label_map,) = label_maps(report, out)
    assert_same_grid(label_map, referenced(label_map) or label_map)
    assert_every_frame_accounted(report, out, corpus / "ct_lung1")
    return label_map


def test_lung1_rtstruct_dice_against_even_odd_reference(lung: Path, corpus: Path) -> None:
    rt = corpus / "ct_lung1/mask_rtstruct/1-1.dcm"
    reference = rtstruct_reference(rt, lung, CONTOUR_PLANE_TOLERANCE_MM)
    masks = map_masks(lung)
    assert sorted(reference) == [2, 6, 7, 8]
    for number, ref in reference.items():
        assert ref.sum() > 1000
        assert dice(masks[number], ref) >= MIN_DICE, number
    lm = sidecar_of(lung)["LabelMap"]
    assert lm["Encoding"] == "one-hot"  # GTV-1 lies inside a lung
    assert lm["SkippedContours"] == []


def _plastimatch() -> str:
    exe = shutil.which("plastimatch") or str(Path(sys.executable).parent / "plastimatch")
    if not Path(exe).is_file():
        skip_or_fail("plastimatch not found (pip install plastimatch)")
    return exe


def _mha_mask(path: Path, label_map: Path) -> np.ndarray:
    import SimpleITK as sitk

    img = sitk.ReadImage(str(path))
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    ours: Any = nib.load(str(label_map))
    np.testing.assert_allclose(lps, FLIP @ ours.get_sform(), atol=1e-3)  # the same grid
    return np.asarray(sitk.GetArrayFromImage(img).T != 0)


@pytest.mark.parametrize("xor", [True, False])
def test_lung1_against_plastimatch(lung: Path, corpus: Path, tmp_path: Path, xor: bool) -> None:
    exe = _plastimatch()
    cmd = [exe, "convert", "--input", str(corpus / "ct_lung1/mask_rtstruct/1-1.dcm"),
           "--referenced-ct", str(corpus / "ct_lung1/image"), "--output-prefix", str(tmp_path)]
    subprocess.run(cmd + (["--xor-contours"] if xor else []), check=True, capture_output=True,
                   timeout=300)
    masks = map_masks(lung)
    for s in sidecar_of(lung)["LabelMap"]["Segments"]:
        theirs = _mha_mask(tmp_path / f"{s['Label']}.mha", lung)
        ours = masks[s["ROINumber"]]
        if xor:
            assert dice(ours, theirs) >= MIN_DICE_PLASTIMATCH_XOR, s["Label"]
        else:  # holes filled: plastimatch's mask contains ours
            assert int((ours & ~theirs).sum()) <= 1 and theirs.sum() >= ours.sum(), s["Label"]


def test_lung1_against_rt_utils(lung: Path, corpus: Path) -> None:
    try:
        from rt_utils import RTStructBuilder
    except ImportError:
        skip_or_fail("rt-utils not installed (pip install rt-utils)")
    rt = RTStructBuilder.create_from(
        dicom_series_path=str(corpus / "ct_lung1/image"),
        rt_struct_path=str(corpus / "ct_lung1/mask_rtstruct/1-1.dcm"))
    masks = map_masks(lung)
    for s in sidecar_of(lung)["LabelMap"]["Segments"]:
        theirs = np.asarray(rt.get_roi_mask_by_name(s["Label"])).transpose(1, 0, 2)
        ours = masks[s["ROINumber"]]
        growth = theirs.sum() / ours.sum() - 1
        assert 0.01 < growth < 0.35, (s["Label"], growth)  # rt-utils grows every ROI
        assert (ours & ~theirs).sum() <= 1e-3 * ours.sum()  # and contains nearly all of ours

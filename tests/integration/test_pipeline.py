"""End-to-end behaviour of scan / read_volume / convert on synthetic series with known truth.

Every expectation comes from the synthetic writer's ground truth (``values``, ``affine_lps``,
``positions``) or from the independent checker in ``tests/exactness.py``; none comes from
dicomvol's own output.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dicomvol
from dicomvol import ConvertOptions
from dicomvol.options import PlanOptions
from dicomvol.testing import (
    SyntheticSeries,
    directions_for,
    oblique_directions,
    write_header_garbage,
    write_localizer,
    write_non_dicom,
    write_series,
    write_truncated,
)
from exactness import assert_accounted, check_exact

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
REPORT = "dicomvol_report.json"
SHAPE = (8, 6, 5)
ATOL = 1e-6


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


SPLIT = PlanOptions(irregular="split")


def _convert(inp: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Convert in this process and return the report as written to disk."""
    options.setdefault("jobs", 1)
    dicomvol.convert([inp], out, ConvertOptions(**options))
    report: dict[str, Any] = json.loads((out / REPORT).read_text())
    return report


def _sidecar_path(image: Path) -> Path:
    name = image.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")]
    return image.with_name(stem + ".json")


def _sidecar(image: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_sidecar_path(image).read_text())
    return data


def _outputs(out: Path, report: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """(image path, sidecar) of every output named in the report."""
    return [(out / name, _sidecar(out / name)) for name in report["outputs"]]


def _sops(sidecar: dict[str, Any]) -> list[str]:
    return [e["SOPInstanceUID"] for e in sidecar["SourceInstances"]]


def _only_plan(paths: list[Path]) -> Any:
    result = dicomvol.scan(paths)
    assert len(result.plans) == 1, [p.label for p in result.plans]
    return result.plans[0]


def _same_file_set(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Images and sidecars (not the run reports) with inode, mtime and content."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(out.iterdir()) if not p.name.startswith("dicomvol_report")}


# ------------------------------------------------------------------------------------------
# order of files and instance numbers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["ascending", "descending", "interleaved"])
def test_shuffled_files_any_instance_order_give_the_truth(tmp_path: Path, order: str) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, order=order, shuffle_seed=11, seed=3)
    plan = _only_plan([inp])
    assert plan.shape == SHAPE
    vol = dicomvol.read_volume(plan)
    assert np.array_equal(vol.values, s.values)
    np.testing.assert_allclose(vol.affine, s.affine_lps, atol=ATOL)
    assert [e["SOPInstanceUID"] for e in vol.source_instances] == list(s.sop_instance_uids)

    out = tmp_path / "out"
    report = _convert(inp, out)
    assert len(report["outputs"]) == 1
    img: Any = nib.load(out / report["outputs"][0])
    assert np.array_equal(img.get_fdata(), s.values)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ s.affine_lps, atol=ATOL)
    assert int(img.header["sform_code"]) == 1
    assert int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), LPS_TO_RAS @ s.affine_lps, atol=1e-4)
    assert _sops(_sidecar(out / report["outputs"][0])) == list(s.sop_instance_uids)
    assert_accounted(inp, out)


def test_read_series_matches_scan_and_read(tmp_path: Path) -> None:
    s = write_series(tmp_path, shape=SHAPE, order="descending", shuffle_seed=5)
    (vol,) = dicomvol.read_series([tmp_path])
    assert np.array_equal(vol.values, s.values)
    np.testing.assert_allclose(vol.affine, s.affine_lps, atol=ATOL)


# ------------------------------------------------------------------------------------------
# orientations
# ------------------------------------------------------------------------------------------

ORIENTATIONS: dict[str, tuple[Any, Any]] = {
    "axial": directions_for("axial"),
    "sagittal": directions_for("sagittal"),
    "coronal": directions_for("coronal"),
    "oblique20_xy": oblique_directions(20.0, (1.0, 1.0, 0.0)),
    "oblique45_inplane": oblique_directions(45.0, (0.0, 0.0, 1.0)),
    "oblique-30_x": oblique_directions(-30.0, (1.0, 0.0, 0.0)),
    "oblique75_mixed": oblique_directions(75.0, (0.3, -1.0, 0.5)),
    "oblique135_yz": oblique_directions(135.0, (0.0, 1.0, 1.0)),
    "oblique170_z_tilt": oblique_directions(170.0, (0.2, 0.1, 1.0)),
}


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_orientation_is_exact(tmp_path: Path, name: str) -> None:
    row, col = ORIENTATIONS[name]
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, row_dir=row, col_dir=col, slice_spacing=3.0,
                     pixel_spacing=(0.9, 0.6), order="descending", shuffle_seed=1)
    vol = dicomvol.read_volume(_only_plan([inp]))
    np.testing.assert_allclose(vol.affine, s.affine_lps, atol=ATOL)
    assert np.array_equal(vol.values, s.values)
    out = tmp_path / "out"
    report = _convert(inp, out)
    (name_out,) = report["outputs"]
    check_exact(out / name_out, [inp])
    img: Any = nib.load(out / name_out)
    np.testing.assert_allclose(img.get_sform(), LPS_TO_RAS @ s.affine_lps, atol=ATOL)


def test_positions_descending_along_normal_give_k_ascending(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    row, col = oblique_directions(25.0, (1.0, 0.0, 1.0))
    normal = np.cross(row, col)
    origin = np.array([5.0, -7.0, 12.0])
    z = SHAPE[2]
    positions = [origin - k * 2.0 * normal for k in range(z)]  # slice k steps AGAINST the normal
    s = write_series(inp, shape=SHAPE, row_dir=row, col_dir=col, positions=positions,
                     shuffle_seed=4)
    assert float(s.affine_lps[:3, 2] @ normal) < 0  # the files really step backwards
    vol = dicomvol.read_volume(_only_plan([inp]))
    assert float(vol.affine[:3, 2] @ np.cross(vol.affine[:3, 0], vol.affine[:3, 1])) > 0
    assert float(vol.affine[:3, 2] @ normal) > 0
    np.testing.assert_allclose(vol.affine[:3, 2], -s.affine_lps[:3, 2], atol=ATOL)
    np.testing.assert_allclose(vol.affine[:3, 3], s.positions[-1], atol=ATOL)
    np.testing.assert_allclose(vol.affine[:3, :2], s.affine_lps[:3, :2], atol=ATOL)
    assert np.array_equal(vol.values, s.values[:, :, ::-1])
    assert [e["SOPInstanceUID"] for e in vol.source_instances] == list(s.sop_instance_uids[::-1])
    out = tmp_path / "out"
    report = _convert(inp, out)
    check_exact(out / report["outputs"][0], [inp])


# ------------------------------------------------------------------------------------------
# rescale
# ------------------------------------------------------------------------------------------


def test_per_slice_rescale_gives_float32_values(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    rescale = [(0.5 + 0.25 * (k % 3), -1024.0 + 8.0 * k) for k in range(SHAPE[2])]
    s = write_series(inp, shape=SHAPE, rescale=rescale, order="descending", shuffle_seed=2)
    assert len(set(s.slopes)) > 1
    vol = dicomvol.read_volume(_only_plan([inp]))
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.values, s.values, rtol=2.0**-23, atol=0)
    out = tmp_path / "out"
    report = _convert(inp, out)
    img: Any = nib.load(out / report["outputs"][0])
    assert img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.get_fdata(), s.values, rtol=2.0**-23, atol=0)
    check_exact(out / report["outputs"][0], [inp])


@pytest.mark.parametrize(
    ("pixel_representation", "extra"),
    [
        pytest.param(1, None, id="signed-16bit"),
        pytest.param(0, {"BitsStored": 12, "HighBit": 11}, id="unsigned-12bit"),
    ],
)
def test_integer_intercept_gives_int16_hu(tmp_path: Path, pixel_representation: int,
                                          extra: dict[str, Any] | None) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, rescale=(1.0, -1024.0), shuffle_seed=2,
                     pixel_representation=pixel_representation, extra=extra)
    assert s.values.min() < 0  # real HU, not stored values
    vol = dicomvol.read_volume(_only_plan([inp]))
    assert vol.data.dtype == np.int16
    assert (vol.scl_slope, vol.scl_inter) == (1.0, 0.0)
    assert np.array_equal(vol.data, s.values)
    out = tmp_path / "out"
    report = _convert(inp, out)
    img: Any = nib.load(out / report["outputs"][0])
    assert img.get_data_dtype() == np.int16
    raw = np.asarray(img.dataobj)
    assert raw.dtype == np.int16
    assert np.array_equal(raw, s.values)


def test_common_non_integer_slope_keeps_raw_ints_and_scaling(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, rescale=(2.5, -100.0), shuffle_seed=2)
    vol = dicomvol.read_volume(_only_plan([inp]))
    assert np.issubdtype(vol.data.dtype, np.integer)
    assert np.array_equal(vol.data, s.stored)
    assert np.array_equal(vol.values, s.values)
    out = tmp_path / "out"
    report = _convert(inp, out)
    img: Any = nib.load(out / report["outputs"][0])
    assert np.issubdtype(img.get_data_dtype(), np.integer)
    # nibabel moves scl_slope / scl_inter from the header into the array proxy on load
    assert float(img.dataobj.slope) == 2.5
    assert float(img.dataobj.inter) == -100.0
    with gzip.open(out / report["outputs"][0]) as fp:
        raw_header = nib.Nifti1Header.from_fileobj(fp)
    assert float(raw_header["scl_slope"]) == 2.5
    assert float(raw_header["scl_inter"]) == -100.0
    assert np.array_equal(np.asarray(img.dataobj.get_unscaled()), s.stored)
    np.testing.assert_allclose(img.get_fdata(), s.values, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------------
# incomplete, duplicated and mixed input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param((0, 1, 2, 4, 5, 6), id="gap-in-the-middle"),
        pytest.param((0, 1, 2, 3, 5), id="gap-isolates-last-slice"),
        pytest.param((0, 2, 3, 4, 5), id="gap-after-first-slice"),
    ],
)
def test_missing_slice_split_gives_exact_pieces(tmp_path: Path, steps: tuple[int, ...]) -> None:
    inp = tmp_path / "in"
    s = _gapped_series(inp, steps)
    out = tmp_path / "out"
    report = _convert(inp, out, plan=SPLIT)
    assert report["outputs"], "nothing written"
    outputs = _outputs(out, report)
    for image, sidecar in outputs:
        assert sidecar["Warnings"], f"{image.name}: no warning about the gap"
        assert sidecar["Resampled"] is False
        check_exact(image, [inp])
        assert 2 <= len(sidecar["SourceInstances"]) < len(steps)
    assert_accounted(inp, out)
    written = [sop for _, sc in outputs for sop in _sops(sc)]
    skipped = [e["SOPInstanceUID"] for e in report["skipped"]]
    assert sorted(written + skipped) == sorted(s.sop_instance_uids)
    for e in report["skipped"]:
        assert "isolated" in e["Reason"] or "missing" in e["Reason"], e["Reason"]


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param((0, 1, 2, 4, 5, 6), id="gap-in-the-middle"),
        pytest.param((0, 1, 2, 3, 5), id="gap-before-last-slice"),
        pytest.param((0, 1, 4, 5), id="two-missing"),
    ],
)
def test_missing_slice_default_resamples_without_moving_slices(
    tmp_path: Path, steps: tuple[int, ...]
) -> None:
    """The default policy resamples onto the regular grid; every acquired slice must land on a
    grid plane unchanged, and the volume is marked Resampled."""
    inp = tmp_path / "in"
    s = _gapped_series(inp, steps)
    out = tmp_path / "out"
    report = _convert(inp, out)
    ((image, sidecar),) = _outputs(out, report)
    assert sidecar["Resampled"] is True
    assert sidecar["ResampleReason"]
    assert sidecar["Warnings"]
    assert set(_sops(sidecar)) == set(s.sop_instance_uids)
    img: Any = nib.load(image)
    assert img.shape[2] == steps[-1] + 1
    data = img.get_fdata()
    inv = np.linalg.inv(LPS_TO_RAS @ img.affine)
    for k in range(len(steps)):
        index = inv @ np.r_[s.positions[k], 1.0]
        assert np.allclose(index[:3], (0, 0, steps[k]), atol=0.01), (k, index)
        np.testing.assert_allclose(data[:, :, steps[k]], s.values[:, :, k], rtol=1e-6, atol=1e-3)
    assert_accounted(inp, out)


def _gapped_series(folder: Path, steps: tuple[int, ...]) -> SyntheticSeries:
    """An oblique series with slices only at ``steps`` multiples of 2.5 mm along the normal."""
    row, col = oblique_directions(15.0, (0.0, 1.0, 0.0))
    normal = np.cross(row, col)
    origin = np.array([-3.0, 4.0, 10.0])
    positions = [origin + n * 2.5 * normal for n in steps]
    return write_series(folder, shape=(8, 6, len(steps)), row_dir=row, col_dir=col,
                        positions=positions, shuffle_seed=9)


def test_duplicate_file_is_used_once(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, shuffle_seed=3)
    shutil.copyfile(s.paths[2], inp / "zz_copy")
    plan = _only_plan([inp])
    assert plan.shape == SHAPE
    out = tmp_path / "out"
    report = _convert(inp, out)
    ((image, sidecar),) = _outputs(out, report)
    assert _sops(sidecar) == list(s.sop_instance_uids)
    assert "zz_copy" not in {e["File"] for e in sidecar["SourceInstances"]}
    dup = [e for e in report["skipped"] if e["File"] == "zz_copy"]
    assert len(dup) == 1
    assert dup[0]["SOPInstanceUID"] == s.sop_instance_uids[2]
    assert "duplicate" in dup[0]["Reason"].lower()
    check_exact(image, [inp])
    assert_accounted(inp, out)


def test_two_series_in_one_folder(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    a = write_series(inp, shape=SHAPE, series_number=3, series_description="first", seed=1)
    b = write_series(inp, shape=(6, 7, 4), series_number=4, series_description="second",
                     modality="MR", rescale=(1.0, 0.0), row_dir=(0, 1, 0), col_dir=(0, 0, -1),
                     study_instance_uid=a.study_instance_uid, seed=2)
    out = tmp_path / "out"
    report = _convert(inp, out)
    outputs = _outputs(out, report)
    assert len(outputs) == 2
    by_uid = {sc["SeriesInstanceUID"]: (image, sc) for image, sc in outputs}
    assert set(by_uid) == {a.series_instance_uid, b.series_instance_uid}
    for truth, modality, number, desc in ((a, "CT", 3, "first"), (b, "MR", 4, "second")):
        image, sc = by_uid[truth.series_instance_uid]
        assert sc["StudyInstanceUID"] == truth.study_instance_uid
        assert (sc["Modality"], sc["SeriesNumber"], sc["SeriesDescription"]) == (
            modality, number, desc)
        assert _sops(sc) == list(truth.sop_instance_uids)
        img: Any = nib.load(image)
        assert np.array_equal(img.get_fdata(), truth.values)
        np.testing.assert_allclose(img.affine, LPS_TO_RAS @ truth.affine_lps, atol=ATOL)
    assert_accounted(inp, out)


def test_localizer_in_the_series_is_skipped(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, shuffle_seed=6)
    loc = write_localizer(inp, series_instance_uid=s.series_instance_uid,
                          study_instance_uid=s.study_instance_uid,
                          frame_of_reference_uid=s.frame_of_reference_uid, shape=(10, 8))
    loc_uid = str(pydicom.dcmread(loc, stop_before_pixels=True).SOPInstanceUID)
    out = tmp_path / "out"
    report = _convert(inp, out)
    ((image, sidecar),) = _outputs(out, report)
    assert loc_uid not in _sops(sidecar)
    assert _sops(sidecar) == list(s.sop_instance_uids)
    entry = [e for e in report["skipped"] if e["SOPInstanceUID"] == loc_uid]
    assert len(entry) == 1
    assert entry[0]["File"] == loc.name
    assert "localizer" in entry[0]["Reason"].lower()
    img: Any = nib.load(image)
    assert np.array_equal(img.get_fdata(), s.values)
    assert_accounted(inp, out)


@pytest.mark.parametrize("with_plane", [True, False])
def test_secondary_capture_placed_only_with_its_image_plane(tmp_path: Path,
                                                           with_plane: bool) -> None:
    """PS3.3 A.8.1.3: an SC with ImagePositionPatient/ImageOrientationPatient/PixelSpacing is
    meant for 3D computations and is converted (as dcm2niix does); without them it is a
    screenshot and is skipped with a reason."""
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, shuffle_seed=9, image_type=("DERIVED", "SECONDARY"))
    for path in s.paths:
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        if not with_plane:
            del ds.ImagePositionPatient
        ds.save_as(path)
    out = tmp_path / "out"
    report = _convert(inp, out)
    if with_plane:
        ((image, sidecar),) = _outputs(out, report)
        assert _sops(sidecar) == list(s.sop_instance_uids)
        img: Any = nib.load(image)
        assert np.array_equal(img.get_fdata(), s.values)
        np.testing.assert_allclose(img.affine, LPS_TO_RAS @ s.affine_lps, atol=ATOL)
    else:
        assert not _outputs(out, report)
        reasons = {e["Reason"] for e in report["skipped"]}
        assert reasons == {"secondary capture (a screenshot, not an acquired slice)"}
        assert len(report["skipped"]) == SHAPE[2]
    assert_accounted(inp, out)


def test_broken_and_foreign_files_are_reported_and_the_rest_converts(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, shuffle_seed=8)
    write_non_dicom(inp, "NOTDICOM")
    write_truncated(s.paths[1], inp / "TRUNC")
    write_header_garbage(inp / "GARBAGE")
    (inp / "EMPTY").write_bytes(b"")
    import zipfile

    with zipfile.ZipFile(inp / "study.zip", "w") as zf:
        zf.write(s.paths[0], "IM0")
    out = tmp_path / "out"
    report = _convert(inp, out)
    ignored = {i["File"]: i["Reason"] for i in report["ignored"]}
    assert set(ignored) == {"NOTDICOM", "EMPTY", "study.zip"}
    assert ignored["EMPTY"] == "empty file (0 bytes): not a DICOM file"
    assert ignored["study.zip"].startswith("a ZIP archive, not a DICOM file: extract it")
    errors = {e["File"]: e["Error"] for e in report["errors"]}
    assert set(errors) == {"TRUNC", "GARBAGE"}
    assert all(len(msg) > 5 for msg in errors.values())
    ((image, sidecar),) = _outputs(out, report)
    assert _sops(sidecar) == list(s.sop_instance_uids)
    check_exact(image, [inp])
    assert_accounted(inp, out)

    from dicomvol.cli.main import main

    assert main(["convert", str(inp), "-o", str(tmp_path / "cli"), "-j", "1", "-q"]) == 1
    assert (tmp_path / "cli" / report["outputs"][0]).is_file()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_undecodable_slice_is_reported_and_the_rest_planned_again(tmp_path: Path) -> None:
    """A compressed slice that only fails when decoded: its file is an error, the rest of the
    series is re-planned without it (here: two exact pieces around the hole)."""
    inp = tmp_path / "in"
    s = write_series(inp, shape=(8, 6, 7), transfer_syntax=pydicom.uid.RLELossless,
                     shuffle_seed=3)
    write_truncated(s.paths[3], s.paths[3])  # encapsulated: the header check cannot see it
    out = tmp_path / "out"
    report = _convert(inp, out, plan=SPLIT)
    assert [e["File"] for e in report["errors"]] == [s.paths[3].name]
    outputs = _outputs(out, report)
    assert len(outputs) == 2
    written = []
    for image, sidecar in outputs:
        check_exact(image, [inp])
        written += _sops(sidecar)
    assert sorted(written) == sorted(u for k, u in enumerate(s.sop_instance_uids) if k != 3)
    assert_accounted(inp, out)

    out = tmp_path / "default"  # the default policy resamples the rest instead
    report = _convert(inp, out)
    assert [e["File"] for e in report["errors"]] == [s.paths[3].name]
    assert report["outputs"]
    assert_accounted(inp, out)


def test_echo_split_gives_two_volumes(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    z = 4
    normal = np.array([0.0, 0.0, 1.0])
    origin = np.array([-10.0, -20.0, 30.0])
    positions = [origin + (k // 2) * 3.0 * normal for k in range(2 * z)]
    s = write_series(inp, shape=(8, 6, 2 * z), positions=positions, modality="MR",
                     rescale=(1.0, 0.0), shuffle_seed=12,
                     per_slice={"EchoNumbers": [1 + k % 2 for k in range(2 * z)],
                                "EchoTime": [("10.0", "40.0")[k % 2] for k in range(2 * z)]})
    out = tmp_path / "out"
    report = _convert(inp, out)
    outputs = _outputs(out, report)
    assert len(outputs) == 2
    expected_affine = np.eye(4)
    expected_affine[:3, :2] = s.affine_lps[:3, :2]
    expected_affine[:3, 2] = 3.0 * normal
    expected_affine[:3, 3] = origin
    seen = set()
    for image, sidecar in outputs:
        sops = _sops(sidecar)
        echo = 0 if sops[0] == s.sop_instance_uids[0] else 1
        seen.add(echo)
        assert sops == list(s.sop_instance_uids[echo::2])
        img: Any = nib.load(image)
        assert img.shape == (8, 6, z)
        assert np.array_equal(img.get_fdata(), s.values[:, :, echo::2])
        np.testing.assert_allclose(img.affine, LPS_TO_RAS @ expected_affine, atol=ATOL)
        check_exact(image, [inp])
    assert seen == {0, 1}
    assert outputs[0][0].name != outputs[1][0].name
    assert_accounted(inp, out)


def test_temporal_positions_give_one_4d_volume(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    z, nt = 4, 3
    row, col = directions_for("coronal")
    normal = np.cross(row, col)
    origin = np.array([-10.0, 5.0, 30.0])
    positions = [origin + (n % z) * 2.0 * normal for n in range(z * nt)]
    s = write_series(inp, shape=(8, 6, z * nt), positions=positions, row_dir=row, col_dir=col,
                     modality="MR", rescale=(1.0, 0.0), shuffle_seed=13,
                     per_slice={"TemporalPositionIdentifier": [1 + n // z
                                                               for n in range(z * nt)]})
    plan = _only_plan([inp])
    assert plan.shape == (8, 6, z, nt)
    vol = dicomvol.read_volume(plan)
    expected = s.values.reshape(8, 6, nt, z).transpose(0, 1, 3, 2)  # file n = (k=n%z, t=n//z)
    assert np.array_equal(vol.values, expected)
    out = tmp_path / "out"
    report = _convert(inp, out)
    ((image, sidecar),) = _outputs(out, report)
    # k fastest, then t: entry n is slice n % z of volume n // z
    assert _sops(sidecar) == list(s.sop_instance_uids)
    img: Any = nib.load(image)
    assert img.shape == (8, 6, z, nt)
    assert np.array_equal(img.get_fdata(), expected)
    expected_affine = np.eye(4)
    expected_affine[:3, :2] = s.affine_lps[:3, :2]
    expected_affine[:3, 2] = 2.0 * normal
    expected_affine[:3, 3] = origin
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ expected_affine, atol=ATOL)
    check_exact(image, [inp])
    assert_accounted(inp, out)


def test_repeated_positions_without_attributes_order_volumes_by_instance_number(
    tmp_path: Path,
) -> None:
    """Two passes over the same positions, told apart only by InstanceNumber (GE style)."""
    inp = tmp_path / "in"
    z, nt = 4, 2
    origin = np.array([0.0, 0.0, -5.0])
    positions = [origin + (n % z) * 2.0 * np.array([0.0, 0.0, 1.0]) for n in range(z * nt)]
    numbers = [z * nt - n for n in range(z * nt)]  # the second pass has the LOWER numbers
    s = write_series(inp, shape=(8, 6, z * nt), positions=positions, modality="MR",
                     rescale=(1.0, 0.0), instance_numbers=numbers, shuffle_seed=17)
    plan = _only_plan([inp])
    assert plan.shape == (8, 6, z, nt)
    vol = dicomvol.read_volume(plan)
    by_file = s.values.reshape(8, 6, nt, z).transpose(0, 1, 3, 2)  # [.., k, pass]
    assert np.array_equal(vol.values, by_file[..., ::-1])  # t = 0 is the lower numbers
    expected = [s.sop_instance_uids[n] for n in range(z, 2 * z)] + [
        s.sop_instance_uids[n] for n in range(z)]
    assert [e["SOPInstanceUID"] for e in vol.source_instances] == expected
    np.testing.assert_allclose(vol.affine[:3, 3], origin, atol=ATOL)


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------

_COUNTER = itertools.count()
_ROTATION_COUNTER = itertools.count()
_SHUFFLE_TRUTH: dict[str, SyntheticSeries] = {}
_SHUFFLE_REFERENCE: dict[str, tuple[np.ndarray, np.ndarray]] = {}

_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,11}", fullmatch=True)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_shuffle_gives_the_same_volume(tmp_path: Path, data: st.DataObject) -> None:
    src = tmp_path / "src"
    if not src.exists():
        _SHUFFLE_TRUTH[str(tmp_path)] = write_series(
            src, shape=(6, 5, 6), order="interleaved", shuffle_seed=21,
            row_dir=oblique_directions(33.0, (1.0, -1.0, 0.5))[0],
            col_dir=oblique_directions(33.0, (1.0, -1.0, 0.5))[1],
            rescale=[(1.0 + 0.5 * (k % 2), -50.0 * k) for k in range(6)])
    s = _SHUFFLE_TRUTH[str(tmp_path)]
    z = len(s.paths)
    perm = data.draw(st.permutations(range(z)), label="order")
    names = data.draw(st.lists(_NAME, min_size=z, max_size=z, unique_by=str.lower),
                      label="names")
    nested = data.draw(st.lists(st.booleans(), min_size=z, max_size=z), label="nested")
    link = data.draw(st.booleans(), label="symlink")
    folder = tmp_path / f"ex{next(_COUNTER)}"
    for n, k in enumerate(perm):
        dest = folder / ("sub" if nested[n] else "") / names[n]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if link:
            os.symlink(s.paths[k], dest)
        else:
            shutil.copyfile(s.paths[k], dest)
    vol = dicomvol.read_volume(_only_plan([folder]))
    reference = _SHUFFLE_REFERENCE.setdefault(str(tmp_path), (vol.data.copy(), vol.affine.copy()))
    assert vol.data.dtype == reference[0].dtype
    assert np.array_equal(vol.data, reference[0])
    assert np.array_equal(vol.affine, reference[1])
    np.testing.assert_allclose(vol.values, s.values, rtol=2.0**-23, atol=0)
    np.testing.assert_allclose(vol.affine, s.affine_lps, atol=ATOL)
    assert [e["SOPInstanceUID"] for e in vol.source_instances] == list(s.sop_instance_uids)


_AXIS = st.tuples(*[st.floats(-1.0, 1.0, allow_nan=False)] * 3).filter(
    lambda a: float(np.linalg.norm(a)) > 0.1)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(axis=_AXIS, angle=st.floats(-180.0, 180.0, allow_nan=False),
       spacing=st.sampled_from([0.5, 1.25, 3.0]))
def test_any_rigid_rotation_stays_exact(tmp_path: Path, axis: tuple[float, float, float],
                                        angle: float, spacing: float) -> None:
    n = next(_ROTATION_COUNTER)
    inp = tmp_path / f"rot{n}"
    row, col = oblique_directions(angle, axis)
    s = write_series(inp, shape=(6, 5, 4), row_dir=row, col_dir=col, slice_spacing=spacing,
                     order="descending", shuffle_seed=n)
    vol = dicomvol.read_volume(_only_plan([inp]))
    np.testing.assert_allclose(vol.affine, s.affine_lps, atol=ATOL)
    assert np.array_equal(vol.values, s.values)
    if n % 5 == 0:  # the independent check on a written file, for some of the examples
        out = tmp_path / f"out{n}"
        report = _convert(inp, out)
        check_exact(out / report["outputs"][0], [inp])


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def test_atomic_writes_and_overwrite_policy(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = write_series(inp, shape=SHAPE, shuffle_seed=14)
    out = tmp_path / "out"
    first = _convert(inp, out)
    assert len(first["outputs"]) == 1 and not first["skipped"]
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    before = _same_file_set(out)
    assert len(before) == 2  # image + sidecar

    second = _convert(inp, out)
    assert second["outputs"] == []
    assert _same_file_set(out) == before
    assert {e["SOPInstanceUID"] for e in second["skipped"]} == set(s.sop_instance_uids)
    assert all("output exists" in e["Reason"] for e in second["skipped"])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

    image = out / first["outputs"][0]
    image.write_bytes(b"not a nifti")  # a stale file that overwrite must replace
    third = _convert(inp, out, overwrite=True)
    assert third["outputs"] == first["outputs"]
    assert not third["skipped"]
    img: Any = nib.load(image)
    assert np.array_equal(img.get_fdata(), s.values)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    check_exact(image, [inp])


def test_parallel_jobs_write_the_same_files(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    a = write_series(inp, shape=SHAPE, series_number=1, seed=1)
    b = write_series(inp, shape=SHAPE, series_number=2, seed=2)
    r1 = _convert(inp, tmp_path / "o1", jobs=1)
    r2 = _convert(inp, tmp_path / "o2", jobs=2)
    assert sorted(r1["outputs"]) == sorted(r2["outputs"]) and len(r1["outputs"]) == 2
    for name in r1["outputs"]:
        i1: Any = nib.load(tmp_path / "o1" / name)
        i2: Any = nib.load(tmp_path / "o2" / name)
        assert np.array_equal(i1.get_fdata(), i2.get_fdata())
        assert np.array_equal(i1.affine, i2.affine)
    truths = {a.series_instance_uid: a, b.series_instance_uid: b}
    for image, sc in _outputs(tmp_path / "o2", r2):
        img: Any = nib.load(image)
        assert np.array_equal(img.get_fdata(), truths[sc["SeriesInstanceUID"]].values)


@pytest.mark.parametrize("rescale", [(2.5, -100.0), (1.0, -1024.0), "per-slice"])
def test_to_nifti_matches_volume(tmp_path: Path, rescale: Any) -> None:
    if rescale == "per-slice":
        rescale = [(0.5 + 0.5 * k, float(k)) for k in range(SHAPE[2])]
    row, col = oblique_directions(40.0, (0.0, 1.0, 1.0))
    write_series(tmp_path, shape=SHAPE, rescale=rescale, row_dir=row, col_dir=col)
    vol = dicomvol.read_volume(_only_plan([tmp_path]))
    img = dicomvol.to_nifti(vol)
    assert isinstance(img, nib.Nifti1Image)
    assert np.array_equal(img.get_fdata(), vol.values)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ vol.affine, atol=ATOL)
    assert int(img.header["sform_code"]) == 1
    assert int(img.header["qform_code"]) == 1


def _copy_with_new_uid(src: Path, dest: Path, change_pixels: bool = False) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if change_pixels:
        pixels = ds.pixel_array.copy()
        pixels[0, 0] += 1
        ds.PixelData = pixels.tobytes()
    ds.save_as(dest, enforce_file_format=True)


@pytest.mark.parametrize("change_pixels", [False, True])
def test_identical_copies_with_new_uids_are_used_once(tmp_path: Path,
                                                      change_pixels: bool) -> None:
    """The same image stored again under another SOPInstanceUID (e.g. re-encoded): used
    once and reported when pixels are identical; different pixels at one position with no
    attribute telling them apart stay skipped with the reason."""
    series = write_series(tmp_path / "in", shape=(8, 6, 4))
    for n, path in enumerate(series.paths):
        _copy_with_new_uid(path, tmp_path / "in" / f"copy{n}", change_pixels and n == 2)
    report = dicomvol.convert([tmp_path / "in"], tmp_path / "out")
    reasons = [s.reason for s in report.skipped]
    if change_pixels:
        assert not report.outputs and len(reasons) == 8
        assert all("no attribute" in r for r in reasons)
    else:
        (output,) = report.outputs
        assert output.shape == (8, 6, 4)
        assert len(reasons) == 4 and all("identical duplicate" in r for r in reasons)
        check_exact(tmp_path / "out" / output.path, [tmp_path / "in"])


def test_gzip_compressed_dicom_files_convert_like_plain_ones(tmp_path: Path) -> None:
    """IDC and PACS exports sometimes hold NAME.dcm.gz: read transparently, same volume."""
    series = write_series(tmp_path / "plain", shape=(10, 8, 5), rescale=(1.0, -1024.0))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for n, path in enumerate(series.paths):
        data = path.read_bytes()
        if n % 2 == 0:
            (mixed / f"{path.name}.dcm.gz").write_bytes(gzip.compress(data))
        else:
            (mixed / path.name).write_bytes(data)
    (mixed / "broken.dcm.gz").write_bytes(gzip.compress(b"not dicom at all")[:12])
    plain = dicomvol.read_series([tmp_path / "plain"])
    report = dicomvol.convert([mixed], tmp_path / "out")
    (volume,) = dicomvol.read_series([mixed])
    np.testing.assert_array_equal(volume.values, plain[0].values)
    np.testing.assert_allclose(volume.affine, series.affine_lps, atol=1e-6)
    names = [s["File"] for s in volume.source_instances]
    assert sum(n.endswith(".dcm.gz") for n in names) == 3 and len(names) == 5
    assert len(report.outputs) == 1
    assert [i.rel for i in report.ignored] == ["broken.dcm.gz"]  # named, not a traceback

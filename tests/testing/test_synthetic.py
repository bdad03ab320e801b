"""Tests of the synthetic DICOM writers: every file is read back with pydicom."""

from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.uid as puid
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.errors import InvalidDicomError

from dicomvol.testing import (
    SyntheticSeries,
    directions_for,
    oblique_directions,
    rotation_matrix,
    write_demo_study,
    write_header_garbage,
    write_localizer,
    write_non_dicom,
    write_series,
    write_truncated,
)

REQUIRED = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "StudyDate",
    "SeriesNumber",
    "SeriesDescription",
    "InstanceNumber",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "Manufacturer",
    "PixelData",
)
DS_KEYWORDS = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "RescaleSlope",
    "RescaleIntercept",
    "SliceLocation",
)
SOP_CLASS = {
    "CT": puid.CTImageStorage,
    "MR": puid.MRImageStorage,
    "PT": puid.PositronEmissionTomographyImageStorage,
}


def _ds_strings(ds: pydicom.Dataset, keyword: str) -> list[str]:
    """The DS strings of an element as stored in the file."""
    value = ds[keyword].value
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [getattr(v, "original_string", None) or str(v) for v in values]


def check_series(series: SyntheticSeries, *, regular: bool = True) -> list[pydicom.Dataset]:
    """Read every file of ``series`` back and check it against the ground truth.

    ``regular``: the slices are evenly spaced, so the affine reproduces every position (for
    irregular positions only the first and last slice lie on the affine's k axis).
    """
    x, y, z = series.shape
    assert series.values.shape == series.stored.shape == (x, y, z)
    assert series.values.dtype == np.float64
    assert np.issubdtype(series.stored.dtype, np.integer)
    assert series.positions.shape == (z, 3)
    assert series.affine_lps.shape == (4, 4)
    assert len(series.paths) == len(series.sop_instance_uids) == len(series.instance_numbers) == z
    assert len(set(series.sop_instance_uids)) == z
    datasets: list[pydicom.Dataset] = []
    for k, path in enumerate(series.paths):
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        datasets.append(ds)
        meta = ds.file_meta
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == SOP_CLASS[series.modality]
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == series.sop_instance_uids[k]
        assert meta.TransferSyntaxUID == series.transfer_syntax
        assert meta.ImplementationClassUID
        for keyword in REQUIRED:
            assert keyword in ds, keyword
        for keyword in DS_KEYWORDS:
            for s in _ds_strings(ds, keyword):
                assert len(s) <= 16, (keyword, s)
        assert ds.Modality == series.modality
        assert ds.SeriesInstanceUID == series.series_instance_uid
        assert ds.StudyInstanceUID == series.study_instance_uid
        assert ds.FrameOfReferenceUID == series.frame_of_reference_uid
        assert ds.Manufacturer == "dicomvol-synthetic"
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.SamplesPerPixel == 1
        assert ds.BitsAllocated == 16
        assert ds.HighBit == ds.BitsStored - 1
        assert ds.InstanceNumber == series.instance_numbers[k]
        assert (ds.Rows, ds.Columns) == (y, x)
        # Geometry exactly as written.
        assert [float(v) for v in ds.ImagePositionPatient] == list(series.positions[k])
        iop = [float(v) for v in ds.ImageOrientationPatient]
        assert iop[:3] == list(series.row_dir)
        assert iop[3:] == list(series.col_dir)
        assert tuple(float(v) for v in ds.PixelSpacing) == series.pixel_spacing
        # Pixels: the DICOM array of slice k is array[:, :, k].T.
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        assert slope == series.slopes[k]
        assert intercept == series.intercepts[k]
        arr = ds.pixel_array
        assert arr.shape == (y, x)
        assert np.array_equal(arr.T, series.stored[:, :, k])
        assert np.array_equal(arr.T * slope + intercept, series.values[:, :, k])
        # The affine maps (0, 0, k) to the slice position and steps along IOP / PixelSpacing.
        if regular or k in (0, z - 1):
            origin_k = series.affine_lps @ [0, 0, k, 1]
            assert np.allclose(origin_k, [*series.positions[k], 1], atol=1e-6)
            row = np.array(iop[:3]) * float(ds.PixelSpacing[1])
            col = np.array(iop[3:]) * float(ds.PixelSpacing[0])
            for i, j in [(1, 0), (0, 1), (x - 1, y - 1), (x // 2, y // 3)]:
                expected = series.positions[k] + i * row + j * col
                assert np.allclose((series.affine_lps @ [i, j, k, 1])[:3], expected, atol=1e-6)
    assert np.array_equal(series.affine_lps[3], [0, 0, 0, 1])
    assert np.array_equal(series.affine_lps[:3, 3], series.positions[0])
    return datasets


# --------------------------------------------------------------------------------------------
# Direction helpers
# --------------------------------------------------------------------------------------------


def test_rotation_matrix_is_a_proper_rotation() -> None:
    rot = rotation_matrix((1, 2, 3), 37.0)
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert math.isclose(float(np.linalg.det(rot)), 1.0, abs_tol=1e-12)
    axis = np.array([1, 2, 3]) / np.linalg.norm([1, 2, 3])
    assert np.allclose(rot @ axis, axis, atol=1e-12)
    assert np.allclose(rotation_matrix((0, 0, 1), 90.0) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    assert np.allclose(rotation_matrix((0, 0, 5), 0.0), np.eye(3))
    with pytest.raises(ValueError):
        rotation_matrix((0, 0, 0), 10.0)


def test_oblique_directions() -> None:
    row, col = oblique_directions(20.0)
    rot = rotation_matrix((1, 1, 0), 20.0)
    assert np.allclose(row, rot[:, 0]) and np.allclose(col, rot[:, 1])
    assert math.isclose(float(np.dot(row, col)), 0.0, abs_tol=1e-12)
    assert math.isclose(float(np.linalg.norm(row)), 1.0) and math.isclose(
        float(np.linalg.norm(col)), 1.0
    )
    assert oblique_directions(0.0) == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def test_directions_for_planes() -> None:
    assert directions_for("axial") == ((1, 0, 0), (0, 1, 0))
    assert directions_for("coronal") == ((1, 0, 0), (0, 0, -1))
    assert directions_for("Sagittal") == ((0, 1, 0), (0, 0, -1))
    with pytest.raises(ValueError):
        directions_for("oblique")


# --------------------------------------------------------------------------------------------
# write_series
# --------------------------------------------------------------------------------------------


def test_default_series_round_trip(tmp_path: Path) -> None:
    series = write_series(tmp_path)
    assert series.shape == (16, 12, 8)
    datasets = check_series(series)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in series.paths)
    ds = datasets[0]
    assert ds.RescaleType == "HU"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert series.pixel_spacing == (0.8, 0.7)
    # Regular axial stepping: exact numbers.
    expected_affine = np.array(
        [[0.7, 0, 0, -10.0], [0, 0.8, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]]
    )
    assert np.allclose(series.affine_lps, expected_affine, atol=1e-12)
    assert np.allclose(series.positions[:, 2], 30.0 + 2.5 * np.arange(8))
    assert series.stored.dtype == np.int16
    # CT values make sense in HU and every slice differs.
    assert -1000 <= series.values.min() < 0 < 1000 < series.values.max() <= 2000
    for k in range(1, 8):
        assert not np.array_equal(series.values[:, :, k], series.values[:, :, k - 1])
    assert series.values[:, :, 1:].mean() > series.values[:, :, 0].mean()


def test_content_detects_transposition_and_flips(tmp_path: Path) -> None:
    series = write_series(tmp_path, shape=(12, 12, 6))
    vol = series.values
    assert not np.array_equal(vol, vol.transpose(1, 0, 2))
    for axis in range(3):
        assert not np.array_equal(vol, np.flip(vol, axis=axis))
    # Slices are pairwise distinct, so any permutation of k is detectable.
    flat = vol.reshape(-1, vol.shape[2]).T
    assert len({row.tobytes() for row in flat}) == vol.shape[2]


def test_content_is_deterministic_in_seed(tmp_path: Path) -> None:
    a = write_series(tmp_path / "a", seed=3)
    b = write_series(tmp_path / "b", seed=3)
    c = write_series(tmp_path / "c", seed=4)
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    assert a.series_instance_uid != b.series_instance_uid
    assert not set(a.sop_instance_uids) & set(b.sop_instance_uids)


def test_returned_arrays_are_read_only(tmp_path: Path) -> None:
    series = write_series(tmp_path, shape=(4, 3, 2))
    for arr in (series.values, series.stored, series.affine_lps, series.positions):
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = 1


@pytest.mark.parametrize(
    ("modality", "rescale", "pixel_representation"),
    [
        ("CT", (1.0, -1024.0), 1),
        ("CT", (1.0, -1024.0), 0),
        ("CT", (0.5, -1000.0), 1),
        ("MR", (1.0, 0.0), 0),
        ("MR", (2.0, 0.0), 1),
        ("PT", (0.25, 0.0), 0),
    ],
)
def test_modalities_and_representations(
    tmp_path: Path, modality: str, rescale: tuple[float, float], pixel_representation: int
) -> None:
    series = write_series(
        tmp_path,
        modality=modality,
        rescale=rescale,
        pixel_representation=pixel_representation,
        shape=(10, 9, 5),
    )
    datasets = check_series(series)
    assert series.stored.dtype == (np.int16 if pixel_representation else np.uint16)
    ds = datasets[0]
    assert ds.PixelRepresentation == pixel_representation
    if modality == "CT":
        assert ds.RescaleType == "HU"
    if modality == "MR":
        assert {"EchoTime", "RepetitionTime", "MagneticFieldStrength"} <= set(ds.dir())
    if modality == "PT":
        assert ds.Units == "BQML"
    assert series.values.min() >= (-1000 if modality == "CT" else 0)
    assert np.ptp(series.values) > 100


@pytest.mark.parametrize(
    ("transfer_syntax", "shape", "kwargs"),
    [
        (puid.ExplicitVRLittleEndian, (16, 12, 3), None),
        (puid.ImplicitVRLittleEndian, (16, 12, 3), None),
        (puid.DeflatedExplicitVRLittleEndian, (16, 12, 3), None),
        (puid.ExplicitVRBigEndian, (16, 12, 3), None),
        (puid.RLELossless, (16, 12, 3), None),
        (puid.JPEGLSLossless, (16, 12, 3), None),
        (puid.JPEG2000Lossless, (32, 40, 2), None),
        (puid.JPEG2000, (32, 32, 2), {"j2k_cr": [20]}),
    ],
)
@pytest.mark.parametrize("pixel_representation", [0, 1])
def test_transfer_syntaxes(
    tmp_path: Path,
    transfer_syntax: str,
    shape: tuple[int, int, int],
    kwargs: dict[str, Any] | None,
    pixel_representation: int,
) -> None:
    try:
        series = write_series(
            tmp_path,
            shape=shape,
            transfer_syntax=transfer_syntax,
            pixel_representation=pixel_representation,
            compress_kwargs=kwargs,
        )
    except ValueError as exc:  # pragma: no cover - depends on installed encoder plugins
        if "encoder" in str(exc):
            pytest.skip(str(exc))
        raise
    check_series(series)


def test_jpeg2000_needs_32_pixels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32"):
        write_series(tmp_path, shape=(16, 12, 2), transfer_syntax=puid.JPEG2000Lossless)


def test_unsupported_transfer_syntax(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_series(tmp_path, transfer_syntax="1.2.3.4")


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_planes_geometry(tmp_path: Path, plane: str) -> None:
    row, col = directions_for(plane)
    series = write_series(tmp_path, row_dir=row, col_dir=col, slice_spacing=3.0)
    check_series(series)
    normal = np.cross(row, col)
    assert np.allclose(series.affine_lps[:3, 0], np.array(row) * 0.7)
    assert np.allclose(series.affine_lps[:3, 1], np.array(col) * 0.8)
    assert np.allclose(series.affine_lps[:3, 2], normal * 3.0)
    steps = np.diff(series.positions, axis=0)
    assert np.allclose(steps, normal * 3.0)


def test_oblique_geometry(tmp_path: Path) -> None:
    row, col = oblique_directions(23.0, (1.0, 2.0, 0.5))
    series = write_series(
        tmp_path,
        row_dir=row,
        col_dir=col,
        origin=(-123.456789012345678, 45.6789, 0.1),
        pixel_spacing=(0.488281, 0.488281),
        slice_spacing=1.25,
    )
    datasets = check_series(series)
    # IOP as written is accurate to ~1e-9 and orthonormal.
    assert np.allclose(series.row_dir, row, atol=1e-9)
    assert np.allclose(series.col_dir, col, atol=1e-9)
    assert abs(float(series.row_dir @ series.col_dir)) < 1e-9
    normal = np.cross(series.row_dir, series.col_dir)
    assert np.allclose(series.affine_lps[:3, 2], 1.25 * normal, atol=1e-9)
    # k increases along the normal.
    along = series.positions @ normal
    assert np.all(np.diff(along) > 0)
    # SliceLocation is the position along the normal.
    for k, ds in enumerate(datasets):
        assert math.isclose(float(ds.SliceLocation), along[k], abs_tol=1e-6)
    assert series.positions[0, 0] == float(_ds_strings(datasets[0], "ImagePositionPatient")[0])


def test_direction_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="orthogonal"):
        write_series(tmp_path, row_dir=(1, 0, 0), col_dir=(1, 1, 0))
    with pytest.raises(ValueError):
        write_series(tmp_path, row_dir=(0, 0, 0))
    # Non-unit directions are normalised.
    series = write_series(tmp_path, row_dir=(2, 0, 0), col_dir=(0, 0, -3), shape=(3, 3, 2))
    assert list(series.row_dir) == [1, 0, 0]
    assert list(series.col_dir) == [0, 0, -1]


def test_explicit_irregular_positions(tmp_path: Path) -> None:
    positions = [
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 2.0),
        (0.0, 0.0, 4.0),
        (0.0, 0.0, 9.0),  # gap
        (0.0, 0.01, 11.003),  # jitter
        (0.0, 0.0, 13.0),
    ]
    series = write_series(tmp_path, shape=(8, 8, 6), positions=positions, slice_spacing=2.0)
    check_series(series, regular=False)
    assert np.array_equal(series.positions, np.array(positions))
    assert np.allclose(series.affine_lps[:3, 2], (np.array(positions[-1]) - positions[0]) / 5)
    with pytest.raises(ValueError):
        write_series(tmp_path / "bad", shape=(8, 8, 3), positions=positions)


def test_gantry_tilt_positions(tmp_path: Path) -> None:
    tilt = math.radians(15.0)
    positions = [(0.0, k * 3.0 * math.sin(tilt), k * 3.0 * math.cos(tilt)) for k in range(5)]
    series = write_series(tmp_path, shape=(8, 8, 5), positions=positions)
    check_series(series)
    assert np.allclose(series.positions, positions, atol=1e-9)
    step = series.affine_lps[:3, 2]
    assert np.allclose(step, positions[1], atol=1e-9)


def test_positions_are_exactly_as_written(tmp_path: Path) -> None:
    row, col = oblique_directions(33.3, (0.3, 1.0, 0.7))
    series = write_series(
        tmp_path, row_dir=row, col_dir=col, origin=(1 / 3, -2 / 3, 1e4 / 7), shape=(4, 4, 9)
    )
    for k, path in enumerate(series.paths):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        parsed = [float(s) for s in _ds_strings(ds, "ImagePositionPatient")]
        assert parsed == list(series.positions[k])


# --------------------------------------------------------------------------------------------
# Ordering and names
# --------------------------------------------------------------------------------------------


def test_ascending_order(tmp_path: Path) -> None:
    series = write_series(tmp_path, order="ascending", shape=(4, 4, 7))
    assert series.instance_numbers == tuple(range(1, 8))


def test_descending_order(tmp_path: Path) -> None:
    series = write_series(tmp_path, order="descending", shape=(4, 4, 7))
    check_series(series)
    assert series.instance_numbers == (7, 6, 5, 4, 3, 2, 1)


@pytest.mark.parametrize("n_slices", [1, 2, 7, 8])
def test_interleaved_order(tmp_path: Path, n_slices: int) -> None:
    series = write_series(tmp_path, order="interleaved", shape=(4, 4, n_slices))
    check_series(series)
    numbers = series.instance_numbers
    assert sorted(numbers) == list(range(1, n_slices + 1))
    by_instance = [k for _, k in sorted((n, k) for k, n in enumerate(numbers))]
    odd, even = list(range(1, n_slices, 2)), list(range(0, n_slices, 2))
    assert by_instance == odd + even


def test_explicit_instance_numbers(tmp_path: Path) -> None:
    series = write_series(tmp_path, shape=(4, 4, 3), instance_numbers=[5, 5, 9])
    check_series(series)
    assert series.instance_numbers == (5, 5, 9)
    with pytest.raises(ValueError):
        write_series(tmp_path / "x", shape=(4, 4, 3), instance_numbers=[1, 1, 2], shuffle_seed=None)


def test_unknown_order(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_series(tmp_path, order="random")


def test_shuffled_names_carry_no_order(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp_path = tmp_path_factory.mktemp("shuffled")
    series = write_series(
        tmp_path, shape=(4, 4, 12), series_instance_uid="1.2.826.0.1.3680043.8.498.1"
    )
    names = [p.name for p in series.paths]
    for name in names:
        assert re.fullmatch(r"[0-9A-F]{16}", name), name
    assert all(p.suffix == "" for p in series.paths)
    # Neither sorted names nor the directory listing follow k or InstanceNumber.
    by_name = sorted(range(12), key=lambda k: names[k])
    assert by_name not in (list(range(12)), list(range(11, -1, -1)))
    listed = [p.name for p in tmp_path.iterdir()]
    assert sorted(listed) == sorted(names)
    # Same seed and series UID -> same names; another series UID -> other names.
    again = write_series(
        tmp_path_factory.mktemp("again"),
        shape=(4, 4, 12),
        series_instance_uid="1.2.826.0.1.3680043.8.498.1",
    )
    assert [p.name for p in again.paths] == names
    other = write_series(tmp_path, shape=(4, 4, 12))  # same folder, same seed: no clash
    assert not {p.name for p in other.paths} & set(names)
    assert len(list(tmp_path.iterdir())) == 24


def test_unshuffled_names_follow_instance_number(tmp_path: Path) -> None:
    series = write_series(
        tmp_path, shape=(4, 4, 5), order="descending", shuffle_seed=None, prefix="S2_"
    )
    assert [p.name for p in series.paths] == [f"S2_IM{n:04d}" for n in (5, 4, 3, 2, 1)]
    for path, number in zip(series.paths, series.instance_numbers, strict=True):
        assert pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber == number


def test_prefix_and_explicit_file_names(tmp_path: Path) -> None:
    series = write_series(tmp_path, shape=(4, 4, 3), prefix="ct_")
    assert all(p.name.startswith("ct_") for p in series.paths)
    named = write_series(tmp_path / "n", shape=(4, 4, 3), file_names=["c", "a", "b"])
    assert [p.name for p in named.paths] == ["c", "a", "b"]
    check_series(named)


def test_never_overwrites(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(4, 4, 2), shuffle_seed=None)
    with pytest.raises(FileExistsError):
        write_series(tmp_path, shape=(4, 4, 2), shuffle_seed=None)


# --------------------------------------------------------------------------------------------
# Rescale and extra attributes
# --------------------------------------------------------------------------------------------


def test_per_slice_rescale(tmp_path: Path) -> None:
    rescale = [(0.5 + 0.25 * k, -1024.0 + 3 * k) for k in range(6)]
    series = write_series(tmp_path, shape=(8, 6, 6), rescale=rescale, order="descending")
    check_series(series)
    assert list(series.slopes) == [r[0] for r in rescale]
    assert list(series.intercepts) == [r[1] for r in rescale]
    # Stored values differ in scale between slices but the values stay in HU.
    assert series.values.min() >= -1000 and series.values.max() <= 2000
    with pytest.raises(ValueError):
        write_series(tmp_path / "bad", shape=(8, 6, 6), rescale=rescale[:3])
    with pytest.raises(ValueError):
        write_series(tmp_path / "zero", rescale=(0.0, 1.0))


def test_awkward_rescale_is_as_written(tmp_path: Path) -> None:
    series = write_series(tmp_path, shape=(6, 5, 2), rescale=(1 / 3, -1024 / 7))
    datasets = check_series(series)
    assert series.slopes[0] == float(_ds_strings(datasets[0], "RescaleSlope")[0])
    assert math.isclose(series.slopes[0], 1 / 3, rel_tol=1e-12)


def test_per_slice_and_extra_keywords(tmp_path: Path) -> None:
    series = write_series(
        tmp_path,
        shape=(6, 5, 4),
        modality="MR",
        rescale=(1.0, 0.0),
        per_slice={"EchoNumbers": [1, 2, 1, 2], "AcquisitionNumber": [1, 1, 2, 2]},
        extra={"SeriesDescription": "overridden", "BodyPartExamined": None, "EchoTime": "30"},
        image_type=("DERIVED", "SECONDARY"),
        series_number=7,
        patient_id="P42",
    )
    datasets = check_series(series)
    assert [ds.EchoNumbers for ds in datasets] == [1, 2, 1, 2]
    assert [ds.AcquisitionNumber for ds in datasets] == [1, 1, 2, 2]
    for ds in datasets:
        assert ds.SeriesDescription == "overridden"
        assert "BodyPartExamined" not in ds
        assert float(ds.EchoTime) == 30.0
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert ds.SeriesNumber == 7
        assert ds.PatientID == "P42"
    with pytest.raises(ValueError):
        write_series(tmp_path / "a", extra={"NotAKeyword": 1})
    with pytest.raises(ValueError):
        write_series(tmp_path / "b", shape=(4, 4, 3), per_slice={"EchoNumbers": [1, 2]})


def test_per_slice_can_delete_geometry(tmp_path: Path) -> None:
    series = write_series(
        tmp_path, shape=(4, 4, 3), per_slice={"ImagePositionPatient": [None, [0, 0, 5], None]}
    )
    datasets = [pydicom.dcmread(p) for p in series.paths]
    assert "ImagePositionPatient" not in datasets[0]
    assert [float(v) for v in datasets[1].ImagePositionPatient] == [0, 0, 5]


def test_given_uids_are_used(tmp_path: Path) -> None:
    series = write_series(
        tmp_path,
        shape=(4, 4, 2),
        series_instance_uid="1.2.3.4.5",
        study_instance_uid="1.2.3.4.6",
        frame_of_reference_uid="1.2.3.4.7",
    )
    ds = check_series(series)[0]
    assert ds.SeriesInstanceUID == "1.2.3.4.5"
    assert ds.StudyInstanceUID == "1.2.3.4.6"
    assert ds.FrameOfReferenceUID == "1.2.3.4.7"


# --------------------------------------------------------------------------------------------
# Property test of the geometry
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    degrees=st.floats(-180, 180),
    axis=st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(
        lambda a: np.linalg.norm(a) > 0.1
    ),
    spacing=st.tuples(st.floats(0.1, 5.0), st.floats(0.1, 5.0), st.floats(0.2, 10.0)),
    origin=st.tuples(*(st.floats(-500.0, 500.0),) * 3),
    n_slices=st.integers(1, 5),
)
def test_geometry_property(
    degrees: float,
    axis: tuple[float, float, float],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    n_slices: int,
) -> None:
    row, col = oblique_directions(degrees, axis)
    with tempfile.TemporaryDirectory() as tmp:
        series = write_series(
            tmp,
            shape=(5, 4, n_slices),
            row_dir=row,
            col_dir=col,
            origin=origin,
            pixel_spacing=(spacing[0], spacing[1]),
            slice_spacing=spacing[2],
        )
        check_series(series)
    normal = np.cross(series.row_dir, series.col_dir)
    assert np.allclose(series.affine_lps[:3, 2], normal * spacing[2], atol=1e-8)
    assert np.allclose(series.positions[0], origin, atol=1e-8)


# --------------------------------------------------------------------------------------------
# Localizer and broken files
# --------------------------------------------------------------------------------------------


def test_localizer(tmp_path: Path) -> None:
    axial = write_series(tmp_path)
    path = write_localizer(
        tmp_path,
        series_instance_uid=axial.series_instance_uid,
        study_instance_uid=axial.study_instance_uid,
        frame_of_reference_uid=axial.frame_of_reference_uid,
    )
    assert path.parent == tmp_path and path.name == "LOCALIZER"
    ds = pydicom.dcmread(path)
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    assert ds.SeriesInstanceUID == axial.series_instance_uid
    assert ds.StudyInstanceUID == axial.study_instance_uid
    assert ds.FrameOfReferenceUID == axial.frame_of_reference_uid
    assert ds.Modality == "CT" and ds.SOPClassUID == puid.CTImageStorage
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    loc_normal = np.cross(iop[:3], iop[3:])
    axial_normal = np.cross(axial.row_dir, axial.col_dir)
    assert abs(float(loc_normal @ axial_normal)) < 1e-12  # orthogonal to the axial slices
    assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    assert ds.SOPInstanceUID not in axial.sop_instance_uids


def test_non_dicom(tmp_path: Path) -> None:
    path = write_non_dicom(tmp_path)
    assert path.exists() and path.suffix == ""
    path.read_text(encoding="ascii")
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(path)


def test_truncated(tmp_path: Path) -> None:
    series = write_series(tmp_path / "ok", shape=(16, 12, 2))
    src = series.paths[0]
    dest = write_truncated(src, tmp_path / "broken" / "TRUNC")
    assert dest == tmp_path / "broken" / "TRUNC"
    assert 0 < dest.stat().st_size < src.stat().st_size - 100
    header = pydicom.dcmread(dest, stop_before_pixels=True)
    assert header.SOPInstanceUID == series.sop_instance_uids[0]
    assert header.Rows == 12
    with pytest.raises(Exception):  # noqa: B017 - pydicom may raise several types here
        pydicom.dcmread(dest).pixel_array  # noqa: B018
    # The source is untouched.
    assert np.array_equal(pydicom.dcmread(src).pixel_array.T, series.stored[:, :, 0])


@pytest.mark.parametrize(
    "transfer_syntax", [puid.ImplicitVRLittleEndian, puid.ExplicitVRBigEndian, puid.RLELossless]
)
@pytest.mark.filterwarnings("ignore:End of file reached")
def test_truncated_other_syntaxes(tmp_path: Path, transfer_syntax: str) -> None:
    series = write_series(tmp_path / "ok", shape=(16, 12, 1), transfer_syntax=transfer_syntax)
    dest = write_truncated(series.paths[0], tmp_path / "TRUNC")
    assert pydicom.dcmread(dest, stop_before_pixels=True).Columns == 16
    with pytest.raises((ValueError, AttributeError)):
        pydicom.dcmread(dest).pixel_array  # noqa: B018


def test_truncated_refuses_deflated(tmp_path: Path) -> None:
    series = write_series(
        tmp_path / "ok", shape=(4, 4, 1), transfer_syntax=puid.DeflatedExplicitVRLittleEndian
    )
    with pytest.raises(ValueError, match="deflated"):
        write_truncated(series.paths[0], tmp_path / "TRUNC")


def test_header_garbage(tmp_path: Path) -> None:
    path = write_header_garbage(tmp_path / "sub" / "GARBAGE")
    raw = path.read_bytes()
    assert raw[:128] == b"\x00" * 128 and raw[128:132] == b"DICM"
    for stop_before_pixels, force in ((False, False), (True, False), (False, True)):
        with pytest.raises(Exception):  # noqa: B017 - zlib.error from the deflate stream
            pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=force)


# --------------------------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------------------------


def test_demo_study(tmp_path: Path) -> None:
    start = time.perf_counter()
    ct, mr = write_demo_study(tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # ~0.2 s in practice; generous for slow CI machines
    check_series(ct)
    check_series(mr)
    assert ct.shape == (64, 64, 24)
    assert ct.modality == "CT" and mr.modality == "MR"
    assert ct.study_instance_uid == mr.study_instance_uid
    assert ct.series_instance_uid != mr.series_instance_uid
    assert len(list(tmp_path.iterdir())) == 24 + mr.shape[2]
    # Oblique: 20 degrees about (1, 1, 0).
    row, col = oblique_directions(20.0, (1, 1, 0))
    assert np.allclose(ct.row_dir, row, atol=1e-9) and np.allclose(ct.col_dir, col, atol=1e-9)
    # Per-slice slopes differ, descending instance numbers, shuffled hex names.
    assert len(set(ct.slopes)) > 1
    assert ct.instance_numbers == tuple(range(24, 0, -1))
    assert all(re.fullmatch(r"[0-9A-F]{16}", p.name) for p in ct.paths)
    # The MR series is axial.
    assert list(mr.row_dir) == [1, 0, 0] and list(mr.col_dir) == [0, 1, 0]

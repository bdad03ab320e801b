"""Small, fully valid synthetic single-frame DICOM series with known ground truth.

The writers in this module produce Part-10 files with pydicom only (no real data). They are used
by the demo and by the tests of the DICOM-to-NIfTI converter, so every number a test needs is
returned exactly as it was written to the files.

Conventions
-----------
* Patient coordinates are DICOM LPS, in millimetres.
* A voxel index is ``(i, j, k)``: ``i`` is the column index and moves along the row direction
  ``ImageOrientationPatient[:3]`` in steps of ``PixelSpacing[1]``; ``j`` is the row index and moves
  along the column direction ``ImageOrientationPatient[3:]`` in steps of ``PixelSpacing[0]``;
  ``k`` is the slice index and increases along the normal ``cross(row_dir, col_dir)``.
* Ground-truth arrays are indexed ``[i, j, k]`` with shape ``(X, Y, Z) = (Columns, Rows, slices)``.
  The DICOM pixel array of slice ``k`` is ``array[:, :, k].T`` with shape ``(Rows, Columns)``.
* ``affine_lps`` maps ``(i, j, k, 1)`` to ``(x, y, z, 1)``.
"""

from __future__ import annotations

import contextlib
import itertools
import unittest.mock
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.uid

from dicomvol.testing.geometry import directions_for, ds_text, readonly
from dicomvol.testing.slices import (
    SOP_CLASSES,
    check_keyword,
    encode_pixels,
    ideal_values,
    modality_attributes,
    naming,
    parse_rescale,
    set_or_delete,
    slice_dataset,
    slice_grid,
    to_stored,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

@dataclass(frozen=True)
class SyntheticSeries:
    """Ground truth of a synthetic series written by :func:`write_series`.

    All arrays are read-only. Geometry is given exactly as written to the files (the formatted
    DS strings parsed back to float), so tests can compare with ``==`` or tight tolerances.

    Attributes
    ----------
    paths : tuple of Path, length Z
        Files written, one per slice, in slice order: ``paths[k]`` holds slice ``k``.
    values : ndarray of float64, shape (X, Y, Z)
        Modality values ``stored * RescaleSlope + RescaleIntercept``, indexed ``[i, j, k]``.
    stored : ndarray of int16 or uint16, shape (X, Y, Z)
        Stored pixel values, indexed ``[i, j, k]`` (the dtype follows PixelRepresentation).
    affine_lps : ndarray of float64, shape (4, 4)
        Voxel ``(i, j, k, 1)`` to LPS ``(x, y, z, 1)``. Column 2 is
        ``(positions[-1] - positions[0]) / (Z - 1)`` (for ``Z == 1``: the unit normal times the
        slice spacing), which for regular stepping is the slice step vector and for irregular
        explicit positions is the mean step.
    positions : ndarray of float64, shape (Z, 3)
        ImagePositionPatient of each slice ``k``.
    sop_instance_uids : tuple of str, length Z
        SOPInstanceUID of each slice ``k``.
    series_instance_uid : str
        SeriesInstanceUID shared by all files.
    study_instance_uid : str
        StudyInstanceUID shared by all files.
    frame_of_reference_uid : str
        FrameOfReferenceUID shared by all files.
    instance_numbers : tuple of int, length Z
        InstanceNumber of each slice ``k``.
    slopes : ndarray of float64, shape (Z,)
        RescaleSlope of each slice ``k`` as written.
    intercepts : ndarray of float64, shape (Z,)
        RescaleIntercept of each slice ``k`` as written.
    row_dir : ndarray of float64, shape (3,)
        ``ImageOrientationPatient[:3]`` as written.
    col_dir : ndarray of float64, shape (3,)
        ``ImageOrientationPatient[3:]`` as written.
    pixel_spacing : tuple of float
        PixelSpacing ``(row spacing, column spacing)`` as written.
    modality : str
        ``"CT"``, ``"MR"`` or ``"PT"``.
    transfer_syntax : str
        TransferSyntaxUID of the files.
    """

    paths: tuple[Path, ...]
    values: FloatArray
    stored: IntArray
    affine_lps: FloatArray
    positions: FloatArray
    sop_instance_uids: tuple[str, ...]
    series_instance_uid: str
    study_instance_uid: str
    frame_of_reference_uid: str
    instance_numbers: tuple[int, ...]
    slopes: FloatArray
    intercepts: FloatArray
    row_dir: FloatArray
    col_dir: FloatArray
    pixel_spacing: tuple[float, float]
    modality: str
    transfer_syntax: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """Volume shape ``(X, Y, Z) = (Columns, Rows, slices)``."""
        x, y, z = self.values.shape
        return (int(x), int(y), int(z))


@contextlib.contextmanager
def deterministic_uids(root: str = "1.2.826.0.1.3680043.8.498.") -> Iterator[None]:
    """Within the block, the writers' new UIDs are ``root`` + 1, 2, 3, ... (not random).

    For tests whose examples must be the same bytes on every run (derandomized fuzzing).
    """
    counter = itertools.count(1)
    with unittest.mock.patch.object(pydicom.uid, "generate_uid",
                                    lambda *args, **kwargs: f"{root}{next(counter)}"):
        yield


def write_series(
    folder: str | Path,
    *,
    shape: tuple[int, int, int] = (16, 12, 8),
    pixel_spacing: tuple[float, float] = (0.8, 0.7),
    slice_spacing: float = 2.5,
    row_dir: Sequence[float] = (1, 0, 0),
    col_dir: Sequence[float] = (0, 1, 0),
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    positions: Sequence[Sequence[float]] | None = None,
    modality: str = "CT",
    rescale: tuple[float, float] | Sequence[tuple[float, float]] = (1.0, -1024.0),
    order: str = "ascending",
    shuffle_seed: int | None = 0,
    series_instance_uid: str | None = None,
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "synthetic",
    patient_id: str = "SYNTH001",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    per_slice: Mapping[str, Sequence[Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    pixel_representation: int = 1,
    transfer_syntax: str = pydicom.uid.ExplicitVRLittleEndian,
    seed: int = 0,
    prefix: str = "",
    instance_numbers: Sequence[int] | None = None,
    file_names: Sequence[str] | None = None,
    compress_kwargs: Mapping[str, Any] | None = None,
) -> SyntheticSeries:
    """Write a synthetic single-frame series, one Part-10 file per slice.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing). Existing files are never overwritten: a name clash
        raises ``FileExistsError``.
    shape : tuple of int, optional
        ``(X, Y, Z) = (Columns, Rows, number of slices)``.
    pixel_spacing : tuple of float, optional
        DICOM PixelSpacing ``(row spacing, column spacing)`` in mm: ``j`` steps by
        ``pixel_spacing[0]``, ``i`` by ``pixel_spacing[1]``.
    slice_spacing : float, optional
        Distance between slices along the normal (also written as SliceThickness).
    row_dir, col_dir : sequence of float, length 3, optional
        ImageOrientationPatient row and column directions (normalised here; must be orthogonal).
    origin : sequence of float, length 3, optional
        ImagePositionPatient of slice ``k = 0``.
    positions : sequence of (sequence of float, length 3), length Z, optional
        Explicit ImagePositionPatient per slice ``k``; overrides ``origin``/``slice_spacing``
        stepping (for gaps, jitter or gantry tilt).
    modality : {"CT", "MR", "PT"}, optional
        Selects the SOP class (CT / MR / PET Image Storage), modality attributes and value range
        (CT about -1000..2000 HU, MR 0..1500, PT 0..8000 Bq/ml).
    rescale : (slope, intercept) or sequence of Z such pairs, optional
        RescaleSlope and RescaleIntercept for all slices or per slice ``k``.
    order : {"ascending", "descending", "interleaved"}, optional
        InstanceNumber versus ``k``: ``k + 1``; ``Z - k``; or acquisition order
        ``k = 1, 3, 5, ..., 0, 2, 4, ...`` (odd ``k`` first) numbered ``1..Z``.
    shuffle_seed : int or None, optional
        If an int: file names are random upper-case hex without extension (derived from this
        seed and the series UID, so two series in one folder do not clash) and files are written
        in shuffled order. If None: names ``IM0001``... follow InstanceNumber, written in order.
    series_instance_uid, study_instance_uid, frame_of_reference_uid : str or None, optional
        UIDs; new random UIDs when None.
    series_number : int, optional
        SeriesNumber.
    series_description : str, optional
        SeriesDescription.
    patient_id : str, optional
        PatientID.
    image_type : sequence of str, optional
        ImageType values.
    per_slice : mapping of str to sequence (length Z), optional
        DICOM keyword to one value per slice ``k``; applied last. A value of None deletes the
        element from that slice. Overriding geometry here is not reflected in the result.
    extra : mapping of str to any, optional
        DICOM keyword to a value for every slice; applied after the standard attributes and
        before ``per_slice``. None deletes the element.
    pixel_representation : {1, 0}, optional
        1: signed int16; 0: unsigned uint16. Stored values are clipped to the dtype range.
    transfer_syntax : str, optional
        Explicit or Implicit VR Little Endian, Deflated Explicit VR Little Endian, Explicit VR
        Big Endian, or a compressed syntax that pydicom can encode (``Dataset.compress``). For
        lossy syntaxes the returned ``stored``/``values`` are the decoded pixels.
    seed : int, optional
        Seed of the pixel content.
    prefix : str, optional
        Prefix of every file name.
    instance_numbers : sequence of int, length Z, optional
        Explicit InstanceNumber per slice ``k``; overrides ``order``.
    file_names : sequence of str, length Z, optional
        Explicit file name per slice ``k`` (``prefix`` is not added); overrides the naming
        implied by ``shuffle_seed`` (the write order is still shuffled when it is an int).
    compress_kwargs : mapping, optional
        Extra keyword arguments for ``Dataset.compress`` (e.g. ``j2k_cr`` for lossy JPEG 2000).

    Returns
    -------
    SyntheticSeries
        Paths in slice order and the ground truth (``values`` and ``stored`` of shape
        ``(X, Y, Z)``, ``positions`` of shape ``(Z, 3)``, ``affine_lps`` of shape ``(4, 4)``).
    """
    modality = modality.upper()
    x_size, y_size, n_slices = _check_arguments(modality, shape, pixel_representation,
                                                slice_spacing)
    dtype: np.dtype[Any] = np.dtype(np.int16 if pixel_representation == 1 else np.uint16)
    grid = slice_grid(row_dir, col_dir, pixel_spacing, slice_spacing, origin, positions, n_slices)

    # --- rescale and pixels --------------------------------------------------------------------
    rescale_arr = parse_rescale(rescale, n_slices)
    slope_str = [ds_text(v) for v in rescale_arr[:, 0]]
    icpt_str = [ds_text(v) for v in rescale_arr[:, 1]]
    slopes = np.array([float(s) for s in slope_str])
    intercepts = np.array([float(s) for s in icpt_str])
    content = ideal_values((x_size, y_size, n_slices), modality, seed)
    stored = np.empty((x_size, y_size, n_slices), dtype=dtype)
    for k in range(n_slices):
        stored[:, :, k] = to_stored(content[:, :, k], slopes[k], intercepts[k], dtype)

    series_uid = series_instance_uid or pydicom.uid.generate_uid()
    study_uid = study_instance_uid or pydicom.uid.generate_uid()
    for_uid = frame_of_reference_uid or pydicom.uid.generate_uid()
    sop_uids = [pydicom.uid.generate_uid() for _ in range(n_slices)]
    numbers, names, write_order = naming(n_slices, order, instance_numbers, file_names,
                                          shuffle_seed, series_uid, prefix)
    extra, per_slice = _check_overrides(extra, per_slice, n_slices)

    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in names]
    sop_class = SOP_CLASSES[modality]
    ckw = dict(compress_kwargs or {})
    for k in write_order:
        ds = slice_dataset(sop_class, sop_uids[k], transfer_syntax)
        ds.ImageType = list(image_type)
        ds.Modality = modality
        ds.SeriesDescription = series_description
        ds.PatientID = patient_id
        ds.SliceThickness = grid.thickness_str
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(series_number)
        ds.InstanceNumber = numbers[k]
        ds.ImagePositionPatient = grid.ipp_str[k]
        ds.ImageOrientationPatient = grid.iop_str
        ds.FrameOfReferenceUID = for_uid
        ds.SliceLocation = ds_text(float(grid.positions[k] @ grid.normal))
        ds.Rows = y_size
        ds.Columns = x_size
        ds.PixelSpacing = grid.ps_str
        ds.PixelRepresentation = pixel_representation
        ds.RescaleIntercept = icpt_str[k]
        ds.RescaleSlope = slope_str[k]
        modality_attributes(ds, modality, n_slices, k)
        for keyword, value in extra.items():
            set_or_delete(ds, keyword, value)
        for keyword, seq in per_slice.items():
            set_or_delete(ds, keyword, seq[k])
        pixels = np.ascontiguousarray(stored[:, :, k].T)
        stored[:, :, k] = encode_pixels(ds, pixels, transfer_syntax, ckw).T
        ds.save_as(paths[k], enforce_file_format=True, overwrite=False)

    values = stored.astype(np.float64) * slopes[None, None, :] + intercepts[None, None, :]
    return SyntheticSeries(
        paths=tuple(paths),
        values=readonly(values),
        stored=readonly(stored),
        affine_lps=readonly(grid.affine),
        positions=readonly(grid.positions),
        sop_instance_uids=tuple(sop_uids),
        series_instance_uid=series_uid,
        study_instance_uid=study_uid,
        frame_of_reference_uid=for_uid,
        instance_numbers=tuple(numbers),
        slopes=readonly(slopes),
        intercepts=readonly(intercepts),
        row_dir=readonly(grid.row),
        col_dir=readonly(grid.col),
        pixel_spacing=(float(grid.ps[0]), float(grid.ps[1])),
        modality=modality,
        transfer_syntax=str(pydicom.uid.UID(transfer_syntax)),
    )


def _check_arguments(modality: str, shape: tuple[int, int, int], pixel_representation: int,
                     slice_spacing: float) -> tuple[int, int, int]:
    """Validate :func:`write_series` arguments; returns (X, Y, Z)."""
    if modality not in SOP_CLASSES:
        raise ValueError(f"unsupported modality {modality!r}; expected CT, MR or PT")
    x_size, y_size, n_slices = (int(s) for s in shape)
    if min(x_size, y_size, n_slices) < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if pixel_representation not in (0, 1):
        raise ValueError("pixel_representation must be 0 (unsigned) or 1 (signed)")
    if slice_spacing <= 0:
        raise ValueError("slice_spacing must be positive")
    return x_size, y_size, n_slices


def _check_overrides(extra: Mapping[str, Any] | None,
                     per_slice: Mapping[str, Sequence[Any]] | None,
                     n_slices: int) -> tuple[dict[str, Any], dict[str, Sequence[Any]]]:
    """Validate the ``extra`` and ``per_slice`` keywords (and the per-slice lengths)."""
    extra_d = dict(extra or {})
    per_slice_d = dict(per_slice or {})
    for keyword in extra_d:
        check_keyword(keyword)
    for keyword, seq in per_slice_d.items():
        check_keyword(keyword)
        if len(seq) != n_slices:
            raise ValueError(f"per_slice[{keyword!r}] must have {n_slices} values")
    return extra_d, per_slice_d


def write_localizer(
    folder: str | Path,
    *,
    series_instance_uid: str,
    study_instance_uid: str,
    frame_of_reference_uid: str | None = None,
    plane: str = "coronal",
    shape: tuple[int, int] = (48, 40),
    pixel_spacing: tuple[float, float] = (2.5, 2.5),
    origin: Sequence[float] = (-60.0, -15.0, 80.0),
    instance_number: int = 1,
    series_number: int = 1,
    series_description: str = "synthetic",
    patient_id: str = "SYNTH001",
    file_name: str = "LOCALIZER",
    seed: int = 1,
) -> Path:
    """Write one CT localizer (scout) slice, orthogonal to an axial series.

    Scanners often store the localizer in the same series as the axial images, so the series
    and study UIDs are taken from the caller.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing).
    series_instance_uid, study_instance_uid : str
        UIDs to share with the series the localizer belongs to.
    frame_of_reference_uid : str or None, optional
        FrameOfReferenceUID (a new one when None).
    plane : {"coronal", "sagittal", "axial"}, optional
        Orientation of the localizer, see :func:`directions_for`.
    shape : tuple of int, optional
        ``(Columns, Rows)``.
    pixel_spacing : tuple of float, optional
        PixelSpacing ``(row spacing, column spacing)``.
    origin : sequence of float, length 3, optional
        ImagePositionPatient.
    instance_number : int, optional
        InstanceNumber (may collide with the axial slices, as it does on scanners).
    series_number, series_description, patient_id : optional
        As in :func:`write_series`.
    file_name : str, optional
        Name of the file written.
    seed : int, optional
        Seed of the pixel content.

    Returns
    -------
    Path
        The file written; ImageType is ``ORIGINAL\\PRIMARY\\LOCALIZER``.
    """
    row_dir, col_dir = directions_for(plane)
    series = write_series(
        folder,
        shape=(shape[0], shape[1], 1),
        pixel_spacing=pixel_spacing,
        slice_spacing=pixel_spacing[0],
        row_dir=row_dir,
        col_dir=col_dir,
        origin=origin,
        modality="CT",
        shuffle_seed=None,
        series_instance_uid=series_instance_uid,
        study_instance_uid=study_instance_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        series_number=series_number,
        series_description=series_description,
        patient_id=patient_id,
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        instance_numbers=[instance_number],
        file_names=[file_name],
        seed=seed,
    )
    return series.paths[0]

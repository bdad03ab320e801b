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

import hashlib
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.valuerep import format_number_as_ds

__all__ = [
    "SyntheticSeries",
    "directions_for",
    "oblique_directions",
    "rotation_matrix",
    "write_demo_study",
    "write_header_garbage",
    "write_localizer",
    "write_non_dicom",
    "write_series",
    "write_truncated",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]
Vec3 = tuple[float, float, float]
_ArrayT = TypeVar("_ArrayT", bound="np.ndarray[Any, Any]")

MANUFACTURER = "dicomvol-synthetic"

_SOP_CLASSES: dict[str, pydicom.uid.UID] = {
    "CT": pydicom.uid.CTImageStorage,
    "MR": pydicom.uid.MRImageStorage,
    "PT": pydicom.uid.PositronEmissionTomographyImageStorage,
}

# Range of the modality values (after rescale) that the synthetic content spans.
_VALUE_RANGES: dict[str, tuple[float, float]] = {
    "CT": (-1000.0, 2000.0),
    "MR": (0.0, 1500.0),
    "PT": (0.0, 8000.0),
}

_ORDERS = ("ascending", "descending", "interleaved")

_NATIVE_SYNTAXES = (
    pydicom.uid.ExplicitVRLittleEndian,
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.DeflatedExplicitVRLittleEndian,
    pydicom.uid.ExplicitVRBigEndian,
)

_J2K_SYNTAXES = (pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEG2000)

_PLANES: dict[str, tuple[Vec3, Vec3]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


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


# --------------------------------------------------------------------------------------------
# Direction helpers
# --------------------------------------------------------------------------------------------


def rotation_matrix(axis: Sequence[float], degrees: float) -> FloatArray:
    """Rotation about ``axis`` by ``degrees`` (right-handed), by Rodrigues' formula.

    Parameters
    ----------
    axis : sequence of float, length 3
        Rotation axis; need not be normalised but must be non-zero.
    degrees : float
        Rotation angle in degrees.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Orthonormal matrix ``R`` such that ``R @ v`` rotates the vector ``v``.
    """
    a = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"rotation axis must be a finite non-zero vector, got {tuple(axis)}")
    a = a / norm
    theta = math.radians(degrees)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    rot: FloatArray = np.eye(3) + math.sin(theta) * k + (1.0 - math.cos(theta)) * (k @ k)
    return rot


def _vec3(v: npt.ArrayLike) -> Vec3:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    return (float(a[0]), float(a[1]), float(a[2]))


def oblique_directions(
    degrees: float, axis: Sequence[float] = (1.0, 1.0, 0.0)
) -> tuple[Vec3, Vec3]:
    """Axial row/column directions rotated by ``degrees`` about ``axis``.

    Parameters
    ----------
    degrees : float
        Rotation angle in degrees.
    axis : sequence of float, length 3, optional
        Rotation axis in LPS, default ``(1, 1, 0)``.

    Returns
    -------
    row_dir, col_dir : tuple of float, length 3 each
        ``R @ (1, 0, 0)`` and ``R @ (0, 1, 0)``; orthonormal.
    """
    rot = rotation_matrix(axis, degrees)
    return _vec3(rot[:, 0]), _vec3(rot[:, 1])


def directions_for(plane: str) -> tuple[Vec3, Vec3]:
    """Standard row/column directions of an acquisition plane.

    Parameters
    ----------
    plane : {"axial", "coronal", "sagittal"}
        Plane name (case-insensitive).

    Returns
    -------
    row_dir, col_dir : tuple of float, length 3 each
        ``axial``: ``(1, 0, 0), (0, 1, 0)``; ``coronal``: ``(1, 0, 0), (0, 0, -1)``;
        ``sagittal``: ``(0, 1, 0), (0, 0, -1)``.
    """
    try:
        return _PLANES[plane.lower()]
    except KeyError:
        raise ValueError(f"unknown plane {plane!r}; expected one of {sorted(_PLANES)}") from None


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _ds(value: float) -> str:
    """Format a float as a DS string of at most 16 characters (tiny values snap to 0)."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"cannot write non-finite value {value!r} as DS")
    if abs(v) < 1e-12:
        v = 0.0
    return format_number_as_ds(v)


def _ds_list(values: npt.ArrayLike) -> tuple[list[str], FloatArray]:
    """Format values as DS strings; also return the floats as written, shape (n,)."""
    strings = [_ds(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]
    return strings, np.array([float(s) for s in strings], dtype=np.float64)


def _unit(v: Sequence[float], name: str) -> FloatArray:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{name} must be a finite non-zero 3-vector, got {tuple(v)}")
    out: FloatArray = a / norm
    return out


def _readonly(a: _ArrayT) -> _ArrayT:
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------------------------
# Pixel content
# --------------------------------------------------------------------------------------------


def _ideal_values(shape: tuple[int, int, int], modality: str, seed: int) -> FloatArray:
    """Deterministic smooth-plus-noise modality values, shape (X, Y, Z), indexed [i, j, k].

    A gradient that differs in i and j (so transposition and flips change the data), a per-slice
    offset (so slice order is visible in the mean) and noise (so every slice is unique).
    """
    x, y, z = shape
    lo, hi = _VALUE_RANGES[modality]
    span = hi - lo
    ii = np.linspace(0.0, 1.0, x) if x > 1 else np.zeros(1)
    jj = np.linspace(0.0, 1.0, y) if y > 1 else np.zeros(1)
    kk = np.linspace(0.0, 1.0, z) if z > 1 else np.zeros(1)
    base = (
        0.55 * ii[:, None, None]
        + 0.25 * jj[None, :, None] ** 2
        + 0.12 * kk[None, None, :]
        + 0.04 * np.sin(3.0 * ii[:, None, None] + 5.0 * jj[None, :, None])
    )
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.01, size=shape)
    out: FloatArray = np.clip(lo + span * (0.02 + base + noise), lo, hi)
    return out


def _to_stored(
    values: FloatArray, slope: float, intercept: float, dtype: np.dtype[Any]
) -> IntArray:
    info = np.iinfo(dtype)
    raw = np.rint((values - intercept) / slope)
    out: IntArray = np.clip(raw, info.min, info.max).astype(dtype)
    return out


# --------------------------------------------------------------------------------------------
# Dataset construction
# --------------------------------------------------------------------------------------------


def _check_keyword(keyword: str) -> None:
    if tag_for_keyword(keyword) is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword")


def _set_or_delete(ds: Dataset, keyword: str, value: Any) -> None:
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)


def _modality_attributes(ds: Dataset, modality: str, n_slices: int, k: int) -> None:
    if modality == "CT":
        ds.RescaleType = "HU"
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
    elif modality == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = "15.0"
        ds.RepetitionTime = "500.0"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "3.0"
        ds.ImagingFrequency = "127.74"
        ds.ImagedNucleus = "1H"
    elif modality == "PT":
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN"]
        ds.NumberOfSlices = n_slices
        ds.ImageIndex = k + 1
        ds.FrameReferenceTime = "0.0"
        ds.ActualFrameDuration = 300000
        ds.DecayFactor = "1.0"


def _encode_pixels(
    ds: Dataset,
    pixels: IntArray,
    transfer_syntax: str,
    compress_kwargs: Mapping[str, Any],
) -> IntArray:
    """Attach (Rows, Columns) ``pixels`` to ``ds``; return the stored values a reader will see."""
    uid = pydicom.uid.UID(transfer_syntax)
    ds.file_meta.TransferSyntaxUID = uid
    if uid in _NATIVE_SYNTAXES:
        order: Literal["<", ">"] = ">" if uid == pydicom.uid.ExplicitVRBigEndian else "<"
        data = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder(order)).tobytes()
        ds.add_new(0x7FE00010, "OW", data)
        return pixels
    if not uid.is_compressed:
        raise ValueError(f"unsupported transfer syntax {uid!r} ({uid.name})")
    from pydicom.pixels.encoders.base import get_encoder  # only needed for compressed data

    try:
        encoder = get_encoder(uid)
    except NotImplementedError as exc:
        raise ValueError(f"pydicom has no encoder for {uid.name} ({uid})") from exc
    if not encoder.is_available:
        raise ValueError(f"no encoder plugin available for {uid.name} ({uid})")
    if uid in _J2K_SYNTAXES and min(pixels.shape) < 32:
        # pylibjpeg-openjpeg always uses 6 DWT resolutions, which needs >= 32 pixels per side.
        raise ValueError(f"{uid.name} needs Rows and Columns >= 32, got {pixels.shape}")
    ds.compress(
        uid, arr=np.ascontiguousarray(pixels), generate_instance_uid=False, **dict(compress_kwargs)
    )
    ds.file_meta.TransferSyntaxUID = uid
    # Lossy syntaxes change the pixels: report what a reader decodes.
    decoded: IntArray = np.asarray(ds.pixel_array).astype(pixels.dtype)
    return decoded


def _parse_rescale(
    rescale: tuple[float, float] | Sequence[tuple[float, float]], n_slices: int
) -> FloatArray:
    arr = np.asarray(rescale, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.tile(arr, (n_slices, 1))
    if arr.shape != (n_slices, 2):
        raise ValueError(
            f"rescale must be (slope, intercept) or {n_slices} such pairs, got shape {arr.shape}"
        )
    if np.any(arr[:, 0] == 0.0) or not np.all(np.isfinite(arr)):
        raise ValueError("rescale slopes must be non-zero and all values finite")
    return arr


def _instance_numbers(order: str, n_slices: int) -> list[int]:
    if order == "ascending":
        return [k + 1 for k in range(n_slices)]
    if order == "descending":
        return [n_slices - k for k in range(n_slices)]
    if order == "interleaved":
        acquisition = list(range(1, n_slices, 2)) + list(range(0, n_slices, 2))
        numbers = [0] * n_slices
        for n, k in enumerate(acquisition):
            numbers[k] = n + 1
        return numbers
    raise ValueError(f"unknown order {order!r}; expected one of {_ORDERS}")


def _random_names(n: int, shuffle_seed: int, series_uid: str, prefix: str) -> list[str]:
    digest = int.from_bytes(hashlib.sha256(series_uid.encode()).digest()[:8], "little")
    rng = np.random.default_rng([shuffle_seed, digest])
    names: list[str] = []
    while len(names) < n:
        name = prefix + rng.bytes(8).hex().upper()
        if name not in names:
            names.append(name)
    return names


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
    if modality not in _SOP_CLASSES:
        raise ValueError(f"unsupported modality {modality!r}; expected CT, MR or PT")
    x_size, y_size, n_slices = (int(s) for s in shape)
    if min(x_size, y_size, n_slices) < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if pixel_representation not in (0, 1):
        raise ValueError("pixel_representation must be 0 (unsigned) or 1 (signed)")
    if slice_spacing <= 0:
        raise ValueError("slice_spacing must be positive")
    dtype: np.dtype[Any] = np.dtype(np.int16 if pixel_representation == 1 else np.uint16)

    # --- orientation and spacing, as written --------------------------------------------------
    row_u = _unit(row_dir, "row_dir")
    col_u = _unit(col_dir, "col_dir")
    if abs(float(row_u @ col_u)) > 1e-6:
        raise ValueError("row_dir and col_dir must be orthogonal")
    iop_str, iop = _ds_list(np.concatenate([row_u, col_u]))
    row_w, col_w = iop[:3].copy(), iop[3:].copy()
    normal = np.cross(row_u, col_u)
    ps_str, ps = _ds_list(pixel_spacing)
    if ps.shape != (2,) or np.any(ps <= 0):
        raise ValueError("pixel_spacing must be two positive numbers")
    thickness_str = _ds(slice_spacing)

    # --- slice positions, as written ---------------------------------------------------------
    if positions is None:
        ideal = np.asarray(origin, dtype=np.float64).reshape(1, 3) + (
            np.arange(n_slices, dtype=np.float64)[:, None] * float(slice_spacing) * normal
        )
    else:
        ideal = np.asarray(positions, dtype=np.float64)
        if ideal.shape != (n_slices, 3):
            raise ValueError(f"positions must have shape ({n_slices}, 3), got {ideal.shape}")
    ipp_str: list[list[str]] = []
    pos = np.empty((n_slices, 3), dtype=np.float64)
    for k in range(n_slices):
        strings, parsed = _ds_list(ideal[k])
        ipp_str.append(strings)
        pos[k] = parsed

    affine = np.eye(4, dtype=np.float64)
    affine[:3, 0] = row_w * ps[1]
    affine[:3, 1] = col_w * ps[0]
    if n_slices > 1:
        affine[:3, 2] = (pos[-1] - pos[0]) / (n_slices - 1)
    else:
        affine[:3, 2] = np.cross(row_w, col_w) * float(thickness_str)
    affine[:3, 3] = pos[0]

    # --- rescale and pixels --------------------------------------------------------------------
    rescale_arr = _parse_rescale(rescale, n_slices)
    slope_str = [_ds(v) for v in rescale_arr[:, 0]]
    icpt_str = [_ds(v) for v in rescale_arr[:, 1]]
    slopes = np.array([float(s) for s in slope_str])
    intercepts = np.array([float(s) for s in icpt_str])
    ideal_values = _ideal_values((x_size, y_size, n_slices), modality, seed)
    stored = np.empty((x_size, y_size, n_slices), dtype=dtype)
    for k in range(n_slices):
        stored[:, :, k] = _to_stored(ideal_values[:, :, k], slopes[k], intercepts[k], dtype)

    # --- identifiers and names ----------------------------------------------------------------
    series_uid = series_instance_uid or pydicom.uid.generate_uid()
    study_uid = study_instance_uid or pydicom.uid.generate_uid()
    for_uid = frame_of_reference_uid or pydicom.uid.generate_uid()
    sop_uids = [pydicom.uid.generate_uid() for _ in range(n_slices)]
    if instance_numbers is None:
        numbers = _instance_numbers(order, n_slices)
    else:
        numbers = [int(n) for n in instance_numbers]
        if len(numbers) != n_slices:
            raise ValueError(f"instance_numbers must have {n_slices} entries")
    if file_names is not None:
        names = [str(n) for n in file_names]
        if len(names) != n_slices or len(set(names)) != n_slices:
            raise ValueError(f"file_names must be {n_slices} distinct names")
    elif shuffle_seed is None:
        names = [f"{prefix}IM{n:04d}" for n in numbers]
        if len(set(names)) != n_slices:
            raise ValueError("duplicate instance numbers need shuffle_seed or file_names")
    else:
        names = _random_names(n_slices, shuffle_seed, series_uid, prefix)
    if shuffle_seed is None:
        write_order = sorted(range(n_slices), key=lambda k: (numbers[k], k))
    else:
        write_order = [int(k) for k in np.random.default_rng(shuffle_seed).permutation(n_slices)]

    extra = dict(extra or {})
    per_slice = dict(per_slice or {})
    for keyword in extra:
        _check_keyword(keyword)
    for keyword, seq in per_slice.items():
        _check_keyword(keyword)
        if len(seq) != n_slices:
            raise ValueError(f"per_slice[{keyword!r}] must have {n_slices} values")

    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in names]
    sop_class = _SOP_CLASSES[modality]
    ckw = dict(compress_kwargs or {})

    for k in write_order:
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = sop_class
        fm.MediaStorageSOPInstanceUID = sop_uids[k]
        fm.TransferSyntaxUID = pydicom.uid.UID(transfer_syntax)
        fm.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        fm.ImplementationVersionName = "DICOMVOL_SYNTH"
        ds = Dataset()
        ds.file_meta = fm
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = list(image_type)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uids[k]
        ds.StudyDate = "20240101"
        ds.SeriesDate = "20240101"
        ds.ContentDate = "20240101"
        ds.StudyTime = "120000"
        ds.SeriesTime = "120000"
        ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = modality
        ds.Manufacturer = MANUFACTURER
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = series_description
        ds.PatientName = "Synthetic^Patient"
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "PHANTOM"
        ds.SliceThickness = thickness_str
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = int(series_number)
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = numbers[k]
        ds.ImagePositionPatient = ipp_str[k]
        ds.ImageOrientationPatient = iop_str
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(pos[k] @ normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = y_size
        ds.Columns = x_size
        ds.PixelSpacing = ps_str
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = pixel_representation
        ds.RescaleIntercept = icpt_str[k]
        ds.RescaleSlope = slope_str[k]
        _modality_attributes(ds, modality, n_slices, k)
        for keyword, value in extra.items():
            _set_or_delete(ds, keyword, value)
        for keyword, seq in per_slice.items():
            _set_or_delete(ds, keyword, seq[k])
        pixels = np.ascontiguousarray(stored[:, :, k].T)
        stored[:, :, k] = _encode_pixels(ds, pixels, transfer_syntax, ckw).T
        ds.save_as(paths[k], enforce_file_format=True, overwrite=False)

    values = stored.astype(np.float64) * slopes[None, None, :] + intercepts[None, None, :]
    return SyntheticSeries(
        paths=tuple(paths),
        values=_readonly(values),
        stored=_readonly(stored),
        affine_lps=_readonly(affine),
        positions=_readonly(pos),
        sop_instance_uids=tuple(sop_uids),
        series_instance_uid=series_uid,
        study_instance_uid=study_uid,
        frame_of_reference_uid=for_uid,
        instance_numbers=tuple(numbers),
        slopes=_readonly(slopes),
        intercepts=_readonly(intercepts),
        row_dir=_readonly(row_w),
        col_dir=_readonly(col_w),
        pixel_spacing=(float(ps[0]), float(ps[1])),
        modality=modality,
        transfer_syntax=str(pydicom.uid.UID(transfer_syntax)),
    )


# --------------------------------------------------------------------------------------------
# Localizer and broken files
# --------------------------------------------------------------------------------------------


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


def write_non_dicom(folder: str | Path, name: str = "NOTDICOM") -> Path:
    """Write a plain text file without extension (not DICOM) into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing).
    name : str, optional
        File name.

    Returns
    -------
    Path
        The file written.
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(
        "This is not a DICOM file.\nIt was written by dicomvol.synthetic as a distractor.\n",
        encoding="ascii",
    )
    return path


def _pixel_data_offset(path: Path) -> int:
    """Byte offset of the Pixel Data element's tag in a Part-10 file."""
    with path.open("rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        # stop_before_pixels leaves the file positioned at the Pixel Data tag.
        offset = fh.tell()
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        raise ValueError(f"{path} is deflated: its pixel data has no file offset to cut at")
    if offset <= 132 or offset >= path.stat().st_size:
        raise ValueError(f"could not locate Pixel Data in {path}")
    return offset


def write_truncated(path_of_valid_file: str | Path, dest: str | Path) -> Path:
    """Copy a valid DICOM file, cut in the middle of its pixel data.

    The header stays readable (``dcmread(..., stop_before_pixels=True)`` works) but the pixels
    cannot be decoded.

    Parameters
    ----------
    path_of_valid_file : str or Path
        A Part-10 file with Pixel Data as its last element (as written by this module), in any
        transfer syntax except Deflated Explicit VR Little Endian (``ValueError``). For
        encapsulated (compressed) data pydicom drops the incomplete Pixel Data element, so
        ``pixel_array`` raises ``AttributeError``; for native data it raises ``ValueError``.
    dest : str or Path
        Destination file (its folder is created if missing).

    Returns
    -------
    Path
        ``dest``.
    """
    src = Path(path_of_valid_file)
    data = src.read_bytes()
    start = _pixel_data_offset(src)
    cut = start + 12 + (len(data) - start - 12) // 2
    cut -= cut % 2
    if cut <= start + 12:
        raise ValueError(f"pixel data of {src} is too small to truncate")
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[:cut])
    return out


def write_header_garbage(dest: str | Path) -> Path:
    """Write a file with a DICOM preamble and ``DICM`` prefix followed by garbage.

    After the prefix comes a well-formed File Meta group that declares Deflated Explicit VR
    Little Endian, then bytes that are not a valid deflate stream (the first block header uses
    the reserved block type), so ``pydicom.dcmread`` raises (``zlib.error``) even with
    ``stop_before_pixels=True`` or ``force=True``.

    Parameters
    ----------
    dest : str or Path
        Destination file (its folder is created if missing).

    Returns
    -------
    Path
        ``dest``.
    """
    uid = str(pydicom.uid.DeflatedExplicitVRLittleEndian).encode("ascii")
    uid += b"\x00" * (len(uid) % 2)
    ts_element = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(uid)) + uid
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(ts_element))
    # 0xFF: BFINAL = 1 and BTYPE = 11 (reserved) -> "invalid block type" for any decoder.
    garbage = b"\xff" + np.random.default_rng(12345).bytes(511)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"\x00" * 128 + b"DICM" + group_length + ts_element + garbage)
    return out


# --------------------------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------------------------


def write_demo_study(folder: str | Path) -> list[SyntheticSeries]:
    """Write the demo study: an oblique CT series and a small axial MR series.

    The CT series has 64 x 64 x 24 voxels, orientation rotated 20 degrees about (1, 1, 0),
    per-slice rescale slopes and intercepts, descending InstanceNumber and shuffled random file
    names. The MR series (32 x 28 x 10, axial, ascending, also shuffled) is in the same study and
    the same folder, with a different series UID and frame of reference.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing); both series are written into it.

    Returns
    -------
    list of SyntheticSeries
        ``[ct, mr]``.
    """
    study_uid = pydicom.uid.generate_uid()
    n_ct = 24
    row_dir, col_dir = oblique_directions(20.0, (1.0, 1.0, 0.0))
    ct_rescale = [(0.5 + 0.25 * (k % 4), -1024.0 + 8.0 * (k % 3)) for k in range(n_ct)]
    ct = write_series(
        folder,
        shape=(64, 64, n_ct),
        pixel_spacing=(0.9, 0.9),
        slice_spacing=3.0,
        row_dir=row_dir,
        col_dir=col_dir,
        origin=(-28.8, -28.8, -36.0),
        modality="CT",
        rescale=ct_rescale,
        order="descending",
        shuffle_seed=2024,
        study_instance_uid=study_uid,
        series_number=2,
        series_description="demo oblique CT",
        image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
        seed=7,
    )
    mr = write_series(
        folder,
        shape=(32, 28, 10),
        pixel_spacing=(1.5, 1.25),
        slice_spacing=4.0,
        row_dir=(1.0, 0.0, 0.0),
        col_dir=(0.0, 1.0, 0.0),
        origin=(-20.0, -17.5, -18.0),
        modality="MR",
        rescale=(1.0, 0.0),
        order="ascending",
        shuffle_seed=2025,
        study_instance_uid=study_uid,
        series_number=3,
        series_description="demo axial MR",
        image_type=("ORIGINAL", "PRIMARY", "M", "ND"),
        seed=8,
    )
    return [ct, mr]

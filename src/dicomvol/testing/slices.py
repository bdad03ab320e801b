"""Building blocks of synthetic slices: pixel content, DS-exact geometry, names, data sets.

Used by :mod:`dicomvol.testing.series`; every number is returned exactly as
written to the files, so tests can compare against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset

from dicomvol.testing.geometry import ds_list, ds_text, unit_vector

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

MANUFACTURER = "dicomvol-synthetic"

SOP_CLASSES: dict[str, pydicom.uid.UID] = {
    "CT": pydicom.uid.CTImageStorage,
    "MR": pydicom.uid.MRImageStorage,
    "PT": pydicom.uid.PositronEmissionTomographyImageStorage,
}

# Range of the modality values (after rescale) that the synthetic content spans.
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "CT": (-1000.0, 2000.0),
    "MR": (0.0, 1500.0),
    "PT": (0.0, 8000.0),
}

ORDERS = ("ascending", "descending", "interleaved")

NATIVE_SYNTAXES = (
    pydicom.uid.ExplicitVRLittleEndian,
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.DeflatedExplicitVRLittleEndian,
    pydicom.uid.ExplicitVRBigEndian,
)

J2K_SYNTAXES = (pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEG2000)



# --------------------------------------------------------------------------------------------
# Pixel content
# --------------------------------------------------------------------------------------------


def ideal_values(shape: tuple[int, int, int], modality: str, seed: int) -> FloatArray:
    """Deterministic smooth-plus-noise modality values, shape (X, Y, Z), indexed [i, j, k].

    A gradient that differs in i and j (so transposition and flips change the data), a per-slice
    offset (so slice order is visible in the mean) and noise (so every slice is unique).
    """
    x, y, z = shape
    lo, hi = VALUE_RANGES[modality]
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


def to_stored(
    values: FloatArray, slope: float, intercept: float, dtype: np.dtype[Any]
) -> IntArray:
    info = np.iinfo(dtype)
    raw = np.rint((values - intercept) / slope)
    out: IntArray = np.clip(raw, info.min, info.max).astype(dtype)
    return out


# --------------------------------------------------------------------------------------------
# Dataset construction
# --------------------------------------------------------------------------------------------


def check_keyword(keyword: str) -> None:
    if tag_for_keyword(keyword) is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword")


def set_or_delete(ds: Dataset, keyword: str, value: Any) -> None:
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)


def modality_attributes(ds: Dataset, modality: str, n_slices: int, k: int) -> None:
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


def encode_pixels(
    ds: Dataset,
    pixels: IntArray,
    transfer_syntax: str,
    compress_kwargs: Mapping[str, Any],
) -> IntArray:
    """Attach (Rows, Columns) ``pixels`` to ``ds``; return the stored values a reader will see."""
    uid = pydicom.uid.UID(transfer_syntax)
    ds.file_meta.TransferSyntaxUID = uid
    if uid in NATIVE_SYNTAXES:
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
    if uid in J2K_SYNTAXES and min(pixels.shape) < 32:
        # pylibjpeg-openjpeg always uses 6 DWT resolutions, which needs >= 32 pixels per side.
        raise ValueError(f"{uid.name} needs Rows and Columns >= 32, got {pixels.shape}")
    ds.compress(
        uid, arr=np.ascontiguousarray(pixels), generate_instance_uid=False, **dict(compress_kwargs)
    )
    ds.file_meta.TransferSyntaxUID = uid
    # Lossy syntaxes change the pixels: report what a reader decodes.
    decoded: IntArray = np.asarray(ds.pixel_array).astype(pixels.dtype)
    return decoded


def parse_rescale(
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


def instance_numbers_for(order: str, n_slices: int) -> list[int]:
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
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS}")


def random_names(n: int, shuffle_seed: int, series_uid: str, prefix: str) -> list[str]:
    digest = int.from_bytes(hashlib.sha256(series_uid.encode()).digest()[:8], "little")
    rng = np.random.default_rng([shuffle_seed, digest])
    names: list[str] = []
    while len(names) < n:
        name = prefix + rng.bytes(8).hex().upper()
        if name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class SliceGrid:
    """The geometry of a synthetic series as written (DS strings) and as parsed back."""

    iop_str: list[str]
    row: FloatArray
    col: FloatArray
    normal: FloatArray
    ps_str: list[str]
    ps: FloatArray
    thickness_str: str
    ipp_str: list[list[str]]
    positions: FloatArray
    affine: FloatArray


def slice_grid(row_dir: Sequence[float], col_dir: Sequence[float],
          pixel_spacing: tuple[float, float], slice_spacing: float, origin: Sequence[float],
          positions: Sequence[Sequence[float]] | None, n_slices: int) -> SliceGrid:
    """Orientation, spacing and slice positions as written, and the affine they imply."""
    row_u = unit_vector(row_dir, "row_dir")
    col_u = unit_vector(col_dir, "col_dir")
    if abs(float(row_u @ col_u)) > 1e-6:
        raise ValueError("row_dir and col_dir must be orthogonal")
    iop_str, iop = ds_list(np.concatenate([row_u, col_u]))
    row_w, col_w = iop[:3].copy(), iop[3:].copy()
    normal = np.cross(row_u, col_u)
    ps_str, ps = ds_list(pixel_spacing)
    if ps.shape != (2,) or np.any(ps <= 0):
        raise ValueError("pixel_spacing must be two positive numbers")
    thickness_str = ds_text(slice_spacing)
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
        strings, parsed = ds_list(ideal[k])
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
    return SliceGrid(iop_str, row_w, col_w, normal, ps_str, ps, thickness_str, ipp_str, pos, affine)


def naming(n_slices: int, order: str, instance_numbers: Sequence[int] | None,
            file_names: Sequence[str] | None, shuffle_seed: int | None, series_uid: str,
            prefix: str) -> tuple[list[int], list[str], list[int]]:
    """InstanceNumbers, file names and write order of the slices."""
    if instance_numbers is None:
        numbers = instance_numbers_for(order, n_slices)
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
        names = random_names(n_slices, shuffle_seed, series_uid, prefix)
    if shuffle_seed is None:
        write_order = sorted(range(n_slices), key=lambda k: (numbers[k], k))
    else:
        write_order = [int(k) for k in np.random.default_rng(shuffle_seed).permutation(n_slices)]
    return numbers, names, write_order


def slice_dataset(sop_class: pydicom.uid.UID, sop_uid: str, transfer_syntax: str) -> Dataset:
    """A slice's data set with the attributes every synthetic slice shares."""
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    fm.TransferSyntaxUID = pydicom.uid.UID(transfer_syntax)
    fm.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    fm.ImplementationVersionName = "DICOMVOL_SYNTH"
    ds = Dataset()
    ds.file_meta = fm
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240101"
    ds.SeriesDate = "20240101"
    ds.ContentDate = "20240101"
    ds.StudyTime = "120000"
    ds.SeriesTime = "120000"
    ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Manufacturer = MANUFACTURER
    ds.ReferringPhysicianName = ""
    ds.PatientName = "Synthetic^Patient"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "PHANTOM"
    ds.StudyID = "1"
    ds.AcquisitionNumber = 1
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds

"""NRRD and MetaImage (``.mha``) writers, and conversion to a ``SimpleITK.Image``.

All three keep dicomvol's voxel axes (i = column, j = row, k = slice, t =
volume) and its DICOM patient space (LPS, mm), which is also the native space
of NRRD (``space: left-posterior-superior``) and of ITK / MetaImage; only the
NIfTI writer (:mod:`dicomvol.io.nifti`) converts to RAS. Every writer describes
the same world grid: the NIfTI affine equals ``diag(-1, -1, 1, 1)`` times the
affine rebuilt from the NRRD or MetaImage header.

Modality values
    NRRD and MetaImage have no standard field for a linear rescale, so the
    stored numbers are the modality values themselves (see
    :func:`stored_values`): the raw ``data`` when ``scl_slope, scl_inter`` are
    ``1, 0``; otherwise the rescaled values as ``int16`` (or ``int32``) when
    they are all integers in range (the usual CT case, slope 1 and intercept
    -1024); otherwise ``float32`` when it is lossless (from ``float32`` values
    the raw integers are recovered exactly by ``round((v - inter) / slope)``,
    or, for float raw data, ``float32`` holds the values exactly); otherwise
    ``float64``. No stored value is ever rounded beyond recovery.

Geometry
    ``spacing`` is the column norms of the affine's 3x3 part, the direction
    cosines are its normalised columns and the origin is its last column.
    ITK (and so SimpleITK, Slicer, ...) requires an orthonormal direction
    matrix, so a sheared (gantry-tilted) volume, or one whose direction
    cosines are not orthonormal within :data:`ORTHONORMAL_TOL`, raises
    :class:`~dicomvol.errors.UsageError`: write it as NIfTI, whose sform holds
    any affine, or resample it first.

MetaImage ``TransformMatrix``
    Written column by column: the first three numbers are the direction of
    axis i, the next three that of axis j, then k (so for a direction matrix
    ``D`` whose columns are the axis directions, ``D.flatten(order="F")``).
    This is what ITK writes and reads back as ``GetDirection() == D``.

Files are written atomically: to a temporary file in the destination folder,
then renamed over the destination with :func:`os.replace`.
"""

from __future__ import annotations

import itertools
import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from dicomvol.errors import UsageError
from dicomvol.io.atomic import atomic_path
from dicomvol.model.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK

log = logging.getLogger(__name__)

#: Compression level for gzip (NRRD) and zlib (MetaImage) data, as for ``.nii.gz``.
COMPRESSION_LEVEL = 6
#: Largest ``|D^T D - I|`` entry accepted for the direction cosines ``D``.
ORTHONORMAL_TOL = 1e-4
#: The message of the error raised for sheared volumes.
SHEARED_MESSAGE = ("sheared (gantry-tilted) volumes can only be written as NIfTI, "
                   "or resample them")
#: Bytes per chunk when writing or compressing MetaImage data.
_CHUNK_BYTES = 1 << 24

#: MetaImage element type per (numpy kind, item size).
_MET_TYPES: dict[tuple[str, int], str] = {
    ("i", 1): "MET_CHAR", ("u", 1): "MET_UCHAR",
    ("i", 2): "MET_SHORT", ("u", 2): "MET_USHORT",
    ("i", 4): "MET_INT", ("u", 4): "MET_UINT",
    ("i", 8): "MET_LONG_LONG", ("u", 8): "MET_ULONG_LONG",
    ("f", 4): "MET_FLOAT", ("f", 8): "MET_DOUBLE",
}
#: MetaImage orientation letters for an axis along +x, +y, +z of LPS and along -x, -y, -z.
#: MetaImage names the side an axis comes *from*: LPS is ``RAI``.
_MET_FROM = ("RAI", "LPS")


def stored_values(volume: Volume) -> np.ndarray:
    """The array NRRD, MetaImage and SimpleITK receive: modality values, losslessly.

    Parameters
    ----------
    volume : Volume
        The source volume.

    Returns
    -------
    ndarray of shape (X, Y, Z[, T])
        ``volume.data`` itself when unscaled (booleans as ``uint8``); otherwise
        ``volume.values`` as ``int16`` or ``int32`` when they are all integers
        that fit, else as ``float32`` when no information is lost, else as
        ``float64``. Fortran-ordered when a new array is made.

    Raises
    ------
    UsageError
        If the data are not real numbers (complex, structured, object, ...).
    """
    data = volume.data
    if data.dtype == np.bool_:
        return data.astype(np.uint8, order="F")
    if data.dtype.kind not in "iuf":
        raise UsageError(f"cannot write {data.dtype} voxel data as NRRD or MetaImage")
    slope, inter = float(volume.scl_slope), float(volume.scl_inter)
    if slope == 1.0 and inter == 0.0:
        return data
    values = np.asarray(volume.values, dtype=np.float64)
    if values.size and np.isfinite(values).all() and np.array_equal(np.rint(values), values):
        lo, hi = values.min(), values.max()
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                log.debug("rescaled values are %s integers", np.dtype(dtype).name)
                return values.astype(dtype, order="F")
    as_f32 = values.astype(np.float32, order="F")
    if data.dtype.kind in "iu" and slope != 0.0:
        recovered = np.rint((as_f32.astype(np.float64) - inter) / slope)
        lossless = np.array_equal(recovered, data)
    else:
        lossless = np.array_equal(as_f32, values, equal_nan=True)
    if lossless:
        log.debug("rescaled values stored as float32")
        return as_f32
    log.debug("float32 would lose information: rescaled values stored as float64")
    return np.asfortranarray(values)


def grid(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spacing, direction cosines and origin of a volume that ITK can represent.

    Parameters
    ----------
    volume : Volume
        The source volume.

    Returns
    -------
    spacing : ndarray of shape (3,)
        Voxel step lengths (mm) along i, j, k: the affine's column norms.
    direction : ndarray of shape (3, 3)
        Column c is the unit LPS direction of voxel axis c.
    origin : ndarray of shape (3,)
        LPS position (mm) of voxel (0, 0, 0).

    Raises
    ------
    UsageError
        If the volume is sheared, its direction cosines are not orthonormal, a
        spacing is zero, or the data are not 3D or 4D.
    """
    if volume.data.ndim not in (3, 4):
        raise UsageError(f"expected 3D or 4D voxel data, got shape {volume.data.shape}")
    affine = np.asarray(volume.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise UsageError("the volume's affine is not a finite 4x4 matrix")
    if volume.sheared:
        raise UsageError(SHEARED_MESSAGE)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if (spacing == 0).any():
        raise UsageError(f"zero voxel spacing in affine: {spacing.tolist()}")
    direction = affine[:3, :3] / spacing
    if np.abs(direction.T @ direction - np.eye(3)).max() > ORTHONORMAL_TOL:
        raise UsageError(SHEARED_MESSAGE)
    return spacing, direction, affine[:3, 3].copy()


# --------------------------------------------------------------------------- NRRD


def write_nrrd(volume: Volume, path: str | os.PathLike[str], compress: bool = True) -> None:
    """Write ``volume`` as a single-file NRRD (``.nrrd``) in LPS space.

    The header has ``space: left-posterior-superior``, ``space directions``
    (the affine's columns 0..2, one vector per voxel axis), ``space origin``
    (column 3), ``space units`` mm and ``kinds`` domain, domain, domain; a 4D
    volume gets a fourth axis of kind ``list`` with direction ``none``. Data
    are written with i fastest (pynrrd ``index_order="F"``), so
    ``nrrd.read(path, index_order="F")`` returns them indexed [i, j, k(, t)].
    The stored numbers are :func:`stored_values`.

    Parameters
    ----------
    volume : Volume
        The volume to write.
    path : str or os.PathLike
        Destination file; replaced atomically if it exists.
    compress : bool, optional
        ``encoding: gzip`` when True, ``raw`` when False.

    Raises
    ------
    UsageError
        If the volume is sheared or otherwise not representable (see :func:`grid`).
    """
    import nrrd

    spacing, direction, origin = grid(volume)
    data = stored_values(volume)
    vectors = (direction * spacing).T  # row c = LPS step of voxel axis c = affine column c
    kinds = ["domain", "domain", "domain"]
    if data.ndim == 4:
        vectors = np.vstack([vectors, np.full((1, 3), np.nan)])
        kinds.append("list")
    header = {
        "space": "left-posterior-superior",
        "space directions": vectors,
        "space origin": origin,
        "space units": ["mm", "mm", "mm"],
        "kinds": kinds,
        "encoding": "gzip" if compress else "raw",
    }
    modality = str(volume.metadata.get("Modality", "")).strip()
    header["content"] = f"dicomvol {modality}".strip()
    with _atomic_open(Path(path)) as fp:
        nrrd.write(fp, data, header, compression_level=COMPRESSION_LEVEL, index_order="F")
    log.debug("wrote NRRD %s: %s %s", path, data.dtype, data.shape)


# ---------------------------------------------------------------------- MetaImage


def write_mha(volume: Volume, path: str | os.PathLike[str], compress: bool = True) -> None:
    """Write ``volume`` as a single-file MetaImage (``.mha``) in LPS space.

    The text header has ``ElementSpacing`` (the affine's column norms),
    ``Offset`` (the origin), ``TransformMatrix`` (the direction cosines,
    column by column: axis i's unit vector first), ``AnatomicalOrientation``
    (MetaImage's "from" letters; ``RAI`` for axes along +L, +P, +S),
    little-endian data (``BinaryDataByteOrderMSB = False``) following the
    header (``ElementDataFile = LOCAL``), zlib-compressed with
    ``CompressedDataSize`` when ``compress``. A 4D volume has ``NDims = 4``,
    spacing 1 and offset 0 along t. The stored numbers are
    :func:`stored_values`. SimpleITK is not needed.

    Parameters
    ----------
    volume : Volume
        The volume to write.
    path : str or os.PathLike
        Destination file; replaced atomically if it exists.
    compress : bool, optional
        zlib-compress the voxel data.

    Raises
    ------
    UsageError
        If the volume is sheared or otherwise not representable (see :func:`grid`),
        or its data type has no MetaImage element type.
    """
    spacing, direction, origin = grid(volume)
    data = stored_values(volume)
    little = data.dtype.newbyteorder("<")
    if data.dtype != little:
        data = data.astype(little, order="F")
    element_type = _MET_TYPES.get((data.dtype.kind, data.dtype.itemsize))
    if element_type is None:
        raise UsageError(f"no MetaImage element type for {data.dtype}")

    chunks: list[bytes | memoryview] = list(_fortran_chunks(data))
    compressed_size: int | None = None
    if compress:
        zc = zlib.compressobj(COMPRESSION_LEVEL)
        packed = [zc.compress(c) for c in chunks]
        packed.append(zc.flush())
        chunks = [p for p in packed if p]
        compressed_size = sum(len(p) for p in chunks)

    header = _mha_header(data.shape, element_type, spacing, direction, origin, compressed_size)
    with _atomic_open(Path(path)) as fp:
        fp.write(header)
        for chunk in chunks:
            fp.write(chunk)
    log.debug("wrote MetaImage %s: %s %s", path, element_type, data.shape)


def _mha_header(shape: tuple[int, ...], element_type: str, spacing: np.ndarray,
                direction: np.ndarray, origin: np.ndarray, compressed_size: int | None) -> bytes:
    """The MetaImage text header, in the field order ITK writes, ending with ``LOCAL``."""
    ndim = len(shape)
    matrix = np.eye(ndim)
    matrix[:3, :3] = direction
    extra = [0.0] * (ndim - 3)
    orientation = anatomical_orientation(direction) + "?" * (ndim - 3)
    lines = [
        ("ObjectType", "Image"),
        ("NDims", str(ndim)),
        ("BinaryData", "True"),
        ("BinaryDataByteOrderMSB", "False"),
        ("CompressedData", "True" if compressed_size is not None else "False"),
    ]
    if compressed_size is not None:
        lines.append(("CompressedDataSize", str(compressed_size)))
    lines += [
        ("TransformMatrix", _numbers(matrix.flatten(order="F"))),  # column by column
        ("Offset", _numbers([*origin, *extra])),
        ("CenterOfRotation", _numbers([0.0] * ndim)),
        ("AnatomicalOrientation", orientation),
        ("ElementSpacing", _numbers([*spacing, *([1.0] * (ndim - 3))])),
        ("DimSize", " ".join(str(int(n)) for n in shape)),
        ("ElementType", element_type),
        ("ElementDataFile", "LOCAL"),
    ]
    return "".join(f"{key} = {value}\n" for key, value in lines).encode("ascii")


def anatomical_orientation(direction: np.ndarray) -> str:
    """MetaImage's ``AnatomicalOrientation`` code for LPS direction cosines.

    Each voxel axis is matched to the patient axis it is closest to (one
    patient axis per voxel axis) and named, as MetaImage and ITK do, by the
    side it comes *from*: an axis along +L is ``R``, along -L is ``L``, and
    so on, so the identity direction is ``RAI``.

    Parameters
    ----------
    direction : ndarray of shape (3, 3)
        Column c is the unit LPS direction of voxel axis c.

    Returns
    -------
    str
        Three letters, e.g. ``"RAI"``.
    """
    best = max(itertools.permutations(range(3)),
               key=lambda perm: sum(abs(direction[perm[c], c]) for c in range(3)))
    return "".join(_MET_FROM[0 if direction[best[c], c] >= 0 else 1][best[c]]
                   for c in range(3))


def _numbers(values: np.ndarray | list[float]) -> str:
    """Space-separated shortest round-trip representations (``-0`` as ``0``)."""
    return " ".join(repr(float(v) + 0.0) for v in values)


def _fortran_chunks(data: np.ndarray) -> Iterator[memoryview]:
    """The bytes of ``data`` in Fortran order (i fastest), in chunks, without a full copy."""
    if not data.flags.f_contiguous:
        data = np.asfortranarray(data)
    flat = data.T.reshape(-1)  # a view: the F-order elements as a C-order vector
    step = max(1, _CHUNK_BYTES // max(1, flat.itemsize))
    for start in range(0, flat.size, step):
        yield flat[start:start + step].data.cast("B")


# ---------------------------------------------------------------------- SimpleITK


def to_simpleitk(volume: Volume) -> SimpleITK.Image:
    """The volume as a ``SimpleITK.Image`` (ITK is LPS natively; no axis flips).

    The pixel array is :func:`stored_values` (so the image equals what
    :func:`write_mha` stores); spacing, origin and direction come from the
    affine as in :func:`grid`. A 4D volume gives a 4D image with spacing 1
    and origin 0 along t.

    Parameters
    ----------
    volume : Volume
        The source volume.

    Returns
    -------
    SimpleITK.Image
        Indexed ``image[i, j, k(, t)]``; ``GetArrayFromImage`` gives (Z, Y, X).

    Raises
    ------
    UsageError
        If SimpleITK is not installed, or the volume is sheared or otherwise
        not representable (see :func:`grid`).
    """
    try:
        import SimpleITK as sitk
    except ImportError as exc:
        raise UsageError("to_simpleitk needs SimpleITK: pip install SimpleITK "
                         "(or pip install dicomvol[sitk])") from exc
    spacing, direction, origin = grid(volume)
    data = stored_values(volume)
    ndim = data.ndim
    matrix = np.eye(ndim)
    matrix[:3, :3] = direction
    image = sitk.GetImageFromArray(data.T, isVector=False)
    setters: Any = image  # SimpleITK's setters are untyped
    setters.SetSpacing([float(s) for s in (*spacing, *([1.0] * (ndim - 3)))])
    setters.SetOrigin([float(o) for o in (*origin, *([0.0] * (ndim - 3)))])
    setters.SetDirection([float(d) for d in matrix.flatten()])  # ITK: row-major
    return image


# ----------------------------------------------------------------------- helpers


@contextmanager
def _atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fp:
        yield fp

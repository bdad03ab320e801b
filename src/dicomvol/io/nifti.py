"""NIfTI-1 writer: the only place where RAS appears.

DICOM LPS becomes NIfTI RAS by ``diag(-1, -1, 1)``; the voxel axes are kept
as they are (i = column, j = row, k = slice), so the array is written
unchanged, in Fortran order, without a copy when it is already Fortran-ordered.
The affine goes to the sform (code 1, scanner) and, unless sheared, to the
qform as well. Units are mm (and s for 4D).

A header is described by a :class:`NiftiSpec` (shape, dtype, affine, scaling,
time step), built from a :class:`~dicomvol.model.volume.Volume` or, for the
streaming writer, from a plan's pixel-free grid.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from dicomvol._typing import AffineRows
from dicomvol.constants import LPS_TO_RAS as _LPS_TO_RAS
from dicomvol.io.atomic import atomic_path
from dicomvol.model.geometry import column_norms, det3, rows_of
from dicomvol.model.volume import Volume
from dicomvol.pixels.decode import dtype_of

if TYPE_CHECKING:  # pragma: no cover
    import nibabel as nib
    import numpy as np

#: ISA-L (igzip) level for .nii.gz: level 2 compresses CT within ~3 % of zlib level 6
#: at ~25x the speed (measured on the corpus lung CT, 70 MB: 0.4 s vs 9.9 s).
IGZIP_LEVEL = 2
#: zlib level when python-isal is unavailable.
ZLIB_LEVEL = 1
#: NIfTI-1 data offset (348-byte header + 4-byte extension flag).
VOX_OFFSET = 352
#: Buffer of an uncompressed output (a streamed volume is written slice by slice: few
#: system calls for many small slices; a slice larger than the buffer is written through).
#: 256 KiB: 32 slices of 64x64 int16 per call; 4 MiB cost a job 3.6 MiB of peak RSS
#: (study30 -j 1: 42.9 -> 39.3 MiB) for no measurable gain in time.
_WRITE_BUFFER = 1 << 18
#: What a 4D volume's 4th axis may order for pixdim[4] to be the RepetitionTime (diffusion
#: volumes too: one per TR, as dcm2niix writes them).
TEMPORAL_AXES = frozenset({"temporal position", "acquisition number", "acquisition time",
                           "trigger time", "instance number", "diffusion"})


@dataclass(frozen=True, eq=False)
class NiftiSpec:
    """Everything a NIfTI header says about an image.

    Attributes
    ----------
    shape : tuple (X, Y, Z) or (X, Y, Z, T)
    dtype : numpy dtype, or its type string ("i2", "u2", "f4", ...; "rgb24"), of the
        stored voxels
    affine : ndarray of shape (4, 4) or its four rows, LPS (converted to RAS here)
    sheared : bool
        qform left unset (it cannot hold a shear), zooms from the column norms.
    scl_slope, scl_inter : float
    time_step : float
        pixdim[4] of a 4D image (s): RepetitionTime for a time series, else 1.
    description : str
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any] | str
    affine: np.ndarray | AffineRows
    sheared: bool
    scl_slope: float = 1.0
    scl_inter: float = 0.0
    time_step: float = 1.0
    description: str = "dicomvol"

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """:attr:`dtype` as a numpy dtype."""
        return dtype_of(self.dtype) if isinstance(self.dtype, str) else self.dtype

    @property
    def affine_array(self) -> np.ndarray:
        """:attr:`affine` (LPS) as a (4, 4) float64 ndarray."""
        import numpy as np

        return np.asarray(self.affine, dtype=np.float64)


def time_step(fourth_dimension: str | None, metadata: dict[str, Any]) -> float:
    """pixdim[4] of a 4D volume: RepetitionTime (s) for a temporal series, else 1."""
    tr = metadata.get("RepetitionTime")
    if fourth_dimension in TEMPORAL_AXES and isinstance(tr, (int, float)) and tr > 0:
        return float(tr)
    return 1.0


def spec_for(volume: Volume) -> NiftiSpec:
    """The header description of an in-memory volume."""
    fourth = volume.plan.detail.fourth_dimension if volume.plan is not None else None
    return NiftiSpec(
        shape=tuple(volume.data.shape), dtype=volume.data.dtype, affine=volume.affine,
        sheared=volume.sheared, scl_slope=volume.scl_slope, scl_inter=volume.scl_inter,
        time_step=time_step(fourth, volume.metadata),
        description=describe(volume.metadata))


def describe(metadata: dict[str, Any]) -> str:
    """The header's ``descrip``: ``dicomvol`` and the modality."""
    return f"dicomvol {metadata.get('Modality', '')}".strip()


def ras_affine(affine_lps: np.ndarray) -> np.ndarray:
    """An LPS affine in RAS, shape (4, 4)."""
    import numpy as np

    ras: np.ndarray = np.array(_LPS_TO_RAS) @ affine_lps
    return ras


def lps_affine(affine_ras: np.ndarray) -> np.ndarray:
    """A RAS affine (as NIfTI stores it) in LPS, shape (4, 4)."""
    import numpy as np

    # LPS_TO_RAS is its own inverse
    lps: np.ndarray = np.array(_LPS_TO_RAS) @ np.asarray(affine_ras, dtype=np.float64)
    return lps


#: numpy dtype -> NIfTI-1 datatype code (nifti1.h ``NIFTI_TYPE_*``; the bit count is the
#: item size). Other dtypes (e.g. structured RGB) are described by nibabel.
NIFTI_DATATYPES = {"u1": 2, "i2": 4, "i4": 8, "f4": 16, "c8": 32, "f8": 64, "i1": 256,
                   "u2": 512, "u4": 768, "i8": 1024, "u8": 1280, "c16": 1792}
#: The 348-byte NIfTI-1 header (nifti1.h ``nifti_1_header``), little-endian: sizeof_hdr,
#: data_type, db_name, extents, session_error, regular, dim_info, dim[8], intent_p1..3,
#: intent_code, datatype, bitpix, slice_start, pixdim[8], vox_offset, scl_slope, scl_inter,
#: slice_end, slice_code, xyzt_units, cal_max, cal_min, slice_duration, toffset, glmax,
#: glmin, descrip, aux_file, qform_code, sform_code, quatern_b..d, qoffset_x..z,
#: srow_x/y/z[4], intent_name, magic.
_HEADER = struct.Struct("<i10s18sihcc8h3fhhhh8f3fhBB4fii80s24shh6f12f16s4s")
#: xyzt_units: NIFTI_UNITS_MM | NIFTI_UNITS_SEC.
_MM_SEC = 2 | 8
#: dim[i] is a signed 16-bit integer.
_MAX_DIM = 32767


def header_block(spec: NiftiSpec) -> bytes:
    """The 348-byte NIfTI-1 header describing ``spec`` (dtype, shape, affine, scaling, units).

    Packed directly (no nibabel import on the conversion path) with the values
    nibabel's ``Nifti1Header`` would hold after ``set_data_dtype``,
    ``set_data_shape``, ``set_sform(code=1)``, ``set_qform(code=1)`` (or code 0 for
    a sheared grid) and ``set_zooms``: the same bytes (tested). Shapes and dtypes
    outside plain NIfTI-1 (a dimension over 32,767, a structured dtype) are
    described by nibabel itself.
    """
    key, itemsize = _type_key(spec.dtype)
    code = NIFTI_DATATYPES.get(key)
    if code is None or not 1 <= len(spec.shape) <= 7 \
            or any(not 0 < n <= _MAX_DIM for n in spec.shape):  # (a structured dtype: "V")
        return bytes(_nibabel_header(spec).binaryblock)
    dim = [len(spec.shape), *spec.shape] + [1] * (7 - len(spec.shape))
    pixdim = [1.0] * 8
    affine = _ras_rows(spec.affine)
    quatern = (0.0, 0.0, 0.0)
    qoffset = (0.0, 0.0, 0.0)
    extra = [spec.time_step] * (len(spec.shape) - 3)
    if spec.sheared:
        qform_code = 0
        zooms = [*column_norms(spec.affine), *extra]
    else:
        qform_code = 1
        qfac, qzooms, quatern, qoffset = _qform(affine)
        pixdim[0] = qfac
        zooms = qzooms + extra[:1]
    pixdim[1:1 + len(zooms)] = zooms
    srows = [v for row in affine[:3] for v in row]
    return _HEADER.pack(
        348, b"", b"", 0, 0, b"\0", b"\0", *dim, 0.0, 0.0, 0.0, 0, code, 8 * itemsize,
        0, *pixdim, float(VOX_OFFSET), spec.scl_slope, spec.scl_inter, 0, 0, _MM_SEC,
        0.0, 0.0, 0.0, 0.0, 0, 0, spec.description.encode()[:79], b"", qform_code, 1,
        *quatern, *qoffset, *srows, b"", b"n+1\0")


def _type_key(dtype: Any) -> tuple[str, int]:
    """(kind + item size, as in :data:`NIFTI_DATATYPES`; item size) of a numpy dtype or of
    a type string, without numpy for the strings the streaming writer passes."""
    if isinstance(dtype, str):
        if dtype == "rgb24":
            return "V3", 3
        name = dtype.lstrip("<=|")
        if name in NIFTI_DATATYPES:
            return name, int(name[1:])
        dtype = dtype_of(dtype)  # "float32", ">i2", ...: numpy says
    return f"{dtype.kind}{dtype.itemsize}", int(dtype.itemsize)


def _ras_rows(affine: Any) -> AffineRows:
    """The RAS rows of an LPS affine (rows or ndarray): x and y negated."""
    rows = rows_of(affine)
    # + 0.0: no negative zeros, as the matrix product LPS_TO_RAS @ affine gives
    return tuple(tuple(s * v + 0.0 for v in row) for s, row in zip((-1.0, -1.0, 1.0, 1.0), rows,
                                                                     strict=True))


def _qform(affine: AffineRows) -> tuple[float, list[float], tuple[float, float, float],
                                        tuple[float, float, float]]:
    """(qfac, zooms, quaternion b c d, offset) of a RAS affine given as four rows.

    nibabel's ``Nifti1Header.set_qform``: the columns' norms are the zooms, the
    nearest rotation (polar decomposition, the last column flipped when the
    determinant is negative) its quaternion (``quaternions.mat2quat``), in plain
    Python: the polar factor by Newton's iteration ``R <- (R + R^-T) / 2``, which
    converges quadratically to the rotation nibabel's SVD gives, and the quaternion
    of that rotation by the branch of Shepperd's method that is best conditioned
    (tested against nibabel on random and near-orthogonal affines).
    """
    zooms = list(column_norms(affine))
    rot = [[affine[r][c] / zooms[c] for c in range(3)] for r in range(3)]
    qfac = 1.0
    if det3(*rot) <= 0:
        qfac = -1.0
        for r in range(3):
            rot[r][2] = -rot[r][2]
    m = _polar(rot)
    _, x, y, z = _quaternion(m)
    t = (affine[0][3], affine[1][3], affine[2][3])
    return qfac, zooms, (x, y, z), t


#: Newton steps of the polar decomposition: from a rotation of DICOM direction cosines
#: (orthogonal to ~1e-6) the error squares each step, so 6 leave it at rounding (1e-16).
_POLAR_STEPS = 6


def _polar(m: list[list[float]]) -> list[list[float]]:
    """The orthogonal polar factor of a 3 x 3 matrix with positive determinant."""
    r = [row[:] for row in m]
    for _ in range(_POLAR_STEPS):
        det = det3(*r)
        if det == 0:
            break
        # R^-T = cofactor(R) / det
        cof = [[(r[(i + 1) % 3][(j + 1) % 3] * r[(i + 2) % 3][(j + 2) % 3]
                 - r[(i + 1) % 3][(j + 2) % 3] * r[(i + 2) % 3][(j + 1) % 3]) / det
                for j in range(3)] for i in range(3)]
        r = [[(r[i][j] + cof[i][j]) / 2.0 for j in range(3)] for i in range(3)]
    return r


def _quaternion(m: list[list[float]]) -> tuple[float, float, float, float]:
    """(w, x, y, z), w >= 0, of a rotation matrix (nibabel ``quat2mat`` of it is ``m``).

    A half turn (w = 0) has two quaternions, q and -q, which NIfTI leaves free (nibabel
    takes whichever sign LAPACK's eigenvector has): the one whose last non-zero
    component is positive, which is LAPACK's for the patient-axis orientations.
    """
    trace = m[0][0] + m[1][1] + m[2][2]
    diag = (m[0][0], m[1][1], m[2][2])
    if trace >= max(diag):
        s = 2.0 * math.sqrt(max(0.0, 1.0 + trace))
        q = (s / 4.0, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s)
    elif diag[0] >= diag[1] and diag[0] >= diag[2]:
        s = 2.0 * math.sqrt(max(0.0, 1.0 + m[0][0] - m[1][1] - m[2][2]))
        q = ((m[2][1] - m[1][2]) / s, s / 4.0, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s)
    elif diag[1] >= diag[2]:
        s = 2.0 * math.sqrt(max(0.0, 1.0 + m[1][1] - m[0][0] - m[2][2]))
        q = ((m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, s / 4.0, (m[1][2] + m[2][1]) / s)
    else:
        s = 2.0 * math.sqrt(max(0.0, 1.0 + m[2][2] - m[0][0] - m[1][1]))
        q = ((m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, s / 4.0)
    if q[0] < 0 or (q[0] == 0 and next((v for v in q[:0:-1] if v != 0), 0.0) < 0):
        q = (-q[0], -q[1], -q[2], -q[3])  # w >= 0; a half turn (w = 0): last non-zero > 0
    return (q[0] + 0.0, q[1] + 0.0, q[2] + 0.0, q[3] + 0.0)  # no negative zeros


def _nibabel_header(spec: NiftiSpec) -> nib.Nifti1Header:
    """``spec`` described by nibabel (the reference :func:`header_block` packs directly)."""
    import nibabel as nib
    import numpy as np

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(spec.numpy_dtype)
    hdr.set_data_shape(spec.shape)
    affine = ras_affine(spec.affine_array)
    hdr.set_sform(affine, code=1)
    if spec.sheared:
        hdr.set_qform(None, code=0)
        zooms = list(np.linalg.norm(spec.affine_array[:3, :3], axis=0))
        hdr.set_zooms(tuple(zooms + [spec.time_step] * (len(spec.shape) - 3)))
    else:
        hdr.set_qform(affine, code=1)
        if len(spec.shape) == 4:
            hdr.set_zooms((*hdr.get_zooms()[:3], spec.time_step))
    hdr.set_xyzt_units("mm", "sec")
    hdr["scl_slope"] = spec.scl_slope
    hdr["scl_inter"] = spec.scl_inter
    hdr["vox_offset"] = VOX_OFFSET
    hdr["descrip"] = spec.description.encode()[:79]
    return hdr


def write_header(spec: NiftiSpec, fp: BinaryIO) -> None:
    """Write the header of ``spec`` and the padding up to VOX_OFFSET (data follows)."""
    block = header_block(spec)
    fp.write(block)
    fp.write(b"\x00" * (VOX_OFFSET - len(block)))


def write_stream(volume: Volume, fp: BinaryIO) -> None:
    """Write header and data of ``volume`` to an open binary stream."""
    import numpy as np

    write_header(spec_for(volume), fp)
    data = volume.data
    if not data.flags.f_contiguous:
        data = np.asfortranarray(data)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"), order="F")
    flat = data.T.reshape(-1)  # a view: the F-order bytes as a C-order vector
    fp.write(flat.data)


def open_output(path: Path, compress: bool, threads: int = 1) -> BinaryIO:
    """A binary stream writing ``path``: gzip (ISA-L igzip, ``threads``) or plain."""
    return gzip_writer(path, threads) if compress else open(path, "wb", buffering=_WRITE_BUFFER)


def write_nifti(volume: Volume, path: str | os.PathLike[str], compress: bool | None = None,
                threads: int = 1) -> None:
    """Write ``volume`` to ``path`` atomically (temporary file, then rename).

    ``.nii.gz`` is compressed with ISA-L's igzip (``threads`` compression
    threads) when python-isal is installed, else with zlib.
    """
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    with atomic_path(path) as tmp, open_output(tmp, compress, threads) as fp:
        write_stream(volume, fp)


def gzip_writer(path: Path, threads: int) -> BinaryIO:
    """A gzip stream writing ``path`` (ISA-L igzip when installed, else zlib).

    One thread (a job among as many as there are cores) compresses in the calling
    thread: igzip's threaded writer would hold ~9 MiB of 1 MiB blocks in flight in
    each worker (the run's peak memory) for no gain in speed.
    """
    try:
        from isal import igzip, igzip_threaded
    except ImportError:  # pragma: no cover - isal is a dependency
        return cast(BinaryIO, gzip.open(path, "wb", compresslevel=ZLIB_LEVEL))
    if threads <= 1:  # no file name and mtime 0 in the gzip header: the same bytes every run
        raw = open(path, "wb", buffering=0)  # noqa: SIM115 - the gzip stream closes it
        try:
            single = igzip.IGzipFile(filename="", mode="wb", compresslevel=IGZIP_LEVEL,
                                     fileobj=raw, mtime=0)
        except BaseException:
            raw.close()
            raise
        single.myfileobj = raw  # closed with the stream (as gzip.open's own file is)
        return cast(BinaryIO, single)
    stream: BinaryIO = igzip_threaded.open(path, "wb", compresslevel=IGZIP_LEVEL,
                                           threads=max(1, threads))
    return stream


def to_nifti(volume: Volume) -> nib.Nifti1Image:
    """The volume as an in-memory ``nibabel.Nifti1Image`` with its scaling applied on read."""
    import nibabel as nib

    buf = io.BytesIO()
    write_stream(volume, buf)
    return nib.Nifti1Image.from_bytes(buf.getvalue())


def write_nifti_volumes(spec: NiftiSpec, volumes: Iterable[np.ndarray],
                        path: str | os.PathLike[str], compress: bool, threads: int = 1) -> int:
    """Write a 4D NIfTI from 3D volumes given one at a time (atomically).

    NIfTI stores voxels in Fortran order, so volume t is one contiguous run of
    bytes after volume t - 1: each volume is written as soon as it is made and
    only one is held in memory.

    Parameters
    ----------
    spec : NiftiSpec
        The header; ``spec.shape`` is (X, Y, Z, T) and ``spec.dtype`` the stored type.
    volumes : iterable of ndarray of shape (X, Y, Z)
        Exactly T volumes, converted to ``spec.dtype``.

    Returns
    -------
    int
        The number of volumes written.

    Raises
    ------
    ValueError
        A volume of another shape, or not T of them (the file is not left behind).
    """
    import numpy as np

    expected = tuple(spec.shape[:3])
    count = 0
    with atomic_path(Path(path)) as tmp, open_output(tmp, compress, threads) as fp:
        write_header(spec, fp)
        for volume in volumes:
            if tuple(volume.shape) != expected:
                raise ValueError(f"volume {count} has shape {volume.shape}, not {expected}")
            data = np.asfortranarray(volume, dtype=spec.numpy_dtype.newbyteorder("<"))
            fp.write(data.T.reshape(-1).data)
            count += 1
        if count != (spec.shape[3] if len(spec.shape) > 3 else 1):
            raise ValueError(f"{count} volumes written, the header says {spec.shape}")
    return count

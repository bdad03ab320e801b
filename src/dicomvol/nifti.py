"""NIfTI-1 writer: the only place where RAS appears.

DICOM LPS becomes NIfTI RAS by ``diag(-1, -1, 1)``; the voxel axes are kept
as they are (i = column, j = row, k = slice), so the array is written
unchanged, in Fortran order, without a copy when it is already Fortran-ordered.
The affine goes to the sform (code 1, scanner) and, unless sheared, to the
qform as well. Units are mm (and s for 4D).
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import numpy as np

from dicomvol.atomic import atomic_path
from dicomvol.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    import nibabel as nib

#: LPS -> RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: ISA-L (igzip) level for .nii.gz: level 2 compresses CT within ~3 % of zlib level 6
#: at ~25x the speed (measured on the corpus lung CT, 70 MB: 0.4 s vs 9.9 s).
IGZIP_LEVEL = 2
#: zlib level when python-isal is unavailable.
ZLIB_LEVEL = 1
#: NIfTI-1 data offset (348-byte header + 4-byte extension flag).
VOX_OFFSET = 352


def ras_affine(volume: Volume) -> np.ndarray:
    """The volume's affine in RAS, shape (4, 4)."""
    ras: np.ndarray = LPS_TO_RAS @ volume.affine
    return ras


def header_for(volume: Volume) -> nib.Nifti1Header:
    """A NIfTI-1 header describing ``volume``: dtype, shape, affine, scaling, units."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(volume.data.dtype)
    hdr.set_data_shape(volume.data.shape)
    affine = ras_affine(volume)
    hdr.set_sform(affine, code=1)
    if volume.sheared:
        hdr.set_qform(None, code=0)
        zooms = list(np.linalg.norm(volume.affine[:3, :3], axis=0))
        hdr.set_zooms(tuple(zooms + [_time_step(volume)] * (len(volume.data.shape) - 3)))
    else:
        hdr.set_qform(affine, code=1)
        if volume.data.ndim == 4:
            hdr.set_zooms((*hdr.get_zooms()[:3], _time_step(volume)))
    hdr.set_xyzt_units("mm", "sec")
    hdr["scl_slope"] = volume.scl_slope
    hdr["scl_inter"] = volume.scl_inter
    hdr["vox_offset"] = VOX_OFFSET
    description = f"dicomvol {volume.metadata.get('Modality', '')}".strip()
    hdr["descrip"] = description.encode()[:79]
    return hdr


def _time_step(volume: Volume) -> float:
    """pixdim[4] of a 4D volume: RepetitionTime (s) for a temporal series, else 1."""
    fourth = volume.plan.detail.get("fourth_dimension") if volume.plan is not None else None
    tr = volume.metadata.get("RepetitionTime")
    if fourth in ("temporal position", "acquisition number", "acquisition time",
                  "trigger time", "instance number") and isinstance(tr, (int, float)) and tr > 0:
        return float(tr)
    return 1.0


def write_header(volume: Volume, fp: BinaryIO) -> None:
    """Write the header of ``volume`` and the padding up to VOX_OFFSET (data follows)."""
    hdr = header_for(volume)
    fp.write(hdr.binaryblock)
    fp.write(b"\x00" * (VOX_OFFSET - len(hdr.binaryblock)))


def write_stream(volume: Volume, fp: BinaryIO) -> None:
    """Write header and data of ``volume`` to an open binary stream."""
    write_header(volume, fp)
    data = volume.data
    if not data.flags.f_contiguous:
        data = np.asfortranarray(data)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"), order="F")
    flat = data.T.reshape(-1)  # a view: the F-order bytes as a C-order vector
    fp.write(flat.data)


def write_nifti(volume: Volume, path: str | os.PathLike[str], compress: bool | None = None,
                threads: int = 1) -> None:
    """Write ``volume`` to ``path`` atomically (temporary file, then rename).

    ``.nii.gz`` is compressed with ISA-L's igzip (``threads`` compression
    threads) when python-isal is installed, else with zlib.
    """
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    with atomic_path(path) as tmp, (_gzip_writer(tmp, threads) if compress
                                    else open(tmp, "wb")) as fp:
        write_stream(volume, fp)


def _gzip_writer(path: Path, threads: int) -> BinaryIO:
    try:
        from isal import igzip_threaded
    except ImportError:  # pragma: no cover - isal is a dependency
        return cast(BinaryIO, gzip.open(path, "wb", compresslevel=ZLIB_LEVEL))
    stream: BinaryIO = igzip_threaded.open(path, "wb", compresslevel=IGZIP_LEVEL,
                                           threads=max(1, threads))
    return stream


def to_nifti(volume: Volume) -> nib.Nifti1Image:
    """The volume as an in-memory ``nibabel.Nifti1Image`` with its scaling applied on read."""
    import nibabel as nib

    buf = io.BytesIO()
    write_stream(volume, buf)
    return nib.Nifti1Image.from_bytes(buf.getvalue())

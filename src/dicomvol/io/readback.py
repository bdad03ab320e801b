"""Read back a written image: its grid (for ``--resume``) or its voxels (for ``dicomvol qc``).

The writers live in :mod:`dicomvol.io.nifti` and :mod:`dicomvol.io.itk`;
this module reads what they wrote, one volume at a time.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

#: MetaImage element types (as :func:`dicomvol.io.itk.write_mha` writes them) -> numpy dtype.
MET_DTYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2",
              "MET_INT": "i4", "MET_UINT": "u4", "MET_LONG_LONG": "i8",
              "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}
#: The file name endings :func:`open_image` reads.
IMAGE_ENDINGS = (".nii", ".nii.gz", ".nrrd", ".mha")


def read_grid(path: Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(shape, voxel spacing) of a written image, from its header only."""
    if path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        hdr: Any = nib.load(str(path)).header
        shape = tuple(int(v) for v in hdr.get_data_shape())
        zooms = tuple(float(v) for v in hdr.get_zooms()[:3])
        return shape, zooms
    if path.suffix == ".nrrd":
        import nrrd

        header = nrrd.read_header(str(path))
        import numpy as np

        dirs = np.asarray(header["space directions"], dtype=float)
        dirs = dirs[~np.isnan(dirs).any(axis=1)]
        return tuple(int(v) for v in header["sizes"]), tuple(
            float(v) for v in np.linalg.norm(dirs, axis=1))
    with open(path, "rb") as fp:  # MetaImage: text header lines up to ElementDataFile
        fields: dict[str, str] = {}
        for raw in fp:
            key, _, value = raw.decode("latin-1").partition("=")
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                break
    return (tuple(int(v) for v in fields["DimSize"].split()),
            tuple(float(v) for v in fields["ElementSpacing"].split()))


class WrittenImage:
    """A written NIfTI, NRRD or MetaImage file, read one volume at a time.

    Attributes
    ----------
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T).
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k, 1) -> LPS mm.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._array: np.ndarray | None = None
        self._proxy: Any = None
        name = path.name
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            from dicomvol.io.nifti import lps_affine

            img: Any = nib.load(str(path))
            self._proxy = img.dataobj
            self.shape = tuple(int(v) for v in img.shape)
            self.affine = lps_affine(img.affine)
        elif name.endswith(".nrrd"):
            self._array, self.affine = _read_nrrd(path)
            self.shape = tuple(int(v) for v in self._array.shape)
        elif name.endswith(".mha"):
            self._array, self.affine = _read_mha(path)
            self.shape = tuple(int(v) for v in self._array.shape)
        else:
            raise ValueError(f"{path}: not an image dicomvol reads back "
                             f"({', '.join(IMAGE_ENDINGS)})")

    def volume(self, t: int = 0) -> np.ndarray:
        """Volume ``t`` in modality values (NIfTI scaling applied), shape (X, Y, Z)."""
        four_d = len(self.shape) == 4
        if self._proxy is not None:
            data = self._proxy[..., t] if four_d else self._proxy[...]
            return np.asanyarray(data)
        assert self._array is not None
        return self._array[..., t] if four_d else self._array


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nrrd

    data, header = nrrd.read(str(path), index_order="F")
    dirs = np.asarray(header["space directions"], dtype=np.float64)
    dirs = dirs[~np.isnan(dirs).any(axis=1)]
    affine = np.eye(4)
    affine[:3, :3] = dirs[:3].T  # row c of space directions = the step of voxel axis c
    affine[:3, 3] = np.asarray(header.get("space origin", (0, 0, 0)), dtype=np.float64)
    space = str(header.get("space", "left-posterior-superior"))
    if space in ("right-anterior-superior", "RAS"):
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    return np.asarray(data), affine


def _read_mha(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = path.read_bytes()
    fields: dict[str, str] = {}
    offset = 0
    for line in raw.split(b"\n"):
        offset += len(line) + 1
        key, _, value = line.decode("latin-1").partition("=")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break
    shape = tuple(int(v) for v in fields["DimSize"].split())
    ndim = len(shape)
    spacing = np.array([float(v) for v in fields["ElementSpacing"].split()][:3])
    matrix = np.array([float(v) for v in fields["TransformMatrix"].split()]).reshape(
        ndim, ndim, order="F")[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = matrix * spacing
    affine[:3, 3] = [float(v) for v in fields["Offset"].split()][:3]
    body = raw[offset:]
    if fields.get("CompressedData", "False") == "True":
        body = zlib.decompress(body)
    big = fields.get("BinaryDataByteOrderMSB", "False") == "True"
    dtype = np.dtype(MET_DTYPES[fields["ElementType"]]).newbyteorder(">" if big else "<")
    data = np.frombuffer(body, dtype=dtype, count=int(np.prod(shape))).reshape(shape, order="F")
    return data, affine


def open_image(path: Path) -> WrittenImage:
    """A written image, for reading its volumes (see :class:`WrittenImage`)."""
    return WrittenImage(path)

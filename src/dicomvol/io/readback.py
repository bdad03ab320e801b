"""Read back the grid of a written image (for ``--resume``); writers live in writers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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

"""Independent exactness check of a written volume, using only pydicom and nibabel.

For every entry of the sidecar's ``SourceInstances`` the source frame is read
again with pydicom; its pixels (after its own rescale) must equal the volume's
slice, and its pixel positions (from its own IPP, IOP and PixelSpacing) must
map through the NIfTI affine onto the voxel indices (i, j, k) within 0.01 voxel.
None of dicomvol's geometry code is used here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom

#: The contract's tolerance for slice placement, in voxels.
VOXEL_TOLERANCE = 0.01
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _first(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def frame_geometry(ds: Any, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(IPP, row dir, col dir, row spacing, col spacing) of one frame, 1-based."""
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    if pf is not None:
        item = pf[frame - 1]

        def group(kw: str) -> Any:
            return _first(item, kw) or _first(shared, kw)

        ipp = group("PlanePositionSequence").ImagePositionPatient
        iop = group("PlaneOrientationSequence").ImageOrientationPatient
        ps = group("PixelMeasuresSequence").PixelSpacing
    else:
        ipp, iop, ps = ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    iop = np.array([float(v) for v in iop])
    return (np.array([float(v) for v in ipp]), iop[:3], iop[3:], float(ps[0]), float(ps[1]))


def frame_values(ds: Any, frame: int) -> np.ndarray:
    """Modality values of one frame, shape (Rows, Columns)."""
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n > 1:
        arr = arr[frame - 1]
    slope, inter = 1.0, 0.0
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    pvt = None
    if pf is not None:
        pvt = _first(pf[frame - 1], "PixelValueTransformationSequence") or _first(
            _first(ds, "SharedFunctionalGroupsSequence"), "PixelValueTransformationSequence")
    src = pvt if pvt is not None else ds
    if src.get("RescaleSlope") is not None:
        slope = float(src.RescaleSlope)
    if src.get("RescaleIntercept") is not None:
        inter = float(src.RescaleIntercept)
    return arr.astype(np.float64) * slope + inter


def resolve(file: str, roots: Sequence[Path]) -> Path:
    """The source file named relative to one of the input roots."""
    for root in roots:
        for candidate in (root / file, root.parent / file):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{file} not under {roots}")


def check_exact(image_path: Path, roots: Sequence[Path]) -> dict[str, float]:
    """Assert that a written volume is exact; returns the worst errors found."""
    img: Any = nib.load(str(image_path))
    sidecar = json.loads(Path(str(image_path).replace(".nii.gz", ".json")
                              .replace(".nii", ".json")).read_text())
    data = np.asarray(img.dataobj, dtype=np.float64)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    nx, ny, nz, nt = data.shape
    sources = sidecar["SourceInstances"]
    assert len(sources) == nz * nt, f"{image_path.name}: {len(sources)} sources for {data.shape}"
    lps = _LPS_TO_RAS @ img.get_sform()  # diag is its own inverse
    inv = np.linalg.inv(lps)
    worst_pos, worst_val = 0.0, 0.0
    cache: dict[Path, Any] = {}
    for n, src in enumerate(sources):
        k, t = n % nz, n // nz
        path = resolve(src["File"], roots)
        ds = cache.get(path)
        if ds is None:
            ds = pydicom.dcmread(path)
            cache = {path: ds}
        assert str(ds.SOPInstanceUID) == src["SOPInstanceUID"]
        ipp, row, col, rs, cs = frame_geometry(ds, src["Frame"])
        for i, j in ((0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1)):
            world = ipp + i * cs * row + j * rs * col
            index = inv @ np.r_[world, 1.0]
            err = float(np.max(np.abs(index[:3] - (i, j, k))))
            worst_pos = max(worst_pos, err)
        values = frame_values(ds, src["Frame"])
        assert values.shape == (ny, nx), f"{image_path.name}: slice {k} shape {values.shape}"
        diff = float(np.max(np.abs(values.T - data[:, :, k, t])))
        scale = max(1.0, float(np.max(np.abs(values))))
        worst_val = max(worst_val, diff / scale)
    assert worst_pos <= VOXEL_TOLERANCE, f"{image_path.name}: slice misplaced by {worst_pos} voxel"
    assert worst_val <= 1e-6, f"{image_path.name}: voxel values differ (rel {worst_val})"
    return {"position_error_voxels": worst_pos, "value_error_relative": worst_val}

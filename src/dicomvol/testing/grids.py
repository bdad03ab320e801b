"""Measurements behind :mod:`dicomvol.testing.misses`: written volumes against their headers.

All in patient LPS, voxel indices (i, j, k) of the written NIfTI. Source pixels are read with
pydicom (modality LUT applied), written volumes through :class:`reproduce.Image`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels.processing import apply_modality_lut

from dicomvol.testing import reproduce

#: Source pixels sampled every this many rows and columns by :func:`header_support`.
SUPPORT_STEP = 8
#: dcm2niix rounds a resampled volume to its integer type after each step (_Tilt, then _Eq):
#: up to 0.5 per step.
INTEGER_ROUNDING = 1.0
#: Slack (pixels) of "inside a source slice's pixel-centre extent".
IN_PLANE_TOL = 1e-3
#: Slack (voxels) of "inside the volume" and of an integer voxel index.
INDEX_TOL = 1e-2


def source_values(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(modality values (Rows, Columns), IPP (3,), row direction (3,) x column spacing,
    column direction (3,) x row spacing) of a single-frame image, LPS mm."""
    ds = pydicom.dcmread(path)
    values = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    return values, ipp, iop[:3] * dc, iop[3:] * dr


def _keys(values: np.ndarray) -> bytes:
    return np.round(values * 1000.0).astype(np.int64).tobytes()


def match_slices(image: reproduce.Image, paths: Sequence[Path]) -> np.ndarray | None:
    """Per slice k of a 3D image: mm between where its affine puts the first stored pixel of
    the source file with the same pixels and that file's ImagePositionPatient, shape (Z,).

    The source file of a slice is found by content (an in-plane flip of the DICOM rows or
    columns allowed); None when some slice matches no file, or for 4D images.
    """
    if image.n_volumes != 1:
        return None
    data = image.data[..., 0]
    nx, ny, nz = data.shape
    flips = {(False, False): (0, 0), (False, True): (0, ny - 1), (True, False): (nx - 1, 0),
             (True, True): (nx - 1, ny - 1)}
    sources = [source_values(p) for p in paths]
    for (fi, fj), (i0, j0) in flips.items():
        table = {}
        for values, ipp, _, _ in sources:
            arr = values.T[::-1 if fi else 1, ::-1 if fj else 1]
            if arr.shape == (nx, ny):
                table[_keys(arr)] = ipp
        found = [table.get(_keys(data[:, :, k])) for k in range(nz)]
        if all(f is not None for f in found):
            where = np.array([image.affine @ [i0, j0, k, 1.0] for k in range(nz)])[:, :3]
            errors: np.ndarray = np.linalg.norm(where - np.array(found), axis=1)
            return errors
    return None


def _trilinear(data: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of a 3D array at fractional indices (N, 3), and which are inside it."""
    from scipy import ndimage

    shape = np.array(data.shape[:3])
    inside = np.all((idx >= -INDEX_TOL) & (idx <= shape - 1 + INDEX_TOL), axis=1)
    values = ndimage.map_coordinates(data, np.clip(idx, 0, shape - 1).T, order=1)
    return np.asarray(values), inside


def header_support(image: reproduce.Image, paths: Sequence[Path]) -> tuple[float, float]:
    """(median |difference|, fraction inside) of a volume's first 3D volume, sampled where
    every SUPPORT_STEP-th pixel of each source file lies by its own IPP/IOP/PixelSpacing,
    against that pixel's value."""
    inv = np.linalg.inv(image.affine)
    data = image.data[..., 0]
    diffs, n_inside, n_all = [], 0, 0
    for path in paths:
        values, ipp, step_i, step_j = source_values(path)
        rows, cols = np.mgrid[0:values.shape[0]:SUPPORT_STEP, 0:values.shape[1]:SUPPORT_STEP]
        world = ipp + cols.ravel()[:, None] * step_i + rows.ravel()[:, None] * step_j
        idx = (np.c_[world, np.ones(len(world))] @ inv.T)[:, :3]
        sampled, inside = _trilinear(data, idx)
        diffs.append(np.abs(sampled - values[rows, cols].ravel())[inside])
        n_inside += int(inside.sum())
        n_all += inside.size
    every = np.concatenate(diffs) if diffs else np.zeros(0)
    median = float(np.median(every)) if every.size else float("inf")
    return median, n_inside / max(n_all, 1)


def planes_through_sources(image: reproduce.Image, paths: Sequence[Path]) -> float:
    """Fraction of the source slices (by their IPP) that a plane of the volume passes through
    (to INDEX_TOL of a slice): the slices kept as acquired rather than interpolated."""
    inv = np.linalg.inv(image.affine)
    hits = 0
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        k = float((inv @ [*(float(v) for v in ds.ImagePositionPatient), 1.0])[2])
        hits += abs(k - round(k)) <= INDEX_TOL and 0 <= round(k) < image.shape[2]
    return hits / max(len(paths), 1)


def tiles_in_slide(image: reproduce.Image, tiff: Path) -> float:
    """Fraction of a 3D image's slices (dcm2niix's stack of slide frames) that equal, up to an
    in-plane flip, a tile of the first (full-resolution) level of a written slide, on the
    tile grid of the slice's size."""
    import tifffile

    with tifffile.TiffFile(str(tiff)) as tf:
        level = np.asarray(tf.series[0].levels[0].asarray())
    level = np.squeeze(level)
    if level.ndim == 3 and level.shape[0] in (3, 4) and level.shape[-1] not in (3, 4):
        level = np.moveaxis(level, 0, -1)  # (C, H, W) -> (H, W, C)
    if level.ndim == 3:
        level = (level[..., 0] * 65536.0 + level[..., 1] * 256.0 + level[..., 2].astype(
            np.float64))
    nx, ny = image.shape[:2]
    keys: set[bytes] = set()
    for r in range(0, level.shape[0] - ny + 1, ny):
        for c in range(0, level.shape[1] - nx + 1, nx):
            tile = np.asarray(level[r:r + ny, c:c + nx], dtype=np.float64).T  # (i, j)
            keys.update(_keys(tile[::fi, ::fj]) for fi in (1, -1) for fj in (1, -1))
    data = image.data
    found = sum(_keys(data[:, :, k, 0]) in keys for k in range(data.shape[2]))
    return float(found) / max(int(data.shape[2]), 1)


def outside_sources(image: reproduce.Image, voxels: np.ndarray,
                    paths: Sequence[Path]) -> np.ndarray:
    """For voxels (N, 3) of a resampled volume: whether each lies, projected along the
    slice normal, outside the pixel-centre extent (to :data:`IN_PLANE_TOL` pixel) of a source
    slice it draws on: the slice it lies on, else the nearest source slice on either side.
    Shape (N,) bool; headers only (IPP, IOP, PixelSpacing, Rows, Columns)."""
    world = (np.c_[voxels, np.ones(len(voxels))] @ image.affine.T)[:, :3]
    spacing = float(np.linalg.norm(image.affine[:3, 2]))
    dist, out = [], []
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        dr, dc = (float(v) for v in ds.PixelSpacing)
        rel = world - np.array([float(v) for v in ds.ImagePositionPatient])
        col, row = rel @ iop[:3] / dc, rel @ iop[3:] / dr
        dist.append(rel @ np.cross(iop[:3], iop[3:]))
        out.append((col < -IN_PLANE_TOL) | (col > int(ds.Columns) - 1 + IN_PLANE_TOL)
                   | (row < -IN_PLANE_TOL) | (row > int(ds.Rows) - 1 + IN_PLANE_TOL))
    d, o = np.array(dist).T, np.array(out).T  # (N, slices)
    on = np.abs(d) <= IN_PLANE_TOL * spacing
    above = np.where(d > 0, d, np.inf).argmin(axis=1)
    below = np.where(d < 0, -d, np.inf).argmin(axis=1)
    rows = np.arange(len(d))
    bracket = (o[rows, above] & np.isfinite(np.where(d > 0, d, np.inf).min(axis=1))) | (
        o[rows, below] & np.isfinite(np.where(d < 0, -d, np.inf).min(axis=1)))
    result: np.ndarray = np.where(on.any(axis=1), (on & o).any(axis=1), bracket)
    return result


def resampled_same_grid(ref: reproduce.Image, ours: reproduce.Image,
                        fill: float) -> tuple[int, int, float, np.ndarray] | None:
    """Two resampled volumes on one grid: (voxels that differ where ours is not its fill,
    voxels that differ, largest |difference| where ours is not its fill, the differing
    voxels' indices in ``ours`` (M, 3)); None when the grids
    differ. "Differ" allows :data:`INTEGER_ROUNDING` when ``ref`` is stored as integers,
    besides :data:`reproduce.VALUE_RTOL`."""
    amap = reproduce.axis_map(ref, ours)
    if amap is None or ref.n_volumes != 1 or ours.n_volumes != 1:
        return None
    moved = reproduce.in_b_axes(ref.data, *amap)[..., 0]
    mine = ours.data[..., 0]
    scale = max(float(np.ptp(moved)), float(np.ptp(mine)), 1.0)
    integer = np.issubdtype(ref.img.get_data_dtype(), np.integer)
    tol = reproduce.VALUE_RTOL * scale + (INTEGER_ROUNDING if integer else 0.0)
    diff = np.abs(moved - mine)
    differ = diff > tol
    field = mine != fill
    worst = float(diff[field].max()) if field.any() else 0.0
    return int((differ & field).sum()), int(differ.sum()), worst, np.argwhere(differ)


def sub_grid_values(ref: reproduce.Image,
                    ours: reproduce.Image) -> tuple[np.ndarray, np.ndarray] | None:
    """When every voxel of ``ref`` is a voxel of ``ours`` (a signed axis permutation and an
    integer shift): (ref's values (N,), ours at the same voxels (N,)) of the first volume."""
    m = np.linalg.solve(ours.affine, ref.affine)
    r = np.round(m[:3, :3])
    if (np.abs(m[:3, :3] - r).max() > INDEX_TOL or not np.array_equal(np.abs(r).sum(0),
                                                                        np.ones(3))
            or not np.array_equal(np.abs(r).sum(1), np.ones(3))):
        return None
    idx = np.indices(ref.shape[:3]).reshape(3, -1).T.astype(np.float64)
    mapped = np.c_[idx, np.ones(len(idx))] @ m.T
    whole = np.round(mapped[:, :3])
    if np.abs(mapped[:, :3] - whole).max() > INDEX_TOL:
        return None
    k = whole.astype(np.int64)
    if (k < 0).any() or (k >= np.array(ours.shape[:3])).any():
        return None
    values = ref.data[..., 0].reshape(-1)
    return values, ours.data[k[:, 0], k[:, 1], k[:, 2], 0]

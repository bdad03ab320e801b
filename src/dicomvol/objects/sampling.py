"""Nearest-neighbour sampling of frames onto a grid they are not on (marked as resampled).

Used when a derived object's frames do not snap onto the target grid's planes
(a SEG drawn on the tilted slices of a CT written on its resampled orthogonal
grid, a SEG at another pixel spacing, frames between the planes). Each voxel
centre takes the value of the nearest frame along that frame's normal, if it
is within half the frame thickness, at the nearest pixel of that frame; no
value is interpolated, so labels stay labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dicomvol.model import geometry
from dicomvol.model.grid import VolumeGeometry
from dicomvol.model.records import FrameRecord


def half_thickness(frames: Sequence[FrameRecord], target: VolumeGeometry) -> float:
    """Half the thickness a frame stands for (mm): from its SpacingBetweenSlices, the median
    distance between its distinct positions, its SliceThickness, else the grid's step."""
    first = frames[0]
    if first.spacing_between_slices:
        return 0.5 * abs(first.spacing_between_slices)
    if first.orientation is not None:
        q = np.unique(np.round(geometry.projections(
            [f for f in frames if f.position is not None], first.orientation), 4))
        if q.size > 1:
            return 0.5 * float(np.median(np.diff(q)))
    if first.slice_thickness:
        return 0.5 * abs(first.slice_thickness)
    return 0.5 * float(np.linalg.norm(np.asarray(target.affine)[:3, 2]))


def sample_nearest(items: Sequence[tuple[FrameRecord, np.ndarray]], target: VolumeGeometry,
                   half: float, out: np.ndarray) -> set[int]:
    """Sample frames into ``out`` (X, Y, Z) at every voxel centre, nearest neighbour.

    Parameters
    ----------
    items : sequence of (FrameRecord, ndarray of shape (Rows, Columns))
        Frames with patient geometry and their values.
    target : VolumeGeometry
        The grid of ``out``.
    half : float
        A voxel takes a frame's value only within this distance (mm) of its plane.
    out : ndarray of shape (X, Y, Z)
        Written in place where a frame is nearest (zeros elsewhere are kept).

    Returns
    -------
    set of int
        Indices (into ``items``) of the frames nearest to at least one voxel.
    """
    hit: set[int] = set()
    if not items:
        return hit
    affine = np.asarray(target.affine, dtype=np.float64)
    nx, ny, nz = target.spatial_shape
    ii, jj = np.meshgrid(np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64),
                         indexing="ij")
    base = ii[..., None] * affine[:3, 0] + jj[..., None] * affine[:3, 1] + affine[:3, 3]
    geo = []
    for frame, values in items:
        assert frame.orientation is not None and frame.position is not None
        assert frame.pixel_spacing is not None
        row, col = (np.asarray(v) for v in geometry.directions(frame.orientation))
        normal = np.asarray(geometry.slice_normal(frame.orientation))
        geo.append((np.asarray(frame.position, dtype=np.float64), row, col, normal,
                    frame.pixel_spacing, values))
    corners = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1]], dtype=np.float64)
    corner_world = corners @ affine[:3, :2].T + affine[:3, 3]
    for k in range(nz):
        shift = k * affine[:3, 2]
        best = np.full((nx, ny), np.inf)
        plane = out[:, :, k]
        for n, (pos, row, col, normal, (ps_row, ps_col), values) in enumerate(geo):
            d_corner = (corner_world + shift - pos) @ normal
            if d_corner.min() > half or d_corner.max() < -half:
                continue  # the whole plane is farther than ``half`` from this frame
            rel = base + (shift - pos)
            dist = np.abs(rel @ normal)
            u = np.rint(rel @ row / ps_col).astype(np.int64)
            v = np.rint(rel @ col / ps_row).astype(np.int64)
            rows, cols = values.shape
            ok = (dist <= half) & (dist < best) & (u >= 0) & (u < cols) & (v >= 0) & (v < rows)
            if ok.any():
                plane[ok] = values[v[ok], u[ok]]
                best[ok] = dist[ok]
                hit.add(n)
    return hit

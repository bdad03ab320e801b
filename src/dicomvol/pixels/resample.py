"""Resample an irregular or sheared slice stack onto a regular orthogonal grid.

Irregular stacks come from variable slice spacing, missing slices, gantry tilt
(slice positions step along a direction that is not the slice normal, so each
slice is shifted in plane) and lateral shifts. All slices share one
orientation and one in-plane grid (Rows, Columns, PixelSpacing) but may sit
anywhere. :func:`resample_stack` puts them on a grid whose affine is
orthogonal: the source's row and column steps in plane and a regular step
along the slice normal.

Conventions are the project's (see :mod:`dicomvol.model.geometry`): LPS mm; pixel
(row j, column i) of a slice lies at ``IPP + i * PixelSpacing[1] * row_dir +
j * PixelSpacing[0] * col_dir``; the normal is ``row_dir x col_dir``; volume
arrays are indexed ``[i, j, k]`` and affines map ``(i, j, k, 1)`` to LPS.

Interpolation
-------------
A world point ``w`` on an output plane lies between two source slices ``a``
and ``b`` along the normal. ``w`` is projected along the normal onto the plane
of ``a`` and onto the plane of ``b``; each slice is sampled there (bilinear for
``order=1``, nearest pixel for ``order=0``) through its own IPP, so tilt and
lateral shifts are exact; the two samples are blended by the normal distances
(``order=1``) or the nearer slice is taken (``order=0``). Because the
projection along the normal does not depend on the plane's position, a
slice's samples on the output lattice are a pure in-plane translation of the
slice; they are computed once per slice and kept only while the slice
brackets the current plane (memory: the output volume plus two slices).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomvol._typing import FloatArray
from dicomvol.constants import EXACTNESS_TOLERANCE_VOXELS, SAME_POSITION_TOLERANCE_MM
from dicomvol.errors import GeometryError
from dicomvol.model.grids import GRID_TOLERANCE_PIXELS, choose_spacing, lattice

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: An output plane within this distance (mm, along the normal) of a source slice copies that
#: slice alone (no blending).
HIT_TOLERANCE_MM = 1e-6


@dataclass(frozen=True)
class ResampleResult:
    """A stack resampled onto a regular orthogonal grid.

    Attributes
    ----------
    data : ndarray of shape (X, Y, Z), float32, Fortran order
        Values indexed ``[i, j, k]``: X = output columns, Y = output rows, Z =
        output slices; k ascends along the slice normal. Voxels outside the
        acquired field hold the ``fill`` value.
    affine : ndarray of shape (4, 4)
        Maps ``(i, j, k, 1)`` to LPS mm. Column 0 is ``row_dir *
        PixelSpacing[1]``, column 1 ``col_dir * PixelSpacing[0]`` (the source's
        in-plane grid), column 2 ``normal * spacing``, column 3 the position
        of voxel (0, 0, 0).
    spacing : float
        Output slice spacing along the normal, mm.
    used : tuple of int
        Indices (into the input sequences) of the source slices that
        contributed to at least one output voxel, ordered along the normal.
    detail : dict
        JSON-ready account: ``method``, ``spacing_mm``, ``spacing_source``,
        ``spacing_reason``, ``fill``, ``in_plane_extent``, ``outside_field``,
        ``n_output_slices`` and further counts and offsets.
    """

    data: NDArray[np.float32]
    affine: FloatArray
    spacing: float
    used: tuple[int, ...]
    detail: dict[str, Any]


def resample_stack(
    slices: Sequence[NDArray[Any]],
    positions: Sequence[Sequence[float]] | NDArray[np.floating[Any]],
    orientation: Sequence[float] | NDArray[np.floating[Any]],
    pixel_spacing: tuple[float, float],
    *,
    spacing: float | None = None,
    order: int = 1,
    fill: float = 0.0,
) -> ResampleResult:
    """Resample slices at arbitrary positions onto a regular orthogonal grid.

    Slices are sorted along the normal (input order does not matter). The
    output grid keeps the source's row and column directions and pixel
    spacing. In plane it sits on the pixel lattice of the first slice along
    the normal, extended by whole pixels to cover the union of every slice's
    footprint (pixel centres): with tilt or lateral shifts the output grows by
    the spread of the in-plane offsets, rounded up to whole pixels, and its
    origin moves accordingly. Along the normal the planes run from the first
    slice position in steps of ``spacing`` up to the last slice position (a
    plane at most ``SPACING_RELATIVE_TOLERANCE`` of a step beyond the last
    slice is kept and takes that slice).

    Each output plane within ``HIT_TOLERANCE_MM`` of a source slice takes that
    slice alone; otherwise the two bracketing slices are sampled at the
    plane's pixel centres projected along the normal onto their planes and
    blended linearly by normal distance (``order=1``), or the nearer slice is
    taken (``order=0``; a tie goes to the lower slice). In plane, ``order``
    selects bilinear or nearest-pixel sampling (scipy.ndimage.map_coordinates);
    a slice whose in-plane offset is a whole number of pixels is copied. A
    voxel is in the acquired field when its projected point lies within the
    pixel-centre extent of every slice it draws on; other voxels get ``fill``
    (so no value is ever extrapolated). Non-finite source values also yield
    ``fill``.

    For a stack that is already regular and orthogonal (no tilt), every plane
    hits a source slice and every offset is integral: the output equals the
    input (as float32) on the same grid.

    Parameters
    ----------
    slices : sequence of N ndarrays of shape (Rows, Columns)
        Pixel arrays in DICOM orientation (``[row j, column i]``), modality
        values. All of one shape.
    positions : sequence of N sequences of 3 floats, or ndarray of shape (N, 3)
        ImagePositionPatient of each slice, LPS mm.
    orientation : sequence of 6 floats, or ndarray of shape (6,)
        The shared ImageOrientationPatient (row direction, column direction).
    pixel_spacing : tuple of 2 floats
        The shared PixelSpacing (row spacing, column spacing), mm.
    spacing : float, optional
        Output slice spacing, mm; ``None`` chooses it with :func:`choose_spacing`.
    order : {1, 0}
        1 for linear interpolation, 0 for nearest neighbour.
    fill : float
        Value of voxels outside the acquired field (e.g. -1024 for CT).

    Returns
    -------
    ResampleResult
        ``data`` of shape (X', Y', Z) float32 Fortran order with X' >= Columns,
        Y' >= Rows; the orthogonal ``affine``; ``spacing``; ``used``; ``detail``.

    Raises
    ------
    GeometryError
        For no slices, mismatched lengths or shapes, bad geometry, two slices at
        one position along the normal, a bad ``spacing`` or ``order``.
    """
    import numpy as np

    rows, cols, pos, row_dir, col_dir, normal = _check_inputs(
        slices, positions, orientation, pixel_spacing, spacing, order)
    ps_row, ps_col = (float(v) for v in pixel_spacing)
    n_in = len(slices)

    proj = pos @ normal
    sort_idx = np.argsort(proj, kind="stable")
    q = proj[sort_idx]
    close = np.flatnonzero(np.diff(q) < SAME_POSITION_TOLERANCE_MM)
    if close.size:
        a, b = int(sort_idx[close[0]]), int(sort_idx[close[0] + 1])
        raise GeometryError(
            f"slices {a} and {b} share a position along the normal ({q[close[0]]:.6g} mm, "
            f"within {SAME_POSITION_TOLERANCE_MM} mm); pass one slice per position")

    if spacing is None:
        step, reason = choose_spacing(q)
        spacing_source = "chosen"
    else:
        step, reason = float(spacing), "given by the caller"
        spacing_source = "given"
    offsets, i_start, j_start, (out_x, out_y, n_planes), affine = lattice(
        pos[sort_idx], row_dir, col_dir, normal, (ps_row, ps_col), rows, cols, step, q)

    data = np.empty((out_x, out_y, n_planes), dtype=np.float32, order="F")
    cache: dict[int, FloatArray] = {}
    used_sorted: set[int] = set()
    copied = 0
    for k in range(n_planes):
        p = float(q[0]) + k * step
        contrib = _bracket(q, p, order, max(HIT_TOLERANCE_MM, EXACTNESS_TOLERANCE_VOXELS * step))
        if len(contrib) == 1:
            copied += 1
        for s in [s for s in cache if s not in {c for c, _ in contrib}]:
            del cache[s]
        images = []
        for s, _ in contrib:
            if s not in cache:
                src = np.asarray(slices[int(sort_idx[s])], dtype=np.float64)
                cache[s] = _on_lattice(src.T, float(offsets[s, 0]) - i_start,
                                       float(offsets[s, 1]) - j_start, (out_x, out_y), order)
            images.append(cache[s])
        if len(contrib) == 1:
            plane = images[0]
        else:
            plane = contrib[0][1] * images[0] + contrib[1][1] * images[1]
        valid = np.isfinite(plane)
        if valid.any():
            used_sorted.update(s for s, _ in contrib)
        data[:, :, k] = np.where(valid, plane, fill)

    used = tuple(int(sort_idx[s]) for s in sorted(used_sorted))
    detail = _account(q, pos[sort_idx], normal, step, order, reason, spacing_source, fill,
                      (i_start, j_start), (out_x, out_y, n_planes), (rows, cols), copied, used)
    log.debug("resampled %d slices onto %s grid, spacing %.6g mm (%s); %d planes copied, "
              "%d interpolated, %d slices unused", n_in, detail["output_shape"], step,
              spacing_source, copied, n_planes - copied, len(detail["unused_slices"]))
    return ResampleResult(data=data, affine=affine, spacing=step, used=used, detail=detail)


def _bracket(q: FloatArray, p: float, order: int,
             hit_tolerance: float = HIT_TOLERANCE_MM) -> list[tuple[int, float]]:
    """The sorted slices an output plane at normal position ``p`` draws on, with weights.

    One slice (weight 1) on a hit within ``hit_tolerance`` (the caller passes
    EXACTNESS_TOLERANCE_VOXELS of the output spacing: a slice that close to a
    plane is, by the output contract, exactly on it), beyond either end or
    for ``order=0`` (the nearer; a tie goes to the lower); else the two
    bracketing slices weighted by normal distance.
    """
    import numpy as np

    n = int(q.size)
    i = int(np.searchsorted(q, p))
    for c in (i - 1, i):
        if 0 <= c < n and abs(float(q[c]) - p) <= hit_tolerance:
            return [(c, 1.0)]
    if i == 0:
        return [(0, 1.0)]
    if i == n:
        return [(n - 1, 1.0)]
    a, b = i - 1, i
    w = (p - float(q[a])) / float(q[b] - q[a])
    if order == 0:
        return [(a, 1.0)] if w <= 0.5 else [(b, 1.0)]
    return [(a, 1.0 - w), (b, w)]


def _on_lattice(
    src: FloatArray, du: float, dv: float, out_shape: tuple[int, int], order: int
) -> FloatArray:
    """A slice's samples at the output lattice's pixel centres; NaN outside the slice.

    Parameters
    ----------
    src : ndarray of shape (Columns, Rows)
        The slice indexed ``[i, j]``.
    du, dv : float
        Position of the slice's pixel (0, 0) on the output lattice, in pixels.
    out_shape : tuple (X', Y')
        Output lattice shape.
    order : int
        map_coordinates spline order (0 or 1).

    Returns
    -------
    ndarray of shape (X', Y'), float64
    """
    import numpy as np

    tol = GRID_TOLERANCE_PIXELS
    out = np.full(out_shape, np.nan)
    nx, ny = src.shape
    ru, rv = round(du), round(dv)
    if abs(du - ru) <= tol and abs(dv - rv) <= tol:
        out[ru : ru + nx, rv : rv + ny] = src
        return out
    u = np.arange(out_shape[0], dtype=np.float64) - du
    v = np.arange(out_shape[1], dtype=np.float64) - dv
    in_u = (u >= -tol) & (u <= nx - 1 + tol)
    in_v = (v >= -tol) & (v <= ny - 1 + tol)
    if not (in_u.any() and in_v.any()):
        return out
    u = _snap(np.clip(u[in_u], 0, nx - 1))
    v = _snap(np.clip(v[in_v], 0, ny - 1))
    uu, vv = np.meshgrid(u, v, indexing="ij")
    from scipy import ndimage  # imported where used: scipy costs 0.2 s to import

    values = ndimage.map_coordinates(src, [uu, vv], order=order, mode="nearest")
    out[np.ix_(in_u, in_v)] = np.asarray(values, dtype=np.float64)
    return out


def _snap(c: FloatArray) -> FloatArray:
    """Coordinates within GRID_TOLERANCE_PIXELS of an integer, set to that integer."""
    import numpy as np

    r = np.rint(c)
    return np.where(np.abs(c - r) <= GRID_TOLERANCE_PIXELS, r, c)


def _check_inputs(
    slices: Sequence[NDArray[Any]],
    positions: Sequence[Sequence[float]] | NDArray[np.floating[Any]],
    orientation: Sequence[float] | NDArray[np.floating[Any]],
    pixel_spacing: tuple[float, float], spacing: float | None, order: int,
) -> tuple[int, int, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validate :func:`resample_stack`'s inputs; (rows, cols, positions, row, col, normal)."""
    import numpy as np

    if order not in (0, 1):
        raise GeometryError(f"order must be 0 (nearest) or 1 (linear), got {order}")
    n_in = len(slices)
    if n_in == 0:
        raise GeometryError("resample_stack needs at least one slice")
    if len(positions) != n_in:
        raise GeometryError(f"{n_in} slices but {len(positions)} positions")
    shapes = {tuple(np.shape(s)) for s in slices}
    if len(shapes) != 1:
        raise GeometryError(f"slices differ in shape: {sorted(shapes)}")
    shape = shapes.pop()
    if len(shape) != 2 or min(shape) < 1:
        raise GeometryError(f"slices must be non-empty 2D arrays (Rows, Columns), got {shape}")
    rows, cols = int(shape[0]), int(shape[1])
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (n_in, 3) or not np.all(np.isfinite(pos)):
        raise GeometryError("positions must be N finite (x, y, z) triples")
    iop = np.asarray(orientation, dtype=np.float64)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise GeometryError("orientation must be 6 finite direction cosines")
    row_dir, col_dir = iop[:3], iop[3:]
    cross = np.cross(row_dir, col_dir)
    cross_norm = float(np.linalg.norm(cross))
    if cross_norm < 1e-6:
        raise GeometryError("orientation row and column directions are parallel or zero")
    normal = cross / cross_norm
    ps_row, ps_col = (float(v) for v in pixel_spacing)
    if not (ps_row > 0 and ps_col > 0 and math.isfinite(ps_row) and math.isfinite(ps_col)):
        raise GeometryError(f"pixel spacing must be positive, got {pixel_spacing}")
    if spacing is not None and not (math.isfinite(spacing) and spacing > 0):
        raise GeometryError(f"spacing must be a positive number of mm, got {spacing}")

    return rows, cols, pos, row_dir, col_dir, normal


def _account(q: FloatArray, pos_sorted: FloatArray, normal: FloatArray, step: float,
             order: int, reason: str, spacing_source: str, fill: float,
             start: tuple[int, int], out_shape: tuple[int, int, int], in_shape: tuple[int, int],
             copied: int, used: tuple[int, ...]) -> dict[str, Any]:
    """The JSON-ready account of a resampling (see :class:`ResampleResult`)."""
    import numpy as np

    i_start, j_start = start
    out_x, out_y, n_planes = out_shape
    rows, cols = in_shape
    n_in = int(q.size)
    ref = pos_sorted[0]
    plane_idx = np.clip(np.rint((q - q[0]) / step), 0, n_planes - 1)
    deviation = float(np.max(np.abs(q - q[0] - plane_idx * step)))
    trend = pos_sorted[-1] - ref
    trend_norm = float(np.linalg.norm(trend))
    trend_angle = (math.degrees(math.acos(min(1.0, abs(float(trend @ normal)) / trend_norm)))
                   if trend_norm > 0 else 0.0)
    unused = sorted(set(range(n_in)) - set(used))
    detail: dict[str, Any] = {
        "method": "linear" if order == 1 else "nearest",
        "spacing_mm": round(step, 9),
        "spacing_source": spacing_source,
        "spacing_reason": reason,
        "fill": float(fill),
        "in_plane_extent": (
            "union of all slice footprints (pixel centres) on the first slice's pixel lattice, "
            "rounded out to whole pixels; origin moved by in_plane_offset_pixels"),
        "in_plane_offset_pixels": [int(i_start), int(j_start)],
        "in_plane_growth_pixels": [int(out_x - cols), int(out_y - rows)],
        "outside_field": (
            "voxels whose point, projected along the normal, falls outside the pixel-centre "
            "extent of a slice they draw on are set to fill"),
        "n_input_slices": n_in,
        "n_output_slices": n_planes,
        "output_shape": [int(out_x), int(out_y), int(n_planes)],
        "planes_copied": copied,
        "planes_interpolated": n_planes - copied,
        "max_source_to_plane_mm": round(deviation, 9),
        "max_interval_mm": round(float(np.max(np.diff(q))), 9) if n_in > 1 else None,
        "position_trend_angle_degrees": round(trend_angle, 6),
        "unused_slices": unused,
    }
    return detail

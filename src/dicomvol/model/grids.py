"""Output grids for resampling, and the spacing rule: pure LPS geometry, no pixels.

A planner uses these to state the resampled grid (affine and shape) before
any pixel is read; :mod:`dicomvol.pixels.resample` fills the same grid. The
conventions are the project's (see :mod:`dicomvol.model.geometry`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomvol._typing import FloatArray
from dicomvol.constants import SAME_POSITION_TOLERANCE_MM, SLICE_SPACING_RELATIVE_TOLERANCE
from dicomvol.errors import GeometryError
from dicomvol.model import geometry

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: In-plane coordinates within this many pixels of an integer count as that integer: a slice
#: whose offset on the output lattice is integral is copied, not interpolated, and a point this
#: close to a slice's edge pixel centre is inside the slice.
GRID_TOLERANCE_PIXELS = 1e-6
#: Default tolerance of :func:`choose_spacing`: every position within this fraction of the
#: spacing of a grid plane (1 %, the project's slice spacing tolerance).
SPACING_RELATIVE_TOLERANCE = SLICE_SPACING_RELATIVE_TOLERANCE
#: Candidate spacings are intervals divided by 1 .. MAX_SUBDIVISION, and a chosen spacing is
#: never smaller than the smallest interval / MAX_SUBDIVISION.
MAX_SUBDIVISION = 8
#: A chosen spacing never yields more output slices than this many times the input positions.
MAX_OUTPUT_FACTOR = 4
#: Nominal spacing (mm) of a one-slice stack, which has no interval (as geometry.affine_for).
SINGLE_SLICE_SPACING_MM = 1.0
#: Refinement passes of a candidate spacing (least-squares fit of the step to the positions).
_REFINE_PASSES = 5


def choose_spacing(
    normal_positions: Sequence[float] | NDArray[np.floating[Any]],
    rel_tolerance: float = SPACING_RELATIVE_TOLERANCE,
) -> tuple[float, str]:
    """Output slice spacing for slices at the given positions along the normal.

    The rule, in order:

    1. Positions are sorted; positions closer than ``SAME_POSITION_TOLERANCE_MM``
       count once. With one position there is no interval: the spacing is
       ``SINGLE_SLICE_SPACING_MM``.
    2. The grid starts at the first position ``p0``: planes at ``p0 + m * s``.
    3. Candidate seeds are every distinct interval ``d`` (intervals within
       ``rel_tolerance`` of each other count once) divided by ``m = 1 ..
       MAX_SUBDIVISION``, and the approximate GCD of the distinct intervals.
    4. Each seed is refined: every position is assigned to its nearest plane
       ``m_i = round((p_i - p0) / s)`` and ``s`` is refitted by least squares
       through ``p0`` (``s = sum(m_i x_i) / sum(m_i^2)``, ``x_i = p_i - p0``),
       repeated until the assignment is stable. This removes the drift a
       rounded interval would accumulate over many slices.
    5. A refined candidate qualifies when (a) every position lies within
       ``rel_tolerance * s`` of its plane, (b) no two positions share a plane,
       (c) ``s >= min interval / MAX_SUBDIVISION`` and (d) the grid from the
       first to the last position has at most ``MAX_OUTPUT_FACTOR * N``
       planes (N distinct positions).
    6. The largest qualifying candidate is returned: the coarsest grid that
       still has a plane at every acquired position, i.e. the fewest output
       slices without moving any slice by more than ``rel_tolerance`` of a
       step. Examples: positions 0, 1, 2, 3, 5, 6 (a missing slice) give 1;
       twenty intervals of 1.25 then twenty of 2.5 give 1.25; intervals 1, 1,
       1, 2, 2, 3 give 1.
    7. When no candidate qualifies (e.g. random jitter), the median interval
       is used, adjusted so that the span from the first to the last position
       is a whole number of steps (``s = span / max(1, round(span /
       median))``; both end slices then lie on planes and nothing beyond the
       last plane is lost), and capped so that the grid has at most
       ``MAX_OUTPUT_FACTOR * N`` planes.

    Parameters
    ----------
    normal_positions : sequence of float or ndarray of shape (N,)
        Slice positions projected on the slice normal, mm, in any order.
    rel_tolerance : float
        Allowed distance of a position from its plane, as a fraction of the
        spacing (0 <= rel_tolerance < 0.5).

    Returns
    -------
    spacing : float
        Output slice spacing, mm, > 0.
    reason : str
        Why this spacing was chosen, for reports.

    Raises
    ------
    GeometryError
        For no positions, non-finite positions or a tolerance outside [0, 0.5).
    """
    import numpy as np

    q = np.sort(np.asarray(normal_positions, dtype=np.float64).ravel())
    if q.size == 0:
        raise GeometryError("choose_spacing needs at least one position")
    if not np.all(np.isfinite(q)):
        raise GeometryError("slice positions must be finite")
    if not 0.0 <= rel_tolerance < 0.5:
        raise GeometryError(f"rel_tolerance must lie in [0, 0.5), got {rel_tolerance}")
    q = distinct_positions(q)
    n = int(q.size)
    if n == 1:
        return SINGLE_SLICE_SPACING_MM, (
            f"single slice position: no interval, nominal {SINGLE_SLICE_SPACING_MM:g} mm")
    x = q - q[0]
    steps = np.diff(q)
    d_min = float(steps.min())
    floor = d_min / MAX_SUBDIVISION
    max_planes = MAX_OUTPUT_FACTOR * n
    intervals = _distinct_intervals(steps, rel_tolerance)
    seeds = {d / m for d in intervals for m in range(1, MAX_SUBDIVISION + 1)}
    gcd = _approx_gcd(intervals, max(rel_tolerance * floor, 1e-9))
    if gcd >= floor * (1 - 1e-9):
        seeds.add(gcd)
    best: tuple[float, float, int] | None = None
    for seed in sorted(seeds, reverse=True):
        fit = _fit_grid(x, seed, rel_tolerance, floor, max_planes)
        if fit is not None and (best is None or fit[0] > best[0]):
            best = fit
    interval_text = ", ".join(f"{d:.6g}" for d in intervals[:6])
    if len(intervals) > 6:
        interval_text += ", ..."
    if best is not None:
        s, dev, planes = best
        gaps = planes - n
        reason = (
            f"common step {s:.6g} mm: all {n} positions within {rel_tolerance:.0%} of the "
            f"step from a grid plane (max deviation {dev:.3g} mm); intervals {interval_text} mm; "
            f"{planes} planes, {gaps} without a source slice (interpolated)")
        return s, reason
    span = float(x[-1])
    median = geometry.median(steps)
    count = max(1, round(span / median))
    capped = count + 1 > max_planes
    if capped:
        count = max_planes - 1
    s = span / count
    reason = (
        f"no common step >= min interval / {MAX_SUBDIVISION} ({floor:.6g} mm) keeps every "
        f"position within {rel_tolerance:.0%} of a grid plane with at most "
        f"{MAX_OUTPUT_FACTOR} x {n} planes; median interval {median:.6g} mm")
    if capped:
        reason += (f", coarsened to {s:.6g} mm to keep at most {max_planes} planes over the "
                   f"{span:.6g} mm span")
    else:
        reason += f", adjusted to {s:.6g} mm so that {count} steps span the {span:.6g} mm stack"
    return s, reason


def distinct_positions(q: FloatArray) -> FloatArray:
    """Sorted positions with those closer than SAME_POSITION_TOLERANCE_MM counted once."""
    import numpy as np

    keep = np.ones(q.size, dtype=bool)
    keep[1:] = np.diff(q) >= SAME_POSITION_TOLERANCE_MM
    return q[keep]


def _distinct_intervals(steps: FloatArray, rel_tolerance: float) -> list[float]:
    """Distinct intervals (median of each cluster within rel_tolerance), largest first."""
    import numpy as np

    values = np.sort(steps)
    clusters: list[list[float]] = [[float(values[0])]]
    for v in values[1:]:
        if float(v) - clusters[-1][0] <= rel_tolerance * clusters[-1][0]:
            clusters[-1].append(float(v))
        else:
            clusters.append([float(v)])
    return sorted((geometry.median(c) for c in clusters), reverse=True)


def _approx_gcd(values: Sequence[float], tol: float) -> float:
    """Largest step of which every value is a multiple within ``tol`` (float Euclid)."""
    g = float(values[0])
    for v in values[1:]:
        a, b = max(g, float(v)), min(g, float(v))
        while b > tol:
            r = math.fmod(a, b)
            if b - r <= tol:
                r = 0.0
            a, b = b, r
        g = a
    return g


def _fit_grid(
    x: FloatArray, seed: float, rel_tolerance: float, floor: float, max_planes: int
) -> tuple[float, float, int] | None:
    """Refine ``seed`` to the positions ``x`` (from 0); (step, max deviation, planes) or None.

    ``x`` has shape (N,), sorted, ``x[0] == 0``. None when the refined step
    breaks a rule of :func:`choose_spacing` (tolerance, one position per plane,
    floor, plane count).
    """
    import numpy as np

    s = seed
    for _ in range(_REFINE_PASSES):
        m = np.rint(x / s)
        if np.any(np.diff(m) <= 0):
            return None
        refit = float(m @ x) / float(m @ m)
        if refit == s:
            break
        s = refit
    m = np.rint(x / s)
    if np.any(np.diff(m) <= 0) or s < floor * (1 - 1e-9):
        return None
    planes = int(m[-1]) + 1
    dev = float(np.max(np.abs(x - m * s)))
    if planes > max_planes or dev > rel_tolerance * s * (1 + 1e-9):
        return None
    return s, dev, planes


def output_grid(
    positions: Sequence[Sequence[float]] | NDArray[np.floating[Any]],
    orientation: Sequence[float], pixel_spacing: tuple[float, float],
    rows: int, columns: int, spacing: float,
) -> tuple[FloatArray, tuple[int, int, int]]:
    """The affine (LPS) and shape (X', Y', Z) ``resample_stack`` gives these slices.

    Pure geometry, no pixels: lets a planner report the output grid in advance.
    """
    import numpy as np

    pos = np.asarray(positions, dtype=np.float64)
    iop = np.asarray(orientation, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    normal = normal / float(np.linalg.norm(normal))
    q_all = pos @ normal
    order = np.argsort(q_all, kind="stable")
    _, _, _, shape, affine = lattice(pos[order], row_dir, col_dir, normal,
                                      (float(pixel_spacing[0]), float(pixel_spacing[1])),
                                      rows, columns, spacing, q_all[order])
    return affine, shape


def lattice(
    pos_sorted: FloatArray, row_dir: FloatArray, col_dir: FloatArray, normal: FloatArray,
    pixel_spacing: tuple[float, float], rows: int, cols: int, step: float, q: FloatArray,
) -> tuple[FloatArray, int, int, tuple[int, int, int], FloatArray]:
    """Slice offsets on the first slice's lattice and the output grid covering all slices.

    Offsets of each slice's pixel (0, 0) on the first slice's lattice (in pixels) and
    along the normal (mm) solve IPP_s - IPP_0 = i R ps_col + j C ps_row + t n. The
    output extends the lattice by whole pixels to cover every slice's footprint.
    """
    import numpy as np

    ps_row, ps_col = pixel_spacing
    basis = np.column_stack([row_dir * ps_col, col_dir * ps_row, normal])
    ref = pos_sorted[0]
    offsets = np.linalg.solve(basis, (pos_sorted - ref).T).T
    span = float(q[-1] - q[0])
    n_planes = math.floor(span / step + SPACING_RELATIVE_TOLERANCE) + 1
    tol = GRID_TOLERANCE_PIXELS
    i_start = math.floor(float(offsets[:, 0].min()) + tol)
    j_start = math.floor(float(offsets[:, 1].min()) + tol)
    i_end = math.ceil(float(offsets[:, 0].max()) + cols - 1 - tol)
    j_end = math.ceil(float(offsets[:, 1].max()) + rows - 1 - tol)
    out_x, out_y = i_end - i_start + 1, j_end - j_start + 1
    affine = np.eye(4)
    affine[:3, 0] = row_dir * ps_col
    affine[:3, 1] = col_dir * ps_row
    affine[:3, 2] = normal * step
    affine[:3, 3] = ref + i_start * row_dir * ps_col + j_start * col_dir * ps_row
    return offsets, i_start, j_start, (out_x, out_y, n_planes), affine

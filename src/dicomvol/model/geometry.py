"""Slice geometry: the IDC checks, the affine, exactness and regular runs.

All coordinates are DICOM patient coordinates (LPS, mm). A volume's voxel
index is (i, j, k): i along a DICOM row (ImageOrientationPatient[:3], step
PixelSpacing[1]), j down the columns (IOP[3:], step PixelSpacing[0]) and k
along the slice step. Affines are 4 x 4 and map (i, j, k, 1) to LPS. Nothing
here touches pixel data, and nothing here imports numpy: a plan is made of
3-vectors and one 4 x 4 matrix per volume, which plain Python computes faster
than numpy's per-call overhead allows, and a process that only plans (the
main process of a run) stays as small as the interpreter (issue 15). Affines
are returned as :data:`~dicomvol._typing.AffineRows` (four rows of four
floats); every function here also accepts a (4, 4) ndarray.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dicomvol._typing import AffineLike, AffineRows, Orientation, Vec3
from dicomvol.constants import (
    EXACTNESS_TOLERANCE_VOXELS,
    IN_PLANE_TOLERANCE_MM,
    ORIENTATION_TOLERANCE,
    SAME_ORIENTATION_TOLERANCE,
    SAME_PIXEL_SPACING_TOLERANCE_MM,
    SAME_POSITION_TOLERANCE_MM,
    SHEAR_TOLERANCE_DEGREES,
    SLICE_SPACING_RELATIVE_TOLERANCE,
)
from dicomvol.errors import GeometryError
from dicomvol.model.detail import Gap, GeometryChecks
from dicomvol.model.records import FrameRecord


@dataclass(frozen=True, slots=True)
class SliceGeometry:
    """Position, orientation and pixel spacing of one frame (pixel free)."""

    position: tuple[float, float, float]
    orientation: Orientation
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int

    @classmethod
    def of(cls, frame: FrameRecord) -> SliceGeometry:
        """The geometry of a frame that has position, orientation and spacing."""
        if frame.position is None or frame.orientation is None or frame.pixel_spacing is None:
            raise GeometryError("frame lacks ImagePositionPatient, ImageOrientationPatient or "
                             "PixelSpacing")
        return cls(frame.position, frame.orientation, frame.pixel_spacing, frame.rows,
                   frame.columns)

    def pixel_to_patient(self) -> AffineRows:
        """4 x 4 matrix (rows) mapping (i, j, 0, 1) of this frame to LPS."""
        row, col = directions(self.orientation)
        n = cross3(row, col)
        dx, dy = self.pixel_spacing[1], self.pixel_spacing[0]
        p = self.position
        return (*((row[a] * dx, col[a] * dy, n[a], float(p[a])) for a in range(3)),
                (0.0, 0.0, 0.0, 1.0))


def rows_of(affine: AffineLike) -> AffineRows:
    """The four rows of a 4 x 4 affine as plain floats (from rows or a (4, 4) ndarray)."""
    rows = tuple(tuple(float(v) for v in row) for row in affine)
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        raise ValueError(f"an affine is 4 x 4, not {len(rows)} rows")
    return rows


def affines_close(a: AffineLike, b: AffineLike, atol: float, rtol: float = 1e-5) -> bool:
    """``numpy.allclose(a, b, rtol, atol)`` of two 4 x 4 affines: every |a - b| <= atol +
    rtol |b| (False where either holds a NaN)."""
    return all(abs(x - y) <= atol + rtol * abs(y)
               for ra, rb in zip(rows_of(a), rows_of(b), strict=True)
               for x, y in zip(ra, rb, strict=True))


def column(affine: AffineLike, c: int) -> Vec3:
    """Column ``c`` of the affine's upper three rows (0-2: the voxel steps, 3: the origin)."""
    return (float(affine[0][c]), float(affine[1][c]), float(affine[2][c]))


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """a . b of two 3-vectors."""
    return float(a[0]) * float(b[0]) + float(a[1]) * float(b[1]) + float(a[2]) * float(b[2])


def norm(a: Sequence[float]) -> float:
    """|a| of a 3-vector."""
    return math.sqrt(dot(a, a))


def column_norms(affine: AffineLike) -> Vec3:
    """The lengths of the three voxel steps (columns 0-2): the voxel spacing in mm."""
    return (norm(column(affine, 0)), norm(column(affine, 1)), norm(column(affine, 2)))


def directions(orientation: Sequence[float]) -> tuple[Vec3, Vec3]:
    """Row and column direction cosines of an ImageOrientationPatient."""
    o = [float(v) for v in orientation]
    return (o[0], o[1], o[2]), (o[3], o[4], o[5])


def cross3(a: Sequence[float], b: Sequence[float]) -> Vec3:
    """a x b of two 3-vectors (the numbers ``np.cross`` gives)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return (a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0)


def det3(a: Sequence[float], b: Sequence[float], c: Sequence[float]) -> float:
    """The determinant of the 3 x 3 matrix with rows (or columns) a, b, c: (a x b) . c."""
    return dot(cross3(a, b), c)


def slice_normal(orientation: Sequence[float]) -> Vec3:
    """Unit slice normal, row x column direction."""
    row, col = directions(orientation)
    n = cross3(row, col)
    length = norm(n)
    return (n[0] / length, n[1] / length, n[2] / length) if length > 0 else n


def same_orientation(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when every IOP component differs by less than SAME_ORIENTATION_TOLERANCE."""
    if a == b and all(map(math.isfinite, a)):  # the common case, called per frame
        return True
    return len(a) == len(b) and all(
        abs(x - y) < SAME_ORIENTATION_TOLERANCE for x, y in zip(a, b, strict=True))


def same_spacing(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when both PixelSpacing values agree within SAME_PIXEL_SPACING_TOLERANCE_MM."""
    if a == b and all(map(math.isfinite, a)):
        return True
    return len(a) == len(b) and all(
        abs(x - y) < SAME_PIXEL_SPACING_TOLERANCE_MM for x, y in zip(a, b, strict=True))


def row_x_col(orientation: Sequence[float]) -> Vec3:
    """row x column of an ImageOrientationPatient, not normalised."""
    a0, a1, a2, b0, b1, b2 = orientation
    return (a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0)


def cross_norm(orientation: Sequence[float]) -> float:
    """|row x column| of an ImageOrientationPatient (called per frame)."""
    return norm(row_x_col(orientation))


def along_normal(position: Sequence[float], orientation: Sequence[float],
                 distances: Sequence[float]) -> list[Vec3]:
    """The points ``position + d * (row x column)`` for each ``d`` of ``distances`` (mm
    for unit direction cosines): the frames of a multi-frame object stacked from one
    ImagePositionPatient (RT dose grid offsets, NM reconstruction slices)."""
    n = row_x_col(orientation)
    return [(position[0] + d * n[0], position[1] + d * n[1], position[2] + d * n[2])
            for d in distances]


def _position(frame: FrameRecord) -> Vec3:
    if frame.position is None:
        raise GeometryError(f"{frame.rel}: frame lacks ImagePositionPatient")
    return frame.position


def along(frames: Sequence[FrameRecord], direction: Sequence[float]) -> list[float]:
    """Each frame's ImagePositionPatient projected on ``direction`` (mm for a unit
    direction), length N; GeometryError for a frame without a position."""
    d0, d1, d2 = (float(v) for v in direction)
    return [p[0] * d0 + p[1] * d1 + p[2] * d2 for p in map(_position, frames)]


def projections(frames: Sequence[FrameRecord], orientation: Sequence[float]) -> list[float]:
    """Projection (mm) of each frame's ImagePositionPatient on the slice normal, length N."""
    return along(frames, slice_normal(orientation))


def obliquity_degrees(orientation: Sequence[float]) -> float:
    """Largest angle (degrees) of the row, column or normal axis from its nearest patient axis.

    0 for a pure axial, sagittal or coronal grid; an axial grid rotated in plane
    counts as oblique, as its voxels are not aligned with the patient axes.
    """
    row, col = directions(orientation)
    worst = 0.0
    for axis in (row, col, cross3(row, col)):
        length = norm(axis)
        if length == 0:
            return 90.0
        cos = max(abs(v) for v in axis) / length
        worst = max(worst, math.degrees(math.acos(min(1.0, cos))))
    return worst


def plane_name(orientation: Sequence[float]) -> str:
    """'axial', 'coronal' or 'sagittal' by the slice normal's dominant patient axis."""
    n = slice_normal(orientation)
    dominant = max(range(3), key=lambda a: abs(n[a]))  # the first of equals, as np.argmax
    return ("sagittal", "coronal", "axial")[dominant]


def describe_orientation(orientation: Sequence[float]) -> str:
    """Plane name, with the obliquity in degrees when not aligned (e.g. 'oblique axial 20.0°')."""
    deg = obliquity_degrees(orientation)
    name = plane_name(orientation)
    return name if deg < 0.5 else f"oblique {name} {deg:.1f}°"


def _ptp(values: Sequence[float]) -> float:
    return max(values) - min(values) if values else 0.0


def idc_checks(frames: Sequence[FrameRecord]) -> GeometryChecks | None:
    """The per-series checks of the IDC ``volume_geometry_index`` table.

    Computed over single frames with position and orientation, following the
    IDC definition with the contract's tolerances: orientation strings equal
    (here: within SAME_ORIENTATION_TOLERANCE), |row x col| within
    ORIENTATION_TOLERANCE of 1, distinct normal projections per instance,
    IPP projected on row and column within IN_PLANE_TOLERANCE_MM, equal
    PixelSpacing, Rows and Columns, and every adjacent interval within
    SLICE_SPACING_RELATIVE_TOLERANCE of the span / (N - 1).

    Returns the checks (IDC column names plus ``obliquity_degrees`` and
    ``slice_spacing_mm``: span / (N - 1), None for a single slice), or None
    when no frame has a position and an orientation.
    """
    geo = [f for f in frames if f.position is not None and f.orientation is not None]
    if not geo:
        return None
    ref = geo[0].orientation
    assert ref is not None
    orientations = {f.orientation or ref for f in geo}  # checked once per distinct value
    single = all(same_orientation(o, ref) for o in orientations)
    row, col = directions(ref)
    orthogonal = all(abs(cross_norm(o) - 1.0) <= ORIENTATION_TOLERANCE for o in orientations)
    proj = projections(geo, ref)
    in_row, in_col = along(geo, row), along(geo, col)
    uids = {f.sop_instance_uid for f in geo}
    distinct = _count_distinct(proj)
    first_spacing = geo[0].pixel_spacing
    spacing_ok = first_spacing is not None and all(
        s is not None and same_spacing(s, first_spacing)
        for s in {f.pixel_spacing for f in geo})
    dims_ok = len({(f.rows, f.columns) for f in geo}) == 1
    sorted_proj = sorted(proj)
    n = len(sorted_proj)
    spacing_mm: float | None = None
    uniform = True
    if n > 1:
        expected = (sorted_proj[-1] - sorted_proj[0]) / (n - 1)
        spacing_mm = expected
        worst = max(abs(b - a - expected) for a, b in itertools.pairwise(sorted_proj))
        uniform = expected > 0 and worst < SLICE_SPACING_RELATIVE_TOLERANCE * expected
    return GeometryChecks(
        single_orientation=single,
        orthogonal_orientation=orthogonal,
        unique_slice_positions=distinct == len(uids),
        consistent_in_plane_row=_ptp(in_row) < IN_PLANE_TOLERANCE_MM,
        consistent_in_plane_col=_ptp(in_col) < IN_PLANE_TOLERANCE_MM,
        consistent_pixel_spacing=spacing_ok,
        consistent_image_dimensions=dims_ok,
        uniform_slice_spacing=uniform,
        obliquity_degrees=round(obliquity_degrees(ref), 4),
        slice_spacing_mm=None if spacing_mm is None else round(spacing_mm, 6),
    )


def _count_distinct(values: Sequence[float]) -> int:
    if len(values) == 0:
        return 0
    s = sorted(values)
    return 1 + sum(1 for a, b in itertools.pairwise(s) if b - a >= SAME_POSITION_TOLERANCE_MM)


def affine_for(frames: Sequence[FrameRecord], fallback_spacing: float | None = None
               ) -> AffineRows:
    """LPS affine of slices in k order, from the first slice and the mean step.

    Column 0 is row direction x PixelSpacing[1], column 1 is column direction
    x PixelSpacing[0] (both of the first slice), column 2 is (last - first)
    / (N - 1), column 3 the first slice's position. For a single slice,
    column 2 is the normal times ``fallback_spacing`` (or 1 mm).

    Returns
    -------
    AffineRows
        The (4, 4) matrix as four rows (``numpy.array`` of it is the ndarray).
    """
    first = SliceGeometry.of(frames[0])
    m = first.pixel_to_patient()
    if len(frames) > 1:
        last = _position(frames[-1])
        steps = len(frames) - 1
        step = tuple((float(last[a]) - float(first.position[a])) / steps for a in range(3))
    else:
        n = slice_normal(first.orientation)
        step = tuple(v * (fallback_spacing or 1.0) for v in n)
    return (*((r[0], r[1], step[a], r[3]) for a, r in enumerate(m[:3])), m[3])


def _inverse(affine: AffineLike) -> tuple[tuple[Vec3, Vec3, Vec3], Vec3]:
    """(M^-1 as three rows, -M^-1 t) of an affine [M t; 0 1], by the adjugate."""
    (a, b, c), (d, e, f), (g, h, i) = (column(affine, 0), column(affine, 1), column(affine, 2))
    # M's columns are the voxel steps: M = [[a d g], [b e h], [c f i]].
    det = a * (e * i - f * h) - d * (b * i - c * h) + g * (b * f - c * e)
    if det == 0 or not math.isfinite(det):
        raise GeometryError("the affine is singular (a zero or repeated voxel step)")
    inv = ((e * i - f * h) / det, (g * f - d * i) / det, (d * h - g * e) / det), \
          ((c * h - b * i) / det, (a * i - g * c) / det, (g * b - a * h) / det), \
          ((b * f - c * e) / det, (d * c - a * f) / det, (a * e - d * b) / det)
    t = column(affine, 3)
    return inv, (-dot(inv[0], t), -dot(inv[1], t), -dot(inv[2], t))


def voxel_errors(affine: AffineLike, frames: Sequence[FrameRecord]) -> list[float]:
    """Largest voxel-space distance between each frame's pixels and where ``affine`` puts them.

    For slice k, the four corner pixels (row j, column i) are placed by the
    frame's own IPP, IOP and PixelSpacing, mapped through the inverse affine,
    and compared with (i, j, k). The result is exact for every pixel because
    both mappings are affine in (i, j): the index error at a corner is the error
    at the slice's first pixel plus the corner's offsets along two error steps.

    Returns
    -------
    list of float, length N
        Max absolute index error per slice, in voxels.
    """
    inv, (s0, s1, s2) = _inverse(affine)
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = inv
    out: list[float] = []
    key: tuple[object, ...] | None = None
    u0 = u1 = u2 = v0 = v1 = v2 = 0.0
    for k, frame in enumerate(frames):  # called per volume of a 4D series: kept inline
        p = frame.position
        if p is None or frame.orientation is None or frame.pixel_spacing is None:
            raise GeometryError("frame lacks ImagePositionPatient, ImageOrientationPatient or "
                             "PixelSpacing")
        frame_key = (frame.orientation, frame.pixel_spacing, frame.rows, frame.columns)
        if frame_key != key:  # the error steps across the slice, shared by equal frames
            key = frame_key
            row, col = directions(frame.orientation)
            sx = (frame.columns - 1) * frame.pixel_spacing[1]
            sy = (frame.rows - 1) * frame.pixel_spacing[0]
            u0, u1, u2 = (dot(m, row) * sx for m in inv)
            v0, v1, v2 = (dot(m, col) * sy for m in inv)
            u0 -= frame.columns - 1
            v1 -= frame.rows - 1
        p0, p1, p2 = float(p[0]), float(p[1]), float(p[2])
        e0 = a00 * p0 + a01 * p1 + a02 * p2 + s0
        e1 = a10 * p0 + a11 * p1 + a12 * p2 + s1
        e2 = a20 * p0 + a21 * p1 + a22 * p2 + s2 - k
        out.append(max(abs(e0), abs(e0 + u0), abs(e0 + v0), abs(e0 + u0 + v0),
                       abs(e1), abs(e1 + u1), abs(e1 + v1), abs(e1 + u1 + v1),
                       abs(e2), abs(e2 + u2), abs(e2 + v2), abs(e2 + u2 + v2)))
    return out


def is_exact(affine: AffineLike, frames: Sequence[FrameRecord]) -> bool:
    """True when every slice lies within EXACTNESS_TOLERANCE_VOXELS of where the affine puts it."""
    return max(voxel_errors(affine, frames)) <= EXACTNESS_TOLERANCE_VOXELS


def shear_degrees(affine: AffineLike) -> float:
    """Angle (degrees) between the slice step (column 2) and the slice normal."""
    step = column(affine, 2)
    n = cross3(column(affine, 0), column(affine, 1))
    denom = norm(step) * norm(n)
    if denom == 0:
        return 0.0
    cos = abs(dot(step, n)) / denom
    return math.degrees(math.acos(min(1.0, cos)))


def is_sheared(affine: AffineLike) -> bool:
    """True when the slice step leaves the normal by more than SHEAR_TOLERANCE_DEGREES."""
    return shear_degrees(affine) > SHEAR_TOLERANCE_DEGREES


def exact_runs(frames: Sequence[FrameRecord]) -> list[tuple[int, int]]:
    """Split slices (sorted along the normal) into the largest exact regular runs.

    The longest stretch of equal consecutive step vectors (within
    EXACTNESS_TOLERANCE_VOXELS of a step) is taken first, verified exact, and the
    slices left on either side are split the same way. So 0, 5, 7.5, 10, 12.5 mm
    gives the run 5-12.5 and the isolated slice 0, not 0-5 and 7.5-12.5. Returns
    half-open index ranges ``(start, stop)`` covering all slices in order.
    """
    runs: list[tuple[int, int]] = []
    _split_segment(frames, 0, len(frames), runs)
    return sorted(runs)


def _split_segment(frames: Sequence[FrameRecord], start: int, stop: int,
                   runs: list[tuple[int, int]]) -> None:
    if stop - start <= 2:
        if stop - start == 2 or stop - start == 1:
            runs.append((start, stop))
        return
    pos = [_position(f) for f in frames[start:stop]]
    steps = [(b[0] - a[0], b[1] - a[1], b[2] - a[2]) for a, b in itertools.pairwise(pos)]
    best = (0, 1)  # (first slice, slice count) of the longest equal-step stretch
    a = 0
    for b in range(1, len(steps) + 1):
        ref = steps[a]
        if b == len(steps) or norm([s - r for s, r in zip(steps[b], ref, strict=True)]) > (
                EXACTNESS_TOLERANCE_VOXELS * norm(ref)):
            if b - a + 1 > best[1]:
                best = (a, b - a + 1)
            a = b
    lo, hi = start + best[0], start + best[0] + best[1]
    while hi - lo > 2 and not is_exact(affine_for(frames[lo:hi]), frames[lo:hi]):
        hi -= 1  # drift accumulated: shorten until exact
    runs.append((lo, hi))
    _split_segment(frames, start, lo, runs)
    _split_segment(frames, hi, stop, runs)


def diffs(values: Sequence[float]) -> list[float]:
    """Adjacent differences ``values[n + 1] - values[n]`` (``np.diff`` of a 1-D sequence)."""
    return [float(b) - float(a) for a, b in itertools.pairwise(values)]


def gaps(proj: Sequence[float]) -> list[Gap]:
    """Intervals that are near-integer multiples (>= 2) of the median interval: missing slices.

    Parameters
    ----------
    proj : sequence of float, length N
        Sorted normal projections.
    """
    if len(proj) < 3:
        return []
    steps = diffs(proj)
    median_step = median(steps)
    found: list[Gap] = []
    if median_step <= 0:
        return found
    for idx, step in enumerate(steps):
        ratio = step / median_step
        n_missing = round(ratio) - 1
        if n_missing >= 1 and abs(ratio - round(ratio)) < 0.1:
            found.append(Gap(after_position_mm=round(float(proj[idx]), 4),
                             gap_mm=round(step, 4), missing_slices=n_missing))
    return found


def median(values: Iterable[float]) -> float:
    """The median of ``values`` as ``np.median`` gives it (NaN when one is NaN; an ndarray
    counts every element). Raises ValueError for no values.
    """
    flat = values.ravel() if hasattr(values, "ravel") else values  # an ndarray of any shape
    data = sorted(float(v) for v in flat)
    if not data:
        raise ValueError("median of no values")
    if any(math.isnan(v) for v in data):
        return math.nan
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2

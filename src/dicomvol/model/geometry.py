"""Slice geometry: the IDC checks, the affine, exactness and regular runs.

All coordinates are DICOM patient coordinates (LPS, mm). A volume's voxel
index is (i, j, k): i along a DICOM row (ImageOrientationPatient[:3], step
PixelSpacing[1]), j down the columns (IOP[3:], step PixelSpacing[0]) and k
along the slice step. Affines are 4 x 4 and map (i, j, k, 1) to LPS. Nothing
here touches pixel data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dicomvol._typing import FloatArray, Orientation, Vec3
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

    def pixel_to_patient(self) -> FloatArray:
        """4 x 4 matrix mapping (i, j, 0, 1) of this frame to LPS."""
        row, col = directions(self.orientation)
        m = np.eye(4)
        m[:3, 0] = row * self.pixel_spacing[1]
        m[:3, 1] = col * self.pixel_spacing[0]
        m[:3, 2] = cross3(row, col)
        m[:3, 3] = self.position
        return m


def directions(orientation: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """Row and column direction cosines of an ImageOrientationPatient, as arrays."""
    o = np.asarray(orientation, dtype=np.float64)
    return o[:3], o[3:6]


def cross3(a: FloatArray, b: FloatArray) -> FloatArray:
    """a x b of two 3-vectors, shape (3,): the numbers ``np.cross`` gives (the same three
    products and differences in float64), without its per-call overhead (~20 us)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def slice_normal(orientation: Sequence[float]) -> FloatArray:
    """Unit slice normal, row x column direction, shape (3,)."""
    row, col = directions(orientation)
    n = cross3(row, col)
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 0 else n


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
    """row x column of an ImageOrientationPatient, not normalised (plain Python)."""
    a0, a1, a2, b0, b1, b2 = orientation
    return (a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0)


def cross_norm(orientation: Sequence[float]) -> float:
    """|row x column| of an ImageOrientationPatient (plain Python: called per frame)."""
    c0, c1, c2 = row_x_col(orientation)
    return math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)


def along_normal(position: Sequence[float], orientation: Sequence[float],
                 distances: Sequence[float]) -> list[Vec3]:
    """The points ``position + d * (row x column)`` for each ``d`` of ``distances`` (mm
    for unit direction cosines): the frames of a multi-frame object stacked from one
    ImagePositionPatient (RT dose grid offsets, NM reconstruction slices)."""
    n = row_x_col(orientation)
    return [(position[0] + d * n[0], position[1] + d * n[1], position[2] + d * n[2])
            for d in distances]


def projections(frames: Sequence[FrameRecord], orientation: Sequence[float]) -> FloatArray:
    """Projection (mm) of each frame's ImagePositionPatient on the slice normal, shape (N,)."""
    n = slice_normal(orientation)
    pos = np.array([f.position for f in frames], dtype=np.float64)
    return pos @ n


def obliquity_degrees(orientation: Sequence[float]) -> float:
    """Largest angle (degrees) of the row, column or normal axis from its nearest patient axis.

    0 for a pure axial, sagittal or coronal grid; an axial grid rotated in plane
    counts as oblique, as its voxels are not aligned with the patient axes.
    """
    row, col = directions(orientation)
    worst = 0.0
    for axis in (row, col, cross3(row, col)):
        norm = float(np.linalg.norm(axis))
        if norm == 0:
            return 90.0
        cos = float(np.max(np.abs(axis))) / norm
        worst = max(worst, math.degrees(math.acos(min(1.0, cos))))
    return worst


def plane_name(orientation: Sequence[float]) -> str:
    """'axial', 'coronal' or 'sagittal' by the slice normal's dominant patient axis."""
    n = slice_normal(orientation)
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(n)))]


def describe_orientation(orientation: Sequence[float]) -> str:
    """Plane name, with the obliquity in degrees when not aligned (e.g. 'oblique axial 20.0°')."""
    deg = obliquity_degrees(orientation)
    name = plane_name(orientation)
    return name if deg < 0.5 else f"oblique {name} {deg:.1f}°"


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
    single = all(same_orientation(f.orientation or ref, ref) for f in geo)
    row, col = directions(ref)
    mags = [cross_norm(f.orientation or ref) for f in geo]
    orthogonal = all(abs(m - 1.0) <= ORIENTATION_TOLERANCE for m in mags)
    pos = np.array([f.position for f in geo], dtype=np.float64)
    proj = pos @ slice_normal(ref)
    in_row = pos @ row
    in_col = pos @ col
    uids = {f.sop_instance_uid for f in geo}
    distinct = _count_distinct(proj)
    spacing_ok = all(
        f.pixel_spacing is not None and geo[0].pixel_spacing is not None
        and same_spacing(f.pixel_spacing, geo[0].pixel_spacing) for f in geo
    )
    dims_ok = len({(f.rows, f.columns) for f in geo}) == 1
    sorted_proj = np.sort(proj)
    n = len(sorted_proj)
    spacing_mm: float | None = None
    uniform = True
    if n > 1:
        expected = (sorted_proj[-1] - sorted_proj[0]) / (n - 1)
        spacing_mm = float(expected)
        intervals = np.diff(sorted_proj)
        uniform = bool(
            expected > 0
            and np.max(np.abs(intervals - expected)) < SLICE_SPACING_RELATIVE_TOLERANCE * expected
        )
    return GeometryChecks(
        single_orientation=single,
        orthogonal_orientation=orthogonal,
        unique_slice_positions=distinct == len(uids),
        consistent_in_plane_row=bool(np.ptp(in_row) < IN_PLANE_TOLERANCE_MM),
        consistent_in_plane_col=bool(np.ptp(in_col) < IN_PLANE_TOLERANCE_MM),
        consistent_pixel_spacing=spacing_ok,
        consistent_image_dimensions=dims_ok,
        uniform_slice_spacing=uniform,
        obliquity_degrees=round(obliquity_degrees(ref), 4),
        slice_spacing_mm=None if spacing_mm is None else round(spacing_mm, 6),
    )


def _count_distinct(values: FloatArray) -> int:
    if len(values) == 0:
        return 0
    s = np.sort(values)
    return 1 + int(np.count_nonzero(np.diff(s) >= SAME_POSITION_TOLERANCE_MM))


def affine_for(frames: Sequence[FrameRecord], fallback_spacing: float | None = None) -> FloatArray:
    """LPS affine of slices in k order, from the first slice and the mean step.

    Column 0 is row direction x PixelSpacing[1], column 1 is column direction
    x PixelSpacing[0] (both of the first slice), column 2 is (last - first)
    / (N - 1), column 3 the first slice's position. For a single slice,
    column 2 is the normal times ``fallback_spacing`` (or 1 mm).

    Returns
    -------
    ndarray of shape (4, 4)
    """
    first = SliceGeometry.of(frames[0])
    m = first.pixel_to_patient()
    if len(frames) > 1:
        last = np.asarray(frames[-1].position, dtype=np.float64)
        m[:3, 2] = (last - np.asarray(first.position)) / (len(frames) - 1)
    else:
        m[:3, 2] = slice_normal(first.orientation) * (fallback_spacing or 1.0)
    return m


def voxel_errors(affine: FloatArray, frames: Sequence[FrameRecord]) -> FloatArray:
    """Largest voxel-space distance between each frame's pixels and where ``affine`` puts them.

    For slice k, the four corner pixels (row j, column i) are placed by the
    frame's own IPP, IOP and PixelSpacing, mapped through the inverse affine,
    and compared with (i, j, k). The result is exact for every pixel because
    both mappings are affine in (i, j).

    Returns
    -------
    ndarray of shape (N,)
        Max absolute index error per slice, in voxels.
    """
    inv = np.linalg.inv(affine)
    n = len(frames)
    pos = np.empty((n, 3))
    iop = np.empty((n, 6))
    ps = np.empty((n, 2))
    size = np.empty((n, 2))
    for k, frame in enumerate(frames):
        if frame.position is None or frame.orientation is None or frame.pixel_spacing is None:
            raise GeometryError("frame lacks ImagePositionPatient, ImageOrientationPatient or "
                             "PixelSpacing")
        pos[k], iop[k], ps[k] = frame.position, frame.orientation, frame.pixel_spacing
        size[k] = (frame.columns - 1, frame.rows - 1)
    # Corners (i, j) of every slice: (0,0), (X-1,0), (0,Y-1), (X-1,Y-1); shape (N, 4).
    ci = size[:, :1] * np.array([0.0, 1.0, 0.0, 1.0])
    cj = size[:, 1:] * np.array([0.0, 0.0, 1.0, 1.0])
    world = (pos[:, None, :] + (ci * ps[:, 1:2])[..., None] * iop[:, None, 0:3]
             + (cj * ps[:, 0:1])[..., None] * iop[:, None, 3:6])  # (N, 4, 3)
    index = world @ inv[:3, :3].T + inv[:3, 3]
    expected = np.stack([ci, cj, np.broadcast_to(np.arange(n, dtype=float)[:, None], ci.shape)],
                        axis=-1)
    errors: FloatArray = np.max(np.abs(index - expected), axis=(1, 2))
    return errors


def is_exact(affine: FloatArray, frames: Sequence[FrameRecord]) -> bool:
    """True when every slice lies within EXACTNESS_TOLERANCE_VOXELS of where the affine puts it."""
    return bool(np.max(voxel_errors(affine, frames)) <= EXACTNESS_TOLERANCE_VOXELS)


def shear_degrees(affine: FloatArray) -> float:
    """Angle (degrees) between the slice step (column 2) and the slice normal."""
    step = affine[:3, 2]
    n = cross3(affine[:3, 0], affine[:3, 1])
    denom = float(np.linalg.norm(step) * np.linalg.norm(n))
    if denom == 0:
        return 0.0
    cos = abs(float(step @ n)) / denom
    return math.degrees(math.acos(min(1.0, cos)))


def is_sheared(affine: FloatArray) -> bool:
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
    pos = np.array([f.position for f in frames[start:stop]], dtype=np.float64)
    steps = np.diff(pos, axis=0)
    best = (0, 1)  # (first slice, slice count) of the longest equal-step stretch
    a = 0
    for b in range(1, len(steps) + 1):
        ref = steps[a]
        if b == len(steps) or float(np.linalg.norm(steps[b] - ref)) > (
                EXACTNESS_TOLERANCE_VOXELS * float(np.linalg.norm(ref))):
            if b - a + 1 > best[1]:
                best = (a, b - a + 1)
            a = b
    lo, hi = start + best[0], start + best[0] + best[1]
    while hi - lo > 2 and not is_exact(affine_for(frames[lo:hi]), frames[lo:hi]):
        hi -= 1  # drift accumulated: shorten until exact
    runs.append((lo, hi))
    _split_segment(frames, start, lo, runs)
    _split_segment(frames, hi, stop, runs)


def gaps(proj: FloatArray) -> list[Gap]:
    """Intervals that are near-integer multiples (>= 2) of the median interval: missing slices.

    Parameters
    ----------
    proj : ndarray of shape (N,)
        Sorted normal projections.
    """
    if len(proj) < 3:
        return []
    steps = np.diff(proj)
    median_step = median(steps)
    found: list[Gap] = []
    if median_step <= 0:
        return found
    for idx, step in enumerate(steps):
        ratio = float(step) / median_step
        n_missing = round(ratio) - 1
        if n_missing >= 1 and abs(ratio - round(ratio)) < 0.1:
            found.append(Gap(after_position_mm=round(float(proj[idx]), 4),
                             gap_mm=round(float(step), 4), missing_slices=n_missing))
    return found


def median(values: Sequence[float] | FloatArray) -> float:
    """The median of ``values`` as ``np.median`` gives it (NaN when one is NaN), without
    the ``numpy.ma`` import that ``np.median`` costs on first use (1.3 MiB of the planner's
    peak memory). Raises ValueError for no values.
    """
    data = sorted(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
    if not data:
        raise ValueError("median of no values")
    if any(math.isnan(v) for v in data):
        return math.nan
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2

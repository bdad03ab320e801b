"""One stack of slices at distinct positions -> exact, sheared, split, resampled or skipped.

The affine comes from the first slice and the mean step; a stack whose every
slice is exact under it is one volume (sheared when the step leaves the
normal: gantry tilt, written exact and, by policy, also resampled). Otherwise
stacks told apart by AcquisitionNumber become separate volumes, and anything
else irregular (variable spacing, missing slices, lateral shift) is resampled,
split into the largest exact regular runs, or skipped, as the options say.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dicomvol._typing import AffineLike, AffineRows
from dicomvol.constants import (
    EXACTNESS_TOLERANCE_VOXELS,
    IN_PLANE_TOLERANCE_MM,
    SLICE_SPACING_RELATIVE_TOLERANCE,
)
from dicomvol.model import geometry
from dicomvol.model.detail import (
    Gap,
    GeometryChecks,
    GeometryDetail,
    ResampleDetail,
    SplitPiece,
    StackMeasures,
)
from dicomvol.model.grids import choose_spacing, output_grid
from dicomvol.model.plan import ResampleSpec, VolumePlan
from dicomvol.model.records import FrameRecord, SkippedFrame
from dicomvol.options import PlanOptions

#: Slices a stack needs to count as its own acquisition when it does not overlap another.
MIN_STACK_SLICES = 3
#: Value outside the acquired field when resampling, by modality (air for CT).
RESAMPLE_FILL: dict[str, float] = {"CT": -1024.0}


@dataclass(frozen=True)
class StackContext:
    """What every plan of one grid shares: name suffix, label, notes, the series checks."""

    suffix: str
    label: str
    notes: tuple[str, ...]
    checks: GeometryChecks | None
    options: PlanOptions

    def sub(self, suffix: str, label: str, note: str | None = None) -> StackContext:
        """A context for a part of this one (suffix appended, label joined, note added)."""
        notes = (*self.notes, note) if note else self.notes
        return StackContext(self.suffix + suffix, join(self.label, label), notes, self.checks,
                            self.options)


def join(*parts: str) -> str:
    """Non-empty parts joined by ', '."""
    return ", ".join(p for p in parts if p)


#: What :func:`plan_stack` measures of a stack's geometry: fallback spacing, affine, voxel
#: errors, projections on the normal, detail.
Measured = tuple[float | None, AffineRows, list[float], list[float], GeometryDetail]


def plan_stack(stack: Sequence[FrameRecord], ctx: StackContext,
               measured: dict[tuple[Any, ...], Measured] | None = None
               ) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """Plan slices at distinct positions, sorted along the normal.

    ``measured``: the measures of stacks planned before, by their geometry (each slice's
    position, orientation, spacing and matrix), for a caller planning many stacks at the
    same positions (the volumes of a diffusion series) whose plans it merges into one.
    """
    if measured is None:
        found = _measure(stack)
    else:
        key = _geometry_key(stack)
        if key not in measured:
            measured[key] = _measure(stack)
        found = measured[key]
    fallback, affine, errors, proj, base = found
    if max(errors) <= EXACTNESS_TOLERANCE_VOXELS:
        return _plan_exact(stack, ctx, affine, errors, fallback, base)
    stacks = _separate_stacks(stack)
    if stacks is not None:
        stack_plans: list[VolumePlan] = []
        stack_skipped: list[SkippedFrame] = []
        for n, part in enumerate(stacks):
            note = (f"series holds {len(stacks)} stacks (acquisition numbers) that do not join "
                    f"into one regular grid; this is stack {n + 1}")
            p, s = plan_stack(part, ctx.sub(f"_stack{n + 1}", f"stack {n + 1}", note))
            stack_plans.extend(p)
            stack_skipped.extend(s)
        return stack_plans, stack_skipped
    gaps = geometry.gaps(proj)
    case, why = _irregular_reason(base, gaps, stack)
    base = base.with_(case=case, gaps=tuple(gaps))
    policy = ctx.options.irregular
    if policy == "resample":
        pieces = split_at_large_gaps(stack, proj, ctx)
        if pieces is not None:
            return pieces
        return [_resample_plan(stack, ctx, why, base)], []
    if policy == "skip":
        reason = f"{why}; skipped as asked (--irregular skip)"
        return [], [SkippedFrame.of(f, reason) for f in stack]
    return _split_runs(stack, proj, ctx, why, base)


def _measure(stack: Sequence[FrameRecord]) -> Measured:
    """:data:`Measured` of a stack."""
    fallback = stack[0].spacing_between_slices or stack[0].slice_thickness
    affine = geometry.affine_for(stack, fallback)
    orientation = stack[0].orientation
    assert orientation is not None
    proj = geometry.projections(stack, orientation)
    return (fallback, affine, geometry.voxel_errors(affine, stack), proj,
            _stack_detail(stack, proj, orientation))


def _geometry_key(stack: Sequence[FrameRecord]) -> tuple[Any, ...]:
    """Everything :func:`plan_stack` measures a stack by."""
    first = stack[0]
    return (first.spacing_between_slices, first.slice_thickness,
            tuple([(f.position, f.orientation, f.pixel_spacing, f.rows, f.columns)
                   for f in stack]))


def split_at_large_gaps(stack: Sequence[FrameRecord], proj: Sequence[float], ctx: StackContext
                        ) -> tuple[list[VolumePlan], list[SkippedFrame]] | None:
    """Pieces of a stack split where more than ``max_gap_slices`` slices are missing.

    The regular step is the median interval (the smaller one of a 3-slice
    stack); an interval of ``n`` steps misses ``n - 1`` slices. Each piece is
    planned on its own (:func:`plan_stack`) and says why in its warnings.
    None when no gap is that large.
    """
    steps = geometry.diffs(proj)
    if len(steps) < 2:
        return None
    step = min(steps) if len(steps) == 2 else geometry.median(steps)
    if step <= 0:
        return None
    limit = ctx.options.max_gap_slices
    missing = [round(s / step) - 1 for s in steps]  # half to even, as np.rint
    cuts = [i + 1 for i, m in enumerate(missing) if m > limit]
    if not cuts:
        return None
    bounds = [0, *cuts, len(stack)]
    big = ", ".join(f"{missing[c - 1]} slices ({steps[c - 1]:g} mm) after "
                    f"{float(proj[c - 1]):g} mm" for c in cuts)
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    n_pieces = len(bounds) - 1
    for n, (a, b) in enumerate(itertools.pairwise(bounds), 1):
        note = (f"gap of more than {limit} missing slice(s) at the regular step {step:g} mm "
                f"({big}; MAX_RESAMPLE_GAP_SLICES): split into {n_pieces} pieces instead of "
                f"interpolating across it; this is piece {n} (slices {a + 1}-{b} of "
                f"{len(stack)} along the normal)")
        p, s = plan_stack(stack[a:b], ctx.sub(f"_part{n}", f"part {n}", note))
        plans.extend(p)
        skipped.extend(s)
    return plans, skipped


def _plan_exact(stack: Sequence[FrameRecord], ctx: StackContext, affine: AffineLike,
                errors: Sequence[float], fallback: float | None,
                base: GeometryDetail) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """A stack exact under one affine: one plan (and a resampled copy when tilted)."""
    warnings = list(ctx.notes)
    if len(stack) == 1:
        warnings.append(f"single slice: the slice axis uses "
                        f"{'SpacingBetweenSlices/SliceThickness' if fallback else '1 mm'} "
                        f"({geometry.norm(geometry.column(affine, 2)):g} mm)")
    case = "gantry tilt" if geometry.is_sheared(affine) else (
        "single slice" if len(stack) == 1 else "regular")
    plan = make_plan([list(stack)], affine, ctx.suffix, ctx.label, warnings, ctx.checks,
                     base.with_(case=case, max_voxel_error=round(max(errors), 6)))
    if not plan.sheared:
        return [plan], []
    deg = geometry.shear_degrees(affine)
    why = f"gantry tilt: slices step {deg:.2f}° off the slice normal" + _tilt_tag(stack[0])
    tilt = ctx.options.tilt
    plans = [plan] if tilt in ("shear", "both") else []
    if tilt in ("resample", "both"):
        rs_ctx = ctx.sub("_resampled", "") if plans else ctx
        plans.append(_resample_plan(stack, rs_ctx, why, base.with_(case=case)))
    return plans, []


def _separate_stacks(stack: Sequence[FrameRecord]) -> list[list[FrameRecord]] | None:
    """Stacks of one grid told apart by AcquisitionNumber, when each is exact on its own.

    Used only when the whole stack is not one exact grid: overlapping or
    gapped acquisitions (e.g. bed positions stored separately) become separate
    exact volumes instead of being resampled together. None when there is one
    acquisition number, a stack has fewer than 2 slices, or a stack is not exact.
    """
    numbers = sorted({f.acquisition_number for f in stack}, key=lambda v: (v is None, v or 0))
    if len(numbers) < 2:
        return None
    parts = [[f for f in stack if f.acquisition_number == n] for n in numbers]
    if any(len(p) < 2 for p in parts):
        return None
    if not all(geometry.is_exact(geometry.affine_for(p), p) for p in parts):
        return None
    # Real CT often changes AcquisitionNumber within one continuous scan, and a 2-slice
    # "stack" is always exact: adjacent stacks count as separate acquisitions only when
    # each shows its own regular grid (>= MIN_STACK_SLICES); overlapping stacks always do.
    orientation = stack[0].orientation
    assert orientation is not None
    ranges = sorted((min(r), max(r))
                    for r in (geometry.projections(p, orientation) for p in parts))
    overlap = any(b[0] < a[1] for a, b in itertools.pairwise(ranges))
    if not overlap and any(len(p) < MIN_STACK_SLICES for p in parts):
        return None
    return parts


def _tilt_tag(frame: FrameRecord) -> str:
    return "" if frame.gantry_tilt in (None, 0.0) else (
        f"; GantryDetectorTilt {frame.gantry_tilt:g}°")


def _resample_plan(stack: Sequence[FrameRecord], ctx: StackContext, why: str,
                   detail: GeometryDetail) -> VolumePlan:
    """A plan to resample ``stack`` onto a regular orthogonal grid."""
    orientation = stack[0].orientation
    assert orientation is not None
    proj = geometry.projections(stack, orientation)
    spacing, spacing_why = choose_spacing(list(proj))
    first = stack[0]
    fill = RESAMPLE_FILL.get(first.modality, 0.0)
    interpolation = ctx.options.interpolation
    spec = ResampleSpec(reason=why, order=1 if interpolation == "linear" else 0,
                        fill=fill, spacing=spacing)
    assert first.pixel_spacing is not None
    affine, grid_shape = output_grid([f.position for f in stack if f.position is not None],
                                     orientation, first.pixel_spacing, first.rows,
                                     first.columns, spacing)
    warnings = [*ctx.notes, f"{why}; resampled onto a regular grid of {spacing:g} mm "
                f"({interpolation} interpolation, outside the acquired field "
                f"{fill:g}) and marked Resampled"]
    detail = detail.with_(resample=ResampleDetail(
        reason=why, spacing_mm=spacing, spacing_choice=spacing_why,
        interpolation=interpolation, fill=fill,
        output_shape=(int(grid_shape[0]), int(grid_shape[1]), int(grid_shape[2]))))
    return make_plan([list(stack)], affine, ctx.suffix, join(ctx.label, "resampled"),
                     warnings, ctx.checks, detail, resample=spec)


def _split_runs(stack: Sequence[FrameRecord], proj: Sequence[float], ctx: StackContext, why: str,
                base: GeometryDetail) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """The largest exact regular runs, each its own volume; isolated slices skipped."""
    runs = geometry.exact_runs(stack)
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    real_runs = [r for r in runs if r[1] - r[0] >= 2]
    for n, (start, stop) in enumerate(real_runs):
        part = list(stack[start:stop])
        run_affine = geometry.affine_for(part)
        run_err = geometry.voxel_errors(run_affine, part)
        warnings = [*ctx.notes, f"{why}; written as exact piece {n + 1} of {len(real_runs)}: "
                    f"slices {start + 1}-{stop} of {len(stack)} along the normal "
                    f"({proj[start]:.2f} to {proj[stop - 1]:.2f} mm)"]
        detail = base.with_(split=SplitPiece(piece=n + 1, pieces=len(real_runs),
                                             first_slice=start + 1, last_slice=stop,
                                             of_slices=len(stack)),
                            max_voxel_error=round(max(run_err), 6))
        run_suffix = f"{ctx.suffix}_part{n + 1}" if len(real_runs) > 1 else ctx.suffix
        plans.append(make_plan([part], run_affine, run_suffix, join(ctx.label, f"part {n + 1}"),
                               warnings, ctx.checks, detail))
    for start, stop in runs:
        if stop - start == 1:
            f = stack[start]
            skipped.append(SkippedFrame.of(
                f, f"{why}; this slice at {proj[start]:.2f} mm along the normal has no "
                "neighbour at a regular step (an isolated slice)"))
    return plans, skipped


def _irregular_reason(detail: GeometryDetail, gaps: list[Gap],
                      stack: Sequence[FrameRecord]) -> tuple[str, str]:
    """(case, explanation) for a stack that is not one exact regular grid."""
    m = detail.measures
    assert m is not None  # an inexact stack has two or more slices
    tilted = any(f.gantry_tilt not in (None, 0.0) for f in stack) or (
        m.step_angle_degrees > 0.5 and m.in_plane_nonlinearity_mm < IN_PLANE_TOLERANCE_MM)
    if gaps:
        missing = sum(g.missing_slices for g in gaps)
        where = ", ".join(f"{g.after_position_mm:g} mm" for g in gaps)
        return "missing slices", (f"{missing} slice(s) missing (gap after {where} along the "
                                  f"normal; regular step {m.median_spacing_mm:g} mm)")
    spacing = (f"slice spacing varies from {m.min_spacing_mm:g} to "
               f"{m.max_spacing_mm:g} mm (median {m.median_spacing_mm:g})")
    if tilted:
        return "gantry tilt with variable spacing", (
            f"gantry tilt (slices step {m.step_angle_degrees:.2f}° off the normal"
            f"{_tilt_tag(stack[0])}) and " + spacing)
    if m.in_plane_shift_mm >= IN_PLANE_TOLERANCE_MM and (
            m.max_spacing_mm - m.min_spacing_mm
            < SLICE_SPACING_RELATIVE_TOLERANCE * m.median_spacing_mm):
        return "lateral shift", (f"slice positions shift in plane by up to "
                                 f"{m.in_plane_shift_mm:g} mm, not along a straight line")
    return "variable spacing", spacing


def _stack_detail(stack: Sequence[FrameRecord], proj: Sequence[float],
                  orientation: Sequence[float]) -> GeometryDetail:
    """Measured numbers of a stack: spacing range, in-plane shift, step angle."""
    steps = geometry.diffs(proj)
    measures = None
    if len(steps):
        row, col = geometry.directions(orientation)
        in_row, in_col = geometry.along(stack, row), geometry.along(stack, col)
        shift = max(max(in_row) - min(in_row), max(in_col) - min(in_col))
        # In-plane offsets that follow a straight line along the normal are a tilt (shear);
        # anything else is a lateral shift.
        nonlinear = 0.0 if len(proj) <= 2 else max(
            _line_residual(proj, in_row), _line_residual(proj, in_col))
        measures = StackMeasures(
            in_plane_nonlinearity_mm=round(nonlinear, 4),
            min_spacing_mm=round(min(steps), 4),
            median_spacing_mm=round(geometry.median(steps), 4),
            max_spacing_mm=round(max(steps), 4),
            in_plane_shift_mm=round(shift, 4),
            step_angle_degrees=round(geometry.shear_degrees(geometry.affine_for(stack)), 4))
    return GeometryDetail(orientation=geometry.describe_orientation(orientation),
                          slices=len(stack), measures=measures)


def _line_residual(x: Sequence[float], y: Sequence[float]) -> float:
    """Largest |y - (a x + b)| of the least-squares line through (x, y) (``np.polyfit``
    of degree 1); 0 when x does not vary."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((v - mx) * (v - mx) for v in x)
    if sxx == 0:
        return max(abs(v - my) for v in y)
    a = sum((u - mx) * (v - my) for u, v in zip(x, y, strict=True)) / sxx
    return max(abs(v - (my + a * (u - mx))) for u, v in zip(x, y, strict=True))


def make_plan(volumes: list[list[FrameRecord]], affine: AffineLike, suffix: str, label: str,
              warnings: list[str], checks: GeometryChecks | None, detail: GeometryDetail,
              resample: ResampleSpec | None = None) -> VolumePlan:
    """A plan of ``volumes[t][k]``, with the slice step and shear recorded in its detail."""
    first = volumes[0][0]
    sheared = resample is None and geometry.is_sheared(affine)
    shear = None
    if sheared:
        deg = geometry.shear_degrees(affine)
        shear = round(deg, 4)
        warnings = [*warnings, f"sheared grid: the slice step is {deg:.2f}° from the slice normal "
                    "(gantry tilt); the affine is exact but sheared, stored in the sform only"]
    detail = detail.with_(slice_step_mm=round(geometry.norm(geometry.column(affine, 2)), 6),
                          sheared=sheared, shear_degrees=shear if shear is not None
                          else detail.shear_degrees)
    shape: tuple[int, ...] = (first.columns, first.rows, len(volumes[0]))
    if resample is not None and detail.resample is not None:
        shape = detail.resample.output_shape
    if len(volumes) > 1:
        shape = (*shape, len(volumes))
    return VolumePlan(
        series_instance_uid=first.series_instance_uid,
        frames=tuple(tuple(v) for v in volumes),
        affine_rows=geometry.rows_of(affine),
        shape=shape,
        suffix=suffix,
        label=label,
        checks=checks,
        detail=detail,
        warnings=tuple(warnings),
        sheared=sheared,
        resample=resample,
    )

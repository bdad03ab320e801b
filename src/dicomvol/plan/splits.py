"""Frames of one grid that share slice positions: split by what tells them apart, join as 4D.

Second reading (:mod:`dicomvol.plan.temporal`): a temporal part that is itself
4D contributes all its volumes (ASL label/control pairs per temporal position,
DCE passes sharing an AcquisitionNumber, temporal positions x trigger delays),
parts split further by a non-temporal attribute join part by part, and the
volumes are put in time order by what the series varies; frames nothing tells
apart are ranked by InstanceNumber, then AcquisitionTime (classic Philips ASL), then
DimensionIndexValues, then frame number (enhanced repeats). Parts of a complex signal
(magnitude, phase, real, imaginary) are split like echoes and named as dcm2niix names them.

Within a grid, frames sharing a slice position are split by the first
attribute that tells them apart (stack, echo, diffusion, temporal position,
trigger time, acquisition number, image type, acquisition time),
recursively. Groups split by a temporal attribute that land on identical
grids become one 4D volume; other splits become separate volumes. Frames
that no attribute tells apart are ordered by InstanceNumber (GE stores 4D
so), or, when every shared position holds copies of one image, used once.
Diffusion is the one split that does not group by value: the acquired volumes
(b = 0 and weighted, repeats included) become one 4D in acquisition order and
derived images (trace, ADC, ...) their own outputs (:mod:`dicomvol.plan.dwi`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dicomvol._typing import AffineRows
from dicomvol.constants import EXACTNESS_TOLERANCE_VOXELS, SAME_POSITION_TOLERANCE_MM
from dicomvol.model import geometry
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord, SkippedFrame
from dicomvol.plan import dwi
from dicomvol.plan.stacks import Measured, StackContext, make_plan, plan_stack
from dicomvol.plan.temporal import join_4d, tm_seconds

log = logging.getLogger(__name__)

#: Compares the decoded pixels (and rescale) of two frames; injected by the caller so that
#: planning itself never decodes pixels.
SamePixels = Callable[[FrameRecord, FrameRecord], bool]

#: Attributes that tell apart frames at one position, in the order they are tried.
#: (name, accessor, is_temporal)
SPLIT_ATTRIBUTES: tuple[tuple[str, Callable[[FrameRecord], Any], bool], ...] = (
    ("stack", lambda f: f.stack_id, False),
    ("echo", lambda f: f.echo_number if f.echo_number is not None else f.echo_time, False),
    ("complex part", lambda f: f.complex_part, False),
    ("diffusion", lambda f: (f.diffusion_b, f.diffusion_direction), True),
    ("temporal position", lambda f: f.temporal_position, True),
    ("trigger time", lambda f: f.trigger_time, True),
    ("acquisition number", lambda f: f.acquisition_number, True),
    ("image type", lambda f: f.image_type, False),
    ("acquisition time", lambda f: f.acquisition_time, True),
    ("content time", lambda f: f.content_time, True),
)

_SUFFIX = {"stack": "stack", "diffusion": "dwi", "echo": "e", "temporal position": "t",
           "trigger time": "trig", "acquisition number": "acq", "image type": "type",
           "acquisition time": "time", "content time": "ctime", "complex part": "part"}


def _tags(name: str, values: Sequence[Any], parts: Sequence[Sequence[FrameRecord]]) -> list[str]:
    """Name suffixes of the parts: dcm2niix's for parts of a complex signal, else numbered."""
    numbered = [f"_{_SUFFIX[name]}{n + 1}" for n in range(len(values))]
    if name == "echo" and all(isinstance(v, int) and v > 0 for v in values):
        return [f"_e{v}" for v in values]  # EchoNumbers, as dcm2niix names echoes
    if name != "complex part":
        return numbered
    named = [part_suffix(v, p[0].image_type) for v, p in zip(values, parts, strict=True)]
    return named if len(set(named)) == len(named) else numbered


def plan_grid(frames: Sequence[FrameRecord], ctx: StackContext,
              same_pixels: SamePixels | None = None
              ) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """Plan the frames of one grid (orientation, matrix, pixel spacing)."""
    clusters = position_clusters(frames)
    if all(len(c) == 1 for c in clusters):
        return plan_stack([c[0] for c in clusters], ctx)
    shared = [c for c in clusters if len(c) > 1]
    for name, get, temporal in SPLIT_ATTRIBUTES:
        if not any(len({_hashable(get(f)) for f in c}) > 1 for c in shared):
            continue
        if name == "diffusion":
            planned = _plan_diffusion(frames, ctx, same_pixels, clusters)
            if planned is not None:
                return planned
        values = _ordered_values(frames, get)
        if name == "echo":
            values = sorted(values, key=_echo_rank)
        parts = [[f for f in frames if _hashable(get(f)) == v] for v in values]
        sub_plans: list[list[VolumePlan]] = []
        skipped: list[SkippedFrame] = []
        subs = []
        for value, part, tag in zip(values, parts, _tags(name, values, parts), strict=True):
            sub = ctx.sub(tag, f"{name} {_value_text(value)}")
            p, s = plan_grid(part, sub, same_pixels)
            sub_plans.append(p)
            subs.append(sub)
            skipped.extend(s)
        if temporal:
            joined = join_4d(sub_plans, subs, name, ctx, ctx.notes)
            if joined is not None:
                return joined, skipped
        if name == "acquisition number":
            sub_plans = _as_stacks(sub_plans, ctx.suffix)
        return [p for group in sub_plans for p in group], skipped
    by_rank = _instance_order_split(clusters)
    if by_rank is not None:
        sub_plans, skipped, subs = [], [], []
        for n, part in enumerate(by_rank):
            sub = ctx.sub(f"_t{n + 1}", f"volume {n + 1}")
            p, s = plan_grid(part, sub, same_pixels)
            sub_plans.append(p)
            subs.append(sub)
            skipped.extend(s)
        rule = _RANK_RULE if any(f.dimension_index for f in frames) else _RANK_RULE_CLASSIC
        why = (f"{len(by_rank)} frames at each slice position with no attribute telling them "
               f"apart; volumes ordered by {rule}")
        joined = join_4d(sub_plans, subs, "instance number", ctx, (*ctx.notes, why))
        if joined is not None:
            return joined, skipped
        return [p for group in sub_plans for p in group], skipped
    deduped = _identical_duplicates(clusters, same_pixels) if same_pixels else None
    if deduped is not None:
        kept, copies = deduped
        p, s = plan_grid(kept, ctx, same_pixels)
        return p, [*s, *copies]
    n_shared = sum(len(c) for c in shared)
    reason = (f"{n_shared} frames share {len(shared)} slice position(s) and no attribute "
              f"({', '.join(a[0] for a in SPLIT_ATTRIBUTES)}) tells them apart")
    return [], [SkippedFrame.of(f, reason) for f in frames]


def _plan_diffusion(frames: Sequence[FrameRecord], ctx: StackContext,
                    same_pixels: SamePixels | None,
                    clusters: list[list[FrameRecord]] | None = None,
                    ) -> tuple[list[VolumePlan], list[SkippedFrame]] | None:
    """One 4D of the acquired diffusion volumes in acquisition order, one output per derived kind.

    None (split by encoding instead) when the acquired frames do not form
    volumes on one grid, or when there are only derived images of one kind.
    ``clusters``: :func:`position_clusters` of ``frames``, when the caller has them.
    """
    acquired, derived = dwi.separate_derived(frames)
    if not acquired and len(derived) < 2:
        return None
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    if derived or clusters is None:  # else: every frame acquired, clustered already
        clusters = position_clusters(acquired) if acquired else []
    volumes = dwi.acquisition_volumes(clusters) if clusters else []
    if volumes is None:
        return None
    if len(volumes) > 1:
        sub_plans = []
        measured: dict[tuple[Any, ...], Measured] = {}  # volumes at the same positions
        for n, volume in enumerate(volumes):
            p, s = plan_stack(volume, ctx.sub(f"_dwi{n + 1}", f"diffusion volume {n + 1}"),
                              measured)
            sub_plans.append(p)
            skipped.extend(s)
        merged = _merge_4d(sub_plans, "diffusion", ctx, ctx.notes)
        if merged is None:
            return None
        plans.append(merged)
    elif acquired:
        p, s = plan_grid(acquired, ctx, same_pixels)
        plans.extend(p)
        skipped.extend(s)
    for kind, part in derived.items():
        sub = ctx.sub(dwi.DERIVED_SUFFIX.get(kind, f"_{kind}"),
                      f"derived diffusion image ({kind}), not part of the DWI 4D")
        p, s = plan_grid(part, sub, same_pixels)
        plans.extend(p)
        skipped.extend(s)
    return plans, skipped


def position_clusters(frames: Sequence[FrameRecord]) -> list[list[FrameRecord]]:
    """Frames sorted along the normal, clustered by shared position."""
    orientation = frames[0].orientation
    assert orientation is not None
    proj = geometry.projections(frames, orientation)
    order = sorted(range(len(frames)),
                   key=lambda i: (proj[i], frames[i].instance_number or 0, frames[i].rel))
    clusters: list[list[FrameRecord]] = []
    last = None
    for i in order:
        if last is not None and proj[i] - last < SAME_POSITION_TOLERANCE_MM:
            clusters[-1].append(frames[i])
        else:
            clusters.append([frames[i]])
        last = proj[i]
    return clusters


def _as_stacks(groups: list[list[VolumePlan]], suffix: str) -> list[list[VolumePlan]]:
    """Acquisitions that share positions but not one grid: named and explained as stacks."""
    out = []
    for n, group in enumerate(groups):
        note = (f"series holds {len(groups)} stacks (acquisition numbers) that share slice "
                f"positions but do not form one 4D grid; this is stack {n + 1}")
        old, new = f"{suffix}_acq{n + 1}", f"{suffix}_stack{n + 1}"
        out.append([replace(p, suffix=p.suffix.replace(old, new, 1),
                            warnings=(note, *p.warnings)) for p in group])
    return out


def _identical_duplicates(
    clusters: list[list[FrameRecord]], same_pixels: SamePixels,
) -> tuple[list[FrameRecord], list[SkippedFrame]] | None:
    """One frame per position when every shared position holds copies of one image.

    The last resort before skipping: frames at one position that no attribute
    tells apart are compared by ``same_pixels`` (decoded pixels and rescale;
    the caller decodes, only for such positions). Copies with other
    SOPInstanceUIDs (e.g. one image re-encoded in several transfer syntaxes)
    are used once and reported; None when any position holds different images
    or the comparison fails.
    """
    kept: list[FrameRecord] = []
    copies: list[SkippedFrame] = []
    try:
        for cluster in clusters:
            ordered = sorted(cluster, key=lambda f: (f.rel, f.frame, f.tile or 0))
            first = ordered[0]
            if not all(same_pixels(first, f) for f in ordered[1:]):
                return None
            kept.append(first)
            copies.extend(SkippedFrame.of(f, f"identical duplicate of {first.rel} (same position, "
                                             "pixels and rescale; another SOPInstanceUID)")
                          for f in ordered[1:])
    except Exception:  # undecodable: leave the decision to the normal rules
        log.debug("pixel comparison of shared positions failed", exc_info=True)
        return None
    return kept, copies


def _instance_order_split(
    clusters: list[list[FrameRecord]],
) -> list[list[FrameRecord]] | None:
    """Volume t = the t-th frame at every position by :func:`_rank_key` (as dcm2niix orders).

    GE stores 4D so, and classic Philips ASL its label and control images; in an
    enhanced object the frames at one position differ only in frame number. Only
    when every position holds the same number of frames and the keys at each
    position are distinct; otherwise None.
    """
    counts = {len(c) for c in clusters}
    if len(counts) != 1:
        return None
    for c in clusters:
        if len({_rank_key(f) for f in c}) != len(c):
            return None
    m = counts.pop()
    ranked = [sorted(c, key=_rank_key) for c in clusters]
    return [[c[t] for c in ranked] for t in range(m)]


#: The rule :func:`_rank_key` applies, as the sidecar names it.
_RANK_RULE = "InstanceNumber, then AcquisitionTime, then DimensionIndexValues, then frame number"
_RANK_RULE_CLASSIC = "InstanceNumber, then AcquisitionTime, then frame number"


def _rank_key(f: FrameRecord) -> tuple[int, float, tuple[int, ...], int]:
    """InstanceNumber, then acquisition time (s), then the frame's DimensionIndexValues (the
    order the standard defines for the frames of an enhanced object: PS3.3 7.5.2), then
    frame number (storage order); missing ones first."""
    acq = tm_seconds(f.acquisition_time)
    return (f.instance_number if f.instance_number is not None else -1,
            acq if acq is not None else -1.0, f.dimension_index or (), f.frame)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _ordered_values(frames: Sequence[FrameRecord], get: Callable[[FrameRecord], Any]) -> list[Any]:
    """Distinct attribute values in acquisition order.

    Numbers (echo number, temporal position, trigger time, acquisition number)
    sort by value; anything else (diffusion (b, direction), image type, times as
    text) by first appearance in storage order: frame number, then InstanceNumber.
    """
    first_seen: dict[Any, tuple[int, int, str]] = {}
    for f in frames:
        value = _hashable(get(f))
        key = (f.frame, f.instance_number or 0, f.rel)
        if value not in first_seen or key < first_seen[value]:
            first_seen[value] = key
    values = list(first_seen)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=lambda v: first_seen[v])


def _echo_rank(value: Any) -> tuple[bool, Any]:
    """Echoes in order of EchoNumbers or echo time, with an echo time of 0 (or none) last.

    An echo time of 0 is no echo: a map computed from the echoes (the Philips B0 map of
    enhanced files stores its frames with EffectiveEchoTime 0 beside the magnitude's 1.52
    ms, both with EchoNumbers 1). The acquired echo keeps number 1, as dcm2niix names
    them (``_e1`` magnitude, ``_e2_fieldmaphz`` map).
    """
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return (not (number and value > 0), value if number else 0)


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return "\\".join(str(v) for v in value)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def is_b0_map(image_type: Sequence[str]) -> bool:
    """ImageType names a B0 field map (``B0 MAP``, ``B0MAP`` as dcm2niix tests it; Philips
    enhanced ``FIELD_MAP``)."""
    text = "_".join(image_type).upper()
    return ("B0" in text and "MAP" in text) or "FIELD_MAP" in text or "FIELDMAP" in text


def part_suffix(part: str | None, image_type: Sequence[str]) -> str:
    """The name suffix dcm2niix gives a part of a complex signal: ``_ph``, ``_real``,
    ``_imaginary``, ``_fieldmaphz`` (a real B0 field map, in Hz); none for magnitude."""
    if part == "PHASE":
        return "_ph"
    if part == "REAL":
        return "_fieldmaphz" if is_b0_map(image_type) else "_real"
    if part == "IMAGINARY":
        return "_imaginary"
    return ""


def with_part_suffix(plan: VolumePlan) -> VolumePlan:
    """A plan named as dcm2niix names it when no split did: a single later echo
    (EchoNumbers n > 1) gets ``_e<n>``, one non-magnitude part (a phase series, a field map
    split off by echo) ``_ph``, ``_real``, ``_imaginary`` or ``_fieldmaphz``."""
    suffix = plan.suffix
    echoes = {f.echo_number for f in plan.all_frames}
    echo = echoes.pop() if len(echoes) == 1 else None
    if echo is not None and echo > 1 and not re.search(r"_e\d", suffix):
        suffix += f"_e{echo}"  # dcm2niix names a later echo alone too (a phase difference)
    parts = {f.complex_part for f in plan.all_frames}
    tag = part_suffix(parts.pop(), plan.first.image_type) if len(parts) == 1 else ""
    if tag and tag not in suffix:
        suffix += tag
    return plan if suffix == plan.suffix else replace(plan, suffix=suffix)


def _checked_under(plan: VolumePlan, affine_rows: AffineRows) -> bool:
    """Whether ``plan`` was found exact (within EXACTNESS_TOLERANCE_VOXELS) under this very
    affine: the same rows, and its planner's voxel errors recorded and within tolerance."""
    error = plan.detail.max_voxel_error
    return (plan.affine_rows == affine_rows and error is not None
            and error <= EXACTNESS_TOLERANCE_VOXELS)


def _merge_4d(groups: list[list[VolumePlan]], name: str, ctx: StackContext,
              notes: Sequence[str]) -> VolumePlan | None:
    """One 4D plan when every group is one 3D plan on the same grid (groups that are
    themselves 4D join with :func:`dicomvol.plan.temporal.join_4d`)."""
    if len(groups) < 2 or any(len(g) != 1 or g[0].resample is not None
                              or len(g[0].frames) != 1 for g in groups):
        return None
    plans = [g[0] for g in groups]
    ref = plans[0]
    for p in plans[1:]:
        if p.shape != ref.shape or not geometry.affines_close(p.affine_rows, ref.affine_rows,
                                                              atol=1e-4):
            return None
        if _checked_under(p, ref.affine_rows):  # its own check was the same one
            continue
        if any(max(geometry.voxel_errors(ref.affine_rows, vol)) > EXACTNESS_TOLERANCE_VOXELS
               for vol in p.frames):
            return None
    volumes = [list(p.frames[0]) for p in plans]
    return make_plan(volumes, ref.affine_rows, ctx.suffix, ctx.label,
                     [*notes, f"4D: {len(volumes)} volumes ordered by {name}"],
                     ref.checks, ref.detail.with_(fourth_dimension=name))

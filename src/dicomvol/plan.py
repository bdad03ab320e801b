"""Plan volumes from frame records: group, split, sort, check, decide.

Pure and pixel-free. A :class:`VolumePlan` holds paths and numbers only, so it
pickles cheaply to worker processes. Every input frame ends in exactly one
plan or one :class:`SkippedFrame`.

Rules, in order:

1. The same (SOPInstanceUID, frame) read twice is used once; the copy is skipped.
2. Frames that are not part of a cross-sectional volume are skipped with a
   reason: segmentations, secondary captures, microscopy and projection
   images, localizers, colour images, frames without position/orientation.
3. Frames are grouped by SeriesInstanceUID, then by grid: orientation,
   Rows/Columns and PixelSpacing.
4. Within a grid, frames sharing a slice position are split by the first
   attribute that tells them apart (echo, temporal position, trigger time,
   acquisition number, image type, acquisition time), recursively. Groups
   split by a temporal attribute that land on identical grids become one 4D
   volume; other splits become separate volumes.
5. Slices are sorted by their position projected on the slice normal. The
   affine comes from the first slice and the mean step; a group whose every
   slice is exact under it is one volume. Otherwise it is split into maximal
   exact regular runs (each its own volume, with a warning); a slice left on
   its own is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dicomvol import geometry
from dicomvol.constants import (
    EXACTNESS_TOLERANCE_VOXELS,
    IN_PLANE_TOLERANCE_MM,
    SAME_POSITION_TOLERANCE_MM,
    SLICE_SPACING_RELATIVE_TOLERANCE,
)
from dicomvol.index import IndexResult
from dicomvol.options import PlanOptions
from dicomvol.records import FileError, FrameRecord, IgnoredFile

log = logging.getLogger(__name__)

#: SOP classes that hold pixel data but are never stacked into a volume.
NON_VOLUME_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation (convert it with a SEG tool such as highdicom)",
    "1.2.840.10008.5.1.4.1.1.66.7": "label map segmentation (convert it with a SEG tool)",
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.1": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.2": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.3": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.7.4": "secondary capture (a screenshot, not an acquired slice)",
    "1.2.840.10008.5.1.4.1.1.77.1.6": "whole-slide microscopy (tiled, not a patient-space volume)",
    "1.2.840.10008.5.1.4.1.1.1": "computed radiography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.1": "digital X-ray (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "digital X-ray (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.2": "mammography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "mammography (a projection image)",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT image (a projection image)",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT dose grid (not yet supported)",
    "1.2.840.10008.5.1.4.1.1.30": "parametric map (not yet supported)",
}

#: Attributes that tell apart frames at one position, in the order they are tried.
#: (name, accessor, is_temporal)
SPLIT_ATTRIBUTES: tuple[tuple[str, Callable[[FrameRecord], Any], bool], ...] = (
    ("stack", lambda f: f.stack_id, False),
    ("echo", lambda f: f.echo_number if f.echo_number is not None else f.echo_time, False),
    ("diffusion", lambda f: (f.diffusion_b, f.diffusion_direction), True),
    ("temporal position", lambda f: f.temporal_position, True),
    ("trigger time", lambda f: f.trigger_time, True),
    ("acquisition number", lambda f: f.acquisition_number, True),
    ("image type", lambda f: f.image_type, False),
    ("acquisition time", lambda f: f.acquisition_time, True),
)

_SUFFIX = {"stack": "stack", "diffusion": "dwi", "echo": "e", "temporal position": "t",
           "trigger time": "trig", "acquisition number": "acq", "image type": "type",
           "acquisition time": "time"}


@dataclass(frozen=True, slots=True)
class SkippedFrame:
    """An input image frame (or whole instance, frame None) that is in no output."""

    sop_instance_uid: str
    frame: int | None
    path: str
    rel: str
    reason: str

    @classmethod
    def of(cls, frame: FrameRecord, reason: str) -> SkippedFrame:
        """The entry for one frame of the input."""
        return cls(frame.sop_instance_uid, frame.frame, frame.path, frame.rel, reason)

    def to_json(self) -> dict[str, Any]:
        """The contract's report entry."""
        return {"SOPInstanceUID": self.sop_instance_uid, "Frame": self.frame,
                "File": self.rel, "Reason": self.reason}


#: Slices a stack needs to count as its own acquisition when it does not overlap another.
MIN_STACK_SLICES = 3
#: Value outside the acquired field when resampling, by modality (air for CT).
RESAMPLE_FILL: dict[str, float] = {"CT": -1024.0}


@dataclass(frozen=True, slots=True)
class ResampleSpec:
    """How a plan's slices are resampled onto a regular orthogonal grid."""

    reason: str
    order: int  # 1 linear, 0 nearest
    fill: float
    spacing: float


@dataclass(frozen=True, eq=False)
class VolumePlan:
    """Everything needed to assemble and write one volume, without pixels.

    Attributes
    ----------
    frames : tuple of tuple of FrameRecord
        ``frames[t][k]``: slice k of volume t, k ascending along the slice step.
    affine : ndarray of shape (4, 4)
        Maps voxel (i, j, k, 1) to LPS mm.
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T) with X = Columns, Y = Rows.
    suffix : str
        Appended to the output name to tell apart volumes of one series ("" for one).
    """

    series_instance_uid: str
    frames: tuple[tuple[FrameRecord, ...], ...]
    affine: np.ndarray
    shape: tuple[int, ...]
    suffix: str
    label: str
    geometry: dict[str, Any]
    detail: dict[str, Any]
    warnings: tuple[str, ...]
    sheared: bool
    resample: ResampleSpec | None = None

    @property
    def first(self) -> FrameRecord:
        """The first slice of the first volume."""
        return self.frames[0][0]

    @property
    def all_frames(self) -> list[FrameRecord]:
        """Frames in voxel order: k fastest, then t."""
        return [f for vol in self.frames for f in vol]

    @property
    def modality(self) -> str:
        """Modality of the source series."""
        return self.first.modality


@dataclass
class ScanResult:
    """Plans and the accounting of every file and frame that is in no plan."""

    plans: list[VolumePlan] = field(default_factory=list)
    skipped: list[SkippedFrame] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    series_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_files: int = 0



def plan_index(
    index: IndexResult, n_files: int = 0, options: PlanOptions | None = None
) -> ScanResult:
    """Turn an index into volume plans and skipped frames."""
    options = options or PlanOptions()
    result = ScanResult(ignored=list(index.ignored), errors=list(index.errors), n_files=n_files)
    frames, duplicates = _dedupe(index.frames)
    if options.philips_scaling == "fp":
        frames = [_philips_fp(f) for f in frames]
    result.skipped.extend(duplicates)
    volume_frames: list[FrameRecord] = []
    for frame in frames:
        reason = non_volume_reason(frame)
        if reason is None:
            volume_frames.append(frame)
        else:
            result.skipped.append(SkippedFrame.of(frame, reason))
    by_series: dict[str, list[FrameRecord]] = defaultdict(list)
    for frame in volume_frames:
        by_series[frame.series_instance_uid].append(frame)
    for uid in sorted(by_series, key=lambda u: (_series_sort_key(by_series[u]), u)):
        plans, skipped, checks = plan_series(by_series[uid], options)
        result.plans.extend(plans)
        result.skipped.extend(skipped)
        result.series_checks[uid] = checks
    result.skipped = _collapse_instances(result.skipped, index.frames)
    return result


def _philips_fp(frame: FrameRecord) -> FrameRecord:
    """Philips floating-point scaling: value = (RS * SV + RI) / (RS * SS)."""
    ss = frame.philips_scale_slope
    if not ss:
        return frame
    rs, ri = frame.rescale_slope, frame.rescale_intercept
    return replace(frame, rescale_slope=1.0 / ss, rescale_intercept=ri / (rs * ss))


def _series_sort_key(frames: Sequence[FrameRecord]) -> tuple[str, int]:
    f = frames[0]
    return (f.study_instance_uid, f.series_number if f.series_number is not None else 1 << 30)


def _dedupe(frames: Iterable[FrameRecord]) -> tuple[list[FrameRecord], list[SkippedFrame]]:
    kept: dict[tuple[str, int, int], FrameRecord] = {}
    skipped = []
    for frame in sorted(frames, key=lambda f: (f.rel, f.path, f.frame, f.tile or 0)):
        first = kept.get(frame.key)
        if first is None:
            kept[frame.key] = frame
        else:
            skipped.append(SkippedFrame.of(
                frame, f"duplicate: the same SOPInstanceUID was read from {first.rel}"))
    return list(kept.values()), skipped


def non_volume_reason(frame: FrameRecord) -> str | None:
    """Why a frame can never be part of a volume, or None when it can."""
    known = NON_VOLUME_SOP_CLASSES.get(frame.sop_class_uid)
    if known:
        return known
    if "LOCALIZER" in frame.image_type:
        return "localizer (scout) image, not part of a volume"
    if frame.samples_per_pixel != 1:
        return (f"colour image ({frame.photometric}, {frame.samples_per_pixel} samples per "
                "pixel); dicomvol writes greyscale volumes")
    missing = [name for name, value in (("ImagePositionPatient", frame.position),
                                        ("ImageOrientationPatient", frame.orientation),
                                        ("PixelSpacing", frame.pixel_spacing)) if value is None]
    if missing:
        return f"no {', '.join(missing)}: cannot be placed in patient space"
    if geometry.cross_norm(frame.orientation or (0, 0, 0, 0, 0, 0)) < 0.5:
        return f"ImageOrientationPatient {frame.orientation} is degenerate"
    return None


def _collapse_instances(
    skipped: list[SkippedFrame], all_frames: Sequence[FrameRecord]
) -> list[SkippedFrame]:
    """One entry per skipped frame (mosaic tiles folded into their frame); a multi-frame
    instance whose frames all share one reason becomes one entry with Frame None."""
    n_frames: dict[tuple[str, str], int] = {}
    for f in all_frames:
        n_frames[(f.path, f.sop_instance_uid)] = f.number_of_frames
    by_instance: dict[tuple[str, str], dict[tuple[int | None, str], SkippedFrame]] = (
        defaultdict(dict))
    for s in skipped:
        by_instance[(s.path, s.sop_instance_uid)].setdefault((s.frame, s.reason), s)
    out = []
    for key, entries in by_instance.items():
        total = n_frames.get(key, 1)
        frames = {frame for frame, _ in entries}
        reasons = {reason for _, reason in entries}
        items = list(entries.values())
        if total > 1 and len(frames) == total and len(reasons) == 1:
            s = items[0]
            out.append(SkippedFrame(s.sop_instance_uid, None, s.path, s.rel, s.reason))
        else:
            out.extend(items)
    return out


def plan_series(
    frames: Sequence[FrameRecord], options: PlanOptions | None = None
) -> tuple[list[VolumePlan], list[SkippedFrame], dict[str, Any]]:
    """Plan the volumes of one series (frames that can join a volume)."""
    options = options or PlanOptions()
    checks = geometry.idc_checks([f for f in frames if f.number_of_frames == 1] or frames)
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    grids = _grid_groups(frames)
    for g, grid in enumerate(grids):
        prefix = f"_g{g + 1}" if len(grids) > 1 else ""
        label = _grid_label(grid[0]) if len(grids) > 1 else ""
        if len(grids) > 1:
            note = (f"series holds {len(grids)} different grids (orientation, matrix or pixel "
                    f"spacing); this is grid {g + 1}: {label}")
        else:
            note = ""
        p, s = _plan_grid(grid, prefix, label, [note] if note else [], checks, options)
        plans.extend(p)
        skipped.extend(s)
    return plans, skipped, checks


def _grid_label(f: FrameRecord) -> str:
    ps = f.pixel_spacing or (0.0, 0.0)
    return (f"{geometry.describe_orientation(f.orientation or (1, 0, 0, 0, 1, 0))}, "
            f"{f.columns}x{f.rows}, {ps[1]:g}x{ps[0]:g} mm")


def _grid_groups(frames: Sequence[FrameRecord]) -> list[list[FrameRecord]]:
    groups: list[list[FrameRecord]] = []
    for frame in sorted(frames, key=lambda f: (f.instance_number or 0, f.rel, f.frame)):
        for group in groups:
            ref = group[0]
            if (ref.rows == frame.rows and ref.columns == frame.columns
                    and geometry.same_orientation(ref.orientation or (), frame.orientation or ())
                    and geometry.same_spacing(ref.pixel_spacing or (), frame.pixel_spacing or ())):
                group.append(frame)
                break
        else:
            groups.append([frame])
    return groups


def _position_clusters(frames: Sequence[FrameRecord]) -> list[list[FrameRecord]]:
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


def _plan_grid(
    frames: Sequence[FrameRecord], suffix: str, label: str, notes: list[str],
    checks: dict[str, Any], options: PlanOptions,
) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    clusters = _position_clusters(frames)
    if all(len(c) == 1 for c in clusters):
        return _plan_stack([c[0] for c in clusters], suffix, label, notes, checks, options)
    shared = [c for c in clusters if len(c) > 1]
    for name, get, temporal in SPLIT_ATTRIBUTES:
        if not any(len({_hashable(get(f)) for f in c}) > 1 for c in shared):
            continue
        values = _ordered_values(frames, get)
        parts = [[f for f in frames if _hashable(get(f)) == v] for v in values]
        sub_plans: list[list[VolumePlan]] = []
        skipped: list[SkippedFrame] = []
        for n, (value, part) in enumerate(zip(values, parts, strict=True)):
            sub_suffix = f"{suffix}_{_SUFFIX[name]}{n + 1}"
            sub_label = _join(label, f"{name} {_value_text(value)}")
            p, s = _plan_grid(part, sub_suffix, sub_label, notes, checks, options)
            sub_plans.append(p)
            skipped.extend(s)
        if temporal:
            merged = _merge_4d(sub_plans, name, suffix, label, notes)
            if merged is not None:
                return [merged], skipped
        if name == "acquisition number":
            sub_plans = _as_stacks(sub_plans, suffix)
        return [p for group in sub_plans for p in group], skipped
    by_rank = _instance_order_split(clusters)
    if by_rank is not None:
        sub_plans, skipped = [], []
        for n, part in enumerate(by_rank):
            p, s = _plan_grid(part, f"{suffix}_t{n + 1}", _join(label, f"volume {n + 1}"),
                              notes, checks, options)
            sub_plans.append(p)
            skipped.extend(s)
        why = (f"{len(by_rank)} frames at each slice position with no attribute telling them "
               "apart; volumes ordered by InstanceNumber")
        merged = _merge_4d(sub_plans, "instance number", suffix, label, [*notes, why])
        if merged is not None:
            return [merged], skipped
        return [p for group in sub_plans for p in group], skipped
    deduped = _identical_duplicates(clusters)
    if deduped is not None:
        kept, copies = deduped
        p, s = _plan_grid(kept, suffix, label, notes, checks, options)
        return p, [*s, *copies]
    n_shared = sum(len(c) for c in shared)
    reason = (f"{n_shared} frames share {len(shared)} slice position(s) and no attribute "
              f"({', '.join(a[0] for a in SPLIT_ATTRIBUTES)}) tells them apart")
    return [], [SkippedFrame.of(f, reason) for f in frames]


def _identical_duplicates(
    clusters: list[list[FrameRecord]],
) -> tuple[list[FrameRecord], list[SkippedFrame]] | None:
    """One frame per position when every shared position holds copies of one image.

    The last resort before skipping: frames at one position that no attribute
    tells apart are compared by their decoded pixels and rescale (the one place
    planning reads pixels, and only for such positions). Copies with other
    SOPInstanceUIDs (e.g. one image re-encoded in several transfer syntaxes)
    are used once and reported; None when any position holds different images.
    """
    from dicomvol.assemble import _decode

    decoded: dict[tuple[str, int, int], bytes] = {}

    def digest(frame: FrameRecord) -> bytes:
        key = frame.key
        if key not in decoded:
            for f, pixels in _decode(frame.path, [frame]):
                # values, not bytes: a big-endian copy holds the same image
                wide = pixels.astype("<i8" if pixels.dtype.kind in "iu" else "<f8")
                decoded[f.key] = hashlib.sha256(
                    wide.tobytes() + repr((f.rescale_slope, f.rescale_intercept)).encode()
                ).digest()
        return decoded[key]

    kept: list[FrameRecord] = []
    copies: list[SkippedFrame] = []
    try:
        for cluster in clusters:
            ordered = sorted(cluster, key=lambda f: (f.rel, f.frame, f.tile or 0))
            first = ordered[0]
            if any(digest(f) != digest(first) for f in ordered[1:]):
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
    """Volume t = the t-th frame by InstanceNumber at every position (GE stores 4D so).

    Only when every position holds the same number of frames and InstanceNumbers are
    distinct; otherwise None.
    """
    counts = {len(c) for c in clusters}
    numbers = [f.instance_number for c in clusters for f in c]
    if len(counts) != 1 or None in numbers or len(set(numbers)) != len(numbers):
        return None
    m = counts.pop()
    ranked = [sorted(c, key=lambda f: f.instance_number or 0) for c in clusters]
    return [[c[t] for c in ranked] for t in range(m)]


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


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return "\\".join(str(v) for v in value)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _plan_stack(
    stack: Sequence[FrameRecord], suffix: str, label: str, notes: list[str],
    checks: dict[str, Any], options: PlanOptions,
) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """Plan slices at distinct positions, sorted along the normal."""
    fallback = stack[0].spacing_between_slices or stack[0].slice_thickness
    affine = geometry.affine_for(stack, fallback)
    errors = geometry.voxel_errors(affine, stack)
    orientation = stack[0].orientation
    assert orientation is not None
    proj = geometry.projections(stack, orientation)
    base_detail = _stack_detail(stack, proj, orientation)
    if float(np.max(errors)) <= EXACTNESS_TOLERANCE_VOXELS:
        warnings = list(notes)
        if len(stack) == 1:
            warnings.append(f"single slice: the slice axis uses "
                            f"{'SpacingBetweenSlices/SliceThickness' if fallback else '1 mm'} "
                            f"({float(np.linalg.norm(affine[:3, 2])):g} mm)")
        case = "gantry tilt" if geometry.is_sheared(affine) else (
            "single slice" if len(stack) == 1 else "regular")
        plan = _make_plan([list(stack)], affine, suffix, label, warnings, checks,
                          {**base_detail, "case": case,
                           "max_voxel_error": round(float(np.max(errors)), 6)})
        if not plan.sheared:
            return [plan], []
        deg = geometry.shear_degrees(affine)
        why = (f"gantry tilt: slices step {deg:.2f}° off the slice normal"
               + _tilt_tag(stack[0]))
        plans = [plan] if options.tilt in ("shear", "both") else []
        if options.tilt in ("resample", "both"):
            rs_suffix = f"{suffix}_resampled" if plans else suffix
            plans.append(_resample_plan(stack, rs_suffix, label, notes, checks, options, why,
                                        {**base_detail, "case": case}))
        return plans, []
    stacks = _separate_stacks(stack)
    if stacks is not None:
        stack_plans: list[VolumePlan] = []
        stack_skipped: list[SkippedFrame] = []
        for n, part in enumerate(stacks):
            note = (f"series holds {len(stacks)} stacks (acquisition numbers) that do not join "
                    f"into one regular grid; this is stack {n + 1}")
            p, s = _plan_stack(part, f"{suffix}_stack{n + 1}", _join(label, f"stack {n + 1}"),
                               [*notes, note], checks, options)
            stack_plans.extend(p)
            stack_skipped.extend(s)
        return stack_plans, stack_skipped
    gaps = geometry.gaps(proj)
    case, why = _irregular_reason(base_detail, gaps, stack)
    base_detail.update(case=case, gaps=gaps)
    if options.irregular == "resample":
        return [_resample_plan(stack, suffix, label, notes, checks, options, why,
                               base_detail)], []
    if options.irregular == "skip":
        reason = f"{why}; skipped as asked (--irregular skip)"
        return [], [SkippedFrame.of(f, reason) for f in stack]
    return _split_runs(stack, proj, suffix, label, notes, checks, why, base_detail)


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
    ranges = sorted((float(np.min(r)), float(np.max(r)))
                    for r in (geometry.projections(p, orientation) for p in parts))
    overlap = any(b[0] < a[1] for a, b in itertools.pairwise(ranges))
    if not overlap and any(len(p) < MIN_STACK_SLICES for p in parts):
        return None
    return parts


def _tilt_tag(frame: FrameRecord) -> str:
    return "" if frame.gantry_tilt in (None, 0.0) else (
        f"; GantryDetectorTilt {frame.gantry_tilt:g}°")


def _resample_plan(
    stack: Sequence[FrameRecord], suffix: str, label: str, notes: list[str],
    checks: dict[str, Any], options: PlanOptions, why: str, detail: dict[str, Any],
) -> VolumePlan:
    """A plan to resample ``stack`` onto a regular orthogonal grid."""
    from dicomvol.resample import choose_spacing, output_grid

    orientation = stack[0].orientation
    assert orientation is not None
    proj = geometry.projections(stack, orientation)
    spacing, spacing_why = choose_spacing(list(proj))
    first = stack[0]
    fill = RESAMPLE_FILL.get(first.modality, 0.0)
    spec = ResampleSpec(reason=why, order=1 if options.interpolation == "linear" else 0,
                        fill=fill, spacing=spacing)
    assert first.pixel_spacing is not None
    affine, grid_shape = output_grid([f.position for f in stack if f.position is not None],
                                     orientation, first.pixel_spacing, first.rows,
                                     first.columns, spacing)
    n_out = grid_shape[2]
    warnings = [*notes, f"{why}; resampled onto a regular grid of {spacing:g} mm "
                f"({options.interpolation} interpolation, outside the acquired field "
                f"{fill:g}) and marked Resampled"]
    detail = {**detail, "resample": {"reason": why, "spacing_mm": spacing,
                                     "spacing_choice": spacing_why,
                                     "interpolation": options.interpolation, "fill": fill,
                                     "output_slices": n_out,
                                     "output_shape": list(grid_shape)}}
    plan = _make_plan([list(stack)], affine, suffix, _join(label, "resampled"), warnings,
                      checks, detail, resample=spec)
    return plan


def _split_runs(
    stack: Sequence[FrameRecord], proj: np.ndarray, suffix: str, label: str, notes: list[str],
    checks: dict[str, Any], why: str, base_detail: dict[str, Any],
) -> tuple[list[VolumePlan], list[SkippedFrame]]:
    """The largest exact regular runs, each its own volume; isolated slices skipped."""
    runs = geometry.exact_runs(stack)
    plans: list[VolumePlan] = []
    skipped: list[SkippedFrame] = []
    real_runs = [r for r in runs if r[1] - r[0] >= 2]
    for n, (start, stop) in enumerate(real_runs):
        part = list(stack[start:stop])
        run_affine = geometry.affine_for(part)
        run_err = geometry.voxel_errors(run_affine, part)
        warnings = [*notes, f"{why}; written as exact piece {n + 1} of {len(real_runs)}: slices "
                    f"{start + 1}-{stop} of {len(stack)} along the normal "
                    f"({proj[start]:.2f} to {proj[stop - 1]:.2f} mm)"]
        detail = {**base_detail, "split": {"piece": n + 1, "pieces": len(real_runs),
                  "first_slice": start + 1, "last_slice": stop, "of_slices": len(stack)},
                  "max_voxel_error": round(float(np.max(run_err)), 6)}
        run_suffix = f"{suffix}_part{n + 1}" if len(real_runs) > 1 else suffix
        plans.append(_make_plan([part], run_affine, run_suffix, _join(label, f"part {n + 1}"),
                                warnings, checks, detail))
    for start, stop in runs:
        if stop - start == 1:
            f = stack[start]
            skipped.append(SkippedFrame.of(
                f, f"{why}; this slice at {proj[start]:.2f} mm along the normal has no "
                "neighbour at a regular step (an isolated slice)"))
    return plans, skipped


def _irregular_reason(detail: dict[str, Any], gaps: list[dict[str, float]],
                      stack: Sequence[FrameRecord]) -> tuple[str, str]:
    """(case, explanation) for a stack that is not one exact regular grid."""
    tilted = any(f.gantry_tilt not in (None, 0.0) for f in stack) or (
        detail.get("step_angle_degrees", 0.0) > 0.5
        and detail.get("in_plane_nonlinearity_mm", 0.0) < IN_PLANE_TOLERANCE_MM)
    if gaps:
        missing = sum(int(g["missing_slices"]) for g in gaps)
        where = ", ".join(f"{g['after_position_mm']:g} mm" for g in gaps)
        return "missing slices", (f"{missing} slice(s) missing (gap after {where} along the "
                                  f"normal; regular step {detail['median_spacing_mm']:g} mm)")
    spacing = (f"slice spacing varies from {detail['min_spacing_mm']:g} to "
               f"{detail['max_spacing_mm']:g} mm (median {detail['median_spacing_mm']:g})")
    if tilted:
        return "gantry tilt with variable spacing", (
            f"gantry tilt (slices step {detail['step_angle_degrees']:.2f}° off the normal"
            f"{_tilt_tag(stack[0])}) and " + spacing)
    if detail.get("in_plane_shift_mm", 0.0) >= IN_PLANE_TOLERANCE_MM and (
            detail["max_spacing_mm"] - detail["min_spacing_mm"]
            < SLICE_SPACING_RELATIVE_TOLERANCE * detail["median_spacing_mm"]):
        return "lateral shift", (f"slice positions shift in plane by up to "
                                 f"{detail['in_plane_shift_mm']:g} mm, not along a straight line")
    return "variable spacing", spacing


def _stack_detail(stack: Sequence[FrameRecord], proj: np.ndarray,
                  orientation: Sequence[float]) -> dict[str, Any]:
    """Measured numbers of a stack: spacing range, in-plane shift, step angle."""
    steps = np.diff(proj)
    detail: dict[str, Any] = {"orientation": geometry.describe_orientation(orientation),
                              "slices": len(stack)}
    if len(steps):
        row, col = geometry.directions(orientation)
        pos = np.array([f.position for f in stack], dtype=np.float64)
        shift = max(float(np.ptp(pos @ row)), float(np.ptp(pos @ col)))
        # In-plane offsets that follow a straight line along the normal are a tilt (shear);
        # anything else is a lateral shift.
        in_plane = np.c_[pos @ row, pos @ col]
        fit = np.polyfit(proj, in_plane, 1) if len(proj) > 2 else None
        nonlinear = 0.0 if fit is None else float(np.max(np.abs(
            in_plane - (np.outer(proj, fit[0]) + fit[1]))))
        detail["in_plane_nonlinearity_mm"] = round(nonlinear, 4)
        detail.update(min_spacing_mm=round(float(np.min(steps)), 4),
                      median_spacing_mm=round(float(np.median(steps)), 4),
                      max_spacing_mm=round(float(np.max(steps)), 4),
                      in_plane_shift_mm=round(shift, 4),
                      step_angle_degrees=round(geometry.shear_degrees(
                          geometry.affine_for(stack)), 4))
    return detail


def _make_plan(
    volumes: list[list[FrameRecord]], affine: np.ndarray, suffix: str, label: str,
    warnings: list[str], checks: dict[str, Any], detail: dict[str, Any],
    resample: ResampleSpec | None = None,
) -> VolumePlan:
    first = volumes[0][0]
    sheared = resample is None and geometry.is_sheared(affine)
    detail = dict(detail)
    detail["slice_step_mm"] = round(float(np.linalg.norm(affine[:3, 2])), 6)
    detail["sheared"] = sheared
    if sheared:
        deg = geometry.shear_degrees(affine)
        detail["shear_degrees"] = round(deg, 4)
        warnings = [*warnings, f"sheared grid: the slice step is {deg:.2f}° from the slice normal "
                    "(gantry tilt); the affine is exact but sheared, stored in the sform only"]
    shape: tuple[int, ...] = (first.columns, first.rows, len(volumes[0]))
    if resample is not None:
        shape = tuple(int(v) for v in detail["resample"]["output_shape"])
    if len(volumes) > 1:
        shape = (*shape, len(volumes))
    return VolumePlan(
        series_instance_uid=first.series_instance_uid,
        frames=tuple(tuple(v) for v in volumes),
        affine=affine,
        shape=shape,
        suffix=suffix,
        label=label,
        geometry=dict(checks),
        detail=detail,
        warnings=tuple(warnings),
        sheared=sheared,
        resample=resample,
    )


def _merge_4d(
    groups: list[list[VolumePlan]], name: str, suffix: str, label: str, notes: list[str]
) -> VolumePlan | None:
    """One 4D plan when every group is one 3D plan on the same grid."""
    if len(groups) < 2 or any(len(g) != 1 or g[0].resample is not None for g in groups):
        return None
    plans = [g[0] for g in groups]
    ref = plans[0]
    for p in plans[1:]:
        if p.shape != ref.shape or not np.allclose(p.affine, ref.affine, atol=1e-4):
            return None
        if any(geometry.voxel_errors(ref.affine, vol).max() > EXACTNESS_TOLERANCE_VOXELS
               for vol in p.frames):
            return None
    volumes = [list(p.frames[0]) for p in plans]
    detail = dict(ref.detail)
    detail["fourth_dimension"] = name
    return _make_plan(volumes, ref.affine, suffix, label,
                      [*notes, f"4D: {len(volumes)} volumes ordered by {name}"],
                      ref.geometry, detail)

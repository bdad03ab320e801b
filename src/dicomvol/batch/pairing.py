"""Pair each SEG and RTSTRUCT with the image plans it references (headers only).

A derived object references images by SOPInstanceUID (a SEG's source images,
an RTSTRUCT's contour images) and by SeriesInstanceUID; both must agree with
its FrameOfReferenceUID. It is paired with every image plan that holds one of
its referenced instances (so with both the sheared and the resampled volume of
a tilted series), else with every plan of a referenced series. Without the
referenced image in the input a SEG is placed on the grid of its own frames,
planned by the same rules as an image series (the planner, with missing planes
between segmented slices left empty rather than interpolated); an RTSTRUCT,
whose contours have no grid of their own, is skipped with the reason. SEGs of
slide microscopy or projection images (no patient coordinates) are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from dicomvol.constants import SEG_SNAP_TOLERANCE_MM
from dicomvol.model import geometry
from dicomvol.model.derived import DerivedObject
from dicomvol.model.grid import VolumeGeometry
from dicomvol.model.plan import DerivedPlan, ScanResult, VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.options import PlanOptions
from dicomvol.plan.planner import plan_series

#: Most planes of a SEG's own grid at its nominal spacing (beyond: the planner's grid).
MAX_OWN_GRID_PLANES = 4096


def pair_derived(result: ScanResult, objects: Sequence[DerivedObject],
                 options: PlanOptions | None = None) -> None:
    """Fill ``result.derived`` with label-map plans; skip what cannot be placed (in place)."""
    options = options or PlanOptions()
    frames_of: dict[tuple[str, str], list[FrameRecord]] = defaultdict(list)
    for f in result.derived_frames:
        frames_of[(f.path, f.sop_instance_uid)].append(f)
    first_read: dict[str, DerivedObject] = {}
    for obj in sorted(objects, key=lambda o: (o.rel, o.path)):
        if obj.sop_instance_uid in first_read:
            if obj.kind == "RTSTRUCT":  # SEG copies: their frames are skipped as duplicates
                result.skipped.append(obj.skip("duplicate: the same SOPInstanceUID was read "
                                               f"from {first_read[obj.sop_instance_uid].rel}"))
            continue
        first_read[obj.sop_instance_uid] = obj
        frames = sorted(frames_of.get((obj.path, obj.sop_instance_uid), []),
                        key=lambda f: f.frame)
        if obj.kind == "SEG" and not frames:
            continue
        reason = unplaceable(obj, frames)
        if reason is not None:
            result.skipped.append(obj.skip(reason))
            continue
        targets, notes = referenced_plans(obj, result.plans)
        if targets:
            result.derived.extend(DerivedPlan(obj, tuple(frames), p, p.geometry,
                                              warnings=tuple(notes)) for p in targets)
        elif obj.kind == "SEG":
            own = own_grid_plans(frames, options)
            why = (f"referenced image series {', '.join(obj.referenced_series) or '(none)'} is "
                   "not in the input; written on the grid of the SEG's own frames")
            if own:
                result.derived.extend(DerivedPlan(obj, tuple(frames), p, grid, own_grid=True,
                                                  warnings=(*notes, why)) for p, grid in own)
            else:
                result.skipped.append(obj.skip("SEG frames do not form a grid and the referenced "
                                               "image is not in the input"))
        else:
            result.skipped.append(obj.skip(
                "RTSTRUCT: referenced image series "
                f"{', '.join(obj.referenced_series) or '(none named)'} is not in the input "
                "(contours are rasterised on the referenced image's grid)" +
                (f"; {'; '.join(notes)}" if notes else "")))


def unplaceable(obj: DerivedObject, frames: Sequence[FrameRecord]) -> str | None:
    """Why an object can never become a patient-space label map, or None."""
    if obj.kind == "RTSTRUCT":
        if not obj.segments:
            return "RTSTRUCT without StructureSetROISequence (no ROI to write)"
        return None
    if not obj.has_patient_geometry or any(f.position is None or f.orientation is None
                                           or f.pixel_spacing is None for f in frames):
        return ("segmentation of an image without patient coordinates (slide microscopy or "
                "projection image): not a patient-space volume")
    if obj.segmentation_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        return f"SegmentationType {obj.segmentation_type or '(missing)'} is not supported"
    return None


def referenced_plans(obj: DerivedObject,
                     plans: Sequence[VolumePlan]) -> tuple[list[VolumePlan], list[str]]:
    """Image plans holding a referenced instance, else plans of a referenced series.

    Plans whose FrameOfReferenceUID differs from the object's are left out, with a note.
    """
    instances = set(obj.referenced_instances)
    by_instance = [p for p in plans
                   if instances and any(f.sop_instance_uid in instances for f in p.all_frames)]
    series = set(obj.referenced_series)
    candidates = by_instance or [p for p in plans if p.series_instance_uid in series]
    notes: list[str] = []
    kept = []
    for p in candidates:
        theirs = p.first.frame_of_reference_uid
        if obj.frame_of_reference_uid and theirs and theirs != obj.frame_of_reference_uid:
            notes.append(f"image series {p.series_instance_uid}{p.suffix} has another "
                         f"FrameOfReferenceUID ({theirs}, the {obj.kind} names "
                         f"{obj.frame_of_reference_uid}): not paired")
            continue
        kept.append(p)
    return kept, notes


def own_grid_plans(frames: Sequence[FrameRecord],
                   options: PlanOptions) -> list[tuple[VolumePlan, VolumeGeometry]]:
    """Plans and grids of a SEG's own frames: one frame per distinct plane, planned like an
    image series.

    Planes between segmented slices are empty in a SEG (it omits empty frames),
    so an irregular set of planes is put on a regular grid (``irregular="resample"``).
    When the planner would space that grid otherwise than the SEG's own
    SpacingBetweenSlices (or SliceThickness) and every frame lies on the
    lattice of that spacing, the lattice is used (at most
    :data:`MAX_OWN_GRID_PLANES` planes): every frame then snaps onto a plane
    and nothing is interpolated.
    """
    import numpy as np

    first = frames[0]
    assert first.orientation is not None
    proj = geometry.projections(frames, first.orientation)
    order = np.argsort(proj, kind="stable")
    reps: list[FrameRecord] = []
    last = -np.inf
    for n in order:
        if proj[n] - last > SEG_SNAP_TOLERANCE_MM:
            reps.append(frames[int(n)])
            last = float(proj[n])
    # A SEG omits empty frames, so its gaps are planes without segment: never split there.
    own = PlanOptions(tilt=options.tilt, irregular="resample", interpolation="nearest",
                      philips_scaling=options.philips_scaling,
                      max_gap_slices=MAX_OWN_GRID_PLANES)
    # Distinct instance numbers keep the planner's frame order stable (SEG frames share one).
    reps = [replace(f, instance_number=n + 1) for n, f in enumerate(reps)]
    plans, _, _ = plan_series(reps, own)
    out = []
    for p in plans:
        lattice = nominal_lattice(reps) if p.resample is not None else None
        out.append((p, lattice if lattice is not None else p.geometry))
    return out


def nominal_lattice(reps: Sequence[FrameRecord]) -> VolumeGeometry | None:
    """The grid at the frames' nominal slice spacing when every frame lies on it, else None.

    ``reps`` are one frame per plane, sorted along the normal, without in-plane shifts.
    """
    import numpy as np

    first = reps[0]
    step = first.spacing_between_slices or first.slice_thickness
    if not step or step <= 0 or first.orientation is None or first.pixel_spacing is None:
        return None
    row, col = (np.asarray(v) for v in geometry.directions(first.orientation))
    normal = np.asarray(geometry.slice_normal(first.orientation))
    pos = np.array([f.position for f in reps], dtype=np.float64)
    rel = pos - pos[0]
    if np.max(np.abs(rel - np.outer(rel @ normal, normal)), initial=0.0) > SEG_SNAP_TOLERANCE_MM:
        return None  # in-plane shifts (tilt): the planner's grid handles them
    m = (rel @ normal) / step
    if np.max(np.abs(m - np.rint(m))) * step > SEG_SNAP_TOLERANCE_MM:
        return None
    n_planes = int(np.rint(m[-1])) + 1
    if n_planes > MAX_OWN_GRID_PLANES:
        return None
    affine = np.eye(4)
    affine[:3, 0] = row * first.pixel_spacing[1]
    affine[:3, 1] = col * first.pixel_spacing[0]
    affine[:3, 2] = normal * step
    affine[:3, 3] = pos[0]
    return VolumeGeometry(affine, (first.columns, first.rows, n_planes),
                          first.frame_of_reference_uid or None)

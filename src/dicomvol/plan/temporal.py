"""4D series: the parts a split told apart joined into one 4D volume, in time order.

Splitting (:mod:`dicomvol.plan.splits`) is for frames that cannot share a grid;
an unfamiliar 4D axis is never a reason to write separate files. The parts of
one grid that an attribute told apart join here:

* a part that is itself 4D contributes all its volumes (label and control
  images at each temporal position; two passes with one AcquisitionNumber;
  temporal positions x trigger delays), so nesting never drops or shatters a
  series;
* parts split further by a non-temporal attribute (image type, echo) join
  part by part when every temporal part holds the same such parts;
* the volumes are then put in time order by the first attributes of
  :data:`TEMPORAL_ORDER` that the series actually varies, as many as it
  takes to tell every volume apart (InstanceNumber, as dcm2niix orders 2D
  files, then the DimensionIndexValues of a multi-frame object, and its
  frame number last). The
  attributes used are the sidecar's ``TemporalOrderSource``, and their
  per-volume values its ``TemporalOrderValues``.

Diffusion volumes keep the order their split gave them (acquisition order of
the (b, direction) pairs): their bval/bvec follow it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dicomvol.constants import EXACTNESS_TOLERANCE_VOXELS
from dicomvol.model import geometry
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.plan.stacks import StackContext, join, make_plan

#: Largest difference (mm) between two parts' affines for them to share one grid.
SAME_AFFINE_TOLERANCE_MM = 1e-4


def tm_seconds(value: str | None) -> float | None:
    """A DICOM TM (``HHMMSS.frac``, colons tolerated) in seconds after midnight, or None."""
    if not value:
        return None
    text = value.strip().replace(":", "")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    whole = (whole + "0000")[:6] if len(whole) < 6 else whole[:6]
    seconds = int(whole[:2]) * 3600 + int(whole[2:4]) * 60 + int(whole[4:6])
    return seconds + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class OrderKey:
    """One attribute that may order the volumes of a time series."""

    #: Name in ``TemporalOrderSource`` for single-frame files.
    name: str
    #: Name for frames of a multi-frame (enhanced) object.
    enhanced_name: str
    get: Callable[[FrameRecord], float | int | None]
    #: The value as the sidecar shows it (the TM text for times); ``get`` when None.
    show: Callable[[FrameRecord], Any] | None = None


#: Attributes that order time series, most significant first.
TEMPORAL_ORDER: tuple[OrderKey, ...] = (
    OrderKey("TemporalPositionIdentifier", "TemporalPositionIndex",
             lambda f: f.temporal_position),
    OrderKey("TriggerTime", "TriggerTime", lambda f: f.trigger_time),
    OrderKey("AcquisitionTime", "FrameAcquisitionDateTime",
             lambda f: tm_seconds(f.acquisition_time), lambda f: f.acquisition_time),
    OrderKey("ContentTime", "ContentTime", lambda f: tm_seconds(f.content_time),
             lambda f: f.content_time),
    OrderKey("AcquisitionNumber", "AcquisitionNumber", lambda f: f.acquisition_number),
    OrderKey("InstanceNumber", "InstanceNumber", lambda f: f.instance_number),
    # the frame order the standard defines (PS3.3 7.5.2); ranked, as the values are tuples
    OrderKey("DimensionIndexValues", "DimensionIndexValues",
             lambda f: f.dimension_index),  # type: ignore[arg-type,return-value]
    OrderKey("FrameNumber", "FrameNumber", lambda f: f.frame),
)


def time_order(volumes: Sequence[Sequence[FrameRecord]]
               ) -> tuple[list[int], tuple[str, ...]]:
    """The order of ``volumes`` in time and the attributes that gave it.

    A volume's value of an attribute is its smallest over its slices (2D
    acquisitions time each slice); an attribute counts when every volume has
    it and the values are not all equal. Attributes are taken in the order of
    :data:`TEMPORAL_ORDER` until the volumes are told apart; volumes still
    tied keep their given order (``"storage order"`` is then named last).

    Parameters
    ----------
    volumes : sequence of sequence of FrameRecord
        ``volumes[t][k]``.

    Returns
    -------
    order : list of int
        Indices into ``volumes``, earliest first.
    sources : tuple of str
        The attributes used, most significant first.
    """
    enhanced = volumes[0][0].number_of_frames > 1
    keys: list[list[float]] = [[] for _ in volumes]
    sources: list[str] = []
    for key in TEMPORAL_ORDER:
        values = [_volume_value(v, key.get) for v in volumes]
        present = [v for v in values if v is not None]
        if len(present) < len(values) or len(set(present)) < 2:
            continue
        ranks = {v: float(r) for r, v in enumerate(sorted(set(present)))}  # tuples too
        for row, value in zip(keys, present, strict=True):
            row.append(ranks[value])
        sources.append(key.enhanced_name if enhanced else key.name)
        if len({tuple(row) for row in keys}) == len(volumes):
            break
    else:
        if len({tuple(row) for row in keys}) < len(volumes):
            sources.append("storage order")
    order = sorted(range(len(volumes)), key=lambda t: (keys[t], t))
    return order, tuple(sources)


def order_values(frames: Sequence[Sequence[FrameRecord]],
                 sources: Sequence[str]) -> dict[str, list[Any]]:
    """Each volume's value of each attribute in ``sources`` (``TemporalOrderValues``).

    ``frames[t][k]`` as in a plan; a volume's value is that of its earliest slice.
    """
    out: dict[str, list[Any]] = {}
    for key in TEMPORAL_ORDER:
        for name in {key.name, key.enhanced_name}:
            if name in sources:
                show = key.show or key.get
                out[name] = [show(min(vol, key=lambda f: key.get(f) or 0)) for vol in frames]
    return out


def _volume_value(frames: Sequence[FrameRecord],
                  get: Callable[[FrameRecord], float | int | None]) -> float | int | None:
    values = [get(f) for f in frames]
    if any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)


def join_4d(groups: Sequence[Sequence[VolumePlan]], subs: Sequence[StackContext], name: str,
            ctx: StackContext, notes: Sequence[str]) -> list[VolumePlan] | None:
    """The plans of parts told apart by ``name``, joined into 4D plans; None when they cannot.

    Parameters
    ----------
    groups : sequence of sequence of VolumePlan
        The plans of each part (``groups[n]`` planned with suffix ``subs[n]``).
    subs : sequence of StackContext
        The context each part was planned with (``ctx.sub(...)``: its suffix and label).
    name : str
        The attribute that told the parts apart (``"temporal position"``, ...).
    ctx : StackContext
        The context of the whole (its suffix and label name the joined plans).
    notes : sequence of str
        Notes every joined plan carries.

    Returns
    -------
    list of VolumePlan or None
        One 4D plan per kind of part (one, unless the parts were split further
        by a non-temporal attribute), or None when the parts do not hold the
        same kinds of plans on one grid each.
    """
    if len(groups) < 2 or any(not g for g in groups):
        return None
    rests = []
    for group, sub in zip(groups, subs, strict=True):
        if any(not p.suffix.startswith(sub.suffix) for p in group):
            return None
        rests.append([p.suffix[len(sub.suffix):] for p in group])
    if any(r != rests[0] for r in rests[1:]) or len(set(rests[0])) != len(rests[0]):
        return None
    joined = []
    for j, rest in enumerate(rests[0]):
        first = groups[0][j]
        label = ctx.label
        if rest and first.label.startswith(subs[0].label):  # the part's own label, e.g. image type
            label = join(ctx.label, first.label[len(subs[0].label):].lstrip(", "))
        plan = _join_parts([g[j] for g in groups], name, ctx.suffix + rest, label, notes)
        if plan is None:
            return None
        joined.append(plan)
    return joined


def _join_parts(plans: Sequence[VolumePlan], name: str, suffix: str, label: str,
                notes: Sequence[str]) -> VolumePlan | None:
    """One 4D plan of the volumes of ``plans`` (3D or 4D) when they share one exact grid."""
    ref = plans[0]
    if any(p.resample is not None for p in plans):
        return None
    for p in plans[1:]:
        if (p.shape[:3] != ref.shape[:3]
                or not geometry.affines_close(p.affine_rows, ref.affine_rows,
                                              atol=SAME_AFFINE_TOLERANCE_MM)):
            return None
        if any(max(geometry.voxel_errors(ref.affine_rows, vol)) > EXACTNESS_TOLERANCE_VOXELS
               for vol in p.frames):
            return None
    volumes = [list(vol) for p in plans for vol in p.frames]
    nested = any(len(p.frames) > 1 for p in plans)
    order: list[int] = list(range(len(volumes)))
    sources: tuple[str, ...] = ()
    if name != "diffusion":
        order, sources = time_order(volumes)
    why = f"4D: {len(volumes)} volumes ordered by {name}"
    if nested or order != sorted(order):
        why = f"4D: {len(volumes)} volumes ordered by {', then '.join(sources)}"
    inner: list[str] = []
    for p in plans:
        if len(p.frames) > 1:
            inner.extend(w for w in p.warnings if w not in notes and not w.startswith("4D: ")
                         and w not in inner)
    return make_plan([volumes[t] for t in order], ref.affine_rows, suffix, label,
                     [*notes, *inner, why], ref.checks,
                     ref.detail.with_(fourth_dimension=name, temporal_order=sources))

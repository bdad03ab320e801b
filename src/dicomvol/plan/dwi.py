"""Diffusion series: acquired volumes in acquisition order, derived images set apart.

A diffusion series at one set of slice positions holds b = 0 volumes and
weighted volumes (repeated directions and b = 0 volumes are common), and
sometimes derived images that the scanner computed from them: the isotropic
(trace) image, ADC, FA and exponential ADC maps (``FrameRecord.diffusion_derived``,
read in :mod:`dicomvol.dicom.diffusion`). Tensor fitting needs one 4D of the
acquired volumes with one bval/bvec pair: :func:`acquisition_volumes` builds
them, volume *t* being the *t*-th acquired frame of every slice position in
acquisition order; :func:`separate_derived` sets the derived frames apart, one
output per kind (``_trace``, ``_ADC``, ``_FA``, ``_eADC``). The joining into
one 4D plan is :func:`dicomvol.plan.splits.plan_grid`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from dicomvol.model.records import FrameRecord

#: Output name suffix per derived kind (dcm2niix writes ``_ADC`` for Philips ADC maps).
DERIVED_SUFFIX = {"trace": "_trace", "ADC": "_ADC", "FA": "_FA", "eADC": "_eADC"}


def separate_derived(frames: Sequence[FrameRecord]
                     ) -> tuple[list[FrameRecord], dict[str, list[FrameRecord]]]:
    """The acquired frames, and the derived ones by kind (in order of first appearance)."""
    acquired: list[FrameRecord] = []
    derived: dict[str, list[FrameRecord]] = {}
    for f in frames:
        if f.diffusion_derived:
            derived.setdefault(f.diffusion_derived, []).append(f)
        else:
            acquired.append(f)
    return acquired, derived


def acquisition_order(f: FrameRecord) -> tuple[int, int, int, str, str]:
    """Acquisition order: the vendor's volume index where the header has one (Philips
    (2005,1596), whatever the InstanceNumbers say), then storage order: frame number,
    InstanceNumber, acquisition time, file."""
    return (f.vendor_volume or 0, f.frame, f.instance_number or 0, f.acquisition_time or "",
            f.rel)


def encoding(f: FrameRecord) -> tuple[Any, ...]:
    """What a volume's frames share: b-value and direction (rounded against DS noise)."""
    return _encoding(f.diffusion_b, f.diffusion_direction)


@functools.lru_cache(maxsize=4096)  # per frame, and a series repeats a few encodings
def _encoding(b: float | None, direction: tuple[float, ...] | None) -> tuple[Any, ...]:
    return (None if b is None else round(b, 3),
            None if direction is None else tuple(round(c, 5) for c in direction))


def acquisition_volumes(clusters: Sequence[Sequence[FrameRecord]]
                        ) -> list[list[FrameRecord]] | None:
    """Volumes of acquired frames: volume *t* = the *t*-th frame of each position.

    Parameters
    ----------
    clusters : sequence of sequence of FrameRecord
        The frames of each slice position (``splits.position_clusters``).

    Returns
    -------
    list of list of FrameRecord or None
        One list per volume, in acquisition order, each with one frame per
        position; None when positions hold different numbers of frames or
        their diffusion encodings do not line up (the caller falls back to
        splitting by encoding). When the storage order of the positions
        disagrees (e.g. scrambled InstanceNumbers), the frames of each position
        are ordered by encoding (in order of first acquisition), then by
        storage order.
    """
    if not clusters or len({len(c) for c in clusters}) != 1:
        return None
    ordered = [sorted(c, key=acquisition_order) for c in clusters]
    if not _lined_up(ordered):
        first: dict[tuple[Any, ...], tuple[int, int, int, str, str]] = {}
        for c in ordered:
            for f in c:
                key = encoding(f)
                if key not in first or acquisition_order(f) < first[key]:
                    first[key] = acquisition_order(f)
        ordered = [sorted(c, key=lambda f: (first[encoding(f)], acquisition_order(f)))
                   for c in ordered]
        if not _lined_up(ordered):
            return None
    return [[c[t] for c in ordered] for t in range(len(ordered[0]))]


def _lined_up(ordered: Sequence[Sequence[FrameRecord]]) -> bool:
    reference = [encoding(f) for f in ordered[0]]
    return all([encoding(f) for f in c] == reference for c in ordered[1:])

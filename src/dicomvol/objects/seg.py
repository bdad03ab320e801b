"""DICOM SEG on an output grid: labels, one-hot or fractional volumes, frame by frame.

Binary SEGs whose segments do not overlap become one integer volume (each
voxel holds its SegmentNumber: ``Encoding: labels``); overlapping segments
become one binary volume per segment (``one-hot``); FRACTIONAL SEGs one float
volume per segment with values in 0..1 (stored value / MaximumFractionalValue:
``fractional``); Label Map Segmentation objects hold label values already
(``labels``).

Frames are decoded a few at a time (:class:`~dicomvol.objects.frames.FrameReader`)
and written into the volume being built, so memory is one output volume per
segment in flight, whatever the number of frames. Frames that snap onto the
grid's planes are copied; when any frame does not, the whole map is sampled
nearest-neighbour (:mod:`dicomvol.objects.sampling`) and marked resampled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from dicomvol.model.derived import DerivedObject, SegmentInfo
from dicomvol.model.grid import VolumeGeometry
from dicomvol.model.records import FrameRecord
from dicomvol.objects.frames import (
    FrameReader,
    Placement,
    clipped_region,
    copy_into,
    place_frames,
)
from dicomvol.objects.sampling import half_thickness, sample_nearest


@dataclass
class MapAccount:
    """What building a label map found: frames used and not, drift, warnings."""

    used: list[FrameRecord] = field(default_factory=list)
    unplaced: list[tuple[FrameRecord, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resample_reason: str | None = None
    max_drift_mm: float = 0.0
    voxels: dict[int, int] = field(default_factory=dict)


def value_counts(volume: np.ndarray) -> dict[int, int]:
    """Voxels per nonzero value of an integer volume (X, Y, Z), counted slice by slice
    (``np.bincount`` of the whole volume would first copy it to 64-bit integers)."""
    counts = np.zeros(1, dtype=np.int64)
    for k in range(volume.shape[2]):
        plane = np.bincount(volume[:, :, k].ravel(order="K"))
        if plane.size > counts.size:
            plane[:counts.size] += counts
            counts = plane
        else:
            counts[:plane.size] += plane
    return {int(v): int(n) for v, n in enumerate(counts) if v and n}


class SegMapper:
    """One SEG instance placed on one target grid.

    Parameters
    ----------
    obj : DerivedObject
        The SEG's segments, type and per-frame segment numbers.
    frames : sequence of FrameRecord
        Every frame of the instance.
    target : VolumeGeometry
        The output grid.
    reader : FrameReader
        Decodes the instance's frames on demand.
    """

    def __init__(self, obj: DerivedObject, frames: Sequence[FrameRecord], target: VolumeGeometry,
                 reader: FrameReader) -> None:
        self.obj, self.target, self.reader = obj, target, reader
        self.account = MapAccount()
        self.labelmap = obj.segmentation_type == "LABELMAP"
        self.fractional = obj.segmentation_type == "FRACTIONAL"
        known = {s.number for s in obj.segments}
        self.segments = [s for s in obj.segments if not (self.labelmap and s.number == 0)]
        usable = []
        for f in frames:
            number = self.segment_of(f)
            if not self.labelmap and number not in known:
                self.account.unplaced.append(
                    (f, f"frame holds segment {number}, which the SegmentSequence does not "
                        "define"))
            else:
                usable.append(f)
        placed, off = place_frames(usable, target)
        nz = target.spatial_shape[2]
        self.placements: list[Placement] = []
        for p in placed:
            if 0 <= p.k < nz:
                self.placements.append(p)
            else:
                self.account.unplaced.append((p.frame, "frame lies outside the output grid"))
        self.off = off
        self.frames = usable
        if off:
            worst = max(off, key=lambda o: o.distance_mm)
            self.account.resample_reason = (
                f"{len(off)} of {len(usable)} SEG frames do not lie on the output grid's planes "
                f"(e.g. frame {worst.frame.frame}: {worst.reason}); sampled nearest-neighbour")
        else:
            self.account.max_drift_mm = max((p.drift_mm for p in self.placements), default=0.0)
            self.account.used = [p.frame for p in self.placements]

    def segment_of(self, frame: FrameRecord) -> int:
        """The segment number a frame holds (0 for Label Map Segmentation frames)."""
        table = self.obj.frame_segments
        return table[frame.frame - 1] if 0 < frame.frame <= len(table) else 0

    @property
    def encoding(self) -> str:
        """The encoding before overlaps are known: fractional for FRACTIONAL, else labels."""
        return "fractional" if self.fractional else "labels"

    def label_dtype(self) -> np.dtype[np.unsignedinteger]:
        """uint8 when every label value fits, else uint16."""
        top = max((s.number for s in self.segments), default=0)
        return np.dtype(np.uint8 if top <= 255 else np.uint16)

    def labels(self) -> np.ndarray | None:
        """One integer volume (X, Y, Z) of segment numbers, or None when segments overlap."""
        shape = self.target.spatial_shape
        out = np.zeros(shape, dtype=self.label_dtype(), order="F")
        if self.off:
            return self._sampled_labels(out)
        by_number = {p.frame.frame: p for p in self.placements}
        clipped = 0
        voxels: dict[int, int] = defaultdict(int)  # segment -> voxels it holds in the map
        for number, box in self.reader.boxes(sorted(by_number)):
            if box is None:  # an empty frame
                continue
            p = by_number[number]
            origin = (box.row0, box.col0)
            if self.labelmap:
                clipped += copy_into(out, p, box.values, origin)[0]
                continue
            seg = self.segment_of(p.frame)
            region, part = clipped_region(out.shape, p, box.values.shape, origin)
            mask = box.values.T[part] != 0
            target = out[region]
            held = mask & (target != 0)
            if np.any(held & (target != seg)):
                return None
            np.copyto(target, seg, where=mask)
            voxels[seg] += int(np.count_nonzero(mask)) - int(np.count_nonzero(held))
            if mask.shape != box.values.T.shape:
                clipped += int(np.count_nonzero(box.values)) - int(np.count_nonzero(mask))
        self._note_clipped(clipped)
        self.account.voxels = (value_counts(out) if self.labelmap else
                               {v: n for v, n in sorted(voxels.items()) if n})
        return out

    def _sampled_labels(self, out: np.ndarray) -> np.ndarray | None:
        seen = np.zeros(out.shape, dtype=bool, order="F") if not self.labelmap else None
        for info, volume in self._sampled_segments():
            mask = volume != 0
            if seen is not None:
                if np.any(seen & mask):
                    return None
                seen |= mask
                out[mask] = info.number
            else:
                out[mask] = volume[mask]
        self.account.voxels = value_counts(out)
        return out

    def volumes(self) -> Iterator[tuple[SegmentInfo, np.ndarray]]:
        """One volume (X, Y, Z) per segment, in SegmentSequence order: binary uint8
        (one-hot) or float32 in 0..1 (fractional). Only one is held at a time."""
        if self.off:
            yield from self._sampled_segments()
            return
        by_segment: dict[int, list[Placement]] = defaultdict(list)
        for p in self.placements:
            by_segment[self.segment_of(p.frame)].append(p)
        scale = 1.0 / float(self.obj.max_fractional_value or 255)
        clipped = 0
        for info in self.segments:
            volume = np.zeros(self.target.spatial_shape, order="F",
                              dtype=np.float32 if self.fractional else np.uint8)
            items = {p.frame.frame: p for p in by_segment.get(info.number, [])}
            held = 0  # nonzero voxels of the volume
            for number, box in self.reader.boxes(sorted(items)):
                if box is None:  # an empty frame
                    continue
                values = (box.values.astype(np.float32) * np.float32(scale) if self.fractional
                          else (box.values != 0).astype(np.uint8))
                lost, added = copy_into(volume, items[number], values, (box.row0, box.col0))
                clipped, held = clipped + lost, held + added
            self.account.voxels[info.number] = held
            yield info, volume
        self._note_clipped(clipped)

    def _sampled_segments(self) -> Iterator[tuple[SegmentInfo, np.ndarray]]:
        """Nearest-neighbour volumes per segment (one for a Label Map Segmentation)."""
        half = half_thickness(self.frames, self.target)
        scale = 1.0 / float(self.obj.max_fractional_value or 255)
        groups: list[tuple[SegmentInfo, list[FrameRecord]]]
        if self.labelmap:
            groups = [(SegmentInfo(0, "labels"), list(self.frames))]
        else:
            by_segment: dict[int, list[FrameRecord]] = defaultdict(list)
            for f in self.frames:
                by_segment[self.segment_of(f)].append(f)
            groups = [(s, by_segment.get(s.number, [])) for s in self.segments]
        used: set[int] = set()
        for info, frames in groups:
            positioned = [f for f in frames if f.position is not None]
            decoded = dict(self.reader.frames([f.frame for f in positioned]))
            items = []
            for f in positioned:
                values = decoded[f.frame]
                if self.fractional:
                    values = values.astype(np.float32) * np.float32(scale)
                elif not self.labelmap:
                    values = (values != 0).astype(np.uint8)
                items.append((f, values))
            dtype = (np.float32 if self.fractional else
                     (self.label_dtype() if self.labelmap else np.uint8))
            volume = np.zeros(self.target.spatial_shape, dtype=dtype, order="F")
            hit = sample_nearest(items, self.target, half, volume)
            used.update(items[n][0].frame for n in hit)
            if info.number:
                self.account.voxels[info.number] = int(np.count_nonzero(volume))
            yield info, volume
        self.account.used = [f for f in self.frames if f.frame in used]
        self.account.unplaced.extend((f, "frame lies outside the output grid")
                                     for f in self.frames if f.frame not in used)

    def _note_clipped(self, clipped: int) -> None:
        if clipped:
            self.account.warnings.append(
                f"{clipped} segmented pixels lie outside the output grid and are not in the map")


"""What the QC page knows about one output: thumbnails, slice positions, the 4th axis.

Written by the job that writes the output (``convert --qc``), while it holds
the plan and the pixels, to ``qc/data/NAME.json``; rebuilt from the written
image and its sidecar by ``dicomvol qc`` when missing or stale. The acquired
slice positions come from the plan (the source ImagePositionPatient of every
slice); without a plan they are taken from the written affine, which places
every acquired slice exactly unless the output was resampled (then only the
output grid and the gaps the sidecar names are known).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.dicom.values import tm_ms
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.model.geometry import directions, slice_normal
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.plan.splits import SPLIT_ATTRIBUTES
from dicomvol.qc.thumbs import Thumb

log = logging.getLogger(__name__)

#: The QC folder inside an output folder, and its parts.
QC_DIR = "qc"
DATA_DIR = "data"
IMG_DIR = "img"
PAGE_NAME = "index.html"
#: Version of the ``qc/data`` records; a record of another version is rebuilt.
RECORD_VERSION = 1
#: Units of the values along a 4D volume's 4th axis, by what it orders.
FOURTH_UNITS = {"diffusion": "b (s/mm²)", "trigger time": "ms", "acquisition time": "s",
                "temporal position": "", "acquisition number": "", "instance number": ""}


@dataclass(frozen=True)
class Positions:
    """Slice positions along the acquired slice normal (mm).

    Attributes
    ----------
    normal : tuple of float
        LPS unit normal (row x column direction) the positions are measured on.
    acquired_mm : tuple of float
        One per acquired slice of the output (of its first volume), in slice order.
    row_mm, col_mm : tuple of float
        The same slices' positions projected on the row and column directions
        (a gantry tilt or a lateral shift shows as a drift).
    grid_mm : tuple of float
        The output planes, in slice order.
    source : {"plan", "affine"}
        Where ``acquired_mm`` comes from.
    frames : tuple of str
        ``SOPInstanceUID#Frame`` of each acquired slice (tells a frame shared by
        two outputs from two frames at one position).
    """

    normal: tuple[float, float, float]
    acquired_mm: tuple[float, ...]
    row_mm: tuple[float, ...]
    col_mm: tuple[float, ...]
    grid_mm: tuple[float, ...]
    source: str
    frames: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"normal": list(self.normal), "acquired_mm": list(self.acquired_mm),
                "row_mm": list(self.row_mm), "col_mm": list(self.col_mm),
                "grid_mm": list(self.grid_mm), "source": self.source,
                "frames": list(self.frames)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Positions:
        """The inverse of :meth:`to_json`."""
        n = [float(v) for v in obj["normal"]]
        return cls((n[0], n[1], n[2]), _floats(obj["acquired_mm"]), _floats(obj["row_mm"]),
                   _floats(obj["col_mm"]), _floats(obj["grid_mm"]), str(obj["source"]),
                   tuple(str(v) for v in obj.get("frames", ())))


def is_irregular(detail: dict[str, Any], resampled: bool, sheared: bool, label: str) -> bool:
    """Whether an output comes from a series that is not one regular grid.

    True when it was resampled, is sheared (gantry tilt), is a split piece, is
    one of several stacks, or its ``GeometryDetail.case`` is neither
    ``regular`` nor ``single slice``: the outputs whose geometry the page plots.
    """
    return bool(resampled or sheared or detail.get("split")
                or detail.get("case", "regular") not in ("regular", "single slice")
                or "stack " in label)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class FourthAxis:
    """What varies along a 4D volume's 4th axis: one value (and label) per volume.

    ``times_s`` is each volume's acquisition time (s after the earliest) when
    the headers give one, whatever orders the axis.
    """

    name: str
    unit: str
    values: tuple[float | None, ...]
    labels: tuple[str, ...] = ()
    times_s: tuple[float | None, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "unit": self.unit, "values": list(self.values),
                "labels": list(self.labels), "times_s": list(self.times_s)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FourthAxis:
        """The inverse of :meth:`to_json`."""
        return cls(str(obj["name"]), str(obj.get("unit", "")), _optional(obj.get("values")),
                   tuple(str(v) for v in obj.get("labels", ())), _optional(obj.get("times_s")))


def _optional(values: Any) -> tuple[float | None, ...]:
    return tuple(None if v is None else float(v) for v in values or ())


@dataclass
class VolumeQC:
    """The QC record of one output (``qc/data/NAME.json``)."""

    image: str
    modality: str
    shape: tuple[int, ...]
    affine: np.ndarray
    thumbs: list[Thumb] = field(default_factory=list)
    positions: Positions | None = None
    fourth: FourthAxis | None = None
    image_stat: tuple[int, int] | None = None
    legend: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"Version": RECORD_VERSION, "Image": self.image, "Modality": self.modality,
                "Shape": list(self.shape), "Affine": np.asarray(self.affine).tolist(),
                "ImageStat": list(self.image_stat) if self.image_stat else None,
                "Thumbs": [t.to_json() for t in self.thumbs],
                "Positions": self.positions.to_json() if self.positions else None,
                "FourthAxis": self.fourth.to_json() if self.fourth else None,
                "Legend": self.legend, "Notes": self.notes}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> VolumeQC:
        """The inverse of :meth:`to_json`."""
        stat = obj.get("ImageStat")
        return cls(str(obj["Image"]), str(obj.get("Modality", "")),
                   tuple(int(v) for v in obj["Shape"]),
                   np.array(obj["Affine"], dtype=np.float64),
                   [Thumb.from_json(t) for t in obj.get("Thumbs", ())],
                   Positions.from_json(obj["Positions"]) if obj.get("Positions") else None,
                   FourthAxis.from_json(obj["FourthAxis"]) if obj.get("FourthAxis") else None,
                   (int(stat[0]), int(stat[1])) if stat else None,
                   list(obj.get("Legend", ())), [str(n) for n in obj.get("Notes", ())])


def record_path(out_dir: Path, stem: str) -> Path:
    """``OUTDIR/qc/data/STEM.json``."""
    return out_dir / QC_DIR / DATA_DIR / f"{stem}.json"


def image_stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a written image: a record is fresh while these match."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (int(st.st_size), int(st.st_mtime_ns))


def write_record(out_dir: Path, stem: str, record: VolumeQC) -> Path:
    """Write a record atomically; returns its path."""
    path = record_path(out_dir, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record.to_json())
    return path


def read_record(out_dir: Path, stem: str) -> VolumeQC | None:
    """The record of an output, or None when absent, unreadable, of another version or stale."""
    path = record_path(out_dir, stem)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj.get("Version") != RECORD_VERSION:
            return None
        record = VolumeQC.from_json(obj)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        if path.exists():
            log.warning("%s: unreadable QC record, rebuilt: %s", path, exc)
        return None
    if record.image_stat is not None and record.image_stat != image_stat(out_dir / record.image):
        return None
    if not all((out_dir / QC_DIR / t.file).is_file() for t in record.thumbs):
        return None
    return record


def grid_positions(affine: np.ndarray, shape: tuple[int, ...],
                   normal: np.ndarray) -> tuple[float, ...]:
    """Positions (mm) along ``normal`` of an output's planes across the slice axis.

    The slice axis is the voxel axis running closest to ``normal`` (axis 2
    unless the output was reoriented).
    """
    m = np.asarray(affine, dtype=np.float64)
    along = np.abs(m[:3, :3].T @ normal) / np.maximum(np.linalg.norm(m[:3, :3], axis=0), 1e-12)
    axis = int(np.argmax(along))
    origin, step = float(m[:3, 3] @ normal), float(m[:3, axis] @ normal)
    values = origin + step * np.arange(int(shape[axis]))
    if step < 0:
        values = values[::-1]
    return tuple(round(float(v), 4) for v in values)


def plan_positions(plan: VolumePlan, affine: np.ndarray,
                   shape: tuple[int, ...]) -> Positions | None:
    """The positions of a plan's acquired slices, and of the output grid ``affine`` spans."""
    frames = [f for f in plan.frames[0] if f.position is not None]
    orientation = plan.first.orientation
    if not frames or orientation is None:
        return None
    normal = np.asarray(slice_normal(orientation))
    normal = normal / np.linalg.norm(normal)
    row, col = (np.asarray(v) for v in directions(orientation))
    pos = np.array([f.position for f in frames], dtype=np.float64)
    return Positions(
        (float(normal[0]), float(normal[1]), float(normal[2])),
        tuple(round(float(v), 4) for v in pos @ normal),
        tuple(round(float(v), 4) for v in pos @ row),
        tuple(round(float(v), 4) for v in pos @ col),
        grid_positions(affine, shape, normal), "plan",
        tuple(f"{f.sop_instance_uid}#{f.frame}#{f.tile or 0}" for f in frames))


def affine_positions(affine: np.ndarray, shape: tuple[int, ...], resampled: bool,
                     sources: list[dict[str, Any]] | None = None) -> Positions:
    """Positions from a written affine: its planes are the acquired slices unless resampled.

    ``sources`` is the sidecar's ``SourceInstances`` (names the frames).
    """
    m = np.asarray(affine, dtype=np.float64)
    row, col = m[:3, 0] / np.linalg.norm(m[:3, 0]), m[:3, 1] / np.linalg.norm(m[:3, 1])
    normal = np.cross(row, col)
    normal = normal / np.linalg.norm(normal)
    grid = grid_positions(m, shape, normal)
    if resampled:
        return Positions((float(normal[0]), float(normal[1]), float(normal[2])), (), (), (),
                         grid, "affine")
    origins = m[:3, 3][None, :] + np.arange(int(shape[2]))[:, None] * m[:3, 2][None, :]
    names = [f"{s.get('SOPInstanceUID')}#{s.get('Frame', 1)}#{s.get('Tile', 0)}"
             for s in (sources or [])[: int(shape[2])] if isinstance(s, dict)]
    return Positions((float(normal[0]), float(normal[1]), float(normal[2])),
                     tuple(round(float(v), 4) for v in origins @ normal),
                     tuple(round(float(v), 4) for v in origins @ row),
                     tuple(round(float(v), 4) for v in origins @ col), grid, "affine",
                     tuple(names) if len(names) == int(shape[2]) else ())


def _fourth_value(name: str, frame: FrameRecord) -> Any:
    if name == "instance number":
        return frame.instance_number
    if name == "acquisition time":
        return tm_ms(frame.acquisition_time)
    for attr, get, _ in SPLIT_ATTRIBUTES:
        if attr == name:
            return get(frame)
    return None


def plan_fourth_axis(plan: VolumePlan) -> FourthAxis | None:
    """One value per volume of a 4D plan, from the first slice of each volume."""
    if len(plan.frames) < 2:
        return None
    name = plan.detail.fourth_dimension or "volume"
    raw = [_fourth_value(name, vol[0]) for vol in plan.frames]
    labels: list[str] = []
    values: list[float | None] = []
    for value in raw:
        if name == "diffusion" and isinstance(value, tuple):
            b, direction = value
            values.append(None if b is None else float(b))
            labels.append("" if direction is None else
                          "(" + ", ".join(f"{c:.3f}" for c in direction) + ")")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
        else:
            values.append(None)
    times = _relative_s([tm_ms(vol[0].acquisition_time) for vol in plan.frames])
    if name == "acquisition time":
        values = list(times)
    return FourthAxis(name, FOURTH_UNITS.get(name, ""), tuple(values), tuple(labels),
                      times if any(t is not None for t in times) else ())


def _relative_s(ms: list[float | None]) -> tuple[float | None, ...]:
    """Milliseconds after midnight -> seconds after the earliest (None stays None)."""
    known = [v for v in ms if v is not None]
    start = min(known) if known else 0.0
    return tuple(None if v is None else round((v - start) / 1000.0, 3) for v in ms)

"""The plan of one output volume, and what a scan found: pure values, picklable.

A :class:`VolumePlan` holds paths and numbers only (no open files, no
datasets), so it crosses process boundaries cheaply; a :class:`ScanResult`
accounts for every file and frame that indexing found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomvol._typing import AffineRows, FloatArray
from dicomvol.model import geometry as _geometry
from dicomvol.model.detail import GeometryChecks, GeometryDetail
from dicomvol.model.grid import VolumeGeometry
from dicomvol.model.records import FileError, FrameRecord, IgnoredFile, SkippedFrame

if TYPE_CHECKING:  # annotations only: SEG and slide values load where a run has them
    from dicomvol.model.derived import DerivedObject
    from dicomvol.model.slide import SlideInfo


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
    affine_rows : AffineRows
        The affine that maps voxel (i, j, k, 1) to LPS mm, as four rows of floats:
        plans carry no ndarray, so that the process that plans and the workers that
        stream a plain series never import numpy (:attr:`affine` is the ndarray).
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T) with X = Columns, Y = Rows.
    suffix : str
        Appended to the output name to tell apart volumes of one series ("" for one).
    label : str
        Human description of what sets this volume apart within its series.
    checks : GeometryChecks or None
        The series' IDC ``volume_geometry_index`` checks.
    detail : GeometryDetail
        What the planner measured and decided.
    warnings : tuple of str
        Everything a user should know about this volume.
    sheared : bool
        The slice step leaves the slice normal (gantry tilt).
    resample : ResampleSpec or None
        Set when voxel values are interpolated onto a regular grid.
    """

    series_instance_uid: str
    frames: tuple[tuple[FrameRecord, ...], ...]
    affine_rows: AffineRows
    shape: tuple[int, ...]
    suffix: str
    label: str
    checks: GeometryChecks | None
    detail: GeometryDetail
    warnings: tuple[str, ...]
    sheared: bool
    resample: ResampleSpec | None = None

    @property
    def affine(self) -> FloatArray:
        """The affine as a new (4, 4) float64 ndarray (voxel (i, j, k, 1) to LPS mm)."""
        import numpy as np

        return np.array(self.affine_rows, dtype=np.float64)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing (mm) along i, j, k: the lengths of the affine's first three columns."""
        return _geometry.column_norms(self.affine_rows)

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

    @property
    def geometry(self) -> VolumeGeometry:
        """The output grid: spatial shape, affine and frame of reference (no pixels)."""
        return VolumeGeometry(self.affine, tuple(self.shape[:3]),  # type: ignore[arg-type]
                              self.first.frame_of_reference_uid or None)


@dataclass(frozen=True, eq=False)
class DerivedPlan:
    """One label map to write: a derived object placed on one image plan's output grid.

    Attributes
    ----------
    obj : DerivedObject
    frames : tuple of FrameRecord
        SEG: every frame of the instance, in frame order (empty for RTSTRUCT).
    target : VolumePlan
        The image plan whose output grid the map is written on; for an own-grid
        SEG, a plan made of the SEG's own frames (never written as an image).
    grid : VolumeGeometry
        The grid the map is written on: ``target.geometry`` for an image plan;
        for an own-grid SEG the regular grid of its frames.
    own_grid : bool
        True when the referenced image is not in the input and the SEG is
        written on the grid of its own frames.
    warnings : tuple of str
    """

    obj: DerivedObject
    frames: tuple[FrameRecord, ...]
    target: VolumePlan
    grid: VolumeGeometry
    own_grid: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        """The object's kind: "SEG" or "RTSTRUCT"."""
        return self.obj.kind

    @property
    def sources(self) -> list[dict[str, Any]]:
        """What the label map's ``SourceInstances`` name: the SEG frames or the RTSTRUCT."""
        if self.obj.kind == "RTSTRUCT":
            return [self.obj.instance_source()]
        return [f.source() for f in self.frames]


@dataclass
class ScanResult:
    """Plans and the accounting of every file and frame that is in no plan."""

    plans: list[VolumePlan] = field(default_factory=list)
    skipped: list[SkippedFrame] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    series_checks: dict[str, GeometryChecks | None] = field(default_factory=dict)
    n_files: int = 0
    #: Label maps to write: SEG and RTSTRUCT instances paired with an image plan.
    derived: list[DerivedPlan] = field(default_factory=list)
    #: SEG frames set aside by the planner for pairing (in ``derived`` or ``skipped`` after).
    derived_frames: list[FrameRecord] = field(default_factory=list)
    #: Whole-slide microscopy: the slides found, and the SM frames they were made from
    #: (every one in a slide output, ``skipped`` or, by file, ``errors`` after a run).
    slides: list[SlideInfo] = field(default_factory=list)
    slide_frames: list[FrameRecord] = field(default_factory=list)

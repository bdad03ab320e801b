"""Typed, frozen accounts of a plan's geometry: the IDC checks and what the planner measured.

These replace dictionaries read by string keys across modules. Each has a
``to_json()`` that gives the sidecar's ``Geometry`` / ``GeometryDetail``
object, with the key names and order the output has always had.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

#: The IDC ``volume_geometry_index`` check columns, in table order.
IDC_CHECK_NAMES = (
    "single_orientation", "orthogonal_orientation", "unique_slice_positions",
    "consistent_in_plane_row", "consistent_in_plane_col", "consistent_pixel_spacing",
    "consistent_image_dimensions", "uniform_slice_spacing",
)


@dataclass(frozen=True, slots=True)
class GeometryChecks:
    """The per-series checks of the IDC ``volume_geometry_index`` table.

    Attributes are the IDC column names; ``regularly_spaced_3d_volume`` is
    true when all eight checks hold. ``slice_spacing_mm`` is the span divided
    by N - 1 (None for a single slice).
    """

    single_orientation: bool
    orthogonal_orientation: bool
    unique_slice_positions: bool
    consistent_in_plane_row: bool
    consistent_in_plane_col: bool
    consistent_pixel_spacing: bool
    consistent_image_dimensions: bool
    uniform_slice_spacing: bool
    obliquity_degrees: float
    slice_spacing_mm: float | None

    @property
    def regularly_spaced_3d_volume(self) -> bool:
        """True when every one of the eight checks holds (IDC's summary column)."""
        return all(getattr(self, name) for name in IDC_CHECK_NAMES)

    def failed(self) -> list[str]:
        """Names of the checks that fail, in table order."""
        return [name for name in IDC_CHECK_NAMES if not getattr(self, name)]

    def to_json(self) -> dict[str, Any]:
        """The sidecar's ``Geometry`` object (IDC column names, table order)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in IDC_CHECK_NAMES}
        out["regularly_spaced_3d_volume"] = self.regularly_spaced_3d_volume
        out["obliquity_degrees"] = self.obliquity_degrees
        out["slice_spacing_mm"] = self.slice_spacing_mm
        return out


def checks_json(checks: GeometryChecks | None) -> dict[str, Any]:
    """``checks.to_json()``, or ``{}`` for a series without positioned frames."""
    return {} if checks is None else checks.to_json()


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing slices: an interval that is a whole multiple (>= 2) of the regular step."""

    after_position_mm: float
    gap_mm: float
    missing_slices: int

    def to_json(self) -> dict[str, Any]:
        """``{"after_position_mm", "gap_mm", "missing_slices"}``."""
        return {"after_position_mm": self.after_position_mm, "gap_mm": self.gap_mm,
                "missing_slices": self.missing_slices}


@dataclass(frozen=True, slots=True)
class StackMeasures:
    """Spacing and in-plane measures of a stack of two or more slices (mm, degrees)."""

    in_plane_nonlinearity_mm: float
    min_spacing_mm: float
    median_spacing_mm: float
    max_spacing_mm: float
    in_plane_shift_mm: float
    step_angle_degrees: float

    def to_json(self) -> dict[str, Any]:
        """The measures under their sidecar keys."""
        return {"in_plane_nonlinearity_mm": self.in_plane_nonlinearity_mm,
                "min_spacing_mm": self.min_spacing_mm,
                "median_spacing_mm": self.median_spacing_mm,
                "max_spacing_mm": self.max_spacing_mm,
                "in_plane_shift_mm": self.in_plane_shift_mm,
                "step_angle_degrees": self.step_angle_degrees}


@dataclass(frozen=True, slots=True)
class SplitPiece:
    """Which exact piece of an irregular stack a plan is (slices 1-based, inclusive)."""

    piece: int
    pieces: int
    first_slice: int
    last_slice: int
    of_slices: int

    def to_json(self) -> dict[str, Any]:
        """``{"piece", "pieces", "first_slice", "last_slice", "of_slices"}``."""
        return {"piece": self.piece, "pieces": self.pieces, "first_slice": self.first_slice,
                "last_slice": self.last_slice, "of_slices": self.of_slices}


@dataclass(frozen=True, slots=True)
class ResampleDetail:
    """How and why a stack is resampled, and the grid it gets."""

    reason: str
    spacing_mm: float
    spacing_choice: str
    interpolation: str
    fill: float
    output_shape: tuple[int, int, int]

    def to_json(self) -> dict[str, Any]:
        """The sidecar's ``GeometryDetail.resample`` object."""
        return {"reason": self.reason, "spacing_mm": self.spacing_mm,
                "spacing_choice": self.spacing_choice, "interpolation": self.interpolation,
                "fill": self.fill, "output_slices": self.output_shape[2],
                "output_shape": list(self.output_shape)}


@dataclass(frozen=True, slots=True)
class GeometryDetail:
    """What the planner measured and decided for one output volume.

    Attributes
    ----------
    orientation : str
        e.g. ``"axial"`` or ``"oblique sagittal 12.0°"``.
    slices : int
        Acquired slices in the stack.
    case : str
        ``"regular"``, ``"single slice"``, ``"gantry tilt"``, ``"missing slices"``,
        ``"variable spacing"``, ``"lateral shift"``, ...
    measures : StackMeasures or None
        None for a single slice.
    gaps : tuple of Gap or None
        For irregular stacks (None when regularity was not in question).
    split : SplitPiece or None
        For an exact piece of an irregular stack.
    max_voxel_error : float or None
        Largest slice misplacement under the plan's affine (voxels), for exact plans.
    resample : ResampleDetail or None
        For resampled plans.
    slice_step_mm, sheared, shear_degrees
        Length of the affine's slice step; whether it leaves the normal, by how much.
    fourth_dimension : str or None
        What the 4th axis orders (``"temporal position"``, ``"diffusion"``, ...).
    temporal_order : tuple of str
        The attributes that order the volumes of a 4D time series, most significant
        first (the sidecar's ``TemporalOrderSource``; empty otherwise).
    """

    orientation: str
    slices: int
    case: str = "regular"
    measures: StackMeasures | None = None
    gaps: tuple[Gap, ...] | None = None
    split: SplitPiece | None = None
    max_voxel_error: float | None = None
    resample: ResampleDetail | None = None
    slice_step_mm: float = 0.0
    sheared: bool = False
    shear_degrees: float | None = None
    fourth_dimension: str | None = None
    temporal_order: tuple[str, ...] = ()

    def with_(self, **changes: Any) -> GeometryDetail:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The sidecar's ``GeometryDetail`` object (keys in the order dicomvol writes them)."""
        out: dict[str, Any] = {"orientation": self.orientation, "slices": self.slices}
        if self.measures is not None:
            out.update(self.measures.to_json())
        out["case"] = self.case
        if self.gaps is not None:
            out["gaps"] = [g.to_json() for g in self.gaps]
        if self.split is not None:
            out["split"] = self.split.to_json()
        if self.max_voxel_error is not None:
            out["max_voxel_error"] = self.max_voxel_error
        if self.resample is not None:
            out["resample"] = self.resample.to_json()
        out["slice_step_mm"] = self.slice_step_mm
        out["sheared"] = self.sheared
        if self.shear_degrees is not None:
            out["shear_degrees"] = self.shear_degrees
        if self.fourth_dimension is not None:
            out["fourth_dimension"] = self.fourth_dimension
        return out

"""One frame's record fields from the functional groups of a multi-frame object.

What changes from frame to frame (:func:`frame_content`: the position and the
FrameContentSequence values, read directly from :mod:`~dicomvol.dicom.leanmf` items
where it can) and what repeats (:func:`group_fields`: orientation, spacing, rescale,
echo, frame type, the standard diffusion macro), the non-spatial DimensionIndexValues
(the frame order PS3.3 C.7.6.17 defines), and the value readers both kinds of record
share (:func:`required_number`, :func:`orientation_of`, :func:`position_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomvol._typing import Orientation, Vec3
from dicomvol.dicom.complex import complex_part
from dicomvol.dicom.leanitems import LeanItem
from dicomvol.dicom.tags import KEYWORD_TAGS
from dicomvol.dicom.values import (
    first_item,
    functional_group,
    to_float,
    to_floats,
    to_int,
    to_str,
    to_strs,
)
from dicomvol.errors import HeaderError

if TYPE_CHECKING:  # pragma: no cover - pydicom only where a file needs it
    from pydicom.dataset import Dataset


def required_number(ds: Any, keyword: str, default: float) -> float:
    """A number the values depend on: ``default`` when absent (or 0 for a slope, as before),
    HeaderError when present but unreadable (never a silent default for garbled text)."""
    raw = ds.get(keyword)
    value = to_float(raw)
    if value is None:
        if raw is not None and str(raw).strip():
            raise HeaderError(f"{keyword} {str(raw)[:40]!r} is not a number")
        return default
    return value or default


#: DimensionIndexPointers of the slice position (StackID, InStackPositionNumber, IPP).
SPATIAL_DIMENSIONS = frozenset({0x00209056, 0x00209057, 0x00200032})


def dimensions(ds: Dataset) -> tuple[int, tuple[int, ...]] | None:
    """(number of items, indices of the non-spatial ones) of the DimensionIndexSequence."""
    items = ds.get("DimensionIndexSequence")
    if not items:
        return None
    keep = []
    for i, item in enumerate(items):
        pointer = item.get("DimensionIndexPointer")
        if not isinstance(pointer, int):  # absent or unreadable: the order is not defined
            return None
        if int(pointer) not in SPATIAL_DIMENSIONS:
            keep.append(i)
    return len(items), tuple(keep)


def dimension_values(values: Any, dims: tuple[int, tuple[int, ...]] | None
                     ) -> tuple[int, ...] | None:
    """The non-spatial ones of a frame's DimensionIndexValues ``values``."""
    if dims is None:
        return None
    values = [values] if isinstance(values, int) else list(values)
    if len(values) != dims[0] or not all(isinstance(v, int) for v in values):
        return None
    return tuple(int(values[i]) for i in dims[1]) or None


#: The record fields that change from frame to frame, in the order :func:`frame_content`
#: gives them.
CONTENT_FIELDS = ("position", "temporal_position", "acquisition_time", "stack_id",
                  "dimension_index")


_PLANE_POSITION, _FRAME_CONTENT, _IPP, _TEMPORAL, _STACK, _ACQ_DT, _DIMENSION_VALUES = (
    KEYWORD_TAGS[k][0] for k in ("PlanePositionSequence", "FrameContentSequence",
                                 "ImagePositionPatient", "TemporalPositionIndex", "StackID",
                                 "FrameAcquisitionDateTime", "DimensionIndexValues"))


def frame_content(ds: Any, shared: Any, frame_fg: Any,
                   dims: tuple[int, tuple[int, ...]] | None) -> tuple[Any, ...]:
    """The fields of one frame of a multi-frame object that change from frame to frame:
    its position and its FrameContentSequence values (:data:`CONTENT_FIELDS`, in that order,
    as :func:`content_fields` gives them).

    A frame read by :mod:`~dicomvol.dicom.leanmf` with both items present and not empty
    (every Enhanced MR frame) is read from its items' values directly: the same values
    as through ``first_item`` and ``get``, in a third of the time (this runs per frame)."""
    if type(frame_fg) is LeanItem:
        values = frame_fg._lean_values
        plane, content = values.get(_PLANE_POSITION), values.get(_FRAME_CONTENT)
        if (type(plane) is list and plane and type(content) is list and content
                and type(plane[0]) is LeanItem and type(content[0]) is LeanItem
                and plane[0] and content[0]):
            fc = content[0]
            return content_fields(plane[0]._value(_IPP), fc._value(_TEMPORAL),
                                  fc._value(_ACQ_DT), fc._value(_STACK),
                                  fc._value(_DIMENSION_VALUES) if dims else None, dims)
    plane_pos = functional_group(frame_fg, shared, "PlanePositionSequence")
    ipp = plane_pos.get("ImagePositionPatient") if plane_pos else ds.get("ImagePositionPatient")
    item = first_item(frame_fg, "FrameContentSequence")

    def value(keyword: str) -> Any:
        return item.get(keyword) if item else None

    return content_fields(ipp, value("TemporalPositionIndex"), value("FrameAcquisitionDateTime"),
                          value("StackID"), value("DimensionIndexValues") if dims else None,
                          dims)


def acquisition_time(acq_dt: Any) -> str | None:
    """The time part of FrameAcquisitionDateTime (after its date), or None."""
    text = to_str(acq_dt)
    return text[8:] if len(text) > 8 else None


def stack_text(stack_id: Any) -> str | None:
    """StackID as text, None when absent or empty."""
    return to_str(stack_id) or None


def content_fields(ipp: Any, temporal: Any, acq_dt: Any, stack_id: Any, dimension: Any,
                   dims: tuple[int, tuple[int, ...]] | None) -> tuple[Any, ...]:
    """:data:`CONTENT_FIELDS`, in order, from the values of ImagePositionPatient
    (PlanePositionSequence) and of TemporalPositionIndex, FrameAcquisitionDateTime, StackID
    and DimensionIndexValues (FrameContentSequence), each None where absent."""
    return (position_of(ipp), to_int(temporal), acquisition_time(acq_dt),
            stack_text(stack_id),
            None if dimension is None else dimension_values(dimension, dims))


def group_fields(ds: Dataset, frame_fg: Dataset | None, shared: Dataset | None
                  ) -> dict[str, Any]:
    """The fields of a frame that repeat from frame to frame (all but position and content)."""
    plane_ori = functional_group(frame_fg, shared, "PlaneOrientationSequence")
    measures = functional_group(frame_fg, shared, "PixelMeasuresSequence")
    transform = functional_group(frame_fg, shared, "PixelValueTransformationSequence")
    echo = functional_group(frame_fg, shared, "MREchoSequence")
    frame_type = (
        functional_group(frame_fg, shared, "MRImageFrameTypeSequence")
        or functional_group(frame_fg, shared, "CTImageFrameTypeSequence")
        or functional_group(frame_fg, shared, "PETFrameTypeSequence")
    )
    spacing = to_floats(measures.get("PixelSpacing") if measures else ds.get("PixelSpacing"), 2)
    iop = (
        plane_ori.get("ImageOrientationPatient")
        if plane_ori
        else ds.get("ImageOrientationPatient")
    )
    src: Any = transform if transform is not None else ds
    if transform is None:  # parametric maps: the real world value mapping
        mapping = functional_group(frame_fg, shared, "RealWorldValueMappingSequence")
        if mapping is not None and mapping.get("RealWorldValueSlope") is not None:
            src = _RealWorld(mapping)
    image_type = to_strs(frame_type.get("FrameType")) if frame_type else ()
    diffusion = functional_group(frame_fg, shared, "MRDiffusionSequence")
    b_value = to_float(diffusion.get("DiffusionBValue")) if diffusion else None
    direction = None
    if diffusion is not None:
        grad = first_item(diffusion, "DiffusionGradientDirectionSequence")
        if grad is not None:
            direction = position_of(grad.get("DiffusionGradientOrientation"))
    return dict(
        image_type=image_type or to_strs(ds.get("ImageType")),
        orientation=orientation_of(iop),
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        slice_thickness=to_float(measures.get("SliceThickness")) if measures else None,
        spacing_between_slices=(
            to_float(measures.get("SpacingBetweenSlices")) if measures else None
        ),
        rescale_slope=required_number(src, "RescaleSlope", 1.0),
        rescale_intercept=required_number(src, "RescaleIntercept", 0.0),
        echo_number=None,
        echo_time=to_float(echo.get("EffectiveEchoTime")) if echo else None,
        acquisition_number=to_int(ds.get("AcquisitionNumber")),
        trigger_time=None,
        complex_part=complex_part(ds, image_type or to_strs(ds.get("ImageType")),
                                  frame_type.get("ComplexImageComponent") if frame_type else None),
        diffusion_b=b_value,
        diffusion_direction=direction,
    )


class _RealWorld:
    """A RealWorldValueMapping item read like a PixelValueTransformation item."""

    def __init__(self, item: Any) -> None:
        self._item = item

    def get(self, keyword: str, default: Any = None) -> Any:
        name = {"RescaleSlope": "RealWorldValueSlope",
                "RescaleIntercept": "RealWorldValueIntercept"}.get(keyword, keyword)
        return self._item.get(name, default)


def orientation_of(value: Any) -> Orientation | None:
    """ImageOrientationPatient as six floats, or None (absent, not six numbers)."""
    vals = to_floats(value, 6)
    if vals is None:
        return None
    return (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5])


def position_of(value: Any) -> Vec3 | None:
    """A position or direction as three floats, or None (absent, not three numbers)."""
    vals = to_floats(value, 3)
    if vals is None:
        return None
    return (vals[0], vals[1], vals[2])


#: Per field of :data:`CONTENT_FIELDS` but the last: the value of its element -> the field.
CONTENT_CONVERTERS = (position_of, to_int, acquisition_time, stack_text)

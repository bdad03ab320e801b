"""Derived objects (SEG, RTSTRUCT) and the plans that put them on an image grid: pure values.

A SEG's frames are indexed as :class:`~dicomvol.model.records.FrameRecord`
entries like any image frame (so every frame is accounted for the same way);
what only a derived object has (its segments, which segment each frame
holds, what it references) is a :class:`DerivedObject`. An RTSTRUCT has no
pixel data: its :class:`DerivedObject` stands for the whole instance
(``Frame`` 1 in ``SourceInstances``, ``null`` in ``skipped``).

A :class:`~dicomvol.model.plan.DerivedPlan` pairs one derived object with
the image plan whose output grid the label map is written on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dicomvol.model.records import SkippedFrame

#: SOP classes of derived objects dicomvol writes as label maps.
SEG_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
}
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Contour types rasterised (PS3.3 C.8.8.6.1); others are listed as skipped contours.
CLOSED_CONTOUR_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept: (CodeValue, CodingSchemeDesignator, CodeMeaning)."""

    value: str
    scheme: str
    meaning: str

    def to_json(self) -> dict[str, str]:
        """The sidecar form, DICOM attribute names."""
        return {"CodeValue": self.value, "CodingSchemeDesignator": self.scheme,
                "CodeMeaning": self.meaning}


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment of a SEG, or one ROI of an RTSTRUCT.

    Attributes
    ----------
    number : int
        SegmentNumber (SEG) or ROINumber (RTSTRUCT).
    label : str
        SegmentLabel or ROIName.
    category, type : Code or None
        SegmentedPropertyCategory/TypeCodeSequence (SEG).
    algorithm_type : str
        SegmentAlgorithmType (SEG) or ROIGenerationAlgorithm (RTSTRUCT).
    algorithm_name : str
    rgb : tuple of 3 int or None
        Display colour, sRGB 0..255 (SEG: from RecommendedDisplayCIELabValue;
        RTSTRUCT: ROIDisplayColor).
    interpreted_type : str
        RTROIInterpretedType (RTSTRUCT: ORGAN, GTV, ...).
    contours : tuple of (str, int)
        RTSTRUCT: (ContourGeometricType, count) pairs.
    """

    number: int
    label: str
    category: Code | None = None
    type: Code | None = None
    algorithm_type: str = ""
    algorithm_name: str = ""
    rgb: tuple[int, int, int] | None = None
    interpreted_type: str = ""
    tracking_id: str = ""
    tracking_uid: str = ""
    contours: tuple[tuple[str, int], ...] = ()

    def to_json(self, kind: str) -> dict[str, Any]:
        """The contract's ``Segments`` entry (without LabelValue/Volume)."""
        out: dict[str, Any] = {("ROINumber" if kind == "RTSTRUCT" else "SegmentNumber"):
                               self.number, "Label": self.label}
        if self.category is not None:
            out["SegmentedPropertyCategory"] = self.category.to_json()
        if self.type is not None:
            out["SegmentedPropertyType"] = self.type.to_json()
        if self.algorithm_type:
            out["AlgorithmType"] = self.algorithm_type
        if self.algorithm_name:
            out["AlgorithmName"] = self.algorithm_name
        if self.interpreted_type:
            out["RTROIInterpretedType"] = self.interpreted_type
        if self.tracking_id:
            out["TrackingID"] = self.tracking_id
        if self.tracking_uid:
            out["TrackingUID"] = self.tracking_uid
        out["RGB"] = list(self.rgb) if self.rgb is not None else None
        return out


@dataclass(frozen=True, slots=True)
class DerivedObject:
    """What indexing learned about one SEG or RTSTRUCT instance (no pixels, no contours).

    Attributes
    ----------
    kind : {"SEG", "RTSTRUCT"}
    segmentation_type : str
        SEG: "BINARY", "FRACTIONAL" or "LABELMAP"; "" for RTSTRUCT.
    max_fractional_value : int or None
        SEG FRACTIONAL: the stored value meaning 1.0.
    frame_segments : tuple of int
        SEG: ReferencedSegmentNumber of frame n at index n - 1 (0 for LABELMAP frames).
    referenced_series : tuple of str
        SeriesInstanceUIDs the object references.
    referenced_instances : tuple of str
        SOPInstanceUIDs of the referenced images (source images of SEG frames,
        contour images of RTSTRUCT contours).
    has_patient_geometry : bool
        SEG frames carry PlanePositionSequence/PlaneOrientationSequence (not a
        slide or projection image segmentation).
    """

    kind: str
    path: str
    rel: str
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    series_number: int | None
    series_description: str
    frame_of_reference_uid: str
    referenced_series: tuple[str, ...]
    referenced_instances: tuple[str, ...]
    segments: tuple[SegmentInfo, ...]
    segmentation_type: str = ""
    fractional_type: str = ""
    max_fractional_value: int | None = None
    frame_segments: tuple[int, ...] = ()
    number_of_frames: int = 0
    has_patient_geometry: bool = True
    names: tuple[tuple[str, str], ...] = ()

    def source(self) -> dict[str, Any]:
        """The contract's ``SourceObject``."""
        return {"SOPInstanceUID": self.sop_instance_uid, "File": self.rel,
                "Modality": self.kind}

    def instance_source(self) -> dict[str, Any]:
        """An RTSTRUCT's ``SourceInstances`` entry (the whole instance, Frame 1)."""
        return {"SOPInstanceUID": self.sop_instance_uid, "Frame": 1, "File": self.rel}

    def skip(self, reason: str) -> SkippedFrame:
        """The ``skipped`` entry for the whole instance (Frame None: every frame)."""
        return SkippedFrame(self.sop_instance_uid, None, self.path, self.rel, reason,
                            max(1, self.number_of_frames))


#: CIELab D65 white point (X, Y, Z) used for DICOM display colours (as highdicom, pixelmed).
CIELAB_WHITE = (95.047, 100.0, 108.883)


def cielab_to_rgb(value: Iterable[Any]) -> tuple[int, int, int] | None:
    """sRGB (0..255) of a DICOM CIELab triplet (PS3.3 C.10.7.1.1), or None when malformed.

    L* is scaled 0..100 -> 0..0xFFFF, a* and b* -128..127 -> 0..0xFFFF; the
    conversion goes through CIE XYZ (D65 white, :data:`CIELAB_WHITE`) to sRGB
    and is clipped to 0..255 (the formulas of pixelmed and highdicom).
    """
    try:
        lv, av, bv = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    lab = (lv / 0xFFFF * 100.0, av / 0xFFFF * 255.0 - 128.0, bv / 0xFFFF * 255.0 - 128.0)
    fy = (lab[0] + 16.0) / 116.0
    f = (lab[1] / 500.0 + fy, fy, fy - lab[2] / 200.0)
    xyz = [w / 100.0 * (c ** 3 if c ** 3 > 0.008856 else (c - 16.0 / 116.0) / 7.787)
           for w, c in zip(CIELAB_WHITE, f, strict=True)]
    linear = (3.2406 * xyz[0] - 1.5372 * xyz[1] - 0.4986 * xyz[2],
              -0.9689 * xyz[0] + 1.8758 * xyz[1] + 0.0415 * xyz[2],
              0.0557 * xyz[0] - 0.2040 * xyz[1] + 1.0570 * xyz[2])
    out = []
    for c in linear:
        s = 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c
        out.append(min(255, max(0, round(s * 255.0))))
    return (out[0], out[1], out[2])

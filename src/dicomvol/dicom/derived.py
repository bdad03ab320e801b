"""Derived objects from headers: SEG segments and references, RTSTRUCT ROIs and references.

Read at indexing time from the header (no pixels, no contour points), so that
``scan`` can pair each object with the image it references and ``inspect``
can say what ``convert`` will do. The SEG's frames are indexed separately as
frame records (:func:`dicomvol.dicom.frames.frame_records`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomvol.dicom.frames import name_text
from dicomvol.dicom.values import first_item, functional_group, to_int, to_str
from dicomvol.inputs.discover import Candidate
from dicomvol.model.derived import (
    RTSTRUCT_SOP_CLASS,
    SEG_SOP_CLASSES,
    Code,
    DerivedObject,
    SegmentInfo,
    cielab_to_rgb,
)

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported where a file needs it
    from pydicom.dataset import Dataset


def is_seg(sop_class: str) -> bool:
    """True for the Segmentation and Label Map Segmentation SOP classes."""
    return sop_class in SEG_SOP_CLASSES


def is_rtstruct(sop_class: str) -> bool:
    """True for RT Structure Set Storage."""
    return sop_class == RTSTRUCT_SOP_CLASS


def _code(item: Any) -> Code | None:
    if item is None:
        return None
    return Code(to_str(item.get("CodeValue")) or to_str(item.get("LongCodeValue")),
                to_str(item.get("CodingSchemeDesignator")), to_str(item.get("CodeMeaning")))


def _common(ds: Dataset, cand: Candidate, kind: str,
            names: tuple[str, ...]) -> dict[str, Any]:
    return dict(
        kind=kind, path=cand.path, rel=cand.rel,
        sop_instance_uid=to_str(ds.get("SOPInstanceUID")),
        sop_class_uid=to_str(ds.get("SOPClassUID")),
        series_instance_uid=to_str(ds.get("SeriesInstanceUID")) or "(no SeriesInstanceUID)",
        study_instance_uid=to_str(ds.get("StudyInstanceUID")),
        series_number=to_int(ds.get("SeriesNumber")),
        series_description=to_str(ds.get("SeriesDescription")),
        names=tuple((name, name_text(ds.get(name))) for name in names),
    )


def seg_object(ds: Dataset, cand: Candidate, names: tuple[str, ...] = (),
               per_frame_items: Sequence[Any] | None = None) -> DerivedObject:
    """The :class:`DerivedObject` of a SEG header (segments, frame segments, references).

    ``per_frame_items`` are the PerFrameFunctionalGroupsSequence items when the
    caller read them apart from ``ds`` (:mod:`dicomvol.dicom.fgroups`).
    """
    segments = []
    for item in ds.get("SegmentSequence") or ():
        lab = item.get("RecommendedDisplayCIELabValue")
        algorithm = first_item(item, "SegmentationAlgorithmIdentificationSequence")
        segments.append(SegmentInfo(
            number=to_int(item.get("SegmentNumber")) or 0,
            label=to_str(item.get("SegmentLabel")),
            category=_code(first_item(item, "SegmentedPropertyCategoryCodeSequence")),
            type=_code(first_item(item, "SegmentedPropertyTypeCodeSequence")),
            algorithm_type=to_str(item.get("SegmentAlgorithmType")),
            algorithm_name=to_str(item.get("SegmentAlgorithmName")) or (
                to_str(algorithm.get("AlgorithmName")) if algorithm is not None else ""),
            rgb=cielab_to_rgb(lab) if lab is not None else None,
            tracking_id=to_str(item.get("TrackingID")),
            tracking_uid=to_str(item.get("TrackingUID")),
        ))
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = (ds.get("PerFrameFunctionalGroupsSequence") if per_frame_items is None
                 else per_frame_items) or ()
    n_frames = to_int(ds.get("NumberOfFrames")) or 1
    frame_segments: list[int] = []
    instances: dict[str, None] = {}
    positioned = True
    for index in range(n_frames):
        fg = per_frame[index] if index < len(per_frame) else None
        ident = functional_group(fg, shared, "SegmentIdentificationSequence")
        frame_segments.append(to_int(ident.get("ReferencedSegmentNumber")) or 0
                              if ident is not None else 0)
        if functional_group(fg, shared, "PlanePositionSequence") is None:
            positioned = False
        derivation = first_item(fg, "DerivationImageSequence")
        for src in (derivation.get("SourceImageSequence") or ()) if derivation else ():
            uid = to_str(src.get("ReferencedSOPInstanceUID"))
            if uid:
                instances[uid] = None
    series: dict[str, None] = {}
    for item in ds.get("ReferencedSeriesSequence") or ():
        uid = to_str(item.get("SeriesInstanceUID"))
        if uid:
            series[uid] = None
        for inst in item.get("ReferencedInstanceSequence") or ():
            uid = to_str(inst.get("ReferencedSOPInstanceUID"))
            if uid:
                instances[uid] = None
    orientation = functional_group(per_frame[0] if per_frame else None, shared,
                                   "PlaneOrientationSequence")
    return DerivedObject(
        **_common(ds, cand, "SEG", names),
        frame_of_reference_uid=to_str(ds.get("FrameOfReferenceUID")),
        referenced_series=tuple(series), referenced_instances=tuple(instances),
        segments=tuple(segments),
        segmentation_type=to_str(ds.get("SegmentationType")).upper(),
        fractional_type=to_str(ds.get("SegmentationFractionalType")).upper(),
        max_fractional_value=to_int(ds.get("MaximumFractionalValue")),
        frame_segments=tuple(frame_segments), number_of_frames=n_frames,
        has_patient_geometry=positioned and orientation is not None,
    )


def rtstruct_object(ds: Dataset, cand: Candidate,
                    names: tuple[str, ...] = ()) -> DerivedObject:
    """The :class:`DerivedObject` of an RTSTRUCT header (ROIs, contour counts, references).

    Contour points are not read here (the label-map job reads them).
    """
    series: dict[str, None] = {}
    instances: dict[str, None] = {}
    frames_of_reference: dict[str, None] = {}
    for ref in ds.get("ReferencedFrameOfReferenceSequence") or ():
        uid = to_str(ref.get("FrameOfReferenceUID"))
        if uid:
            frames_of_reference[uid] = None
        for study in ref.get("RTReferencedStudySequence") or ():
            for s in study.get("RTReferencedSeriesSequence") or ():
                if to_str(s.get("SeriesInstanceUID")):
                    series[to_str(s.get("SeriesInstanceUID"))] = None
                for img in s.get("ContourImageSequence") or ():
                    if to_str(img.get("ReferencedSOPInstanceUID")):
                        instances[to_str(img.get("ReferencedSOPInstanceUID"))] = None
    interpreted = {to_int(o.get("ReferencedROINumber")): to_str(o.get("RTROIInterpretedType"))
                   for o in ds.get("RTROIObservationsSequence") or ()}
    colours: dict[int | None, tuple[int, int, int] | None] = {}
    counts: dict[int | None, Counter[str]] = {}
    for rc in ds.get("ROIContourSequence") or ():
        number = to_int(rc.get("ReferencedROINumber"))
        colour = rc.get("ROIDisplayColor")
        try:
            colours[number] = (int(colour[0]), int(colour[1]), int(colour[2])) if colour else None
        except (TypeError, ValueError, IndexError):
            colours[number] = None
        counts[number] = Counter(to_str(c.get("ContourGeometricType")).upper()
                                 for c in rc.get("ContourSequence") or ())
        for c in rc.get("ContourSequence") or ():
            for img in c.get("ContourImageSequence") or ():
                if to_str(img.get("ReferencedSOPInstanceUID")):
                    instances[to_str(img.get("ReferencedSOPInstanceUID"))] = None
    rois = []
    for roi in ds.get("StructureSetROISequence") or ():
        number = to_int(roi.get("ROINumber"))
        for_uid = to_str(roi.get("ReferencedFrameOfReferenceUID"))
        if for_uid:
            frames_of_reference.setdefault(for_uid, None)
        rois.append(SegmentInfo(
            number=number or 0, label=to_str(roi.get("ROIName")),
            algorithm_type=to_str(roi.get("ROIGenerationAlgorithm")),
            rgb=colours.get(number), interpreted_type=interpreted.get(number, ""),
            contours=tuple(sorted(counts.get(number, Counter()).items()))))
    return DerivedObject(
        **_common(ds, cand, "RTSTRUCT", names),
        frame_of_reference_uid=next(iter(frames_of_reference), ""),
        referenced_series=tuple(series), referenced_instances=tuple(instances),
        segments=tuple(rois), number_of_frames=1,
    )

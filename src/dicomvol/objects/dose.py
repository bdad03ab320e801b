"""RT dose grids and parametric maps: the units and value mapping their sidecars carry.

Both are image volumes (planned, assembled and written like any series): an
RT Dose's frames are placed along its GridFrameOffsetVector and scaled by
DoseGridScaling (:func:`dicomvol.dicom.frames.dose_positions`); a parametric
map's float pixel data (FloatPixelData, DoubleFloatPixelData) or integer
pixels through its RealWorldValueMapping. What they measure, and in which
units, is read here from the header for the sidecar.
"""

from __future__ import annotations

from typing import Any

from dicomvol.dicom.frames import RTDOSE_SOP_CLASS
from dicomvol.dicom.values import first_item, functional_group, to_float, to_str

PARAMETRIC_MAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"
#: DoseUnits (3004,0002) -> the unit written in the sidecar.
DOSE_UNITS = {"GY": "Gy", "RELATIVE": "relative"}


def object_metadata(sop_class: str, header: Any) -> dict[str, Any]:
    """Sidecar keys of an RT Dose or a parametric map ({} for other objects)."""
    if sop_class == RTDOSE_SOP_CLASS:
        return dose_metadata(header)
    if sop_class == PARAMETRIC_MAP_SOP_CLASS:
        return parametric_map_metadata(header)
    return {}


def dose_metadata(ds: Any) -> dict[str, Any]:
    """``Units`` (Gy) and the dose attributes of an RT Dose header."""
    units = to_str(ds.get("DoseUnits")).upper()
    out: dict[str, Any] = {
        "Units": DOSE_UNITS.get(units, units or None),
        "DoseUnits": units or None,
        "DoseType": to_str(ds.get("DoseType")) or None,
        "DoseSummationType": to_str(ds.get("DoseSummationType")) or None,
        "DoseGridScaling": to_float(ds.get("DoseGridScaling")),
        "ValueMapping": "voxel value = stored value x DoseGridScaling (NIfTI scl_slope)",
    }
    return out


def parametric_map_metadata(ds: Any) -> dict[str, Any]:
    """``Units`` (UCUM code) and the real world value mapping of a parametric map header."""
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or ()
    mapping = functional_group(per_frame[0] if per_frame else None, shared,
                               "RealWorldValueMappingSequence")
    out: dict[str, Any] = {"Units": None}
    if mapping is None:
        return out
    units = first_item(mapping, "MeasurementUnitsCodeSequence")
    quantity = None
    for item in mapping.get("QuantityDefinitionSequence") or ():
        concept = first_item(item, "ConceptCodeSequence")
        if concept is not None:
            quantity = to_str(concept.get("CodeMeaning")) or quantity
    out.update({
        "Units": to_str(units.get("CodeValue")) if units is not None else None,
        "RealWorldValueMapping": {
            "LUTLabel": to_str(mapping.get("LUTLabel")) or None,
            "LUTExplanation": to_str(mapping.get("LUTExplanation")) or None,
            "Slope": to_float(mapping.get("RealWorldValueSlope")),
            "Intercept": to_float(mapping.get("RealWorldValueIntercept")),
            "MeasurementUnits": None if units is None else {
                "CodeValue": to_str(units.get("CodeValue")),
                "CodingSchemeDesignator": to_str(units.get("CodingSchemeDesignator")),
                "CodeMeaning": to_str(units.get("CodeMeaning"))},
            "Quantity": quantity,
        },
    })
    return out

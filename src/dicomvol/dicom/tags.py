"""The DICOM dictionary entries the lean readers use, as a static table (no pydicom).

``import pydicom`` costs a process about 28 MiB of resident memory and 0.1-0.15 s
(measured with ``OPENBLAS_NUM_THREADS=1 /usr/bin/time -f %M``: ``python -c "import numpy"``
25.1 MiB, ``"import numpy, pydicom"`` 52.9 MiB). The lean single-frame reader needs the tag
and VR of a few dozen keywords only, so they are listed here;
``tests/dicom/test_tags.py`` checks every entry against pydicom's data dictionary. A keyword
that is not listed (a user's output-name template may name any keyword) is looked up in
pydicom's dictionary, imported then.
"""

from __future__ import annotations

from typing import Final

#: keyword -> (tag, VR) as PS3.6 (pydicom's ``datadict``) gives them; every
#: :data:`dicomvol.dicom.lean.KEYWORDS` entry is here.
TAGS: Final[dict[str, tuple[int, str]]] = {
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "Modality": (0x00080060, "CS"),
    "SeriesNumber": (0x00200011, "IS"),
    "SeriesDescription": (0x0008103E, "LO"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImageType": (0x00080008, "CS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "PixelSpacing": (0x00280030, "DS"),
    "SliceThickness": (0x00180050, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "EchoTime": (0x00180081, "DS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "TriggerTime": (0x00181060, "DS"),
    "AcquisitionTime": (0x00080032, "TM"),
    "GantryDetectorTilt": (0x00181120, "DS"),
    "DiffusionBValue": (0x00189087, "FD"),
    "DiffusionGradientOrientation": (0x00189089, "FD"),
    "Manufacturer": (0x00080070, "LO"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "AcquisitionDate": (0x00080022, "DA"),
    "AcquisitionDateTime": (0x0008002A, "DT"),
    "ContentTime": (0x00080033, "TM"),
    "InPlanePhaseEncodingDirection": (0x00181312, "CS"),
    "PatientPosition": (0x00185100, "CS"),
    "ImageComments": (0x00204000, "LT"),
    "PatientID": (0x00100020, "LO"),
    "StudyDate": (0x00080020, "DA"),
    "StudyID": (0x00200010, "SH"),
    "ProtocolName": (0x00181030, "LO"),
    "SeriesTime": (0x00080031, "TM"),
    "BodyPartExamined": (0x00180015, "CS"),
}
_VR_BY_TAG: Final[dict[int, str]] = dict(TAGS.values())


def tag_and_vr(keyword: str) -> tuple[int, str] | None:
    """The tag and VR of a dictionary keyword, None if pydicom's dictionary does not know it.

    Listed keywords are answered without importing pydicom.
    """
    found = TAGS.get(keyword)
    if found is not None:
        return found
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    return int(tag), str(dictionary_VR(tag))


def vr_of(tag: int) -> str:
    """The implicit VR of a listed tag, else pydicom's dictionary VR ("UN" if unknown)."""
    listed = _VR_BY_TAG.get(tag)
    if listed is not None:
        return listed
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"

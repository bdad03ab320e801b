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
#: keyword -> (tag, VR) of every dictionary keyword the package names (the sidecar readers
#: of ``metadata/``, the enhanced frame readers, the objects; found by
#: ``tests/dicom/test_tags.py`` in the sources) besides :data:`TAGS`, for the lean readers
#: (:mod:`dicomvol.dicom.leands`, :mod:`dicomvol.dicom.leanmf`) without pydicom.
KEYWORD_TAGS: Final[dict[str, tuple[int, str]]] = {
    **TAGS,
    "SharedFunctionalGroupsSequence": (0x52009229, "SQ"),
    "PerFrameFunctionalGroupsSequence": (0x52009230, "SQ"),
    "MagneticFieldStrength": (0x00180087, "DS"),
    "ImagingFrequency": (0x00180084, "DS"),
    "TransmitterFrequency": (0x00189098, "FD"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "InstitutionName": (0x00080080, "LO"),
    "InstitutionalDepartmentName": (0x00081040, "LO"),
    "InstitutionAddress": (0x00080081, "ST"),
    "DeviceSerialNumber": (0x00181000, "LO"),
    "StationName": (0x00081010, "SH"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "PatientName": (0x00100010, "PN"),
    "AccessionNumber": (0x00080050, "SH"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "PatientSize": (0x00101020, "DS"),
    "PatientWeight": (0x00101030, "DS"),
    "PatientAge": (0x00101010, "AS"),
    "PerformedProcedureStepDescription": (0x00400254, "LO"),
    "SoftwareVersions": (0x00181020, "LO"),
    "MRAcquisitionType": (0x00180023, "CS"),
    "StudyDescription": (0x00081030, "LO"),
    "ScanningSequence": (0x00180020, "CS"),
    "SequenceVariant": (0x00180021, "CS"),
    "ScanOptions": (0x00180022, "CS"),
    "SequenceName": (0x00180024, "SH"),
    "PulseSequenceName": (0x00189005, "SH"),
    "DeidentificationMethod": (0x00120063, "LO"),
    "FrameAcquisitionDateTime": (0x00189074, "DT"),
    "RadiopharmaceuticalInformationSequence": (0x00540016, "SQ"),
    "Radiopharmaceutical": (0x00180031, "LO"),
    "RadionuclideCodeSequence": (0x00540300, "SQ"),
    "CodeMeaning": (0x00080104, "LO"),
    "RadionuclidePositronFraction": (0x00181076, "DS"),
    "RadionuclideTotalDose": (0x00181074, "DS"),
    "RadionuclideHalfLife": (0x00181075, "DS"),
    "DoseCalibrationFactor": (0x00541322, "DS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "Units": (0x00541001, "CS"),
    "DecayCorrection": (0x00541102, "CS"),
    "AttenuationCorrectionMethod": (0x00541101, "LO"),
    "RandomsCorrectionMethod": (0x00541100, "CS"),
    "ScatterCorrectionMethod": (0x00541105, "LO"),
    "ReconstructionMethod": (0x00541103, "LO"),
    "ExposureTime": (0x00181150, "IS"),
    "ExposureTimeInms": (0x00189328, "FD"),
    "XRayTubeCurrent": (0x00181151, "IS"),
    "XRayTubeCurrentInmA": (0x00189330, "FD"),
    "Exposure": (0x00181152, "IS"),
    "ExposureInmAs": (0x00189332, "FD"),
    "KVP": (0x00180060, "DS"),
    "SAR": (0x00181316, "DS"),
    "NumberOfAverages": (0x00180083, "DS"),
    "EffectiveEchoTime": (0x00189082, "FD"),
    "RepetitionTime": (0x00180080, "DS"),
    "InversionTime": (0x00180082, "DS"),
    "InversionTimes": (0x00189079, "FD"),
    "FlipAngle": (0x00181314, "DS"),
    "ReceiveCoilName": (0x00181250, "SH"),
    "PercentPhaseFieldOfView": (0x00180094, "DS"),
    "PercentSampling": (0x00180093, "DS"),
    "EchoTrainLength": (0x00180091, "IS"),
    "PartialFourierDirection": (0x00189036, "CS"),
    "NumberOfPhaseEncodingSteps": (0x00180089, "IS"),
    "MRAcquisitionPhaseEncodingStepsInPlane": (0x00189231, "US"),
    "MRAcquisitionFrequencyEncodingSteps": (0x00189058, "US"),
    "MRAcquisitionPhaseEncodingStepsOutOfPlane": (0x00189232, "US"),
    "AcquisitionMatrix": (0x00181310, "US"),
    "ParallelReductionFactorInPlane": (0x00189069, "FD"),
    "ParallelAcquisitionTechnique": (0x00189078, "CS"),
    "ParallelReductionFactorOutOfPlane": (0x00189155, "FD"),
    "PixelBandwidth": (0x00180095, "DS"),
    "ActualFrameDuration": (0x00181242, "IS"),
    "CorrectedImage": (0x00280051, "CS"),
    "DecayFactor": (0x00541321, "DS"),
    "FrameReferenceTime": (0x00541300, "DS"),
    "RadiopharmaceuticalStartDateTime": (0x00181078, "DT"),
    "RadiopharmaceuticalStartTime": (0x00181072, "TM"),
    "UnassignedSharedConvertedAttributesSequence": (0x00209170, "SQ"),
    "MRTimingAndRelatedParametersSequence": (0x00189112, "SQ"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "SeriesDate": (0x00080021, "DA"),
    "ContentDate": (0x00080023, "DA"),
    "DoseUnits": (0x30040002, "CS"),
    "DoseType": (0x30040004, "CS"),
    "DoseSummationType": (0x3004000A, "CS"),
    "DoseGridScaling": (0x3004000E, "DS"),
    "RealWorldValueMappingSequence": (0x00409096, "SQ"),
    "AlgorithmName": (0x00660036, "LO"),
    "AlgorithmType": (0x00189527, "CS"),
    "CTImageFrameTypeSequence": (0x00189329, "SQ"),
    "CenterOfRotation": (0x0066001C, "FL"),
    "CodeValue": (0x00080100, "SH"),
    "CodingSchemeDesignator": (0x00080102, "SH"),
    "ColumnPositionInTotalImagePixelMatrix": (0x0048021E, "SL"),
    "ComplexImageComponent": (0x00089208, "CS"),
    "ConcatenationFrameOffsetNumber": (0x00209228, "UL"),
    "ConcatenationUID": (0x00209161, "UI"),
    "ConceptCodeSequence": (0x0040A168, "SQ"),
    "ContourData": (0x30060050, "DS"),
    "ContourGeometricType": (0x30060042, "CS"),
    "ContourImageSequence": (0x30060016, "SQ"),
    "ContourSequence": (0x30060040, "SQ"),
    "Date": (0x0040A121, "DA"),
    "DerivationImageSequence": (0x00089124, "SQ"),
    "DiffusionBMatrixSequence": (0x00189601, "SQ"),
    "DiffusionBValueXX": (0x00189602, "FD"),
    "DiffusionBValueXY": (0x00189603, "FD"),
    "DiffusionBValueXZ": (0x00189604, "FD"),
    "DiffusionBValueYY": (0x00189605, "FD"),
    "DiffusionBValueYZ": (0x00189606, "FD"),
    "DiffusionBValueZZ": (0x00189607, "FD"),
    "DiffusionDirectionality": (0x00189075, "CS"),
    "DiffusionGradientDirectionSequence": (0x00189076, "SQ"),
    "DimensionIndexPointer": (0x00209165, "AT"),
    "DimensionIndexSequence": (0x00209222, "SQ"),
    "DimensionIndexValues": (0x00209157, "UL"),
    "DimensionOrganizationType": (0x00209311, "CS"),
    "DirectoryRecordSequence": (0x00041220, "SQ"),
    "DoubleFloatPixelData": (0x7FE00009, "OD"),
    "ExtendedOffsetTable": (0x7FE00001, "OV"),
    "ExtendedOffsetTableLengths": (0x7FE00002, "OV"),
    "FloatPixelData": (0x7FE00008, "OF"),
    "FrameContentSequence": (0x00209111, "SQ"),
    "FrameType": (0x00089007, "CS"),
    "Grid": (0x00181166, "CS"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "ICCProfile": (0x00282000, "OB"),
    "InStackPositionNumber": (0x00209057, "UL"),
    "LUTExplanation": (0x00283003, "LO"),
    "LUTLabel": (0x00409210, "SH"),
    "LongCodeValue": (0x00080119, "UC"),
    "MRDiffusionSequence": (0x00189117, "SQ"),
    "MREchoSequence": (0x00189114, "SQ"),
    "MRFOVGeometrySequence": (0x00189125, "SQ"),
    "MRImageFrameTypeSequence": (0x00189226, "SQ"),
    "MaximumFractionalValue": (0x0062000E, "US"),
    "MeasurementUnitsCodeSequence": (0x004008EA, "SQ"),
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "MediaStorageSOPInstanceUID": (0x00020003, "UI"),
    "NumberOfOpticalPaths": (0x00480302, "UL"),
    "OpticalPathDescription": (0x00480107, "ST"),
    "OpticalPathIdentificationSequence": (0x00480207, "SQ"),
    "OpticalPathIdentifier": (0x00480106, "SH"),
    "OpticalPathSequence": (0x00480105, "SQ"),
    "PETFrameTypeSequence": (0x00189751, "SQ"),
    "PixelData": (0x7FE00010, "OB or OW"),
    "PixelMeasuresSequence": (0x00289110, "SQ"),
    "PixelValueTransformationSequence": (0x00289145, "SQ"),
    "PlanarConfiguration": (0x00280006, "US"),
    "PlaneOrientationSequence": (0x00209116, "SQ"),
    "PlanePositionSequence": (0x00209113, "SQ"),
    "PlanePositionSlideSequence": (0x0048021A, "SQ"),
    "PyramidUID": (0x00080019, "UI"),
    "Quantity": (0x00400294, "DS"),
    "QuantityDefinitionSequence": (0x00409220, "SQ"),
    "ROIContourSequence": (0x30060039, "SQ"),
    "ROIDisplayColor": (0x3006002A, "IS"),
    "ROIGenerationAlgorithm": (0x30060036, "CS"),
    "ROIName": (0x30060026, "LO"),
    "ROINumber": (0x30060022, "IS"),
    "RTROIInterpretedType": (0x300600A4, "CS"),
    "RTROIObservationsSequence": (0x30060080, "SQ"),
    "RTReferencedSeriesSequence": (0x30060014, "SQ"),
    "RTReferencedStudySequence": (0x30060012, "SQ"),
    "RealWorldValueIntercept": (0x00409224, "FD"),
    "RealWorldValueSlope": (0x00409225, "FD"),
    "RecommendedDisplayCIELabValue": (0x0062000D, "US"),
    "ReferencedFrameOfReferenceSequence": (0x30060010, "SQ"),
    "ReferencedFrameOfReferenceUID": (0x30060024, "UI"),
    "ReferencedInstanceSequence": (0x0008114A, "SQ"),
    "ReferencedROINumber": (0x30060084, "IS"),
    "ReferencedSOPInstanceUID": (0x00081155, "UI"),
    "ReferencedSegmentNumber": (0x0062000B, "US"),
    "ReferencedSeriesSequence": (0x00081115, "SQ"),
    "RescaleType": (0x00281054, "LO"),
    "RowPositionInTotalImagePixelMatrix": (0x0048021F, "SL"),
    "SegmentAlgorithmName": (0x00620009, "LO"),
    "SegmentAlgorithmType": (0x00620008, "CS"),
    "SegmentIdentificationSequence": (0x0062000A, "SQ"),
    "SegmentLabel": (0x00620005, "LO"),
    "SegmentNumber": (0x00620004, "US"),
    "SegmentSequence": (0x00620002, "SQ"),
    "SegmentationAlgorithmIdentificationSequence": (0x00620007, "SQ"),
    "SegmentationFractionalType": (0x00620010, "CS"),
    "SegmentationType": (0x00620001, "CS"),
    "SegmentedPropertyCategoryCodeSequence": (0x00620003, "SQ"),
    "SegmentedPropertyTypeCodeSequence": (0x0062000F, "SQ"),
    "SliceLocation": (0x00201041, "DS"),
    "SourceImageSequence": (0x00082112, "SQ"),
    "StackID": (0x00209056, "SH"),
    "Status": (0x00000900, "US"),
    "StructureSetROISequence": (0x30060020, "SQ"),
    "TemporalPositionIndex": (0x00209128, "UL"),
    "TotalPixelMatrixColumns": (0x00480006, "UL"),
    "TotalPixelMatrixFocalPlanes": (0x00480303, "UL"),
    "TotalPixelMatrixRows": (0x00480007, "UL"),
    "TrackingID": (0x00620020, "UT"),
    "TrackingUID": (0x00620021, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "UnassignedPerFrameConvertedAttributesSequence": (0x00209171, "SQ"),
    "ZOffsetInSlideCoordinateSystem": (0x0040074A, "DS"),
    # NM reconstructions (dicom/nm.py)
    "DetectorInformationSequence": (0x00540022, "SQ"),
    "DetectorVector": (0x00540020, "US"),
    "EnergyWindowVector": (0x00540010, "US"),
    "PhaseVector": (0x00540030, "US"),
    "RRIntervalVector": (0x00540060, "US"),
    "RotationVector": (0x00540050, "US"),
    "SliceVector": (0x00540080, "US"),
    "TimeSlotVector": (0x00540070, "US"),
}
#: tag -> VR of every listed keyword (:data:`KEYWORD_TAGS`).
VR_BY_TAG: Final[dict[int, str]] = dict(KEYWORD_TAGS.values())
#: PixelData, FloatPixelData and DoubleFloatPixelData: the element a header ends at.
PIXEL_DATA_TAGS: Final[frozenset[int]] = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def tag_and_vr(keyword: str) -> tuple[int, str] | None:
    """The tag and VR of a dictionary keyword, None if pydicom's dictionary does not know it.

    Listed keywords (:data:`KEYWORD_TAGS`) are answered without importing pydicom.
    """
    found = KEYWORD_TAGS.get(keyword)
    if found is not None:
        return found
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    return int(tag), str(dictionary_VR(tag))


#: Keyword -> tag (-1: not a dictionary keyword), filled as keywords are asked for.
_KEYWORD_TAG: dict[str, int] = {}


def keyword_tag(keyword: str) -> int | None:
    """The tag of a dictionary keyword (:func:`tag_and_vr`, remembered), None if unknown."""
    tag = _KEYWORD_TAG.get(keyword)
    if tag is None:
        found = tag_and_vr(keyword)
        tag = _KEYWORD_TAG[keyword] = -1 if found is None else found[0]
    return None if tag < 0 else tag


def vr_of(tag: int) -> str:
    """The implicit VR of a listed tag, else pydicom's dictionary VR ("UN" if unknown)."""
    listed = VR_BY_TAG.get(tag)
    if listed is not None:
        return listed
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"

"""Acquisition metadata for BIDS-style JSON sidecars, read from one DICOM header.

:func:`bids_metadata` maps the attributes of one header dataset (read with
``stop_before_pixels=True``) to the key names, units and value formats that
dcm2niix writes in its BIDS JSON sidecars, so that a sidecar written by dicomvol
reads like one written by dcm2niix.  The mapping was checked against the
sidecars dcm2niix v1.0.20260724 writes for the shared test corpus (CT, PET,
classic and enhanced MR) and against the key list compiled into that binary:

* times are converted from milliseconds to seconds (``EchoTime``,
  ``RepetitionTime``, ``InversionTime``, CT ``ExposureTime``);
* ``RadionuclideTotalDose`` (Bq) becomes ``InjectedRadioactivity`` in MBq, PET
  ``Units`` ``BQML`` becomes ``Bq/mL``, ``TracerRadionuclide`` is the radionuclide
  code meaning without ``^`` characters;
* ``AcquisitionTime`` is ``"HH:MM:SS.ffffff"``, ``SeriesTime`` ``"HH:MM:SS"``,
  dates are ISO ``"YYYY-MM-DD"``, ``PatientAge`` is whole years (only ``nnnY``
  ages, as dcm2niix), ``Manufacturer`` is the vendor's short name (``Siemens``,
  ``GE``, ``Philips``...);
* multi-valued text attributes (``ScanningSequence``, ``SoftwareVersions``...)
  are joined with a backslash as in the DICOM value; ``ImageType`` is a list;
* ``BodyPartExamined`` is written as ``BodyPart``, ``ManufacturerModelName`` as
  ``ManufacturersModelName``, ``PerformedProcedureStepDescription`` as
  ``ProcedureStepDescription``, ``PercentPhaseFieldOfView`` as
  ``PercentPhaseFOV``, CT ``Exposure`` as ``XRayExposure``;
* numbers that dcm2niix writes only when positive (flip angle, field strength,
  weights, doses...) are omitted when zero or negative.

For an enhanced multi-frame image a value is looked up at the top level, then in
the first item of each macro of ``SharedFunctionalGroupsSequence``, then in those
of the first item of ``PerFrameFunctionalGroupsSequence``, also under the
enhanced keyword where it differs (``EffectiveEchoTime``,
``TransmitterFrequency``, ``PulseSequenceName``,
``MRAcquisitionPhaseEncodingStepsInPlane``...).  Values that vary across the
frames or files of a series (``AcquisitionTime``, ``EchoTime`` of a multi-echo
series...) are those of the given header.

Deliberate differences from dcm2niix:

* a few identifiers dcm2niix does not write are added: ``FrameOfReferenceUID``,
  ``StudyDate``, and for CT ``KVP`` and ``GantryDetectorTilt``;
* an unknown manufacturer is kept verbatim (dcm2niix drops it);
* ``ImageType`` is the DICOM value; dcm2niix also splits values at ``_`` and may
  append ``MAGNITUDE``/``PHASE``/``REAL``/``IMAGINARY``/``FIELDMAPHZ``;
* nothing is taken from private tags (Siemens CSA, GE, Philips), and nothing
  the converter computes from the whole series or the pixel grid is written
  (``SliceTiming``, ``PhaseEncodingDirection``, ``EffectiveEchoSpacing``,
  ``TotalReadoutTime``, ``AcquisitionDuration``, PET ``FrameTimesStart``,
  ``FrameDuration`` and ``DecayCorrectionFactor``...), nor
  ``ConversionSoftware``/``ConversionSoftwareVersion``.

Every conversion is guarded: an absent, empty, malformed or unexpectedly
multi-valued attribute is left out, never raised.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Final

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["PATIENT_IDENTIFYING_KEYS", "bids_metadata"]

# Keys that an --anonymize option must drop.  The set follows what dcm2niix
# drops with ``-ba y`` (names, IDs, birth date, sex, age, weight, size, accession
# and study IDs, referring physician, the acquisition date-time and the study and
# series UIDs, which can be used to look the patient up in the source PACS) plus
# the attributes the DICOM PS3.15 Basic Application Confidentiality Profile
# removes that identify the site and device or can hold free text (institution,
# department and address, station name, device serial number, image comments),
# plus the dates this module adds (StudyDate, FrameOfReferenceUID).  Times of day
# (AcquisitionTime, SeriesTime) and the acquisition descriptors
# (SeriesDescription, ProtocolName...) are kept, as with dcm2niix ``-ba y``,
# because without them a sidecar loses most of its value.
PATIENT_IDENTIFYING_KEYS: Final[frozenset[str]] = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "PatientAge",
        "PatientWeight",
        "PatientSize",
        "AccessionNumber",
        "StudyID",
        "ReferringPhysicianName",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "InstitutionAddress",
        "StationName",
        "DeviceSerialNumber",
        "ImageComments",
        "StudyDate",
        "AcquisitionDateTime",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
    }
)

Getter = Callable[[Dataset], Any]
Converter = Callable[[Any], Any]

_RADIOPHARM = "RadiopharmaceuticalInformationSequence"
_MANUFACTURERS: Final[dict[str, str]] = {  # dcm2niix matches the first two letters
    "SI": "Siemens",
    "GE": "GE",
    "PH": "Philips",
    "TO": "Toshiba",
    "CA": "Canon",
    "HI": "Hitachi",
    "UI": "UIH",
    "BR": "Bruker",
    "ME": "Mediso",
    "MR": "MRSolutions",
    "HY": "Hyperfine",
    "LE": "Leica",
}
_PET_UNITS: Final[dict[str, str]] = {"BQML": "Bq/mL"}
_TIME_RE = re.compile(r"^(\d{2}):?(\d{2})?:?(\d{2})?(\.\d+)?$")


# --- value access -------------------------------------------------------------


def _raw(item: Dataset, keyword: str) -> Any:
    """Return the value of ``keyword`` in ``item`` (None if absent or unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return item.get(keyword)
    except Exception:
        return None


def _macro_items(ds: Dataset, sequence: str) -> Iterator[Dataset]:
    """Yield the first item of each standard macro of ``ds.<sequence>[0]``.

    Private macros (such as Philips' per-frame copies of classic attributes) are
    skipped: their content is vendor-specific and may differ from frame to frame.
    """
    groups = _raw(ds, sequence)
    try:
        group = groups[0]
        for elem in group:
            if elem.VR == "SQ" and not elem.tag.is_private and len(elem.value) > 0:
                yield elem.value[0]
    except Exception:
        return


def _candidates(ds: Dataset, keyword: str) -> Iterator[Any]:
    """Yield the raw values of ``keyword`` in lookup order.

    ``keyword`` may be a path ``"Sequence/Keyword"`` into the first item of a
    top-level sequence.  Otherwise the top level comes first, then the shared and
    the first per-frame functional groups of an enhanced image.
    """
    if "/" in keyword:
        seq, _, rest = keyword.partition("/")
        try:
            yield from _candidates(_raw(ds, seq)[0], rest)
        except Exception:
            return
        return
    yield _raw(ds, keyword)
    for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in _macro_items(ds, sequence):
            yield _raw(item, keyword)


def _lookup(ds: Dataset, keywords: tuple[str, ...], convert: Converter) -> Any:
    """Return the first successfully converted, non-None value of ``keywords``."""
    for keyword in keywords:
        for raw in _candidates(ds, keyword):
            if raw is None:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = convert(raw)
            except Exception:
                value = None
            if value is not None:
                return value
    return None


# --- converters (raw DICOM value -> JSON value or None; may raise) -------------


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple | MultiValue)


def _single(value: Any) -> Any:
    """Return the one value of ``value``; raise if it holds none or several."""
    if _is_multi(value):
        if len(value) != 1:
            raise ValueError("expected a single value")
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        value = value.strip(" \x00")
        if not value:
            raise ValueError("empty")
    return value


def _text(value: Any) -> str | None:
    if _is_multi(value):
        text = "\\".join(str(v).strip(" \x00") for v in value)
    elif isinstance(value, bytes):
        text = value.decode("latin-1")
    else:
        text = str(value)
    text = text.strip(" \x00")
    return text or None


def _text_list(value: Any) -> list[str] | None:
    items = list(value) if _is_multi(value) else [value]
    out = [_text(v) or "" for v in items]
    return out if any(out) else None


def _float(value: Any) -> float | None:
    number = float(_single(value))
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and number > 0 else None


def _ms_to_s(value: Any) -> float | None:
    number = _positive(value)
    return None if number is None else number / 1000.0


def _int(value: Any) -> int | None:
    number = float(_single(value))
    return int(number) if math.isfinite(number) and number == int(number) else None


def _positive_int(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _above_one(value: Any) -> float | None:
    number = _positive(value)  # dcm2niix omits the trivial value 1
    return number if number is not None and number > 1 else None


def _int_above_one(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and number > 1 else None


def _float_list(value: Any) -> list[float] | None:
    numbers = [float(v) for v in (value if _is_multi(value) else [value])]
    return numbers if numbers and all(math.isfinite(n) for n in numbers) else None


def _orientation(value: Any) -> list[float] | None:
    numbers = _float_list(value)
    return numbers if numbers is not None and len(numbers) == 6 else None


def _time_parts(value: Any) -> tuple[int, int, int, str] | None:
    """Split a TM value (``HHMMSS.ffffff`` or ``HH:MM:SS``) into its parts."""
    match = _TIME_RE.match(str(_single(value)))
    if match is None:
        return None
    hh, mm, ss = (int(part or 0) for part in match.group(1, 2, 3))
    if hh > 23 or mm > 59 or ss > 60:
        return None
    return hh, mm, ss, (match.group(4) or ".")[1:]


def _time(value: Any) -> str | None:
    parts = _time_parts(value)
    if parts is None:
        return None
    hh, mm, ss, frac = parts
    return f"{hh:02d}:{mm:02d}:{ss:02d}.{frac[:6].ljust(6, '0')}"


def _time_seconds(value: Any) -> str | None:
    parts = _time_parts(value)
    return None if parts is None else "{:02d}:{:02d}:{:02d}".format(*parts[:3])


def _date(value: Any) -> str | None:
    text = str(_single(value)).replace("-", "").replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    month, day = int(text[4:6]), int(text[6:8])
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if 1 <= month <= 12 and 1 <= day <= 31 else None


def _datetime_time(value: Any) -> str | None:
    """Time of day of a DT value ``YYYYMMDDHHMMSS.ffffff&ZZXX``."""
    text = re.split(r"[+-]", str(_single(value)))[0]
    return _time(text[8:]) if len(text) >= 12 else None


def _datetime(value: Any) -> str | None:
    text = re.split(r"[+-]", str(_single(value)))[0]
    if len(text) < 12:
        return None
    date, time = _date(text[:8]), _time(text[8:])
    return f"{date}T{time}" if date and time else None


def _age_years(value: Any) -> int | None:
    text = str(_single(value)).upper()
    return int(text[:-1]) if text.endswith("Y") and text[:-1].isdigit() else None


def _sex(value: Any) -> str | None:
    text = str(_single(value)).upper()
    return text if text in ("M", "F", "O") else None


def _manufacturer(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else _MANUFACTURERS.get(text[:2].upper(), text)


def _pet_units(value: Any) -> str | None:
    text = str(_single(value))
    return _PET_UNITS.get(text.upper(), text)


def _phase_direction(value: Any) -> str | None:
    text = str(_single(value)).upper()
    return {"COL": "COL", "COLUMN": "COL", "ROW": "ROW"}.get(text)


def _imaging_frequency(value: Any) -> float | None:
    number = _positive(value)  # MHz; some vendors store Hz, which dcm2niix drops
    return number if number is not None and number < 9e6 else None


def _radionuclide(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else text.replace("^", "") or None


def _mbq(value: Any) -> float | None:
    number = _positive(value)
    return None if number is None else number / 1e6


# --- getters that combine attributes --------------------------------------------


def _tag(convert: Converter, *keywords: str) -> Getter:
    return lambda ds: _lookup(ds, keywords, convert)


def _acquisition_time(ds: Dataset) -> Any:
    return _lookup(ds, ("AcquisitionTime",), _time) or _lookup(
        ds, ("AcquisitionDateTime", "FrameAcquisitionDateTime"), _datetime_time
    )


def _acquisition_datetime(ds: Dataset) -> Any:
    combined = _lookup(ds, ("AcquisitionDateTime",), _datetime)
    if combined is not None:
        return combined
    date = _lookup(ds, ("AcquisitionDate",), _date)
    time = _lookup(ds, ("AcquisitionTime",), _time)
    if date and time:
        return f"{date}T{time}"
    return _lookup(ds, ("FrameAcquisitionDateTime",), _datetime)


def _phase_encoding(ds: Dataset) -> str | None:
    return _lookup(ds, ("InPlanePhaseEncodingDirection",), _phase_direction)


def _acquisition_matrix_pe(ds: Dataset) -> Any:
    steps = _lookup(ds, ("MRAcquisitionPhaseEncodingStepsInPlane",), _positive_int)
    if steps is not None:
        return steps
    matrix = _lookup(ds, ("AcquisitionMatrix",), _float_list)
    if matrix is None or len(matrix) != 4:
        return None
    phase_rows, phase_cols = int(matrix[2]), int(matrix[3])
    direction = _phase_encoding(ds)
    if direction is None and (phase_rows > 0) != (phase_cols > 0):
        return max(phase_rows, phase_cols)  # only one of the two is set
    value = phase_cols if direction == "COL" else phase_rows if direction == "ROW" else 0
    return value if value > 0 else None


def _recon_matrix_pe(ds: Dataset) -> Any:
    image_type = _lookup(ds, ("ImageType",), _text_list) or []
    if "MOSAIC" in (t.upper() for t in image_type):
        return None  # a mosaic's Rows/Columns are those of the tiled slices
    direction = _phase_encoding(ds)
    if direction is None:
        matrix = _lookup(ds, ("AcquisitionMatrix",), _float_list)
        if matrix is not None and len(matrix) == 4 and (matrix[2] > 0) != (matrix[3] > 0):
            direction = "ROW" if matrix[2] > 0 else "COL"
    if direction is None:
        return None
    return _lookup(ds, ("Rows" if direction == "COL" else "Columns",), _positive_int)


# --- the mapping ----------------------------------------------------------------

# (sidecar key, getter) in the order dcm2niix writes them.
_FIELDS: Final[tuple[tuple[str, Getter], ...]] = (
    ("Modality", _tag(_text, "Modality")),
    ("MagneticFieldStrength", _tag(_positive, "MagneticFieldStrength")),
    ("ImagingFrequency", _tag(_imaging_frequency, "ImagingFrequency", "TransmitterFrequency")),
    ("Manufacturer", _tag(_manufacturer, "Manufacturer")),
    ("ManufacturersModelName", _tag(_text, "ManufacturerModelName")),
    ("InstitutionName", _tag(_text, "InstitutionName")),
    ("InstitutionalDepartmentName", _tag(_text, "InstitutionalDepartmentName")),
    ("InstitutionAddress", _tag(_text, "InstitutionAddress")),
    ("DeviceSerialNumber", _tag(_text, "DeviceSerialNumber")),
    ("StationName", _tag(_text, "StationName")),
    ("SeriesInstanceUID", _tag(_text, "SeriesInstanceUID")),
    ("StudyInstanceUID", _tag(_text, "StudyInstanceUID")),
    ("FrameOfReferenceUID", _tag(_text, "FrameOfReferenceUID")),
    ("ReferringPhysicianName", _tag(_text, "ReferringPhysicianName")),
    ("StudyID", _tag(_text, "StudyID")),
    ("StudyDate", _tag(_date, "StudyDate")),
    ("PatientName", _tag(_text, "PatientName")),
    ("PatientID", _tag(_text, "PatientID")),
    ("AccessionNumber", _tag(_text, "AccessionNumber")),
    ("PatientBirthDate", _tag(_date, "PatientBirthDate")),
    ("PatientSex", _tag(_sex, "PatientSex")),
    ("PatientSize", _tag(_positive, "PatientSize")),
    ("PatientWeight", _tag(_positive, "PatientWeight")),
    ("PatientAge", _tag(_age_years, "PatientAge")),
    ("BodyPart", _tag(_text, "BodyPartExamined")),
    ("PatientPosition", _tag(_text, "PatientPosition")),
    ("ProcedureStepDescription", _tag(_text, "PerformedProcedureStepDescription")),
    ("SoftwareVersions", _tag(_text, "SoftwareVersions")),
    ("MRAcquisitionType", _tag(_text, "MRAcquisitionType")),
    ("StudyDescription", _tag(_text, "StudyDescription")),
    ("SeriesDescription", _tag(_text, "SeriesDescription")),
    ("ProtocolName", _tag(_text, "ProtocolName")),
    ("ScanningSequence", _tag(_text, "ScanningSequence")),
    ("SequenceVariant", _tag(_text, "SequenceVariant")),
    ("ScanOptions", _tag(_text, "ScanOptions")),
    ("SequenceName", _tag(_text, "SequenceName", "PulseSequenceName")),
    ("ImageType", _tag(_text_list, "ImageType")),
    ("DeidentificationMethod", _tag(_text_list, "DeidentificationMethod")),
    ("SeriesNumber", _tag(_int, "SeriesNumber")),
    ("SeriesTime", _tag(_time_seconds, "SeriesTime")),
    ("AcquisitionTime", _acquisition_time),
    ("AcquisitionDateTime", _acquisition_datetime),
    ("AcquisitionNumber", _tag(_positive_int, "AcquisitionNumber")),
    ("ImageComments", _tag(_text, "ImageComments")),
    # PET
    ("TracerName", _tag(_text, f"{_RADIOPHARM}/Radiopharmaceutical")),
    (
        "TracerRadionuclide",
        _tag(_radionuclide, f"{_RADIOPHARM}/RadionuclideCodeSequence/CodeMeaning"),
    ),
    ("RadionuclidePositronFraction", _tag(_positive, f"{_RADIOPHARM}/RadionuclidePositronFraction")),
    ("InjectedRadioactivity", _tag(_mbq, f"{_RADIOPHARM}/RadionuclideTotalDose")),
    ("RadionuclideHalfLife", _tag(_positive, f"{_RADIOPHARM}/RadionuclideHalfLife")),
    ("DoseCalibrationFactor", _tag(_positive, "DoseCalibrationFactor")),
    ("ConvolutionKernel", _tag(_text, "ConvolutionKernel")),
    ("Units", _tag(_pet_units, "Units")),
    ("DecayCorrection", _tag(_text, "DecayCorrection")),
    ("AttenuationCorrectionMethod", _tag(_text, "AttenuationCorrectionMethod")),
    ("RandomsCorrectionMethod", _tag(_text, "RandomsCorrectionMethod")),
    ("ScatterCorrectionMethod", _tag(_text, "ScatterCorrectionMethod")),
    ("ReconstructionMethod", _tag(_text, "ReconstructionMethod")),
    # CT
    ("ExposureTime", _tag(_ms_to_s, "ExposureTime", "ExposureTimeInms")),
    ("XRayTubeCurrent", _tag(_positive, "XRayTubeCurrent", "XRayTubeCurrentInmA")),
    ("XRayExposure", _tag(_positive, "Exposure", "ExposureInmAs")),
    ("KVP", _tag(_positive, "KVP")),
    ("GantryDetectorTilt", _tag(_float, "GantryDetectorTilt")),
    # MR (and slice geometry as stated by the scanner)
    ("SliceThickness", _tag(_positive, "SliceThickness")),
    ("SpacingBetweenSlices", _tag(_positive, "SpacingBetweenSlices")),
    ("SAR", _tag(_positive, "SAR")),
    ("NumberOfAverages", _tag(_above_one, "NumberOfAverages")),
    ("EchoNumber", _tag(_positive_int, "EchoNumbers")),
    ("EchoTime", _tag(_ms_to_s, "EchoTime", "EffectiveEchoTime")),
    ("RepetitionTime", _tag(_ms_to_s, "RepetitionTime")),
    ("InversionTime", _tag(_ms_to_s, "InversionTime", "InversionTimes")),
    ("FlipAngle", _tag(_positive, "FlipAngle")),
    ("ReceiveCoilName", _tag(_text, "ReceiveCoilName")),
    ("PercentPhaseFOV", _tag(_positive, "PercentPhaseFieldOfView")),
    ("PercentSampling", _tag(_positive, "PercentSampling")),
    ("EchoTrainLength", _tag(_int_above_one, "EchoTrainLength")),
    ("PartialFourierDirection", _tag(_text, "PartialFourierDirection")),
    (
        "PhaseEncodingSteps",
        _tag(_positive_int, "NumberOfPhaseEncodingSteps", "MRAcquisitionPhaseEncodingStepsInPlane"),
    ),
    ("FrequencyEncodingSteps", _tag(_positive_int, "MRAcquisitionFrequencyEncodingSteps")),
    (
        "PhaseEncodingStepsOutOfPlane",
        _tag(_positive_int, "MRAcquisitionPhaseEncodingStepsOutOfPlane"),
    ),
    ("AcquisitionMatrixPE", _acquisition_matrix_pe),
    ("ReconMatrixPE", _recon_matrix_pe),
    ("ParallelReductionFactorInPlane", _tag(_positive, "ParallelReductionFactorInPlane")),
    ("ParallelAcquisitionTechnique", _tag(_text, "ParallelAcquisitionTechnique")),
    ("ParallelReductionFactorOutOfPlane", _tag(_positive, "ParallelReductionFactorOutOfPlane")),
    ("PixelBandwidth", _tag(_positive, "PixelBandwidth")),
    ("ImageOrientationPatientDICOM", _tag(_orientation, "ImageOrientationPatient")),
    ("InPlanePhaseEncodingDirectionDICOM", _phase_encoding),
)


def bids_metadata(ds: Dataset) -> dict[str, Any]:
    """Return the BIDS sidecar metadata of one DICOM header.

    Parameters
    ----------
    ds : pydicom.Dataset
        A header dataset, typically read with ``stop_before_pixels=True``: a
        single-frame image or an enhanced multi-frame image.

    Returns
    -------
    dict of str to Any
        Sidecar keys as dcm2niix names them, in dcm2niix's order, mapped to
        JSON-serialisable values (``str``, ``int``, ``float`` or lists of them).
        Absent, empty or malformed attributes are left out.

    Notes
    -----
    The function never raises on the content of ``ds``.  Keys an anonymised
    sidecar must not carry are listed in :data:`PATIENT_IDENTIFYING_KEYS`.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.Modality, ds.EchoTime, ds.FlipAngle = "MR", "30", "bad"
    >>> bids_metadata(ds)
    {'Modality': 'MR', 'EchoTime': 0.03}
    """
    metadata: dict[str, Any] = {}
    for key, getter in _FIELDS:
        try:
            value = getter(ds)
        except Exception:
            value = None
        if value is not None:
            metadata[key] = value
    if "InjectedRadioactivity" in metadata:
        position = list(metadata).index("InjectedRadioactivity") + 1
        items = list(metadata.items())
        items.insert(position, ("InjectedRadioactivityUnits", "MBq"))
        metadata = dict(items)
    return metadata

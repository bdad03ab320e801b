"""Acquisition metadata for BIDS-style JSON sidecars, read from one DICOM header.

:func:`bids_metadata` maps the attributes of one header dataset (read with
``stop_before_pixels=True``) to the key names, units and value formats that
dcm2niix writes in its BIDS JSON sidecars, so that a dicomvol sidecar reads like a
dcm2niix one.  The mapping was checked against the sidecars dcm2niix
v1.0.20260724 writes for the shared corpus (CT, PET, classic and enhanced MR):
milliseconds become seconds (``EchoTime``, ``RepetitionTime``, ``InversionTime``,
CT ``ExposureTime``); ``RadionuclideTotalDose`` (Bq) becomes
``InjectedRadioactivity`` (MBq); PET ``Units`` ``BQML`` becomes ``Bq/mL``; times
are ``"HH:MM:SS.ffffff"`` (``SeriesTime`` ``"HH:MM:SS"``), dates ``"YYYY-MM-DD"``;
``PatientAge`` is whole years (``nnnY`` ages only); ``Manufacturer`` is the
vendor's short name (``Siemens``, ``GE``...); multi-valued text is joined with
backslashes; some keys are renamed (``BodyPartExamined`` -> ``BodyPart``,
``ManufacturerModelName`` -> ``ManufacturersModelName``, ``Exposure`` ->
``XRayExposure``, ``Radiopharmaceutical`` -> ``TracerName``...); numbers that
dcm2niix writes only when positive (or above 1) are omitted otherwise.

In an enhanced multi-frame image a value is looked up at the top level, then in
the standard macros of ``SharedFunctionalGroupsSequence`` and of the first item
of ``PerFrameFunctionalGroupsSequence``, also under the enhanced keyword where it
differs (``EffectiveEchoTime``, ``TransmitterFrequency``, ``PulseSequenceName``...).
Values that vary within a series (``AcquisitionTime``...) are the given header's.

Deliberate differences from dcm2niix: ``FrameOfReferenceUID``, ``StudyDate``,
``KVP`` and ``GantryDetectorTilt`` are added; an unknown manufacturer is kept
verbatim; ``ImageType`` is the DICOM value (dcm2niix splits it at ``_`` and may
append ``MAGNITUDE``, ``PHASE``...); nothing comes from private tags (Siemens CSA,
GE, Philips); nothing the converter computes from the whole series or the pixel
grid is written (``SliceTiming``, ``PhaseEncodingDirection``,
``EffectiveEchoSpacing``, ``AcquisitionDuration``, PET ``FrameTimesStart``,
``FrameDuration``...), nor ``ConversionSoftware``/``ConversionSoftwareVersion``.
Every conversion is guarded: an absent, empty, malformed or unexpectedly
multi-valued attribute is left out, never raised.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from dicomvol.dicom.tags import keyword_tag
from dicomvol.dicom.values import is_dataset, is_pydicom_dataset, parse_da, split_tm, vendor

if TYPE_CHECKING:  # pragma: no cover - a header is a pydicom Dataset or a LeanDataset
    from pydicom.dataset import Dataset

__all__ = ["PATIENT_IDENTIFYING_KEYS", "SIDECAR_KEYS", "bids_metadata"]

# Keys that an --anonymize option must drop.  The set follows what dcm2niix
# drops with ``-ba y`` (names, IDs, birth date, sex, age, weight, size, accession
# and study IDs, referring physician, the acquisition date-time and the study and
# series UIDs, which can be used to look the patient up in the source PACS) plus
# the attributes the DICOM PS3.15 Basic Application Confidentiality Profile
# removes that identify the site and device or can hold free text (institution,
# department and address, station name, device serial number, image comments),
# plus the identifiers this module adds (StudyDate, FrameOfReferenceUID).  Times
# of day (AcquisitionTime, SeriesTime) and the acquisition descriptors
# (SeriesDescription, ProtocolName...) are kept, as with dcm2niix ``-ba y``:
# without them a sidecar loses most of its value.
PATIENT_IDENTIFYING_KEYS: Final[frozenset[str]] = frozenset(
    {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
     "PatientWeight", "PatientSize", "AccessionNumber", "StudyID", "ReferringPhysicianName",
     "InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress", "StationName",
     "DeviceSerialNumber", "ImageComments", "StudyDate", "AcquisitionDateTime",
     "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"}
)  # fmt: skip

Getter = Callable[[Any], Any]  # a pydicom Dataset or a LeanDataset
Converter = Callable[[Any], Any]

_RP = "RadiopharmaceuticalInformationSequence/"


# --- value access -------------------------------------------------------------


def _raw(item: Any, keyword: str) -> Any:
    """Return the value of ``keyword`` in ``item`` (None if absent or unreadable).

    Most of the ~100 keywords the sidecar looks up (three times each: top level and the
    two functional-group sequences) are absent from a given header; for a ``Dataset``
    that is one look-up in its element dict, without pydicom's ``get`` machinery.
    """
    if is_pydicom_dataset(item):
        tag = keyword_tag(keyword)
        if tag is not None and tag not in item.keys():  # noqa: SIM118 (no Tag() per call)
            return None
    try:
        return item.get(keyword)  # bids_metadata silences pydicom's invalid-value warnings
    except Exception:
        return None


def _macros(ds: Dataset, sequence: str) -> Iterator[Dataset]:
    """Yield the first item of each standard (non-private) macro of ``sequence[0]``."""
    try:
        for elem in _raw(ds, sequence)[0]:
            if elem.VR == "SQ" and not elem.tag.is_private and len(elem.value) > 0:
                yield elem.value[0]
    except Exception:
        return


def _candidates(ds: Any, keyword: str) -> Iterator[Any]:
    """Yield the raw values of ``keyword`` in lookup order.

    ``keyword`` may be a path ``"Sequence/Keyword"`` into first items of sequences;
    otherwise the top level comes first, then the functional groups.
    """
    if "/" in keyword:
        sequence, _, rest = keyword.partition("/")
        try:
            yield from _candidates(_raw(ds, sequence)[0], rest)
        except Exception:
            return
        return
    yield _raw(ds, keyword)
    for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in _macros(ds, sequence):
            yield _raw(item, keyword)


def _lookup(ds: Dataset, keywords: tuple[str, ...], convert: Converter) -> Any:
    """Return the first value of ``keywords`` that converts to something."""
    for keyword in keywords:
        for raw in _candidates(ds, keyword):
            try:
                value = None if raw is None else convert(raw)
            except Exception:
                value = None
            if value is not None:
                return value
    return None


# --- converters (raw DICOM value -> JSON value or None; may raise) -------------


def _is_multi(value: Any) -> bool:
    """A multi-valued value: a list (lean headers) or pydicom's ``MultiValue``."""
    if isinstance(value, list | tuple):
        return True
    module = sys.modules.get("pydicom.multival")
    return module is not None and isinstance(value, module.MultiValue)


def _single(value: Any) -> Any:
    """Return the one value of ``value``; raise if it holds none or several."""
    if _is_multi(value):
        if len(value) != 1:
            raise ValueError("expected a single value")
        value = value[0]
    if is_dataset(value):
        raise TypeError("a sequence item, not a value")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        value = value.strip(" \x00")
        if not value:
            raise ValueError("empty")
    return value


def _text(value: Any) -> str | None:
    parts = list(value) if _is_multi(value) else [value]
    if any(is_dataset(part) for part in parts):
        return None  # a sequence where text is expected
    texts = (p.decode("latin-1") if isinstance(p, bytes) else str(p) for p in parts)
    return "\\".join(text.strip(" \x00") for text in texts).strip(" \x00") or None


def _text_list(value: Any) -> list[str] | None:
    out = [_text(part) or "" for part in (value if _is_multi(value) else [value])]
    return out if any(out) else None


def _number(
    *, above: float | None = None, below: float | None = None, scale: float = 1.0,
    integer: bool = False,
) -> Converter:  # fmt: skip
    """Return a converter to a finite number in (``above``, ``below``), times ``scale``.

    A scaled value is rounded to 12 significant digits to drop binary noise.
    """

    def convert(value: Any) -> float | int | None:
        number = float(_single(value))
        if not math.isfinite(number) or (above is not None and number <= above):
            return None
        if below is not None and number >= below:
            return None
        if integer:
            return int(number) if number == int(number) else None
        return number if scale == 1.0 else float(f"{number * scale:.12g}")

    return convert


_FLOAT = _number()
_POSITIVE = _number(above=0)
_ABOVE_ONE = _number(above=1)  # dcm2niix omits the trivial value 1
_MS_TO_S = _number(above=0, scale=1e-3)
_BQ_TO_MBQ = _number(above=0, scale=1e-6)
_MHZ = _number(above=0, below=9e6)  # some vendors store Hz, which dcm2niix drops
_INT = _number(integer=True)
_POSITIVE_INT = _number(above=0, integer=True)
_INT_ABOVE_ONE = _number(above=1, integer=True)


def _choice(mapping: Mapping[str, str], keep_unknown: bool = False) -> Converter:
    """Return a converter that maps a code string through ``mapping``."""

    def convert(value: Any) -> str | None:
        text = str(_single(value))
        return mapping.get(text.upper(), text if keep_unknown else None)

    return convert


def _orientation(value: Any) -> list[float] | None:
    numbers = [float(v) for v in value] if _is_multi(value) else []
    return numbers if len(numbers) == 6 and all(map(math.isfinite, numbers)) else None


def _time(value: Any, *, fraction: bool = True) -> str | None:
    """Format a TM value (``HHMMSS.ffffff`` or ``HH:MM:SS``) as ``HH:MM:SS[.ffffff]``."""
    parts = split_tm(_single(value))
    if parts is None:
        return None
    hh, mm, ss, frac = parts
    if hh > 23 or mm > 59 or ss > 60:
        return None
    digits = frac[:6].ljust(6, "0")
    return f"{hh:02d}:{mm:02d}:{ss:02d}" + (f".{digits}" if fraction else "")


def _date(value: Any) -> str | None:
    found = parse_da(_single(value))
    return None if found is None else found.isoformat()


def _datetime(value: Any, *, time_only: bool = False) -> str | None:
    """Format a DT value ``YYYYMMDDHHMMSS.ffffff&ZZXX`` as ``YYYY-MM-DDTHH:MM:SS.ffffff``."""
    text = re.split(r"[+-]", str(_single(value)))[0]
    date, time = _date(text[:8]), _time(text[8:]) if len(text) >= 12 else None
    if time_only or time is None:
        return time
    return f"{date}T{time}" if date else None


def _age_years(value: Any) -> int | None:
    text = str(_single(value)).upper()
    return int(text[:-1]) if text.endswith("Y") and text[:-1].isdigit() else None


def _manufacturer(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else vendor(text)


def _radionuclide(value: Any) -> str | None:
    return (_text(value) or "").replace("^", "") or None


def _mbq_unit(value: Any) -> str | None:
    return "MBq" if _BQ_TO_MBQ(value) else None


# --- getters that combine attributes --------------------------------------------


def _tag(convert: Converter, *keywords: str) -> Getter:
    return lambda ds: _lookup(ds, keywords, convert)


def _same(convert: Converter, *keywords: str) -> tuple[tuple[str, Getter], ...]:
    """Fields whose sidecar key is the DICOM keyword."""
    return tuple((keyword, _tag(convert, keyword)) for keyword in keywords)


def _acquisition_time(ds: Dataset) -> Any:
    return _lookup(ds, ("AcquisitionTime",), _time) or _lookup(
        ds, ("AcquisitionDateTime", "FrameAcquisitionDateTime"),
        lambda v: _datetime(v, time_only=True),
    )  # fmt: skip


def _acquisition_datetime(ds: Dataset) -> Any:
    date = _lookup(ds, ("AcquisitionDate",), _date)
    time = _lookup(ds, ("AcquisitionTime",), _time)
    return _lookup(ds, ("AcquisitionDateTime",), _datetime) or (
        f"{date}T{time}" if date and time else None
    ) or _lookup(ds, ("FrameAcquisitionDateTime",), _datetime)  # fmt: skip


_phase_encoding = _tag(_choice({"COL": "COL", "COLUMN": "COL", "ROW": "ROW"}),
                       "InPlanePhaseEncodingDirection")  # fmt: skip


def _phase_axis(ds: Dataset) -> tuple[str | None, list[int]]:
    """Return the phase-encoding direction (given or implied) and AcquisitionMatrix."""
    try:
        matrix = [int(v) for v in _raw(ds, "AcquisitionMatrix")]
    except Exception:
        matrix = []
    direction = _phase_encoding(ds)
    if direction is None and len(matrix) == 4 and (matrix[2] > 0) != (matrix[3] > 0):
        direction = "ROW" if matrix[2] > 0 else "COL"  # only one phase entry is set
    return direction, matrix


def _acquisition_matrix_pe(ds: Dataset) -> Any:
    steps = _lookup(ds, ("MRAcquisitionPhaseEncodingStepsInPlane",), _POSITIVE_INT)
    direction, matrix = _phase_axis(ds)
    if steps is None and direction is not None and len(matrix) == 4:
        steps = matrix[3] if direction == "COL" else matrix[2]
    return steps if steps else None


def _recon_matrix_pe(ds: Dataset) -> Any:
    if "MOSAIC" in (_lookup(ds, ("ImageType",), _text_list) or []):
        return None  # a mosaic's Rows/Columns are those of the tiled slices
    direction, _ = _phase_axis(ds)
    rows_or_cols = {"COL": "Rows", "ROW": "Columns"}.get(direction or "")
    return _lookup(ds, (rows_or_cols,), _POSITIVE_INT) if rows_or_cols else None


# --- the mapping ----------------------------------------------------------------

# (sidecar key, getter), in the order dcm2niix writes them.
_FIELDS: Final[tuple[tuple[str, Getter], ...]] = (
    ("Modality", _tag(_text, "Modality")),
    ("MagneticFieldStrength", _tag(_POSITIVE, "MagneticFieldStrength")),
    ("ImagingFrequency", _tag(_MHZ, "ImagingFrequency", "TransmitterFrequency")),
    ("Manufacturer", _tag(_manufacturer, "Manufacturer")),
    ("ManufacturersModelName", _tag(_text, "ManufacturerModelName")),
    *_same(_text, "InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress",
           "DeviceSerialNumber", "StationName", "SeriesInstanceUID", "StudyInstanceUID",
           "FrameOfReferenceUID", "ReferringPhysicianName", "StudyID"),
    ("StudyDate", _tag(_date, "StudyDate")),
    *_same(_text, "PatientName", "PatientID", "AccessionNumber"),
    ("PatientBirthDate", _tag(_date, "PatientBirthDate")),
    ("PatientSex", _tag(_choice({"M": "M", "F": "F", "O": "O"}), "PatientSex")),
    *_same(_POSITIVE, "PatientSize", "PatientWeight"),
    ("PatientAge", _tag(_age_years, "PatientAge")),
    ("BodyPart", _tag(_text, "BodyPartExamined")),
    ("PatientPosition", _tag(_text, "PatientPosition")),
    ("ProcedureStepDescription", _tag(_text, "PerformedProcedureStepDescription")),
    *_same(_text, "SoftwareVersions", "MRAcquisitionType", "StudyDescription",
           "SeriesDescription", "ProtocolName", "ScanningSequence", "SequenceVariant",
           "ScanOptions"),
    ("SequenceName", _tag(_text, "SequenceName", "PulseSequenceName")),
    *_same(_text_list, "ImageType", "DeidentificationMethod"),
    ("SeriesNumber", _tag(_INT, "SeriesNumber")),
    ("SeriesTime", _tag(lambda v: _time(v, fraction=False), "SeriesTime")),
    ("AcquisitionTime", _acquisition_time),
    ("AcquisitionDateTime", _acquisition_datetime),
    ("AcquisitionNumber", _tag(_POSITIVE_INT, "AcquisitionNumber")),
    ("ImageComments", _tag(_text, "ImageComments")),
    # PET
    ("TracerName", _tag(_text, _RP + "Radiopharmaceutical")),
    ("TracerRadionuclide", _tag(_radionuclide, _RP + "RadionuclideCodeSequence/CodeMeaning")),
    ("RadionuclidePositronFraction", _tag(_POSITIVE, _RP + "RadionuclidePositronFraction")),
    ("InjectedRadioactivity", _tag(_BQ_TO_MBQ, _RP + "RadionuclideTotalDose")),
    ("InjectedRadioactivityUnits", _tag(_mbq_unit, _RP + "RadionuclideTotalDose")),
    ("RadionuclideHalfLife", _tag(_POSITIVE, _RP + "RadionuclideHalfLife")),
    ("DoseCalibrationFactor", _tag(_POSITIVE, "DoseCalibrationFactor")),
    ("ConvolutionKernel", _tag(_text, "ConvolutionKernel")),
    ("Units", _tag(_choice({"BQML": "Bq/mL"}, keep_unknown=True), "Units")),
    *_same(_text, "DecayCorrection", "AttenuationCorrectionMethod", "RandomsCorrectionMethod",
           "ScatterCorrectionMethod", "ReconstructionMethod"),
    # CT
    ("ExposureTime", _tag(_MS_TO_S, "ExposureTime", "ExposureTimeInms")),
    ("XRayTubeCurrent", _tag(_POSITIVE, "XRayTubeCurrent", "XRayTubeCurrentInmA")),
    ("XRayExposure", _tag(_POSITIVE, "Exposure", "ExposureInmAs")),
    ("KVP", _tag(_POSITIVE, "KVP")),
    ("GantryDetectorTilt", _tag(_FLOAT, "GantryDetectorTilt")),
    # MR, and the slice thickness and spacing the scanner states
    *_same(_POSITIVE, "SliceThickness", "SpacingBetweenSlices", "SAR"),
    ("NumberOfAverages", _tag(_ABOVE_ONE, "NumberOfAverages")),
    ("EchoNumber", _tag(_POSITIVE_INT, "EchoNumbers")),
    ("EchoTime", _tag(_MS_TO_S, "EchoTime", "EffectiveEchoTime")),
    ("RepetitionTime", _tag(_MS_TO_S, "RepetitionTime")),
    ("InversionTime", _tag(_MS_TO_S, "InversionTime", "InversionTimes")),
    ("FlipAngle", _tag(_POSITIVE, "FlipAngle")),
    ("ReceiveCoilName", _tag(_text, "ReceiveCoilName")),
    ("PercentPhaseFOV", _tag(_POSITIVE, "PercentPhaseFieldOfView")),
    ("PercentSampling", _tag(_POSITIVE, "PercentSampling")),
    ("EchoTrainLength", _tag(_INT_ABOVE_ONE, "EchoTrainLength")),
    ("PartialFourierDirection", _tag(_text, "PartialFourierDirection")),
    ("PhaseEncodingSteps", _tag(_POSITIVE_INT, "NumberOfPhaseEncodingSteps",
                                "MRAcquisitionPhaseEncodingStepsInPlane")),
    ("FrequencyEncodingSteps", _tag(_POSITIVE_INT, "MRAcquisitionFrequencyEncodingSteps")),
    ("PhaseEncodingStepsOutOfPlane", _tag(_POSITIVE_INT,
                                          "MRAcquisitionPhaseEncodingStepsOutOfPlane")),
    ("AcquisitionMatrixPE", _acquisition_matrix_pe),
    ("ReconMatrixPE", _recon_matrix_pe),
    ("ParallelReductionFactorInPlane", _tag(_POSITIVE, "ParallelReductionFactorInPlane")),
    ("ParallelAcquisitionTechnique", _tag(_text, "ParallelAcquisitionTechnique")),
    *_same(_POSITIVE, "ParallelReductionFactorOutOfPlane", "PixelBandwidth"),
    ("ImageOrientationPatientDICOM", _tag(_orientation, "ImageOrientationPatient")),
    ("InPlanePhaseEncodingDirectionDICOM", _phase_encoding),
)  # fmt: skip


#: Every key :func:`bids_metadata` may write, in dcm2niix's order.
SIDECAR_KEYS: Final[tuple[str, ...]] = tuple(key for key, _ in _FIELDS)


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
    >>> ds.Modality, ds.EchoTime, ds.SeriesDescription = "MR", "30", ""
    >>> bids_metadata(ds)
    {'Modality': 'MR', 'EchoTime': 0.03}
    """
    metadata: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about invalid values
        for key, getter in _FIELDS:
            try:
                value = getter(ds)
            except Exception:
                value = None
            if value is not None:
                metadata[key] = value
    return metadata

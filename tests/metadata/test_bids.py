"""Tests of dicomvol.bids: unit tests on synthetic headers, and agreement with the
BIDS sidecars dcm2niix writes for real series of the shared corpus."""

from __future__ import annotations

import json
import math
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from conftest import require_dcm2niix, skip_or_fail
from dicomvol.metadata.bids import PATIENT_IDENTIFYING_KEYS, SIDECAR_KEYS, bids_metadata


def _dcm2niix() -> str:
    return require_dcm2niix()


def _raw_dataset(**elements: tuple[str, bytes]) -> Dataset:
    """A dataset whose values are raw bytes, decoded on access as when read from a file."""
    ds = Dataset()
    for keyword, (vr, value) in elements.items():
        tag = Tag(keyword)
        ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    return ds


def _plain(value: Any) -> bool:
    """True if ``value`` is a plain JSON value: str, int, float or a list of them."""
    if type(value) is list:
        return all(type(item) in (str, int, float) for item in value)
    return type(value) in (str, int, float)


# --- synthetic headers ------------------------------------------------------------


def test_units_are_converted_as_dcm2niix_does() -> None:
    ds = Dataset()
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.EchoTime = "30"
    ds.RepetitionTime = "2000"
    ds.InversionTime = "900"
    ds.FlipAngle = "9"
    ds.ImagingFrequency = "123.2"
    ds.AcquisitionDate = "20200102"
    ds.AcquisitionTime = "093015.5"
    ds.SeriesTime = "0930"
    ds.PatientAge = "045Y"
    ds.PatientBirthDate = "19750102"
    ds.BodyPartExamined = "BRAIN"
    ds.ScanningSequence = ["EP", "GR"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.SeriesNumber = "7"
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.AcquisitionMatrix = [0, 96, 80, 0]
    ds.Rows, ds.Columns = 96, 80
    meta = bids_metadata(ds)
    assert meta["EchoTime"] == pytest.approx(0.03, rel=1e-9)
    assert meta["RepetitionTime"] == pytest.approx(2.0, rel=1e-9)
    assert meta["InversionTime"] == pytest.approx(0.9, rel=1e-9)
    assert meta["FlipAngle"] == pytest.approx(9.0, rel=1e-9)
    assert meta["ImagingFrequency"] == pytest.approx(123.2, rel=1e-9)
    assert meta["Manufacturer"] == "Siemens"
    assert meta["AcquisitionTime"] == "09:30:15.500000"
    assert meta["AcquisitionDateTime"] == "2020-01-02T09:30:15.500000"
    assert meta["SeriesTime"] == "09:30:00"
    assert meta["PatientAge"] == 45
    assert meta["PatientBirthDate"] == "1975-01-02"
    assert meta["BodyPart"] == "BRAIN"
    assert meta["ScanningSequence"] == "EP\\GR"
    assert meta["ImageType"] == ["ORIGINAL", "PRIMARY", "M"]
    assert meta["SeriesNumber"] == 7
    assert meta["InPlanePhaseEncodingDirectionDICOM"] == "ROW"
    assert meta["AcquisitionMatrixPE"] == 80
    assert meta["ReconMatrixPE"] == 80
    assert all(_plain(value) for value in meta.values())
    json.dumps(meta)


def test_pet_and_ct_values() -> None:
    ds = Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.ExposureTime = "361"
    ds.Exposure = "400"
    ds.KVP = "120"
    item = Dataset()
    item.RadionuclideTotalDose = "370000000"
    item.RadionuclideHalfLife = "6586.2"
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    code = Dataset()
    code.CodeMeaning = "^18^Fluorine"
    item.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    meta = bids_metadata(ds)
    assert meta["Units"] == "Bq/mL"
    assert meta["InjectedRadioactivity"] == pytest.approx(370.0, rel=1e-9)
    assert meta["InjectedRadioactivityUnits"] == "MBq"
    assert meta["RadionuclideHalfLife"] == pytest.approx(6586.2, rel=1e-9)
    assert meta["TracerName"] == "Fluorodeoxyglucose"
    assert meta["TracerRadionuclide"] == "18Fluorine"
    assert meta["ExposureTime"] == pytest.approx(0.361, rel=1e-9)
    assert meta["XRayExposure"] == pytest.approx(400.0, rel=1e-9)
    assert meta["KVP"] == pytest.approx(120.0, rel=1e-9)


def test_bad_values_are_omitted_not_raised() -> None:
    ds = _raw_dataset(
        Modality=("CS", b"MR"),
        FlipAngle=("DS", b"ninety"),  # not a number
        EchoTime=("DS", b"10\\20 "),  # multi-valued where one is expected
        RepetitionTime=("DS", b"2000"),
        SeriesNumber=("IS", b"x1"),
        AcquisitionTime=("TM", b"25:99:00"),  # out of range
        AcquisitionDate=("DA", b"2020"),
        PatientAge=("AS", b"006M"),  # dcm2niix writes years only
        PatientSex=("CS", b"X "),
        SeriesDescription=("LO", b"  "),  # empty
        ImagingFrequency=("DS", b""),
        SliceThickness=("LO", b"1.5"),  # wrong VR but a usable value
        SAR=("DS", b"-1"),  # dcm2niix writes it only when positive
        ImageOrientationPatient=("DS", b"1\\0\\0\\0\\1"),  # five values, not six
        Units=("CS", b"CNTS"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the library must not warn either
        meta = bids_metadata(ds)
    assert meta == {
        "Modality": "MR",
        "Units": "CNTS",
        "SliceThickness": 1.5,
        "RepetitionTime": 2.0,
    }


GARBAGE_KEYWORDS = (
    "Modality",
    "Manufacturer",
    "EchoTime",
    "RepetitionTime",
    "AcquisitionMatrix",
    "InPlanePhaseEncodingDirection",
    "Rows",
    "Columns",
    "PatientAge",
    "PatientSex",
    "ImageType",
    "AcquisitionTime",
    "AcquisitionDate",
    "AcquisitionDateTime",
    "SeriesNumber",
    "SeriesTime",
    "ImageOrientationPatient",
    "Units",
    "StudyDate",
    "PatientBirthDate",
    "RadiopharmaceuticalInformationSequence",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)


@pytest.mark.parametrize("vr", ["UN", "DS", "IS", "CS", "TM", "SQ", "US"])
@pytest.mark.parametrize(
    "value", [b"", b"\x00\xff\xfe\x80", b"1\\2\\3", b"nan ", b"1e400 ", b"-5", b"\\", b"9" * 64]
)
def test_never_raises_on_garbage(vr: str, value: bytes) -> None:
    ds = _raw_dataset(**{keyword: (vr, value) for keyword in GARBAGE_KEYWORDS})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta = bids_metadata(ds)
    assert all(_plain(item) for item in meta.values()), meta
    json.dumps(meta)


def test_empty_functional_groups() -> None:
    ds = Dataset()
    ds.SharedFunctionalGroupsSequence = Sequence([])
    ds.PerFrameFunctionalGroupsSequence = Sequence([Dataset()])
    assert bids_metadata(ds) == {}


def test_enhanced_multiframe_functional_groups() -> None:
    def macro(name: str, **values: Any) -> Dataset:
        item, group = Dataset(), Dataset()
        for keyword, value in values.items():
            setattr(item, keyword, value)
        setattr(group, name, Sequence([item]))
        return group

    shared = Dataset()
    shared.update(
        macro("MRTimingAndRelatedParametersSequence", RepetitionTime="500", FlipAngle="52")
    )
    shared.update(
        macro("MRImagingModifierSequence", PixelBandwidth="2298", TransmitterFrequency=123.21)
    )
    shared.update(
        macro(
            "MRFOVGeometrySequence",
            InPlanePhaseEncodingDirection="COLUMN",
            MRAcquisitionPhaseEncodingStepsInPlane=64,
            PercentSampling="100",
        )
    )
    shared.update(macro("PixelMeasuresSequence", SliceThickness="2.4", PixelSpacing=["3", "3"]))
    frame = macro("MREchoSequence", EffectiveEchoTime=30.0)
    frame.update(macro("PlaneOrientationSequence", ImageOrientationPatient=[1, 0, 0, 0, 1, 0]))
    private = Dataset()  # Philips-style private copy of classic attributes: not searched
    private.EchoTime, private.ScanningSequence = "99", "RM"
    frame.add_new(0x2005140F, "SQ", Sequence([private]))
    ds = Dataset()
    ds.Modality = "MR"
    ds.Rows, ds.Columns = 64, 64
    ds.AcquisitionDateTime = "20181022083634.135000"
    ds.PulseSequenceName = "*epfid2d1_64"
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame, Dataset()])
    meta = bids_metadata(ds)
    assert meta["EchoTime"] == pytest.approx(0.03, rel=1e-9)
    assert meta["RepetitionTime"] == pytest.approx(0.5, rel=1e-9)
    assert meta["FlipAngle"] == pytest.approx(52.0, rel=1e-9)
    assert meta["PixelBandwidth"] == pytest.approx(2298.0, rel=1e-9)
    assert meta["ImagingFrequency"] == pytest.approx(123.21, rel=1e-9)
    assert meta["SliceThickness"] == pytest.approx(2.4, rel=1e-9)
    assert meta["SequenceName"] == "*epfid2d1_64"
    assert meta["InPlanePhaseEncodingDirectionDICOM"] == "COL"
    assert meta["AcquisitionMatrixPE"] == 64
    assert meta["PhaseEncodingSteps"] == 64
    assert meta["ReconMatrixPE"] == 64
    assert meta["AcquisitionTime"] == "08:36:34.135000"
    assert meta["AcquisitionDateTime"] == "2018-10-22T08:36:34.135000"
    assert meta["ImageOrientationPatientDICOM"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert "ScanningSequence" not in meta


def test_identifying_keys_and_converter_keys() -> None:
    produced = set(SIDECAR_KEYS)
    assert produced >= PATIENT_IDENTIFYING_KEYS  # no misspelt key
    assert {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "AccessionNumber",
        "InstitutionName",
        "StationName",
        "DeviceSerialNumber",
        "ReferringPhysicianName",
    } <= PATIENT_IDENTIFYING_KEYS
    assert not {"ConversionSoftware", "ConversionSoftwareVersion"} & produced
    assert not {"EchoTime", "SeriesDescription", "Modality"} & PATIENT_IDENTIFYING_KEYS


def test_unknown_manufacturer_is_kept() -> None:
    ds = Dataset()
    ds.Manufacturer = "ACME Imaging"
    assert bids_metadata(ds)["Manufacturer"] == "ACME Imaging"
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    assert bids_metadata(ds)["Manufacturer"] == "GE"


# --- agreement with dcm2niix on the real corpus -----------------------------------

# series -> keys that must have been compared (present in both outputs)
SERIES: dict[str, set[str]] = {
    "ct_lung1/image": {
        "ExposureTime",
        "XRayTubeCurrent",
        "XRayExposure",
        "ConvolutionKernel",
        "AcquisitionTime",
        "ImageType",
        "PatientPosition",
    },
    "ct_tilt/GE": {"ExposureTime", "XRayTubeCurrent", "SliceThickness", "ImageType"},
    "pet_wholebody_seg/image": {
        "Units",
        "InjectedRadioactivity",
        "RadionuclideHalfLife",
        "RadionuclidePositronFraction",
        "TracerRadionuclide",
        "DecayCorrection",
        "DoseCalibrationFactor",
        "AcquisitionTime",
    },
    "mr_4d_nih/20180918GE/mr_0004": {
        "EchoTime",
        "RepetitionTime",
        "FlipAngle",
        "SAR",
        "ImagingFrequency",
        "PixelBandwidth",
        "AcquisitionMatrixPE",
        "ReconMatrixPE",
        "SoftwareVersions",
        "SpacingBetweenSlices",
    },
    "mr_4d_nih/20180918Si/mr_0003": {
        "EchoTime",
        "RepetitionTime",
        "FlipAngle",
        "PhaseEncodingSteps",
        "InPlanePhaseEncodingDirectionDICOM",
        "ProcedureStepDescription",
    },
    "enhanced_mr/Siemens/XA10": {
        "EchoTime",
        "RepetitionTime",
        "FlipAngle",
        "ImagingFrequency",
        "PixelBandwidth",
        "ReceiveCoilName",
        "SequenceName",
        "AcquisitionMatrixPE",
        "ReconMatrixPE",
        "EchoTrainLength",
    },
    "edge_cases/philips_enhanced/fmri/001": {
        "EchoTime",
        "RepetitionTime",
        "FlipAngle",
        "SliceThickness",
        "PhaseEncodingSteps",
    },
}


def _seconds(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _agrees(key: str, ours: Any, theirs: Any) -> bool:
    """Compare one value of ours with dcm2niix's, allowing for its documented quirks."""
    if key == "ImageType":  # dcm2niix splits values at "_" and may append e.g. MAGNITUDE
        split = [part for value in ours for part in value.split("_") if part]
        return bool(theirs[: len(split)] == split)
    if key == "AcquisitionTime":  # dcm2niix keeps 10 microseconds
        return abs(_seconds(ours) - _seconds(theirs)) < 1e-4
    if key == "AcquisitionDateTime":
        return bool(ours[:11] == theirs[:11]) and _agrees("AcquisitionTime", ours[11:], theirs[11:])
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(
            _agrees(key, a, b) for a, b in zip(ours, theirs, strict=True)
        )
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-4, abs_tol=1e-9)
    return bool(ours == theirs)


@pytest.mark.slow
@pytest.mark.parametrize("series", sorted(SERIES))
def test_agrees_with_dcm2niix(series: str, corpus: Path, tmp_path: Path) -> None:
    folder = corpus / series
    if not folder.is_dir():
        skip_or_fail(f"corpus series {folder} not found (set DICOMVOL_CORPUS)")
    executable = _dcm2niix()
    subprocess.run(
        [executable, "-b", "o", "-ba", "n", "-f", "%s_%d", "-o", str(tmp_path), str(folder)],
        check=True,
        capture_output=True,
    )
    sidecars = sorted(tmp_path.glob("*.json"))
    assert len(sidecars) == 1, sidecars
    theirs = json.loads(sidecars[0].read_text())

    headers = []
    for path in sorted(folder.iterdir()):
        try:
            headers.append(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception:
            continue  # README, licence...
    ours = [
        bids_metadata(ds)
        for ds in headers
        if str(ds.get("SeriesInstanceUID", "")) == theirs["SeriesInstanceUID"]
    ]
    assert ours
    for meta in ours:
        assert all(_plain(value) for value in meta.values()), meta
        json.dumps(meta)

    compared, disagreements = set(), []
    for key in sorted(set().union(*ours) & set(theirs)):
        values = [meta[key] for meta in ours if key in meta]
        if key == "SeriesNumber" and values[0] == 0:
            continue  # dcm2niix replaces a zero series number by a hash of the UID
        # A value that differs between the files of a series (acquisition time, number,
        # ... of each PET bed) must be one of the files': dcm2niix reports one file's.
        if not any(_agrees(key, value, theirs[key]) for value in values):
            disagreements.append((key, values[:3], theirs[key]))
        compared.add(key)
    assert not disagreements
    assert SERIES[series] <= compared, SERIES[series] - compared

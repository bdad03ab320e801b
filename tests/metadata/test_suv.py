"""SUVbw scale factor: a hand computation on the real whole-body PET, and the QIBA rules.

The corpus PET (pet_wholebody_seg/image, Siemens, Units BQML, DecayCorrection
START) is checked against a computation written out step by step here from
the raw attribute strings, without dicomvol's parsing. Its per-image
DecayFactor (0054,1321) independently confirms the decay reference: it equals
exp(lambda * FrameReferenceTime), i.e. the scanner decay-corrected every frame
to the SeriesTime that the QIBA rule picks as scan start.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomvol.errors import HeaderError
from dicomvol.metadata.suv import SuvFactor, suv_bw_factor

#: Agreement of our factor with the hand computation.
FACTOR_RELATIVE_TOLERANCE = 1e-9
#: Max offset (s) between the decay reference implied by DecayFactor and SeriesTime
#: (the corpus series implies SeriesTime + 2.7 ms for every frame).
DECAY_REFERENCE_TOLERANCE_S = 0.01
#: Back-computed scan start against SeriesTime (s): FrameReferenceTime has 0.01 us digits.
SCAN_START_TOLERANCE_S = 1e-3

PET = "pet_wholebody_seg/image"


def _seconds(tm: str) -> float:
    """Seconds after midnight of a DICOM TM 'HHMMSS.FFFFFF' (written out by hand)."""
    return int(tm[0:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])


def _hand_factor(ds: pydicom.Dataset) -> float:
    """QIBA SUVbw factor, step by step, for a same-day BQML / START series."""
    weight_g = float(ds.PatientWeight) * 1000.0
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    injected_bq = float(rp.RadionuclideTotalDose)
    half_life_s = float(rp.RadionuclideHalfLife)
    scan_s = _seconds(str(ds.SeriesTime))  # SeriesTime is not after any AcquisitionTime
    injection_s = _seconds(str(rp.RadiopharmaceuticalStartTime))
    decay_s = scan_s - injection_s
    decayed_bq = injected_bq * math.exp(-math.log(2.0) * decay_s / half_life_s)
    return weight_g / decayed_bq


@pytest.fixture(scope="module")
def pet_headers(corpus: Path) -> list[tuple[Path, pydicom.Dataset]]:
    paths = sorted((corpus / PET).glob("*.dcm"))
    assert len(paths) == 545
    return [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in paths]


@pytest.mark.slow
def test_real_pet_factor_equals_hand_computation(
        pet_headers: list[tuple[Path, pydicom.Dataset]]) -> None:
    headers = [ds for _, ds in pet_headers]
    first = headers[0]
    assert str(first.Units) == "BQML" and str(first.DecayCorrection) == "START"
    # the preconditions of the hand computation: one date, SeriesTime <= every acquisition
    assert {str(ds.AcquisitionDate) for ds in headers} == {str(first.SeriesDate)}
    assert all(_seconds(str(first.SeriesTime)) <= _seconds(str(ds.AcquisitionTime))
               for ds in headers)
    expected = _hand_factor(first)
    for ds in headers[::50]:
        found = suv_bw_factor(ds)
        assert found.factor == pytest.approx(expected, rel=FACTOR_RELATIVE_TOLERANCE)
        assert found.inputs["ScanDateTimeSource"].startswith("SeriesDate/SeriesTime")
    with_series = suv_bw_factor(headers[300], series=headers)
    assert with_series.factor == pytest.approx(expected, rel=FACTOR_RELATIVE_TOLERANCE)
    assert with_series.inputs["AcquisitionTimesCompared"] == 545
    assert with_series.inputs["EarliestAcquisitionDateTime"] == "1988-09-13T10:27:31.687000"


def test_real_pet_voxel_suv(pet_headers: list[tuple[Path, pydicom.Dataset]]) -> None:
    """SUV = (SV * RescaleSlope + RescaleIntercept) * factor at sampled voxels."""
    hand = _hand_factor(pet_headers[0][1])
    for path, _ in pet_headers[::136]:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        factor = suv_bw_factor(ds).factor
        flat = np.argsort(stored, axis=None)
        for index in (flat[-1], flat[len(flat) // 2], flat[-len(flat) // 10]):
            ij = np.unravel_index(index, stored.shape)
            sv = int(stored[ij])
            expected = (sv * slope + intercept) * hand
            assert (sv * slope + intercept) * factor == pytest.approx(expected, rel=1e-9)
        suv = (stored * slope + intercept) * factor
        assert suv.min() >= 0.0 and 1.0 < suv.max() < 100.0  # plausible FDG SUVs


def test_decay_factor_confirms_series_time_reference(
        pet_headers: list[tuple[Path, pydicom.Dataset]]) -> None:
    """DecayFactor = exp(lambda * (FrameReferenceTime + offset)) with one tiny offset.

    ln(DecayFactor) / lambda is the time from the decay-correction reference to
    the frame's reference time; minus FrameReferenceTime (measured from the
    series reference) it gives the reference's offset from SeriesTime: the
    same few milliseconds for every frame, so the scanner decay-corrected to
    SeriesTime, the scan start that the QIBA rule picks.
    """
    offsets = []
    for _, ds in pet_headers[::5]:
        half_life = float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife)
        lam = math.log(2.0) / half_life
        offsets.append(math.log(float(ds.DecayFactor)) / lam
                       - float(ds.FrameReferenceTime) / 1000.0)
    assert max(abs(o) for o in offsets) < DECAY_REFERENCE_TOLERANCE_S
    assert max(offsets) - min(offsets) < 1e-6


def test_post_processed_series_time(pet_headers: list[tuple[Path, pydicom.Dataset]]) -> None:
    """SeriesTime after the acquisitions: the scan start comes from the frame timing."""
    original = pet_headers[400][1]
    reference = suv_bw_factor(original)
    ds = copy.deepcopy(original)
    ds.SeriesTime = "120000"
    moved = suv_bw_factor(ds)
    assert moved.inputs["ScanDateTimeSource"].startswith("AcquisitionDate/Time - Frame")
    assert abs(_seconds(moved.inputs["ScanDateTime"][11:].replace(":", "")) -
               _seconds(str(original.SeriesTime))) < SCAN_START_TOLERANCE_S
    assert moved.factor == pytest.approx(reference.factor, rel=1e-6)
    # without frame timing: the earliest acquisition of the series
    del ds.FrameReferenceTime
    series = [copy.deepcopy(h) for _, h in pet_headers[::20]]
    earliest = suv_bw_factor(ds, series=series)
    assert earliest.inputs["ScanDateTimeSource"] == ("earliest AcquisitionDate/AcquisitionTime "
                                                     "of the series")
    assert earliest.inputs["ScanDateTime"] == "1988-09-13T10:27:31.687000"
    # GE private scan start wins when present
    ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT",
                                                                  "19880913102000.000000")
    ge = suv_bw_factor(ds, series=series)
    assert ge.inputs["ScanDateTimeSource"].startswith("GE private")
    assert ge.inputs["ScanDateTime"] == "1988-09-13T10:20:00"


# --------------------------------------------------------------------------- synthetic


def _pet(**overrides: object) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = "70"
    ds.SeriesDate = "20200101"
    ds.SeriesTime = "100000"
    ds.AcquisitionDate = "20200101"
    ds.AcquisitionTime = "100000"
    rp = pydicom.Dataset()
    rp.RadiopharmaceuticalStartTime = "090000"
    rp.RadionuclideTotalDose = "370000000"
    rp.RadionuclideHalfLife = "6586.2"
    ds.RadiopharmaceuticalInformationSequence = [rp]
    for key, value in overrides.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return ds


def _expected(weight_kg: float, dose: float, decay_s: float, half_life: float = 6586.2) -> float:
    return weight_kg * 1000.0 / (dose * 2.0 ** (-decay_s / half_life))


def test_synthetic_start_factor() -> None:
    found = suv_bw_factor(_pet())
    assert found.factor == pytest.approx(_expected(70, 3.7e8, 3600), rel=1e-12)
    assert found.inputs["DecayTime_s"] == pytest.approx(3600.0, rel=1e-9)


def test_missing_or_invalid_weight() -> None:
    with pytest.raises(HeaderError, match="PatientWeight"):
        suv_bw_factor(_pet(PatientWeight=None))
    with pytest.raises(HeaderError, match="PatientWeight"):
        suv_bw_factor(_pet(PatientWeight="0"))


def test_admin_and_start_differ_by_the_decay_factor() -> None:
    start = suv_bw_factor(_pet())
    admin = suv_bw_factor(_pet(DecayCorrection="ADMIN"))
    assert admin.factor == pytest.approx(70_000 / 3.7e8, rel=1e-12)
    assert admin.inputs["DecayTime_s"] == pytest.approx(0.0, abs=1e-9)
    assert start.factor / admin.factor == pytest.approx(2.0 ** (3600 / 6586.2), rel=1e-12)
    assert start.factor * start.inputs["DoseDecayFactor"] == pytest.approx(admin.factor,
                                                                           rel=1e-12)


def test_midnight_crossing() -> None:
    ds = _pet(SeriesTime="000500", AcquisitionTime="000500")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "233000"
    found = suv_bw_factor(ds)
    assert found.inputs["InjectionDateTime"] == "2019-12-31T23:30:00"
    assert found.inputs["DecayTime_s"] == pytest.approx(35 * 60)
    assert found.factor == pytest.approx(_expected(70, 3.7e8, 35 * 60), rel=1e-12)


def test_start_datetime_takes_precedence() -> None:
    ds = _pet()
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    rp.RadiopharmaceuticalStartDateTime = "20200101093000.000000+0100"
    found = suv_bw_factor(ds)
    assert found.inputs["InjectionDateTimeSource"] == "RadiopharmaceuticalStartDateTime"
    assert found.inputs["DecayTime_s"] == pytest.approx(1800)
    rp.RadiopharmaceuticalStartDateTime = "20200101110000"
    with pytest.raises(HeaderError, match="after the scan start"):
        suv_bw_factor(ds)


def test_units_rules() -> None:
    assert suv_bw_factor(_pet(Units="GML")).factor == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(HeaderError, match="Units"):
        suv_bw_factor(_pet(Units="PROPCPS"))
    with pytest.raises(HeaderError, match="Units"):
        suv_bw_factor(_pet(Units=None))
    cnts = _pet(Units="CNTS")
    with pytest.raises(HeaderError, match="7053"):
        suv_bw_factor(cnts)
    block = cnts.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x09, "DS", "2.5")  # activity concentration scale: CNTS -> Bq/ml
    assert suv_bw_factor(cnts).factor == pytest.approx(2.5 * _expected(70, 3.7e8, 3600),
                                                       rel=1e-12)
    block.add_new(0x00, "DS", "0.000321")  # the SUV scale factor itself
    assert suv_bw_factor(cnts).factor == pytest.approx(0.000321)


def test_decay_correction_and_corrections() -> None:
    with pytest.raises(HeaderError, match="DecayCorrection"):
        suv_bw_factor(_pet(DecayCorrection="NONE"))
    with pytest.raises(HeaderError, match="DecayCorrection"):
        suv_bw_factor(_pet(DecayCorrection=None))
    with pytest.raises(HeaderError, match="ATTN"):
        suv_bw_factor(_pet(CorrectedImage=["DECY", "SCAT"]))
    with pytest.raises(HeaderError, match="DECY"):
        suv_bw_factor(_pet(CorrectedImage="ATTN"))


def test_missing_corrected_image_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dicomvol.metadata.suv"):
        found = suv_bw_factor(_pet(CorrectedImage=None))
    assert found.inputs["CorrectedImage"] is None
    assert "CorrectedImage" in caplog.text


def test_missing_dose_half_life_and_times() -> None:
    ds = _pet()
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife
    with pytest.raises(HeaderError, match="RadionuclideHalfLife"):
        suv_bw_factor(ds)
    ds = _pet()
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "0"
    with pytest.raises(HeaderError, match="RadionuclideTotalDose"):
        suv_bw_factor(ds)
    ds = _pet()
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime
    with pytest.raises(HeaderError, match="RadiopharmaceuticalStartTime"):
        suv_bw_factor(ds)
    with pytest.raises(HeaderError, match="SeriesDate/SeriesTime"):
        suv_bw_factor(_pet(SeriesTime=None))
    with pytest.raises(HeaderError, match="RadiopharmaceuticalInformationSequence"):
        suv_bw_factor(_pet(RadiopharmaceuticalInformationSequence=None))


def test_to_json_round_trips() -> None:
    found = suv_bw_factor(_pet())
    data = json.loads(json.dumps(found.to_json()))
    assert data["SUVbwScaleFactor"] == found.factor
    assert data["Unit"] == "g/ml"
    assert data["Inputs"]["PatientWeight_kg"] == pytest.approx(70.0, rel=1e-9)
    assert data["Inputs"]["RadionuclideTotalDose_Bq"] == pytest.approx(3.7e8, rel=1e-9)
    assert isinstance(SuvFactor(1.0, {}).to_json()["Inputs"], dict)

"""PET body-weight SUV (SUVbw) scale factor, following the QIBA vendor-neutral pseudo-code.

``SUVbw = (RescaleSlope * SV + RescaleIntercept) * factor`` for every stored
pixel value SV, where ``factor`` is :attr:`SuvFactor.factor`. The rules are
those of the QIBA FDG-PET/CT profile, Appendix G ("Vendor-neutral
pseudo-codes for SUV calculation"), with the additions its text suggests:

1. **Units (0054,1001)**

   * ``BQML``: values are Bq/ml; factor = weight [g] / decayed dose [Bq].
   * ``CNTS`` (Philips): factor = Philips private "SUV Scale Factor"
     (7053,1000) of creator ``Philips PET Private Group``. Without it, the
     private "Activity Concentration Scale Factor" (7053,1009) turns the
     rescaled counts into Bq/ml and the BQML rule is applied on top (factor =
     (7053,1009) * weight / decayed dose). Without either: error.
   * ``GML``: values are already SUVbw (g/ml); factor = 1.
   * anything else: error.

   GML and the Philips (7053,1000) factor are returned as they are; rules 2
   to 6 apply to the factors computed here (BQML, and CNTS via (7053,1009)).

2. **Corrections.** QIBA requires CorrectedImage (0028,0051) to contain
   ``ATTN`` and ``DECY`` (``DECAY`` is accepted). If CorrectedImage is present
   and lacks either: error. If it is absent the computation proceeds with a
   logged warning (recorded in the inputs).

3. **DecayCorrection (0054,1102)**

   * ``START``: the pixel values are decay corrected to the scan start, so the
     injected dose is decayed from the injection to the scan start:
     ``decayed = dose * 2 ** (-(scan - injection) / half_life)``.
   * ``ADMIN``: the values are decay corrected to the administration time,
     so the dose is used as is (no decay; decay time 0).
   * ``NONE`` (or anything else): error. Uncorrected values would need a
     per-frame decay to each frame's own time, which QIBA does not define.

4. **Scan start** (START only). The series reference time is
   SeriesDate/SeriesTime (0008,0021)/(0008,0031). QIBA: use it when it is not
   after the earliest AcquisitionDate/AcquisitionTime (0008,0022)/(0008,0032)
   of the series (pass every header of the series as ``series``; without it
   the data set's own acquisition time is the only one compared). Otherwise
   the series was probably post-processed and re-dated, and, in QIBA's order:

   a. the GE private scan start (0009,xx0D) of creator ``GEMS_PETD_01``;
   b. the frame start back-computed from the data set's AcquisitionDate/Time,
      FrameReferenceTime (0054,1300) and ActualFrameDuration (0018,1242):
      ``scan = acquisition - FrameReferenceTime + t_avg``, with
      ``t_avg = ln(x / (1 - exp(-x))) / lambda``, ``x = lambda * duration``,
      ``lambda = ln 2 / half_life`` (the time of the average count rate
      within the frame, QIBA's "reliable in all cases" alternative);
   c. the earliest acquisition date/time.

5. **Injection time.** RadiopharmaceuticalStartDateTime (0018,1078) when
   present; else RadiopharmaceuticalStartTime (0018,1072) on the scan date,
   moved to the previous day when that would put it after the scan start
   (injection before midnight, scan after it). A decay time that is still
   negative is an error.

6. **Dose and weight.** RadionuclideTotalDose (0018,1074) in Bq and
   RadionuclideHalfLife (0018,1075) in s, from the first item of
   RadiopharmaceuticalInformationSequence (0054,0016); PatientWeight
   (0010,1030) in kg. Each must be present and > 0. The dose is not
   corrected for residual activity (QIBA ignores it too).

Times: DICOM TM/DA/DT strings; a UTC offset in a DT is ignored (all times
are taken as local times of the scanner, which is what TM and DA are).
Every input and intermediate result is recorded in :attr:`SuvFactor.inputs`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pydicom

from dicomvol.dicom.private import private_value
from dicomvol.dicom.values import parse_da, parse_dt, parse_tm, to_float, to_str
from dicomvol.errors import HeaderError

log = logging.getLogger(__name__)

#: Philips PET private creator (group 7053).
PHILIPS_PET_CREATOR = "Philips PET Private Group"
#: (7053,xx00): Philips SUV scale factor (CNTS -> SUVbw).
PHILIPS_SUV_OFFSET = 0x00
#: (7053,xx09): Philips activity concentration scale factor (CNTS -> Bq/ml).
PHILIPS_ACTIVITY_OFFSET = 0x09
#: GE PET private creator (group 0009).
GE_PET_CREATOR = "GEMS_PETD_01"
#: (0009,xx0D): GE private scan start date/time.
GE_SCAN_DATETIME_OFFSET = 0x0D
#: Grams per kilogram.
GRAMS_PER_KG = 1000.0
#: Milliseconds per second (FrameReferenceTime and ActualFrameDuration are in ms).
MS_PER_S = 1000.0
#: Corrections that CorrectedImage must list (alternatives per entry).
REQUIRED_CORRECTIONS = (("ATTN",), ("DECY", "DECAY"))

@dataclass(frozen=True)
class SuvFactor:
    """The SUVbw scale factor of a PET series and everything it was computed from.

    Attributes
    ----------
    factor : float
        Multiply the modality value (RescaleSlope * SV + RescaleIntercept, in
        the series' Units: Bq/ml for BQML) by this to get SUVbw in g/ml.
    inputs : dict
        Every attribute used and every intermediate value, JSON-ready (str,
        float, list or None): Units, PatientWeight_kg, RadionuclideTotalDose_Bq,
        RadionuclideHalfLife_s, injection and scan date/times with the rule
        that chose them, DecayCorrection, decay time and dose decay factor.
    """

    factor: float
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict: ``{"SUVbwScaleFactor", "Unit", "Method", "Inputs"}``."""
        return {
            "SUVbwScaleFactor": self.factor,
            "Unit": "g/ml",
            "Method": "QIBA FDG-PET/CT profile, Appendix G vendor-neutral SUVbw pseudo-code",
            "Inputs": dict(self.inputs),
        }


def _missing(name: str, why: str = "missing") -> HeaderError:
    return HeaderError(f"cannot compute SUV: {name} {why}")


def _date_time(ds: Any, date_kw: str, time_kw: str,
               default_date: date | None = None) -> datetime | None:
    t = parse_tm(ds.get(time_kw))
    d = parse_da(ds.get(date_kw)) or default_date
    if t is None or d is None:
        return None
    return datetime.combine(d, t)


def _acquisition_datetime(ds: Any, default_date: date | None) -> datetime | None:
    found = _date_time(ds, "AcquisitionDate", "AcquisitionTime", default_date)
    return found if found is not None else parse_dt(ds.get("AcquisitionDateTime"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _positive(value: Any, name: str) -> float:
    number = to_float(value)
    if number is None:
        raise _missing(name)
    if not math.isfinite(number) or number <= 0:
        raise _missing(name, f"is not a positive number ({number})")
    return number


def _check_corrections(ds: pydicom.Dataset, inputs: dict[str, Any]) -> None:
    elem = ds.get("CorrectedImage")
    if elem is None:
        inputs["CorrectedImage"] = None
        log.warning("PET series without CorrectedImage (0028,0051): assuming attenuation and "
                    "decay corrected, as QIBA requires")
        return
    values = [elem] if isinstance(elem, str) else list(elem)
    flags = [str(v).strip().upper() for v in values]
    inputs["CorrectedImage"] = flags
    for alternatives in REQUIRED_CORRECTIONS:
        if not any(a in flags for a in alternatives):
            raise _missing("CorrectedImage", f"lacks {alternatives[0]} (has {flags})")


def _philips_cnts(ds: pydicom.Dataset, inputs: dict[str, Any]) -> tuple[float | None, float]:
    """(direct SUV factor or None, multiplier to Bq/ml) for Philips CNTS images."""
    suv = to_float(private_value(ds, 0x7053, PHILIPS_PET_CREATOR, PHILIPS_SUV_OFFSET))
    if suv is not None and suv > 0:
        inputs["PhilipsSUVScaleFactor_7053_1000"] = suv
        return suv, 1.0
    activity = to_float(private_value(ds, 0x7053, PHILIPS_PET_CREATOR, PHILIPS_ACTIVITY_OFFSET))
    if activity is not None and activity > 0:
        inputs["PhilipsActivityConcentrationScaleFactor_7053_1009"] = activity
        return None, activity
    raise _missing("Units CNTS", "without the Philips private SUV scale factor (7053,1000) or "
                   "activity concentration scale factor (7053,1009)")


def _radiopharmaceutical(ds: pydicom.Dataset) -> pydicom.Dataset:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if seq is None or len(seq) == 0:
        raise _missing("RadiopharmaceuticalInformationSequence")
    if len(seq) > 1:
        log.warning("RadiopharmaceuticalInformationSequence has %d items; using the first",
                    len(seq))
    item: pydicom.Dataset = seq[0]
    return item


def _average_count_time_s(duration_s: float, half_life_s: float) -> float:
    """Time after a frame's start of its average count rate (QIBA), in seconds."""
    lam = math.log(2.0) / half_life_s
    x = lam * duration_s
    if x <= 0:
        return 0.0
    return math.log(x / (1.0 - math.exp(-x))) / lam


def _scan_datetime(ds: pydicom.Dataset, series: Sequence[Any] | None,
                   half_life_s: float, inputs: dict[str, Any]) -> datetime:
    series_dt = _date_time(ds, "SeriesDate", "SeriesTime")
    if series_dt is None:
        raise _missing("SeriesDate/SeriesTime")
    acquisitions = [a for a in (_acquisition_datetime(x, series_dt.date())
                                for x in (series if series else [ds])) if a is not None]
    earliest = min(acquisitions) if acquisitions else None
    inputs["SeriesDateTime"] = _iso(series_dt)
    inputs["EarliestAcquisitionDateTime"] = _iso(earliest)
    inputs["AcquisitionTimesCompared"] = len(acquisitions)
    if earliest is None or series_dt <= earliest:
        inputs["ScanDateTimeSource"] = "SeriesDate/SeriesTime (not after the earliest acquisition)"
        return series_dt
    log.info("SeriesDate/Time %s is after the earliest acquisition %s: post-processed series",
             series_dt, earliest)
    ge = parse_dt(private_value(ds, 0x0009, GE_PET_CREATOR, GE_SCAN_DATETIME_OFFSET))
    if ge is not None:
        inputs["ScanDateTimeSource"] = "GE private scan date/time (0009,100D)"
        return ge
    own = _acquisition_datetime(ds, series_dt.date())
    ref_ms = to_float(ds.get("FrameReferenceTime"))
    dur_ms = to_float(ds.get("ActualFrameDuration"))
    if own is not None and ref_ms is not None and dur_ms is not None and ref_ms > 0 and dur_ms > 0:
        t_avg = _average_count_time_s(dur_ms / MS_PER_S, half_life_s)
        inputs["FrameReferenceTime_ms"] = ref_ms
        inputs["ActualFrameDuration_ms"] = dur_ms
        inputs["AverageCountRateTimeInFrame_s"] = t_avg
        inputs["ScanDateTimeSource"] = ("AcquisitionDate/Time - FrameReferenceTime + average "
                                        "count rate time within the frame (QIBA)")
        return own - timedelta(seconds=ref_ms / MS_PER_S) + timedelta(seconds=t_avg)
    inputs["ScanDateTimeSource"] = "earliest AcquisitionDate/AcquisitionTime of the series"
    return earliest


def _injection_datetime(rp: pydicom.Dataset, scan: datetime, inputs: dict[str, Any]) -> datetime:
    start_dt = parse_dt(rp.get("RadiopharmaceuticalStartDateTime"))
    if start_dt is not None:
        inputs["InjectionDateTimeSource"] = "RadiopharmaceuticalStartDateTime"
        return start_dt
    start_t = parse_tm(rp.get("RadiopharmaceuticalStartTime"))
    if start_t is None:
        raise _missing("RadiopharmaceuticalStartTime (and RadiopharmaceuticalStartDateTime)")
    start = datetime.combine(scan.date(), start_t)
    if start > scan:
        start -= timedelta(days=1)
        inputs["InjectionDateTimeSource"] = ("RadiopharmaceuticalStartTime on the day before the "
                                             "scan (midnight crossing)")
        log.info("injection time %s after scan start %s: taken on the previous day",
                 start_t, scan)
    else:
        inputs["InjectionDateTimeSource"] = "RadiopharmaceuticalStartTime on the scan date"
    return start


def suv_bw_factor(ds: pydicom.Dataset, *,
                  series: Sequence[Any] | None = None) -> SuvFactor:
    """Body-weight SUV scale factor of a PET image (see the module docstring for the rules).

    Parameters
    ----------
    ds : pydicom.Dataset
        A PET image header (pixel data not needed).
    series : sequence of mappings, optional
        For QIBA's comparison of SeriesTime with the earliest AcquisitionTime:
        every header of the series, or anything with ``get(keyword)`` for
        AcquisitionDate, AcquisitionTime and AcquisitionDateTime (the planner's
        frame records hold them, so no header is read again). Without it only
        ``ds``'s own acquisition time is compared.

    Returns
    -------
    SuvFactor

    Raises
    ------
    dicomvol.errors.HeaderError
        When an attribute the rules need is missing or invalid; the message
        names it (e.g. "cannot compute SUV: PatientWeight missing").
    """
    units = to_str(ds.get("Units")).upper()
    if not units:
        raise _missing("Units (0054,1001)")
    inputs: dict[str, Any] = {"Units": units}
    if units == "GML":
        inputs["Rule"] = "Units GML: values are already SUVbw"
        return SuvFactor(1.0, inputs)
    bq_per_unit = 1.0
    if units == "CNTS":
        direct, bq_per_unit = _philips_cnts(ds, inputs)
        if direct is not None:
            inputs["Rule"] = "Units CNTS: Philips private SUV scale factor"
            weight = to_float(ds.get("PatientWeight"))
            inputs["PatientWeight_kg"] = weight
            return SuvFactor(direct, inputs)
    elif units != "BQML":
        raise _missing("Units", f"is {units!r}; SUVbw needs BQML, CNTS (Philips) or GML")

    weight_kg = _positive(ds.get("PatientWeight"), "PatientWeight")
    inputs["PatientWeight_kg"] = weight_kg
    _check_corrections(ds, inputs)
    rp = _radiopharmaceutical(ds)
    dose = _positive(rp.get("RadionuclideTotalDose"), "RadionuclideTotalDose")
    half_life = _positive(rp.get("RadionuclideHalfLife"), "RadionuclideHalfLife")
    inputs["RadionuclideTotalDose_Bq"] = dose
    inputs["RadionuclideHalfLife_s"] = half_life
    decay_correction = to_str(ds.get("DecayCorrection")).upper()
    inputs["DecayCorrection"] = decay_correction or None
    if decay_correction == "START":
        scan = _scan_datetime(ds, series, half_life, inputs)
        injection = _injection_datetime(rp, scan, inputs)
        decay_s = (scan - injection).total_seconds()
        inputs["ScanDateTime"] = _iso(scan)
        inputs["InjectionDateTime"] = _iso(injection)
        if decay_s < 0:
            raise _missing("RadiopharmaceuticalStartDateTime",
                           f"is after the scan start ({injection} > {scan})")
        dose_decay = 2.0 ** (-decay_s / half_life)
        inputs["Rule"] = "DecayCorrection START: dose decayed from injection to scan start"
    elif decay_correction == "ADMIN":
        decay_s = 0.0
        dose_decay = 1.0
        inputs["Rule"] = "DecayCorrection ADMIN: values decay corrected to injection, no decay"
    elif decay_correction == "":
        raise _missing("DecayCorrection (0054,1102)")
    else:
        raise _missing("DecayCorrection", f"is {decay_correction!r}; SUVbw needs START or "
                       "ADMIN (values not decay corrected)")
    decayed = dose * dose_decay
    factor = weight_kg * GRAMS_PER_KG / decayed * bq_per_unit
    inputs["DecayTime_s"] = decay_s
    inputs["DoseDecayFactor"] = dose_decay
    inputs["DecayedDose_Bq"] = decayed
    image_decay = to_float(ds.get("DecayFactor"))
    inputs["ImageDecayFactor_0054_1321_informational"] = image_decay
    return SuvFactor(factor, inputs)

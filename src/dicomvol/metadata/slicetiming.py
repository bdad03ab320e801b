"""BIDS ``SliceTiming``: when each slice of a volume was acquired, as dcm2niix writes it.

:func:`slice_timing` returns, for each slice k of a plan's output volume (k ascending
along the slice normal, as in :class:`~dicomvol.model.plan.VolumePlan`), the acquisition
time of that slice relative to the start of the volume, in seconds, rounded like
dcm2niix's JSON (``%g``: 6 significant digits). None when the times cannot be
determined reliably.

Sources, tried in order (checked against dcm2niix v1.0.20260724 on the corpus,
``tests/test_slicetiming.py``):

1. Siemens MOSAIC: the CSA image header field ``MosaicRefAcqTimes`` (ms, one per
   tile, tile order). dcm2niix reads the first volume, and, like it, when a second
   volume exists whose time range (max - min) differs from the first volume's, the
   second volume's times are used instead: the first volume of some (multiband)
   series is known to carry wrong times (single-band times, or times wrapped past
   midnight; dcm2niix issues 870, 875, CMRR-C2P/MB issue 29). A remaining midnight
   wrap (a range over half a day) is undone by subtracting 24 h from the late
   times, and the times are made relative to the earliest.
2. GE: the protocol data block (0025,101B) (gzip-compressed text) gives
   ``SLICEORDER`` (0 sequential, 1 interleaved) and ``TR``; slices are acquired in
   InstanceNumber order (from the first scan location), one every
   (TR - delay after slice group (0043,107C)) / number of slices; interleaved is
   every other slice from the first, then the rest. Only for 2D EPI without
   multiband (multiband GE timing is not verified here). Without the block: None
   (dcm2niix writes none either).
3. Otherwise: the per-slice ``AcquisitionTime`` of single-frame slices, or the
   per-frame ``FrameAcquisitionDateTime`` of enhanced multi-frame objects (both are
   ``FrameRecord.acquisition_time``) of the first volume, relative to the earliest,
   when they differ and span less than the repetition time.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomvol.dicom.cache import JobSources
from dicomvol.dicom.private import csa_header, csa_items
from dicomvol.dicom.values import first_item, tm_ms, to_float, vendor
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord

if TYPE_CHECKING:  # pragma: no cover - a header is a pydicom Dataset or a LeanDataset
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

_HALF_DAY_MS = 43_200_000.0
_DAY_MS = 86_400_000.0
#: Time ranges closer than this (ms) count as equal (CSA times are multiples of 2.5 ms).
_RANGE_TOLERANCE_MS = 1e-3
_GE_PDB = (0x0025, 0x101B)
_GE_GROUP_DELAY = (0x0043, 0x107C)


def slice_timing(plan: VolumePlan, sources: JobSources | None = None) -> list[float] | None:
    """Acquisition time (s) of each slice k of ``plan`` relative to the volume start.

    Headers come from ``sources``, the job's file cache (each file is parsed at
    most once per job). Returns None for non-MR or single-slice plans and when
    no source gives reliable times (see the module docstring). Never raises for
    bad headers: problems are logged and give None.
    """
    memo = sources if sources is not None else JobSources()
    first = plan.first
    volume = plan.frames[0]
    if first.modality != "MR" or len(volume) < 2:
        return None
    try:
        if first.tile is not None:
            ms = _mosaic_times(plan, memo)
        else:
            ds = _header(first.path, memo)
            ms = _ge_times(volume, ds) if _is_ge(ds) else _acquisition_times(volume, ds)
    except Exception as exc:  # odd private headers must cost the timing only
        log.warning("%s: slice timing not determined: %s: %s", first.rel,
                    type(exc).__name__, exc)
        return None
    if ms is None:
        return None
    return [round_g(t / 1000.0) for t in ms]


def _header(path: str, memo: JobSources) -> Any:
    """The header of ``path`` from the job's cache (first frame's groups: all that is read)."""
    return memo.first_frame_header(path)


def round_g(value: float) -> float:
    """Round like C's ``%g`` (6 significant digits), as dcm2niix prints JSON numbers."""
    rounded = float(f"{value:.6g}")
    return rounded + 0.0  # no -0.0


# --- Siemens mosaic ---------------------------------------------------------------------


def _mosaic_times(plan: VolumePlan, memo: JobSources) -> list[float] | None:
    volume = plan.frames[0]
    times = _csa_times(volume[0], memo)
    if times is None:
        return None
    if len(plan.frames) > 1 and plan.frames[1][0].tile is not None:
        second = _csa_times(plan.frames[1][0], memo)
        if second is not None and len(second) == len(times) and (
                abs(_span(second) - _span(times)) > _RANGE_TOLERANCE_MS):
            log.info("%s: MosaicRefAcqTimes span %g ms in the first volume but %g ms in "
                        "the second; using the second (the first volume of some series "
                        "carries wrong times)", volume[0].rel, _span(times), _span(second))
            times = second
    times = _unwrap_midnight(times)
    tiles = [f.tile for f in volume]
    if any(t is None or not 1 <= t <= len(times) for t in tiles):
        log.warning("%s: %d MosaicRefAcqTimes do not cover tiles %s", volume[0].rel,
                    len(times), tiles)
        return None
    start = min(times)
    _check_span(volume[0], times, _repetition_time_ms(_header(volume[0].path, memo)))
    return [times[t - 1] - start for t in tiles if t is not None]


def _csa_times(frame: FrameRecord, memo: JobSources) -> list[float] | None:
    csa = csa_header(_header(frame.path, memo), "image")
    if not csa:
        log.info("%s: no CSA image header: no slice timing", frame.rel)
        return None
    items = csa_items(csa, "MosaicRefAcqTimes")
    if not items:
        log.info("%s: CSA header has no MosaicRefAcqTimes: no slice timing", frame.rel)
        return None
    values = [float(v) for v in items]
    if not all(math.isfinite(v) for v in values):
        return None
    return values


def _span(values: Sequence[float]) -> float:
    return max(values) - min(values)


def _unwrap_midnight(times: list[float]) -> list[float]:
    """Times that wrap past midnight (a span over half a day) lose 24 h on the late side."""
    if _span(times) <= _HALF_DAY_MS:
        return times
    log.info("slice times wrap past midnight (span %g ms); subtracting 24 h from the "
                "late ones", _span(times))
    return [t - _DAY_MS if t > _HALF_DAY_MS else t for t in times]


def _check_span(frame: FrameRecord, times: Sequence[float], tr_ms: float | None) -> None:
    if tr_ms is not None and _span(times) > tr_ms:
        log.warning("%s: slice times span %g ms, more than the repetition time %g ms",
                    frame.rel, _span(times), tr_ms)


def _repetition_time_ms(ds: Dataset) -> float | None:
    """RepetitionTime (ms): top level, else the enhanced MR timing functional group."""
    candidates: list[Any] = [ds.get("RepetitionTime")]
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        timing = first_item(first_item(ds, group), "MRTimingAndRelatedParametersSequence")
        if timing is not None:
            candidates.append(timing.get("RepetitionTime"))
    for candidate in candidates:
        value = _number(candidate)
        if value is not None and value > 0:
            return value
    return None


# --- GE ---------------------------------------------------------------------------------


def _is_ge(ds: Dataset) -> bool:
    return vendor(ds) == "GE"


def ge_protocol_block(ds: Dataset) -> dict[str, str] | None:
    """The GE protocol data block (0025,101B) as KEY -> value text, or None when absent.

    The value is a 4-byte length followed by a gzip stream of ``KEY "value"`` lines.
    """
    element = ds.get(_GE_PDB)
    raw = element.value if element is not None else None
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    try:
        text = gzip.decompress(raw[4:]).decode("latin-1")
    except (OSError, EOFError, zlib.error):
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r'\s*(\S+)\s+"(.*)"\s*$', line)
        if match:
            out[match.group(1).upper()] = match.group(2)
    return out


def _ge_times(volume: Sequence[FrameRecord], ds: Dataset) -> list[float] | None:
    pdb = ge_protocol_block(ds)
    if pdb is None:
        log.info("%s: GE without protocol data block (0025,101B): no slice timing",
                 volume[0].rel)
        return None
    order = pdb.get("SLICEORDER")
    if order not in ("0", "1"):
        return None
    if pdb.get("IMODE", "2D").upper() != "2D" or "EP" not in _scanning_sequence(ds):
        log.info("%s: GE slice timing only for 2D EPI", volume[0].rel)
        return None
    for key, value in pdb.items():
        if ("MB" in key or "HYPERBAND" in key) and _number(value) not in (None, 0.0, 1.0):
            log.info("%s: GE multiband (%s %s): slice timing not determined", volume[0].rel,
                     key, value)
            return None
    tr = _number(pdb.get("TR")) or _repetition_time_ms(ds)
    if tr is None or tr <= 0:
        return None
    delay = _number(ds.get(_GE_GROUP_DELAY).value if ds.get(_GE_GROUP_DELAY) else None) or 0.0
    instances = [f.instance_number for f in volume]
    if any(n is None for n in instances) or len(set(instances)) != len(instances):
        log.info("%s: GE slices without distinct InstanceNumber: no slice timing",
                 volume[0].rel)
        return None
    n = len(volume)
    step = (tr - delay) / n
    # acquisition sequence: slice indices in InstanceNumber order (first scan location first)
    by_instance = sorted(range(n), key=lambda k: instances[k] or 0)
    positions = list(range(n))
    if order == "1":  # interleaved: 1st, 3rd, 5th, ... then 2nd, 4th, ...
        positions = positions[0::2] + positions[1::2]
    times = [0.0] * n
    for shot, pos in enumerate(positions):
        times[by_instance[pos]] = shot * step
    return times


def _scanning_sequence(ds: Dataset) -> list[str]:
    value = ds.get("ScanningSequence")
    if value is None:
        return []
    parts = value.split("\\") if isinstance(value, str) else list(value)
    return [str(p).strip().upper() for p in parts]


def _number(value: Any) -> float | None:
    """A finite number from a header or protocol value, else None."""
    number = to_float(value)
    return number if number is not None and math.isfinite(number) else None


# --- AcquisitionTime / FrameAcquisitionDateTime -----------------------------------------


def _acquisition_times(volume: Sequence[FrameRecord], ds: Dataset) -> list[float] | None:
    parsed = [tm_ms(f.acquisition_time) for f in volume]
    if any(t is None for t in parsed):
        return None
    times = _unwrap_midnight([t for t in parsed if t is not None])
    if _span(times) <= 0:
        return None
    tr = _repetition_time_ms(ds)
    if tr is None or _span(times) >= tr:
        log.info("%s: acquisition times span %g ms, not within one repetition time (%s ms): "
                 "no slice timing", volume[0].rel, _span(times), tr)
        return None
    start = min(times)
    return [t - start for t in times]

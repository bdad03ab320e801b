"""The DICOM vocabulary, once: tolerant value access, number coercion, DA/TM/DT, vendors.

Every module that reads a header value goes through these helpers, so a
malformed value (empty, multi-valued where one is expected, raw bytes of an
element read without a known VR) is handled the same way everywhere: the
helper returns None instead of raising.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, cast

from dicomvol.dicom.fgroups import FrameItem

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported where a file needs it
    from pydicom.dataset import Dataset

# --- sequences and functional groups -----------------------------------------------------


def first_item(ds: Any, keyword: str) -> Dataset | None:
    """The first item of sequence ``keyword`` in ``ds``, or None (absent, empty, not a sequence)."""
    if ds is None:
        return None
    try:
        seq = ds.get(keyword)
    except Exception:  # pydicom raises on some malformed elements when they are accessed
        return None
    if not seq or isinstance(seq, str | bytes):
        return None
    try:
        item = seq[0]
    except (IndexError, TypeError, KeyError):
        return None
    if isinstance(item, FrameItem):  # read by dicom/fgroups.py: the same get / in surface
        return cast("Dataset", item)
    return item if is_dataset(item) else None


def is_dataset(value: Any) -> bool:
    """Whether ``value`` is a data set: a pydicom ``Dataset`` (never, while pydicom is not
    imported, so asking does not import it) or a :class:`~dicomvol.dicom.leands.LeanDataset`."""
    return bool(getattr(type(value), "lean_dataset", False)) or is_pydicom_dataset(value)


def is_pydicom_dataset(value: Any) -> bool:
    """Whether ``value`` is a pydicom ``Dataset`` (never, while pydicom is not imported)."""
    module = sys.modules.get("pydicom.dataset")
    return module is not None and isinstance(value, module.Dataset)


def functional_group(frame_fg: Dataset | None, shared: Dataset | None,
                     keyword: str) -> Dataset | None:
    """A functional group macro item of one frame: per-frame first, then shared."""
    return first_item(frame_fg, keyword) or first_item(shared, keyword)


# --- numbers and text --------------------------------------------------------------------


def to_float(value: Any) -> float | None:
    """A float from a DICOM value: number, numeric string, first of several, or raw bytes.

    Raw bytes (an element read without a known VR) are decoded as a numeric
    string when printable, else as a little-endian FL (4 bytes) or FD (8 bytes).
    None for anything else.
    """
    kind = type(value)
    if kind is float or kind is int:  # the common cases first: this runs per frame
        return float(value)
    if value is None:
        return None
    if kind is str:
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        text = raw.rstrip(b"\x00 ").decode("ascii", errors="ignore")
        try:
            return float(text.split("\\")[0])
        except ValueError:
            pass
        if len(raw) == 4:
            return float(struct.unpack("<f", raw)[0])
        if len(raw) == 8:
            return float(struct.unpack("<d", raw)[0])
        return None
    if isinstance(value, str):
        try:
            return float(value.split("\\")[0])
        except ValueError:
            return None
    if isinstance(value, Sequence):  # MultiValue and lists: the first value
        return to_float(value[0]) if len(value) > 0 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_int(value: Any) -> int | None:
    """An integer from a DICOM value (IS, DS, numbers; the first of several), or None."""
    if type(value) is int:
        return value
    number = to_float(value)
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number)


def to_floats(value: Any, n: int) -> tuple[float, ...] | None:
    """Exactly ``n`` floats from a multi-valued element, a list, text or raw bytes; else None."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        text = raw.rstrip(b"\x00 ").decode("ascii", errors="ignore")
        parts: Any = text.split("\\")
        if len(parts) != n:
            if len(raw) == 8 * n:
                return struct.unpack(f"<{n}d", raw)
            if len(raw) == 4 * n:
                return tuple(float(v) for v in struct.unpack(f"<{n}f", raw))
            return None
        value = parts
    elif isinstance(value, str):
        value = value.split("\\")
    try:
        values = tuple(map(float, value))
    except (TypeError, ValueError):
        return None
    return values if len(values) == n else None


def to_str(value: Any) -> str:
    """Text of a value, stripped ("" for None)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1").strip("\x00 ")
    return str(value).strip()


def to_strs(value: Any) -> tuple[str, ...]:
    """The upper-case values of a multi-valued code string (e.g. ImageType)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(p.strip().upper() for p in value.split("\\"))
    try:
        return tuple(str(v).strip().upper() for v in value)
    except TypeError:
        return (str(value).strip().upper(),)


# --- DA / TM / DT ------------------------------------------------------------------------

_DA = re.compile(r"^(\d{4})[.-]?(\d{2})[.-]?(\d{2})$")
_TM = re.compile(r"^(\d{2}):?(\d{2})?:?(\d{2})?(?:\.(\d+))?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")


def split_tm(value: Any) -> tuple[int, int, int, str] | None:
    """A TM value (``HHMMSS.FFFFFF``, legacy ``HH:MM:SS.frac``) as (hh, mm, ss, fraction digits).

    The fields are not range-checked (callers decide); None when the text is not a TM.
    """
    match = _TM.match(to_str(value))
    if match is None:
        return None
    hh, mm, ss, frac = match.groups()
    return int(hh), int(mm or 0), int(ss or 0), frac or ""


def parse_da(value: Any) -> date | None:
    """A DICOM DA (``YYYYMMDD``; legacy ``YYYY.MM.DD``, ``YYYY-MM-DD``) as a date, or None."""
    m = _DA.match(to_str(value))
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_tm(value: Any) -> time | None:
    """A DICOM TM string as a time (microseconds: the first 6 fraction digits), or None."""
    parts = split_tm(value)
    if parts is None:
        return None
    hh, mm, ss, frac = parts
    try:
        return time(hh, mm, ss, int(frac[:6].ljust(6, "0")))
    except ValueError:
        return None


def parse_dt(value: Any) -> datetime | None:
    """A DICOM DT string as a naive datetime (any UTC offset is dropped), or None."""
    m = _DT.match(to_str(value))
    if not m:
        return None
    frac = (m[7] or "").ljust(6, "0")
    try:
        return datetime(int(m[1]), int(m[2] or 1), int(m[3] or 1), int(m[4] or 0),
                        int(m[5] or 0), int(m[6] or 0), int(frac or 0))
    except ValueError:
        return None


def tm_ms(value: Any) -> float | None:
    """A DICOM TM in milliseconds after midnight (all fraction digits kept), or None."""
    parts = split_tm(value)
    if parts is None:
        return None
    hh, mm, ss, frac = parts
    total = hh * 3600 + mm * 60 + ss
    return (total + (float("0." + frac) if frac else 0.0)) * 1000.0


# --- vendors -----------------------------------------------------------------------------

#: Manufacturer short names by the first two letters of (0008,0070), as dcm2niix names them.
VENDORS: dict[str, str] = {
    "SI": "Siemens", "GE": "GE", "PH": "Philips", "TO": "Toshiba", "CA": "Canon",
    "HI": "Hitachi", "UI": "UIH", "BR": "Bruker", "ME": "Mediso", "MR": "MRSolutions",
    "HY": "Hyperfine", "LE": "Leica",
}  # fmt: skip


def vendor(manufacturer: Any) -> str:
    """The manufacturer's short name (``"Siemens"``, ``"GE"``, ``"Philips"``, ...).

    ``manufacturer`` is a Manufacturer value or a data set holding one. The rule
    is dcm2niix's (the first two letters); an unknown manufacturer is returned
    as written, and a missing one as ``""``.
    """
    if hasattr(manufacturer, "get"):
        manufacturer = manufacturer.get("Manufacturer")
    text = to_str(manufacturer)
    return VENDORS.get(text[:2].upper(), text)

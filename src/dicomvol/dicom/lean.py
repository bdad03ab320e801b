"""A lean header reader for the common case, tested against pydicom on the corpus.

Most archives hold single-frame images in (implicit or explicit VR) little
endian. For those, walking the data elements with ``struct`` up to PixelData
and converting only the ~40 values indexing needs is several times faster than
building a pydicom ``Dataset`` (see ``benchmarks/``). Anything else (big
endian, deflated, gzip, enhanced multi-frame, Siemens MOSAIC, UIH grids, Philips private
scaling, odd encodings) returns None and the caller uses pydicom.

:class:`LeanHeader` offers the small ``Dataset`` surface that
``frames.frame_records`` uses (``get``, ``in``, ``file_meta``), so records are
built by the same code either way.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

from dicomvol.dicom.tags import TAGS, tag_and_vr, vr_of
from dicomvol.dicom.values import vendor

log = logging.getLogger(__name__)

#: Bytes read first (the head: the file meta and, mostly, the whole header); a longer
#: header is read in full on demand.
HEAD_BYTES = 32768
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV",
             b"UV"}
#: Every explicit VR (PS3.5 6.2); any other two bytes send the file to pydicom.
_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO",
                   b"LT", b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ",
                   b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT",
                   b"UV"})
_PIXEL_TAG = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_NUMERIC = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q",
            "UV": "Q"}
_NUMERIC_SIZE = {vr: struct.calcsize(code) for vr, code in _NUMERIC.items()}
#: One value of each binary numeric VR (the common case, per element read).
_ONE_NUMBER = {vr: struct.Struct("<" + code) for vr, code in _NUMERIC.items()}

#: Keywords the index reads from a single-frame header.
KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Modality",
    "SeriesNumber", "SeriesDescription", "InstanceNumber", "ImageType", "Rows", "Columns",
    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "NumberOfFrames", "ImageOrientationPatient", "ImagePositionPatient",
    "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "RescaleSlope",
    "RescaleIntercept", "EchoNumbers", "EchoTime", "AcquisitionNumber",
    "TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime", "GantryDetectorTilt",
    "DiffusionBValue", "DiffusionGradientOrientation", "Manufacturer", "FrameOfReferenceUID",
    "AcquisitionDate", "AcquisitionDateTime", "ContentTime",
    "InPlanePhaseEncodingDirection", "PatientPosition", "ImageComments",
    # for output names
    "PatientID", "StudyDate", "StudyID", "ProtocolName", "SeriesTime", "BodyPartExamined",
)
#: Private elements read as ``(group, element)`` keys: the GE diffusion encoding, which
#: :func:`dicomvol.dicom.private.private_value` finds by its creator; value: (name, VR).
PRIVATE_TAGS: dict[int, tuple[str, str]] = {
    0x00430010: ("(0043,0010)", "LO"), 0x00431039: ("(0043,1039)", "IS"),
    0x00190010: ("(0019,0010)", "LO"), 0x001910BB: ("(0019,10BB)", "DS"),
    0x001910BC: ("(0019,10BC)", "DS"), 0x001910BD: ("(0019,10BD)", "DS"),
    0x0043102F: ("(0043,102F)", "SS"),  # GE image type: magnitude/phase/real/imaginary
}
#: (group, element) -> the name a private element's value is kept under.
_PRIVATE_KEYS = tuple(((tag >> 16, tag & 0xFFFF), name) for tag, (name, _) in PRIVATE_TAGS.items())
_TAGS: dict[int, str] = {TAGS[k][0]: k for k in KEYWORDS}
_TAGS.update({tag: name for tag, (name, _) in PRIVATE_TAGS.items()})
#: Siemens (0019,xx0C) diffusion b-value (XA classic): such files go to pydicom.
_SIEMENS_B = 0x0019100C
#: Top-level elements whose presence sends the file to pydicom.
_FALLBACK_TAGS = {
    0x52009229,  # SharedFunctionalGroupsSequence
    0x52009230,  # PerFrameFunctionalGroupsSequence
    0x00041220,  # DirectoryRecordSequence (DICOMDIR)
    0x00280008,  # NumberOfFrames (multi-frame)
}


class LeanHeader:
    """The subset of a pydicom ``Dataset`` that indexing reads, from raw bytes."""

    def __init__(self, values: dict[str, Any], transfer_syntax: str) -> None:
        table: dict[Any, Any] = values
        for key, name in _PRIVATE_KEYS:  # a private element: also by (group, element)
            value = table.get(name)
            if value is not None:
                table[key] = _Element(value)
        self._values = table
        self.file_meta = {"TransferSyntaxUID": transfer_syntax}
        #: The dict's own ``get`` (indexing reads ~80 values per file through it).
        self.get = table.get  # type: ignore[method-assign,assignment]

    def get(self, keyword: str | tuple[int, int], default: Any = None) -> Any:
        """The converted value of ``keyword`` (str, list of str or numbers), or ``default``.

        A ``(group, element)`` key of :data:`PRIVATE_TAGS` gives an element-like
        object with ``.value`` (as pydicom's ``Dataset.get`` of a tag does). (Each
        instance answers through its dict's ``get``, which holds both keys.)
        """
        return self._values.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        return keyword in self._values


class _Element:
    """The ``.value`` of a private element, as pydicom's ``DataElement`` offers it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def read_lean(fp: BinaryIO, size: int, keywords: Sequence[str] = (), head: bytes | None = None,
              meta: tuple[int | None, str, str] | None = None
              ) -> tuple[LeanHeader, int, int, int] | None:
    """Parse a plain single-frame little-endian header up to PixelData from an open file.

    Parameters
    ----------
    fp : binary stream
        Positioned at the start of the file, or just past ``head``.
    size : int
        The file's size in bytes.
    keywords : sequence of str
        Top-level keywords to read besides :data:`KEYWORDS` (e.g. for output names).
    head : bytes, optional
        The first :data:`HEAD_BYTES` of the file, already read (``fp`` is then past
        them), so that a file is read once; ``meta`` is :func:`parse_meta` of it.

    Returns
    -------
    (header, tag_offset, value_offset, pixel_length) or None
        None when the file is not a case this reader handles (the caller then
        uses pydicom, on the same stream), including a file without PixelData.
        Never raises for malformed content.
    """
    try:
        return _read_lean(fp, size, _table(tuple(keywords)), head, meta)
    except (struct.error, ValueError, IndexError):
        return None
    except Exception:  # anything else (MemoryError from an absurd length, ...): pydicom decides
        log.debug("lean reader declined after %s", "an unexpected error", exc_info=True)
        return None


@functools.lru_cache(maxsize=64)
def _table(extra: tuple[str, ...]) -> dict[int, Any]:
    """The walk's table for :data:`KEYWORDS` plus ``extra`` (unknown keywords are ignored).

    Swapped tag (see :data:`_EXPLICIT`) -> (keyword, implicit VR), or a stop marker for
    PixelData and :data:`_FALLBACK_TAGS` (which win over a keyword of the same tag).
    """
    tags = dict(_TAGS)
    for keyword in extra:
        found = tag_and_vr(keyword)
        if found is not None:
            tags[found[0]] = keyword
    table: dict[int, Any] = {_swapped(tag): (keyword, _implicit_vr(tag))
                             for tag, keyword in tags.items()}
    table.update({_swapped(tag): _STOP_FALLBACK for tag in _FALLBACK_TAGS})
    table[_swapped(_PIXEL_TAG)] = _STOP_PIXELS
    table[_swapped(_SIEMENS_B)] = ("siemens b", "LO")  # only its presence matters
    return table


def _read_lean(fp: BinaryIO, size: int, table: dict[int, Any], head: bytes | None,
               meta: tuple[int | None, str, str] | None
               ) -> tuple[LeanHeader, int, int, int] | None:
    buf = fp.read(HEAD_BYTES) if head is None else head
    if meta is None:
        meta = parse_meta(buf)
    meta_end, ts, _ = meta
    if ts not in (_EXPLICIT_LE, _IMPLICIT_LE) or meta_end is None:
        return None
    found = _walk(buf, meta_end, ts == _IMPLICIT_LE, table)
    if found is None and len(buf) < size:
        buf += fp.read()
        found = _walk(buf, meta_end, ts == _IMPLICIT_LE, table)
    if not isinstance(found, tuple):
        return None
    values, tag_offset, value_offset, pixel_length = found
    image_type = values.get("ImageType") or ""
    maker = vendor(values.get("Manufacturer"))
    if "MOSAIC" in image_type or maker in ("Philips", "UIH"):
        return None
    if maker == "Siemens" and ("DIFFUSION" in image_type or "siemens b" in values):
        return None  # diffusion in the CSA header or (0019,xx0E): pydicom reads those
    if not values.get("SOPInstanceUID"):
        return None  # pydicom reads the file meta's MediaStorageSOPInstanceUID in its place
    return LeanHeader(values, ts), tag_offset, value_offset, pixel_length


#: The VR of each File Meta element (PS3.10 7.1), by element number; another VR there
#: is damage (pydicom reads such a group by its dictionary and may refuse the file).
_META_VRS = {0x0000: b"UL", 0x0001: b"OB", 0x0002: b"UI", 0x0003: b"UI", 0x0010: b"UI",
             0x0012: b"UI", 0x0013: b"SH", 0x0016: b"AE", 0x0017: b"AE", 0x0018: b"AE",
             0x0026: b"UR", 0x0027: b"UR", 0x0028: b"UR", 0x0100: b"UI", 0x0102: b"OB"}


def read_meta(buf: bytes) -> tuple[int | None, str]:
    """End offset of the file meta group and the transfer syntax (see :func:`parse_meta`)."""
    end, ts, _ = parse_meta(buf)
    return end, ts


def parse_meta(buf: bytes) -> tuple[int | None, str, str]:
    """The file meta group of a file's head, walked once.

    Returns
    -------
    (end, transfer syntax, MediaStorageSOPClassUID)
        ``end`` is the offset just past the group, None when the head is not
        DICOM Part 10 or its meta group is damaged (pydicom then decides).
    """
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None, "", ""
    pos, ts, sop_class, end = 132, "", "", None
    while pos + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            return pos, ts, sop_class
        vr = buf[pos + 4:pos + 6]
        if vr not in _VRS or _META_VRS.get(elem, vr) != vr:  # damaged meta: pydicom decides
            return None, "", ""
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            start = pos + 8
        if elem == 0x0010:
            ts = buf[start:start + length].decode("ascii", "replace").strip("\x00 ")
        elif elem == 0x0002:
            sop_class = buf[start:start + length].decode("ascii", "replace").strip("\x00 ")
        pos = start + length
        end = pos
    return end, ts, sop_class


#: One element header as little-endian unsigned ints. A tag read as one uint32 has its
#: halves swapped (element << 16 | group), so the walk keys its tables by swapped tags and
#: never shifts; a VR read as a uint16 is compared with the codes of :data:`_LONG_VRS`.
_EXPLICIT = struct.Struct("<IHH")  # swapped tag, VR code, 16-bit length
_IMPLICIT = struct.Struct("<II")  # swapped tag, 32-bit length
_U32 = struct.Struct("<I")
_LONG_VR_CODES = frozenset(int.from_bytes(vr, "little") for vr in _LONG_VRS)
_VR_CODES = frozenset(int.from_bytes(vr, "little") for vr in _VRS)
#: A VR's code (as ``unpack_from`` reads it) -> its name.
_VR_NAMES = {int.from_bytes(vr, "little"): vr.decode("ascii") for vr in _VRS}
#: Markers in a walk table (besides a (keyword, implicit VR) pair).
_STOP_PIXELS, _STOP_FALLBACK = "pixels", "fallback"


def _swapped(tag: int) -> int:
    """A (group << 16 | element) tag as a little-endian uint32 read gives it."""
    return ((tag & 0xFFFF) << 16) | (tag >> 16)


def _walk(buf: bytes, pos: int, implicit: bool,
          table: dict[int, Any]) -> tuple[dict[str, Any], int, int, int] | bool | None:
    """Top-level elements up to PixelData; None if the buffer ends first or a case is odd,
    False at an element that sends the file to pydicom (multi-frame, DICOMDIR).

    The hot loop of indexing (a GE header has ~340 top-level elements, most of them
    private): per element one ``unpack_from``, one set and one dict lookup; only the
    elements of ``table`` are decoded. Only a long VR can have an undefined length.
    """
    if implicit:
        return _walk_implicit(buf, pos, table)
    values: dict[str, Any] = {}
    n = len(buf)
    last = n - 8  # the last offset where an element header fits
    unpack = _EXPLICIT.unpack_from
    u32 = _U32.unpack_from
    long_vrs, vrs, vr_names = _LONG_VR_CODES, _VR_CODES, _VR_NAMES
    get = table.get
    pixels, fallback, undefined = _STOP_PIXELS, _STOP_FALLBACK, _UNDEFINED
    while pos <= last:
        tag, vr, length = unpack(buf, pos)
        if vr not in vrs:  # not a VR: damaged or odd, pydicom decides
            return None
        if vr in long_vrs:
            if pos + 12 > n:
                return None
            (length,) = u32(buf, pos + 8)
            start = pos + 12
            if length == undefined:
                action = get(tag)
                if action is pixels:
                    return values, pos, start, length
                if action is fallback:
                    return False
                end = _skip_undefined(buf, start, False)
                if end is None:
                    return None
                pos = end
                continue
        else:
            start = pos + 8
        action = get(tag)
        if action is None:
            pos = start + length  # past the buffer: the loop ends, None
            continue
        if action is pixels:
            return values, pos, start, length
        if action is fallback:
            return False  # pydicom's case: no need to read the rest of the file
        end = start + length
        if end > n:
            return None
        vr_name = vr_names[vr]
        value = convert_value(buf[start:end], vr_name)
        if value is not None:
            values[action[0]] = value
        elif length % _NUMERIC_SIZE.get(vr_name, 1):
            return None  # a number of the wrong length: damaged, pydicom decides
        pos = end
    return None


def _walk_implicit(buf: bytes, pos: int, table: dict[int, Any]
                   ) -> tuple[dict[str, Any], int, int, int] | bool | None:
    """:func:`_walk` for implicit VR little endian (VRs from the dictionary)."""
    values: dict[str, Any] = {}
    n = len(buf)
    last = n - 8
    unpack = _IMPLICIT.unpack_from
    get = table.get
    pixels, fallback, undefined = _STOP_PIXELS, _STOP_FALLBACK, _UNDEFINED
    while pos <= last:
        tag, length = unpack(buf, pos)
        start = pos + 8
        action: Any = get(tag)
        if action is None and length != undefined:
            pos = start + length
            continue
        if action is pixels:
            return values, pos, start, length
        if action is fallback:
            return False  # pydicom's case: no need to read the rest of the file
        if length == undefined:
            end = _skip_undefined(buf, start, True)
            if end is None:
                return None
            pos = end
            continue
        pos = start + length
        if pos > n:
            return None
        value = convert_value(buf[start:pos], action[1])
        if value is not None:
            values[action[0]] = value
        elif length % _NUMERIC_SIZE.get(action[1], 1):
            return None  # a number of the wrong length: damaged, pydicom decides
    return None


#: Nesting depth of undefined-length sequences and items the lean reader walks; deeper
#: files go to pydicom (whose own recursion is guarded by the caller).
MAX_NESTING = 64


def _skip_undefined(buf: bytes, pos: int, implicit: bool) -> int | None:
    """Offset just past an undefined-length sequence whose value starts at ``pos``.

    Walks nested items and sequences iteratively (no recursion, however deep the
    nesting); None when the buffer ends first, an element is malformed or the
    nesting exceeds MAX_NESTING (the caller then lets pydicom decide).
    """
    n = len(buf)
    in_sequence = [True]  # stack: True while inside a sequence, False inside an item
    while in_sequence:
        if pos + 8 > n or len(in_sequence) > MAX_NESTING:
            return None
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | elem
        if in_sequence[-1]:
            (length,) = _U32.unpack_from(buf, pos + 4)
            pos += 8
            if tag == _SEQ_END:
                in_sequence.pop()
            elif tag == _ITEM:
                if length == _UNDEFINED:
                    in_sequence.append(False)
                else:
                    pos += length
            elif tag != _ITEM_END:
                return None  # not an item: malformed, let pydicom decide
            continue
        if tag == _ITEM_END:
            pos += 8
            in_sequence.pop()
            continue
        if implicit:
            (length,) = _U32.unpack_from(buf, pos + 4)
            start = pos + 8
        else:
            if buf[pos + 4:pos + 6] in _LONG_VRS:
                if pos + 12 > n:
                    return None
                (length,) = _U32.unpack_from(buf, pos + 8)
                start = pos + 12
            else:
                (length,) = struct.unpack_from("<H", buf, pos + 6)
                start = pos + 8
        if length == _UNDEFINED:
            in_sequence.append(True)
            pos = start
        else:
            pos = start + length
    return pos


def _implicit_vr(tag: int) -> str:
    if tag in PRIVATE_TAGS:
        return PRIVATE_TAGS[tag][1]
    return vr_of(tag)


def binary_numbers(raw: bytes, vr: str) -> Any:
    """The value of a binary numeric VR (US, SS, UL, SL, FL, FD, SV, UV) as pydicom gives
    it: a number, a list of them, or None when ``raw`` holds none."""
    size = _NUMERIC_SIZE[vr]
    if len(raw) == size:
        return _ONE_NUMBER[vr].unpack(raw)[0]
    count = len(raw) // size
    if count == 0:
        return None
    numbers = struct.unpack_from(f"<{count}{_NUMERIC[vr]}", raw)
    return numbers[0] if count == 1 else list(numbers)


def convert_value(raw: bytes, vr: str) -> Any:
    """A raw value as pydicom would give it for the VRs indexing reads."""
    if vr in _NUMERIC:
        return binary_numbers(raw, vr)
    if vr == "AT":  # (group, element) pairs, as pydicom's int tags
        tags = [(g << 16) | e for g, e in struct.iter_unpack("<HH", raw[:len(raw) // 4 * 4])]
        return (tags[0] if len(tags) == 1 else tags) if tags else None
    text = raw.decode("latin-1").rstrip("\x00 ").strip()
    if vr in ("DS", "IS", "CS") and "\\" in text:
        return [part.strip() for part in text.split("\\")]
    return text if text != "" else None

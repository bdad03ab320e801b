"""Per-frame functional groups read straight from the file bytes (the SEG fast path).

A SEG of 100 segments may hold 20,000 frames, each with its own item of the
PerFrameFunctionalGroupsSequence (5200,9230). Building pydicom datasets for
them (and converting their elements on access) dominated indexing such a
file. :func:`split_per_frame` walks the top level of a little-endian file up
to PixelData, cuts the per-frame sequence out of the header (pydicom parses
the rest, which is small) and reads the sequence with an iterative walker
into :class:`FrameItem` dictionaries: keyword -> value, a sequence a list of
items. The values are what :mod:`dicomvol.dicom.values` reads alike from
pydicom: text (DS and IS included) as stripped ``str`` (a list of them when
multi-valued), binary numbers as ``int``/``float`` (a list when
multi-valued), other binary values as ``bytes``.

The walker declines (returns None, the caller uses pydicom) for anything it
does not handle exactly: big endian, deflate, no preamble, private elements in
the per-frame items (vendor readers look those up by tag), ambiguous VRs.
``tests/dicom/test_fgroups.py`` checks that the frame records are identical to
pydicom's on every multi-frame file of the corpus.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from dicomvol.dicom.tags import PIXEL_DATA_TAGS

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_PER_FRAME = 0x52009230
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UR", "UT", "UN", "SV", "UV"}
_NUMERIC = {"US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4),
            "FL": ("f", 4), "FD": ("d", 8)}
_TEXT = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"}
_SINGLE_TEXT = {"LT", "ST", "UT", "UR"}
#: Bytes read first; more is read as the walk needs it.
_CHUNK = 1 << 20
_KEYWORDS: dict[int, str] = {}


class FrameItem(dict[str, Any]):
    """One item of a functional-group sequence: keyword -> value (the ``Dataset.get`` surface)."""

    __slots__ = ()


@dataclass(frozen=True)
class Split:
    """A header with the per-frame sequence cut out, and that sequence read into items."""

    #: The file from its start to PixelData's value, without the per-frame element.
    header: bytes
    #: File offset where the per-frame element started, and its size in bytes.
    cut_at: int
    cut_size: int
    per_frame: list[FrameItem]


class _Decline(Exception):
    """The walker does not handle this file exactly; pydicom reads it."""


def as_items(ds: Any) -> Any:
    """A pydicom functional-groups item as a :class:`FrameItem` (sequences as lists of them).

    The values are the very objects ``ds.get(keyword)`` returns, so lookups give
    the same results, without pydicom's per-access cost (the shared group is
    looked up for every one of thousands of frames). Elements without a keyword
    (private) are left out: the per-frame readers look groups up by keyword only.
    ``ds`` itself is returned when an element cannot be read (pydicom raises on
    some malformed values only when they are accessed; the readers handle that).
    """
    if ds is None or isinstance(ds, FrameItem):
        return ds
    try:
        return _as_items(ds)
    except Exception:  # a malformed element: keep pydicom's lazy, guarded access
        return ds


def _as_items(ds: Any) -> FrameItem:
    out = FrameItem()
    for elem in ds:
        if not elem.keyword:
            continue
        if elem.VR == "SQ":
            out[elem.keyword] = [_as_items(item) for item in elem.value]
        else:
            out[elem.keyword] = elem.value
    return out


_MISSING = object()


class Memo:
    """A data set whose ``get`` remembers what it returned (read per frame, thousands of times).

    The values are the objects ``ds.get`` returns; everything else (``in``,
    ``[]``, attributes) is the data set's own.
    """

    __slots__ = ("_ds", "_seen")

    def __init__(self, ds: Any) -> None:
        self._ds = ds
        self._seen: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        """``ds.get(key, default)``, looked up once per key."""
        try:
            value = self._seen[key]
        except KeyError:
            value = self._seen[key] = self._ds.get(key, _MISSING)
        except TypeError:  # not hashable
            return self._ds.get(key, default)
        return default if value is _MISSING else value

    def __contains__(self, key: Any) -> bool:
        return key in self._ds

    def __getitem__(self, key: Any) -> Any:
        return self._ds[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)


def sop_class_of_meta(fp: BinaryIO) -> str:
    """MediaStorageSOPClassUID from the file meta of an open file ("" when absent); rewinds."""
    head = fp.read(4096)
    fp.seek(0)
    try:
        meta = _meta(head)
    except (_Decline, struct.error, IndexError, UnicodeDecodeError):
        return ""
    return meta[1] if meta is not None else ""


def split_per_frame(fp: BinaryIO) -> Split | None:
    """Cut the PerFrameFunctionalGroupsSequence out of an open file's header.

    Returns None when the file is not one the walker handles exactly (see the
    module docstring) or has no such sequence; never raises for malformed
    content. The stream is left at an unspecified position.
    """
    reader = _Buffer(fp)
    try:
        return _split(reader)
    except (_Decline, struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


class _Buffer:
    """The file's bytes from its start, read in growing chunks as a walk needs them."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.data = fp.read(_CHUNK)
        self.eof = len(self.data) < _CHUNK

    def need(self, end: int) -> None:
        """Make sure bytes up to ``end`` are read (raise _Decline when the file is shorter)."""
        while len(self.data) < end:
            if self.eof:
                raise _Decline("file ends early")
            more = self.fp.read(max(_CHUNK, end - len(self.data), len(self.data) // 2))
            self.eof = not more
            self.data += more


def _meta(buf: bytes) -> tuple[int, str, str] | None:
    """(end of the file meta group, MediaStorageSOPClassUID, TransferSyntaxUID) or None."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    pos, values = 132, {}
    while True:
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            break
        vr = buf[pos + 4:pos + 6].decode("ascii")
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            pos += 8
        if length == _UNDEFINED or pos + length > len(buf):
            raise _Decline("file meta not understood")
        values[elem] = buf[pos:pos + length].decode("latin-1").rstrip("\x00 ")
        pos += length
    return pos, values.get(0x0002, ""), values.get(0x0010, "")


def _split(buf: _Buffer) -> Split | None:
    buf.need(4096)
    meta = _meta(buf.data)
    if meta is None:
        return None
    pos, _, ts = meta
    if ts in (_BIG_ENDIAN, _DEFLATED) or not ts:
        return None
    implicit = ts == _IMPLICIT_LE
    cut: tuple[int, int] | None = None
    items: list[FrameItem] = []
    while True:
        buf.need(pos + 12)
        tag, vr, length, value_at = _element_header(buf.data, pos, implicit)
        if tag in PIXEL_DATA_TAGS:
            break
        if tag == _PER_FRAME or vr == "SQ" or length == _UNDEFINED:
            found, end = _read_sequence(buf, value_at, length, implicit, tag == _PER_FRAME)
            if tag == _PER_FRAME:
                cut, items = (pos, end - pos), found
            pos = end
            continue
        pos = value_at + length
    if cut is None:
        return None
    buf.need(value_at)
    data = buf.data
    header = data[:cut[0]] + data[cut[0] + cut[1]:value_at]
    return Split(header, cut[0], cut[1], items)


def _element_header(data: bytes, pos: int, implicit: bool) -> tuple[int, str, int, int]:
    """(tag, VR, length, offset of the value) of the element at ``pos``."""
    group, elem = struct.unpack_from("<HH", data, pos)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:
        (length,) = struct.unpack_from("<I", data, pos + 4)
        return tag, _implicit_vr(tag, length) if group != 0xFFFE else "", length, pos + 8
    vr = data[pos + 4:pos + 6].decode("ascii")
    if vr in _LONG_VRS:
        (length,) = struct.unpack_from("<I", data, pos + 8)
        return tag, vr, length, pos + 12
    (length,) = struct.unpack_from("<H", data, pos + 6)
    return tag, vr, length, pos + 8


def _implicit_vr(tag: int, length: int) -> str:
    if length == _UNDEFINED:
        return "SQ"
    try:
        from pydicom.datadict import dictionary_VR  # pydicom: where a SEG is walked

        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    return vr  # "OB or OW" and alike: the per-frame walk declines them


def _read_sequence(buf: _Buffer, start: int, length: int, implicit: bool,
                   keep: bool) -> tuple[list[FrameItem], int]:
    """The items of a sequence whose value starts at ``start``, and the offset after it.

    Iterative (a stack, no recursion). ``keep=False`` walks without keeping values
    (only the end offset is wanted); private elements are then allowed.
    """
    top: list[FrameItem] = []
    end = None if length == _UNDEFINED else start + length
    if end is not None:
        buf.need(end)
        if not keep:
            return top, end
    # stack entries: (container, end offset or None, is a sequence)
    stack: list[tuple[Any, int | None, bool]] = [(top, end, True)]
    pos = start
    while stack:
        container, cend, is_seq = stack[-1]
        if cend is not None and pos >= cend:
            if pos > cend:
                raise _Decline("element runs past its container")
            stack.pop()
            continue
        buf.need(pos + 12)
        data = buf.data
        tag, vr, vlen, value_at = _element_header(data, pos, implicit)
        if is_seq:
            if tag == _SEQ_END:
                pos = value_at
                stack.pop()
            elif tag == _ITEM:
                item = FrameItem()
                container.append(item)
                stack.append((item, None if vlen == _UNDEFINED else value_at + vlen, False))
                pos = value_at
            else:
                raise _Decline("unexpected element in a sequence")
            continue
        if tag == _ITEM_END:
            pos = value_at
            stack.pop()
            continue
        if keep and (tag >> 16 & 1 or vr == "UN" or " or " in vr):
            raise _Decline("private, UN or ambiguous element in a per-frame item")
        if vr == "SQ" or vlen == _UNDEFINED:
            seq: list[FrameItem] = []
            container[_keyword(tag)] = seq
            stack.append((seq, None if vlen == _UNDEFINED else value_at + vlen, True))
            pos = value_at
            continue
        pos = value_at + vlen
        buf.need(pos)
        if keep:
            container[_keyword(tag)] = _value(vr, buf.data[value_at:pos])
    return top, pos


def _keyword(tag: int) -> str:
    keyword = _KEYWORDS.get(tag)
    if keyword is None:
        from pydicom.datadict import keyword_for_tag

        keyword = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        _KEYWORDS[tag] = keyword
    return keyword


def _value(vr: str, raw: bytes) -> Any:
    """A value as :mod:`dicomvol.dicom.values` reads pydicom's (see the module docstring)."""
    if not raw:
        return "" if vr in _TEXT or vr in _SINGLE_TEXT else None
    if vr in _TEXT:
        text = raw.decode("latin-1")
        if "\\" in text:
            return [part.rstrip("\x00 ") for part in text.split("\\")]
        return text.rstrip("\x00 ")
    if vr in _SINGLE_TEXT:
        return raw.decode("latin-1").rstrip("\x00 ")
    numeric = _NUMERIC.get(vr)
    if numeric is not None:
        code, size = numeric
        count = len(raw) // size
        if count * size != len(raw):
            raise _Decline(f"{vr} value of {len(raw)} bytes")
        values = struct.unpack(f"<{count}{code}", raw)
        return values[0] if count == 1 else list(values)
    return raw

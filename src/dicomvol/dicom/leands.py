"""A whole header without pydicom: the lean data set the sidecar readers use.

:func:`lean_dataset` walks every element of a little-endian (explicit or
implicit VR) header up to PixelData, sequences included, and keeps each value's
bytes; a value is converted when it is asked for, to what pydicom's ``Dataset``
would give (``str`` or a list of them for text, ``float``/``int`` subclasses that
print as written for DS/IS, numbers or lists for binary VRs, ``bytes`` for OB/OW/UN,
items for SQ). :class:`LeanDataset` offers the ``Dataset`` surface the sidecar
code reads (``get`` by keyword or tag, ``in``, ``[tag]``, iteration over elements,
``private_block``, ``group_dataset``), so the sidecar (``metadata/bids.py``,
``fieldmap.py``, ``slicetiming.py``, nibabel's CSA reader) is built by the same
code either way; ``tests/dicom/test_leands.py`` holds the two equal on the corpus.

Anything else returns None and the caller uses pydicom: big endian, deflate, a
character set other than the default, ISO_IR 100 or ISO_IR 192, damage (a length
past the end, a malformed item), or nesting deeper than
:data:`~dicomvol.dicom.lean.MAX_NESTING`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from dicomvol.dicom.lean import MAX_NESTING, binary_numbers, parse_meta
from dicomvol.dicom.tags import PIXEL_DATA_TAGS, VR_BY_TAG, keyword_tag, tag_and_vr

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_CHARSET_TAG = 0x00080005
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UR", "UT", "UN", "SV",
                       "UV"})
#: SpecificCharacterSet values decoded here (pydicom's Python codec for each).
CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1",
            "ISO_IR 192": "utf-8"}
#: Text VRs whose values are decoded with the character set (the rest are ASCII).
_CHARSET_VRS = frozenset({"SH", "LO", "PN", "LT", "ST", "UT", "UC"})
#: Text VRs holding a single value (no backslash splitting).
_SINGLE_TEXT = frozenset({"LT", "ST", "UT", "UR"})
_NUMERIC = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})
_BYTES_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
#: The explicit VRs with a 16-bit value length (PS3.5 7.1.2).
_SHORT_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT",
                        "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"})
_ITEM_BYTES = b"\xfe\xff\x00\xe0"
_HEAD = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class Tag(int):
    """A tag as pydicom's ``BaseTag`` offers it: ``group``, ``elem``, ``is_private``."""

    __slots__ = ()

    @property
    def group(self) -> int:
        return self >> 16

    @property
    def elem(self) -> int:
        return self & 0xFFFF

    @property
    def element(self) -> int:
        return self & 0xFFFF

    @property
    def is_private(self) -> bool:
        return bool(self.group & 1)


class _AsWritten:
    """A number printed as its DICOM text was written (``original``)."""

    __slots__ = ()
    original: str

    def __str__(self) -> str:
        return self.original

    def __repr__(self) -> str:
        return repr(self.original)


class DS(_AsWritten, float):
    """A decimal string: the float, printed as written (pydicom's ``DSfloat``)."""

    __slots__ = ("original",)

    def __new__(cls, text: str) -> DS:
        self = super().__new__(cls, text)
        self.original = text
        return self


class IS(_AsWritten, int):
    """An integer string: the int, printed as written (pydicom's ``IS``)."""

    def __new__(cls, text: str) -> IS:
        try:
            value = int(text)
        except ValueError:
            number = float(text)
            if number != int(number):
                raise
            value = int(number)
        self = super().__new__(cls, value)
        self.original = text
        return self


class LeanElement:
    """One data element: ``tag``, ``VR`` and ``value`` (converted on first use)."""

    __slots__ = ("VR", "_converted", "_raw", "_set", "tag")

    def __init__(self, tag: int, vr: str, raw: Any, charset: str) -> None:
        self.tag = Tag(tag)
        self.VR = vr
        self._raw = raw  # bytes, or the items of a sequence
        self._set = charset
        self._converted = False

    @property
    def value(self) -> Any:
        if not self._converted:
            self._raw = convert(self._raw, self.VR, self._set)
            self._converted = True
        return self._raw


class LeanDataset:
    """A header's elements by tag, with pydicom ``Dataset`` look-ups (see the module doc)."""

    #: Marks the class for :func:`dicomvol.dicom.values.is_dataset`.
    lean_dataset = True

    def __init__(self, elements: dict[int, LeanElement], transfer_syntax: str = "") -> None:
        self._elements = elements
        self.file_meta = {"TransferSyntaxUID": transfer_syntax}

    def _tag(self, key: Any) -> int | None:
        if isinstance(key, str):
            return keyword_tag(key)
        if isinstance(key, tuple):
            return int((key[0] << 16) | key[1])
        return int(key)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of keyword ``key``, or the element of tag ``key`` (int or (group, elem))."""
        if isinstance(key, str):
            found = tag_and_vr(key)
            element = None if found is None else self._elements.get(found[0])
            if element is None or found is None:
                return default
            if element.VR == "UN" and found[1] not in ("UN", "SQ"):
                element = LeanElement(element.tag, found[1].split(" ")[0], element._raw,
                                      element._set)  # UN in the file: the dictionary's VR
            return element.value
        tag = self._tag(key)
        element = None if tag is None else self._elements.get(tag)
        return default if element is None else element

    def __getitem__(self, key: Any) -> LeanElement:
        tag = self._tag(key)
        if tag is None or tag not in self._elements:
            raise KeyError(key)
        return self._elements[tag]

    def __getattr__(self, name: str) -> Any:
        """``ds.Keyword``: :meth:`get` of the keyword, AttributeError when absent."""
        if name.startswith("_") or not name[:1].isupper() or name not in self:
            raise AttributeError(name)
        return self.get(name)

    def __contains__(self, key: Any) -> bool:
        try:
            tag = self._tag(key)
        except (TypeError, ValueError):
            return False
        return tag is not None and tag in self._elements

    def __iter__(self) -> Iterator[LeanElement]:
        return iter([self._elements[t] for t in sorted(self._elements)])

    def __len__(self) -> int:
        return len(self._elements)

    def group_dataset(self, group: int) -> list[LeanElement]:
        """The elements of ``group``, in tag order (as nibabel's CSA reader walks them)."""
        return [e for e in self if e.tag >> 16 == group]

    def private_block(self, group: int, creator: str) -> _Block:
        """The block of ``group`` whose private creator is ``creator`` (KeyError if none)."""
        for n in range(0x10, 0x100):
            element = self._elements.get((group << 16) | n)
            if element is not None and isinstance(element.value, str) \
                    and element.value.strip() == creator:
                return _Block(self, (group << 16) | (n << 8))
        raise KeyError(f"no private creator {creator!r} in group {group:04X}")

    def merged(self, extra: LeanDataset) -> LeanDataset:
        """This data set with the elements of ``extra`` it lacks (a shallow copy)."""
        elements = dict(extra._elements)
        elements.update(self._elements)
        out = LeanDataset(elements)
        out.file_meta = self.file_meta
        return out


class _Block:
    """A private block: ``block[offset]`` is element ``base | offset``."""

    def __init__(self, ds: LeanDataset, base: int) -> None:
        self._ds, self._base = ds, base

    def __getitem__(self, offset: int) -> LeanElement:
        return self._ds[self._base | offset]

    def __contains__(self, offset: int) -> bool:
        return (self._base | offset) in self._ds


def lean_dataset(buf: bytes) -> LeanDataset | None:
    """The header of a whole file (or its head up to PixelData) as a :class:`LeanDataset`.

    None when the file is not a case handled here (see the module docstring);
    never raises for malformed content.
    """
    try:
        meta_end, ts, _ = parse_meta(buf)
        if meta_end is None or not (ts == _IMPLICIT_LE or explicit_le(ts)):
            return None
        found = _items_of(memoryview(buf), meta_end, len(buf), ts == _IMPLICIT_LE, "latin-1", 0,
                          top=True)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError, _Declined):
        return None
    if found is None:
        return None
    elements, _ = found
    return LeanDataset(elements, ts)


def explicit_le(transfer_syntax: str) -> bool:
    """Whether a transfer syntax encodes its data set in explicit VR little endian: the
    plain one and the encapsulated (compressed) ones (PS3.5 A.4), not deflate or big
    endian."""
    return transfer_syntax == _EXPLICIT_LE or transfer_syntax.startswith(_ENCAPSULATED)


#: Prefixes of the encapsulated transfer syntaxes: JPEG family, RLE, MPEG/HEVC, HTJ2K.
_ENCAPSULATED = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5")


class _Declined(Exception):
    """Raised inside the walk: a case left to pydicom."""


def _items_of(buf: memoryview, pos: int, end: int, implicit: bool, charset: str, depth: int,
              top: bool = False) -> tuple[dict[int, LeanElement], int] | None:
    """The elements from ``pos`` up to ``end`` (an item's end, or an item delimiter when
    ``end`` is undefined: -1); returns them and the offset after them."""
    if depth > MAX_NESTING:
        raise _Declined
    elements: dict[int, LeanElement] = {}
    n = len(buf)
    limit = n if end < 0 else end
    while pos + 8 <= limit:
        group, elem = _HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag == _ITEM_END:
            if end >= 0:
                raise _Declined  # a delimiter in a defined-length item
            return elements, pos + 8
        if top and tag in PIXEL_DATA_TAGS:
            return elements, pos
        if implicit:
            vr = ""
            (length,) = _U32.unpack_from(buf, pos + 4)
            start = pos + 8
        else:
            vr = bytes(buf[pos + 4:pos + 6]).decode("ascii")
            if vr in _LONG_VRS:
                (length,) = _U32.unpack_from(buf, pos + 8)
                start = pos + 12
            elif vr in _SHORT_VRS:
                (length,) = _U16.unpack_from(buf, pos + 6)
                start = pos + 8
            else:
                raise _Declined
        if length == _UNDEFINED:
            if vr not in ("", "SQ", "UN"):
                raise _Declined  # undefined length only for sequences (pixels stop above)
            items, pos = _sequence(buf, start, -1, implicit or vr == "UN", charset, depth + 1)
            elements[tag] = LeanElement(tag, "SQ", items, charset)
            continue
        stop = start + length
        if stop > limit:
            raise _Declined
        nested_implicit = implicit  # how a sequence's items are encoded
        if implicit:
            vr = _implicit_vr(tag)
        if vr == "UN" and not group & 1 and length >= 8 \
                and buf[start:start + 4] == _ITEM_BYTES:
            vr, nested_implicit = "SQ", True  # a sequence whose VR the dictionary would give
        if vr == "SQ":
            items, _ = _sequence(buf, start, stop, nested_implicit, charset, depth + 1)
            elements[tag] = LeanElement(tag, "SQ", items, charset)
        else:
            raw = bytes(buf[start:stop])
            if tag == _CHARSET_TAG:
                charset = _charset(raw)
            elements[tag] = LeanElement(tag, vr, raw, charset)
        pos = stop
    if end >= 0 and pos != end and not top:
        raise _Declined
    if end < 0 and not top:
        raise _Declined  # the buffer ended inside an undefined-length item
    return elements, pos


def _sequence(buf: memoryview, pos: int, end: int, implicit: bool, charset: str,
              depth: int) -> tuple[list[LeanDataset], int]:
    """The items of a sequence whose value starts at ``pos`` (``end`` -1: undefined)."""
    if depth > MAX_NESTING:
        raise _Declined
    items: list[LeanDataset] = []
    limit = len(buf) if end < 0 else end
    while pos + 8 <= limit:
        group, elem = _HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        (length,) = _U32.unpack_from(buf, pos + 4)
        pos += 8
        if tag == _SEQ_END:
            if end >= 0:
                raise _Declined
            return items, pos
        if tag != _ITEM:
            raise _Declined
        if length == _UNDEFINED:
            found = _items_of(buf, pos, -1, implicit, charset, depth + 1)
        else:
            if pos + length > limit:
                raise _Declined
            found = _items_of(buf, pos, pos + length, implicit, charset, depth + 1)
        if found is None:
            raise _Declined
        elements, pos = found
        items.append(LeanDataset(elements))
    if end < 0 or pos != end:
        raise _Declined
    return items, pos


def _implicit_vr(tag: int) -> str:
    """The VR of an implicit VR element: the dictionary's for the keywords read here,
    LO for a private creator, else UN (the value stays bytes, as pydicom gives an
    element its dictionary does not know)."""
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 1:
        return "LO" if 0x0010 <= elem <= 0x00FF else "UN"
    if elem == 0x0000:
        return "UL"
    return VR_BY_TAG.get(tag, "UN").split(" ")[0]  # "OB or OW": the first


def _charset(raw: bytes) -> str:
    """The codec of a SpecificCharacterSet value; declines any other character set."""
    text = raw.decode("ascii", "replace").strip("\x00 ")
    parts = [p.strip() for p in text.split("\\")]
    name = parts[0]
    if len(parts) > 1 or name not in CHARSETS:  # code extensions (ISO 2022): pydicom's
        raise _Declined
    return CHARSETS[name]


def convert(raw: Any, vr: str, charset: str) -> Any:
    """A raw value as pydicom's ``Dataset`` gives it (see the module docstring)."""
    if vr == "SQ":
        return raw
    if not raw:  # pydicom's empty value of the VR
        return None if vr in _NUMERIC or vr in _BYTES_VRS or vr in ("AT", "DS", "IS") else ""
    if vr in _NUMERIC:
        return binary_numbers(raw, vr)
    if vr in _BYTES_VRS:
        return raw
    if vr == "AT":
        tags = [Tag((g << 16) | e) for g, e in struct.iter_unpack("<HH", raw[:len(raw) // 4 * 4])]
        return (tags[0] if len(tags) == 1 else tags) if tags else None
    text = raw.decode(charset if vr in _CHARSET_VRS else "latin-1", "replace")
    if vr in _SINGLE_TEXT:
        return text.rstrip("\x00 ")
    parts = text.rstrip("\x00 ").split("\\") if text.strip("\x00 ") else [""]
    values = [_typed(p, vr) for p in parts]
    if len(values) == 1:
        return None if values[0] == "" and vr in ("DS", "IS") else values[0]
    return values


def _typed(text: str, vr: str) -> Any:
    if vr == "DS" or vr == "IS":
        stripped = text.strip(" \x00")
        if not stripped:
            return ""
        try:
            return DS(stripped) if vr == "DS" else IS(stripped)
        except ValueError:
            return stripped
    if vr == "UI":
        return text.strip("\x00 ")
    return text.rstrip("\x00 ")


"""A lean reader for Enhanced MR headers: every element up to PixelData, sequences included.

pydicom builds each item of a PerFrameFunctionalGroupsSequence lazily and
converts each value on first access; for a 5,000-frame diffusion file that is
most of the conversion time. This reader walks an explicit VR little-endian
header once with ``struct`` and keeps every value converted as
:mod:`dicomvol.dicom.lean` converts them (numbers, text, lists for
multi-valued DS/IS/CS, bytes for OB/OW/UN), sequences as lists of
:class:`LeanItem` (not a ``pydicom.Dataset``: no pydicom is imported): records are
built from it by ``frames.frame_records`` through ``get``/``in`` like any header. Used
for Enhanced MR Image Storage only (:data:`SOP_CLASSES`); anything else, or any
surprise, returns None and pydicom reads the file. ``tests/dicom/test_lean.py`` holds
it to pydicom's records on the corpus and on synthetic diffusion files.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from dicomvol.dicom.lean import MAX_NESTING, convert_value, read_meta
from dicomvol.dicom.tags import PIXEL_DATA_TAGS, keyword_tag

#: Enhanced MR Image Storage.
SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.4.1"})
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV",
             b"UV"}
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_PER_FRAME = 0x52009230
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_EXPLICIT = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")
_ITEM_HEAD = struct.Struct("<HHI")
#: Bytes read first (a 5,000-frame header is a few MB; reads grow until PixelData).
_FIRST_READ = 1 << 20
#: Sequences up to this many bytes are read once per file and shared (functional groups).
_SHARED_MAX = 1 << 16


class LeanElement:
    """The ``.value`` of an element looked up by tag, as pydicom's ``DataElement`` offers it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class LeanBlock:
    """A private block: ``block[offset].value`` as pydicom's ``PrivateBlock`` gives it."""

    __slots__ = ("base", "item")

    def __init__(self, item: LeanItem, base: int) -> None:
        self.item, self.base = item, base

    def __getitem__(self, offset: int) -> LeanElement:
        value = self.item.get(self.base | offset)
        if value is None:
            raise KeyError(f"{self.base | offset:08X}")
        return value  # type: ignore[no-any-return]


class LeanItem:
    """A data set or sequence item read by this module: ``get`` and ``in`` by keyword or tag.

    The ``Dataset`` surface the shared header code reads (``get``, ``in``, attributes,
    ``private_block``, ``file_meta``); :func:`dicomvol.dicom.values.is_dataset` accepts
    it (:attr:`lean_dataset`), without pydicom. Identical sequences of one file (most
    functional groups repeat from frame to frame) are one shared list of items, read once.
    """

    #: Marks the class for :func:`dicomvol.dicom.values.is_dataset`.
    lean_dataset = True

    _lean_values: dict[int, Any]
    _lean_buf: bytes

    def __init__(self, values: dict[int, Any], buf: bytes) -> None:
        object.__setattr__(self, "_lean_values", values)
        object.__setattr__(self, "_lean_buf", buf)

    def _value(self, tag: int) -> Any:
        """The value of ``tag``, converted on first use (most elements are never read)."""
        values = self._lean_values
        value = values.get(tag)
        if type(value) is tuple:  # (VR, start, end) in the file's bytes
            vr, start, end = value
            value = values[tag] = lean_value(vr, self._lean_buf[start:end])
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if type(key) is str:  # the common case, per frame: two dict look-ups
            tag = keyword_tag(key)
            if tag is None:
                return default
            value = self._lean_values.get(tag)
            if type(value) is tuple:
                value = self._value(tag)
            return default if value is None else value
        tag = (key[0] << 16) | key[1] if isinstance(key, tuple) else int(key)
        value = self._value(tag)
        return default if value is None else LeanElement(value)

    def __contains__(self, key: Any) -> bool:
        values: dict[int, Any] = object.__getattribute__(self, "_lean_values")
        tag = keyword_tag(key) if isinstance(key, str) else (
            (key[0] << 16) | key[1] if isinstance(key, tuple) else int(key))
        return tag is not None and tag in values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        tag = keyword_tag(name)
        value = None if tag is None else self._value(tag)
        if value is None:
            raise AttributeError(name)
        return value

    def __bool__(self) -> bool:
        return bool(object.__getattribute__(self, "_lean_values"))

    def private_block(self, group: int, private_creator: str, create: bool = False) -> Any:
        """The block of ``private_creator`` in ``group`` (``[offset].value``), as pydicom's."""
        values: dict[int, Any] = object.__getattribute__(self, "_lean_values")
        for tag in [t for t in values if t >> 16 == group and 0x10 <= t & 0xFFFF <= 0xFF]:
            value = self._value(tag)
            if isinstance(value, str) and value.strip() == private_creator:
                return LeanBlock(self, (group << 16) | ((tag & 0xFF) << 8))
        raise KeyError(f"private creator {private_creator!r} not in group {group:04X}")

    def private_items(self) -> list[LeanItem]:
        """The items of this item's private sequences (Siemens XA keeps values there)."""
        values: dict[int, Any] = object.__getattribute__(self, "_lean_values")
        return [item for tag, value in values.items() if (tag >> 16) % 2 == 1
                and isinstance(value, list) for item in value if isinstance(item, LeanItem)]


def lean_value(vr: str, raw: bytes) -> Any:
    """An element's value as :class:`LeanItem` gives it: bytes for a binary VR, else as
    :func:`~dicomvol.dicom.lean.convert_value` converts it."""
    return raw if vr in _BINARY_VRS else convert_value(raw, vr)


class LeanHeaderMF(LeanItem):
    """The top-level data set, with the transfer syntax as ``file_meta``."""

    def __init__(self, values: dict[int, Any], buf: bytes, transfer_syntax: str) -> None:
        super().__init__(values, buf)
        object.__setattr__(self, "file_meta", {"TransferSyntaxUID": transfer_syntax})


def read_enhanced(fp: BinaryIO) -> tuple[LeanHeaderMF, int, int, int] | None:
    """The header of an explicit VR LE Enhanced MR file, or None (then pydicom reads it).

    ``fp`` is positioned at the start of the file. Returns
    ``(header, tag_offset, value_offset, pixel_length)`` as
    :func:`dicomvol.dicom.lean.read_lean` does.
    """
    buf = fp.read(_FIRST_READ)
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    try:
        meta_end, transfer_syntax = read_meta(buf)
    except (struct.error, ValueError, IndexError):  # a cut or damaged meta: pydicom decides
        return None
    if transfer_syntax != _EXPLICIT_LE or meta_end is None:
        return None
    while True:  # the header only: read on until PixelData is reached, then walk it once
        try:
            needed = _header_end(buf, meta_end)
        except (ValueError, IndexError):
            return None  # malformed: pydicom decides
        if needed is not None and needed <= len(buf):
            break
        # Ends unknown (inside a sequence of undefined length, walked again from the start
        # after each read): the buffer grows fourfold, so that few walks find the end.
        more = fp.read(3 * len(buf) if needed is None else max(len(buf), needed + 12 - len(buf)))
        if not more:
            return None
        buf += more
    try:
        parsed = _dataset(buf, meta_end, len(buf), {}, top=True)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):
        parsed = None
    if parsed is None or parsed[2] is None:
        return None
    values, _, pixel = parsed
    header = LeanHeaderMF(values, buf, transfer_syntax)
    if pixel is None or str(header.get("SOPClassUID") or "") not in SOP_CLASSES:
        return None
    tag_offset, value_offset, length = pixel
    return header, tag_offset, value_offset, length


def _dataset(buf: bytes, pos: int, end: int, shared: dict[bytes, list[LeanItem]],
             top: bool = False, depth: int = 0
             ) -> tuple[dict[int, Any], int, tuple[int, int, int] | None] | None:
    """Elements from ``pos`` to ``end`` (or an item delimiter); PixelData stops the top level.

    ``shared`` holds the sequences of defined length read so far, by their bytes: an
    identical sequence is the same list of items (read once).
    """
    values: dict[int, Any] = {}
    while pos + 8 <= end:
        group, elem, raw_vr, length = _EXPLICIT.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag == _ITEM_END:
            return values, pos + 8, None
        if raw_vr in _LONG_VRS:
            (length,) = _U32.unpack_from(buf, pos + 8)
            start = pos + 12
        else:
            start = pos + 8
        if top and tag in PIXEL_DATA_TAGS:
            return values, pos, (pos, start, length)
        if top and tag == _PER_FRAME and raw_vr == b"SQ":  # a table: most items not parsed
            from dicomvol.dicom.frametable import read_table

            values[tag], pos = read_table(buf, start, length, shared, depth + 1)
            continue
        if raw_vr == b"SQ":
            if length <= _SHARED_MAX and start + length <= end:  # read once per file
                key = buf[start:start + length]
                items = shared.get(key)
                if items is None:
                    items = shared[key] = _sequence(buf, start, length, shared, depth + 1)[0]
                values[tag] = items
                pos = start + length
                continue
            items, pos = _sequence(buf, start, length, shared, depth + 1)
            if pos - start <= _SHARED_MAX:  # undefined length: shared once its end is known
                items = shared.setdefault(buf[start:pos], items)
            values[tag] = items
            continue
        if length == _UNDEFINED:
            return None  # encapsulated data before PixelData, or malformed: pydicom decides
        pos = start + length
        if pos > end:
            return None
        values[tag] = (raw_vr.decode("ascii"), start, pos)  # converted when read
    return values, pos, None


def parse_item(buf: bytes, pos: int, end: int, shared: dict[bytes, list[LeanItem]],
               depth: int) -> tuple[dict[int, Any], int]:
    """The values of the sequence item whose elements start at ``pos`` (up to ``end`` or its
    delimiter), and the offset after them, as :func:`_sequence` reads each item
    (ValueError: unreadable)."""
    parsed = _dataset(buf, pos, end, shared, depth=depth)
    if parsed is None:
        raise ValueError("unreadable item")
    return parsed[0], parsed[1]


def _sequence(buf: bytes, start: int, length: int, shared: dict[bytes, list[LeanItem]],
              depth: int = 1) -> tuple[list[LeanItem], int]:
    """The items of a sequence whose value starts at ``start``, and the offset after it.

    ValueError beyond :data:`~dicomvol.dicom.lean.MAX_NESTING` levels (pydicom decides).
    """
    if depth > MAX_NESTING:
        raise ValueError("sequences nested too deeply")
    end = len(buf) if length == _UNDEFINED else start + length
    items: list[LeanItem] = []
    pos = start
    while pos + 8 <= end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | elem
        (item_length,) = _U32.unpack_from(buf, pos + 4)
        pos += 8
        if tag == _SEQ_END:
            return items, pos
        if tag != _ITEM:
            raise ValueError("not an item")
        item_end = end if item_length == _UNDEFINED else pos + item_length
        values, pos = parse_item(buf, pos, item_end, shared, depth)
        if item_length != _UNDEFINED:
            pos = item_end
        items.append(LeanItem(values, buf))
    if length == _UNDEFINED:
        raise ValueError("sequence without delimiter")
    return items, end


def first_frame_only(buf: bytes) -> bytes | None:
    """A whole explicit VR LE file's header with its per-frame sequence cut to the first item.

    ``buf`` is the file from its start; the result is the file up to PixelData
    (excluded) with PerFrameFunctionalGroupsSequence holding only its first
    item, for readers of one frame's groups (the sidecar: pydicom then parses
    one item, not 5,000). Sequences of undefined length are skipped by their
    delimiters. None when there is nothing to cut or the top level is not plain
    (other syntax, damage): read the whole header.
    """
    try:
        meta_end, transfer_syntax = read_meta(buf)
        if transfer_syntax != _EXPLICIT_LE or meta_end is None:
            return None
        pos, cut = meta_end, None
        while pos + 8 <= len(buf):
            tag, raw_vr, length, start = _element_head(buf, pos)
            if tag in PIXEL_DATA_TAGS:
                break
            if length == _UNDEFINED and raw_vr == b"SQ":
                end = _sequence_end(buf, start, 1)
            elif length == _UNDEFINED or start + length > len(buf):
                return None
            else:
                end = start + length
            if tag == _PER_FRAME and raw_vr == b"SQ" and end - start >= 8:
                item_group, item_elem, item_length = struct.unpack_from("<HHI", buf, start)
                if (item_group << 16) | item_elem != _ITEM:
                    return None
                item_end = (_item_end(buf, start + 8, 1) if item_length == _UNDEFINED
                            else start + 8 + item_length)
                if item_end > end:
                    return None
                cut = (pos, start, item_end, end)
            pos = end
    except (struct.error, ValueError, IndexError, RecursionError):
        return None
    if cut is None:
        return None
    at, start, item_end, seq_end = cut
    item = buf[start:item_end]
    element = _EXPLICIT.pack(0x5200, 0x9230, b"SQ", 0) + _U32.pack(len(item))
    return b"".join((buf[:at], element, item, buf[seq_end:pos]))


def _element_head(buf: bytes, pos: int) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value offset) of the explicit VR LE element at ``pos``."""
    group, elem, raw_vr, length = _EXPLICIT.unpack_from(buf, pos)
    if raw_vr in _LONG_VRS:
        (length,) = _U32.unpack_from(buf, pos + 8)
        return (group << 16) | elem, raw_vr, length, pos + 12
    return (group << 16) | elem, raw_vr, length, pos + 8


def _header_end(buf: bytes, pos: int) -> int | None:
    """Where the top level's PixelData element ends its header (its tag, VR and length
    fit in ``buf`` up to the returned offset), walking the top level only (a sequence of
    defined length is skipped by its length, one of undefined length by its delimiters).

    An offset past ``len(buf)``: at least that much must be read; None: ``buf`` ends inside
    a sequence of undefined length, or what follows is malformed (read more; at the end of
    the file pydicom decides). ValueError or IndexError: malformed at the top level.
    """
    n = len(buf)
    while pos + 12 <= n:
        tag, raw_vr, length, start = _element_head(buf, pos)
        if tag in PIXEL_DATA_TAGS:
            return start
        if length != _UNDEFINED:
            pos = start + length
        elif raw_vr == b"SQ":
            try:
                pos = _sequence_end(buf, start, 1)
            except (struct.error, ValueError):  # cut short inside it (or damaged: once the
                return None  # whole file is read and still no end, pydicom decides)
        else:
            raise ValueError("undefined length outside a sequence before PixelData")
    return pos + 12


def _sequence_end(buf: bytes, pos: int, depth: int) -> int:
    """The offset after the delimiter of an undefined-length sequence whose items start at
    ``pos`` (ValueError: not items, or nested too deeply; struct.error: cut short)."""
    if depth > MAX_NESTING:
        raise ValueError("sequences nested too deeply")
    while True:
        group, elem, length = _ITEM_HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag == _SEQ_END:
            return pos + 8
        if tag != _ITEM:
            raise ValueError("not an item")
        pos = _item_end(buf, pos + 8, depth) if length == _UNDEFINED else pos + 8 + length


def _item_end(buf: bytes, pos: int, depth: int) -> int:
    """The offset after the delimiter of an undefined-length item whose elements start at
    ``pos``."""
    while True:
        group, elem, raw_vr, length = _EXPLICIT.unpack_from(buf, pos)
        if (group << 16) | elem == _ITEM_END:
            return pos + 8
        start = pos + 8
        if raw_vr in _LONG_VRS:
            (length,) = _U32.unpack_from(buf, pos + 8)
            start = pos + 12
        if length != _UNDEFINED:
            pos = start + length
        elif raw_vr == b"SQ":
            pos = _sequence_end(buf, start, depth + 1)
        else:
            raise ValueError("undefined length outside a sequence")
        if pos > len(buf):
            raise ValueError("element past the end")

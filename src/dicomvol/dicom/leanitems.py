"""Items of a lean header: the ``Dataset`` surface over an explicit VR little-endian walk.

:class:`LeanItem` is a data set or sequence item read by :func:`parse_dataset`: every
element up to PixelData, sequences included, values kept as offsets into the file's bytes
and converted on first use as :mod:`dicomvol.dicom.lean` converts them (numbers, text,
lists for multi-valued DS/IS/CS, bytes for OB/OW/UN); sequences are lists of items, an
identical sequence (by its bytes) one shared list. :mod:`~dicomvol.dicom.leanmf` reads
Enhanced MR headers with it, :mod:`~dicomvol.dicom.frametable` their per-frame items.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from dicomvol.dicom.lean import MAX_NESTING, convert_value
from dicomvol.dicom.tags import PIXEL_DATA_TAGS, keyword_tag

#: VRs whose explicit VR header has a 4-byte length.
LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV",
            b"UV"}
#: VRs kept as bytes (not converted).
BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
PER_FRAME_TAG = 0x52009230
ITEM_TAG, ITEM_END_TAG, SEQUENCE_END_TAG = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
#: An explicit VR element header (group, element, VR, short length), a 4-byte length.
EXPLICIT_HEAD = struct.Struct("<HH2sH")
U32 = struct.Struct("<I")
#: An item or delimiter header (group, element, length).
ITEM_HEAD = struct.Struct("<HHI")
#: Sequences up to this many bytes are read once per file and shared (functional groups).
SHARED_MAX = 1 << 16
#: Reads a top-level PerFrameFunctionalGroupsSequence: (buffer, value offset, length, shared
#: sequences, depth) -> (its items, the offset after it), as :func:`parse_sequence` does.
PerFrameReader = Callable[[bytes, int, int, "dict[bytes, list[LeanItem]]", int],
                          "tuple[Sequence[LeanItem], int]"]


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
    return raw if vr in BINARY_VRS else convert_value(raw, vr)


def parse_dataset(buf: bytes, pos: int, end: int, shared: dict[bytes, list[LeanItem]],
                  top: bool = False, depth: int = 0, per_frame: PerFrameReader | None = None
                  ) -> tuple[dict[int, Any], int, tuple[int, int, int] | None] | None:
    """Elements from ``pos`` to ``end`` (or an item delimiter); PixelData stops the top level.

    ``shared`` holds the sequences of defined length read so far, by their bytes: an
    identical sequence is the same list of items (read once).
    """
    values: dict[int, Any] = {}
    while pos + 8 <= end:
        group, elem, raw_vr, length = EXPLICIT_HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag == ITEM_END_TAG:
            return values, pos + 8, None
        if raw_vr in LONG_VRS:
            (length,) = U32.unpack_from(buf, pos + 8)
            start = pos + 12
        else:
            start = pos + 8
        if top and tag in PIXEL_DATA_TAGS:
            return values, pos, (pos, start, length)
        if top and per_frame is not None and tag == PER_FRAME_TAG and raw_vr == b"SQ":
            values[tag], pos = per_frame(buf, start, length, shared, depth + 1)
            continue
        if raw_vr == b"SQ":
            if length <= SHARED_MAX and start + length <= end:  # read once per file
                key = buf[start:start + length]
                items = shared.get(key)
                if items is None:
                    items = shared[key] = parse_sequence(buf, start, length, shared, depth + 1)[0]
                values[tag] = items
                pos = start + length
                continue
            items, pos = parse_sequence(buf, start, length, shared, depth + 1)
            if pos - start <= SHARED_MAX:  # undefined length: shared once its end is known
                items = shared.setdefault(buf[start:pos], items)
            values[tag] = items
            continue
        if length == UNDEFINED_LENGTH:
            return None  # encapsulated data before PixelData, or malformed: pydicom decides
        pos = start + length
        if pos > end:
            return None
        values[tag] = (raw_vr.decode("ascii"), start, pos)  # converted when read
    return values, pos, None


def parse_item(buf: bytes, pos: int, end: int, shared: dict[bytes, list[LeanItem]],
               depth: int) -> tuple[dict[int, Any], int]:
    """The values of the sequence item whose elements start at ``pos`` (up to ``end`` or its
    delimiter), and the offset after them, as :func:`parse_sequence` reads each item
    (ValueError: unreadable)."""
    parsed = parse_dataset(buf, pos, end, shared, depth=depth)
    if parsed is None:
        raise ValueError("unreadable item")
    return parsed[0], parsed[1]


def parse_sequence(buf: bytes, start: int, length: int, shared: dict[bytes, list[LeanItem]],
              depth: int = 1) -> tuple[list[LeanItem], int]:
    """The items of a sequence whose value starts at ``start``, and the offset after it.

    ValueError beyond :data:`~dicomvol.dicom.lean.MAX_NESTING` levels (pydicom decides).
    """
    if depth > MAX_NESTING:
        raise ValueError("sequences nested too deeply")
    end = len(buf) if length == UNDEFINED_LENGTH else start + length
    items: list[LeanItem] = []
    pos = start
    while pos + 8 <= end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | elem
        (item_length,) = U32.unpack_from(buf, pos + 4)
        pos += 8
        if tag == SEQUENCE_END_TAG:
            return items, pos
        if tag != ITEM_TAG:
            raise ValueError("not an item")
        item_end = end if item_length == UNDEFINED_LENGTH else pos + item_length
        values, pos = parse_item(buf, pos, item_end, shared, depth)
        if item_length != UNDEFINED_LENGTH:
            pos = item_end
        items.append(LeanItem(values, buf))
    if length == UNDEFINED_LENGTH:
        raise ValueError("sequence without delimiter")
    return items, end

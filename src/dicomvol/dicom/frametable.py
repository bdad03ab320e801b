"""The per-frame functional groups of a lean Enhanced MR header, held as a table.

A 5,000-frame diffusion file has 5,000 PerFrameFunctionalGroupsSequence items
but only a few structures of them: what differs from item to item are values.
:func:`read_table` reads the items as :mod:`~dicomvol.dicom.leanitems` would, but
parses only items of a structure it has not seen: an item whose bytes equal a
parsed item's everywhere but in its leaf values (every element and item header
the same) has that item's structure, its values where that item's lie
(:class:`FrameLayout`), and is kept as its bytes (:class:`FrameTable`).
``frames.frame_records`` then computes the repeating fields once per distinct
value of what they read (the frame memo's read pattern, looked up in the item's
bytes) and converts the per-frame values (position, FrameContentSequence) from
the bytes (:meth:`FrameTable.contents`); any item is also read whole on demand
(``table[i]``, a :class:`~dicomvol.dicom.leanitems.LeanItem`, as the plain reader
gives it). ``tests/dicom/test_frametable.py`` holds the records to item-by-item
reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

from dicomvol.dicom.framegroups import CONTENT_CONVERTERS, dimension_values
from dicomvol.dicom.leanitems import (
    ITEM_HEAD,
    ITEM_TAG,
    SEQUENCE_END_TAG,
    UNDEFINED_LENGTH,
    LeanItem,
    lean_value,
    parse_item,
)
from dicomvol.dicom.tags import KEYWORD_TAGS

_UNASSIGNED = KEYWORD_TAGS["UnassignedPerFrameConvertedAttributesSequence"][0]
#: The values read per frame, as (sequence, element), in the order of the fields they give
#: (``framegroups.CONTENT_FIELDS``, as :func:`~dicomvol.dicom.framegroups.content_fields`).
CONTENT_TAGS = tuple((KEYWORD_TAGS[s][0], KEYWORD_TAGS[e][0]) for s, e in (
    ("PlanePositionSequence", "ImagePositionPatient"),
    ("FrameContentSequence", "TemporalPositionIndex"),
    ("FrameContentSequence", "FrameAcquisitionDateTime"),
    ("FrameContentSequence", "StackID"),
    ("FrameContentSequence", "DimensionIndexValues")))
#: Layouts learnt per file (beyond: further items are parsed one by one).
MAX_LAYOUTS = 64
#: Items parsed (each one learnt: parsed twice) after which no more are learnt unless
#: as many items matched one as were learnt (where items differ in structure, e.g. a
#: private element only some frames hold, parsing is all there is to do).
GIVE_UP_AFTER = 256
_EMPTY = slice(0, 0)
_NO_LAYOUTS: list[FrameLayout] = []
#: An item delimitation item (its tag and a zero length), as it ends an undefined item.
_ITEM_DELIMITER = ITEM_HEAD.pack(0xFFFE, 0xE00D, 0)


class FrameLayout:
    """Where the values of items of one structure lie.

    Attributes
    ----------
    size : int
        Bytes of the item's value (an undefined-length item: through its delimiter).
    key_of : callable
        Item bytes -> the bytes outside its leaf values (its structure: the layout's key).
    values_of : callable
        Item bytes -> the raw bytes of :data:`CONTENT_TAGS` (empty where absent).
    vrs : tuple of (str or None)
        The VR of each of :data:`CONTENT_TAGS`, None where absent.
    leaves : dict
        Every leaf value's (start, end) in the item's bytes, by its read key as the frame
        memo notes it (a tag, or ``("at", steps, tag)`` inside sequences).
    structure : tuple of bytes
        ``key_of`` of the item the layout was learnt from: an item of this layout has it.
    """

    __slots__ = ("caches", "key_of", "leaves", "size", "structure", "values_of", "vrs")

    def __init__(self, item: bytes, spans: list[tuple[int, int]],
                 fields: list[tuple[str, int, int] | None],
                 leaves: dict[Any, tuple[int, int]]) -> None:
        self.size = len(item)
        self.key_of = itemgetter(*(slice(a, b) for a, b in spans), _EMPTY)
        self.structure = self.key_of(item)
        self.values_of = itemgetter(*(_EMPTY if f is None else slice(f[1], f[2])
                                      for f in fields))
        self.vrs = tuple(None if f is None else f[0] for f in fields)
        self.leaves = leaves
        #: Per field but the last (dimension index): its value by raw bytes (positions,
        #: temporal indices and stacks repeat; acquisition times rarely).
        self.caches: tuple[dict[bytes, Any], ...] = ({}, {}, {}, {})

    def field(self, at: int, raw: bytes) -> Any:
        """Field ``at`` of :data:`CONTENT_TAGS` from its raw bytes (kept for the next)."""
        vr = self.vrs[at]
        value = self.caches[at][raw] = CONTENT_CONVERTERS[at](
            None if vr is None else lean_value(vr, raw))
        return value


class FrameTable(Sequence[LeanItem]):
    """The items of one PerFrameFunctionalGroupsSequence: a sequence of
    :class:`~dicomvol.dicom.leanitems.LeanItem` (read on demand) with columns.

    Attributes
    ----------
    layouts : list of (FrameLayout or None)
        Per frame: the layout of its item (None: read item by item).
    """

    def __init__(self, buf: bytes, shared: dict[bytes, list[LeanItem]], depth: int,
                 end: int) -> None:
        self._buf, self._shared, self._depth, self._end = buf, shared, depth, end
        self._starts: list[int] = []
        self._lengths: list[int] = []
        self.layouts: list[FrameLayout | None] = []
        self._raw: list[tuple[bytes, ...] | None] = []
        self._items: dict[int, LeanItem] = {}

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> LeanItem: ...

    @overload
    def __getitem__(self, index: slice) -> list[LeanItem]: ...

    def __getitem__(self, index: int | slice) -> LeanItem | list[LeanItem]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("frame index out of range")
        item = self._items.get(index)
        if item is None:  # read as the plain reader reads it (same bounds, same shared)
            start, length = self._starts[index], self._lengths[index]
            end = self._end if length == UNDEFINED_LENGTH else start + length
            item = self._items[index] = LeanItem(
                parse_item(self._buf, start, end, self._shared, self._depth)[0], self._buf)
        return item

    def __iter__(self) -> Iterator[LeanItem]:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def item(self, index: int) -> bytes | None:
        """The bytes of frame ``index``'s item (None: it has no layout)."""
        layout = self.layouts[index]
        if layout is None:
            return None
        start = self._starts[index]
        return self._buf[start:start + layout.size]

    def contents(self, dims: tuple[int, tuple[int, ...]] | None
                 ) -> list[tuple[Any, ...] | None]:
        """Per frame: its per-frame fields (``framegroups.CONTENT_FIELDS``, in order) from
        its raw values, as ``framegroups.frame_content`` reads them from its item; None for
        a frame without a layout (read item by item)."""
        out: list[tuple[Any, ...] | None] = []
        append = out.append
        for layout, raw in zip(self.layouts, self._raw, strict=True):
            if layout is None or raw is None:
                append(None)
                continue
            fields = list(map(dict.get, layout.caches, raw, _MISSINGS))  # all but the last
            if _MISSING in fields:
                for at, value in enumerate(fields):
                    if value is _MISSING:
                        fields[at] = layout.field(at, raw[at])
            vr = layout.vrs[4]
            fields.append(None if vr is None or not dims else
                          dimension_values(lean_value(vr, raw[4]), dims))
            append(tuple(fields))
        return out


_MISSING = object()
_MISSINGS = (_MISSING,) * 4


def read_table(buf: bytes, start: int, length: int, shared: dict[bytes, list[LeanItem]],
               depth: int) -> tuple[FrameTable, int]:
    """The items of the PerFrameFunctionalGroupsSequence whose value starts at ``start``
    (as ``leanitems.parse_sequence`` reads any sequence), and the offset after it.

    ValueError where ``parse_sequence`` raises it (not an item, no delimiter, unreadable).
    """
    end = len(buf) if length == UNDEFINED_LENGTH else start + length
    table = FrameTable(buf, shared, depth, end)
    by_length: dict[int, list[FrameLayout]] = {}
    layouts: dict[tuple[Any, ...], FrameLayout] = {}
    learning, misses, hits = True, 0, 0
    starts, lengths, rows, raws = table._starts, table._lengths, table.layouts, table._raw
    pos = start
    while pos + 8 <= end:
        group, elem, item_length = ITEM_HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        pos += 8
        if tag == SEQUENCE_END_TAG:
            return table, pos
        if tag != ITEM_TAG:
            raise ValueError("not an item")
        candidates = by_length.get(item_length, _NO_LAYOUTS)
        matched = _match(buf, pos, end, candidates) if candidates else None
        if matched is not None:
            layout, item = matched
            hits += 1
            starts.append(pos)
            lengths.append(item_length)
            rows.append(layout)
            raws.append(layout.values_of(item))
            pos += layout.size
        else:
            item_end = end if item_length == UNDEFINED_LENGTH else pos + item_length
            values, after = parse_item(buf, pos, item_end, shared, depth)
            if item_length != UNDEFINED_LENGTH:
                after = item_end
            index = len(starts)
            starts.append(pos)
            lengths.append(item_length)
            table._items[index] = LeanItem(values, buf)
            misses += 1
            learning = learning and (misses <= GIVE_UP_AFTER or hits >= misses)
            learnt = (_learn(buf, pos, after, item_length, end, depth, by_length, layouts)
                      if learning else None)
            if learnt is None:
                rows.append(None)
                raws.append(None)
            else:
                rows.append(learnt)
                raws.append(learnt.values_of(buf[pos:after]))
                known = by_length[item_length]  # (learnt is one of them: tried first next)
                at = known.index(learnt)
                known[0], known[at] = learnt, known[0]
            pos = after
    if length == UNDEFINED_LENGTH:
        raise ValueError("sequence without delimiter")
    return table, end


#: Layouts tried for an item before it is parsed (the one matched last is tried first).
MAX_TRIES = 4


def _match(buf: bytes, pos: int, end: int, candidates: list[FrameLayout]
           ) -> tuple[FrameLayout, bytes] | None:
    """The layout among the first :data:`MAX_TRIES` of ``candidates`` whose structure the
    item at ``pos`` has, with the item's bytes (moved to the front: undefined-length items
    share one list); None to parse the item."""
    for at, layout in enumerate(candidates):
        if at == MAX_TRIES:
            return None
        if pos + layout.size > end:
            continue
        item = buf[pos:pos + layout.size]
        if layout.key_of(item) == layout.structure:
            if at:
                candidates[0], candidates[at] = layout, candidates[0]
            return layout, item
    return None


def _learn(buf: bytes, pos: int, after: int, item_length: int, end: int, depth: int,
           by_length: dict[int, list[FrameLayout]],
           layouts: dict[tuple[Any, ...], FrameLayout]) -> FrameLayout | None:
    """The layout of the item from ``pos`` to ``after`` (one already learnt, or new); None
    when its frames are read item by item (no per-frame values where the records read
    them, a converted-attributes sequence, an undefined-length item without its
    delimiter, or too many layouts)."""
    if after > end or after <= pos:
        return None
    undefined = item_length == UNDEFINED_LENGTH
    if undefined and buf[after - 8:after] != _ITEM_DELIMITER:
        return None
    # Read again without sharing: every leaf value found lies in this item's own bytes.
    values, _ = parse_item(buf, pos, after if undefined else pos + item_length, _NO_SHARING,
                           depth)
    if _UNASSIGNED in values:
        return None
    fields: list[tuple[str, int, int] | None] = []
    for sequence, tag in CONTENT_TAGS:
        items = values.get(sequence)
        if type(items) is not list or not items or not items[0]._lean_values:
            return None  # the records' direct read needs both first items, not empty
        value = items[0]._lean_values.get(tag)
        if value is None:
            fields.append(None)
        elif type(value) is tuple:
            fields.append((value[0], value[1] - pos, value[2] - pos))
        else:
            return None  # a sequence where a value belongs
    leaves: dict[Any, tuple[int, int]] = {}
    _leaf_values(values, (), pos, leaves)
    holes = sorted(leaves.values())
    spans, at = [], 0
    for s, e in holes:
        if s > at:
            spans.append((at, s))
        at = max(at, e)
    size = after - pos
    if at < size:
        spans.append((at, size))
    # One layout per structure: every byte outside the leaf values (tags, VRs, lengths,
    # delimiters) the same. (Equal offsets are not enough: a VR decides a value.)
    item = buf[pos:after]
    signature = (item_length, tuple(spans), tuple(item[a:b] for a, b in spans))
    layout = layouts.get(signature)
    if layout is None:
        if len(layouts) >= MAX_LAYOUTS:
            return None
        layout = layouts[signature] = FrameLayout(item, spans, fields, leaves)
        by_length.setdefault(item_length, []).append(layout)
    return layout


def _leaf_values(values: dict[int, Any], steps: tuple[tuple[int, int], ...], pos: int,
                 out: dict[Any, tuple[int, int]]) -> None:
    """Every unconverted leaf value of an item's ``values`` (read at ``pos``), at any depth,
    into ``out`` by its read key as the frame memo notes it."""
    for tag, value in values.items():
        if type(value) is tuple:
            out[("at", steps, tag) if steps else tag] = (value[1] - pos, value[2] - pos)
        elif type(value) is list:
            for index, item in enumerate(value):
                if type(item) is LeanItem:
                    _leaf_values(item._lean_values, (*steps, (tag, index)), pos, out)


class _NoSharing(dict[bytes, list[LeanItem]]):
    """A shared-sequences table that shares nothing (each sequence read where it lies)."""

    def get(self, key: bytes, default: Any = None) -> Any:
        return default

    def __setitem__(self, key: bytes, value: list[LeanItem]) -> None:
        return None

    def setdefault(self, key: bytes, default: Any = None) -> Any:
        return default


_NO_SHARING = _NoSharing()

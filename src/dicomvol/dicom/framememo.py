"""Per-frame values computed once per distinct input: a memo that records what it read.

The records of a 5,000-frame Enhanced MR file are built frame by frame by the
same header code as any file (``frames.frame_records``): diffusion, Philips
scaling and the functional-group fields. Most functional groups repeat from
frame to frame. :class:`FrameMemo` calls such a function with a view of the
frame's item that records every element it reads (by tag, with its value, by
type and value; a sequence by its number of items, its items as views that record
their own reads; the private creators of a group and the private sequences as a
whole). A later frame whose recorded elements all hold the same values gets the
stored result: the function, deterministic in what it reads, would read and return
the same. Values inside a sequence are looked up once per distinct list of items
(a sequence that repeats byte for byte is one list, :mod:`dicomvol.dicom.leanitems`),
so a frame whose private per-frame item differs only in what is not read (its own
UID, a window) still matches. Items that are not lean (pydicom datasets,
``fgroups`` items) are passed straight through. ``tests/dicom/test_lean.py`` holds
the records to pydicom's on the corpus and on synthetic files.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from dicomvol.dicom.leanitems import LeanBlock, LeanElement, LeanItem
from dicomvol.dicom.tags import keyword_tag

#: Distinct read patterns kept per function and arguments (beyond: computed each time).
MAX_PATTERNS = 8
#: Calls without a single match after which a function is called directly (frames that
#: all differ, e.g. a private group unique per frame, pay for recording no longer; large
#: enough for frames stored slice by slice, whose first match follows one pass over the
#: volumes of a slice).
GIVE_UP_AFTER = 512


def _identity(value: Any) -> Hashable:
    """What makes two values of an element the same input (a sequence: its number of
    items; what is read in them is noted apart, through views of them)."""
    if isinstance(value, list):
        if value and isinstance(value[0], LeanItem):
            return ("SQ", len(value))
        value = tuple(value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return (type(value), value)


def _creators(item: LeanItem, group: int) -> tuple[int, ...]:
    return tuple(sorted(t for t in item._lean_values
                        if t >> 16 == group and 0x10 <= t & 0xFFFF <= 0xFF))


def _private(item: LeanItem) -> Hashable:
    """The private sequences of an item as :meth:`_Reads.private_items` walks them: their
    tags and numbers of items."""
    return tuple((tag, len(value)) for tag, value in item._lean_values.items()
                 if (tag >> 16) % 2 == 1 and isinstance(value, list))


#: What a read inside a sequence item finds where that item is not there.
_GONE = ("gone",)


def _probe(item: LeanItem, key: Any) -> Hashable:
    """The identity of what ``key`` (a tag or a pseudo key, or ``("at", steps, key)``:
    that key read in the item reached by ``steps``, (tag, index) pairs) reads from
    ``item``."""
    if type(key) is int:
        return _identity(item._value(key))
    kind = key[0]
    if kind == "at":
        for tag, index in key[1]:
            value = item._value(tag)
            if type(value) is not list or index >= len(value) or type(value[index]) is not LeanItem:
                return _GONE
            item = value[index]
        return _probe(item, key[2])
    if kind == "bool":
        return bool(item)
    if kind == "in":
        return key[1] in item._lean_values
    if kind == "creators":
        return _creators(item, key[1])
    return _private(item)


class _Reads:
    """A lean item as the header code reads it, noting each read and what it found.

    A sequence read is noted by its number of items and given as views of them that
    note their own reads (keys ``("at", steps, key)``, ``steps`` the (tag, index) path
    from the frame's item): a frame matches on the values read inside its sequences,
    not on the sequences' whole bytes (e.g. a private per-frame item holding the frame's
    own UID beside the scale factors that are read).
    """

    #: Marks the class for :func:`dicomvol.dicom.values.is_dataset`.
    lean_dataset = True

    _item: LeanItem
    _read: dict[Any, Hashable]
    _steps: tuple[tuple[int, int], ...]

    def __init__(self, item: LeanItem, read: dict[Any, Hashable] | None = None,
                 steps: tuple[tuple[int, int], ...] = ()) -> None:
        object.__setattr__(self, "_item", item)
        object.__setattr__(self, "_read", {} if read is None else read)
        object.__setattr__(self, "_steps", steps)

    def _key(self, key: Any) -> Any:
        return ("at", self._steps, key) if self._steps else key

    def _views(self, tag: int, items: list[Any]) -> list[Any]:
        return [_Reads(item, self._read, (*self._steps, (tag, i))) if type(item) is LeanItem
                else item for i, item in enumerate(items)]

    def _note(self, tag: int) -> Any:
        value = self._item._value(tag)
        self._read[self._key(tag)] = _identity(value)
        if type(value) is list and value and type(value[0]) is LeanItem:
            return self._views(tag, value)
        return value

    @staticmethod
    def _tag_of(key: Any) -> int | None:
        if isinstance(key, str):
            return keyword_tag(key)
        return (key[0] << 16) | key[1] if isinstance(key, tuple) else int(key)

    def get(self, key: Any, default: Any = None) -> Any:
        tag = self._tag_of(key)
        value = None if tag is None else self._note(tag)
        if value is None:
            return default
        return value if isinstance(key, str) else LeanElement(value)

    def __contains__(self, key: Any) -> bool:
        tag = self._tag_of(key)
        if tag is None:
            return False
        found = key in self._item
        self._read[self._key(("in", tag))] = found  # present, whatever its value
        return found

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        tag = keyword_tag(name)
        value = None if tag is None else self._note(tag)
        if value is None:
            raise AttributeError(name)
        return value

    def __bool__(self) -> bool:
        self._read[self._key(("bool",))] = bool(self._item)
        return bool(self._item)

    def private_block(self, group: int, private_creator: str, create: bool = False) -> Any:
        """As :meth:`LeanItem.private_block`; the block's elements are read through here."""
        self._read[self._key(("creators", group))] = _creators(self._item, group)
        for tag in _creators(self._item, group):
            value = self._note(tag)
            if isinstance(value, str) and value.strip() == private_creator:
                return LeanBlock(self, (group << 16) | ((tag & 0xFF) << 8))  # type: ignore[arg-type]
        raise KeyError(f"private creator {private_creator!r} not in group {group:04X}")

    def private_items(self) -> list[Any]:
        """As :meth:`LeanItem.private_items`, as views."""
        self._read[self._key(("private",))] = _private(self._item)
        values = self._item._lean_values
        return [view for tag, value in values.items() if (tag >> 16) % 2 == 1
                and isinstance(value, list) for view in self._views(tag, value)
                if type(view) is _Reads]


def _hashable(value: Any) -> Hashable:
    if type(value).__hash__ is None:  # e.g. a data set: told apart by identity
        return ("id", id(value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return (type(value), value)


def _probes(item: LeanItem, reads: tuple[Any, ...]) -> tuple[Hashable, ...]:
    """:func:`_probe` of each of ``reads`` (plain tags inline: this runs per frame)."""
    values = item._lean_values
    out: list[Hashable] = []
    for key in reads:
        if type(key) is int:
            value = values.get(key)
            if type(value) is tuple:  # not converted yet
                value = item._value(key)
            out.append(_identity(value))
        else:
            out.append(_probe(item, key))
    return tuple(out)


class _Pattern:
    """One recorded read pattern, compiled for probing: its top-level keys in order, and the
    reads inside each sequence it read grouped under the sequence's tag, probed once per
    distinct list of items (the lists that repeat from frame to frame are one object:
    their reads are looked up, not read again)."""

    __slots__ = ("nested", "order", "reads", "top")

    def __init__(self, reads: tuple[Any, ...]) -> None:
        self.reads = reads
        top: list[Any] = []
        nested: dict[int, list[tuple[int, tuple[Any, ...], Any]]] = {}
        for key in reads:
            if type(key) is tuple and key[0] == "at":
                (tag, index), rest = key[1][0], key[1][1:]
                nested.setdefault(tag, []).append((index, rest, key[2]))
            else:
                top.append(key)
        self.top = tuple(top)
        self.nested = tuple((tag, tuple(inside)) for tag, inside in nested.items())
        #: The reads in the order :meth:`probe` gives their values.
        self.order = self.top + tuple(("at", ((tag, index), *rest), op)
                                      for tag, inside in self.nested
                                      for index, rest, op in inside)

    def probe(self, item: LeanItem, seen: dict[tuple[int, int], tuple[list[Any],
                                                                       tuple[Hashable, ...]]]
              ) -> tuple[Hashable, ...]:
        """What this pattern reads from ``item`` (``seen``: the reads inside each list of
        items probed so far, by the list's and the reads' identity, with the list: held,
        its identity is not another's)."""
        out = _probes(item, self.top)
        for tag, inside in self.nested:
            value = item._value(tag)
            if type(value) is not list:  # (the tag's own read differs then too)
                out += (_GONE,) * len(inside)
                continue
            key = (id(value), id(inside))
            held = seen.get(key)
            if held is None:
                held = seen[key] = (value, tuple(_inside(value, index, rest, op)
                                                 for index, rest, op in inside))
            out += held[1]
        return out


def _inside(items: list[Any], index: int, rest: tuple[Any, ...], op: Any) -> Hashable:
    """What ``op`` reads in item ``index`` of ``items`` (then through ``rest``)."""
    if index >= len(items) or type(items[index]) is not LeanItem:
        return _GONE
    return _probe(items[index], ("at", rest, op) if rest else op)


_NONE = object()


class Bound:
    """``fn(ds, item, *rest)`` for one function and arguments, memoised per distinct input
    read from ``item`` (:meth:`FrameMemo.bind`): called once per frame of a file."""

    __slots__ = ("_counts", "_ds", "_fn", "_patterns", "_rest", "_results", "_seen")

    def __init__(self, fn: Callable[..., Any], ds: Any, rest: tuple[Any, ...],
                 counts: list[int]) -> None:
        self._fn, self._ds, self._rest = fn, ds, rest
        self._patterns: list[_Pattern] = []
        self._results: dict[Hashable, Any] = {}
        #: The reads inside each list of items probed, with the list (kept alive: its
        #: identity stays its own while the memo lives).
        self._seen: dict[tuple[int, int], tuple[list[Any], tuple[Hashable, ...]]] = {}
        self._counts = counts  # [calls recorded, matches], shown in FrameMemo.counts

    def __call__(self, item: Any) -> Any:
        return self.reading(item)[0]

    def reading(self, item: Any) -> tuple[Any, tuple[Any, ...] | None]:
        """``fn(ds, item, *rest)`` (memoised) and the reads it depends on: the keys of the
        pattern it matched or recorded (None: not recorded, e.g. not a lean item)."""
        if type(item) is not LeanItem:
            return self._fn(self._ds, item, *self._rest), None
        counts, results = self._counts, self._results
        if counts[0] >= GIVE_UP_AFTER and not counts[1]:
            return self._fn(self._ds, item, *self._rest), None
        seen, patterns = self._seen, self._patterns
        for at, pattern in enumerate(patterns):
            found = results.get((pattern.reads, pattern.probe(item, seen)), _NONE)
            if found is not _NONE:
                counts[1] += 1
                if at:  # the pattern last matched is tried first
                    patterns[0], patterns[at] = pattern, patterns[0]
                return found, pattern.reads
        counts[0] += 1
        view = _Reads(item)
        result = self._fn(self._ds, view, *self._rest)
        reads = tuple(view._read)
        known = next((p for p in self._patterns if p.reads == reads), None)
        if known is None:
            if len(self._patterns) >= MAX_PATTERNS:
                return result, reads
            known = _Pattern(reads)
            self._patterns.append(known)
        read = view._read  # what probe would find, in its order, as the view noted it
        results[(reads, tuple(read[key] for key in known.order))] = result
        return result, reads


class FrameMemo:
    """Results of ``fn(ds, frame_item, *rest)`` per distinct input (one file's frames).

    Only for the frames of one data set held in memory while the memo lives (sequences
    are told apart by identity); ``fn`` must read the frame item only through ``get``,
    ``in``, attributes, ``private_block`` and ``private_items``, and must not change
    what it returns afterwards (the same object is returned for every match).
    """

    def __init__(self) -> None:
        self._bound: dict[Hashable, Bound] = {}
        #: Per function and arguments: [calls recorded, matches].
        self.counts: dict[Hashable, list[int]] = {}

    def bind(self, fn: Callable[..., Any], ds: Any, *rest: Any) -> Bound:
        """``item -> fn(ds, item, *rest)``, computed once per distinct input read from
        ``item`` (one per function and arguments: the same as :meth:`call`'s)."""
        head = (fn, id(ds), *(_hashable(r) for r in rest))
        bound = self._bound.get(head)
        if bound is None:
            bound = self._bound[head] = Bound(fn, ds, rest,
                                              self.counts.setdefault(head, [0, 0]))
        return bound

    def call(self, fn: Callable[..., Any], ds: Any, item: Any, *rest: Any) -> Any:
        """``fn(ds, item, *rest)``, computed once per distinct input read from ``item``."""
        if type(item) is not LeanItem:
            return fn(ds, item, *rest)
        return self.bind(fn, ds, *rest)(item)

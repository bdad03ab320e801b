"""Per-frame values computed once per distinct input: a memo that records what it read.

The records of a 5,000-frame Enhanced MR file are built frame by frame by the
same header code as any file (``frames.frame_records``): diffusion, Philips
scaling and the functional-group fields. Most functional groups repeat from
frame to frame, and :mod:`dicomvol.dicom.leanmf` reads an identical sequence
once (one shared list of items). :class:`FrameMemo` calls such a function with
a view of the frame's item that records every element it reads (by tag, with
its value: a shared sequence by identity, other values by type and value; the
private creators of a group and the set of private sequences as a whole). A
later frame whose recorded elements all hold the same values gets the stored
result: the function, deterministic in what it reads, would read and return
the same. Items that are not lean (pydicom datasets, ``fgroups`` items) are
passed straight through. ``tests/dicom/test_lean.py`` holds the records to
pydicom's on the corpus and on synthetic files.
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
    """What makes two values of an element the same input (a sequence: the same list)."""
    if isinstance(value, list):
        if value and isinstance(value[0], LeanItem):
            return ("SQ", id(value))
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
    return tuple((tag, id(value)) for tag, value in item._lean_values.items()
                 if (tag >> 16) % 2 == 1 and isinstance(value, list))


def _probe(item: LeanItem, key: Any) -> Hashable:
    """The identity of what ``key`` (a tag or a pseudo key) reads from ``item``."""
    if type(key) is int:
        return _identity(item._value(key))
    kind = key[0]
    if kind == "bool":
        return bool(item)
    if kind == "in":
        return key[1] in item._lean_values
    if kind == "creators":
        return _creators(item, key[1])
    return _private(item)


class _Reads:
    """A lean item as the header code reads it, noting each read and what it found."""

    #: Marks the class for :func:`dicomvol.dicom.values.is_dataset`.
    lean_dataset = True

    _item: LeanItem
    _read: dict[Any, Hashable]

    def __init__(self, item: LeanItem) -> None:
        object.__setattr__(self, "_item", item)
        object.__setattr__(self, "_read", {})

    def _note(self, tag: int) -> Any:
        value = self._item._value(tag)
        self._read[tag] = _identity(value)
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
        self._read[("in", tag)] = found  # present, whatever its value (an empty one too)
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
        self._read[("bool",)] = bool(self._item)
        return bool(self._item)

    def private_block(self, group: int, private_creator: str, create: bool = False) -> Any:
        """As :meth:`LeanItem.private_block`; the block's elements are read through here."""
        self._read[("creators", group)] = _creators(self._item, group)
        for tag in _creators(self._item, group):
            value = self._note(tag)
            if isinstance(value, str) and value.strip() == private_creator:
                return LeanBlock(self, (group << 16) | ((tag & 0xFF) << 8))  # type: ignore[arg-type]
        raise KeyError(f"private creator {private_creator!r} not in group {group:04X}")

    def private_items(self) -> list[LeanItem]:
        self._read[("private",)] = _private(self._item)
        return self._item.private_items()


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


_NONE = object()


class Bound:
    """``fn(ds, item, *rest)`` for one function and arguments, memoised per distinct input
    read from ``item`` (:meth:`FrameMemo.bind`): called once per frame of a file."""

    __slots__ = ("_counts", "_ds", "_fn", "_patterns", "_rest", "_results", "untracked")

    def __init__(self, fn: Callable[..., Any], ds: Any, rest: tuple[Any, ...],
                 counts: list[int]) -> None:
        self._fn, self._ds, self._rest = fn, ds, rest
        self._patterns: list[tuple[Any, ...]] = []
        self._results: dict[Hashable, Any] = {}
        self._counts = counts  # [calls recorded, matches], shown in FrameMemo.counts
        #: Whether a lean item was passed to the function unrecorded (after giving up).
        self.untracked = False

    def __call__(self, item: Any) -> Any:
        if type(item) is not LeanItem:
            return self._fn(self._ds, item, *self._rest)
        counts, results = self._counts, self._results
        if counts[0] >= GIVE_UP_AFTER and not counts[1]:
            self.untracked = True
            return self._fn(self._ds, item, *self._rest)
        for reads in self._patterns:
            found = results.get((reads, _probes(item, reads)), _NONE)
            if found is not _NONE:
                counts[1] += 1
                return found
        counts[0] += 1
        view = _Reads(item)
        result = self._fn(self._ds, view, *self._rest)
        reads = tuple(view._read)
        if reads not in self._patterns:
            if len(self._patterns) >= MAX_PATTERNS:
                return result
            self._patterns.append(reads)
        results[(reads, tuple(view._read.values()))] = result
        return result


    def reads_any(self, tags: frozenset[int]) -> bool:
        """Whether a recorded call read any of ``tags`` of its item (or a call went
        unrecorded: then it may have)."""
        return self.untracked or any(key in tags for reads in self._patterns for key in reads)


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

"""A lean reader for Enhanced MR headers: every element up to PixelData, sequences included.

pydicom builds each item of a PerFrameFunctionalGroupsSequence lazily and
converts each value on first access; for a 5,000-frame diffusion file that is
most of the conversion time. This reader walks an explicit VR little-endian
header once with ``struct`` (:mod:`~dicomvol.dicom.leanitems`: values converted on
use as :mod:`dicomvol.dicom.lean` converts them, sequences as lists of
:class:`~dicomvol.dicom.leanitems.LeanItem`, no pydicom imported), its per-frame items
as a :class:`~dicomvol.dicom.frametable.FrameTable`: records are built from it by
``frames.frame_records`` through ``get``/``in`` like any header. Used for Enhanced MR
Image Storage only (:data:`SOP_CLASSES`); anything else, or any surprise, returns None
and pydicom reads the file. ``tests/dicom/test_lean.py`` holds it to pydicom's records
on the corpus and on synthetic diffusion files.
"""

from __future__ import annotations

import re
import struct
from typing import Any, BinaryIO

from dicomvol.dicom.frametable import read_table
from dicomvol.dicom.lean import MAX_NESTING, read_meta
from dicomvol.dicom.leanitems import (
    EXPLICIT_HEAD,
    ITEM_END_TAG,
    ITEM_HEAD,
    ITEM_TAG,
    LONG_VRS,
    PER_FRAME_TAG,
    SEQUENCE_END_TAG,
    U32,
    UNDEFINED_LENGTH,
    LeanItem,
    parse_dataset,
)
from dicomvol.dicom.tags import PIXEL_DATA_TAGS

#: Enhanced MR Image Storage.
SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.4.1"})
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: Bytes read first (a 5,000-frame header is a few MB; reads grow until PixelData).
_FIRST_READ = 1 << 20


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
    searched = meta_end
    while True:  # the header only: read on until PixelData is reached, then parse it once
        if _PIXEL_TAG_BYTES.search(buf, max(meta_end, searched - 3)):  # in the bytes just read
            parsed = _parse(buf, meta_end)  # its top level reached PixelData: the header
            if parsed is not None:
                break
        searched = len(buf)
        try:
            needed = _header_end(buf, meta_end)
        except (ValueError, IndexError):
            return None  # malformed: pydicom decides
        if needed is not None and needed <= len(buf):
            parsed = _parse(buf, meta_end)
            if parsed is None:
                return None
            break
        # Ends unknown (after a sequence of undefined length): the buffer grows fourfold,
        # so that few reads (and parses) find the end.
        more = fp.read(3 * len(buf) if needed is None else max(len(buf), needed + 12 - len(buf)))
        if not more:
            return None
        buf += more
    values, _, pixel = parsed
    header = LeanHeaderMF(values, buf, transfer_syntax)
    if str(header.get("SOPClassUID") or "") not in SOP_CLASSES:
        return None
    tag_offset, value_offset, length = pixel
    return header, tag_offset, value_offset, length


#: PixelData's tags as their bytes in the file: a buffer without any of them cannot hold
#: the header's end (one with them may, when the bytes are the element's, not a value's).
_PIXEL_TAG_BYTES = re.compile(rb"\xe0\x7f[\x08\x09\x10]\x00")  # (7FE0,0008/0009/0010), LE


def _parse(buf: bytes, meta_end: int
           ) -> tuple[dict[int, Any], int, tuple[int, int, int]] | None:
    """The top level parsed up to its PixelData (per-frame items as a
    :class:`~dicomvol.dicom.frametable.FrameTable`), or None: not reached within ``buf``
    (which may end early: an element or sequence running past it raises, and is None here
    too), or malformed."""
    try:
        parsed = parse_dataset(buf, meta_end, len(buf), {}, top=True, per_frame=read_table)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):
        return None
    if parsed is None or parsed[2] is None:
        return None
    return parsed[0], parsed[1], parsed[2]


def first_frame_only(buf: bytes) -> bytes | None:
    """A whole explicit VR LE file's header with its per-frame sequence cut to the first item.

    ``buf`` is the file from its start; the result is the file up to PixelData
    (excluded) with PerFrameFunctionalGroupsSequence holding only its first
    item, for readers of one frame's groups (the sidecar: pydicom then parses
    one item, not 5,000). Sequences of undefined length are skipped by their
    delimiters (per-frame items as :func:`~dicomvol.dicom.frametable.read_table`
    reads them: an item laid out as one read before is not walked again). None when
    there is nothing to cut or the top level is not plain (other syntax, damage):
    read the whole header.
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
            if length == UNDEFINED_LENGTH and raw_vr == b"SQ":  # per-frame items: as a table
                end = (read_table(buf, start, length, {}, 1)[1] if tag == PER_FRAME_TAG
                       else _sequence_end(buf, start, 1))  # (most are not parsed)
            elif length == UNDEFINED_LENGTH or start + length > len(buf):
                return None
            else:
                end = start + length
            if tag == PER_FRAME_TAG and raw_vr == b"SQ" and end - start >= 8:
                item_group, item_elem, item_length = struct.unpack_from("<HHI", buf, start)
                if (item_group << 16) | item_elem != ITEM_TAG:
                    return None
                item_end = (_item_end(buf, start + 8, 1) if item_length == UNDEFINED_LENGTH
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
    element = EXPLICIT_HEAD.pack(0x5200, 0x9230, b"SQ", 0) + U32.pack(len(item))
    return b"".join((buf[:at], element, item, buf[seq_end:pos]))


def _element_head(buf: bytes, pos: int) -> tuple[int, bytes, int, int]:
    """(tag, VR, value length, value offset) of the explicit VR LE element at ``pos``."""
    group, elem, raw_vr, length = EXPLICIT_HEAD.unpack_from(buf, pos)
    if raw_vr in LONG_VRS:
        (length,) = U32.unpack_from(buf, pos + 8)
        return (group << 16) | elem, raw_vr, length, pos + 12
    return (group << 16) | elem, raw_vr, length, pos + 8


def _header_end(buf: bytes, pos: int) -> int | None:
    """Where the top level's PixelData element ends its header (its tag, VR and length
    fit in ``buf`` up to the returned offset), walking the top level only (a sequence of
    defined length is skipped by its length).

    An offset past ``len(buf)``: at least that much must be read; None: not known before a
    sequence of undefined length (its end is found by the parse, once a read holds
    PixelData's tag: read more; at the end of the file pydicom decides). ValueError or
    IndexError: malformed at the top level.
    """
    n = len(buf)
    while pos + 12 <= n:
        tag, raw_vr, length, start = _element_head(buf, pos)
        if tag in PIXEL_DATA_TAGS:
            return start
        if length != UNDEFINED_LENGTH:
            pos = start + length
        elif raw_vr == b"SQ":
            return None
        else:
            raise ValueError("undefined length outside a sequence before PixelData")
    return pos + 12


def _sequence_end(buf: bytes, pos: int, depth: int) -> int:
    """The offset after the delimiter of an undefined-length sequence whose items start at
    ``pos`` (ValueError: not items, or nested too deeply; struct.error: cut short)."""
    if depth > MAX_NESTING:
        raise ValueError("sequences nested too deeply")
    while True:
        group, elem, length = ITEM_HEAD.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag == SEQUENCE_END_TAG:
            return pos + 8
        if tag != ITEM_TAG:
            raise ValueError("not an item")
        pos = _item_end(buf, pos + 8, depth) if length == UNDEFINED_LENGTH else pos + 8 + length


def _item_end(buf: bytes, pos: int, depth: int) -> int:
    """The offset after the delimiter of an undefined-length item whose elements start at
    ``pos``."""
    while True:
        group, elem, raw_vr, length = EXPLICIT_HEAD.unpack_from(buf, pos)
        if (group << 16) | elem == ITEM_END_TAG:
            return pos + 8
        start = pos + 8
        if raw_vr in LONG_VRS:
            (length,) = U32.unpack_from(buf, pos + 8)
            start = pos + 12
        if length != UNDEFINED_LENGTH:
            pos = start + length
        elif raw_vr == b"SQ":
            pos = _sequence_end(buf, start, depth + 1)
        else:
            raise ValueError("undefined length outside a sequence")
        if pos > len(buf):
            raise ValueError("element past the end")

"""Damaged images: PixelData that a file holds but its header does not lead to.

When a header cannot be read up to the pixel data (an element claims a length
that runs over it, garbled tags, a broken VR), pydicom ends the data set early
and the object looks like one without pixels. Such a file is a damaged image,
not a non-image object: :func:`damaged_image` finds a PixelData element that
ends exactly at the end of the file (as the top-level PixelData of an image
does) and says what went wrong, so that the index reports an ``errors`` entry
instead of an ``ignored`` one.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

#: PixelData (7FE0,0010) in little- and big-endian byte order.
_SIGNATURES = ((b"\xe0\x7f\x10\x00", "<"), (b"\x7f\xe0\x00\x10", ">"))
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT",
             b"SV", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
#: Bytes read at a time while looking for PixelData.
_CHUNK = 1 << 24


def damaged_image(fp: BinaryIO, size: int, ds: Any | None = None) -> str | None:
    """What is wrong with a file whose header shows no PixelData but which holds some.

    Parameters
    ----------
    fp : binary stream (seekable)
    size : int
        The file's size in bytes.
    ds : pydicom Dataset, optional
        The header as read (to name the transfer syntax).

    Returns
    -------
    str or None
        The error text naming the damage; None when the file holds no
        top-level PixelData (a genuine object without pixels).
    """
    found = find_pixel_data(fp, size)
    if found is None:
        return None
    offset, length = found
    detail = _covering_element(fp, offset, ds)
    return (f"damaged header: Pixel Data found at byte {offset} ({length} bytes, to the end of "
            f"the file), but the header cannot be read up to it{detail}")


def find_pixel_data(fp: BinaryIO, size: int) -> tuple[int, int] | None:
    """(tag offset, value length) of a PixelData element whose value ends the file, or None.

    Explicit VR (OB/OW/...) and implicit VR encodings, either byte order; an
    encapsulated (undefined-length) value must end with its sequence delimiter.
    """
    fp.seek(0)
    base, tail = 0, b""
    while True:
        chunk = fp.read(_CHUNK)
        if not chunk:
            return None
        buf = tail + chunk
        start = base - len(tail)
        for signature, order in _SIGNATURES:
            i = buf.find(signature)
            while i >= 0:
                length = _ends_file(buf, i, start + i, size, order, fp)
                if length is not None:
                    return start + i, length
                i = buf.find(signature, i + 1)
        tail = buf[-16:]
        base += len(chunk)


def _ends_file(buf: bytes, i: int, offset: int, size: int, order: str,
               fp: BinaryIO) -> int | None:
    """The value length when the element at ``buf[i]`` (file ``offset``) ends the file."""
    head = buf[i:i + 12]
    if len(head) < 12:
        return None
    candidates = []
    if head[4:6] in _LONG_VRS and head[6:8] == b"\x00\x00":
        candidates.append((offset + 12, struct.unpack(order + "I", head[8:12])[0]))
    candidates.append((offset + 8, struct.unpack(order + "I", head[4:8])[0]))
    for value_offset, length in candidates:
        if length == _UNDEFINED:
            here = fp.tell()
            fp.seek(max(0, size - len(_SEQ_END)))
            ends = fp.read(len(_SEQ_END)) == _SEQ_END and value_offset < size
            fp.seek(here)
            if ends:
                return size - value_offset
        elif value_offset + length == size and length > 0:
            return int(length)
    return None


def _covering_element(fp: BinaryIO, offset: int, ds: Any | None) -> str:
    """'; element (gggg,eeee) Keyword at byte N claims L bytes, running over it' when a
    top-level element (little endian) spans the PixelData offset, else ''."""
    ts = ""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        ts = str(meta.get("TransferSyntaxUID", ""))
    implicit = ts == "1.2.840.10008.1.2"
    fp.seek(0)
    buf = fp.read(offset + 12)
    pos = 132 if buf[128:132] == b"DICM" else 0
    try:
        while pos + 8 <= offset:
            group, elem = struct.unpack_from("<HH", buf, pos)
            vr = buf[pos + 4:pos + 6]
            if (implicit and group != 2) or not vr.isalpha():
                start, (length,) = pos + 8, struct.unpack_from("<I", buf, pos + 4)
            elif vr in _LONG_VRS:
                start, (length,) = pos + 12, struct.unpack_from("<I", buf, pos + 8)
            else:
                start, (length,) = pos + 8, struct.unpack_from("<H", buf, pos + 6)
            if length == _UNDEFINED:
                return ""  # a sequence: not followed here
            if start + length > offset:
                from pydicom.datadict import keyword_for_tag  # a damaged file only

                name = keyword_for_tag((group << 16) | elem) or "private or unknown"
                return (f"; element ({group:04X},{elem:04X}) {name} at byte {pos} claims "
                        f"{length} bytes, running over it")
            pos = start + length
    except struct.error:
        return ""
    return ""

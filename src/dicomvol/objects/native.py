"""Native (uncompressed, little-endian) frames read straight at their file offset.

A SEG of 20,000 bit-packed frames spends most of its decoding time in
per-frame overhead when pydicom unpacks every frame to a full (Rows, Columns)
plane. Here a run of wanted frames is read in one ``read`` (at most
:data:`SPAN_BYTES` at a time, so memory stays a few MiB whatever the file
size), and each frame is cut from those bytes: 1-bit frames are unpacked with
``np.unpackbits(bitorder="little")`` from their bit offset (frames need not
start on a byte boundary: frame ``n`` starts at bit ``(n - 1) * Rows *
Columns``), 8- and 16-bit frames are viewed with ``np.frombuffer``.

:meth:`NativeFrames.boxes` gives each frame's *bounding box*: the smallest
block of rows and columns holding all its nonzero pixels (found on the packed
bytes first, so only the rows that hold set bits are unpacked). Writing a
label map then touches a few thousand voxels per frame instead of the whole
plane.

Only what is exact here takes this path (:func:`native_layout`): Explicit or
Implicit VR Little Endian, one sample per pixel, integer pixels of 1, 8 or 16
bits with BitsStored equal to BitsAllocated, not gzipped. Everything else
(encapsulated transfer syntaxes included) is decoded by pydicom.
``tests/objects/test_native.py`` checks both against pydicom's pixel_array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from dicomvol.errors import PixelDataError
from dicomvol.model.records import FrameRecord

#: Transfer syntaxes whose PixelData is the frames' bytes as they are.
NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
#: Bytes read at once (a run of consecutive frames, at least one whole frame).
SPAN_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Layout:
    """Where native frames are: PixelData's file offset and the frame size."""

    offset: int
    rows: int
    columns: int
    bits: int
    dtype: str

    @property
    def frame_bits(self) -> int:
        """Bits per frame (Rows x Columns x BitsAllocated)."""
        return self.rows * self.columns * self.bits


@dataclass(frozen=True, slots=True)
class Box:
    """The nonzero part of a frame: its pixels ``[row0:row0 + h, col0:col0 + w]``.

    ``values`` has shape (h, w), the frame's dtype (0/1 uint8 for 1-bit frames).
    """

    row0: int
    col0: int
    values: np.ndarray


def native_layout(frame: FrameRecord) -> Layout | None:
    """The layout of a frame's file when its frames can be cut from the bytes, else None."""
    if (frame.pixel_offset is None or frame.gzipped or frame.pixel_format
            or frame.transfer_syntax not in NATIVE_LITTLE_ENDIAN
            or frame.samples_per_pixel != 1 or frame.bits_allocated not in (1, 8, 16)
            or frame.bits_stored != frame.bits_allocated):
        return None
    if frame.bits_allocated == 1:
        dtype = "u1"
    else:
        dtype = ("<i" if frame.pixel_representation else "<u") + str(frame.bits_allocated // 8)
    return Layout(frame.pixel_offset, frame.rows, frame.columns, frame.bits_allocated, dtype)


def box_of(pixels: np.ndarray) -> Box | None:
    """The bounding box of a decoded frame's nonzero pixels (None when all are zero).

    Parameters
    ----------
    pixels : ndarray, shape (Rows, Columns)
    """
    rows = np.flatnonzero(pixels.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(pixels.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Box(r0, c0, pixels[r0:r1, c0:c1])


def unpack_bits(buf: np.ndarray, bit: int, count: int) -> np.ndarray:
    """``count`` bits of ``buf`` (uint8) from bit ``bit``, least significant bit first."""
    start = bit >> 3
    shift = bit - (start << 3)
    raw = buf[start:(bit + count + 7) >> 3]
    return np.unpackbits(raw, bitorder="little")[shift:shift + count]


class NativeFrames:
    """Frames of one native file, read in runs of consecutive frames.

    Parameters
    ----------
    layout : Layout
        From :func:`native_layout`.
    opener : callable
        Opens the file (or its fetched bytes) for binary reading.
    name : str
        The file's name for error messages.
    """

    def __init__(self, layout: Layout, opener: Callable[[], BinaryIO], name: str) -> None:
        self.layout, self.opener, self.name = layout, opener, name

    def frames(self, numbers: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, pixels (Rows, Columns)) for the sorted, distinct 1-based ``numbers``."""
        lay = self.layout
        for n, buf, bit in self._cut(numbers):
            if lay.bits == 1:
                pixels = unpack_bits(buf, bit, lay.frame_bits)
            else:
                start = bit >> 3
                pixels = buf[start:start + (lay.frame_bits >> 3)].view(lay.dtype)
            yield n, pixels.reshape(lay.rows, lay.columns)

    def boxes(self, numbers: Sequence[int]) -> Iterator[tuple[int, Box | None]]:
        """(frame number, bounding box of its nonzero pixels or None) per wanted frame."""
        if self.layout.bits != 1:
            for n, pixels in self.frames(numbers):
                yield n, box_of(pixels)
            return
        size, cols = self.layout.frame_bits, self.layout.columns
        for run, buf, starts in self._runs(numbers):
            # the nonzero 64-bit words of the whole run, then each frame's first and last
            words = np.flatnonzero(buf.view("<u8"))
            first = np.searchsorted(words, starts >> 6)
            last = np.searchsorted(words, (starts + size + 63) >> 6)
            for n, bit, i0, i1 in zip(run, starts.tolist(), first.tolist(), last.tolist(),
                                      strict=True):
                if i0 == i1:
                    yield n, None
                    continue
                # a word may hold bits of two frames: the rows found are a bound, refined below
                lo = max(0, 64 * int(words[i0]) - bit)
                hi = min(size - 1, 64 * int(words[i1 - 1]) + 63 - bit)
                yield n, self._rows_box(buf, bit, lo // cols, hi // cols + 1)

    def _rows_box(self, buf: np.ndarray, bit: int, r0: int, r1: int) -> Box | None:
        """The box of the 1-bit frame at ``bit`` of ``buf`` whose set pixels lie in rows
        ``r0:r1``: only those rows are unpacked."""
        cols = self.layout.columns
        c0 = 0
        if cols % 8 == 0 and bit % 8 == 0:  # whole bytes per row: unpack only the used ones
            per_row = cols >> 3
            start = (bit >> 3) + r0 * per_row
            rows = buf[start:start + (r1 - r0) * per_row].reshape(r1 - r0, per_row)
            used = np.flatnonzero(np.bitwise_or.reduce(rows, axis=0))
            if not used.size:
                return None
            c0 = 8 * int(used[0])
            block = np.unpackbits(rows[:, int(used[0]):int(used[-1]) + 1], axis=1,
                                  bitorder="little")
        else:
            block = unpack_bits(buf, bit + r0 * cols, (r1 - r0) * cols).reshape(r1 - r0, cols)
        box = box_of(block)
        return None if box is None else Box(box.row0 + r0, box.col0 + c0, box.values)

    def _cut(self, numbers: Sequence[int]) -> Iterator[tuple[int, np.ndarray, int]]:
        """(frame number, bytes holding it, bit offset of the frame in those bytes)."""
        for run, buf, starts in self._runs(numbers):
            yield from zip(run, (buf,) * len(run), starts.tolist(), strict=True)

    def _runs(self, numbers: Sequence[int]) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """(frame numbers, bytes holding them, bit offset of each in those bytes) per read.

        The bytes are zero-padded to a multiple of 8 (they can be viewed as 64-bit words).
        """
        size = self.layout.frame_bits
        spans = _spans(numbers, size)
        if not spans:
            return
        with self.opener() as fp:
            for run in spans:
                start = ((run[0] - 1) * size) >> 3
                length = ((run[-1] * size + 7) >> 3) - start
                buf = np.empty((length + 7) & ~7, dtype=np.uint8)
                buf[length:] = 0
                fp.seek(self.layout.offset + start)
                got = fp.readinto(buf.data[:length])  # type: ignore[attr-defined]
                if got != length:
                    raise PixelDataError(f"{self.name}: pixel data ends before frame "
                                         f"{run[-1]}", self.name)
                starts = (np.asarray(run, dtype=np.int64) - 1) * size - (start << 3)
                yield run, buf, starts


def _spans(numbers: Sequence[int], frame_bits: int) -> list[list[int]]:
    """Wanted frame numbers grouped into runs each read at once (at most SPAN_BYTES,
    gaps included; one frame at least)."""
    spans: list[list[int]] = []
    limit = max(1, (SPAN_BYTES * 8) // max(1, frame_bits))  # frames per read
    for n in numbers:
        if spans and n - spans[-1][0] < limit:
            spans[-1].append(n)
        else:
            spans.append([n])
    return spans

"""A small Parquet writer for the run report's table, in plain Python.

The report table (one row per output, a few dozen columns of text, integers,
floats and booleans) is written without importing pyarrow: importing it costs
~0.4 s and ~40 MiB of resident memory at the end of every run, more than the
rest of the report. The file is Parquet 1.0 as pyarrow and other readers expect
it: one row group, one uncompressed PLAIN data page (v1) per column, every
column OPTIONAL (definition levels as one bit-packed run), the footer in the
Thrift compact protocol (``parquet.thrift``: FileMetaData, SchemaElement,
RowGroup, ColumnChunk, ColumnMetaData, PageHeader, DataPageHeader).

Column types follow the values: all booleans -> BOOLEAN, all integers -> INT64,
numbers with a float -> DOUBLE, anything else (or a column of only nulls) -> UTF-8
BYTE_ARRAY holding ``str(value)``. ``None`` is null.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dicomvol._version import __version__
from dicomvol.inputs.names import printable
from dicomvol.io.atomic import atomic_path

_MAGIC = b"PAR1"
# parquet.thrift enums
_BOOLEAN, _INT64, _DOUBLE, _BYTE_ARRAY = 0, 2, 5, 6
_OPTIONAL = 1
_UTF8 = 0  # ConvertedType
_PLAIN, _RLE = 0, 3
_UNCOMPRESSED = 0
_DATA_PAGE = 0
# Thrift compact protocol field types
_T_TRUE, _T_FALSE, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 2, 5, 6, 8, 9, 12


class _Thrift:
    """Thrift compact protocol output for the few shapes the Parquet footer needs."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._last: list[int] = [0]

    def _varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def _zigzag(self, n: int) -> None:
        self._varint((n << 1) ^ (n >> 63))

    def _field(self, fid: int, ftype: int) -> None:
        delta = fid - self._last[-1]
        if 0 < delta <= 15:
            self.out.append((delta << 4) | ftype)
        else:
            self.out.append(ftype)
            self._zigzag(fid)
        self._last[-1] = fid

    def i32(self, fid: int, value: int) -> None:
        self._field(fid, _T_I32)
        self._zigzag(value)

    def i64(self, fid: int, value: int) -> None:
        self._field(fid, _T_I64)
        self._zigzag(value)

    def boolean(self, fid: int, value: bool) -> None:
        self._field(fid, _T_TRUE if value else _T_FALSE)

    def binary(self, fid: int, value: bytes) -> None:
        self._field(fid, _T_BINARY)
        self._varint(len(value))
        self.out += value

    def begin(self, fid: int) -> None:
        """Open a struct field (close it with :meth:`end`)."""
        self._field(fid, _T_STRUCT)
        self._last.append(0)

    def end(self) -> None:
        """Close the innermost struct (or the top-level message)."""
        self.out.append(0)
        self._last.pop()

    def list_header(self, fid: int, elem_type: int, size: int) -> None:
        """A list field of ``size`` elements; struct elements follow with list_struct()."""
        self._field(fid, _T_LIST)
        if size < 15:
            self.out.append((size << 4) | elem_type)
        else:
            self.out.append(0xF0 | elem_type)
            self._varint(size)

    def list_i32(self, fid: int, values: Sequence[int]) -> None:
        self.list_header(fid, _T_I32, len(values))
        for v in values:
            self._zigzag(v)

    def list_binary(self, fid: int, values: Sequence[bytes]) -> None:
        self.list_header(fid, _T_BINARY, len(values))
        for v in values:
            self._varint(len(v))
            self.out += v

    def list_struct(self) -> None:
        """Start one struct element of a list (close it with :meth:`end`)."""
        self._last.append(0)


def _column_type(values: Sequence[Any]) -> int:
    present = [v for v in values if v is not None]
    if present and all(type(v) is bool for v in present):
        return _BOOLEAN
    if present and all(type(v) is int for v in present):
        return _INT64
    if present and all(type(v) in (int, float) for v in present):
        return _DOUBLE
    return _BYTE_ARRAY


def _page_values(ptype: int, present: list[Any]) -> bytes:
    """PLAIN encoding of the non-null values of a column."""
    if ptype == _BOOLEAN:
        return _bits(present)
    if ptype == _INT64:
        return struct.pack(f"<{len(present)}q", *present)
    if ptype == _DOUBLE:
        return struct.pack(f"<{len(present)}d", *(float(v) for v in present))
    out = bytearray()
    for v in present:
        raw = printable(str(v)).encode("utf-8")
        out += struct.pack("<I", len(raw)) + raw
    return bytes(out)


def _bits(flags: Sequence[Any]) -> bytes:
    """Booleans packed 8 to a byte, least significant bit first."""
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _definition_levels(values: Sequence[Any]) -> bytes:
    """Levels 1 (present) / 0 (null) as one bit-packed run, with its 4-byte length."""
    packed = _bits([v is not None for v in values])
    groups = (len(values) + 7) // 8
    header = _Thrift()
    header._varint((groups << 1) | 1)
    body = bytes(header.out) + packed
    return struct.pack("<I", len(body)) + body


def _data_page(ptype: int, values: Sequence[Any]) -> bytes:
    """One data page (v1): the page header, definition levels and PLAIN values."""
    body = _definition_levels(values) + _page_values(ptype, [v for v in values if v is not None])
    head = _Thrift()
    head.i32(1, _DATA_PAGE)
    head.i32(2, len(body))
    head.i32(3, len(body))
    head.begin(5)
    head.i32(1, len(values))
    head.i32(2, _PLAIN)
    head.i32(3, _RLE)
    head.i32(4, _RLE)
    head.end()
    head.out.append(0)  # end of PageHeader
    return bytes(head.out) + body


def write_parquet(path: Path, columns: dict[str, list[Any]], n_rows: int) -> None:
    """Write ``columns`` (name -> ``n_rows`` values) to ``path`` as Parquet, atomically."""
    names = list(columns)
    types = {name: _column_type(columns[name]) for name in names}
    data = bytearray(_MAGIC)
    chunks: list[tuple[str, int, int, int]] = []  # name, type, offset, size
    if n_rows:
        for name in names:
            page = _data_page(types[name], columns[name])
            chunks.append((name, types[name], len(data), len(page)))
            data += page
    meta = _footer(names, types, chunks, n_rows)
    data += meta + struct.pack("<I", len(meta)) + _MAGIC
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(data))


def _footer(names: list[str], types: dict[str, int], chunks: list[tuple[str, int, int, int]],
            n_rows: int) -> bytes:
    """The FileMetaData of the file."""
    t = _Thrift()
    t.i32(1, 1)  # version
    t.list_header(2, _T_STRUCT, len(names) + 1)
    t.list_struct()
    t.binary(4, b"schema")
    t.i32(5, len(names))
    t.end()
    for name in names:
        t.list_struct()
        t.i32(1, types[name])
        t.i32(3, _OPTIONAL)
        t.binary(4, name.encode("utf-8"))
        if types[name] == _BYTE_ARRAY:
            t.i32(6, _UTF8)
        t.end()
    t.i64(3, n_rows)
    t.list_header(4, _T_STRUCT, 1 if chunks else 0)
    if chunks:
        t.list_struct()
        t.list_header(1, _T_STRUCT, len(chunks))
        for name, ptype, offset, size in chunks:
            t.list_struct()
            t.i64(2, offset)  # file_offset
            t.begin(3)  # ColumnMetaData
            t.i32(1, ptype)
            t.list_i32(2, [_PLAIN, _RLE])
            t.list_binary(3, [name.encode("utf-8")])
            t.i32(4, _UNCOMPRESSED)
            t.i64(5, n_rows)
            t.i64(6, size)
            t.i64(7, size)
            t.i64(9, offset)  # data_page_offset
            t.end()
            t.end()
        t.i64(2, sum(size for _, _, _, size in chunks))  # total_byte_size
        t.i64(3, n_rows)
        t.end()
    t.binary(6, f"dicomvol version {__version__}".encode())
    t.out.append(0)  # end of FileMetaData
    return bytes(t.out)

"""The plain-Python Parquet writer: pyarrow reads back every value, type and null."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dicomvol.report.parquet import write_parquet


def test_columns_of_every_kind_read_back(tmp_path: Path) -> None:
    n = 37  # not a multiple of 8: the bit-packed levels and booleans have a partial byte
    columns: dict[str, list[object]] = {
        "text": [f"séries {i} \u00b5m" if i % 5 else None for i in range(n)],
        "integer": [i * 1_000_003 - 7 if i % 3 else None for i in range(n)],
        "big": [2**62 - i for i in range(n)],
        "number": [i / 7 if i % 4 else (None if i % 8 else i) for i in range(n)],
        "flag": [bool(i % 3) if i % 7 else None for i in range(n)],
        "nothing": [None] * n,
        "mixed": [i if i % 2 else f"v{i}" for i in range(n)],
        **{f"c{k}": [k] * n for k in range(20)},  # more than 15 list elements and fields
    }
    path = tmp_path / "t.parquet"
    write_parquet(path, columns, n)
    table = pq.read_table(path)
    assert table.column_names == list(columns)
    assert table.num_rows == n
    got = table.to_pydict()
    for name in ("text", "integer", "big", "flag", "nothing"):
        assert got[name] == columns[name], name
    assert got["number"] == pytest.approx(columns["number"])
    assert all(type(v) is float or v is None for v in got["number"])
    assert got["mixed"] == [None if v is None else str(v) for v in columns["mixed"]]
    types = {f.name: str(f.type) for f in table.schema}
    assert types["text"] == "string" and types["integer"] == "int64"
    assert types["number"] == "double" and types["flag"] == "bool"


def test_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    write_parquet(path, {"path": []}, 0)
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.column_names == ["path"]

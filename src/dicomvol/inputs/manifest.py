"""Manifests: text, CSV or Parquet files that list input folders or files.

An input given on the command line (or to ``convert``) that is a file ending
in ``.txt``, ``.lst``, ``.csv``, ``.tsv`` or ``.parquet`` is read as a list of
paths. Text: one path a line (blank lines and ``#`` comments skipped). CSV/TSV
and Parquet: the first column named one of :data:`PATH_COLUMNS`, else the
first column. Relative paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dicomvol.errors import UsageError

MANIFEST_SUFFIXES = (".txt", ".lst", ".csv", ".tsv", ".parquet")
#: Column names taken as the path column, in order of preference.
PATH_COLUMNS = ("path", "paths", "file", "filename", "folder", "directory", "dir",
                "local_path", "series_dir", "series_path")


def is_manifest(path: Path) -> bool:
    """True for a file whose suffix marks it as a manifest (not a DICOM file)."""
    return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES


def read_manifest(path: Path) -> list[Path]:
    """The paths a manifest lists, resolved against its folder.

    Raises
    ------
    UsageError
        The manifest cannot be read, names no paths, or needs pyarrow.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            entries = _parquet(path)
        elif suffix in (".csv", ".tsv"):
            entries = _csv(path, "\t" if suffix == ".tsv" else ",")
        else:
            entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            entries = [e for e in entries if e and not e.startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from exc
    if not entries:
        raise UsageError(f"manifest {path} lists no paths")
    base = path.parent
    return [p if p.is_absolute() else base / p for p in map(Path, entries)]


def _csv(path: Path, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fp:
        rows = list(csv.reader(fp, delimiter=delimiter))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
    if column is None:  # no header we know: first column, first row included unless a name
        column = 0
        body = rows if Path(rows[0][0]).exists() else rows[1:]
    else:
        body = rows[1:]
    return [r[column].strip() for r in body if len(r) > column and r[column].strip()]


def _parquet(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UsageError("reading a Parquet manifest needs pyarrow: pip install pyarrow") from exc
    table = pq.read_table(path)
    names = [n.lower() for n in table.column_names]
    column = next((names.index(c) for c in PATH_COLUMNS if c in names), 0)
    return [str(v) for v in table.column(column).to_pylist() if v]

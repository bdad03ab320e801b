"""Manifests: text, CSV or Parquet files that list input folders, files, URLs or IDC series.

An input given on the command line (or to ``convert``) that is a file ending
in ``.txt``, ``.lst``, ``.s5cmd``, ``.csv``, ``.tsv`` or ``.parquet`` is read
as a list of inputs.

Text: one entry a line (blank lines and ``#`` comments skipped): a path, an
``s3://``/``gs://`` URL, or an s5cmd command as the IDC portal exports it
(``cp s3://bucket/uuid/* .``: the source URL is taken, ``/*`` dropped). CSV/TSV and
Parquet: the first column named one of :data:`URL_COLUMNS` (``series_aws_url``,
``gcs_url``, ...), :data:`PATH_COLUMNS` or :data:`ID_COLUMNS`
(``crdc_series_uuid``, ``SeriesInstanceUID``: resolved through the IDC index),
else the first column. Relative paths are resolved against the manifest's
folder. A line that is none of these becomes an error naming the line; the
other entries are still converted.
"""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dicomvol.errors import UsageError
from dicomvol.inputs.fs import is_url

MANIFEST_SUFFIXES = (".txt", ".lst", ".s5cmd", ".csv", ".tsv", ".parquet")
#: Column names taken as the path column, in order of preference.
PATH_COLUMNS = ("path", "paths", "file", "filename", "folder", "directory", "dir",
                "local_path", "series_dir", "series_path")
#: Columns holding bucket URLs (IDC's manifests and index exports).
URL_COLUMNS = ("series_aws_url", "gcs_url", "series_gcs_url", "aws_url", "url", "s3_url")
#: s5cmd commands (only ``cp`` and ``sync`` of a bucket URL name inputs).
S5CMD_VERBS = ("cp", "sync", "mv", "rm", "ls", "cat", "du", "mb", "rb", "select", "run")
#: Columns holding IDC identifiers (resolved through the index).
ID_COLUMNS = ("crdc_series_uuid", "seriesinstanceuid")


@dataclass
class Manifest:
    """What a manifest lists.

    Attributes
    ----------
    entries : list of str
        Paths (absolute) and URLs, in order.
    idc_ids : list of str
        crdc_series_uuids and SeriesInstanceUIDs to resolve through the IDC index.
    problems : list of (str, str)
        ``(where, why)`` for each line that is none of these (``where`` names
        the manifest and line).
    missing : list of str
        Listed paths that do not exist (the caller refuses the run: a typo).
    """

    entries: list[str] = field(default_factory=list)
    idc_ids: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def is_manifest(path: Path) -> bool:
    """True for a file whose suffix marks it as a manifest (not a DICOM file)."""
    return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES


def read_manifest(path: Path) -> Manifest:
    """The inputs a manifest lists, paths resolved against its folder.

    Raises
    ------
    UsageError
        The manifest cannot be read, lists nothing, or needs pyarrow.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            manifest = _table(path, _parquet(path))
        elif suffix in (".csv", ".tsv"):
            manifest = _table(path, _csv(path, "\t" if suffix == ".tsv" else ","))
        else:
            manifest = _text(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from exc
    if not (manifest.entries or manifest.idc_ids or manifest.problems or manifest.missing):
        raise UsageError(f"manifest {path} lists no paths")
    return manifest


def _text(path: Path) -> Manifest:
    manifest = Manifest()
    text = path.read_text(encoding="utf-8", errors="surrogateescape")  # names as bytes
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name} line {n}"
        words = line.split()
        entry: str | None = line
        if words[0] in S5CMD_VERBS and len(words) > 1:
            entry = _s5cmd(line) if words[0] in ("cp", "sync") else None
        if entry is None:
            manifest.problems.append((where, f"not an s5cmd copy of a bucket URL: {line[:120]}"))
        elif is_url(entry):
            manifest.entries.append(_strip_glob(entry))
        elif (path.parent / entry).exists():
            manifest.entries.append(str(path.parent / entry))
        elif "://" in entry or len(words) > 1:
            manifest.problems.append((where, f"neither a path nor a bucket URL: {line[:120]}"))
        else:
            manifest.missing.append(str(path.parent / entry))
    return manifest


def _s5cmd(line: str) -> str | None:
    """The source URL of an s5cmd ``cp``/``sync`` line, None when it has none."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    urls = [w for w in words[1:] if not w.startswith("-") and is_url(w)]
    return urls[0] if urls else None


def _strip_glob(url: str) -> str:
    return url[:-1] if url.endswith("/*") else url.rstrip("*")


def _table(path: Path, table: tuple[list[str], list[list[str]]]) -> Manifest:
    header, rows = table
    manifest = Manifest()
    lowered = [h.strip().lower() for h in header]
    column, kind = 0, "guess"
    for names, what in ((URL_COLUMNS, "url"), (PATH_COLUMNS, "path"), (ID_COLUMNS, "id")):
        found = next((lowered.index(c) for c in names if c in lowered), None)
        if found is not None:
            column, kind = found, what
            break
    else:  # no header we know: the first column, the header row included if it is a path
        rows = [header, *rows]
    for n, row in enumerate(rows, 1 if kind == "guess" else 2):
        value = row[column].strip() if len(row) > column and row[column] else ""
        if not value:
            continue
        if is_url(value):
            manifest.entries.append(_strip_glob(value))
        elif kind == "id":
            manifest.idc_ids.append(value)
        elif (path.parent / value).exists():
            manifest.entries.append(str(path.parent / value))
        elif kind == "guess" and n == 1:
            continue  # a header row with names we do not know
        elif kind == "path" or (kind == "guess" and "://" not in value):
            manifest.missing.append(str(path.parent / value))
        else:
            manifest.problems.append((f"{path.name} row {n}",
                                      f"neither a path nor a bucket URL: {value[:120]}"))
    return manifest


def _csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fp:
        rows = list(csv.reader(fp, delimiter=delimiter))
    return (rows[0], rows[1:]) if rows else ([], [])


def _parquet(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UsageError("reading a Parquet manifest needs pyarrow: pip install pyarrow") from exc
    table = pq.read_table(path)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [["" if v is None else str(v) for v in values] for values in zip(*columns, strict=True)]
    return list(table.column_names), rows

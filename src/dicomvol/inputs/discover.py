"""Discover candidate files under input paths and URL prefixes (no parsing, no reads)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dicomvol.errors import UsageError
from dicomvol.inputs import fs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file found under one of the inputs.

    Attributes
    ----------
    path : str
        Absolute path of the file, or the object's URL.
    rel : str
        Path relative to the input it was found under (for a file given
        directly: its name; for an object: its URL). Reports and sidecars
        name files by this.
    size : int or None
        The object's size from its listing (None for local files: not needed).
    """

    path: str
    rel: str
    size: int | None = None


@dataclass
class Discovered:
    """What the inputs hold: candidates, objects that are not ``.dcm`` and bad manifest lines.

    Attributes
    ----------
    candidates : list of Candidate
    ignored : list of (str, str)
        ``(url, reason)`` for listed objects that are not ``.dcm`` (IDC stores
        every instance as ``<crdc_instance_uuid>.dcm``).
    problems : list of (str, str)
        ``(where, why)`` for manifest lines that name no input.
    idc_ids : list of str
        IDC identifiers manifests listed (resolved by the caller).
    """

    candidates: list[Candidate] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    idc_ids: list[str] = field(default_factory=list)


def discover(inputs: Iterable[str | os.PathLike[str]]) -> list[Candidate]:
    """The candidates of :func:`discover_all` (see there)."""
    return discover_all(inputs).candidates


def discover_all(inputs: Iterable[str | os.PathLike[str]]) -> Discovered:
    """Walk files, folders and URL prefixes recursively and list every regular file.

    An input that is a manifest (``.txt``, ``.csv``, ``.parquet``: see
    :mod:`dicomvol.inputs.manifest`) stands for the inputs it lists. Hidden files and
    folders (starting with ``.``) are skipped. Symbolic links
    to files are followed; links to folders are not (no cycles). Each file is
    listed once even when inputs overlap. A URL prefix is listed once (one
    LIST); only its ``.dcm`` objects are candidates.

    Raises
    ------
    UsageError
        If an input does not exist.
    """
    from dicomvol.inputs.manifest import is_manifest, read_manifest

    out = Discovered()
    roots: list[str] = []
    for raw in inputs:
        if fs.is_url(raw):
            roots.append(str(raw))
            continue
        root = Path(raw)
        if not root.exists():
            raise UsageError(f"input not found: {root}")
        if is_manifest(root):
            listed = read_manifest(root)
            if listed.missing:
                raise UsageError(f"manifest {root} lists {len(listed.missing)} missing path(s), "
                                 f"e.g. {listed.missing[0]}")
            roots.extend(listed.entries)
            out.problems.extend(listed.problems)
            out.idc_ids.extend(listed.idc_ids)
            if listed.idc_ids:  # crdc_series_uuid / SeriesInstanceUID columns: the index
                from dicomvol.inputs.idc import resolve

                roots.extend(s.s3_url for s in resolve(listed.idc_ids))
        else:
            roots.append(str(root))
    seen: set[str] = set()
    for entry in roots:
        if fs.is_url(entry):
            _add_objects(entry, out, seen)
            continue
        for path, rel in _walk(Path(entry)):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            out.candidates.append(Candidate(path=os.path.abspath(path), rel=rel))
    log.debug("discovered %d files", len(out.candidates))
    return out


def _add_objects(url: str, out: Discovered, seen: set[str]) -> None:
    """The objects under a URL prefix: ``.dcm`` ones are candidates, the rest ignored."""
    objects = fs.list_objects(url)
    if not objects:
        out.problems.append((url, "no objects under this URL"))
    for name, nbytes in objects:
        if name in seen:
            continue
        seen.add(name)
        if name.lower().endswith(".dcm"):
            out.candidates.append(Candidate(path=name, rel=name, size=nbytes))
        else:
            out.ignored.append((name, "not a .dcm object"))


def _walk(root: Path) -> Iterator[tuple[str, str]]:
    if root.is_file():
        yield str(root), root.name
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                yield full, os.path.relpath(full, root)

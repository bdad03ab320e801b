"""Discover candidate files under input paths (no parsing beyond a peek)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dicomvol.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file found under one of the inputs.

    Attributes
    ----------
    path : str
        Absolute path of the file.
    rel : str
        Path relative to the input it was found under (for a file given
        directly: its name). Reports and sidecars name files by this.
    """

    path: str
    rel: str


def discover(inputs: Iterable[str | os.PathLike[str]]) -> list[Candidate]:
    """Walk files and folders recursively and list every regular file.

    An input that is a manifest (``.txt``, ``.csv``, ``.parquet``: see
    :mod:`dicomvol.inputs.manifest`) stands for the paths it lists. Hidden files and
    folders (starting with ``.``) are skipped. Symbolic links
    to files are followed; links to folders are not (no cycles). Each file is
    listed once even when inputs overlap.

    Raises
    ------
    UsageError
        If an input does not exist.
    """
    from dicomvol.inputs.manifest import is_manifest, read_manifest

    seen: set[str] = set()
    found: list[Candidate] = []
    roots: list[Path] = []
    for raw in inputs:
        root = Path(raw)
        if not root.exists():
            raise UsageError(f"input not found: {root}")
        if is_manifest(root):
            listed = read_manifest(root)
            missing = [str(p) for p in listed if not p.exists()]
            if missing:
                raise UsageError(f"manifest {root} lists {len(missing)} missing path(s), "
                                 f"e.g. {missing[0]}")
            roots.extend(listed)
        else:
            roots.append(root)
    for root in roots:
        for path, rel in _walk(root):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            found.append(Candidate(path=os.path.abspath(path), rel=rel))
    log.debug("discovered %d files", len(found))
    return found


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

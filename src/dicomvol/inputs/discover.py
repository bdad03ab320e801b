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
        for path, rel, real in _walk(root):
            if real in seen:
                continue
            seen.add(real)
            found.append(Candidate(path=path, rel=rel))
    log.debug("discovered %d files", len(found))
    return found


def _walk(root: Path) -> Iterator[tuple[str, str, str]]:
    """(absolute path, path relative to ``root``, real path) of every file under ``root``.

    Top-down, names sorted per folder, a folder's files before its subfolders (the order
    of ``os.walk``). One ``scandir`` per folder and no system call per regular file: the
    absolute and real paths of a file are its folder's plus its name (a folder reached
    here is never a link, so its real path is its parent's plus its name); only a link
    to a file is resolved on its own.
    """
    if root.is_file():
        yield os.path.abspath(root), root.name, os.path.realpath(root)
        return
    base = os.path.abspath(root)
    stack = [(base, os.path.realpath(base), "")]
    while stack:
        folder, real, rel = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")),
                                 key=lambda e: e.name)
        except OSError:  # unreadable folder: skipped, as os.walk does
            continue
        folders = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():  # links to folders are not followed
                    folders.append(name)
                continue
            try:
                is_file = entry.is_file()
            except OSError:
                is_file = False
            if not is_file:  # broken links, sockets, fifos
                continue
            path = os.path.join(folder, name)
            yield (path, rel + name,
                   os.path.realpath(path) if entry.is_symlink() else os.path.join(real, name))
        stack.extend((os.path.join(folder, name), os.path.join(real, name), f"{rel}{name}{os.sep}")
                     for name in reversed(folders))

"""Discover candidate files under input paths and URL prefixes (no parsing, no reads)."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable, Iterator
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
        ``(where, why)`` for manifest lines that name no input, broken links and
        folders that could not be read.
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


def discover_all(inputs: Iterable[str | os.PathLike[str]],
                 outputs: str | os.PathLike[str] | None = None) -> Discovered:
    """Walk files, folders and URL prefixes recursively and list every regular file.

    An input that is a manifest (``.txt``, ``.csv``, ``.parquet``: see
    :mod:`dicomvol.inputs.manifest`) stands for the inputs it lists; a DICOMDIR file
    for its folder (PS3.10 puts every file it references below it; walking the folder
    also finds them where a CD's names were changed in case, which breaks the references).
    Hidden files and folders (starting with ``.``) are skipped. Symbolic links are
    followed, each real folder walked once (no cycles); broken links and unreadable
    folders are ``problems``. Each file is listed once even when inputs overlap. A URL prefix is
    listed once (one LIST); only its ``.dcm`` objects are candidates. ``outputs``, the
    run's output folder, is not walked where it lies inside an input (a second run would
    read the first one's outputs): it is ``ignored``, with that reason.

    Raises
    ------
    UsageError
        If an input does not exist.
    """
    out = Discovered()
    roots: list[str] = []
    for raw in inputs:
        if fs.is_url(raw):
            roots.append(str(raw))
            continue
        root = Path(raw)
        if not root.exists():
            raise UsageError(f"input not found: {root}")
        if root.name.upper() == "DICOMDIR" and root.is_file():  # media: the files beside it
            log.info("%s: reading the folder of this DICOMDIR", root)
            root = root.parent
        if root.is_file() and _is_manifest(root):
            from dicomvol.inputs.manifest import read_manifest

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
    skip = {os.path.realpath(outputs)} if outputs is not None and not fs.is_url(outputs) else set()
    for entry in roots:
        if fs.is_url(entry):
            _add_objects(entry, out, seen)
            continue
        for path, rel, real in _walk(Path(entry), out.problems, skip, out.ignored):
            if real in seen:
                continue
            seen.add(real)
            out.candidates.append(Candidate(path=path, rel=rel))
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


def _walk(root: Path, problems: list[tuple[str, str]], skip: Collection[str],
          ignored: list[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    """(absolute path, path relative to ``root``, real path) of every file under ``root``.

    Top-down, names sorted per folder, a folder's files before its subfolders (the order
    of ``os.walk(followlinks=True)``). Links to folders are followed (a tree of links to
    patient folders is a common way to select data), each real folder is walked once: a
    link back to a folder already walked (a cycle, or a second way in) adds nothing, as its
    files are listed. A broken link and a folder that cannot be read are ``problems`` (the
    run reports them as errors by name: e.g. a DataLad dataset whose annexed files were
    never fetched). A folder whose real path is in ``skip`` (below the root) is not
    walked: an ``ignored`` entry says so. One ``scandir`` per folder and no system call
    per regular file: the absolute and real paths of a file are its folder's plus its
    name; only a link is resolved on its own.
    """
    if root.is_file():
        yield os.path.abspath(root), root.name, os.path.realpath(root)
        return
    base = os.path.abspath(root)
    stack = [(base, os.path.realpath(base), "")]
    walked: set[str] = set()
    while stack:
        folder, real, rel = stack.pop()
        if real in walked:
            continue
        walked.add(real)
        if rel and real in skip:
            ignored.append((rel, "this run's output folder: not read as input"))
            continue
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")),
                                 key=lambda e: e.name)
        except OSError as exc:
            problems.append((rel or folder, f"folder could not be read: {exc.strerror or exc}"))
            continue
        folders = []
        for entry in entries:
            name = entry.name
            path = os.path.join(folder, name)
            link = entry.is_symlink()
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                folders.append((path, os.path.realpath(path) if link else os.path.join(real, name),
                                f"{rel}{name}{os.sep}"))
                continue
            try:
                is_file = entry.is_file()
            except OSError:
                is_file = False
            if not is_file:
                if link and not os.path.exists(path):
                    problems.append((rel + name, "broken symbolic link: its target "
                                     f"{os.readlink(path)!r} does not exist"))
                continue  # sockets, fifos, devices: not data
            yield path, rel + name, os.path.realpath(path) if link else os.path.join(real, name)
        stack.extend(reversed(folders))


def _is_manifest(path: Path) -> bool:
    """Whether a file given as an input is a manifest (its module loads only for files)."""
    from dicomvol.inputs.manifest import is_manifest

    return is_manifest(path)

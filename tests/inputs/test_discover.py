"""discover: every regular file once, in os.walk order, with the paths os.walk gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomvol.errors import UsageError
from dicomvol.inputs.discover import Candidate, discover, discover_all


def _reference(inputs: list[str | Path]) -> list[Candidate]:
    """The straightforward walk discover must equal: os.walk following links, each real
    folder walked once (the first time the walk reaches it), realpath and abspath per file."""
    seen: set[str] = set()
    found = []
    for raw in inputs:
        root = Path(raw)
        if root.is_file():
            pairs = [(str(root), root.name)]
        else:
            pairs = []
            walked: set[str] = set()
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                if os.path.realpath(dirpath) in walked:
                    dirnames[:] = []
                    continue
                walked.add(os.path.realpath(dirpath))
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if not name.startswith(".") and os.path.isfile(full):
                        pairs.append((full, os.path.relpath(full, root)))
        for path, rel in pairs:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(Candidate(os.path.abspath(path), rel))
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for rel in ["b/2", "b/1", "a/x/deep", "a/y", "top", "Z", ".hidden", ".hid/inner", "b/.h"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    (root / "empty").mkdir()
    os.symlink(root / "a" / "y", root / "b" / "link_to_file")  # same file as a/y: listed once
    os.symlink(root / "a", root / "b" / "link_to_folder")  # followed: a/ is walked already
    os.symlink(root, root / "a" / "x" / "loop")  # a cycle: walked once
    linked = tmp_path / "linked_series"  # reached only through a link
    (linked / "sub").mkdir(parents=True)
    (linked / "s1").write_bytes(b"s1")
    (linked / "sub" / "s2").write_bytes(b"s2")
    os.symlink(linked, root / "series_link")
    os.symlink(root / "missing", root / "broken")  # no file
    os.mkfifo(root / "fifo")  # not a regular file
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(b"x")
    os.symlink(outside, root / "a" / "link_outside")
    return root


def test_discover_equals_the_os_walk_reference(tree: Path) -> None:
    found = discover([tree])
    assert found == _reference([tree])
    rels = [c.rel for c in found]
    assert "top" in rels and os.path.join("a", "x", "deep") in rels
    assert not any(part.startswith(".") for c in found for part in Path(c.rel).parts)
    assert not any("link_to_folder" in r or "loop" in r or r in ("broken", "fifo") for r in rels)
    assert os.path.join("series_link", "s1") in rels
    assert os.path.join("series_link", "sub", "s2") in rels
    assert len({os.path.realpath(c.path) for c in found}) == len(found)
    assert all(os.path.isabs(c.path) and os.path.isfile(c.path) for c in found)


def test_overlapping_relative_and_linked_inputs(tree: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    os.symlink(tree, tmp_path / "root_link")
    monkeypatch.chdir(tree.parent)
    inputs: list[str | Path] = ["in/b/", "in", str(tmp_path / "root_link" / "a"),
                                "in/top", "./in/a/x"]
    assert discover(inputs) == _reference(inputs)
    monkeypatch.chdir(tree)
    assert discover(["."]) == _reference(["."])


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="input not found"):
        discover([tmp_path / "nope"])


def test_broken_links_and_unreadable_folders_are_named_problems(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.basename(path) == "x":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover_all([tree])
    problems = dict(found.problems)
    unreadable = os.path.join("a", "x") + os.sep
    assert set(problems) == {"broken", unreadable}
    assert "broken symbolic link" in problems["broken"] and "missing" in problems["broken"]
    assert problems[unreadable] == "folder could not be read: Permission denied"
    assert not any("deep" in c.rel for c in found.candidates)  # under the unreadable folder


def test_a_name_that_is_not_utf8_is_listed_with_its_bytes(tmp_path: Path) -> None:
    name = b"caf\xe9.dcm"
    (tmp_path / "in").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "in"), name), "wb") as fp:
        fp.write(b"x")
    (found,) = discover([tmp_path / "in"])
    assert os.fsencode(found.rel) == name and os.path.isfile(found.path)


def test_the_output_folder_inside_an_input_is_not_read(tree: Path) -> None:
    out = tree / "b" / "out"
    out.mkdir()
    (out / "old.nii.gz").write_bytes(b"written by an earlier run")
    found = discover_all([tree], outputs=out)
    assert not any("old.nii.gz" in c.rel for c in found.candidates)
    assert found.ignored == [(os.path.join("b", "out") + os.sep,
                              "this run's output folder: not read as input")]
    assert [c.rel for c in found.candidates] == [c.rel for c in discover([tree])
                                                 if "old.nii.gz" not in c.rel]
    assert discover_all([out], outputs=out).candidates  # the output folder as the input: read


def test_a_dicomdir_input_stands_for_its_folder(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "PT0" / "ST0").mkdir(parents=True)
    (media / "DICOMDIR").write_bytes(b"index")
    (media / "PT0" / "ST0" / "IM0").write_bytes(b"image")
    found = discover([media / "DICOMDIR"])
    assert found == discover([media])
    assert {c.rel for c in found} == {"DICOMDIR", os.path.join("PT0", "ST0", "IM0")}

"""discover: every regular file once, in os.walk order, with the paths os.walk gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomvol.errors import UsageError
from dicomvol.inputs.discover import Candidate, discover


def _reference(inputs: list[str | Path]) -> list[Candidate]:
    """The straightforward walk (os.walk, realpath and abspath per file) discover must equal."""
    seen: set[str] = set()
    found = []
    for raw in inputs:
        root = Path(raw)
        if root.is_file():
            pairs = [(str(root), root.name)]
        else:
            pairs = []
            for dirpath, dirnames, filenames in os.walk(root):
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
    os.symlink(root / "a", root / "b" / "link_to_folder")  # not followed
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
    assert not any("link_to_folder" in r or r in ("broken", "fifo") for r in rels)
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

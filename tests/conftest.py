"""Shared fixtures: the real corpus (required in CI) and the exactness check."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_root() -> Path | None:
    """The shared corpus: $DICOMVOL_CORPUS or ../shared/corpus beside the repository."""
    env = os.environ.get("DICOMVOL_CORPUS")
    path = Path(env) if env else REPO.parent / "shared" / "corpus"
    return path if path.is_dir() else None


def in_ci() -> bool:
    """True on CI, where a missing corpus or peer tool is a failure, never a skip."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """A missing corpus or peer tool: skip locally, fail on CI (where it must be there)."""
    if in_ci():
        pytest.fail(f"{reason}; CI requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Path of the shared corpus; skips locally when absent, fails on CI."""
    root = corpus_root()
    if root is None:
        skip_or_fail("shared corpus not found (set DICOMVOL_CORPUS)")
    return root


def find_dcm2niix() -> str | None:
    """dcm2niix on PATH, beside the running interpreter (a venv's bin) or in the repo's venv."""
    found = shutil.which("dcm2niix")
    if found:
        return found
    for candidate in (Path(sys.executable).parent / "dcm2niix", REPO / ".venv/bin/dcm2niix"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_dcm2niix() -> str:
    """The dcm2niix executable; skips locally when absent, fails on CI (like ``corpus``)."""
    exe = find_dcm2niix()
    if exe is None:
        skip_or_fail("dcm2niix not found (pip install dcm2niix)")
    return exe


@pytest.fixture(scope="session")
def dcm2niix_exe() -> str:
    """The dcm2niix executable (see :func:`require_dcm2niix`)."""
    return require_dcm2niix()


#: Fixtures whose use marks a test (so ``-m "not corpus"`` and friends select by need).
FIXTURE_MARKERS = {"corpus": "corpus", "dcm2niix_exe": "dcm2niix"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use: ``corpus`` and ``dcm2niix``."""
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


def import_peer(name: str) -> Any:
    """Import an optional peer/oracle module; skips locally when absent, fails on CI."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        skip_or_fail(f"{name} is not installed (pip install -e '.[test]')")

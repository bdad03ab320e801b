"""Shared fixtures: the real corpus (required in CI) and the exactness check."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Path of the shared corpus; skips locally when absent, fails on CI."""
    root = corpus_root()
    if root is None:
        if in_ci():
            pytest.fail("shared corpus not found (set DICOMVOL_CORPUS); CI requires it")
        pytest.skip("shared corpus not found (set DICOMVOL_CORPUS)")
    return root

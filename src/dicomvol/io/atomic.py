"""Atomic output: write a temporary file beside the target, rename it into place.

Every writer in dicomvol goes through :func:`atomic_path`, so an interrupted
run leaves either the complete old file, the complete new one, or a hidden
``.NAME.PID.tmp`` that the next ``convert`` removes (:data:`TEMPORARY_GLOB`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Pattern of the temporary files :func:`atomic_path` creates (for cleaning up).
TEMPORARY_GLOB = ".*.tmp"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block succeeds.

    When the block raises, the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

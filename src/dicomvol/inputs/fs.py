"""The one file-system layer: every read of an input goes through these functions.

Today inputs are local files; the layer is where object-store URLs (fsspec)
plug in, so that the rest of the pipeline never calls ``open`` on an input
itself. Each function opens the file once per call.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from dicomvol._typing import PathLike


def open_input(path: PathLike) -> BinaryIO:
    """Open an input file for binary reading (the caller closes it)."""
    return open(path, "rb")


def read_bytes(path: PathLike, start: int = 0, length: int | None = None) -> bytes:
    """``length`` bytes of a file from ``start`` (to the end when ``length`` is None)."""
    with open_input(path) as fp:
        if start:
            fp.seek(start)
        return fp.read() if length is None else fp.read(length)


def size(path: PathLike) -> int:
    """The size of a file in bytes."""
    return os.stat(path).st_size


def stream_size(fp: BinaryIO) -> int:
    """The size of an open input in bytes (without another look-up by name)."""
    try:
        return os.fstat(fp.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # not a real file: seek to the end
        here = fp.tell()
        end = fp.seek(0, 2)
        fp.seek(here)
        return end

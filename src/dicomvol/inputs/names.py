"""File names as bytes and as text: names that are not UTF-8 survive every output.

On POSIX a file name is bytes. Python gives a name that is not valid UTF-8 (e.g.
Latin-1 names from an old CD or Windows archive) as text with lone surrogates
(``surrogateescape``), which a strict UTF-8 encoder refuses. Digests take the name's
bytes as the file system holds them (:func:`name_bytes`: the same bytes as ``encode()``
for every UTF-8 name, so digests of earlier runs still match); text outputs that must
be valid UTF-8 (Parquet, CSV, HTML, the terminal) show each such byte as ``\\xNN``
(:func:`printable`). JSON keeps the name exactly (``\\udcNN`` escapes, which ``json``
reads back to the same name).
"""

from __future__ import annotations


def name_bytes(name: str) -> bytes:
    """The bytes of ``name`` as the file system holds them (UTF-8, surrogates as bytes)."""
    return name.encode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """``text`` as valid Unicode: each byte a non-UTF-8 name held becomes ``\\xNN``.

    Text without lone surrogates is returned as it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text

"""JSON outputs (sidecars, the run report), written atomically.

The text is ``json.dumps(obj, indent=2, default=json_default)``'s, character for
character (tested against it), made by :func:`dumps`: the standard library encodes an
indented document in pure Python, token by token through generators, and a sidecar's
``SourceInstances`` of a 5,000-frame series was two thirds of a diffusion job's
metadata time; this encoder writes each value once, strings with the standard
library's C escaper.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from dicomvol.io.atomic import atomic_path

#: One level of indentation (``indent=2``).
INDENT = "  "


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place."""
    text = dumps(obj)  # one write, not one per token
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fp:
        fp.write(text + "\n")


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=2, default=json_default)``: the same text, faster.

    ValueError for a dict key json cannot write (as json raises TypeError: a key that
    is not text, a number, a boolean or None) and for nesting deeper than Python's
    recursion allows (json raises RecursionError).
    """
    out: list[str] = []
    _encode(obj, out, "\n")
    return "".join(out)


def _encode(obj: Any, out: list[str], newline: str) -> None:
    """Append the text of ``obj`` to ``out``; ``newline`` is a line break and the current
    indentation."""
    kind = type(obj)
    if kind is str:
        out.append(encode_basestring_ascii(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(obj))
    elif kind is float:
        out.append(_float(obj))
    elif kind is dict:
        if not obj:
            out.append("{}")
            return
        inner = newline + INDENT
        first = True
        for key, value in obj.items():
            out.append(("{" if first else ",") + inner + _key(key) + ": ")
            first = False
            _encode(value, out, inner)
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not obj:
            out.append("[]")
            return
        inner = newline + INDENT
        first = True
        for value in obj:
            out.append(("[" if first else ",") + inner)
            first = False
            _encode(value, out, inner)
        out.append(newline + "]")
    elif isinstance(obj, str):
        out.append(encode_basestring_ascii(obj))
    elif isinstance(obj, int):  # bool is caught above; an int subclass as json writes it
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, dict | list | tuple):  # subclasses: as json, by their items
        _encode(dict(obj) if isinstance(obj, dict) else list(obj), out, newline)
    else:
        _encode(json_default(obj), out, newline)


def _float(value: float) -> str:
    """A float as json writes it (``repr``; NaN and infinities by their JavaScript names)."""
    if math.isfinite(value):
        return float.__repr__(value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _key(key: Any) -> str:
    """A dict key as json writes it: text as is, numbers, booleans and None as text."""
    if isinstance(key, str):
        return encode_basestring_ascii(key)
    if key is True:
        return '"true"'
    if key is False:
        return '"false"'
    if key is None:
        return '"null"'
    if isinstance(key, int):
        return encode_basestring_ascii(int.__repr__(key))
    if isinstance(key, float):
        return encode_basestring_ascii(_float(key))
    raise ValueError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def json_default(obj: Any) -> Any:
    """JSON form of numpy scalars and arrays, sets and tuples; text for anything else."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)

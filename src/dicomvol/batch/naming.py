"""Output names from a template: safe for file systems, never colliding."""

from __future__ import annotations

import re
import string
from typing import Any

from dicomvol.errors import UsageError

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
#: Longest name stem written (leaves room for suffixes and extensions).
MAX_STEM = 150


def template_fields(template: str) -> list[str]:
    """DICOM keywords named in a template, e.g. ``['PatientID', 'SeriesNumber']``.

    Raises
    ------
    UsageError
        The template is malformed (unbalanced braces, format specs).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"bad name template {template!r}: {exc}") from exc
    fields = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise UsageError(f"bad name template {template!r}: fields are DICOM keywords "
                             f"in braces, like {{PatientID}}; got {{{name}}}")
        fields.append(name)
    return fields


def safe(text: str) -> str:
    """Replace characters unsafe in file names; collapse runs to one underscore."""
    cleaned = _UNSAFE.sub("_", text.strip()).strip("._")
    return cleaned


def render(template: str, values: dict[str, Any]) -> str:
    """Fill a template with header values, each made safe; missing values become 'NA'."""
    fields = template_fields(template)
    filled = {name: safe(_text(values.get(name))) or "NA" for name in fields}
    stem = safe(template.format(**filled)) or "series"
    return stem[:MAX_STEM]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


class NameAllocator:
    """Hands out unique stems within a run: ``name``, ``name_2``, ``name_3``..."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def allocate(self, stem: str) -> str:
        """A stem not handed out before (case-insensitively, for macOS/Windows)."""
        candidate, n = stem, 1
        while candidate.lower() in self._used:
            n += 1
            candidate = f"{stem}_{n}"
        self._used.add(candidate.lower())
        return candidate

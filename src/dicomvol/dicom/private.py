"""Vendor private elements: lookup by private creator, and the Siemens CSA headers.

One accessor each: :func:`private_value` for any private element, and
:func:`csa_header` / :func:`csareader` for the Siemens CSA image and series
headers (read with nibabel's CSA reader, whose import warns that it is
experimental; the warning is silenced here, once).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from dicomvol.errors import HeaderError

#: Where the Siemens CSA headers live: (0029,xx10) image, (0029,xx20) series.
CSA_IMAGE = "CSA image header (0029,xx10)"
CSA_SERIES = "CSA series header (0029,xx20)"


def private_value(ds: Any, group: int, creator: str, offset: int) -> Any:
    """Value of private element (group, xx<offset>) under ``creator``, or None.

    Looks the block up by its private creator; when the data set has no such
    creator (some anonymisers drop creators), falls back to the conventional
    element (group, 0x10<offset>) if no other creator owns block 0x10.
    """
    try:  # the common layout first: the creator owns block 0x10 (two dict look-ups)
        owner = ds.get((group, 0x0010))
        if owner is not None and str(owner.value).strip() == creator:
            elem = ds.get((group, 0x1000 | offset))
            return None if elem is None else elem.value
    except Exception:  # a malformed element: look the block up by its creator below
        pass
    try:
        return ds.private_block(group, creator)[offset].value
    except (KeyError, AttributeError, ValueError):
        pass
    try:
        owner = ds.get((group, 0x0010))
        if owner is not None and str(owner.value).strip() not in ("", creator):
            return None
        elem = ds.get((group, 0x1000 | offset))
    except Exception:  # a malformed element: treat as absent
        return None
    return None if elem is None else elem.value


def csareader() -> Any:
    """nibabel's CSA reader module (``get_csa_header``, ``get_n_mosaic``, ``get_b_value``...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module("nibabel.nicom.csareader")


def csa_header(ds: Any, kind: str = "image") -> dict[str, Any] | None:
    """The Siemens CSA ``"image"`` or ``"series"`` header as nibabel parses it, or None if absent.

    Raises
    ------
    HeaderError
        The header is present but cannot be parsed.
    """
    try:
        csa = csareader().get_csa_header(ds, kind)
    except Exception as exc:  # CSAReadError, struct.error or a bad private block
        where = CSA_IMAGE if kind == "image" else CSA_SERIES
        raise HeaderError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from exc
    return dict(csa) if csa else None


def csa_items(csa: dict[str, Any] | None, name: str) -> list[Any] | None:
    """The items of CSA tag ``name`` (e.g. ``MosaicRefAcqTimes``), or None when absent or empty."""
    if not csa:
        return None
    tag = csa.get("tags", {}).get(name)
    items = tag.get("items") if tag else None
    return list(items) if items else None

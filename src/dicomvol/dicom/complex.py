"""Which part of a complex MR signal a frame holds: magnitude, phase, real or imaginary.

Read, in this order, from the enhanced ComplexImageComponent (0008,9208) of the
MR Image Frame Type, GE's private image type (0043,xx2F) of creator
``GEMS_PARM_01`` (0 magnitude, 1 phase, 2 real, 3 imaginary; GE stores the
parts of one series at the same positions with nothing else telling them
apart), or an ImageType value from the third on (``M``/``MAGNITUDE``,
``P``/``PHASE``, ``R``/``REAL``, ``I``/``IMAGINARY``), as dcm2niix reads them.
The name suffixes (``_ph``, ``_real``, ``_imaginary``, ``_fieldmaphz``) are
the planner's (:func:`dicomvol.plan.splits.part_suffix`).
"""

from __future__ import annotations

from typing import Any

from dicomvol.dicom.private import private_value
from dicomvol.dicom.values import to_int, vendor

#: GE (0043,xx2F) values.
GE_IMAGE_TYPES = {0: "MAGNITUDE", 1: "PHASE", 2: "REAL", 3: "IMAGINARY"}
#: GE's private creator of group 0043.
GE_PARM = "GEMS_PARM_01"
_TOKENS = {"M": "MAGNITUDE", "MAGNITUDE": "MAGNITUDE", "P": "PHASE", "PHASE": "PHASE",
           "R": "REAL", "REAL": "REAL", "I": "IMAGINARY", "IMAGINARY": "IMAGINARY"}
PARTS = frozenset(GE_IMAGE_TYPES.values())


def complex_part(ds: Any, image_type: tuple[str, ...], component: Any = None) -> str | None:
    """``"MAGNITUDE"``, ``"PHASE"``, ``"REAL"``, ``"IMAGINARY"`` or None (not said)."""
    text = str(component or "").strip().upper()
    if text in PARTS:
        return text
    ge = ge_image_type(ds)
    if ge is not None and ge in GE_IMAGE_TYPES:
        return GE_IMAGE_TYPES[ge]
    for token in image_type[2:]:
        part = _TOKENS.get(token.strip().upper())
        if part is not None:
            return part
    return None


def ge_image_type(ds: Any) -> int | None:
    """GE's private image type (0043,xx2F), or None (not GE, or absent)."""
    if vendor(ds.get("Manufacturer")) != "GE":
        return None
    value = private_value(ds, 0x0043, GE_PARM, 0x2F)  # the lean reader reads it too
    if isinstance(value, bytes | bytearray):  # UN (implicit VR without a dictionary)
        return int.from_bytes(value[:2], "little", signed=True) if len(value) >= 2 else None
    return to_int(value)

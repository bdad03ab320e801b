"""Sidecar keys of field maps and of the parts of a complex signal, as dcm2niix writes them.

* ``ImageType`` gains the part (``MAGNITUDE``, ``PHASE``, ``REAL``,
  ``IMAGINARY``; ``FIELDMAPHZ`` for a real B0 map) as its last value unless it
  holds that word already (dcm2niix appends it too, also after ``M``/``P``).
* A B0 field map (real or phase image whose ImageType names a ``B0`` ``MAP``)
  is in Hz: ``Units`` ``"Hz"``; on GE, ``EchoTime1`` is the EchoTime and
  ``EchoTime2`` adds the echo spacing ``1 / (2 pi |VelocityEncodeScale|)``
  from (0019,xxE2) of creator ``GEMS_ACQU_01`` (dcm2niix issue 617); a real
  map in Hz has no ``EchoTime`` of its own.
* A Siemens phase (difference) image: ``EchoTime1`` and ``EchoTime2`` from the
  protocol's ``alTE[0]`` and ``alTE[1]`` (microseconds) in the CSA series header.
"""

from __future__ import annotations

import math
from typing import Any

from dicomvol.dicom.private import private_value, siemens_protocol
from dicomvol.dicom.values import to_float, vendor
from dicomvol.errors import HeaderError
from dicomvol.model.plan import VolumePlan
from dicomvol.plan.splits import is_b0_map

#: GE's private creator of group 0019 (acquisition parameters).
GE_ACQU = "GEMS_ACQU_01"


def part_metadata(plan: VolumePlan, ds: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Keys to add to (or replace in) ``meta`` for the plan's part of a complex signal."""
    first = plan.first
    part = first.complex_part
    if part is None:
        return {}
    out: dict[str, Any] = {}
    b0 = is_b0_map(first.image_type) and part in ("REAL", "PHASE")
    name = "FIELDMAPHZ" if b0 and part == "REAL" else part
    image_type = meta.get("ImageType")
    if isinstance(image_type, list) and name not in [str(v).strip().upper() for v in image_type]:
        out["ImageType"] = [*image_type, name]
    if part == "PHASE" and not b0 and vendor(ds.get("Manufacturer")) == "Siemens":
        out.update(_siemens_echo_times(ds))
    if not b0:
        return out
    out["Units"] = "Hz"
    te = to_float(ds.get("EchoTime"))
    if vendor(ds.get("Manufacturer")) == "GE" and te:
        scale = to_float(private_value(ds, 0x0019, GE_ACQU, 0xE2))
        if scale:
            out["EchoTime1"] = round(te / 1000.0, 6)
            out["EchoTime2"] = round(te / 1000.0 + 1.0 / (2.0 * math.pi * abs(scale)), 6)
    return out


def _siemens_echo_times(ds: Any) -> dict[str, Any]:
    """``EchoTime1``/``EchoTime2`` (s) from the protocol's ``alTE[0]``/``alTE[1]`` (us)."""
    try:
        protocol = siemens_protocol(ds) or {}
        te = [float(protocol[f"alTE[{n}]"]) for n in (0, 1)]
    except (HeaderError, KeyError, ValueError):
        return {}
    if te[0] <= 0 or te[1] <= 0:
        return {}
    return {"EchoTime1": round(te[0] / 1e6, 6), "EchoTime2": round(te[1] / 1e6, 6)}


"""Siemens private headers for synthetic data: a minimal CSA2 ('SV10') writer."""

from __future__ import annotations

import struct

from pydicom.dataset import Dataset

#: Private creator of the Siemens CSA headers (group 0029).
CSA_CREATOR = "SIEMENS CSA HEADER"


def csa2(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A minimal Siemens CSA2 ('SV10') header holding ``name -> (VR, values)``.

    nibabel's ``csareader`` parses it like a scanner's: each value is a
    NUL-terminated string padded to 4 bytes.
    """
    out = bytearray(b"SV10" + b"\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77))
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0,
                           len(values), 77)
        for value in values:
            data = value.encode() + b"\x00"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\x00" * (-len(data) % 4)
    return bytes(out)


def add_csa(ds: Dataset, image: bytes | None = None, series: bytes | None = None) -> Dataset:
    """Put CSA image (0029,1010) and/or series (0029,1020) headers into ``ds`` (returned)."""
    ds.add_new((0x0029, 0x0010), "LO", CSA_CREATOR)
    if image is not None:
        ds.add_new((0x0029, 0x1010), "OB", image)
    if series is not None:
        ds.add_new((0x0029, 0x1020), "OB", series)
    return ds

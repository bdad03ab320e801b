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


def csa2_replace(raw: bytes, values: dict[str, list[str]]) -> bytes:
    """A scanner's CSA2 header with the items of some tags replaced, every other byte kept.

    ``values`` maps tag names already in ``raw`` (e.g. ``B_value``,
    ``DiffusionGradientDirection``, present with no items in non-diffusion
    images) to their new string values. Tags are copied record by record, so a
    header that dcm2niix and nibabel read stays readable by both.
    """
    out = bytearray(raw[:16])
    (n_tags,) = struct.unpack_from("<I", raw, 8)
    pos = 16
    for _ in range(n_tags):
        name = raw[pos:pos + 64].split(b"\x00")[0].decode("latin-1")
        _, vr, syngodt, n_items, _ = struct.unpack_from("<i4siii", raw, pos + 64)
        end = pos + 84
        for _ in range(n_items):
            length = struct.unpack_from("<4i", raw, end)[1]
            end += 16 + length + (-length % 4)
        if name in values:
            new = values[name]
            out += raw[pos:pos + 64] + struct.pack("<i4siii", len(new), vr, syngodt, len(new), 77)
            for value in new:
                data = value.encode() + b"\x00"
                out += struct.pack("<4i", len(data), len(data), 77, len(data))
                out += data + b"\x00" * (-len(data) % 4)
        else:
            out += raw[pos:end]
        pos = end
    return bytes(out + raw[pos:])

"""Damaged and distracting files: not DICOM, truncated pixel data, garbage headers."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom


def write_non_dicom(folder: str | Path, name: str = "NOTDICOM") -> Path:
    """Write a plain text file without extension (not DICOM) into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if missing).
    name : str, optional
        File name.

    Returns
    -------
    Path
        The file written.
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(
        "This is not a DICOM file.\nIt was written by dicomvol.synthetic as a distractor.\n",
        encoding="ascii",
    )
    return path


def _pixel_data_offset(path: Path) -> int:
    """Byte offset of the Pixel Data element's tag in a Part-10 file."""
    with path.open("rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        # stop_before_pixels leaves the file positioned at the Pixel Data tag.
        offset = fh.tell()
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        raise ValueError(f"{path} is deflated: its pixel data has no file offset to cut at")
    if offset <= 132 or offset >= path.stat().st_size:
        raise ValueError(f"could not locate Pixel Data in {path}")
    return offset


def write_truncated(path_of_valid_file: str | Path, dest: str | Path) -> Path:
    """Copy a valid DICOM file, cut in the middle of its pixel data.

    The header stays readable (``dcmread(..., stop_before_pixels=True)`` works) but the pixels
    cannot be decoded.

    Parameters
    ----------
    path_of_valid_file : str or Path
        A Part-10 file with Pixel Data as its last element (as written by this module), in any
        transfer syntax except Deflated Explicit VR Little Endian (``ValueError``). For
        encapsulated (compressed) data pydicom drops the incomplete Pixel Data element, so
        ``pixel_array`` raises ``AttributeError``; for native data it raises ``ValueError``.
    dest : str or Path
        Destination file (its folder is created if missing).

    Returns
    -------
    Path
        ``dest``.
    """
    src = Path(path_of_valid_file)
    data = src.read_bytes()
    start = _pixel_data_offset(src)
    cut = start + 12 + (len(data) - start - 12) // 2
    cut -= cut % 2
    if cut <= start + 12:
        raise ValueError(f"pixel data of {src} is too small to truncate")
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[:cut])
    return out


def write_header_garbage(dest: str | Path) -> Path:
    """Write a file with a DICOM preamble and ``DICM`` prefix followed by garbage.

    After the prefix comes a well-formed File Meta group that declares Deflated Explicit VR
    Little Endian, then bytes that are not a valid deflate stream (the first block header uses
    the reserved block type), so ``pydicom.dcmread`` raises (``zlib.error``) even with
    ``stop_before_pixels=True`` or ``force=True``.

    Parameters
    ----------
    dest : str or Path
        Destination file (its folder is created if missing).

    Returns
    -------
    Path
        ``dest``.
    """
    uid = str(pydicom.uid.DeflatedExplicitVRLittleEndian).encode("ascii")
    uid += b"\x00" * (len(uid) % 2)
    ts_element = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(uid)) + uid
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(ts_element))
    # 0xFF: BFINAL = 1 and BTYPE = 11 (reserved) -> "invalid block type" for any decoder.
    garbage = b"\xff" + np.random.default_rng(12345).bytes(511)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"\x00" * 128 + b"DICM" + group_length + ts_element + garbage)
    return out


def _element_at(data: bytes, keyword: str) -> tuple[int, int, int]:
    """(tag offset, value offset, value length) of a top-level explicit-VR LE element."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"unknown keyword {keyword}")
    for pos, value, length, found in element_offsets(data):
        if found == tag:
            return pos, value, length
    raise ValueError(f"{keyword} not found at the top level")


def element_offsets(data: bytes) -> list[tuple[int, int, int, int]]:
    """Top-level elements of an explicit VR little-endian Part-10 file, up to PixelData.

    Returns
    -------
    list of (tag offset, value offset, value length, tag)
        In file order; the file meta group included, PixelData last. For
        fuzzing "at every structural boundary" and for the writers below.
    """
    out = []
    pos = 132
    long_vrs = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN"}
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4:pos + 6]
        if vr in long_vrs:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            value = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            value = pos + 8
        tag = (group << 16) | elem
        out.append((pos, value, length, tag))
        if tag == 0x7FE00010 or length == 0xFFFFFFFF:
            break
        pos = value + length
    return out


def write_nested_sequences(path_of_valid_file: str | Path, dest: str | Path,
                           depth: int = 10_000) -> Path:
    """Copy a valid explicit-VR LE file with undefined-length sequences nested ``depth`` deep.

    The nest (a private sequence (0029,1010), each item holding the next one)
    is inserted just before PixelData, which stays intact: a reader that
    recurses once per level exceeds Python's recursion limit.

    Returns
    -------
    Path
        ``dest``.
    """
    data = Path(path_of_valid_file).read_bytes()
    pixel = element_offsets(data)[-1][0]
    opening = b"\x29\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[:pixel] + opening * depth + closing * depth + data[pixel:])
    return out


def write_overlong_element(path_of_valid_file: str | Path, dest: str | Path,
                           keyword: str = "SeriesDescription", length: int = 0xFFF0) -> Path:
    """Copy a valid explicit-VR LE file whose ``keyword`` element claims ``length`` bytes.

    The claimed length runs over PixelData (which stays in the file, intact):
    pydicom then ends the data set early and sees no pixel data. A damaged
    image, not an object without pixels.
    """
    data = bytearray(Path(path_of_valid_file).read_bytes())
    pos, value, _ = _element_at(bytes(data), keyword)
    if value - pos != 8:
        raise ValueError(f"{keyword} has a 32-bit length; choose a short-VR element")
    struct.pack_into("<H", data, pos + 6, length)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    return out


def write_raw_value(path_of_valid_file: str | Path, dest: str | Path, keyword: str,
                    raw: bytes, vr: bytes | None = None) -> Path:
    """Copy a valid explicit-VR LE file with ``keyword``'s value bytes (and VR) replaced.

    For unparsable numbers (NumberOfFrames ``b"1A"``), wrong VRs (``vr=b"FD"``)
    and garbled geometry (``b"1\\\\x\\\\3"``). A short-VR element gets a 16-bit
    length; the element is added before PixelData when the file lacks it.
    """
    data = Path(path_of_valid_file).read_bytes()
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"unknown keyword {keyword}")
    value_vr = vr or str(pydicom.datadict.dictionary_VR(tag)).encode()
    raw = raw + (b" " if len(raw) % 2 else b"")
    element = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + value_vr + struct.pack("<H", len(raw))
    elements = element_offsets(data)
    at = next((e for e in elements if e[3] == tag), None)
    if at is not None:
        start, end = at[0], at[1] + at[2]
    else:  # insert in tag order
        start = end = next(e[0] for e in elements if e[3] > tag)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[:start] + element + raw + data[end:])
    return out


def write_conflicting_copy(path_of_valid_file: str | Path, dest: str | Path,
                           delta: int = 7) -> Path:
    """Copy a valid file keeping its SOPInstanceUID and header, changing its pixel data.

    Every stored value is shifted by ``delta`` (within the dtype): the same
    UID with different content, a conflict and never a copy.
    """
    ds = pydicom.dcmread(path_of_valid_file)
    pixels = ds.pixel_array
    info = np.iinfo(pixels.dtype)
    shifted = np.clip(pixels.astype(np.int64) + delta, info.min, info.max).astype(pixels.dtype)
    ds.PixelData = shifted.tobytes()
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out

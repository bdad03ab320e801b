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

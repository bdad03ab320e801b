"""Reading DICOM headers with pydicom: up to (not into) PixelData, gzip transparent.

The length of the PixelData element is checked against Rows x Columns x
frames so that a truncated file is reported at indexing time, by name,
before any volume depends on it. Every read goes through
:mod:`dicomvol.inputs.fs`.
"""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from dicomvol.dicom.values import first_item, to_int, to_str
from dicomvol.errors import HeaderError, NotDicomError, PixelDataError
from dicomvol.inputs import fs

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported where a header is parsed with it
    from pydicom.dataset import Dataset

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
GZIP_MAGIC = b"\x1f\x8b"
PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
UNDEFINED_LENGTH = 0xFFFFFFFF
#: Elements larger than this are not loaded while indexing (read lazily if asked for).
DEFER_SIZE = 16384
#: Exceptions pydicom raises on corrupt or truncated input, besides its own
#: ``InvalidDicomError`` and ``BytesLengthException`` (:func:`parse_errors` adds them).
#: (RuntimeError covers RecursionError; zlib.error is a broken deflate stream.)
BUILTIN_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, ValueError, struct.error, KeyError, TypeError, IndexError,
    AttributeError, RuntimeError, MemoryError, OverflowError, UnicodeError, zlib.error)


def parse_errors() -> tuple[type[BaseException], ...]:
    """Every exception a pydicom parse of corrupt or truncated input raises (imports pydicom)."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return (InvalidDicomError, *BUILTIN_PARSE_ERRORS, BytesLengthException)


def __getattr__(name: str) -> tuple[type[BaseException], ...]:
    """``PARSE_ERRORS`` (:func:`parse_errors`), for modules that parse with pydicom anyway."""
    if name == "PARSE_ERRORS":
        return parse_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, slots=True)
class PixelInfo:
    """Where the pixel data element starts and how long it is."""

    tag_offset: int
    value_offset: int | None  # None when the offset is unknown (gzip/deflate)
    length: int  # UNDEFINED_LENGTH for encapsulated data
    remaining: int  # bytes from the value offset to the end of the file
    #: The element: (7FE0,0010) PixelData, (7FE0,0008) FloatPixelData, (7FE0,0009) DoubleFloat.
    tag: tuple[int, int] = (0x7FE0, 0x0010)


def open_dicom(path: str) -> tuple[BinaryIO, bool]:
    """Open a file for pydicom, transparently decompressing gzip.

    Returns the open binary stream and whether it was gzip-compressed.
    """
    fp = fs.open_input(path)
    magic = fp.read(2)
    fp.seek(0)
    if magic == GZIP_MAGIC:
        with gzip.open(fp) as gz:
            try:
                data = gz.read()
            except (OSError, EOFError) as exc:
                fp.close()
                raise NotDicomError(f"gzip file cannot be decompressed: {exc}") from exc
        fp.close()
        return io.BytesIO(data), True
    return fp, False


def read_header(path: str) -> tuple[Dataset, PixelInfo | None, bool]:
    """Read a DICOM header up to PixelData.

    Returns
    -------
    ds : Dataset
        The header, without pixel data.
    pixel_info : PixelInfo or None
        Where the pixel data lies, None when the object has none.
    gzipped : bool
        Whether the file was gzip-compressed.

    Raises
    ------
    NotDicomError
        The file is not DICOM at all.
    HeaderError
        The file claims to be DICOM but its header cannot be parsed.
    """
    try:
        fp, gzipped = open_dicom(path)
    except OSError as exc:
        raise HeaderError(f"cannot open: {exc.strerror or exc}") from exc
    with fp:
        ds, info = read_header_from(fp, gzipped)
    return ds, info, gzipped


def read_header_from(fp: BinaryIO, gzipped: bool = False) -> tuple[Dataset, PixelInfo | None]:
    """:func:`read_header` on an open stream positioned at the start of the file."""
    head = fp.read(132)
    fp.seek(0)
    has_preamble = len(head) == 132 and head[128:132] == b"DICM"
    if not head:
        raise NotDicomError("empty file (0 bytes): not a DICOM file")
    if head[:4] == b"PK\x03\x04":
        raise NotDicomError("a ZIP archive, not a DICOM file: extract it and convert the folder")
    if not has_preamble and not _looks_like_raw_dicom(head):
        raise NotDicomError("not a DICOM file (no DICM prefix)")
    import pydicom  # the fallback: the lean readers declined this file
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about every odd value
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not has_preamble,
                                 defer_size=DEFER_SIZE)
    except InvalidDicomError as exc:
        if has_preamble:
            raise HeaderError(f"invalid DICOM header: {exc}") from exc
        raise NotDicomError("not a DICOM file (no DICM prefix)") from exc
    except parse_errors() as exc:
        if has_preamble:
            raise HeaderError(f"header truncated or corrupt: {_describe(exc)}") from exc
        raise NotDicomError("not a DICOM file (no DICM prefix)") from exc
    if not has_preamble and "SOPClassUID" not in ds and "Rows" not in ds:
        raise NotDicomError("not a DICOM file (no DICM prefix, no DICOM attributes)")
    if has_preamble and not meta_value(ds, "TransferSyntaxUID"):  # guessing could misread
        raise HeaderError("damaged file meta information: no TransferSyntaxUID (0002,0010) "
                          "after the DICM prefix")
    try:
        pixel_info = _pixel_info(fp, ds, gzipped)
        if pixel_info is None and UID(transfer_syntax(ds)).is_deflated:
            pixel_info = _deflated_pixel_info(fp)
    except parse_errors() as exc:
        raise HeaderError(f"header truncated or corrupt: {_describe(exc)}") from exc
    return ds, pixel_info


def _describe(exc: BaseException) -> str:
    """An exception as one short line: its text, or its type when it has none."""
    text = str(exc).strip()
    if isinstance(exc, RecursionError):
        return "sequences nested too deeply to read (RecursionError)"
    if isinstance(exc, MemoryError | OverflowError):
        return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}".rstrip(": ")
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _deflated_pixel_info(fp: BinaryIO) -> PixelInfo | None:
    """Deflated data sets: read fully (rare) to learn whether they hold pixel data."""
    import pydicom

    fp.seek(0)
    full = pydicom.dcmread(fp, force=True)
    for keyword, tag in (("PixelData", (0x7FE0, 0x0010)), ("FloatPixelData", (0x7FE0, 0x0008)),
                         ("DoubleFloatPixelData", (0x7FE0, 0x0009))):
        if keyword in full:
            return PixelInfo(0, None, UNDEFINED_LENGTH, 0, tag)  # length checked when decoded
    return None


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A Part-10 file without preamble starts with a group 0002 or 0008 tag."""
    if len(head) < 8:
        return False
    group_le = struct.unpack("<H", head[:2])[0]
    group_be = struct.unpack(">H", head[:2])[0]
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def _pixel_info(fp: BinaryIO, ds: Dataset, gzipped: bool) -> PixelInfo | None:
    tag_offset = fp.tell()
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    fp.seek(tag_offset)
    head = fp.read(12)
    if len(head) < 8:
        return None
    from pydicom.uid import UID  # after a pydicom read: imported already

    ts = UID(transfer_syntax(ds))
    little = ts.is_little_endian if ts.is_transfer_syntax else True
    implicit = ts.is_implicit_VR if ts.is_transfer_syntax else False
    end = "<" if little else ">"
    group, elem = struct.unpack(end + "HH", head[:4])
    if (group, elem) not in PIXEL_TAGS:
        return None
    if ts.is_deflated:
        return None  # the inflated stream is not this file: read_header asks pydicom
    if implicit:
        (length,) = struct.unpack(end + "I", head[4:8])
        value_offset = tag_offset + 8
    else:
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"UN", b"OL", b"OV"):
            if len(head) < 12:
                raise PixelDataError("file ends inside the PixelData element header")
            (length,) = struct.unpack(end + "I", head[8:12])
            value_offset = tag_offset + 12
        else:
            (length,) = struct.unpack(end + "H", head[6:8])
            value_offset = tag_offset + 8
    return PixelInfo(tag_offset, None if gzipped else value_offset, length,
                     size - value_offset, (group, elem))


def check_pixel_length(ds: Any, info: PixelInfo) -> None:
    """Raise PixelDataError when PixelData is shorter than the header's pixel matrix needs."""
    if info.length == UNDEFINED_LENGTH:
        return  # encapsulated: checked when decoded
    rows = to_int(ds.get("Rows", 0)) or 0
    cols = to_int(ds.get("Columns", 0)) or 0
    frames = to_int(ds.get("NumberOfFrames")) or 1
    spp = to_int(ds.get("SamplesPerPixel", 1)) or 1
    bits = to_int(ds.get("BitsAllocated", 16)) or 16
    expected_bits = rows * cols * frames * spp * bits
    expected = (expected_bits + 7) // 8
    if info.length < expected:
        raise PixelDataError(
            f"PixelData holds {info.length} bytes, {rows}x{cols}x{frames} frames of "
            f"{bits}-bit pixels need {expected}"
        )
    if info.remaining < expected:
        raise PixelDataError(
            f"file is truncated: PixelData needs {expected} bytes but only "
            f"{info.remaining} remain in the file"
        )


def transfer_syntax(ds: Any) -> str:
    """The data set's transfer syntax UID (from the file meta, else from how it was read)."""
    ts = meta_value(ds, "TransferSyntaxUID")
    if ts:
        return ts
    implicit = getattr(ds, "is_implicit_VR", None)
    if implicit is None:
        implicit = ds.original_encoding[0] if hasattr(ds, "original_encoding") else False
    return "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1"


def meta_value(ds: Any, keyword: str) -> str:
    """A file meta information value as text ("" when absent)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return ""
    return str(meta.get(keyword, "") or "")


def instance_uid(ds: Any) -> str:
    """SOPInstanceUID, or the file meta's MediaStorageSOPInstanceUID where the data set
    lost it (a careless de-identification; PS3.10: the same UID); "" when neither."""
    return to_str(ds.get("SOPInstanceUID")) or meta_value(ds, "MediaStorageSOPInstanceUID")


def sop_name(sop_class: str) -> str:
    """The SOP class's name (e.g. 'Segmentation Storage'), or the UID when unknown."""
    if not sop_class:
        return "unknown SOP class"
    from pydicom.uid import UID  # a message about an odd file: pydicom's UID names

    name = UID(sop_class).name
    return name if name and name != sop_class else sop_class


class Fallback:
    """A data set view that looks in further items for what the first lacks.

    Legacy converted enhanced objects (PS3.3 C.7.6.16.2.25) keep attributes that
    have no functional group in UnassignedSharedConvertedAttributesSequence (and,
    per frame, UnassignedPerFrameConvertedAttributesSequence).
    """

    def __init__(self, *items: Any) -> None:
        self._items = items

    def get(self, keyword: str, default: Any = None) -> Any:
        """The first non-empty value of ``keyword`` among the items."""
        for item in self._items:
            value = item.get(keyword)
            if value is not None and value != "":
                return value
        return default

    def __contains__(self, keyword: str) -> bool:
        return any(keyword in item for item in self._items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._items[0], name)


def merged_header(ds: Any) -> Any:
    """``ds`` (a pydicom ``Dataset`` or a ``LeanDataset``) with top-level gaps filled from
    UnassignedSharedConvertedAttributesSequence."""
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    unassigned = first_item(shared, "UnassignedSharedConvertedAttributesSequence")
    if unassigned is None:
        return ds
    merge = getattr(ds, "merged", None)
    if merge is not None:  # a LeanDataset (dicom/leands.py)
        return merge(unassigned)
    from pydicom.dataset import Dataset

    merged = Dataset(ds)  # shallow copy: same elements
    if hasattr(ds, "file_meta"):
        merged.file_meta = ds.file_meta
    for element in unassigned:
        if element.tag not in merged:
            merged.add(element)
    return merged


def parse_dataset(fp: BinaryIO) -> Dataset:
    """A full data set (with pixel data) from an open stream."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(fp, force=True)
    except parse_errors() as exc:
        raise PixelDataError(f"cannot read: {_describe(exc)}") from exc


def dataset_of(path: str) -> Dataset:
    """Read a full data set (with pixel data), transparently decompressing gzip."""
    fp, _ = open_dicom(path)
    with fp:
        return parse_dataset(fp)


def header_of(path: str) -> Dataset:
    """Read a header (no pixel data), transparently decompressing gzip."""
    ds, _, _ = read_header(path)
    return ds


def gunzip_if_needed(data: bytes) -> tuple[bytes, bool]:
    """The bytes of a file, gzip-decompressed when they are a gzip stream."""
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError) as exc:
        raise NotDicomError(f"gzip file cannot be decompressed: {exc}") from exc


def pixel_info_at(fp: BinaryIO, ds: Dataset) -> PixelInfo | None:
    """Where PixelData lies, for a stream that pydicom just read up to it (not gzip)."""
    return _pixel_info(fp, ds, False)

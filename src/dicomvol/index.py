"""Index files into header records, reading only up to the pixel data.

A file is read with pydicom up to (not into) PixelData. The length of the
PixelData element is checked against Rows x Columns x frames so that a
truncated file is reported here, by name, before any volume depends on it.
"""

from __future__ import annotations

import gzip
import io
import logging
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from dicomvol.discover import Candidate
from dicomvol.errors import HeaderError, NotDicomError, PixelDataError
from dicomvol.records import FileError, FrameRecord, IgnoredFile, Orientation, Vec3

log = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_GZIP_MAGIC = b"\x1f\x8b"
_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: Elements larger than this are not loaded while indexing (read lazily if asked for).
_DEFER_SIZE = 16384


@dataclass
class IndexResult:
    """Everything the index learned about a set of files."""

    frames: list[FrameRecord] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)

    def extend(self, other: IndexResult) -> None:
        """Append another result's entries to this one."""
        self.frames.extend(other.frames)
        self.ignored.extend(other.ignored)
        self.errors.extend(other.errors)

    def sort(self) -> None:
        """Order entries by file, so results do not depend on which worker finished first."""
        self.frames.sort(key=lambda f: (f.path, f.frame, f.tile or 0))
        self.ignored.sort(key=lambda i: i.path)
        self.errors.sort(key=lambda e: e.path)


def index_files(candidates: Iterable[Candidate]) -> IndexResult:
    """Index every candidate; never raises for a bad file (it is recorded)."""
    result = IndexResult()
    for cand in candidates:
        result.extend(index_file(cand))
    return result


def index_file(cand: Candidate) -> IndexResult:
    """Index one file into frame records, an ignored entry or an error."""
    result = IndexResult()
    lean = _index_lean(cand)
    if lean is not None:
        return lean
    try:
        ds, pixel_info, gzipped = read_header(cand.path)
    except NotDicomError as exc:
        result.ignored.append(IgnoredFile(cand.path, cand.rel, str(exc)))
        return result
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
        return result
    except Exception as exc:  # pydicom raises many types on corrupt input
        log.debug("%s: header not readable", cand.path, exc_info=True)
        result.errors.append(FileError(cand.path, cand.rel,
                                       f"header not readable: {type(exc).__name__}: {exc}"))
        return result

    sop_class = str(ds.get("SOPClassUID", "") or _meta(ds, "MediaStorageSOPClassUID"))
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        result.ignored.append(IgnoredFile(cand.path, cand.rel, "DICOMDIR (a directory index)"))
        return result
    sop_uid = str(ds.get("SOPInstanceUID", "") or _meta(ds, "MediaStorageSOPInstanceUID"))
    if pixel_info is None:
        name = _sop_name(sop_class)
        result.ignored.append(
            IgnoredFile(cand.path, cand.rel, f"no pixel data ({name})", sop_uid or None)
        )
        return result
    if not sop_uid:
        result.errors.append(FileError(cand.path, cand.rel, "image without SOPInstanceUID"))
        return result
    try:
        _check_pixel_length(ds, pixel_info, cand.path)
        result.frames.extend(frame_records(ds, cand, pixel_info, gzipped))
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
    except Exception as exc:  # odd headers must cost this file only, with its name
        log.debug("%s: header not understood", cand.path, exc_info=True)
        msg = f"header not understood: {type(exc).__name__}: {exc}"
        result.errors.append(FileError(cand.path, cand.rel, msg))
    return result


def _index_lean(cand: Candidate) -> IndexResult | None:
    """The fast path (see :mod:`dicomvol.fastheader`); None to use pydicom instead."""
    from dicomvol.fastheader import read_lean

    try:
        found = read_lean(cand.path)
    except (OSError, struct.error, ValueError):
        return None
    if found is None:
        return None
    header, tag_offset, value_offset, length, size = found
    info = PixelInfo(tag_offset, value_offset, length, size - value_offset)
    result = IndexResult()
    try:
        if not header.get("SOPInstanceUID"):
            return None
        _check_pixel_length(header, info, cand.path)  # type: ignore[arg-type]
        result.frames.extend(frame_records(header, cand, info, False))  # type: ignore[arg-type]
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
    except Exception:  # anything unexpected: let pydicom read it
        log.debug("%s: lean header path failed; using pydicom", cand.path, exc_info=True)
        return None
    return result


@dataclass(frozen=True, slots=True)
class PixelInfo:
    """Where the pixel data element starts and how long it is."""

    tag_offset: int
    value_offset: int | None  # None when the offset is unknown (gzip/deflate)
    length: int  # _UNDEFINED_LENGTH for encapsulated data
    remaining: int  # bytes from the value offset to the end of the file


def open_dicom(path: str) -> tuple[BinaryIO, bool]:
    """Open a file for pydicom, transparently decompressing gzip.

    Returns the open binary stream and whether it was gzip-compressed.
    """
    fp: BinaryIO = open(path, "rb")  # noqa: SIM115 - returned to the caller
    magic = fp.read(2)
    fp.seek(0)
    if magic == _GZIP_MAGIC:
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
        head = fp.read(132)
        fp.seek(0)
        has_preamble = len(head) == 132 and head[128:132] == b"DICM"
        if not has_preamble and not _looks_like_raw_dicom(head):
            raise NotDicomError("not a DICOM file (no DICM prefix)")
        try:
            ds = pydicom.dcmread(
                fp, stop_before_pixels=True, force=not has_preamble, defer_size=_DEFER_SIZE
            )
        except InvalidDicomError as exc:
            if has_preamble:
                raise HeaderError(f"invalid DICOM header: {exc}") from exc
            raise NotDicomError("not a DICOM file (no DICM prefix)") from exc
        except (EOFError, OSError, ValueError, struct.error, KeyError, TypeError) as exc:
            if has_preamble:
                raise HeaderError(f"header truncated or corrupt: {exc}") from exc
            raise NotDicomError("not a DICOM file (no DICM prefix)") from exc
        if not has_preamble and "SOPClassUID" not in ds and "Rows" not in ds:
            raise NotDicomError("not a DICOM file (no DICM prefix, no DICOM attributes)")
        pixel_info = _pixel_info(fp, ds, gzipped)
        if pixel_info is None and _transfer_syntax(ds).is_deflated:
            pixel_info = _deflated_pixel_info(fp)
    return ds, pixel_info, gzipped


def _deflated_pixel_info(fp: BinaryIO) -> PixelInfo | None:
    """Deflated data sets: read fully (rare) to learn whether they hold pixel data."""
    fp.seek(0)
    full = pydicom.dcmread(fp, force=True)
    if not any(kw in full for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return None
    return PixelInfo(0, None, _UNDEFINED_LENGTH, 0)  # length checked when decoded


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
    ts = _transfer_syntax(ds)
    little = ts.is_little_endian if ts.is_transfer_syntax else True
    implicit = ts.is_implicit_VR if ts.is_transfer_syntax else False
    end = "<" if little else ">"
    group, elem = struct.unpack(end + "HH", head[:4])
    if (group, elem) not in _PIXEL_TAGS:
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
    return PixelInfo(
        tag_offset,
        None if gzipped else value_offset,
        length,
        size - value_offset,
    )


def _check_pixel_length(ds: Dataset, info: PixelInfo, path: str) -> None:
    if info.length == _UNDEFINED_LENGTH:
        return  # encapsulated: checked when decoded
    rows = int(ds.get("Rows", 0) or 0)
    cols = int(ds.get("Columns", 0) or 0)
    frames = _int(ds.get("NumberOfFrames")) or 1
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
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


def _transfer_syntax(ds: Dataset) -> UID:
    ts = _meta(ds, "TransferSyntaxUID")
    if ts:
        return UID(ts)
    implicit = getattr(ds, "is_implicit_VR", None)
    if implicit is None:
        implicit = ds.original_encoding[0] if hasattr(ds, "original_encoding") else False
    return UID("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")


def _meta(ds: Dataset, keyword: str) -> str:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return ""
    return str(meta.get(keyword, "") or "")


def _sop_name(sop_class: str) -> str:
    if not sop_class:
        return "unknown SOP class"
    name = UID(sop_class).name
    return name if name and name != sop_class else sop_class


# --- value helpers: tolerant of odd VRs and empty values -------------------------------


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or (hasattr(value, "__getitem__") and not isinstance(
            value, (str, bytes)
        )):
            value = value[0]
        return int(float(value))
    except (TypeError, ValueError, IndexError):
        return None


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, (str, bytes, int, float)) and hasattr(value, "__getitem__"):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _str(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _strs(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(p.strip().upper() for p in value.split("\\"))
    try:
        return tuple(str(v).strip().upper() for v in value)
    except TypeError:
        return (str(value).strip().upper(),)


class _Fallback:
    """A data set view that looks in further items for what the first lacks.

    Legacy converted enhanced objects (PS3.3 C.7.6.16.2.25) keep attributes that
    have no functional group in UnassignedSharedConvertedAttributesSequence (and,
    per frame, UnassignedPerFrameConvertedAttributesSequence).
    """

    def __init__(self, *items: Any) -> None:
        self._items = items

    def get(self, keyword: str, default: Any = None) -> Any:
        for item in self._items:
            value = item.get(keyword)
            if value is not None and value != "":
                return value
        return default

    def __contains__(self, keyword: str) -> bool:
        return any(keyword in item for item in self._items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._items[0], name)


def merged_header(ds: Dataset) -> Dataset:
    """``ds`` with top-level gaps filled from UnassignedSharedConvertedAttributesSequence."""
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    unassigned = _first_item(shared, "UnassignedSharedConvertedAttributesSequence")
    if unassigned is None:
        return ds
    merged = Dataset(ds)  # shallow copy: same elements
    if hasattr(ds, "file_meta"):
        merged.file_meta = ds.file_meta
    for element in unassigned:
        if element.tag not in merged:
            merged.add(element)
    return merged


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(keyword)
    if not seq:
        return None
    try:
        item = seq[0]
    except (IndexError, TypeError):
        return None
    return item if isinstance(item, Dataset) else None


def _group(frame_fg: Dataset | None, shared_fg: Dataset | None, keyword: str) -> Dataset | None:
    """A functional group macro item: per-frame first, then shared."""
    return _first_item(frame_fg, keyword) or _first_item(shared_fg, keyword)


def frame_records(
    ds: Dataset, cand: Candidate, info: PixelInfo, gzipped: bool
) -> list[FrameRecord]:
    """Build one record per frame of an image object."""
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    rows = _int(ds.get("Rows"))
    cols = _int(ds.get("Columns"))
    if not rows or not cols:
        raise HeaderError("image without Rows/Columns")
    ts = str(_transfer_syntax(ds))
    native_offset = info.value_offset if info.length != _UNDEFINED_LENGTH else None
    common: dict[str, Any] = dict(
        path=cand.path,
        rel=cand.rel,
        sop_instance_uid=_str(ds.get("SOPInstanceUID")),
        sop_class_uid=_str(ds.get("SOPClassUID")),
        number_of_frames=n_frames,
        series_instance_uid=_str(ds.get("SeriesInstanceUID")) or "(no SeriesInstanceUID)",
        study_instance_uid=_str(ds.get("StudyInstanceUID")),
        modality=_str(ds.get("Modality")),
        series_number=_int(ds.get("SeriesNumber")),
        series_description=_str(ds.get("SeriesDescription")),
        instance_number=_int(ds.get("InstanceNumber")),
        rows=rows,
        columns=cols,
        samples_per_pixel=_int(ds.get("SamplesPerPixel")) or 1,
        photometric=_str(ds.get("PhotometricInterpretation")) or "MONOCHROME2",
        bits_allocated=_int(ds.get("BitsAllocated")) or 16,
        bits_stored=_int(ds.get("BitsStored")) or _int(ds.get("BitsAllocated")) or 16,
        pixel_representation=_int(ds.get("PixelRepresentation")) or 0,
        transfer_syntax=ts,
        pixel_offset=native_offset,
        gzipped=gzipped,
        gantry_tilt=_float(ds.get("GantryDetectorTilt")),
    )
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    unassigned = _first_item(shared, "UnassignedSharedConvertedAttributesSequence")
    if unassigned is not None:  # legacy converted: attributes may live only in there
        ds = _Fallback(ds, unassigned)  # type: ignore[assignment]
        for key, keyword in (("series_description", "SeriesDescription"),
                             ("modality", "Modality"), ("study_instance_uid", "StudyInstanceUID")):
            common[key] = common[key] or _str(ds.get(keyword))
        common["series_number"] = common["series_number"] or _int(ds.get("SeriesNumber"))
    if n_frames == 1 and per_frame is None and shared is None:
        fields = _single_frame_fields(ds)
        if str(ds.get("Manufacturer", "")).upper().startswith("PHILIPS"):
            fields["philips_scale_slope"] = _philips_ss(ds, None)
        if "MOSAIC" in fields["image_type"]:
            return _mosaic_records(ds, common, fields)
        return [FrameRecord(frame=1, **common, **fields)]
    records = []
    philips = str(ds.get("Manufacturer", "")).upper().startswith("PHILIPS")
    for index in range(n_frames):
        frame_fg = per_frame[index] if per_frame is not None and index < len(per_frame) else None
        own = _first_item(frame_fg, "UnassignedPerFrameConvertedAttributesSequence")
        frame_ds: Any = ds if own is None else _Fallback(own, ds)
        fields = _multi_frame_fields(frame_ds, shared, frame_fg)
        if own is not None and _int(own.get("InstanceNumber")) is not None:
            fields["instance_number_override"] = _int(own.get("InstanceNumber"))
        if philips:
            fields["philips_scale_slope"] = _philips_ss(ds, frame_fg)
        number = fields.pop("instance_number_override", None)
        frame_common = common if number is None else {**common, "instance_number": number}
        records.append(FrameRecord(frame=index + 1, **frame_common, **fields))
    return records


def _philips_ss(ds: Dataset, frame_fg: Dataset | None) -> float | None:
    from dicomvol.vendor_scaling import philips_scaling

    triple = philips_scaling(ds, frame_fg)
    return None if triple is None else triple[2]


def _mosaic_records(
    ds: Dataset, common: dict[str, Any], fields: dict[str, Any]
) -> list[FrameRecord]:
    """One record per slice of a Siemens MOSAIC, placed at the tile's own position."""
    from dicomvol.mosaic import mosaic_info

    info = mosaic_info(ds)  # HeaderError names what is missing
    common = {**common, "rows": info.tile_rows, "columns": info.tile_columns,
              "pixel_offset": None}
    return [
        FrameRecord(frame=1, **common, **{**fields, "position": position},
                    tile=t + 1, tiles_per_side=info.tiles_per_side)
        for t, position in enumerate(info.positions)
    ]


def _single_frame_fields(ds: Dataset) -> dict[str, Any]:
    spacing = _floats(ds.get("PixelSpacing"), 2)
    return dict(
        image_type=_strs(ds.get("ImageType")),
        orientation=_orientation(ds.get("ImageOrientationPatient")),
        position=_position(ds.get("ImagePositionPatient")),
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        slice_thickness=_float(ds.get("SliceThickness")),
        spacing_between_slices=_float(ds.get("SpacingBetweenSlices")),
        rescale_slope=_float(ds.get("RescaleSlope")) or 1.0,
        rescale_intercept=_float(ds.get("RescaleIntercept")) or 0.0,
        echo_number=_int(ds.get("EchoNumbers")),
        echo_time=_float(ds.get("EchoTime")),
        acquisition_number=_int(ds.get("AcquisitionNumber")),
        temporal_position=_int(ds.get("TemporalPositionIdentifier")),
        diffusion_b=_float(ds.get("DiffusionBValue")),
        diffusion_direction=_position(ds.get("DiffusionGradientOrientation")),
        trigger_time=_float(ds.get("TriggerTime")),
        acquisition_time=_str(ds.get("AcquisitionTime")) or None,
    )


def _multi_frame_fields(
    ds: Dataset, shared: Dataset | None, frame_fg: Dataset | None
) -> dict[str, Any]:
    plane_pos = _group(frame_fg, shared, "PlanePositionSequence")
    plane_ori = _group(frame_fg, shared, "PlaneOrientationSequence")
    measures = _group(frame_fg, shared, "PixelMeasuresSequence")
    transform = _group(frame_fg, shared, "PixelValueTransformationSequence")
    content = _first_item(frame_fg, "FrameContentSequence")
    echo = _group(frame_fg, shared, "MREchoSequence")
    frame_type = (
        _group(frame_fg, shared, "MRImageFrameTypeSequence")
        or _group(frame_fg, shared, "CTImageFrameTypeSequence")
        or _group(frame_fg, shared, "PETFrameTypeSequence")
    )
    spacing = _floats(measures.get("PixelSpacing") if measures else ds.get("PixelSpacing"), 2)
    ipp = plane_pos.get("ImagePositionPatient") if plane_pos else ds.get("ImagePositionPatient")
    iop = (
        plane_ori.get("ImageOrientationPatient")
        if plane_ori
        else ds.get("ImageOrientationPatient")
    )
    src = transform if transform is not None else ds
    image_type = _strs(frame_type.get("FrameType")) if frame_type else ()
    temporal = _int(content.get("TemporalPositionIndex")) if content else None
    stack_id = _str(content.get("StackID")) if content else ""
    diffusion = _group(frame_fg, shared, "MRDiffusionSequence")
    b_value = _float(diffusion.get("DiffusionBValue")) if diffusion else None
    direction = None
    if diffusion is not None:
        grad = _first_item(diffusion, "DiffusionGradientDirectionSequence")
        if grad is not None:
            direction = _position(grad.get("DiffusionGradientOrientation"))
    acq_dt = _str(content.get("FrameAcquisitionDateTime")) if content else ""
    return dict(
        image_type=image_type or _strs(ds.get("ImageType")),
        orientation=_orientation(iop),
        position=_position(ipp),
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        slice_thickness=_float(measures.get("SliceThickness")) if measures else None,
        spacing_between_slices=(
            _float(measures.get("SpacingBetweenSlices")) if measures else None
        ),
        rescale_slope=_float(src.get("RescaleSlope")) or 1.0,
        rescale_intercept=_float(src.get("RescaleIntercept")) or 0.0,
        echo_number=None,
        echo_time=_float(echo.get("EffectiveEchoTime")) if echo else None,
        acquisition_number=_int(ds.get("AcquisitionNumber")),
        temporal_position=temporal,
        trigger_time=None,
        acquisition_time=acq_dt[8:] if len(acq_dt) > 8 else None,
        stack_id=stack_id or None,
        diffusion_b=b_value,
        diffusion_direction=direction,
    )


def _orientation(value: Any) -> Orientation | None:
    vals = _floats(value, 6)
    if vals is None:
        return None
    return (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5])


def _position(value: Any) -> Vec3 | None:
    vals = _floats(value, 3)
    if vals is None:
        return None
    return (vals[0], vals[1], vals[2])


def dataset_of(path: str) -> Dataset:
    """Read a full data set (with pixel data), transparently decompressing gzip."""
    fp, _ = open_dicom(path)
    with fp:
        try:
            return pydicom.dcmread(fp, force=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, struct.error) as exc:
            raise PixelDataError(f"cannot read: {exc}") from exc


def header_of(path: str) -> Dataset:
    """Read a header (no pixel data), transparently decompressing gzip."""
    ds, _, _ = read_header(path)
    return ds


def unique(values: Sequence[Any]) -> list[Any]:
    """Distinct values in first-seen order."""
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen

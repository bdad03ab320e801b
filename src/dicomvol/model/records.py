"""Pixel-free records of what indexing found: frames, ignored files, errors, skips.

Small, frozen and picklable: they cross process boundaries (pool and Dask
workers) and make up the run report's accounting.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from typing import Any

from dicomvol._typing import Orientation, Vec3
from dicomvol.constants import NATIVE_LE


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """What grouping, sorting and assembling need to know about one frame.

    ``frame`` is 1-based (1 for single-frame objects). Geometry fields are
    ``None`` when the source lacks them; such frames never join a volume.
    """

    path: str
    rel: str
    sop_instance_uid: str
    sop_class_uid: str
    frame: int
    number_of_frames: int
    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    image_type: tuple[str, ...]
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    orientation: Orientation | None
    position: Vec3 | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    rescale_slope: float
    rescale_intercept: float
    echo_number: int | None
    echo_time: float | None
    acquisition_number: int | None
    temporal_position: int | None
    trigger_time: float | None
    acquisition_time: str | None
    gantry_tilt: float | None = None
    #: Siemens MOSAIC: 1-based tile of this slice and the tile grid (tiles per side).
    tile: int | None = None
    tiles_per_side: int | None = None
    #: Philips private ScaleSlope (2005,xx0E), for floating-point values.
    philips_scale_slope: float | None = None
    #: Enhanced multi-frame: StackID, diffusion b-value (s/mm2) and gradient (LPS).
    stack_id: str | None = None
    diffusion_b: float | None = None
    diffusion_direction: Vec3 | None = None
    #: Where the diffusion encoding was read (standard, CSA, vendor private), and the kind of
    #: a derived diffusion image ("trace", "ADC", "FA", "eADC"; None for an acquired one).
    diffusion_source: str | None = None
    diffusion_derived: str | None = None
    #: Byte offset of the PixelData value for native (uncompressed) files, else None.
    pixel_offset: int | None = None
    #: "float32" / "float64" for FloatPixelData / DoubleFloatPixelData (parametric maps),
    #: "" for integer PixelData.
    pixel_format: str = ""
    gzipped: bool = False
    #: FrameOfReferenceUID ("" when absent).
    frame_of_reference_uid: str = ""
    #: AcquisitionDate and AcquisitionDateTime (DA/DT text), for PET SUV timing.
    acquisition_date: str | None = None
    acquisition_datetime: str | None = None
    #: Header values an output name template asks for: (keyword, text) pairs.
    names: tuple[tuple[str, str], ...] = ()
    #: ContentTime (TM text), a last temporal attribute for 4D order.
    content_time: str | None = None
    #: "MAGNITUDE", "PHASE", "REAL" or "IMAGINARY" (ImageType, ComplexImageComponent or GE
    #: private (0043,xx2F)), None when the header does not say.
    complex_part: str | None = None
    #: Why a vendor layout (Siemens mosaic, UIH grid) of this image cannot be read, naming
    #: the missing attribute; such a frame is skipped with this reason.
    layout_error: str | None = None
    #: What the header reader had to assume for this frame (e.g. a GE gradient direction
    #: without InPlanePhaseEncodingDirection); the planner warns once per series.
    assumed: str | None = None
    #: The vendor's own volume index of a classic image: Philips (2005,1596)
    #: MRImageDiffVolumeNumber, the acquisition order of diffusion volumes.
    vendor_volume: int | None = None
    #: Enhanced multi-frame: the frame's DimensionIndexValues (0020,9157) without the
    #: spatial dimensions (StackID, InStackPositionNumber, ImagePositionPatient), in
    #: DimensionIndexSequence order, whose first item is the slowest varying (PS3.3 7.5.2).
    dimension_index: tuple[int, ...] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the class and its field values.

        Records cross process boundaries by the ten thousand, so this is worth some care:
        field values by ``attrgetter`` (several times faster than the dataclass default).
        The values a series' records repeat (UIDs, modality, image type, orientation...)
        are one object per value where records are built (:func:`shared_fields`), so the
        pickle stores each once per message; the receiver shares them across messages
        (:func:`_rebuilt`): half the bytes and memory of a record.
        """
        return (_rebuilt, (_frame_values(self),))

    @property
    def uncompressed(self) -> bool:
        """Whether the pixel data lies in the file uncompressed: native little endian
        (implicit or explicit VR), its offset known, the file not gzipped."""
        return (self.pixel_offset is not None and not self.gzipped
                and self.transfer_syntax in NATIVE_LE)

    @property
    def key(self) -> tuple[str, int, int]:
        """The slice's identity: (SOPInstanceUID, frame number, mosaic tile or 0)."""
        return (self.sop_instance_uid, self.frame, self.tile or 0)

    def source(self) -> dict[str, Any]:
        """The contract's ``SourceInstances`` entry (with ``Tile`` for mosaic slices)."""
        entry: dict[str, Any] = {"SOPInstanceUID": self.sop_instance_uid, "Frame": self.frame,
                                 "File": self.rel}
        if self.tile is not None:
            entry["Tile"] = self.tile
        return entry


#: A FrameRecord's field names in declaration order (the order of its positional arguments).
RECORD_FIELDS = tuple(f.name for f in fields(FrameRecord))
_FIELD_SET = frozenset(RECORD_FIELDS)
_DEFAULTS = {f.name: f.default for f in fields(FrameRecord) if f.default is not MISSING}


def record_values(values: dict[str, Any]) -> list[Any]:
    """A FrameRecord's positional arguments from its field values by name (defaults filled
    in): records that differ in a few fields are built from one such list, copied
    (:func:`make_record`, without a keyword dict per record). TypeError for a name
    that is no field or a field without a default that is missing, as ``FrameRecord``."""
    unknown = values.keys() - _FIELD_SET
    if unknown:
        raise TypeError(f"not FrameRecord fields: {sorted(unknown)}")
    try:
        return [values[name] if name in values else _DEFAULTS[name] for name in RECORD_FIELDS]
    except KeyError as exc:
        raise TypeError(f"FrameRecord field {exc.args[0]} missing") from None


#: FrameRecord's slots, mutable: :func:`_build` stores every field with one plain
#: attribute assignment where the frozen class's ``__init__`` calls ``object.__setattr__``
#: per field (about seven times slower, and records are built and unpickled by the ten
#: thousand).
_Builder = type("_Builder", (), {"__slots__": FrameRecord.__slots__})
_BUILDER_FITS = _Builder.__slots__ == tuple(RECORD_FIELDS)  # type: ignore[attr-defined]
_namespace: dict[str, Any] = {"_new": _Builder.__new__, "_Builder": _Builder,
                              "_set": object.__setattr__, "_FrameRecord": FrameRecord}
exec(  # one function: unpack the values into the slots, then become a FrameRecord
    "def _build(values):\n"
    "    record = _new(_Builder)\n"
    f"    {', '.join('record.' + name for name in RECORD_FIELDS)}, = values\n"
    "    _set(record, '__class__', _FrameRecord)\n"
    "    return record\n", _namespace)
_build = _namespace["_build"]


def make_record(values: Sequence[Any]) -> FrameRecord:
    """``FrameRecord(*values)``, built at a seventh of the cost (no defaults, no checks:
    exactly one value per field, as :func:`record_values` gives them).

    The record is filled as a ``_Builder`` (FrameRecord's very slots, so the same
    layout) whose class is then set to FrameRecord: the result is a FrameRecord in every
    respect (frozen, equal and hashing as one built by ``__init__``, pickled as one).
    """
    if _BUILDER_FITS:
        return _build(values)  # type: ignore[no-any-return]
    return FrameRecord(*values)  # pragma: no cover - a Python whose slots differ


#: A FrameRecord's field values in declaration order (its ``__init__`` takes them so).
_frame_values = attrgetter(*RECORD_FIELDS)
#: Fields whose values the records of a series repeat, held as one object per distinct
#: value in each process: text (or tuples of text) by equality, and the float tuples of
#: :data:`_FLOAT_FIELDS` only when bit-identical (keyed by their bytes: 0.0 == -0.0 and
#: 1 == 1.0 == True, but such values must stay apart).
_TEXT_FIELDS = frozenset({
    "sop_class_uid", "series_instance_uid", "study_instance_uid", "modality",
    "series_description", "image_type", "photometric", "transfer_syntax",
    "frame_of_reference_uid", "acquisition_date", "names"})
_FLOAT_FIELDS = frozenset({"orientation", "pixel_spacing"})
#: Field name -> whether its value is a float tuple, for the shared fields.
_SHARED_NAMES = {name: name in _FLOAT_FIELDS for name in _TEXT_FIELDS | _FLOAT_FIELDS}
#: (field index, float tuple) of the shared fields, in declaration order.
_SHARED_AT = tuple((i, _SHARED_NAMES[f.name]) for i, f in enumerate(fields(FrameRecord))
                   if f.name in _SHARED_NAMES)
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 1 << 16


def _table() -> dict[Any, Any]:
    """The process's table of shared values (bounded: cleared when full)."""
    if len(_SHARED) > _SHARED_MAX:
        _SHARED.clear()
    return _SHARED


def _shared_floats(value: Any, shared: dict[Any, Any]) -> Any:
    """One object per bit-identical tuple of floats (keyed by its bytes: 0.0 and -0.0
    stay apart); any other value as it is."""
    if type(value) is not tuple or not all(type(v) is float for v in value):
        return value
    return shared.setdefault(struct.pack(f"<{len(value)}d", *value), value)


def _rebuilt(values: tuple[Any, ...]) -> FrameRecord:
    """A pickled record in the receiving process, its repeated values shared with the
    records received before (from other messages too: the planning process holds every
    record of a run)."""
    shared, out = _table(), list(values)
    for i, floats in _SHARED_AT:
        value = out[i]
        out[i] = _shared_floats(value, shared) if floats else shared.setdefault(value, value)
    return make_record(out)


def shared_fields(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (record fields by name) with the values a series repeats shared as
    :func:`_rebuilt` shares them: records built in this process hold one object per
    distinct UID, modality, image type, orientation... (about 1 KiB less per record)."""
    shared = _table()
    for name in _SHARED_NAMES.keys() & values.keys():
        value = values[name]
        values[name] = (_shared_floats(value, shared) if _SHARED_NAMES[name]
                        else shared.setdefault(value, value))
    return values


@dataclass(frozen=True, slots=True)
class IgnoredFile:
    """A file that holds no image: not DICOM, DICOMDIR, or a non-image object."""

    path: str
    rel: str
    reason: str
    sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be read, with what is wrong."""

    path: str
    rel: str
    error: str


@dataclass(frozen=True, slots=True)
class SkippedFrame:
    """An input image frame (or whole instance, frame None) that is in no output.

    ``n_frames`` is the number of input frames the entry stands for (the instance's
    frames for frame None), so that counts are of frames, not entries; it is not part
    of the contract's JSON entry.
    """

    sop_instance_uid: str
    frame: int | None
    path: str
    rel: str
    reason: str
    n_frames: int = 1

    @classmethod
    def of(cls, frame: FrameRecord, reason: str) -> SkippedFrame:
        """The entry for one frame of the input."""
        return cls(frame.sop_instance_uid, frame.frame, frame.path, frame.rel, reason)

    def to_json(self) -> dict[str, Any]:
        """The contract's report entry."""
        return {"SOPInstanceUID": self.sop_instance_uid, "Frame": self.frame,
                "File": self.rel, "Reason": self.reason}

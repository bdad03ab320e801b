"""Frame records from a header: one per frame, incl. enhanced functional groups and mosaics.

``ds`` is a pydicom ``Dataset`` or a :class:`~dicomvol.dicom.lean.LeanHeader`
(the same small ``get``/``in`` surface), so both readers build records with
the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from dicomvol._typing import Vec3
from dicomvol.dicom.complex import complex_part
from dicomvol.dicom.diffusion import assumed_phase_encoding, is_isotropic, read_diffusion
from dicomvol.dicom.dwikind import derived_kind
from dicomvol.dicom.fgroups import Memo, as_items
from dicomvol.dicom.framegroups import (
    CONTENT_FIELDS,
    dimensions,
    frame_content,
    group_fields,
    orientation_of,
    position_of,
    required_number,
)
from dicomvol.dicom.framememo import Bound, FrameMemo
from dicomvol.dicom.frametable import FrameLayout, FrameTable
from dicomvol.dicom.header import (
    UNDEFINED_LENGTH,
    Fallback,
    PixelInfo,
    instance_uid,
    transfer_syntax,
)
from dicomvol.dicom.mosaic import mosaic_info
from dicomvol.dicom.nm import is_nm_reconstruction, nm_geometry
from dicomvol.dicom.philips import philips_scaling, philips_volume_number
from dicomvol.dicom.uih import is_uih_grid, uih_grid_info
from dicomvol.dicom.values import (
    first_item,
    to_float,
    to_floats,
    to_int,
    to_str,
    to_strs,
    vendor,
)
from dicomvol.errors import HeaderError
from dicomvol.inputs.discover import Candidate
from dicomvol.model.geometry import along_normal
from dicomvol.model.records import (
    RECORD_FIELDS,
    FrameRecord,
    make_record,
    record_values,
    shared_fields,
)

if TYPE_CHECKING:  # pragma: no cover - pydicom only where a file needs it (leanimports)
    from pydicom.dataset import Dataset

#: RT Dose Storage.
RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"


def frame_records(
    ds: Dataset, cand: Candidate, info: PixelInfo, gzipped: bool,
    names: tuple[str, ...] = (), per_frame_items: Sequence[Any] | None = None,
) -> list[FrameRecord]:
    """Build one record per frame of an image object.

    ``names`` are header keywords whose values the records carry as text (for
    output name templates), so that naming never reads a header again.
    ``per_frame_items`` are the PerFrameFunctionalGroupsSequence items when the
    caller read them apart from ``ds`` (:mod:`dicomvol.dicom.fgroups`).
    """
    common = _common_fields(ds, cand, info, gzipped, names)
    n_frames = int(common["number_of_frames"])
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = (ds.get("PerFrameFunctionalGroupsSequence") if per_frame_items is None
                 else per_frame_items)
    unassigned = first_item(shared, "UnassignedSharedConvertedAttributesSequence")
    if unassigned is not None:  # legacy converted: attributes may live only in there
        ds = Fallback(ds, unassigned)  # type: ignore[assignment]
        for key, keyword in (("series_description", "SeriesDescription"),
                             ("modality", "Modality"), ("study_instance_uid", "StudyInstanceUID")):
            common[key] = common[key] or to_str(ds.get(keyword))
        common["series_number"] = common["series_number"] or to_int(ds.get("SeriesNumber"))
    if n_frames == 1 and per_frame is None and shared is None:
        fields = shared_fields(_single_frame_fields(ds))
        if fields["position"] is None and is_nm_reconstruction(ds):  # in the detector item
            fields.update(_nm_frames(ds, 1)(0))
        if common["modality"] == "MR":
            fields.update(diffusion_fields(ds, None, fields["image_type"]))
        if vendor(ds) == "Philips":
            fields["philips_scale_slope"] = _philips_ss(ds, None)
            fields["vendor_volume"] = philips_volume_number(ds)
        if "MOSAIC" in fields["image_type"]:
            return _mosaic_records(ds, common, fields)
        if is_uih_grid(ds):
            return _mosaic_records(ds, common, fields, uih=True)
        return [FrameRecord(frame=1, **common, **fields)]
    dose = dose_positions(ds) if per_frame is None and shared is None else None
    nm_fields = (_nm_frames(ds, n_frames) if per_frame is None and shared is None
                 and is_nm_reconstruction(ds) else None)
    shared, memo = as_items(shared), Memo(ds)  # looked up for every frame: once from pydicom
    dims = dimensions(ds)
    records = []
    philips = vendor(ds) == "Philips"
    groups = FrameMemo()  # lean items: each distinct functional-group input computed once
    mr = common["modality"] == "MR"
    group_of = groups.bind(_frame_group, memo, shared, ds, mr, philips)
    table_groups, contents = _table_groups(per_frame, group_of, n_frames, nm_fields, dose,
                                           dims)
    templates: dict[int, tuple[Any, list[Any]]] = {}  # per distinct group result
    for index in range(n_frames):
        table_content = contents[index] if contents else None
        table_group = table_groups[index] if table_content is not None else None
        if table_content is not None and table_group is not None:  # no item read
            group, content, number = table_group, table_content, None
        else:
            frame_fg = (per_frame[index] if per_frame is not None and index < len(per_frame)
                        else None)
            own = first_item(frame_fg, "UnassignedPerFrameConvertedAttributesSequence")
            frame_ds: Any = memo if own is None else Fallback(own, ds)
            group = (group_of(frame_fg) if own is None
                     else _frame_group(frame_ds, frame_fg, shared, ds, mr, philips))
            content = frame_content(frame_ds, shared, frame_fg, dims)
            number = to_int(own.get("InstanceNumber")) if own is not None else None
        if nm_fields is None and dose is None and number is None:  # the common case
            held = templates.get(id(group))
            if held is None:  # positional values with the per-frame slots still to fill
                if len(templates) >= _MAX_TEMPLATES:  # groups not memoised (pydicom items)
                    templates.clear()
                held = templates[id(group)] = (group, record_values(
                    {**common, **group, "frame": 0, **dict(zip(CONTENT_FIELDS, content,
                                                               strict=True))}))
            values = held[1].copy()
            values[_FRAME_AT] = index + 1
            for at, value in zip(_CONTENT_AT, content, strict=True):
                values[at] = value
            records.append(make_record(values))
            continue
        fields = {**group, **dict(zip(CONTENT_FIELDS, content, strict=True))}
        if nm_fields is not None:  # NM reconstruction: slices from the frame vectors
            fields.update(nm_fields(index))
        if dose is not None:  # RT dose: one IPP, frames along GridFrameOffsetVector
            fields["position"] = dose[index] if index < len(dose) else None
            fields["rescale_slope"] = to_float(ds.get("DoseGridScaling")) or 1.0
            fields["rescale_intercept"] = 0.0
        frame_common = common if number is None else {**common, "instance_number": number}
        records.append(FrameRecord(frame=index + 1, **frame_common, **fields))
    for record in records[:1] if records[0].rescale_slope == records[-1].rescale_slope else records:
        _check_rescale(record)
    return records


def _table_groups(per_frame: Any, group_of: Bound, n_frames: int, nm_fields: Any, dose: Any,
                  dims: tuple[int, tuple[int, ...]] | None
                  ) -> tuple[list[dict[str, Any] | None], list[tuple[Any, ...] | None]]:
    """For per-frame items read as a :class:`~dicomvol.dicom.frametable.FrameTable`: each
    frame's repeating fields and per-frame fields (None: read its item); ([], []) to
    read every item (items not read as a table, a frame count that differs).

    The repeating fields of a frame are those of an earlier frame of its layout whose
    item's bytes are equal where the fields read (the values of the memo's read pattern,
    found by their place in the layout); otherwise its item is read and the fields
    computed (through the memo)."""
    if (type(per_frame) is not FrameTable or len(per_frame) != n_frames or nm_fields is not None
            or dose is not None):
        return [], []
    # per layout: (reads, getter of the bytes they read, results by those bytes)
    known: dict[int, list[tuple[tuple[Any, ...], Any, dict[Any, dict[str, Any]]]]] = {}
    fields: list[dict[str, Any] | None] = []
    item_of = per_frame.item
    for index, layout in enumerate(per_frame.layouts):
        item = item_of(index)  # (None where the frame has no layout)
        if layout is None or item is None:
            fields.append(None)
            continue
        entries = known.setdefault(id(layout), [])  # (the layouts live as long as this)
        found = None
        for at, (_, read_of, results) in enumerate(entries):
            found = results.get(read_of(item))
            if found is not None:
                if at:  # the pattern last matched is tried first
                    entries[0], entries[at] = entries[at], entries[0]
                break
        if found is None:
            found, reads = group_of.reading(per_frame[index])
            if reads is not None:
                entry = next((e for e in entries if e[0] == reads), None)
                if entry is None:
                    entry = (reads, _reader(layout, reads), {})
                    entries.append(entry)
                entry[2][entry[1](item)] = found
        fields.append(found)
    return fields, per_frame.contents(dims)


def _reader(layout: FrameLayout, reads: tuple[Any, ...]) -> Any:
    """Item bytes -> the bytes of the leaf values ``reads`` reads (what else it reads, the
    structure, is the layout's own)."""
    spans = [layout.leaves[r] for r in reads if r in layout.leaves]
    return itemgetter(*(slice(a, b) for a, b in spans), slice(0, 0))


def _common_fields(ds: Dataset, cand: Candidate, info: PixelInfo, gzipped: bool,
                   names: tuple[str, ...]) -> dict[str, Any]:
    """The record fields every frame of an object shares (HeaderError for a broken module)."""
    raw_frames = ds.get("NumberOfFrames")
    n_frames = to_int(raw_frames)
    if n_frames is None and raw_frames is not None and str(raw_frames).strip():
        raise HeaderError(f"NumberOfFrames {str(raw_frames)!r} is not a number")
    n_frames = n_frames or 1
    rows = to_int(ds.get("Rows"))
    cols = to_int(ds.get("Columns"))
    if not rows or not cols:
        raise HeaderError("image without Rows/Columns")
    ts = str(transfer_syntax(ds))
    native_offset = info.value_offset if info.length != UNDEFINED_LENGTH else None
    pixel_format = {(0x7FE0, 0x0008): "float32", (0x7FE0, 0x0009): "float64"}.get(info.tag, "")
    _check_pixel_module(ds, pixel_format)
    common: dict[str, Any] = dict(
        path=cand.path,
        rel=cand.rel,
        sop_instance_uid=instance_uid(ds),
        sop_class_uid=to_str(ds.get("SOPClassUID")),
        number_of_frames=n_frames,
        series_instance_uid=to_str(ds.get("SeriesInstanceUID")) or "(no SeriesInstanceUID)",
        study_instance_uid=to_str(ds.get("StudyInstanceUID")),
        modality=to_str(ds.get("Modality")),
        series_number=to_int(ds.get("SeriesNumber")),
        series_description=to_str(ds.get("SeriesDescription")),
        instance_number=to_int(ds.get("InstanceNumber")),
        rows=rows,
        columns=cols,
        samples_per_pixel=to_int(ds.get("SamplesPerPixel")) or 1,
        photometric=to_str(ds.get("PhotometricInterpretation")) or "MONOCHROME2",
        bits_allocated=to_int(ds.get("BitsAllocated")) or 16,
        bits_stored=to_int(ds.get("BitsStored")) or to_int(ds.get("BitsAllocated")) or 16,
        pixel_representation=to_int(ds.get("PixelRepresentation")) or 0,
        transfer_syntax=ts,
        pixel_offset=native_offset,
        pixel_format=pixel_format,
        gzipped=gzipped,
        gantry_tilt=to_float(ds.get("GantryDetectorTilt")),
        frame_of_reference_uid=to_str(ds.get("FrameOfReferenceUID")),
        acquisition_date=to_str(ds.get("AcquisitionDate")) or None,
        acquisition_datetime=to_str(ds.get("AcquisitionDateTime")) or None,
        names=tuple((name, name_text(ds.get(name))) for name in names),
    )
    return shared_fields(common)


#: PhotometricInterpretation values of PS3.3 C.7.6.3.1.2 (and retired ones still seen).
PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL",
               "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "HSV",
               "ARGB", "CMYK", "XYB"}


def _check_pixel_module(ds: Any, pixel_format: str) -> None:
    """HeaderError for image pixel attributes that are present but invalid, or missing where
    a default would change the values (BitsAllocated, PixelRepresentation of integer data).

    A missing SamplesPerPixel, PhotometricInterpretation or BitsStored keeps its
    default (1, MONOCHROME2, BitsAllocated): old files omit them and the guess is safe.
    """
    integer = pixel_format == ""
    bits = to_int(ds.get("BitsAllocated"))
    if bits is None and (integer or ds.get("BitsAllocated") is not None):
        raise HeaderError("BitsAllocated (0028,0100) missing or not a number")
    if bits is not None and not (bits == 1 or (bits % 8 == 0 and 8 <= bits <= 64)):
        raise HeaderError(f"BitsAllocated {bits} is not 1 or a multiple of 8 up to 64")
    stored = to_int(ds.get("BitsStored"))
    if stored is not None and bits is not None and not 1 <= stored <= bits:
        raise HeaderError(f"BitsStored {stored} is not between 1 and BitsAllocated {bits}")
    sign = to_int(ds.get("PixelRepresentation"))
    if integer and sign not in (0, 1):
        shown = "missing" if ds.get("PixelRepresentation") is None else repr(
            str(ds.get("PixelRepresentation"))[:20])
        raise HeaderError(f"PixelRepresentation (0028,0103) {shown}: must be 0 (unsigned) or "
                          "1 (signed)")
    samples = to_int(ds.get("SamplesPerPixel"))
    if ds.get("SamplesPerPixel") is not None and samples not in (1, 3, 4):
        raise HeaderError(f"SamplesPerPixel {str(ds.get('SamplesPerPixel'))[:20]!r} is not 1, 3 "
                          "or 4")
    photometric = to_str(ds.get("PhotometricInterpretation"))
    if photometric and photometric not in PHOTOMETRIC:
        raise HeaderError(f"PhotometricInterpretation {photometric[:30]!r} is not a DICOM "
                          "photometric interpretation")


def _check_rescale(record: FrameRecord) -> None:
    """Raise HeaderError for a rescale that is no finite number (values would be garbage)."""
    for name, value in (("RescaleSlope", record.rescale_slope),
                        ("RescaleIntercept", record.rescale_intercept)):
        if not math.isfinite(value):
            raise HeaderError(f"{name} {value} is not a finite number (frame {record.frame})")


def diffusion_fields(ds: Any, frame_fg: Any, image_type: tuple[str, ...]) -> dict[str, Any]:
    """The diffusion fields of an MR frame's record, from every source ``read_diffusion`` knows.

    Empty when the header holds no diffusion encoding and the image type names no
    derived diffusion image; an unreadable vendor header leaves the standard
    fields (logged by the caller's job when it reads the table).
    """
    try:
        found = read_diffusion(ds, frame_fg)
    except HeaderError:
        found = None
    diffusion = None if found is None else found[0]
    kind = derived_kind(image_type, diffusion, vendor(ds),
                        diffusion is not None and is_isotropic(ds, frame_fg))
    if found is None:
        return {} if kind is None else {"diffusion_derived": kind}
    (b, direction), source = found
    return {"diffusion_b": b, "diffusion_direction": direction, "diffusion_source": source,
            "diffusion_derived": kind,
            "assumed": assumed_phase_encoding(ds, frame_fg, source, direction)}


def dose_positions(ds: Any) -> list[Vec3] | None:
    """ImagePositionPatient of each frame of a multi-frame RT Dose (PS3.3 C.8.8.3.2).

    GridFrameOffsetVector gives each frame's offset along the slice normal,
    either relative to ImagePositionPatient (first offset 0) or as the
    absolute coordinate along the normal (first offset = IPP's, axial only);
    both put frame 0 at IPP and frame k at ``IPP + (offset_k - offset_0) * normal``.
    None when the object is not a multi-frame dose grid.
    """
    offsets = ds.get("GridFrameOffsetVector")
    if offsets is None or to_str(ds.get("SOPClassUID")) != RTDOSE_SOP_CLASS:
        return None
    ipp = position_of(ds.get("ImagePositionPatient"))
    iop = orientation_of(ds.get("ImageOrientationPatient"))
    try:
        values = [float(v) for v in offsets]
    except (TypeError, ValueError):
        values = [float(v) for v in str(offsets).split("\\")]
    if ipp is None or iop is None or not values:
        return None
    return along_normal(ipp, iop, [o - values[0] for o in values])


def _nm_frames(ds: Any, n_frames: int) -> Callable[[int], dict[str, Any]]:
    """The record fields of each frame of an NM reconstruction (:mod:`dicomvol.dicom.nm`):
    position, orientation and gate, or the layout error that skips the file."""
    try:
        geometry = nm_geometry(ds, n_frames)
    except HeaderError as exc:
        error = {"layout_error": f"NM reconstruction: {exc}"}
        return lambda index: error
    common = {"orientation": geometry.orientation,
              "spacing_between_slices": abs(geometry.spacing)}

    def fields(index: int) -> dict[str, Any]:
        out = {**common, "position": geometry.positions[index]}
        if geometry.gates is not None:
            out["temporal_position"] = geometry.gates[index]
        return out

    return fields


def _philips_ss(ds: Dataset, frame_fg: Dataset | None) -> float | None:
    triple = philips_scaling(ds, frame_fg)
    return None if triple is None else triple[2]


def _mosaic_records(
    ds: Dataset, common: dict[str, Any], fields: dict[str, Any], uih: bool = False,
) -> list[FrameRecord]:
    """One record per slice of a Siemens MOSAIC (or a UIH grid), placed at the tile's own
    position; one record with ``layout_error`` (skipped by the planner with that reason)
    when the layout cannot be read."""
    try:
        info = uih_grid_info(ds) if uih else mosaic_info(ds)  # HeaderError names what is missing
    except HeaderError as exc:
        kind = "UIH grid image" if uih else "Siemens mosaic"
        why = str(exc) if str(exc).startswith(kind) else f"{kind}: {exc}"
        return [FrameRecord(frame=1, **common, **fields, layout_error=why)]
    if fields.get("orientation") is None and info.orientation is not None:
        fields = {**fields, "orientation": info.orientation}  # UIH: from the grid's items
    common = {**common, "rows": info.tile_rows, "columns": info.tile_columns,
              "pixel_offset": None}
    return [
        FrameRecord(frame=1, **common, **{**fields, "position": position},
                    tile=t + 1, tiles_per_side=info.tiles_per_side)
        for t, position in enumerate(info.positions)
    ]


def _single_frame_fields(ds: Dataset) -> dict[str, Any]:
    spacing = to_floats(ds.get("PixelSpacing"), 2)
    return dict(
        image_type=to_strs(ds.get("ImageType")),
        orientation=orientation_of(ds.get("ImageOrientationPatient")),
        position=position_of(ds.get("ImagePositionPatient")),
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        slice_thickness=to_float(ds.get("SliceThickness")),
        spacing_between_slices=to_float(ds.get("SpacingBetweenSlices")),
        rescale_slope=required_number(ds, "RescaleSlope", 1.0),
        rescale_intercept=required_number(ds, "RescaleIntercept", 0.0),
        echo_number=to_int(ds.get("EchoNumbers")),
        echo_time=to_float(ds.get("EchoTime")),
        acquisition_number=to_int(ds.get("AcquisitionNumber")),
        temporal_position=to_int(ds.get("TemporalPositionIdentifier")),
        diffusion_b=to_float(ds.get("DiffusionBValue")),
        diffusion_direction=position_of(ds.get("DiffusionGradientOrientation")),
        trigger_time=to_float(ds.get("TriggerTime")),
        acquisition_time=to_str(ds.get("AcquisitionTime")) or None,
        content_time=to_str(ds.get("ContentTime")) or None,
        complex_part=complex_part(ds, to_strs(ds.get("ImageType"))),
    )


#: Record templates kept per file: one per distinct repeating group (a few hundred in a
#: large file), but items the frame memo does not memoise (pydicom's) give a new group
#: for every frame, so the table is emptied when full (it holds each group it is keyed by,
#: so no key is the identity of a group freed meanwhile).
_MAX_TEMPLATES = 4096
#: Where the frame number and the per-frame fields (:data:`CONTENT_FIELDS`) go among a
#: record's positional values.
_FRAME_AT = RECORD_FIELDS.index("frame")
_CONTENT_AT = tuple(RECORD_FIELDS.index(name) for name in CONTENT_FIELDS)


def _frame_group(ds: Any, frame_fg: Any, shared: Any, top: Any, mr: bool, philips: bool
                 ) -> dict[str, Any]:
    """The fields of a frame that repeat from frame to frame: the functional groups,
    Philips scaling and diffusion (``top``: the data set itself, for the vendor readers)."""
    fields = group_fields(ds, frame_fg, shared)
    if philips:
        fields["philips_scale_slope"] = _philips_ss(top, frame_fg)
    if mr:
        fields.update(diffusion_fields(top, frame_fg, fields["image_type"]))
    return fields


def name_text(value: Any) -> str:
    """A header value as the text an output name template uses (several values joined by -)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1").strip("\x00 ")
    if isinstance(value, str):
        return value
    try:
        return "-".join(str(v) for v in value)
    except TypeError:
        return str(value)

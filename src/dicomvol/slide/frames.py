"""One SM instance's header and frame index, without reading any frame's payload.

The encapsulated item headers are walked once (8 bytes per item); frames are
cut from the fragments with the extended offset table, the basic offset
table, one fragment per frame, or (no table, several fragments per frame)
the codestream start markers. Tile positions come from TILED_FULL order
(column, row, focal plane, optical path; across a concatenation) or, for
TILED_SPARSE, from each frame's PlanePositionSlide.
"""

from __future__ import annotations

import math
import struct
import warnings
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from dicomvol.dicom.header import PARSE_ERRORS, UNDEFINED_LENGTH, pixel_info_at
from dicomvol.dicom.values import (
    first_item,
    functional_group,
    to_float,
    to_floats,
    to_int,
    to_str,
    to_strs,
)
from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.model.slide import SLIDE_FLAVOURS, ColorDecision, OpticalPath, SlideInstance
from dicomvol.slide.colour import decide

#: Whole Slide Microscopy Image Storage.
SM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
_ITEM = (0xFFFE, 0xE000)
_END = (0xFFFE, 0xE0DD)
_STARTS = (b"\xff\xd8", b"\xff\x4f", b"\x00\x00\x00\x0c")  # JPEG/JPEG-LS, J2K, JP2


@dataclass(frozen=True, eq=False)
class ParsedInstance:
    """An SM instance as the slide index needs it.

    ``claims[n] = (optical path, focal plane µm, tile row, tile column)`` of frame n.
    """

    instance: SlideInstance
    series_instance_uid: str
    study_instance_uid: str
    pyramid_uid: str
    frame_of_reference_uid: str
    modality: str
    series_number: int | None
    series_description: str
    flavour: str
    width: int
    height: int
    spacing_um: tuple[float, float]
    optical_paths: tuple[OpticalPath, ...]
    claims: tuple[tuple[str, float, int, int], ...]
    icc_profile: bytes | None
    concatenation_uid: str
    has_optical_path_sequence: bool


def read_instance(path: str, rel: str, colour_mode: str = "auto") -> ParsedInstance:
    """Read one SM file's header and index its frames.

    Raises
    ------
    HeaderError
        Attributes a tiled image needs are missing or inconsistent.
    PixelDataError
        The encapsulated items do not cut into NumberOfFrames frames.
    """
    with fs.open_input(path) as fp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
        except PARSE_ERRORS as exc:
            raise HeaderError(f"{rel}: header cannot be read: {exc}") from exc
        info = pixel_info_at(fp, ds)
        if info is None or info.value_offset is None:
            raise PixelDataError(f"{rel}: no PixelData", path)
        n_frames = to_int(ds.get("NumberOfFrames")) or 1
        encapsulated = info.length == UNDEFINED_LENGTH
        if encapsulated:
            frames = _encapsulated(fp, ds, info.value_offset, info.value_offset + info.remaining,
                                   n_frames, rel)
        else:
            frames = _native_frames(ds, info.value_offset, info.length, n_frames, rel)
        first = b""
        if encapsulated and frames:
            fp.seek(frames[0][0][0])
            first = fp.read(min(frames[0][0][1], 1 << 16))
    return _parsed(ds, path, rel, frames, encapsulated, first, colour_mode)


def _parsed(ds: Dataset, path: str, rel: str, frames: tuple[tuple[tuple[int, int], ...], ...],
            encapsulated: bool, first: bytes, colour_mode: str) -> ParsedInstance:
    rows, cols = to_int(ds.get("Rows")), to_int(ds.get("Columns"))
    if not rows or not cols:
        raise HeaderError(f"{rel}: SM image without Rows/Columns")
    width = to_int(ds.get("TotalPixelMatrixColumns")) or cols
    height = to_int(ds.get("TotalPixelMatrixRows")) or rows
    ts = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2.1"))
    spp = to_int(ds.get("SamplesPerPixel")) or 1
    photometric = to_str(ds.get("PhotometricInterpretation")) or "MONOCHROME2"
    colour: ColorDecision = decide(first, ts, photometric, spp, colour_mode)
    image_type = to_strs(ds.get("ImageType"))
    flavour = image_type[2] if len(image_type) > 2 and image_type[2] in SLIDE_FLAVOURS else (
        "VOLUME")
    organisation = to_str(ds.get("DimensionOrganizationType")) or (
        "TILED_SPARSE" if "PerFrameFunctionalGroupsSequence" in ds else "TILED_FULL")
    inst = SlideInstance(
        path=path, rel=rel, sop_instance_uid=to_str(ds.get("SOPInstanceUID")),
        transfer_syntax=ts, n_frames=len(frames), tile_rows=rows, tile_columns=cols,
        samples_per_pixel=spp, bits_allocated=to_int(ds.get("BitsAllocated")) or 8,
        bits_stored=to_int(ds.get("BitsStored")) or to_int(ds.get("BitsAllocated")) or 8,
        pixel_representation=to_int(ds.get("PixelRepresentation")) or 0,
        photometric=photometric, planar_configuration=to_int(ds.get("PlanarConfiguration")) or 0,
        encapsulated=encapsulated, frames=frames, colour=colour, organisation=organisation)
    paths = _optical_paths(ds)
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    measures = functional_group(None, shared, "PixelMeasuresSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if measures is None and per_frame:
        measures = first_item(per_frame[0], "PixelMeasuresSequence")
    spacing = to_floats(measures.get("PixelSpacing") if measures is not None else None, 2)
    if spacing is None:
        raise HeaderError(f"{rel}: SM image without PixelSpacing (PixelMeasuresSequence)")
    if organisation == "TILED_SPARSE":
        claims = _sparse_claims(ds, shared, per_frame, paths, rows, cols, len(frames), rel)
    else:
        claims = _full_claims(ds, shared, paths, rows, cols, width, height, len(frames))
    icc = _icc(ds)
    return ParsedInstance(
        instance=inst, series_instance_uid=to_str(ds.get("SeriesInstanceUID")),
        study_instance_uid=to_str(ds.get("StudyInstanceUID")),
        pyramid_uid=to_str(ds.get("PyramidUID")),
        frame_of_reference_uid=to_str(ds.get("FrameOfReferenceUID")),
        modality=to_str(ds.get("Modality")) or "SM",
        series_number=to_int(ds.get("SeriesNumber")),
        series_description=to_str(ds.get("SeriesDescription")), flavour=flavour,
        width=width, height=height,
        spacing_um=(spacing[1] * 1000.0, spacing[0] * 1000.0),  # (column step, row step)
        optical_paths=paths, claims=claims, icc_profile=icc,
        concatenation_uid=to_str(ds.get("ConcatenationUID")),
        has_optical_path_sequence="OpticalPathSequence" in ds)


def _optical_paths(ds: Dataset) -> tuple[OpticalPath, ...]:
    seq = ds.get("OpticalPathSequence") or []
    paths = tuple(OpticalPath(to_str(item.get("OpticalPathIdentifier")) or str(n + 1),
                              to_str(item.get("OpticalPathDescription")))
                  for n, item in enumerate(seq))
    return paths or (OpticalPath("1", ""),)


def _icc(ds: Dataset) -> bytes | None:
    for item in ds.get("OpticalPathSequence") or []:
        if "ICCProfile" in item:
            return bytes(item.ICCProfile)
    return bytes(ds.ICCProfile) if "ICCProfile" in ds else None


def _path_of(frame_fg: Any, shared: Any, paths: tuple[OpticalPath, ...]) -> str:
    item = functional_group(frame_fg, shared, "OpticalPathIdentificationSequence")
    ident = to_str(item.get("OpticalPathIdentifier")) if item is not None else ""
    return ident or paths[0].identifier


def _full_claims(ds: Dataset, shared: Any, paths: tuple[OpticalPath, ...], rows: int,
                 cols: int, width: int, height: int,
                 n_frames: int) -> tuple[tuple[str, float, int, int], ...]:
    tx, ty = math.ceil(width / cols), math.ceil(height / rows)
    nz = to_int(ds.get("TotalPixelMatrixFocalPlanes")) or 1
    offset = to_int(ds.get("ConcatenationFrameOffsetNumber")) or 0
    n_paths = to_int(ds.get("NumberOfOpticalPaths")) or len(paths)
    ids = [_path_of(None, shared, paths)] if n_paths == 1 else [p.identifier for p in paths]
    position = functional_group(None, shared, "PlanePositionSlideSequence")
    z0 = (to_float(position.get("ZOffsetInSlideCoordinateSystem"))
          if position is not None else None)
    measures = functional_group(None, shared, "PixelMeasuresSequence")
    dz = to_float(measures.get("SpacingBetweenSlices")) if measures is not None else None
    claims = []
    for n in range(n_frames):
        g = offset + n
        col, row = g % tx, (g // tx) % ty
        z, p = (g // (tx * ty)) % nz, g // (tx * ty * nz)
        z_um = (z0 or 0.0) + z * (dz * 1000.0 if dz else 1.0)
        claims.append((ids[min(p, len(ids) - 1)], z_um, row, col))
    return tuple(claims)


def _sparse_claims(ds: Dataset, shared: Any, per_frame: Any, paths: tuple[OpticalPath, ...],
                   rows: int, cols: int, n_frames: int,
                   rel: str) -> tuple[tuple[str, float, int, int], ...]:
    if per_frame is None or len(per_frame) < n_frames:
        raise HeaderError(f"{rel}: TILED_SPARSE image without a PerFrameFunctionalGroupsSequence "
                          "item per frame")
    claims = []
    for n in range(n_frames):
        fg = per_frame[n]
        pos = functional_group(fg, shared, "PlanePositionSlideSequence")
        if pos is None:
            raise HeaderError(f"{rel}: frame {n + 1} has no PlanePositionSlideSequence")
        c = to_int(pos.get("ColumnPositionInTotalImagePixelMatrix"))
        r = to_int(pos.get("RowPositionInTotalImagePixelMatrix"))
        if c is None or r is None:
            raise HeaderError(f"{rel}: frame {n + 1} has no column/row position")
        if (c - 1) % cols or (r - 1) % rows:
            raise HeaderError(f"{rel}: frame {n + 1} at column {c}, row {r} is not on the "
                              f"{cols}x{rows} tile grid")
        z = to_float(pos.get("ZOffsetInSlideCoordinateSystem")) or 0.0
        claims.append((_path_of(fg, shared, paths), z, (r - 1) // rows, (c - 1) // cols))
    return tuple(claims)


def _native_frames(ds: Dataset, start: int, length: int, n_frames: int,
                   rel: str) -> tuple[tuple[tuple[int, int], ...], ...]:
    rows, cols = to_int(ds.get("Rows")) or 0, to_int(ds.get("Columns")) or 0
    spp = to_int(ds.get("SamplesPerPixel")) or 1
    size = rows * cols * spp * ((to_int(ds.get("BitsAllocated")) or 8) // 8)
    if size * n_frames > length:
        raise PixelDataError(f"{rel}: PixelData holds {length} bytes, {n_frames} frames need "
                             f"{size * n_frames}")
    return tuple(((start + n * size, size),) for n in range(n_frames))


def _items(fp: BinaryIO, start: int, end: int, rel: str) -> list[tuple[int, int]]:
    """(value offset, length) of every item of an encapsulated PixelData value."""
    items = []
    pos = start
    while pos + 8 <= end:
        fp.seek(pos)
        group, elem, length = struct.unpack("<HHI", fp.read(8))
        if (group, elem) == _END:
            break
        if (group, elem) != _ITEM or pos + 8 + length > end:
            raise PixelDataError(f"{rel}: encapsulated PixelData is corrupt at byte {pos}")
        items.append((pos + 8, length))
        pos += 8 + length
    if not items:
        raise PixelDataError(f"{rel}: encapsulated PixelData has no items")
    return items


def _encapsulated(fp: BinaryIO, ds: Dataset, start: int, end: int, n_frames: int,
                  rel: str) -> tuple[tuple[tuple[int, int], ...], ...]:
    items = _items(fp, start, end, rel)
    bot, fragments = items[0], items[1:]
    if not fragments:
        raise PixelDataError(f"{rel}: encapsulated PixelData has no fragments")
    base = fragments[0][0] - 8  # offsets count from the first fragment's item tag
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offs = np.frombuffer(bytes(ds.ExtendedOffsetTable), "<u8")
        lens = np.frombuffer(bytes(ds.ExtendedOffsetTableLengths), "<u8")
        return tuple(((base + int(o) + 8, int(n)),) for o, n in zip(offs, lens, strict=False))
    if bot[1] >= 4 * n_frames:
        fp.seek(bot[0])
        table = np.frombuffer(fp.read(bot[1]), "<u4")[:n_frames].astype(np.int64) + base
        starts = np.array([f[0] - 8 for f in fragments])
        index = np.searchsorted(starts, table)
        edges = [*index.tolist(), len(fragments)]
        out = tuple(tuple(fragments[edges[i]:edges[i + 1]]) for i in range(n_frames))
    elif len(fragments) == n_frames:
        out = tuple((f,) for f in fragments)
    else:
        heads = []
        for off, _ in fragments:
            fp.seek(off)
            heads.append(fp.read(4))
        begin = [i for i, h in enumerate(heads) if h.startswith(_STARTS)]
        edges = [*begin, len(fragments)]
        out = tuple(tuple(fragments[edges[i]:edges[i + 1]]) for i in range(len(begin)))
    if len(out) != n_frames or any(not f for f in out):
        raise PixelDataError(f"{rel}: {len(fragments)} fragments do not cut into "
                             f"NumberOfFrames {n_frames} frames")
    return out

"""Synthetic whole-slide microscopy (SM) instances with known pixels.

Written with pydicom directly, so that tests can build what real scanners
write and what no library would: TILED_SPARSE frames in any order with
holes, a level split into a concatenation, several optical paths and focal
planes, JPEG frames with JFIF / APP14 / component-ID variants under any
PhotometricInterpretation label, JPEG 2000 with and without the multiple
component transform, offset tables present or absent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

SM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
SYNTAX = {"native": "1.2.840.10008.1.2.1", "jpeg": "1.2.840.10008.1.2.4.50",
          "j2k": "1.2.840.10008.1.2.4.90", "jpegls": "1.2.840.10008.1.2.4.80",
          "rle": "1.2.840.10008.1.2.5"}
#: JPEG colour variants: (how the encoder transforms, which markers stay).
JPEG_VARIANTS = ("jfif", "adobe0", "adobe1", "rgbids", "ids123")


def smooth_image(height: int, width: int, samples: int = 3, seed: int = 0,
                 dtype: str = "uint8") -> np.ndarray:
    """A smooth test pattern (JPEG-friendly) of shape (H, W[, samples])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    top = 255 if dtype == "uint8" else 4095
    chans = []
    for s in range(samples):
        fx, fy, ph = rng.uniform(0.005, 0.03), rng.uniform(0.005, 0.03), rng.uniform(0, 6)
        chans.append((0.5 + 0.45 * np.sin(fx * x + ph) * np.cos(fy * y + s)) * top)
    out = np.stack(chans, axis=-1) if samples > 1 else chans[0]
    result: np.ndarray = np.rint(out).astype(dtype)
    return result


def _strip_segment(data: bytes, marker: int) -> bytes:
    """Remove every segment with ``marker`` (e.g. 0xE0 APP0) before SOS."""
    out = bytearray(data[:2])
    pos = 2
    while pos < len(data):
        m = data[pos + 1]
        if m == 0xDA:
            out += data[pos:]
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if m != marker:
            out += data[pos:pos + 2 + length]
        pos += 2 + length
    return bytes(out)


def _adobe(transform: int) -> bytes:
    body = b"Adobe" + (100).to_bytes(2, "big") + b"\x00\x00\x00\x00" + bytes([transform])
    return b"\xff\xee" + (len(body) + 2).to_bytes(2, "big") + body


def encode_jpeg(tile: np.ndarray, variant: str = "jfif", level: int = 95) -> bytes:
    """JPEG baseline with one of :data:`JPEG_VARIANTS` colour signals.

    "jfif" (YCbCr + APP0), "adobe0" (RGB + APP14 transform 0 + IDs R,G,B),
    "adobe1" (YCbCr + APP14 transform 1, no APP0), "rgbids" (RGB, IDs R,G,B only),
    "ids123" (YCbCr, IDs 1,2,3 only).
    """
    import imagecodecs

    cs = imagecodecs.JPEG8.CS
    if tile.ndim == 2:
        return bytes(imagecodecs.jpeg8_encode(tile, level=level))
    if variant in ("adobe0", "rgbids"):
        data = bytes(imagecodecs.jpeg8_encode(tile, level=level, colorspace=cs.RGB,
                                              outcolorspace=cs.RGB, subsampling="444"))
        data = _strip_segment(_strip_segment(data, 0xE0), 0xEE)
        return data[:2] + _adobe(0) + data[2:] if variant == "adobe0" else data
    data = bytes(imagecodecs.jpeg8_encode(tile, level=level, colorspace=cs.RGB,
                                          outcolorspace=cs.YCbCr))
    if variant == "jfif":
        return data
    data = _strip_segment(data, 0xE0)
    return data[:2] + _adobe(1) + data[2:] if variant == "adobe1" else data


def encode_tile(tile: np.ndarray, codec: str, variant: str = "jfif", mct: bool = True) -> bytes:
    """One frame's bytes for ``codec`` (a key of :data:`SYNTAX`)."""
    import imagecodecs

    if codec == "native":
        return np.ascontiguousarray(tile).astype(tile.dtype.newbyteorder("<")).tobytes()
    if codec == "jpeg":
        return encode_jpeg(tile, variant)
    if codec == "j2k":
        return bytes(imagecodecs.jpeg2k_encode(tile, level=0, codecformat="J2K",
                                               reversible=True, mct=mct))
    if codec == "jpegls":
        return bytes(imagecodecs.jpegls_encode(tile))
    raise ValueError(f"unknown codec {codec}")


@dataclass
class SlideSpec:
    """What to write: one level as one or more instances.

    ``planes[p][z]`` is the full (H, W[, S]) image of optical path p, focal plane z.
    """

    planes: Sequence[Sequence[np.ndarray]]
    tile: tuple[int, int] = (64, 64)  # (rows, columns)
    codec: str = "native"
    variant: str = "jfif"
    mct: bool = True
    photometric: str = ""
    sparse: bool = False
    shuffle: bool = False
    holes: frozenset[tuple[int, int]] = frozenset()  # (tile row, tile column)
    concatenation: int = 1
    offset_table: str = "bot"  # "bot", "none", "eot"
    spacing_mm: float = 0.00025
    flavour: str = "VOLUME"
    series_uid: str = field(default_factory=generate_uid)
    study_uid: str = "1.2.826.0.1.3680043.8.498.1"
    pyramid_uid: str | None = None
    path_names: Sequence[str] = ()
    z_um: Sequence[float] = ()
    seed: int = 0
    icc_profile: bytes | None = None


def _tiles(spec: SlideSpec) -> list[tuple[int, int, int, int, np.ndarray]]:
    """(path, plane, row, col, tile) in TILED_FULL order, edge tiles padded with 0."""
    th, tw = spec.tile
    out = []
    for p, path in enumerate(spec.planes):
        for z, img in enumerate(path):
            h, w = img.shape[:2]
            ty, tx = -(-h // th), -(-w // tw)
            for r in range(ty):
                for c in range(tx):
                    tile = np.zeros((th, tw, *img.shape[2:]), img.dtype)
                    part = img[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
                    tile[:part.shape[0], :part.shape[1]] = part
                    out.append((p, z, r, c, tile))
    return out


def _base(spec: SlideSpec, img: np.ndarray, n_frames: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SM_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, spec.series_uid
    ds.FrameOfReferenceUID = generate_uid()
    if spec.pyramid_uid:
        ds.PyramidUID = spec.pyramid_uid
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SM", 1, 1
    ds.SeriesDescription, ds.PatientID, ds.PatientName = "synthetic slide", "SLIDE1", "Slide^Test"
    ds.ImageType = ["ORIGINAL", "PRIMARY", spec.flavour, "NONE"]
    ds.Rows, ds.Columns = spec.tile
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = img.shape[:2]
    ds.NumberOfFrames = n_frames
    ds.ImagedVolumeWidth = img.shape[1] * spec.spacing_mm  # mm, as wsidicom needs them
    ds.ImagedVolumeHeight = img.shape[0] * spec.spacing_mm
    ds.ImagedVolumeDepth = 0.001
    samples = img.shape[2] if img.ndim == 3 else 1
    ds.SamplesPerPixel = samples
    default = "MONOCHROME2" if samples == 1 else (
        "YBR_FULL_422" if spec.codec == "jpeg" else "YBR_RCT" if spec.codec == "j2k" else "RGB")
    ds.PhotometricInterpretation = spec.photometric or default
    if samples > 1:
        ds.PlanarConfiguration = 0
    bits = img.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.DimensionOrganizationType = "TILED_SPARSE" if spec.sparse else "TILED_FULL"
    ds.TotalPixelMatrixFocalPlanes = len(spec.planes[0])
    ds.NumberOfOpticalPaths = len(spec.planes)
    optical = DicomSequence()
    for p in range(len(spec.planes)):
        item = Dataset()
        item.OpticalPathIdentifier = str(p + 1)
        item.OpticalPathDescription = spec.path_names[p] if p < len(spec.path_names) else ""
        if spec.icc_profile is not None:
            item.ICCProfile = spec.icc_profile
        optical.append(item)
    ds.OpticalPathSequence = optical
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [spec.spacing_mm, spec.spacing_mm]
    measures.SpacingBetweenSlices = 0.001
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    return ds


def write_slide(spec: SlideSpec, folder: Path, name: str = "level") -> list[Path]:
    """Write the level as ``concatenation`` instances; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = [t for t in _tiles(spec) if (t[2], t[3]) not in spec.holes]
    if spec.shuffle:
        random.Random(spec.seed).shuffle(tiles)
    parts = np.array_split(np.arange(len(tiles)), spec.concatenation)
    concat_uid = generate_uid() if spec.concatenation > 1 else None
    concat_source = generate_uid()
    paths = []
    img = spec.planes[0][0]
    for n, idx in enumerate(parts):
        chunk = [tiles[i] for i in idx]
        ds = _base(spec, img, len(chunk))
        if concat_uid:
            ds.ConcatenationUID = concat_uid
            ds.SOPInstanceUIDOfConcatenationSource = concat_source
            ds.ConcatenationFrameOffsetNumber = int(idx[0]) if len(idx) else 0
            ds.InConcatenationNumber = n + 1
            ds.InConcatenationTotalNumber = spec.concatenation
        if spec.sparse:
            ds.PerFrameFunctionalGroupsSequence = DicomSequence(
                [_frame_group(spec, p, z, r, c) for p, z, r, c, _ in chunk])
        frames = [encode_tile(t, spec.codec, spec.variant, spec.mct) for *_, t in chunk]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.UID(SM_SOP_CLASS)
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = pydicom.uid.UID(SYNTAX[spec.codec])
        ds.file_meta = meta
        if spec.codec == "native":
            ds.PixelData = b"".join(frames)
        elif spec.offset_table == "eot":
            ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = (
                encapsulate_extended(frames))
        else:
            ds.PixelData = encapsulate(frames, has_bot=spec.offset_table == "bot")
        if spec.codec != "native":
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
        path = folder / f"{name}-{n}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _frame_group(spec: SlideSpec, p: int, z: int, r: int, c: int) -> Dataset:
    fg = Dataset()
    pos = Dataset()
    pos.ColumnPositionInTotalImagePixelMatrix = c * spec.tile[1] + 1
    pos.RowPositionInTotalImagePixelMatrix = r * spec.tile[0] + 1
    pos.ZOffsetInSlideCoordinateSystem = spec.z_um[z] if z < len(spec.z_um) else float(z)
    pos.XOffsetInSlideCoordinateSystem = 0.0
    pos.YOffsetInSlideCoordinateSystem = 0.0
    fg.PlanePositionSlideSequence = DicomSequence([pos])
    ident = Dataset()
    ident.OpticalPathIdentifier = str(p + 1)
    fg.OpticalPathIdentificationSequence = DicomSequence([ident])
    return fg


def pydicom_level(paths: Sequence[Path]) -> dict[tuple[int, int, int, int], np.ndarray]:
    """An independent decode: pydicom's pixel_array per frame keyed by
    (path id, z offset, tile row, tile column) from the headers (TILED_SPARSE only)."""
    out: dict[tuple[int, int, int, int], np.ndarray] = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        for n, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
            pos = fg.PlanePositionSlideSequence[0]
            key = (int(fg.OpticalPathIdentificationSequence[0].OpticalPathIdentifier),
                   int(pos.ZOffsetInSlideCoordinateSystem),
                   (int(pos.RowPositionInTotalImagePixelMatrix) - 1) // ds.Rows,
                   (int(pos.ColumnPositionInTotalImagePixelMatrix) - 1) // ds.Columns)
            out[key] = arr[n] if ds.NumberOfFrames > 1 else arr
    return out

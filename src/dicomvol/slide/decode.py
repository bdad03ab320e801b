"""One SM frame's bytes -> an array, with the instance's colour decision applied.

imagecodecs does the work: libjpeg-turbo for JPEG (the colour transform set
explicitly, never guessed by the library), OpenJPEG for JPEG 2000 and HTJ2K,
CharLS for JPEG-LS; DICOM RLE is split into its PackBits segments here.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from dicomvol.errors import MissingDecoderError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.model.slide import SlideInstance
from dicomvol.slide.colour import J2K_SYNTAXES, JPEG_SYNTAXES

JPEG_LOSSLESS = {"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}
JPEG_LS = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
RLE = "1.2.840.10008.1.2.5"
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
#: Full-range BT.601 YCbCr -> RGB (DICOM PS3.3 C.7.6.3.1.2, YBR_FULL).
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402],
                        [1.0, -0.344136, -0.714136],
                        [1.0, 1.772, 0.0]])


def _codecs() -> Any:
    try:
        import imagecodecs
    except ImportError as exc:  # pragma: no cover - the slide extra installs it
        raise MissingDecoderError("reading slides needs imagecodecs: "
                                  "pip install 'dicomvol[slide]'") from exc
    return imagecodecs


def frame_bytes(inst: SlideInstance, frame: int) -> bytes:
    """The stored bytes of one frame (0-based), fragments joined."""
    parts = inst.frames[frame]
    if len(parts) == 1:
        offset, length = parts[0]
        return fs.read_bytes(inst.path, offset, length)
    with fs.open_input(inst.path) as fp:
        chunks = []
        for offset, length in parts:
            fp.seek(offset)
            chunks.append(fp.read(length))
    return b"".join(chunks)


def ycbcr_to_rgb(data: np.ndarray) -> np.ndarray:
    """Full-range YCbCr (..., 3) uint8 -> RGB uint8 (rounded, clipped)."""
    ycc = data.astype(np.float32)
    ycc[..., 1:] -= 128.0
    rgb = ycc @ _YCC_TO_RGB.T.astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decode_frame(data: bytes, inst: SlideInstance) -> np.ndarray:
    """Decode one frame.

    Returns
    -------
    ndarray of shape (Rows, Columns) or (Rows, Columns, 3)
        The instance's dtype; RGB order for colour.

    Raises
    ------
    PixelDataError
        The bytes do not decode to a frame of the instance's size (names the file).
    """
    ts = inst.transfer_syntax
    try:
        if ts in NATIVE:
            out = _native(data, inst)
        elif ts in JPEG_SYNTAXES:
            out = _jpeg(data, inst)
        elif ts in J2K_SYNTAXES:
            out = _codecs().jpeg2k_decode(data)
        elif ts in JPEG_LS:
            out = _codecs().jpegls_decode(data)
        elif ts in JPEG_LOSSLESS:
            out = _codecs().ljpeg_decode(data)
        elif ts == RLE:
            out = _rle(data, inst)
        else:
            raise MissingDecoderError(f"{inst.rel}: no slide decoder for transfer syntax {ts}",
                                      inst.path)
    except PixelDataError:
        raise
    except Exception as exc:  # codec errors have their own types; report them by file
        raise PixelDataError(f"{inst.rel}: cannot decode a frame ({ts}): {exc}",
                             inst.path) from exc
    out = np.asarray(out)
    if inst.samples_per_pixel == 1 and out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    if inst.colour.decoded_as == "YCbCr" and ts not in JPEG_SYNTAXES:
        out = ycbcr_to_rgb(out)
    expected = (inst.tile_rows, inst.tile_columns) + (
        (inst.samples_per_pixel,) if inst.samples_per_pixel > 1 else ())
    if out.shape != expected:
        raise PixelDataError(f"{inst.rel}: a frame decodes to {out.shape}, expected {expected}",
                             inst.path)
    return out.astype(inst.dtype, copy=False)


def _native(data: bytes, inst: SlideInstance) -> np.ndarray:
    dt = inst.dtype.newbyteorder(">" if inst.transfer_syntax.endswith(".2.2") else "<")
    spp = inst.samples_per_pixel
    flat = np.frombuffer(data, dtype=dt, count=inst.tile_rows * inst.tile_columns * spp)
    if spp == 1:
        return flat.reshape(inst.tile_rows, inst.tile_columns)
    if inst.planar_configuration == 1:
        return flat.reshape(spp, inst.tile_rows, inst.tile_columns).transpose(1, 2, 0)
    return flat.reshape(inst.tile_rows, inst.tile_columns, spp)


def _jpeg(data: bytes, inst: SlideInstance) -> np.ndarray:
    codecs = _codecs()
    cs = codecs.JPEG8.CS
    if inst.samples_per_pixel == 1:
        return np.asarray(codecs.jpeg8_decode(data))
    source = cs.YCbCr if inst.colour.decoded_as == "YCbCr" else cs.RGB
    return np.asarray(codecs.jpeg8_decode(data, colorspace=source, outcolorspace=cs.RGB))


def _rle(data: bytes, inst: SlideInstance) -> np.ndarray:
    """DICOM RLE (PS3.5 G): a 64-byte header of segment offsets, one PackBits segment per
    byte plane, most significant byte first."""
    codecs = _codecs()
    header = struct.unpack("<16I", data[:64])
    n = header[0]
    offsets = [*header[1:n + 1], len(data)]
    nbytes = inst.dtype.itemsize
    pixels = inst.tile_rows * inst.tile_columns
    spp = inst.samples_per_pixel
    planes = np.zeros((spp, nbytes, pixels), np.uint8)
    for s in range(n):
        seg = np.frombuffer(codecs.packbits_decode(data[offsets[s]:offsets[s + 1]]), np.uint8)
        planes[s // nbytes, s % nbytes, :] = seg[:pixels]
    values = np.zeros((spp, pixels), np.uint64)
    for b in range(nbytes):
        values = (values << np.uint64(8)) | planes[:, b, :].astype(np.uint64)
    cube = values.astype(inst.dtype.newbyteorder("=")).reshape(
        spp, inst.tile_rows, inst.tile_columns)
    return cube[0] if spp == 1 else cube.transpose(1, 2, 0)

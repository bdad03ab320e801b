"""Frames -> pixel arrays: a small native fast path, and pydicom's decoder plugins.

Uncompressed little-endian files (single-frame, and multi-frame in one range) are read
straight from their pixel offset (:func:`read_native`, tested against pydicom); the rest
is decoded by pydicom (pylibjpeg, openjpeg, libjpeg, rle, pyjpegls). When no
installed plugin handles a transfer syntax, pydicom's own decoder registry
names what to install (:class:`~dicomvol.errors.MissingDecoderError`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dicomvol.dicom.header import dataset_of
from dicomvol.errors import MissingDecoderError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.model.records import FrameRecord

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from dicomvol.dicom.cache import JobSources

#: The format name (see :func:`stored_format`) of one RGB voxel, :func:`rgb24`.
RGB24_FORMAT = "rgb24"


@functools.cache
def rgb24() -> np.dtype[Any]:
    """One RGB voxel: NIfTI's RGB24 (datatype 128), the representation nibabel and dcm2niix
    use for colour volumes; a colour frame is a 2D array of these, so stacking, streaming
    and writing treat it like any other voxel type."""
    import numpy as np


    return np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def __getattr__(name: str) -> Any:
    """``RGB24``: the dtype of :func:`rgb24`, made on first use (numpy is imported only
    where pixels are converted, never to read a plain series' bytes)."""
    if name == "RGB24":
        return rgb24()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stored_format(frame: FrameRecord) -> str:
    """The stored pixel values' type as a numpy type string ("u2", "i2", "float32", ...),
    or :data:`RGB24_FORMAT` for colour: the dtype without importing numpy."""
    if frame.pixel_format:
        return frame.pixel_format
    if frame.samples_per_pixel == 3:
        return RGB24_FORMAT
    bits = frame.bits_allocated if frame.bits_allocated in (8, 16, 32) else 16
    signed = frame.pixel_representation == 1
    return f"{'i' if signed else 'u'}{bits // 8}"


def dtype_of(fmt: str) -> np.dtype[Any]:
    """The numpy dtype of a format name of :func:`stored_format`."""
    import numpy as np


    return rgb24() if fmt == RGB24_FORMAT else np.dtype(fmt)


def type_itemsize(fmt: str) -> int:
    """Bytes per value of a format name of :func:`stored_format` ("u2": 2, "float32": 4)."""
    if fmt == RGB24_FORMAT:
        return 3
    digits = "".join(c for c in fmt if c.isdigit())
    return int(digits) // 8 if fmt.startswith(("float", "int", "uint")) else int(digits)


def stored_dtype(frame: FrameRecord) -> np.dtype[Any]:
    """numpy dtype of the stored pixel values of a frame."""
    return dtype_of(stored_format(frame))


def native_ok(frame: FrameRecord) -> bool:
    """True when the frame can be read straight from the file with numpy."""
    return frame.number_of_frames == 1 and _native_layout(frame)


def _native_layout(frame: FrameRecord) -> bool:
    """Whether a frame's stored values lie in its file as they are (uncompressed little
    endian, one sample of 8, 16 or 32 bits, no bits to clear from a signed value)."""
    return (
        frame.uncompressed
        and frame.samples_per_pixel == 1
        and frame.bits_allocated in (8, 16, 32)
        and (frame.bits_stored == frame.bits_allocated or frame.pixel_representation == 0)
    )


#: Reads ``length`` bytes at ``start`` of a file: ``read(path, start, length)``.
RangeRead = Callable[[str, int, int], bytes | memoryview]


def read_native(frame: FrameRecord, sources: JobSources | None = None) -> np.ndarray:
    """The stored values of a native single-frame file, shape (Rows, Columns)."""
    return _stored_values(frame, *_single_range(frame, sources))


def _single_range(frame: FrameRecord, sources: JobSources | None) -> tuple[int, RangeRead]:
    """Where a single-frame file's stored values start, and its read: the range is taken
    from the job's cache (the file's bytes released)."""
    assert frame.pixel_offset is not None
    return frame.pixel_offset, sources.take_range if sources is not None else fs.read_bytes


def _frame_range(frame: FrameRecord, sources: JobSources | None) -> tuple[int, RangeRead]:
    """Where one frame of a native multi-frame file starts (its number checked), and its
    read: at the frame's offset, the file kept for the next frame."""
    assert frame.pixel_offset is not None
    _check_frame_number(frame)
    per_frame = frame.rows * frame.columns * type_itemsize(stored_format(frame))
    return (frame.pixel_offset + (frame.frame - 1) * per_frame,
            sources.read_range if sources is not None else fs.read_bytes)


def _read_stored(frame: FrameRecord, start: int, itemsize: int,
                 read: RangeRead) -> bytes | memoryview:
    """One frame's stored bytes read at ``start`` of its file by ``read(path, start,
    length)``; PixelDataError, naming the file, when they cannot be read or are cut short."""
    count = frame.rows * frame.columns
    nbytes = count * itemsize
    try:
        raw = read(frame.path, start, nbytes)
    except OSError as exc:
        raise PixelDataError(f"{frame.rel}: cannot read pixel data: {exc}", frame.path) from exc
    if len(raw) != nbytes:
        where = f" in frame {frame.frame}" if frame.number_of_frames > 1 else ""
        raise PixelDataError(f"{frame.rel}: file is truncated ({len(raw) // itemsize} "
                             f"of {count} pixels{where})", frame.path)
    return raw


def _stored_values(frame: FrameRecord, start: int,
                   read: RangeRead) -> np.ndarray:
    """One frame's stored values read at ``start`` of its file by ``read(path, start,
    length)``, masked to BitsStored, shape (Rows, Columns)."""
    import numpy as np


    dtype = stored_dtype(frame).newbyteorder("<")
    raw = _read_stored(frame, start, dtype.itemsize, read)
    arr = np.frombuffer(raw, dtype=dtype)
    mask = stored_mask(frame)
    if mask is not None:
        arr = arr & np.array(mask, dtype=arr.dtype)
    return arr.reshape(frame.rows, frame.columns)


def native_bytes(frame: FrameRecord, sources: JobSources | None = None) -> bytes:
    """The stored values of a native integer frame (a single-frame file, or one frame of a
    native multi-frame file) as little-endian bytes in (Rows, Columns) C order, masked to
    BitsStored: ``read_native(frame).tobytes()`` or ``read_native_frame(frame).tobytes()``,
    without numpy (the streaming writer's plain path; tested against both).
    """
    start, read = (_frame_range if frame.number_of_frames > 1 else _single_range)(frame, sources)
    itemsize = type_itemsize(stored_format(frame))
    return _masked(_read_stored(frame, start, itemsize, read), stored_mask(frame), itemsize)


def native_run(first: FrameRecord, count: int, sources: JobSources | None = None
               ) -> bytes | None:
    """``count`` consecutive frames of a native multi-frame file, from ``first`` on, as
    :func:`native_bytes` gives each of them, joined (one read); None when they cannot all
    be read whole (read them one by one: each error then names its frame)."""
    if not 1 <= first.frame <= first.frame + count - 1 <= first.number_of_frames:
        return None
    itemsize = type_itemsize(stored_format(first))
    nbytes = first.rows * first.columns * itemsize * count
    start, read = _frame_range(first, sources)
    try:
        raw = read(first.path, start, nbytes)
    except OSError:
        return None
    return _masked(raw, stored_mask(first), itemsize) if len(raw) == nbytes else None


def _masked(raw: bytes | memoryview, mask: int | None, itemsize: int) -> bytes:
    """Little-endian values of ``itemsize`` bytes with every bit outside ``mask`` cleared."""
    if mask is None:
        return bytes(raw)
    out = bytearray(raw)
    for b in range(itemsize):  # byte b of every value keeps the mask's byte b
        keep = (mask >> (8 * b)) & 0xFF
        if keep != 0xFF:
            out[b::itemsize] = out[b::itemsize].translate(_and_table(keep))
    return bytes(out)


@functools.cache
def _and_table(keep: int) -> bytes:
    """The ``bytes.translate`` table of ``value & keep`` for one byte."""
    return bytes(v & keep for v in range(256))


def native_stack(path: str, first: FrameRecord, sources: JobSources | None) -> np.ndarray:
    """Every frame of a native multi-frame file, shape (NumberOfFrames, Rows, Columns).

    A view of the file's bytes (read-only, no copy); the caller masks values
    above BitsStored (:func:`stored_mask`).
    """
    import numpy as np

    dtype = stored_dtype(first).newbyteorder("<")
    per_frame = first.rows * first.columns * dtype.itemsize
    nbytes = per_frame * first.number_of_frames
    assert first.pixel_offset is not None
    try:
        raw = (sources.take_range(path, first.pixel_offset, nbytes) if sources is not None
               else fs.read_bytes(path, first.pixel_offset, nbytes))
    except OSError as exc:
        raise PixelDataError(f"{first.rel}: cannot read pixel data: {exc}", path) from exc
    if len(raw) != nbytes:
        raise PixelDataError(f"{first.rel}: file is truncated ({len(raw) // per_frame} of "
                             f"{first.number_of_frames} frames)", path)
    return np.frombuffer(raw, dtype=dtype).reshape(first.number_of_frames, first.rows,
                                                   first.columns)


def read_native_frame(frame: FrameRecord, sources: JobSources | None = None) -> np.ndarray:
    """The stored values of one frame of a native multi-frame file, shape (Rows, Columns),
    masked to BitsStored.

    Only that frame's bytes are read (:meth:`JobSources.read_range
    <dicomvol.dicom.cache.JobSources.read_range>`: the cached file, or one open file read
    at offsets), so a job streaming a 5,000-frame file frame by frame holds one frame.
    """
    return _stored_values(frame, *_frame_range(frame, sources))


def _check_frame_number(frame: FrameRecord) -> None:
    if not 1 <= frame.frame <= frame.number_of_frames:
        raise PixelDataError(f"{frame.rel}: frame {frame.frame} not in pixel data of "
                             f"{frame.number_of_frames} frames", frame.path)


def streams_natively(frame: FrameRecord) -> bool:
    """Whether a frame's stored values are read straight from its file's bytes: a native
    single-frame file or a frame of a native multi-frame file (no decoder)."""
    return native_ok(frame) or is_native_multiframe(frame)


def stored_mask(frame: FrameRecord) -> int | None:
    """The mask of the BitsStored low bits when higher bits must be cleared, else None."""
    if frame.pixel_representation == 0 and frame.bits_stored < frame.bits_allocated:
        return (1 << frame.bits_stored) - 1
    return None


def check_frame_numbers(path: str, frames: Sequence[FrameRecord], count: int) -> None:
    """PixelDataError when a frame number is outside a file's ``count`` frames."""
    for frame in frames:
        if not 1 <= frame.frame <= count:
            raise PixelDataError(f"{frame.rel}: frame {frame.frame} not in pixel data of "
                                 f"{count} frames", path)


def is_native_multiframe(first: FrameRecord) -> bool:
    """True when a multi-frame file's frames are read straight from its bytes."""
    return first.number_of_frames > 1 and first.tile is None and _native_layout(first)


def _native_frames(path: str, frames: list[FrameRecord], sources: JobSources | None
                   ) -> list[tuple[FrameRecord, np.ndarray]]:
    """Frames of a native (uncompressed little-endian) multi-frame file, read in one range."""
    import numpy as np

    first = frames[0]
    arr = native_stack(path, first, sources)
    mask = stored_mask(first)
    if mask is not None:
        arr = arr & np.array(mask, dtype=arr.dtype)
    check_frame_numbers(path, frames, first.number_of_frames)
    return [(frame, arr[frame.frame - 1]) for frame in frames]


def decode(path: str, frames: list[FrameRecord],
           sources: JobSources | None = None) -> list[tuple[FrameRecord, np.ndarray]]:
    """Decode the given frames of one file (the file is read and decoded once).

    Returns
    -------
    list of (frame, ndarray of shape (Rows, Columns))

    Raises
    ------
    PixelDataError
        The pixels cannot be read or decoded; the message names the file.
    MissingDecoderError
        No installed plugin decodes the transfer syntax (names what to install).
    """
    import numpy as np

    first = frames[0]
    if len(frames) == 1 and native_ok(first):
        return [(first, read_native(first, sources))]
    if is_native_multiframe(first):
        return _native_frames(path, frames, sources)
    check_decoder(first)
    try:
        ds = sources.take_dataset(path) if sources is not None else dataset_of(path)
        arr = ds.pixel_array
    except PixelDataError as exc:
        raise PixelDataError(f"{first.rel}: {exc}", path) from exc
    except Exception as exc:  # decoder plugins raise many types; name the file and codec
        raise PixelDataError(decode_message(first, exc), path) from exc
    arr = np.asarray(arr)
    if first.samples_per_pixel == 3:
        arr = as_rgb24(arr, first)
    out = []
    for frame in frames:
        if frame.tile is not None and frame.tiles_per_side:
            row, col = divmod(frame.tile - 1, frame.tiles_per_side)
            rows, cols = frame.rows, frame.columns
            out.append((frame, arr[row * rows:(row + 1) * rows, col * cols:(col + 1) * cols]))
        elif first.number_of_frames > 1:
            if arr.ndim < 3 or frame.frame > arr.shape[0]:
                raise PixelDataError(f"{frame.rel}: frame {frame.frame} not in pixel data of "
                                     f"shape {arr.shape}", path)
            out.append((frame, arr[frame.frame - 1]))
        else:
            out.append((frame, arr))
    return out


def as_rgb24(arr: np.ndarray, frame: FrameRecord) -> np.ndarray:
    """(..., Rows, Columns, 3) uint8 from pydicom (RGB) -> (..., Rows, Columns) of RGB24."""
    import numpy as np

    if arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise PixelDataError(f"{frame.rel}: colour pixel data decoded to {arr.shape} "
                             f"{arr.dtype}, expected (..., 3) uint8", frame.path)
    return np.ascontiguousarray(arr).view(rgb24())[..., 0]


def check_decoder(frame: FrameRecord) -> None:
    """Raise MissingDecoderError when pydicom has no usable decoder for the frame's syntax.

    The message comes from pydicom's decoder registry: the plugins that would
    decode the syntax and what each of them requires.
    """
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID

    uid = UID(frame.transfer_syntax)
    if not uid.is_transfer_syntax or not uid.is_compressed:
        return
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise MissingDecoderError(f"{frame.rel}: no pixel data decoder exists for {uid.name} "
                                  f"({uid})", frame.path) from exc
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise MissingDecoderError(f"{frame.rel}: cannot decode {uid.name} pixel data: no "
                                  f"installed decoder plugin; install one of: {needs}",
                                  frame.path)


def decode_message(frame: FrameRecord, exc: Exception) -> str:
    """What went wrong decoding a frame, naming the file and the transfer syntax."""
    from pydicom.uid import UID

    ts = UID(frame.transfer_syntax)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{frame.rel}: cannot decode {ts.name} pixel data: {text}"

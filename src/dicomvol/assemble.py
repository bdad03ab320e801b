"""Assemble a planned volume: decode each frame into one preallocated array.

Memory is one output volume plus one decoded file at a time. Uncompressed
little-endian single-frame files are read straight from their pixel offset
with numpy (``_read_native``), everything else goes through pydicom's decoder
plugins (pylibjpeg, openjpeg, libjpeg, rle, pyjpegls).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dicomvol.errors import PixelDataError
from dicomvol.index import dataset_of
from dicomvol.plan import VolumePlan
from dicomvol.records import FrameRecord
from dicomvol.volume import Volume

log = logging.getLogger(__name__)

_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_INT16 = np.iinfo(np.int16)
#: pydicom's wording when no installed plugin can decode a transfer syntax.
_MISSING_DECODER = re.compile(r"(no (available )?(pixel data )?(decod|handler|plugin)"
                              r"|plugins? .*(not|un)available|missing required depend"
                              r"|unable to decode .* (install|missing))", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PixelMode:
    """How stored values become the output array.

    ``kind`` is "raw" (stored values, with scl_slope/scl_inter), "shift" (stored
    + integer intercept, as int16 modality values) or "float" (float32 modality
    values, for slopes that differ between slices).
    """

    kind: str
    dtype: np.dtype[Any]
    scl_slope: float
    scl_inter: float


def stored_dtype(frame: FrameRecord) -> np.dtype[Any]:
    """numpy dtype of the stored pixel values of a frame."""
    bits = frame.bits_allocated if frame.bits_allocated in (8, 16, 32) else 16
    signed = frame.pixel_representation == 1
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


def pixel_mode(frames: Sequence[FrameRecord]) -> PixelMode:
    """Choose a lossless output representation for the given frames."""
    rescales = {(f.rescale_slope, f.rescale_intercept) for f in frames}
    dtypes = {stored_dtype(f) for f in frames}
    if len(rescales) != 1 or len(dtypes) != 1:
        return PixelMode("float", np.dtype(np.float32), 1.0, 0.0)
    (slope, inter), (dtype,) = next(iter(rescales)), dtypes
    if slope == 1.0 and inter == 0.0:
        return PixelMode("raw", dtype, 1.0, 0.0)
    if slope == 1.0 and float(inter).is_integer() and dtype.itemsize <= 2:
        # Optimistic: int16 HU when the real values fit (checked slice by slice while
        # placing; on overflow the volume is assembled again as raw + scl).
        lo, hi = _stored_range(frames[0])
        if dtype.itemsize == 1 or (_INT16.min <= lo + inter and hi + inter <= _INT16.max) or (
                frames[0].pixel_representation == 1):
            return PixelMode("shift", np.dtype(np.int16), 1.0, 0.0)
    return PixelMode("raw", dtype, float(slope), float(inter))


def _stored_range(frame: FrameRecord) -> tuple[int, int]:
    bits = max(1, min(frame.bits_stored, frame.bits_allocated))
    if frame.pixel_representation == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


class _Overflow(Exception):
    """Stored values outside BitsStored: retry in raw mode."""


def read_volume(plan: VolumePlan, workers: int = 1) -> Volume:
    """Decode a plan's frames into a :class:`Volume`.

    ``workers`` threads decode files in parallel (the codecs release the GIL);
    each thread writes only its own slices of the one preallocated array.

    Raises
    ------
    PixelDataError
        A frame cannot be decoded; the message names the file.
    """
    if plan.resample is not None:
        return _read_resampled(plan, workers)
    mode = pixel_mode(plan.all_frames)
    try:
        data = _assemble(plan, mode, workers)
    except _Overflow:
        first = plan.first
        mode = PixelMode("raw", stored_dtype(first), first.rescale_slope, first.rescale_intercept)
        data = _assemble(plan, mode, workers)
    from dicomvol.sidecar import build_metadata, source_instances

    return Volume(
        data=data,
        affine=plan.affine.copy(),
        scl_slope=mode.scl_slope,
        scl_inter=mode.scl_inter,
        metadata=build_metadata(plan),
        source_instances=tuple(source_instances(plan)),
        plan=plan,
    )


def _read_resampled(plan: VolumePlan, workers: int = 1) -> Volume:
    """Decode the plan's slices as modality values and resample them onto a regular grid."""
    from dicomvol.resample import resample_stack
    from dicomvol.sidecar import build_metadata

    spec = plan.resample
    assert spec is not None
    frames = plan.frames[0]
    first = frames[0]
    assert first.orientation is not None and first.pixel_spacing is not None
    mode = PixelMode("float", np.dtype(np.float32), 1.0, 0.0)
    stack = np.empty((first.columns, first.rows, len(frames)), dtype=np.float32, order="F")
    _fill(stack, plan, mode, workers)
    result = resample_stack(
        [stack[:, :, k].T for k in range(len(frames))],
        [f.position for f in frames if f.position is not None],
        first.orientation, first.pixel_spacing,
        spacing=spec.spacing, order=spec.order, fill=spec.fill,
    )
    metadata = build_metadata(plan)
    metadata.update({"Resampled": True, "ResampleReason": spec.reason,
                     "Resampling": result.detail})
    metadata["GeometryDetail"] = {**plan.detail, "output_shape": list(result.data.shape)}
    used = [frames[k] for k in result.used]
    return Volume(
        data=np.asfortranarray(result.data, dtype=np.float32),
        affine=result.affine,
        metadata=metadata,
        source_instances=tuple(f.source() for f in used),
        plan=plan,
    )


def _by_file(plan: VolumePlan) -> dict[str, list[tuple[FrameRecord, tuple[int, ...]]]]:
    """Frames grouped by file, each with its (k[, t]) index in the output."""
    slots: dict[str, list[tuple[FrameRecord, tuple[int, ...]]]] = {}
    for t, vol in enumerate(plan.frames):
        for k, frame in enumerate(vol):
            index: tuple[int, ...] = (k, t) if len(plan.frames) > 1 else (k,)
            slots.setdefault(frame.path, []).append((frame, index))
    return slots


def _assemble(plan: VolumePlan, mode: PixelMode, workers: int = 1) -> np.ndarray:
    data = np.empty(plan.shape, dtype=mode.dtype, order="F")
    _fill(data, plan, mode, workers)
    return data


def _fill(data: np.ndarray, plan: VolumePlan, mode: PixelMode, workers: int) -> None:
    """Decode file by file (a multi-frame file once), placing frames where the plan says."""
    by_file = list(_by_file(plan).items())

    def one_file(entry: tuple[str, list[tuple[FrameRecord, tuple[int, ...]]]]) -> None:
        path, items = entry
        for frame, pixels in _decode(path, [f for f, _ in items]):
            index = next(ix for f, ix in items if f is frame)
            target = data[(slice(None), slice(None), *index)]  # type: ignore[arg-type]
            _place(target, pixels, frame, mode)

    if workers > 1 and len(by_file) > 1 and not all(_native_ok(f) for f in plan.all_frames):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one_file, by_file))  # re-raises the first error
    else:
        for entry in by_file:
            one_file(entry)


def _place(target: np.ndarray, pixels: np.ndarray, frame: FrameRecord, mode: PixelMode) -> None:
    if pixels.shape != (frame.rows, frame.columns):
        raise PixelDataError(
            f"{frame.rel}: frame {frame.frame} decoded to shape {pixels.shape}, "
            f"expected {(frame.rows, frame.columns)}", frame.path
        )
    if mode.kind == "raw":
        target[...] = pixels.T
    elif mode.kind == "shift":
        shifted = pixels.astype(np.int32) + int(frame.rescale_intercept)
        if shifted.min() < _INT16.min or shifted.max() > _INT16.max:
            raise _Overflow
        target[...] = shifted.T
    else:
        target[...] = (pixels.astype(np.float64) * frame.rescale_slope
                       + frame.rescale_intercept).T


def _decode(path: str, frames: list[FrameRecord]) -> list[tuple[FrameRecord, np.ndarray]]:
    first = frames[0]
    if len(frames) == 1 and _native_ok(first):
        return [(first, _read_native(first))]
    try:
        ds = dataset_of(path)
        arr = ds.pixel_array
    except PixelDataError as exc:
        raise PixelDataError(f"{first.rel}: {exc}", path) from exc
    except Exception as exc:  # decoder plugins raise many types; name the file and codec
        raise PixelDataError(_decode_message(first, exc), path) from exc
    arr = np.asarray(arr)
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


def _decode_message(frame: FrameRecord, exc: Exception) -> str:
    from pydicom.uid import UID

    ts = UID(frame.transfer_syntax)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = ""
    if _MISSING_DECODER.search(text):
        hint = (" (install the decoders: pip install pylibjpeg pylibjpeg-openjpeg "
                "pylibjpeg-libjpeg pylibjpeg-rle pyjpegls)")
    return f"{frame.rel}: cannot decode {ts.name} pixel data: {text}{hint}"


def _native_ok(frame: FrameRecord) -> bool:
    """True when the frame can be read straight from the file with numpy."""
    return (
        frame.pixel_offset is not None
        and not frame.gzipped
        and frame.number_of_frames == 1
        and frame.transfer_syntax in _NATIVE_LE
        and frame.samples_per_pixel == 1
        and frame.bits_allocated in (8, 16, 32)
        and (frame.bits_stored == frame.bits_allocated or frame.pixel_representation == 0)
    )


def _read_native(frame: FrameRecord) -> np.ndarray:
    dtype = stored_dtype(frame).newbyteorder("<")
    count = frame.rows * frame.columns
    assert frame.pixel_offset is not None
    try:
        arr = np.fromfile(frame.path, dtype=dtype, count=count, offset=frame.pixel_offset)
    except OSError as exc:
        raise PixelDataError(f"{frame.rel}: cannot read pixel data: {exc}", frame.path) from exc
    if arr.size != count:
        raise PixelDataError(f"{frame.rel}: file is truncated ({arr.size} of {count} pixels)",
                             frame.path)
    if frame.pixel_representation == 0 and frame.bits_stored < frame.bits_allocated:
        arr &= np.array((1 << frame.bits_stored) - 1, dtype=arr.dtype)
    return arr.reshape(frame.rows, frame.columns)

"""Assemble a planned volume: decode each frame into one preallocated array.

Memory is one output volume plus one decoded file at a time. Assembly returns
data, affine and scaling (:class:`Pixels`); the caller attaches the sidecar
metadata. Placement code (:func:`place`) and the pixel-mode choice are shared
with the streaming NIfTI writer, so both paths write the same values.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomvol.errors import PixelDataError
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.pixels.decode import (
    check_frame_numbers,
    decode,
    dtype_of,
    is_native_multiframe,
    native_ok,
    native_stack,
    stored_dtype,
    stored_format,
    stored_mask,
    type_itemsize,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from dicomvol.dicom.cache import JobSources

log = logging.getLogger(__name__)

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
#: Stored types a "shift" mode turns into int16 modality values.
_SHIFTABLE = frozenset({"u1", "i1", "u2", "i2"})


@dataclass(frozen=True, slots=True)
class PixelMode:
    """How stored values become the output array.

    ``kind`` is "raw" (stored values, with scl_slope/scl_inter), "shift" (stored
    + integer intercept, as int16 modality values) or "float" (float32 modality
    values, for slopes that differ between slices).
    """

    kind: str
    #: The output voxel type as a numpy type string ("i2", "u2", "f4", ...; see
    #: :func:`~dicomvol.pixels.decode.stored_format`): a mode is chosen without numpy.
    type_name: str
    scl_slope: float
    scl_inter: float

    @property
    def dtype(self) -> np.dtype[Any]:
        """The output voxel type as a numpy dtype."""
        return dtype_of(self.type_name)

    @property
    def itemsize(self) -> int:
        """Bytes per output voxel."""
        return type_itemsize(self.type_name)


@dataclass(frozen=True, eq=False)
class Pixels:
    """An assembled volume's array, affine and scaling, and the frames it holds.

    Attributes
    ----------
    data : ndarray of shape (X, Y, Z) or (X, Y, Z, T), Fortran order
    affine : ndarray of shape (4, 4), LPS
    scl_slope, scl_inter : float
        ``data * scl_slope + scl_inter`` are modality values.
    used : tuple of FrameRecord
        The source frames in voxel order (for a resampled volume: the slices
        that contributed, along the normal).
    resampling : dict or None
        The resampler's account (method, spacing, planes copied...), when resampled.
    """

    data: np.ndarray
    affine: np.ndarray
    scl_slope: float = 1.0
    scl_inter: float = 0.0
    used: tuple[FrameRecord, ...] = ()
    resampling: dict[str, Any] | None = None


class Overflow(Exception):
    """Stored values outside BitsStored: retry in raw mode."""


def pixel_mode(frames: Sequence[FrameRecord]) -> PixelMode:
    """Choose a lossless output representation for the given frames."""
    rescales = {(f.rescale_slope, f.rescale_intercept) for f in frames}
    types = {stored_format(f) for f in frames}
    if len(rescales) != 1 or len(types) != 1:
        return PixelMode("float", "f4", 1.0, 0.0)
    (slope, inter), (type_name,) = next(iter(rescales)), types
    if slope == 1.0 and inter == 0.0:
        return PixelMode("raw", type_name, 1.0, 0.0)
    # Optimistic: int16 HU when the real values fit (checked slice by slice while
    # placing; on overflow the volume is assembled again as raw + scl).
    if slope == 1.0 and float(inter).is_integer() and type_name in _SHIFTABLE and (
            type_itemsize(type_name) == 1 or shift_fits(frames[0])
            or frames[0].pixel_representation == 1):
        return PixelMode("shift", "i2", 1.0, 0.0)
    return PixelMode("raw", type_name, float(slope), float(inter))


def shift_fits(frame: FrameRecord) -> bool:
    """Whether every value BitsStored allows, plus the integer RescaleIntercept, fits int16
    (then a "shift" slice can never overflow)."""
    lo, hi = _stored_range(frame)
    inter = frame.rescale_intercept
    return lo + inter >= INT16_MIN and hi + inter <= INT16_MAX


def shift_bytes(stored: bytes, intercept: int, signed: bool = False) -> bytes:
    """16-bit little-endian stored values plus an integer intercept, as int16 bytes: what
    :func:`place` writes in "shift" mode.

    Computed on the whole slice as one Python integer, lane by lane modulo 2**16
    without carries between values (the low 15 bits of each value are added, bit 15
    is the exclusive or of both bits 15 and that sum's carry): a few C-level passes
    over the slice instead of a numpy import in a process that only copies bytes.
    Unsigned values must fit (:func:`shift_fits`); ``signed`` values (int16, and an
    intercept within int16) are checked: a sum outside int16 (both signs equal, the
    sum's differing) raises :class:`Overflow`, as :func:`place` does.
    """
    n = len(stored)
    ones = _lane_ones(n)
    x = int.from_bytes(stored, "little")
    k = (intercept & 0xFFFF) * ones
    low = 0x7FFF * ones
    high = 0x8000 * ones
    r = ((x & low) + (k & low)) ^ ((x ^ k) & high)
    if signed and (x ^ r) & (k ^ r) & high:
        raise Overflow
    return r.to_bytes(n, "little")


@functools.lru_cache(maxsize=8)
def _lane_ones(nbytes: int) -> int:
    """The integer with 1 in every 16-bit lane of ``nbytes`` bytes."""
    return int.from_bytes(b"\x01\x00" * (nbytes // 2), "little")


def raw_mode(frame: FrameRecord) -> PixelMode:
    """The fallback after an Overflow: stored values with the frame's rescale."""
    return PixelMode("raw", stored_format(frame), frame.rescale_slope, frame.rescale_intercept)


def _stored_range(frame: FrameRecord) -> tuple[int, int]:
    bits = max(1, min(frame.bits_stored, frame.bits_allocated))
    if frame.pixel_representation == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def assemble(plan: VolumePlan, workers: int = 1, sources: JobSources | None = None,
             writable: bool = True) -> Pixels:
    """Decode a plan's frames into one array (resampled when the plan says so).

    ``workers`` threads decode files in parallel (the codecs release the GIL);
    each thread writes only its own slices of the one preallocated array.
    ``writable=False`` (a caller that only writes the volume out) allows the
    array to be a read-only view of the file's bytes when a native multi-frame
    file stores the plan's frames in voxel order (no copy at all).

    Raises
    ------
    PixelDataError
        A frame cannot be decoded; the message names the file.
    """
    if plan.resample is not None:
        return _assemble_resampled(plan, workers, sources)
    mode = pixel_mode(plan.all_frames)
    view = None if writable else _stack_view(plan, mode, sources)
    try:
        data = view if view is not None else _assemble(plan, mode, workers, sources)
    except Overflow:
        mode = raw_mode(plan.first)
        data = _assemble(plan, mode, workers, sources)
    return Pixels(data=data, affine=plan.affine.copy(), scl_slope=mode.scl_slope,
                  scl_inter=mode.scl_inter, used=tuple(plan.all_frames))


def _assemble_resampled(plan: VolumePlan, workers: int,
                        sources: JobSources | None) -> Pixels:
    """Decode the plan's slices as modality values and resample them onto a regular grid."""
    import numpy as np

    spec = plan.resample
    assert spec is not None
    frames = plan.frames[0]
    first = frames[0]
    assert first.orientation is not None and first.pixel_spacing is not None
    mode = PixelMode("float", "f4", 1.0, 0.0)
    stack = np.empty((first.columns, first.rows, len(frames)), dtype=np.float32, order="F")
    _fill(stack, plan, mode, workers, sources)
    from dicomvol.pixels.resample import resample_stack  # resampled plans only

    result = resample_stack(
        [stack[:, :, k].T for k in range(len(frames))],
        [f.position for f in frames if f.position is not None],
        first.orientation, first.pixel_spacing,
        spacing=spec.spacing, order=spec.order, fill=spec.fill,
    )
    return Pixels(data=np.asfortranarray(result.data, dtype=np.float32), affine=result.affine,
                  used=tuple(frames[k] for k in result.used), resampling=result.detail)


def _by_file(plan: VolumePlan) -> dict[str, list[tuple[FrameRecord, tuple[int, ...]]]]:
    """Frames grouped by file, each with its (k[, t]) index in the output."""
    slots: dict[str, list[tuple[FrameRecord, tuple[int, ...]]]] = {}
    for t, vol in enumerate(plan.frames):
        for k, frame in enumerate(vol):
            index: tuple[int, ...] = (k, t) if len(plan.frames) > 1 else (k,)
            slots.setdefault(frame.path, []).append((frame, index))
    return slots


def _assemble(plan: VolumePlan, mode: PixelMode, workers: int,
              sources: JobSources | None) -> np.ndarray:
    import numpy as np

    data = np.empty(plan.shape, dtype=mode.dtype, order="F")
    _fill(data, plan, mode, workers, sources)
    return data


def _fill(data: np.ndarray, plan: VolumePlan, mode: PixelMode, workers: int,
          sources: JobSources | None) -> None:
    """Decode file by file (a multi-frame file once), placing frames where the plan says."""
    by_file = list(_by_file(plan).items())
    if len(by_file) == 1 and _take_stack(data, *by_file[0], mode, sources):
        return

    def one_file(entry: tuple[str, list[tuple[FrameRecord, tuple[int, ...]]]]) -> None:
        path, items = entry
        decoded = decode(path, [f for f, _ in items], sources)  # in the order asked for
        for (frame, index), (_, pixels) in zip(items, decoded, strict=True):
            target = data[(slice(None), slice(None), *index)]  # type: ignore[arg-type]
            place(target, pixels, frame, mode)

    if workers > 1 and len(by_file) > 1 and not all(native_ok(f) for f in plan.all_frames):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one_file, by_file))  # re-raises the first error
    else:
        for entry in by_file:
            one_file(entry)


def _stack_slots(shape: tuple[int, ...], items: list[tuple[FrameRecord, tuple[int, ...]]],
                 mode: PixelMode) -> np.ndarray | None:
    """For each voxel-order slot (slice k of volume t at ``t * Z + k``) its stored frame index.

    None unless one native multi-frame file fills every slot once with stored values.
    """
    import numpy as np

    first = items[0][0]
    if mode.kind != "raw" or not is_native_multiframe(first) or len(shape) not in (3, 4) \
            or mode.dtype != stored_dtype(first):
        return None
    n_slices = shape[2]
    slots = np.full(int(np.prod(shape[2:])), -1, dtype=np.intp)
    for frame, index in items:
        if (frame.rows, frame.columns) != (first.rows, first.columns):
            return None
        slots[index[0] + (index[1] * n_slices if len(index) > 1 else 0)] = frame.frame - 1
    if len(items) != len(slots) or (slots < 0).any():
        return None  # a slot twice or never: the general loop says what is wrong
    return slots


def _stack_view(plan: VolumePlan, mode: PixelMode, sources: JobSources | None
                ) -> np.ndarray | None:
    """The volume as a read-only view of one file's stored frames, when they are in voxel
    order (consecutive frames, nothing to mask); else None."""
    import numpy as np

    by_file = _by_file(plan)
    if len(by_file) != 1:
        return None
    path, items = next(iter(by_file.items()))
    slots = _stack_slots(tuple(plan.shape), items, mode)
    first = items[0][0]
    if slots is None or stored_mask(first) is not None \
            or not np.array_equal(slots, np.arange(slots[0], slots[0] + len(slots))):
        return None
    check_frame_numbers(path, [f for f, _ in items], first.number_of_frames)
    stack = native_stack(path, first, sources)[slots[0]:slots[0] + len(slots)]
    view: np.ndarray = stack.reshape(*plan.shape[:1:-1], first.rows, first.columns).T
    return view if view.shape == tuple(plan.shape) else None


def _take_stack(data: np.ndarray, path: str, items: list[tuple[FrameRecord, tuple[int, ...]]],
                mode: PixelMode, sources: JobSources | None) -> bool:
    """Fill ``data`` from one native multi-frame file in one reordering copy; False: not such.

    ``data`` (X, Y, Z[, T]) in Fortran order is, read in C order, the frames
    (Rows, Columns) one after another, slice k of volume t at ``t * Z + k``;
    the stored frames, in the file's order, are gathered into it with one
    ``np.take`` (the per-frame :func:`place` loop, without its copies), when
    every slot is filled once with the stored values ("raw" mode).
    """
    import numpy as np

    first = items[0][0]
    slots = _stack_slots(tuple(data.shape), items, mode) if data.flags.f_contiguous else None
    if slots is None:
        return False
    check_frame_numbers(path, [f for f, _ in items], first.number_of_frames)
    stack = native_stack(path, first, sources)
    frames_view = data.T.reshape(len(slots), first.rows, first.columns)  # a view of data
    np.take(stack, slots, axis=0, out=frames_view, mode="clip")  # numbers checked above
    mask = stored_mask(first)
    if mask is not None:
        np.bitwise_and(frames_view, np.array(mask, dtype=data.dtype), out=frames_view)
    return True


def place(target: np.ndarray, pixels: np.ndarray, frame: FrameRecord, mode: PixelMode) -> None:
    """Write one decoded frame (Rows, Columns) into its (X, Y) slot, converted per ``mode``.

    Raises
    ------
    PixelDataError
        The decoded frame does not have the header's shape.
    Overflow
        ``mode`` is "shift" and a value does not fit int16.
    """
    import numpy as np

    if pixels.shape != (frame.rows, frame.columns):
        raise PixelDataError(
            f"{frame.rel}: frame {frame.frame} decoded to shape {pixels.shape}, "
            f"expected {(frame.rows, frame.columns)}", frame.path
        )
    if mode.kind == "raw":
        target[...] = pixels.T
    elif mode.kind == "shift":
        shifted = pixels.astype(np.int32) + int(frame.rescale_intercept)
        if shifted.min() < INT16_MIN or shifted.max() > INT16_MAX:
            raise Overflow
        target[...] = shifted.T
    else:
        target[...] = (pixels.astype(np.float64) * frame.rescale_slope
                       + frame.rescale_intercept).T

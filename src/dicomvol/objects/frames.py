"""Frames of a derived object on an output grid: where each lands, and reading them one by one.

A frame of a SEG is placed on a target grid (a
:class:`~dicomvol.model.grid.VolumeGeometry`) by mapping three of its pixel
centres (0, 0), (Columns - 1, 0) and (0, Rows - 1) through the grid's
inverse affine. When all three land on voxel centres of one plane (within
:data:`~dicomvol.constants.SEG_SNAP_TOLERANCE_MM` or
:data:`~dicomvol.constants.SEG_SNAP_TOLERANCE_VOXELS` of a voxel, whichever
is larger) with the frame's rows and columns along the grid's j and i axes,
the frame is *snapped*: its pixels are copied into that plane, and the
distance moved (the drift) is recorded. Otherwise the frame is *off plane*
and the caller resamples (nearest neighbour, marked as resampled).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import numpy as np

from dicomvol.constants import SEG_SNAP_TOLERANCE_MM, SEG_SNAP_TOLERANCE_VOXELS
from dicomvol.dicom.cache import JobSources
from dicomvol.errors import PixelDataError
from dicomvol.inputs import fs
from dicomvol.model import geometry
from dicomvol.model.grid import VolumeGeometry
from dicomvol.model.records import FrameRecord
from dicomvol.objects.native import Box, NativeFrames, box_of, native_layout

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a snapped frame's pixel (row 0, column 0) lands: voxel (i0, j0, k)."""

    frame: FrameRecord
    i0: int
    j0: int
    k: int
    drift_mm: float


@dataclass(frozen=True, slots=True)
class OffPlane:
    """A frame that lies on no plane of the grid (or not along its axes)."""

    frame: FrameRecord
    distance_mm: float
    reason: str


def snap_tolerance_voxels(target: VolumeGeometry) -> np.ndarray:
    """Per-axis snap tolerance in voxels, shape (3,): max(mm / step, fraction of a voxel).

    The k step is measured along the plane normal (the distance between planes).
    """
    affine = np.asarray(target.affine, dtype=np.float64)
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    normal /= np.linalg.norm(normal)
    steps = np.array([np.linalg.norm(affine[:3, 0]), np.linalg.norm(affine[:3, 1]),
                      abs(float(affine[:3, 2] @ normal))])
    out: np.ndarray = np.maximum(SEG_SNAP_TOLERANCE_MM / steps, SEG_SNAP_TOLERANCE_VOXELS)
    return out


def frame_corners(frame: FrameRecord) -> np.ndarray:
    """LPS centres of pixels (0, 0), (Columns - 1, 0) and (0, Rows - 1), shape (3, 3)."""
    assert frame.position is not None and frame.orientation is not None
    assert frame.pixel_spacing is not None
    row, col = (np.asarray(v) for v in geometry.directions(frame.orientation))
    ps_row, ps_col = frame.pixel_spacing
    p = np.asarray(frame.position, dtype=np.float64)
    return np.array([p, p + (frame.columns - 1) * ps_col * row,
                     p + (frame.rows - 1) * ps_row * col])


def _corner_steps(frame: FrameRecord) -> np.ndarray:
    """What :func:`frame_corners` adds to the position, shape (3, 3) (the same arithmetic)."""
    assert frame.orientation is not None and frame.pixel_spacing is not None
    row, col = (np.asarray(v) for v in geometry.directions(frame.orientation))
    ps_row, ps_col = frame.pixel_spacing
    return np.array([np.zeros(3), (frame.columns - 1) * ps_col * row,
                     (frame.rows - 1) * ps_row * col])


def place_frame(frame: FrameRecord, target: VolumeGeometry,
                tol: np.ndarray) -> Placement | OffPlane:
    """Snap one frame onto the grid, or say why it cannot be."""
    corners = frame_corners(frame)
    idx = target.map_reference_to_indices(corners)
    offsets = np.array([[0, 0, 0], [frame.columns - 1, 0, 0], [0, frame.rows - 1, 0]],
                       dtype=np.float64)
    snapped = np.rint(idx[0]) + offsets  # the voxels the three pixel centres should be on
    affine = np.asarray(target.affine, dtype=np.float64)
    world = snapped @ affine[:3, :3].T + affine[:3, 3]
    drift = float(np.max(np.linalg.norm(corners - world, axis=1)))
    off = np.abs(idx - snapped)
    if np.all(off <= tol):
        return Placement(frame, int(snapped[0, 0]), int(snapped[0, 1]), int(snapped[0, 2]),
                         drift)
    if np.max(off[1:, :2]) > tol[0] and np.max(off[0, :2]) <= tol[0]:
        reason = "its rows and columns do not run along the grid's axes at its spacing"
    elif np.max(off[:, 2]) > tol[2]:
        normal = np.cross(affine[:3, 0], affine[:3, 1])
        step = abs(float(affine[:3, 2] @ normal)) / float(np.linalg.norm(normal))
        reason = f"it lies {float(np.max(off[:, 2])) * step:.4g} mm from the nearest plane"
    else:
        reason = "its pixels fall between the grid's voxel centres"
    return OffPlane(frame, drift, reason)


def place_frames(frames: Sequence[FrameRecord],
                 target: VolumeGeometry) -> tuple[list[Placement], list[OffPlane]]:
    """Snap every frame that has patient geometry; the rest are off plane.

    Frames of one size, orientation and pixel spacing are placed together
    (:func:`place_frame`'s arithmetic on arrays of frames); a frame that does
    not snap is placed again alone, for the reason.
    """
    tol = snap_tolerance_voxels(target)
    placed: dict[int, Placement] = {}
    off: dict[int, OffPlane] = {}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for n, frame in enumerate(frames):
        if frame.position is None or frame.orientation is None or frame.pixel_spacing is None:
            off[n] = OffPlane(frame, float("inf"), "it has no position in patient space")
            continue
        key = (frame.orientation, frame.pixel_spacing, frame.rows, frame.columns)
        groups.setdefault(key, []).append(n)
    affine = np.asarray(target.affine, dtype=np.float64)
    for members in groups.values():
        first = frames[members[0]]
        base = _corner_steps(first)
        origins = np.array([frames[n].position for n in members], dtype=np.float64)
        corners = origins[:, None, :] + base[None, :, :]  # (N, 3 corners, 3)
        idx = target.map_reference_to_indices(corners.reshape(-1, 3)).reshape(-1, 3, 3)
        offsets = np.array([[0, 0, 0], [first.columns - 1, 0, 0], [0, first.rows - 1, 0]],
                           dtype=np.float64)
        snapped = np.rint(idx[:, :1, :]) + offsets
        world = snapped @ affine[:3, :3].T + affine[:3, 3]
        drift = np.max(np.linalg.norm(corners - world, axis=2), axis=1)
        fits = np.all(np.abs(idx - snapped) <= tol, axis=(1, 2))
        for m, n in enumerate(members):
            if fits[m]:
                i0, j0, k = (int(v) for v in snapped[m, 0])
                placed[n] = Placement(frames[n], i0, j0, k, float(drift[m]))
            else:
                result = place_frame(frames[n], target, tol)
                if isinstance(result, Placement):
                    placed[n] = result
                else:
                    off[n] = result
    return [placed[n] for n in sorted(placed)], [off[n] for n in sorted(off)]


def copy_into(volume: np.ndarray, placement: Placement, values: np.ndarray,
              origin: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """Write a frame's values (h, w) into ``volume`` (X, Y, Z) where they land.

    ``values`` are the frame's pixels from row ``origin[0]`` and column
    ``origin[1]`` (a :class:`~dicomvol.objects.native.Box`, or the whole
    frame). Values are non-negative; each voxel keeps the larger of what it
    holds and the frame's value (so zeros never erase, and a frame written
    twice changes nothing). Returns the number of nonzero pixels that fall
    outside the grid (clipped) and the number of voxels that were zero and are not.
    """
    region, part = clipped_region(volume.shape, placement, values.shape, origin)
    src = values.T[part]
    target = volume[region]
    before = int(np.count_nonzero(target))
    np.maximum(target, src.astype(volume.dtype, copy=False), out=target)  # values are >= 0
    added = int(np.count_nonzero(target)) - before
    if src.shape == values.T.shape:
        return 0, added
    return int(np.count_nonzero(values)) - int(np.count_nonzero(src)), added


def clipped_region(shape: Sequence[int], placement: Placement, frame_shape: Sequence[int],
                   origin: tuple[int, int] = (0, 0)
                   ) -> tuple[tuple[slice, slice, int], tuple[slice, slice]]:
    """The grid region a frame block covers and the part of the block (transposed) inside it.

    The block has shape ``frame_shape`` (h, w) and starts at the frame's
    row ``origin[0]``, column ``origin[1]``.
    """
    rows, cols = frame_shape
    i0, j0 = placement.i0 + origin[1], placement.j0 + origin[0]
    a0, a1 = max(0, i0), min(int(shape[0]), i0 + cols)
    b0, b1 = max(0, j0), min(int(shape[1]), j0 + rows)
    a1, b1 = max(a0, a1), max(b0, b1)
    return ((slice(a0, a1), slice(b0, b1), placement.k),
            (slice(a0 - i0, a1 - i0), slice(b0 - j0, b1 - j0)))


class FrameReader:
    """Decoded frames of one multi-frame file, read a few at a time (never all at once).

    Native little-endian frames are cut straight from the file's bytes
    (:mod:`dicomvol.objects.native`); other transfer syntaxes go through
    pydicom's :func:`~pydicom.pixels.iter_pixels`, which decodes only the
    frames asked for. Gzipped files are decompressed once and kept; objects
    (URLs) are fetched once and kept.
    """

    def __init__(self, frame: FrameRecord, sources: JobSources | None = None) -> None:
        self.path = frame.path
        self.rel = frame.rel
        self._data: bytes | None = None
        if frame.gzipped or fs.is_url(frame.path):  # an object is fetched once, then kept
            self._data = (sources.take_bytes(frame.path) if sources is not None
                          else fs.read_bytes(frame.path))
            import gzip

            if self._data[:2] == b"\x1f\x8b":
                self._data = gzip.decompress(self._data)
        layout = native_layout(frame)
        self.native = None if layout is None else NativeFrames(layout, self._open, self.rel)

    def frames(self, numbers: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, pixels of shape (Rows, Columns)) for the 1-based ``numbers``.

        Raises
        ------
        PixelDataError
            The pixel data cannot be read or decoded; the message names the file.
        """
        wanted = sorted(set(numbers))
        if self.native is not None:
            yield from self._guarded(self.native.frames(wanted))
        else:
            yield from self._guarded(self._decoded(wanted))

    def boxes(self, numbers: Sequence[int]) -> Iterator[tuple[int, Box | None]]:
        """(frame number, bounding box of its nonzero pixels, None when it has none).

        Raises
        ------
        PixelDataError
            The pixel data cannot be read or decoded; the message names the file.
        """
        wanted = sorted(set(numbers))
        if self.native is not None:
            yield from self._guarded(self.native.boxes(wanted))
        else:
            for n, pixels in self.frames(wanted):
                yield n, box_of(pixels)

    def _decoded(self, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        from pydicom.pixels.utils import iter_pixels

        if not wanted:
            return
        with self._open() as fp:
            decoded = iter_pixels(fp, indices=[n - 1 for n in wanted], as_rgb=False)
            try:
                for n, pixels in zip(wanted, decoded, strict=True):
                    yield n, np.asarray(pixels)
            finally:
                getattr(decoded, "close", lambda: None)()  # before the file closes

    def _guarded(self, items: Iterator[_T]) -> Iterator[_T]:
        """``items``, with any decoding failure raised as a PixelDataError naming the file."""
        try:
            yield from items
        except PixelDataError:
            raise
        except Exception as exc:  # decoder plugins raise many types; name the file
            raise PixelDataError(f"{self.rel}: cannot decode frames: {type(exc).__name__}: "
                                 f"{exc}", self.path) from exc

    def _open(self) -> BinaryIO:
        if self._data is not None:
            return io.BytesIO(self._data)
        return fs.open_input(self.path)

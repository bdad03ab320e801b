"""``Slide``: regions of any stored level, in that level's own pixel coordinates.

A region read decodes exactly the frames it touches (each file opened once
per read), crops partial edge tiles, and fills tiles no frame holds
(TILED_SPARSE holes) with an explicit value: white for brightfield RGB, 0
for fluorescence, or the caller's ``fill``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from dicomvol.errors import RegionError, UsageError
from dicomvol.inputs import fs
from dicomvol.model.slide import SlideInfo, SlideLevel
from dicomvol.slide.decode import decode_frame

if TYPE_CHECKING:  # pragma: no cover
    import dask.array

log = logging.getLogger(__name__)


def default_fill(level: SlideLevel) -> float:
    """White (the dtype's maximum) for RGB brightfield, 0 for grey/fluorescence."""
    if level.samples == 3:
        return float(np.iinfo(level.dtype).max) if level.dtype.kind in "ui" else 1.0
    return 0.0


def read_tiles(level: SlideLevel, keys: list[tuple[int, int, int, int]],
               workers: int = 1) -> dict[tuple[int, int, int, int], np.ndarray]:
    """Decode the tiles ``(path, plane, row, column)`` that exist (holes are left out)."""
    wanted: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = defaultdict(list)
    for key in keys:
        inst, frame = (int(v) for v in level.tiles[key])
        if inst >= 0:
            wanted[inst].append((frame, key))
    jobs: list[tuple[bytes, int, tuple[int, int, int, int]]] = []
    for inst_index, frames in wanted.items():
        source = level.instances[inst_index]
        with fs.open_input(source.path) as fp:
            for frame, key in sorted(frames):
                chunks = []
                for offset, length in source.frames[frame]:
                    fp.seek(offset)
                    chunks.append(fp.read(length))
                jobs.append((b"".join(chunks), inst_index, key))

    def one(job: tuple[bytes, int, tuple[int, int, int, int]]) -> np.ndarray:
        return decode_frame(job[0], level.instances[job[1]])

    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            arrays = list(pool.map(one, jobs))
    else:
        arrays = [one(j) for j in jobs]
    return {job[2]: arr for job, arr in zip(jobs, arrays, strict=True)}


def read_level_region(level: SlideLevel, x: int, y: int, w: int, h: int, path: int = 0,
                      z: int = 0, fill: float | None = None, workers: int = 1,
                      icc: bytes | None = None) -> np.ndarray:
    """Read ``[y:y+h, x:x+w]`` of one level (see :meth:`Slide.read_region`); ``icc``: an ICC
    profile applied to give sRGB (RGB uint8 levels only)."""
    if w <= 0 or h <= 0:
        raise RegionError(f"region size {w}x{h} is empty")
    inside = x >= 0 and y >= 0 and x + w <= level.width and y + h <= level.height
    if not inside and fill is None:
        raise RegionError(f"region x={x} y={y} w={w} h={h} leaves the level "
                          f"({level.width}x{level.height}); pass fill= to pad")
    value = default_fill(level) if fill is None else fill
    shape = (h, w) + ((level.samples,) if level.samples > 1 else ())
    out = np.full(shape, value, dtype=level.dtype)
    tw, th = level.tile_width, level.tile_height
    ty, tx = level.grid
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, level.width), min(y + h, level.height)
    if x1 <= x0 or y1 <= y0:
        return out
    keys = [(path, z, r, c) for r in range(y0 // th, min(ty, -(-y1 // th)))
            for c in range(x0 // tw, min(tx, -(-x1 // tw)))]
    for (_, _, r, c), tile in read_tiles(level, keys, workers).items():
        # the part of tile (r, c) inside both the region and the level
        ty0, tx0 = r * th, c * tw
        sy0, sy1 = max(y0, ty0), min(y1, ty0 + th)
        sx0, sx1 = max(x0, tx0), min(x1, tx0 + tw)
        out[sy0 - y:sy1 - y, sx0 - x:sx1 - x] = tile[sy0 - ty0:sy1 - ty0, sx0 - tx0:sx1 - tx0]
    if icc is not None and level.samples == 3 and level.dtype == np.uint8:
        from dicomvol.slide.icc import to_srgb

        out = to_srgb(icc)(out)
    return out


def tile_rows(level: SlideLevel, path: int = 0, z: int = 0, rows: int | None = None,
              workers: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Full-width strips of a level, top to bottom: ``(y, strip)`` with strips of
    ``rows`` pixel rows (default: one tile row). Peak memory: one strip."""
    step = rows or level.tile_height
    for y in range(0, level.height, step):
        h = min(step, level.height - y)
        yield y, read_level_region(level, 0, y, level.width, h, path, z, workers=workers)


class Slide:
    """A whole-slide image: stored levels, optical paths, focal planes and regions.

    Parameters
    ----------
    info : SlideInfo
        From :func:`dicomvol.scan` (``ScanResult.slides``) or :func:`dicomvol.open_slide`.
    workers : int
        Threads decoding the tiles of one read.
    apply_icc : bool
        Convert RGB reads to sRGB with the slide's ICC profile (when it has one).
    """

    def __init__(self, info: SlideInfo, workers: int = 1, apply_icc: bool = False) -> None:
        if not info.levels:
            raise UsageError(f"series {info.series_instance_uid} holds no VOLUME level")
        self.info = info
        self.workers = workers
        self.icc = info.icc_profile if apply_icc else None

    def __repr__(self) -> str:
        base = self.levels[0]
        return (f"Slide({self.info.series_instance_uid!r}, {len(self.levels)} levels, "
                f"base {base.width}x{base.height})")

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """The stored VOLUME levels, largest first (never synthesised)."""
        return self.info.levels

    @property
    def optical_paths(self) -> tuple[str, ...]:
        """Optical path identifiers of the base level (the C axis)."""
        return self.levels[0].optical_paths

    @property
    def focal_planes(self) -> tuple[float, ...]:
        """Focal plane Z offsets (µm) of the base level (the Z axis)."""
        return self.levels[0].focal_planes

    @property
    def icc_profile(self) -> bytes | None:
        """The ICC profile carried by the slide, if any."""
        return self.info.icc_profile

    @property
    def label(self) -> np.ndarray | None:
        """The label image (barcodes, names), or None."""
        return self._whole(self.info.label)

    @property
    def overview(self) -> np.ndarray | None:
        """The overview (macro) image, or None."""
        return self._whole(self.info.overview)

    def _whole(self, level: SlideLevel | None) -> np.ndarray | None:
        if level is None:
            return None
        return read_level_region(level, 0, 0, level.width, level.height, workers=self.workers,
                                 icc=self.icc)

    def _level(self, level: int) -> SlideLevel:
        if not 0 <= level < len(self.levels):
            raise RegionError(f"level {level} does not exist: the slide stores levels "
                              f"0..{len(self.levels) - 1}")
        return self.levels[level]

    @staticmethod
    def _axis(value: int | str | float | None, names: tuple[Any, ...], what: str) -> int:
        if value is None:
            return 0
        if isinstance(value, int) and 0 <= value < len(names):
            return value
        if value in names:
            return names.index(value)
        raise RegionError(f"{what} {value!r} does not exist; the level has {list(names)}")

    def read_region(self, level: int, x: int, y: int, w: int, h: int, *,
                    path: int | str | None = None, z: int | float | None = None,
                    fill: float | None = None) -> np.ndarray:
        """Read a region of one level in that level's own pixel coordinates.

        Parameters
        ----------
        level : int
            Index into :attr:`levels` (0 = base).
        x, y, w, h : int
            Left column, top row, width and height in the level's pixel matrix.
        path : int or str, optional
            Optical path (index or identifier); default the first.
        z : int or float, optional
            Focal plane (index, or Z offset in µm); default the first.
        fill : float, optional
            Pads a region that leaves the level; also fills missing tiles.

        Returns
        -------
        ndarray of shape (h, w) or (h, w, 3)

        Raises
        ------
        RegionError
            The region leaves the level and ``fill`` is None, or the level,
            path or plane does not exist.
        """
        lv = self._level(level)
        p = self._axis(path, lv.optical_paths, "optical path")
        zi = self._axis(z, lv.focal_planes, "focal plane")
        return read_level_region(lv, x, y, w, h, p, zi, fill, self.workers, self.icc)

    def read_level(self, level: int, **kwargs: Any) -> np.ndarray:
        """A whole level: ``read_region(level, 0, 0, width, height)``."""
        lv = self._level(level)
        return self.read_region(level, 0, 0, lv.width, lv.height, **kwargs)

    def thumbnail(self, max_size: int = 512) -> np.ndarray:
        """The whole slide with its longer side at most ``max_size`` pixels.

        Reads the smallest stored level at least that large (or the largest
        level that is smaller) and subsamples it by whole pixels (no synthesis
        of a level: the result is labelled nothing but a thumbnail).
        """
        fits = [n for n, lv in enumerate(self.levels) if max(lv.width, lv.height) >= max_size]
        n = fits[-1] if fits else 0
        data = self.read_level(n)
        step = max(1, -(-max(data.shape[:2]) // max_size))
        return np.ascontiguousarray(data[::step, ::step])

    def to_dask(self, level: int, *, path: int | str | None = None,
                z: int | float | None = None) -> dask.array.Array:
        """The level as a dask array with one chunk per frame (tile).

        Returns
        -------
        dask.array.Array of shape (H, W) or (H, W, 3)
        """
        import dask.array as da

        lv = self._level(level)
        p = self._axis(path, lv.optical_paths, "optical path")
        zi = self._axis(z, lv.focal_planes, "focal plane")
        th, tw = lv.tile_shape
        ty, tx = lv.grid
        rows = tuple(min(th, lv.height - r * th) for r in range(ty))
        cols = tuple(min(tw, lv.width - c * tw) for c in range(tx))
        chunks: tuple[tuple[int, ...], ...] = (rows, cols)
        if lv.samples > 1:
            chunks += ((lv.samples,),)

        def block(block_info: Any = None) -> np.ndarray:
            loc = block_info[None]["array-location"]
            (y0, y1), (x0, x1) = loc[0], loc[1]
            return read_level_region(lv, x0, y0, x1 - x0, y1 - y0, p, zi, icc=self.icc)

        array: dask.array.Array = da.map_blocks(  # type: ignore[no-untyped-call]
            block, chunks=chunks, dtype=lv.dtype, meta=np.empty((0,) * len(chunks), lv.dtype))
        return array

"""Slides to pyramidal TIFF: OME-TIFF (levels in SubIFDs) and plain TIFF (levels as pages).

Stored levels are copied, never regenerated. A level whose frames are JPEG
baseline with tiles a multiple of 16 pixels is copied frame by frame into
TIFF tiles, unchanged (photometric YCbCr or RGB from the colour decision,
YCbCrSubSampling from the codestream); any other level is re-tiled into
lossless (deflate) tiles, one tile row at a time, with a warning. Peak
memory is a few tile rows of one level. BigTIFF when the file may pass 2 GB.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from dicomvol._version import __version__
from dicomvol.io.atomic import atomic_path
from dicomvol.model.slide import SlideInfo, SlideLevel
from dicomvol.slide.colour import JPEG_SYNTAXES, jpeg_markers
from dicomvol.slide.decode import frame_bytes
from dicomvol.slide.regions import default_fill, read_level_region

log = logging.getLogger(__name__)

#: TIFF tiles must be multiples of this (TIFF 6.0, section 15).
TIFF_TILE_MULTIPLE = 16
#: Tile edge of re-tiled levels.
RETILE_SIZE = 512
#: Above this many bytes a file is written as BigTIFF.
BIGTIFF_BYTES = 2**31 - 2**27


def can_copy(level: SlideLevel) -> bool:
    """JPEG baseline frames with tile sides that are multiples of 16 are copied as tiles."""
    return (all(i.transfer_syntax in JPEG_SYNTAXES and i.encapsulated for i in level.instances)
            and level.tile_width % TIFF_TILE_MULTIPLE == 0
            and level.tile_height % TIFF_TILE_MULTIPLE == 0
            and len({i.colour.decoded_as for i in level.instances}) == 1
            and level.dtype == np.uint8)


def planes_of(level: SlideLevel, all_planes: bool) -> list[tuple[int, int]]:
    """(focal plane, optical path) pages in Z-then-C order."""
    if not all_planes:
        return [(0, 0)]
    return [(z, p) for z in range(len(level.focal_planes))
            for p in range(len(level.optical_paths))]


def _copied_tiles(level: SlideLevel, planes: list[tuple[int, int]],
                  value: float | None) -> Iterator[bytes]:
    fill: bytes | None = None
    ty, tx = level.grid
    for z, p in planes:
        for r in range(ty):
            for c in range(tx):
                inst, frame = (int(v) for v in level.tiles[p, z, r, c])
                if inst >= 0:
                    yield frame_bytes(level.instances[inst], frame)
                    continue
                if fill is None:
                    import imagecodecs

                    tile = np.full((level.tile_height, level.tile_width)
                                   + ((level.samples,) if level.samples > 1 else ()),
                                   default_fill(level) if value is None else value,
                                   level.dtype)
                    fill = bytes(imagecodecs.jpeg8_encode(tile, level=95))
                yield fill


def _retiled(level: SlideLevel, planes: list[tuple[int, int]], size: int,
             workers: int, value: float | None, icc: bytes | None) -> Iterator[np.ndarray]:
    for z, p in planes:
        for y in range(0, level.height, size):
            h = min(size, level.height - y)
            strip = read_level_region(level, 0, y, level.width, h, p, z, value, workers, icc)
            for x in range(0, level.width, size):
                tile = strip[:, x:x + size]
                if tile.shape[0] != size or tile.shape[1] != size:
                    pad = [(0, size - tile.shape[0]), (0, size - tile.shape[1])]
                    tile = np.pad(tile, pad + [(0, 0)] * (tile.ndim - 2))
                yield np.ascontiguousarray(tile)


def _options(level: SlideLevel, planes: list[tuple[int, int]], warnings: list[str],
             what: str, workers: int, fill: float | None, icc: bytes | None) -> dict[str, Any]:
    """tifffile ``write`` arguments for one level: data iterator, shape, tiles, compression."""
    rgb = level.samples == 3
    n = len(planes)
    shape: tuple[int, ...] = (level.height, level.width) + ((3,) if rgb else ())
    if n > 1:
        shape = (len({z for z, _ in planes}), len({p for _, p in planes}), *shape)
    sx, sy = level.pixel_spacing_um
    opts: dict[str, Any] = dict(
        shape=shape, dtype=level.dtype, photometric="rgb" if rgb else "minisblack",
        resolution=(1e4 / sx, 1e4 / sy), resolutionunit="CENTIMETER")
    if can_copy(level) and icc is None:
        first = level.instances[0]
        head = frame_bytes(first, 0) if first.n_frames else b""
        if rgb and first.colour.decoded_as == "YCbCr":
            opts.update(photometric="ycbcr", subsampling=jpeg_markers(head).sampling)
        opts.update(data=_copied_tiles(level, planes, fill), compression="jpeg",
                    tile=(level.tile_height, level.tile_width))
        return opts
    size = min(RETILE_SIZE, max(TIFF_TILE_MULTIPLE, TIFF_TILE_MULTIPLE * math.ceil(
        max(level.tile_width, level.tile_height) / TIFF_TILE_MULTIPLE)))
    syntaxes = ", ".join(sorted({i.transfer_syntax for i in level.instances}))
    if icc is not None and can_copy(level):
        reason = "--apply-icc changes the pixels"
    elif can_copy_but_size(level):
        reason = (f"tiles {level.tile_width}x{level.tile_height} are not multiples of "
                  f"{TIFF_TILE_MULTIPLE}")
    else:
        reason = f"frames are {syntaxes}"
    warnings.append(f"{what} ({level.width}x{level.height}, {reason}): re-tiled into "
                    f"{size}x{size} lossless deflate tiles")
    opts.update(data=_retiled(level, planes, size, workers, fill, icc), compression="zlib",
                tile=(size, size), maxworkers=1)
    return opts


def can_copy_but_size(level: SlideLevel) -> bool:
    """JPEG frames that only their tile size keeps from being copied."""
    return all(i.transfer_syntax in JPEG_SYNTAXES for i in level.instances)


def _estimated_bytes(levels: list[SlideLevel], n_planes: int) -> int:
    total = 0
    for lv in levels:
        if can_copy(lv):
            total += sum(n for i in lv.instances for f in i.frames for _, n in f)
        else:
            total += lv.width * lv.height * lv.samples * lv.dtype.itemsize * n_planes
    return total


def ome_metadata(info: SlideInfo, level: SlideLevel, n_planes: int) -> dict[str, Any]:
    """The OME-XML values tifffile writes: axes, physical sizes, channel names."""
    rgb = level.samples == 3
    axes = ("ZC" if n_planes > 1 else "") + "YX" + ("S" if rgb else "")
    names = {p.identifier: p.description or p.identifier for p in info.optical_paths}
    meta: dict[str, Any] = {
        # a UUID from the series (the same slide gives the same bytes), dicomvol as creator
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_OID, info.series_instance_uid + info.suffix)),
        "Creator": f"dicomvol {__version__}",
        "axes": axes, "PhysicalSizeX": level.pixel_spacing_um[0], "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": level.pixel_spacing_um[1], "PhysicalSizeYUnit": "µm",
        "Name": info.series_description or info.series_instance_uid}
    if not rgb:
        meta["Channel"] = {"Name": [names.get(p, p) for p in level.optical_paths]}
    return meta


def write_slide_tiff(info: SlideInfo, levels: list[SlideLevel], path: str | os.PathLike[str],
                     *, ome: bool = True, workers: int = 1,
                     fill: float | None = None, apply_icc: bool = False) -> list[str]:
    """Write ``levels`` (largest first) as one pyramidal TIFF, atomically.

    Parameters
    ----------
    info : SlideInfo
        The slide (names, optical paths, ICC profile).
    levels : list of SlideLevel
        Stored levels to write, largest first (a label or overview: one level).
    ome : bool
        OME-TIFF with the reduced levels in SubIFDs of the base, every optical
        path and focal plane as pages (Z then C); else a plain TIFF whose
        reduced levels follow as pages (OpenSlide's generic TIFF), first path
        and plane only.
    workers : int
        Threads decoding re-tiled levels.
    fill : float, optional
        Value of missing tiles (default white for RGB, 0 otherwise).
    apply_icc : bool
        Convert RGB to sRGB with the slide's ICC profile (levels are re-tiled, and
        the profile is not embedded); otherwise the profile is embedded as it is.

    Returns
    -------
    list of str
        Warnings (levels re-tiled, planes left out).
    """
    import tifffile

    warnings: list[str] = []
    base = levels[0]
    planes = planes_of(base, ome)
    if not ome and len(planes_of(base, True)) > 1:
        warnings.append(f"plain TIFF holds the first optical path and focal plane only (of "
                        f"{len(base.optical_paths)} paths, {len(base.focal_planes)} planes); "
                        "use -e ome.tif or -e ome.zarr for all")
    bigtiff = _estimated_bytes(levels, len(planes)) > BIGTIFF_BYTES
    icc = info.icc_profile if base.samples == 3 else None
    applied = icc if apply_icc else None
    if apply_icc and icc is None:
        warnings.append("--apply-icc: the slide has no ICC profile; pixels written as stored")
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=bigtiff, ome=ome) as tif:
        for n, level in enumerate(levels):
            what = f"level {n}" if level.flavour == "VOLUME" else level.flavour.lower()
            opts = _options(level, planes, warnings, what, workers, fill, applied)
            if icc is not None and applied is None:
                opts["iccprofile"] = icc
            if n == 0:
                if ome:
                    opts["metadata"] = ome_metadata(info, level, len(planes))
                    opts["subifds"] = len(levels) - 1
                else:
                    opts["metadata"] = None
                    opts["description"] = (f"dicomvol slide {info.series_instance_uid} "
                                           f"{level.width}x{level.height}")
            else:
                opts["subfiletype"] = 1
                opts["metadata"] = None
            data = opts.pop("data")
            tif.write(data, **opts)
    return collapse_retiled(warnings)


def collapse_retiled(warnings: list[str]) -> list[str]:
    """One line for all re-tiled levels instead of one per level."""
    retiled = [w for w in warnings if "re-tiled" in w]
    if len(retiled) <= 1:
        return warnings
    levels = ", ".join(w.split(":")[0] for w in retiled)
    return [w for w in warnings if "re-tiled" not in w] + [
        f"{len(retiled)} levels re-tiled into lossless deflate tiles (frames cannot be copied "
        f"as TIFF tiles): {levels}"]

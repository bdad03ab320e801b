"""Slides to OME-Zarr: NGFF 0.5 on zarr v3, one array per stored level.

Axes (c, z, y, x): c holds the RGB samples of a brightfield slide or the
optical paths of a multiplex one (named from the optical path descriptions),
z the focal planes. Scales are µm, exactly the stored pixel spacings; chunks
are the level's own tiles (the three samples of an RGB tile in one chunk, each
optical path in its own), written one tile row at a time (chunk-aligned, so no
chunk is read back): peak memory is one tile row of one level.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from dicomvol.model.slide import SlideInfo, SlideLevel
from dicomvol.slide.regions import read_level_region

#: NGFF version written.
NGFF_VERSION = "0.5"
_RGB = (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))


def ngff_attributes(info: SlideInfo, levels: list[SlideLevel]) -> dict[str, Any]:
    """The group's ``ome`` attributes: multiscales and omero channels."""
    base = levels[0]
    dz = (base.focal_planes[1] - base.focal_planes[0]) if len(base.focal_planes) > 1 else 1.0
    datasets = [{"path": str(n), "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, float(dz), lv.pixel_spacing_um[1],
                                    lv.pixel_spacing_um[0]]}]} for n, lv in enumerate(levels)]
    axes = [{"name": "c", "type": "channel"},
            {"name": "z", "type": "space", "unit": "micrometer"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    top = 255 if base.dtype.itemsize == 1 else int(2 ** min(16, base.instances[0].bits_stored)) - 1
    if base.samples == 3:
        channels = [{"label": n, "color": c, "active": True,
                     "window": {"start": 0, "end": 255, "min": 0, "max": 255}} for n, c in _RGB]
    else:
        names = {p.identifier: p.description or p.identifier for p in info.optical_paths}
        channels = [{"label": names.get(p, p), "color": "FFFFFF", "active": True,
                     "window": {"start": 0, "end": top, "min": 0, "max": top}}
                    for p in base.optical_paths]
    return {"version": NGFF_VERSION,
            "multiscales": [{"name": info.series_description or info.series_instance_uid,
                             "axes": axes, "datasets": datasets}],
            "omero": {"channels": channels, "rdefs": {"model": "color"}}}


def write_slide_zarr(info: SlideInfo, levels: list[SlideLevel], path: str | os.PathLike[str],
                     *, workers: int = 1, fill: float | None = None,
                     apply_icc: bool = False) -> list[str]:
    """Write ``levels`` (largest first) as an OME-Zarr group, atomically (a temporary
    folder renamed into place).

    ``apply_icc`` converts RGB to sRGB with the slide's ICC profile (OME-Zarr has no
    place for the profile itself: the sidecar says whether it was applied).

    Returns
    -------
    list of str
        Warnings.
    """
    import zarr

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    warnings: list[str] = []
    icc = info.icc_profile if apply_icc else None
    if apply_icc and icc is None:
        warnings.append("--apply-icc: the slide has no ICC profile; pixels written as stored")
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for n, level in enumerate(levels):
            _write_level(group, str(n), level, workers, fill, icc)
        group.attrs["ome"] = ngff_attributes(info, levels)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return warnings


def _write_level(group: Any, name: str, level: SlideLevel, workers: int,
                 fill: float | None, icc: bytes | None) -> None:
    rgb = level.samples == 3
    nc = 3 if rgb else len(level.optical_paths)
    nz = len(level.focal_planes)
    th, tw = level.tile_shape
    arr = group.create_array(name, shape=(nc, nz, level.height, level.width),
                             chunks=(nc if rgb else 1, 1, th, tw), dtype=level.dtype,
                             dimension_names=("c", "z", "y", "x"))
    for z in range(nz):
        for p in range(1 if rgb else nc):
            for y in range(0, level.height, th):
                h = min(th, level.height - y)
                strip = read_level_region(level, 0, y, level.width, h, p, z, fill, workers,
                                          icc)
                if rgb:
                    arr[:, z, y:y + h, :] = strip.transpose(2, 0, 1)
                else:
                    arr[p, z, y:y + h, :] = strip

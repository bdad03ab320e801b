"""QC records of label maps (overlays with a legend) and slides (a thumbnail of one level).

A label map is an output whose sidecar holds a ``LabelMap`` object
(``shared/docs/OUTPUT_CONTRACT.md``): on exactly the grid of its
``ReferencedImage``, so its overlay views have that image's view geometry
and size and are drawn over its views. ``Encoding`` ``labels`` is one integer
volume; ``one-hot`` and ``fractional`` have one volume per segment along the
4th axis (a voxel belongs to a segment at >= 0.5). A segment's colour is read
from the first of :data:`COLOUR_KEYS` it has (RGB 0..255, 0..1 or ``#rrggbb``;
DICOM's ``RecommendedDisplayCIELabValue`` is converted), else taken from a
palette.

A slide is an OME-TIFF/TIFF output: its thumbnail comes from the smallest
stored pyramid level at least :data:`~dicomvol.qc.views.THUMB_BOX_PX` on its
longer side (tifffile, when installed), so no large level is decoded.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.io.readback import open_image
from dicomvol.model.derived import cielab_to_rgb
from dicomvol.qc.record import QC_DIR, VolumeQC, image_stat, write_record
from dicomvol.qc.sample import sample_volumes
from dicomvol.qc.thumbs import Thumb, labels_from_volumes, palette, render_labels, write_png
from dicomvol.qc.views import THUMB_BOX_PX, resize, thumb_size
from dicomvol.qc.window import Window, apply_window

log = logging.getLogger(__name__)

#: Segment keys holding a display colour, in the order they are tried.
COLOUR_KEYS = ("RecommendedDisplayRGBValue", "DisplayColor", "DisplayColour", "Color",
               "Colour", "RGB", "RecommendedDisplayCIELabValue")
#: Output endings drawn as slides (OME-Zarr folders are listed, not drawn yet).
SLIDE_ENDINGS = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".ome.zarr", ".zarr")
#: A one-hot or fractional voxel belongs to a segment at this value or above.
SEGMENT_THRESHOLD = 0.5


def is_label_map(sidecar: dict[str, Any]) -> bool:
    """True when a sidecar describes a label map (a ``LabelMap`` object)."""
    return isinstance(sidecar.get("LabelMap"), dict)


def is_slide(image_name: str) -> bool:
    """True for OME-TIFF / TIFF outputs."""
    return image_name.lower().endswith(SLIDE_ENDINGS)


def segment_colour(segment: dict[str, Any]) -> tuple[int, int, int] | None:
    """A segment's display colour as RGB 0..255, or None when it names none."""
    for key in COLOUR_KEYS:
        value = segment.get(key)
        if value is None:
            continue
        try:
            if isinstance(value, str) and value.startswith("#") and len(value) == 7:
                return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
            c = [float(v) for v in value][:3]
        except (TypeError, ValueError):
            continue
        if len(c) != 3:
            continue
        if key == "RecommendedDisplayCIELabValue":
            rgb = cielab_to_rgb(c)
            if rgb is None:
                continue
            return rgb
        scale = 255.0 if max(c) <= 1.0 and any(v != int(v) for v in c) else 1.0
        r, g, b = (int(np.clip(round(v * scale), 0, 255)) for v in c)
        return (r, g, b)
    return None


def legend(label_map: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per segment: the value it is drawn with, its name, colour and volume index."""
    segments = [s for s in label_map.get("Segments", ()) if isinstance(s, dict)]
    fallback = palette(len(segments))
    encoding = str(label_map.get("Encoding", "labels"))
    out = []
    for n, seg in enumerate(segments):
        number = seg.get("SegmentNumber", seg.get("ROINumber", n + 1))
        value = int(seg.get("LabelValue", n + 1)) if encoding == "labels" else n + 1
        out.append({"value": value, "label": str(seg.get("Label", f"segment {number}")),
                    "number": number, "rgb": list(segment_colour(seg) or fallback[n]),
                    "volume": seg.get("Volume", n) if encoding != "labels" else None})
    return out


def from_label_map(out_dir: Path, image_name: str, stem: str,
                   sidecar: dict[str, Any]) -> VolumeQC:
    """Render and write a label map's overlays and legend."""
    path = out_dir / image_name
    image = open_image(path)
    label_map = sidecar["LabelMap"]
    entries = legend(label_map)
    shape3 = image.shape[:3]
    if str(label_map.get("Encoding", "labels")) == "labels" or len(image.shape) < 4:
        planes = sample_volumes(shape3, lambda _: np.asarray(image.volume(0))).planes
        combined = {axis: planes[(0, axis)] for axis in range(3)}
    else:
        per_segment: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
        for entry in entries:  # one segment's volume in memory at a time
            segment = np.asarray(image.volume(int(entry["volume"])))
            sample = sample_volumes(shape3, partial(_same, segment))
            for axis in range(3):
                per_segment[axis].append(sample.planes[(0, axis)])
        values = [int(e["value"]) for e in entries]
        combined = {axis: labels_from_volumes(per_segment[axis], values, SEGMENT_THRESHOLD)
                    if per_segment[axis] else np.zeros((1, 1), dtype=np.int32)
                    for axis in range(3)}
    colours = {int(e["value"]): (int(e["rgb"][0]), int(e["rgb"][1]), int(e["rgb"][2]))
               for e in entries}
    thumbs = render_labels({a: np.rint(p).astype(np.int64) for a, p in combined.items()},
                           image.affine, shape3, colours, out_dir / QC_DIR, stem)
    record = VolumeQC(image_name, str(sidecar.get("Modality", "SEG")), image.shape,
                      image.affine, thumbs, image_stat=image_stat(path), legend=entries)
    write_record(out_dir, stem, record)
    return record


def _same(volume: np.ndarray, t: int) -> np.ndarray:
    """``volume``, whatever time point is asked for (one segment's 3D volume)."""
    return volume


def from_slide(out_dir: Path, image_name: str, stem: str) -> VolumeQC:
    """Render and write a slide's thumbnail from its smallest sufficient pyramid level."""
    path = out_dir / image_name
    record = VolumeQC(image_name, "SM", (), np.eye(4), image_stat=image_stat(path))
    if image_name.lower().endswith(".zarr"):
        record.notes.append("OME-Zarr: no thumbnail drawn yet (open it with napari or zarr)")
        write_record(out_dir, stem, record)
        return record
    try:
        import tifffile
    except ImportError:
        record.notes.append("no slide thumbnail: install tifffile")
        write_record(out_dir, stem, record)
        return record
    with tifffile.TiffFile(str(path)) as tif:
        series = tif.series[0]
        levels = list(series.levels) or [series]
        sizes = [_yx(level.shape, level.axes) for level in levels]
        fits = [n for n, (h, w) in enumerate(sizes) if max(h, w) >= THUMB_BOX_PX]
        pick = min(fits, key=lambda n: sizes[n][0] * sizes[n][1]) if fits else 0
        level = levels[pick]
        stored = np.asarray(level.asarray())
        pixels = _rgb_or_grey(stored, level.axes)
        record.shape = tuple(int(v) for v in sizes[0])
    height, width = thumb_size(pixels.shape[:2], 1.0, 1.0)
    if pixels.ndim == 3:
        small = np.stack([resize(pixels[..., c], height, width) for c in range(3)], axis=-1)
        if stored.dtype != np.uint8:  # e.g. 16-bit fluorescence: stretch to 1-99 %
            lo, hi = (float(v) for v in np.percentile(small, [1.0, 99.0]))
            small = (small - lo) * (255.0 / (hi - lo if hi > lo else 1.0))
        image = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    else:
        small = resize(pixels, height, width)
        lo, hi = (float(v) for v in np.percentile(small, [1.0, 99.0]))
        image = apply_window(small, Window("slide", lo, hi if hi > lo else lo + 1.0))
    rel = f"img/{stem}.slide.png"
    write_png(out_dir / QC_DIR / rel, image)
    h0, w0 = sizes[0]
    caption = (f"level {pick} of {len(levels)} ({sizes[pick][1]} x {sizes[pick][0]} px; "
               f"full {w0} x {h0})")
    record.thumbs.append(Thumb("slide", "slide", rel, width, height, ("", "", "", ""), caption))
    write_record(out_dir, stem, record)
    return record


def _yx(shape: tuple[int, ...], axes: str) -> tuple[int, int]:
    return int(shape[axes.index("Y")]), int(shape[axes.index("X")])


def _rgb_or_grey(data: np.ndarray, axes: str) -> np.ndarray:
    """(Y, X, 3) RGB when the level has 3 samples or channels, else (Y, X) of the first channel."""
    index: list[Any] = []
    keep: list[str] = []
    for axis, n in zip(axes, data.shape, strict=True):
        if axis in "YX":
            index.append(slice(None))
            keep.append(axis)
        elif axis in "SC" and n in (3, 4) and not any(a in "SC" for a in keep):
            index.append(slice(0, 3))
            keep.append(axis)
        else:
            index.append(0)
    picked = data[tuple(index)]
    if len(keep) == 3:
        colour = next(a for a in keep if a in "SC")
        order = [keep.index("Y"), keep.index("X"), keep.index(colour)]
        return np.transpose(picked, order).astype(np.float32)
    return np.asarray(picked, dtype=np.float32)

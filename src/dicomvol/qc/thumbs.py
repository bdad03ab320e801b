"""Thumbnails: a :class:`~dicomvol.qc.sample.Sample` drawn as small PNG files.

One row of views per window and time point: axial, coronal and sagittal
through the centre, plus the coronal and sagittal maximum-intensity
projections for PET. Label maps become transparent colour overlays of the
same size as their image's views (the grids are identical, so the views are
too), with a legend. Files are written atomically under ``qc/img/``; what is
drawn is described by :class:`Thumb` records (JSON in ``qc/data/``).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.io.atomic import atomic_path
from dicomvol.qc.png import encode_png
from dicomvol.qc.sample import MIP_MODALITIES, Sample
from dicomvol.qc.views import ViewSpec, orient, resize, thumb_size, view_specs
from dicomvol.qc.window import Window, apply_window, windows_for

#: Opacity of a label overlay (0..255).
OVERLAY_ALPHA = 140
#: The MIP planes shown for PET (projection along P, then along L).
MIP_PLANES = ("coronal", "sagittal")


@dataclass(frozen=True)
class Thumb:
    """One picture on the page.

    Attributes
    ----------
    row : str
        The row it belongs to (window and time point, ``labels`` for an overlay).
    plane : str
        ``axial``, ``coronal`` or ``sagittal``.
    file : str
        PNG path relative to the ``qc`` folder.
    width, height : int
        Pixels.
    letters : tuple of str
        Patient directions at the left, right, top and bottom edges.
    caption : str
    """

    row: str
    plane: str
    file: str
    width: int
    height: int
    letters: tuple[str, str, str, str]
    caption: str

    def to_json(self) -> dict[str, Any]:
        """JSON form (``qc/data/NAME.json``)."""
        return {"row": self.row, "plane": self.plane, "file": self.file, "width": self.width,
                "height": self.height, "letters": list(self.letters), "caption": self.caption}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Thumb:
        """The inverse of :meth:`to_json`."""
        letters = tuple(str(v) for v in obj.get("letters", ("", "", "", "")))
        return cls(str(obj["row"]), str(obj["plane"]), str(obj["file"]), int(obj["width"]),
                   int(obj["height"]), (letters[0], letters[1], letters[2], letters[3]),
                   str(obj.get("caption", "")))


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an 8-bit image as PNG, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(image))


def drawn(plane: np.ndarray, spec: ViewSpec, smooth: bool = True) -> np.ndarray:
    """A sampled plane in screen orientation at thumbnail size, shape (height, width)."""
    screen = orient(plane, spec)
    height, width = thumb_size(screen.shape, spec.row_mm, spec.col_mm)
    return resize(screen, height, width, smooth=smooth)


def render_views(sample: Sample, affine: np.ndarray, modality: str, qc_dir: Path,
                 stem: str) -> list[Thumb]:
    """Write the thumbnails of a sampled volume; returns what was drawn, row by row.

    Parameters
    ----------
    sample : Sample
        From :func:`~dicomvol.qc.sample.sample_array` or a
        :class:`~dicomvol.qc.sample.SliceSampler`.
    affine : ndarray of shape (4, 4)
        The volume's LPS affine.
    qc_dir : Path
        The ``qc`` folder; files go to ``qc_dir / "img"``.
    stem : str
        The output's name without extension (file names start with it).
    """
    specs = view_specs(affine, sample.shape)
    four_d = len(sample.times) > 1
    first = [sample.planes[(0, a)] for a in range(3) if (0, a) in sample.planes]
    windows = windows_for(modality, first)
    # projections are brighter than any plane: their own percentiles
    mip_windows = windows_for(modality, [v for (t, _), v in sample.mips.items() if t == 0])
    if four_d:
        windows, mip_windows = windows[:1], mip_windows[:1]
    thumbs: list[Thumb] = []
    for t in sample.times:
        # each plane is resized once and windowed as often as the modality has windows
        screens = {spec.fixed_axis: drawn(sample.planes[(t, spec.fixed_axis)], spec)
                   for spec in specs}
        mips = {spec.fixed_axis: drawn(sample.mips[(t, spec.fixed_axis)], spec)
                for spec in specs if modality in MIP_MODALITIES and sample.mips
                and spec.plane in MIP_PLANES}
        for w_index, window in enumerate(windows):
            row = (f"volume {t + 1} of {sample.shape[3]}, {window.text}" if four_d
                   else window.text)
            tag = f"t{t}w{w_index}"
            for spec in specs:
                thumbs.append(_one(screens[spec.fixed_axis], spec, window, row,
                                   qc_dir, f"{stem}.{tag}.{spec.plane}", spec.caption))
            if modality in MIP_MODALITIES and sample.mips:
                for spec in specs:
                    if spec.plane in MIP_PLANES:
                        mip_window = mip_windows[min(w_index, len(mip_windows) - 1)]
                        thumbs.append(_one(mips[spec.fixed_axis], spec, mip_window,
                                           row, qc_dir, f"{stem}.{tag}.mip-{spec.plane}",
                                           f"{spec.plane} MIP {mip_window.text}"))
    return thumbs


def _one(screen: np.ndarray, spec: ViewSpec, window: Window, row: str, qc_dir: Path,
         name: str, caption: str) -> Thumb:
    """Window a drawn plane (:func:`drawn`) and write it as a PNG thumbnail."""
    grey = apply_window(screen, window)
    rel = f"img/{name}.png"
    write_png(qc_dir / rel, grey)
    return Thumb(row, spec.plane, rel, int(grey.shape[1]), int(grey.shape[0]),
                 spec.letters.as_tuple(), caption)


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct colours (golden-ratio hues), for segments without a display colour."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((0.11 + i * 0.618034) % 1.0, 0.85, 1.0)
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return out


def render_labels(planes: dict[int, np.ndarray], affine: np.ndarray, shape: tuple[int, ...],
                  colours: dict[int, tuple[int, int, int]], qc_dir: Path,
                  stem: str) -> list[Thumb]:
    """Transparent colour overlays of a label map's centre planes.

    Parameters
    ----------
    planes : dict
        ``fixed_axis -> ndarray`` of integer labels (0 = background), indexed
        like :attr:`Sample.planes`.
    colours : dict
        Label value -> RGB (0..255); labels without one are drawn grey.
    """
    thumbs = []
    for spec in view_specs(affine, shape):
        labels = drawn(np.asarray(planes[spec.fixed_axis]), spec, smooth=False)
        rgba = np.zeros((*labels.shape, 4), dtype=np.uint8)
        inside = labels > 0
        rgba[inside] = (160, 160, 160, OVERLAY_ALPHA)
        for value, rgb in colours.items():
            if value > 0:
                rgba[labels == value] = (*rgb, OVERLAY_ALPHA)
        rel = f"img/{stem}.labels.{spec.plane}.png"
        write_png(qc_dir / rel, rgba)
        thumbs.append(Thumb("labels", spec.plane, rel, int(rgba.shape[1]), int(rgba.shape[0]),
                            spec.letters.as_tuple(), spec.caption))
    return thumbs


def labels_from_volumes(volumes: Sequence[np.ndarray], values: Sequence[int],
                        threshold: float = 0.5) -> np.ndarray:
    """One integer label plane from one-hot or fractional planes (later segments on top).

    Parameters
    ----------
    volumes : sequence of ndarray, each of shape (A, B)
        One plane per segment.
    values : sequence of int
        The label value each segment is drawn with.
    threshold : float
        A voxel belongs to a segment when its value is at least this.
    """
    out = np.zeros(np.shape(volumes[0]), dtype=np.int32)
    for plane, value in zip(volumes, values, strict=True):
        out[np.asarray(plane) >= threshold] = value
    return out


"""The library's entry points: scan, read and convert.

>>> import dicomvol
>>> result = dicomvol.scan(["study/"])            # headers only, no pixels
>>> vol = dicomvol.read_volume(result.plans[0])   # one Volume in memory
>>> img = dicomvol.to_nifti(vol)                  # a nibabel.Nifti1Image
>>> report = dicomvol.convert(["study/"], "out/") # NIfTI + sidecars + report
>>> slide = dicomvol.open_slide(["slide/"])       # whole-slide microscopy
>>> tile = slide.read_region(0, 1000, 2000, 512, 512)  # (512, 512, 3) uint8
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dicomvol._typing import PathLike
from dicomvol.batch.archive import Archive
from dicomvol.batch.run import convert_run
from dicomvol.batch.scan import ProgressFn, scan_inputs
from dicomvol.inputs import fs
from dicomvol.model.plan import ScanResult, VolumePlan
from dicomvol.model.volume import Volume
from dicomvol.options import ConvertOptions, PlanOptions, StorageOptions
from dicomvol.report.run import RunReport

if TYPE_CHECKING:  # pragma: no cover
    import nibabel as nib

    from dicomvol.slide.regions import Slide

__all__ = ["ProgressFn", "convert", "open_slide", "read_series", "read_volume", "scan",
           "to_nifti", "to_simpleitk"]


def scan(
    paths: Iterable[PathLike],
    progress: ProgressFn | None = None,
    options: PlanOptions | None = None,
    jobs: int = 1,
    storage: StorageOptions | None = None,
    jpeg_color: str = "auto",
) -> ScanResult:
    """Find DICOM files, read their headers and plan volumes (no pixel data is read).

    Parameters
    ----------
    paths : iterable of str or PathLike
        Files and folders; folders are walked recursively.
    progress : callable, optional
        ``progress(done, total, what)``, called as headers are read.
    options : PlanOptions, optional
        Policy for tilted and irregular series (default: resample, and for
        tilt both the sheared stack and a resampled copy).
    jobs : int
        Processes reading headers.
    storage : StorageOptions, optional
        Object-store clients for ``s3://``/``gs://`` inputs (anonymous by default).
    jpeg_color : {"auto", "pi", "stream"}
        Slides: the colour decision for JPEG/JPEG 2000 frames.

    Returns
    -------
    ScanResult
        ``plans`` (one :class:`VolumePlan` per output volume), ``slides`` (whole-slide
        microscopy), ``skipped`` frames with reasons, ``ignored`` non-image files
        and read ``errors``.
    """
    if storage is not None:
        fs.configure(storage)
    return scan_inputs(paths, progress, options, jobs, jpeg_color=jpeg_color)


def open_slide(paths: Iterable[PathLike] | PathLike, *, series: str | None = None,
               jpeg_color: str = "auto", workers: int = 1, apply_icc: bool = False) -> Slide:
    """Open a whole-slide microscopy (SM) pyramid: its levels, paths, planes and regions.

    Reads headers and encapsulated item headers only; a region read decodes
    only the frames it touches.

    Parameters
    ----------
    paths : path or iterable of paths
        The SM files of the slide, or a folder holding them.
    series : str, optional
        SeriesInstanceUID, when the inputs hold several slides.
    jpeg_color : {"auto", "pi", "stream"}
        Colour decision for JPEG/JPEG 2000 frames (default: the codestream decides).
    workers : int
        Threads decoding the tiles of one read.
    apply_icc : bool
        Reads give sRGB, converted with the slide's ICC profile.

    Returns
    -------
    Slide
        ``levels``, ``optical_paths``, ``focal_planes``, ``label``, ``overview``,
        ``thumbnail(max)``, ``icc_profile``, ``read_region(level, x, y, w, h)``
        and ``to_dask(level)``.

    Raises
    ------
    UsageError
        No slide (or several, without ``series``) under ``paths``.
    """
    from dicomvol.errors import UsageError
    from dicomvol.slide.regions import Slide

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    result = scan_inputs(items, jpeg_color=jpeg_color)
    slides = [s for s in result.slides
              if series is None or s.series_instance_uid == series]
    if not slides:
        errors = "; ".join(f"{e.rel}: {e.error}" for e in result.errors)
        raise UsageError("no whole-slide microscopy image found"
                         + (f" (errors: {errors})" if errors else ""))
    if len(slides) > 1:
        raise UsageError(f"{len(slides)} slides found; choose one with series= (e.g. "
                         f"{slides[0].series_instance_uid}{slides[0].suffix})")
    return Slide(slides[0], workers=workers, apply_icc=apply_icc)


def read_volume(plan: VolumePlan, workers: int = 1) -> Volume:
    """Decode one planned volume into memory, with its sidecar metadata.

    Parameters
    ----------
    plan : VolumePlan
        From :func:`scan`.
    workers : int
        Threads decoding files in parallel.

    Returns
    -------
    Volume
        ``data`` of shape (X, Y, Z[, T]) indexed ``[i, j, k(, t)]``, its LPS affine.

    Raises
    ------
    PixelDataError
        A frame cannot be decoded; the message names the file.
    """
    from dicomvol.batch.reading import read_volume as _read_volume  # pydicom: imported here

    return _read_volume(plan, workers)


def read_series(
    paths: Iterable[PathLike], options: PlanOptions | None = None
) -> list[Volume]:
    """Scan ``paths`` and read every planned volume into memory.

    Returns
    -------
    list of Volume
        Arrays indexed ``[i, j, k(, t)]`` with LPS affines (see :class:`Volume`).
    """
    return [read_volume(plan) for plan in scan(paths, options=options).plans]


def convert(
    paths: Iterable[PathLike],
    out_dir: PathLike,
    options: ConvertOptions | None = None,
    progress: ProgressFn | None = None,
    archive: Archive | None = None,
) -> RunReport:
    """Convert every volume under ``paths`` into ``out_dir``.

    Writes one image and one JSON sidecar per volume, atomically, and
    ``dicomvol_report.json`` (plus ``dicomvol_report.parquet`` or ``.csv``)
    accounting for every input file and frame. A file that cannot be read is
    reported in ``errors`` and the rest of its series is planned again
    without it; nothing raises for bad input. Inputs may be ``s3://`` or
    ``gs://`` URLs; ``archive`` (from :func:`dicomvol.batch.archive.select`)
    adds IDC selections, and the report then checks every IDC series against
    the index (``report.ok`` is False when one is incomplete).

    Raises
    ------
    UsageError
        An input does not exist, the name template is malformed, or the
        options cannot be honoured (e.g. Dask not installed).
    """
    return convert_run(list(paths), out_dir, options or ConvertOptions(), progress, archive)


def to_nifti(volume: Volume) -> nib.Nifti1Image:
    """The volume as a ``nibabel.Nifti1Image`` (RAS affine, sform and qform set)."""
    from dicomvol.io.nifti import to_nifti as _to_nifti

    return _to_nifti(volume)


def to_simpleitk(volume: Volume) -> Any:
    """The volume as a ``SimpleITK.Image`` (LPS, ITK's native frame); needs SimpleITK."""
    from dicomvol.io.itk import to_simpleitk as _to_simpleitk

    return _to_simpleitk(volume)

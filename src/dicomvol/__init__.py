"""dicomvol: DICOM series to exact 3D/4D volumes.

The pipeline runs one way (see ``docs/ARCHITECTURE.md``)::

    inputs -> dicom (index) -> plan -> pixels + metadata -> io (write) -> report

Public API
----------
scan(paths) -> ScanResult
    Index headers and plan volumes without reading pixel data.
read_volume(plan) -> Volume
    Decode one planned volume into memory.
read_series(paths) -> list[Volume]
    Scan and read every volume found under ``paths``.
convert(paths, out_dir, options) -> RunReport
    Scan, read and write every volume, with sidecars and a run report.
open_slide(paths) -> Slide
    A whole-slide microscopy pyramid: levels, regions, dask arrays.
to_nifti(volume), to_simpleitk(volume)
    A volume as a ``nibabel.Nifti1Image`` or a ``SimpleITK.Image``.

Geometry convention: DICOM patient coordinates (LPS, mm); a volume's array is
indexed ``[i, j, k(, t)]`` with i along a DICOM row (column index), j down the
columns (row index) and k along the slice normal; ``Volume.affine`` maps
(i, j, k, 1) to LPS. RAS appears only in the NIfTI writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomvol._version import __version__

__all__ = [
    "ConvertOptions",
    "DicomvolError",
    "GeometryError",
    "HeaderError",
    "MissingDecoderError",
    "NotDicomError",
    "OutputExistsError",
    "PixelDataError",
    "PlanOptions",
    "RunReport",
    "ScanResult",
    "Slide",
    "StorageOptions",
    "UsageError",
    "Volume",
    "VolumeGeometry",
    "VolumePlan",
    "__version__",
    "convert",
    "open_slide",
    "read_series",
    "read_volume",
    "scan",
    "to_nifti",
    "to_simpleitk",
]

if TYPE_CHECKING:  # pragma: no cover
    from dicomvol.api import (
        convert,
        open_slide,
        read_series,
        read_volume,
        scan,
        to_nifti,
        to_simpleitk,
    )
    from dicomvol.errors import (
        DicomvolError,
        GeometryError,
        HeaderError,
        MissingDecoderError,
        NotDicomError,
        OutputExistsError,
        PixelDataError,
        UsageError,
    )
    from dicomvol.model.grid import VolumeGeometry
    from dicomvol.model.plan import ScanResult, VolumePlan
    from dicomvol.model.volume import Volume
    from dicomvol.options import ConvertOptions, PlanOptions, StorageOptions
    from dicomvol.report.run import RunReport
    from dicomvol.slide.regions import Slide

_LAZY = {
    **dict.fromkeys(("convert", "open_slide", "read_series", "read_volume", "scan",
                     "to_nifti", "to_simpleitk"), "dicomvol.api"),
    **dict.fromkeys(("DicomvolError", "GeometryError", "HeaderError", "MissingDecoderError",
                     "NotDicomError", "OutputExistsError", "PixelDataError", "UsageError"),
                    "dicomvol.errors"),
    "ConvertOptions": "dicomvol.options",
    "PlanOptions": "dicomvol.options",
    "StorageOptions": "dicomvol.options",
    "ScanResult": "dicomvol.model.plan",
    "VolumePlan": "dicomvol.model.plan",
    "Volume": "dicomvol.model.volume",
    "VolumeGeometry": "dicomvol.model.grid",
    "RunReport": "dicomvol.report.run",
    "Slide": "dicomvol.slide.regions",
}


def __getattr__(name: str) -> Any:
    """Import public names lazily so that ``dicomvol --help`` starts fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dicomvol' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

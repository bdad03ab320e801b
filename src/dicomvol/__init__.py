"""dicomvol: DICOM series to exact 3D/4D volumes.

The pipeline runs one way (see ``docs/ARCHITECTURE.md``)::

    discover -> index -> plan -> assemble -> write -> report

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

Geometry convention: DICOM patient coordinates (LPS, mm); a volume's array is
indexed ``[i, j, k(, t)]`` with i along a DICOM row (column index), j down the
columns (row index) and k along the slice normal; ``Volume.affine`` maps
(i, j, k, 1) to LPS. RAS appears only in the NIfTI writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ConvertOptions",
    "DicomvolError",
    "RunReport",
    "ScanResult",
    "Volume",
    "VolumePlan",
    "__version__",
    "convert",
    "read_series",
    "read_volume",
    "scan",
]

if TYPE_CHECKING:  # pragma: no cover
    from dicomvol.api import convert, read_series, read_volume, scan
    from dicomvol.errors import DicomvolError
    from dicomvol.options import ConvertOptions
    from dicomvol.plan import ScanResult, VolumePlan
    from dicomvol.report import RunReport
    from dicomvol.volume import Volume

_LAZY = {
    "convert": "dicomvol.api",
    "read_series": "dicomvol.api",
    "read_volume": "dicomvol.api",
    "scan": "dicomvol.api",
    "DicomvolError": "dicomvol.errors",
    "ConvertOptions": "dicomvol.options",
    "ScanResult": "dicomvol.plan",
    "VolumePlan": "dicomvol.plan",
    "RunReport": "dicomvol.report",
    "Volume": "dicomvol.volume",
}


def __getattr__(name: str) -> Any:
    """Import public names lazily so that ``dicomvol --help`` starts fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dicomvol' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

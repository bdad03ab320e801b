"""The public API: what ``dicomvol`` exports, and that it is everything a user needs."""

from __future__ import annotations

import subprocess
import sys

import dicomvol

PUBLIC = {"scan", "read_volume", "read_series", "convert", "to_nifti", "to_simpleitk",
          "Volume", "VolumeGeometry", "VolumePlan", "ScanResult", "RunReport",
          "ConvertOptions", "PlanOptions", "StorageOptions", "DicomvolError", "NotDicomError",
          "HeaderError",
          "PixelDataError", "MissingDecoderError", "GeometryError", "OutputExistsError",
          "UsageError", "__version__", "open_slide", "Slide"}


def test_every_public_name_resolves() -> None:
    assert set(dicomvol.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(dicomvol, name) is not None
    assert not any(name.startswith("_") for name in dicomvol.__all__ if name != "__version__")


def test_error_classes_share_one_root_and_a_builtin() -> None:
    for name in PUBLIC:
        obj = getattr(dicomvol, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, dicomvol.DicomvolError)
            if obj is not dicomvol.DicomvolError:
                assert any(b in obj.__mro__ for b in (ValueError, FileExistsError))


def test_scan_takes_no_pool() -> None:
    import inspect

    assert "pool" not in inspect.signature(dicomvol.scan).parameters


def test_import_is_lazy() -> None:
    """``import dicomvol`` loads neither pydicom nor numpy (``--help`` stays fast)."""
    code = "import sys, dicomvol; print(any(m in sys.modules for m in ('pydicom', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"

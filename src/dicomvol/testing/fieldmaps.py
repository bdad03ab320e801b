"""Synthetic field maps and magnitude/phase series: GE (parts told apart only by GE
private tags) and Siemens (a magnitude series of two echoes and a phase difference).

* :func:`write_ge_fieldmap`: a GE direct B0 field map: per position, the field
  map in Hz (a real image, (0043,xx2F) = 2, ImageType ``B0 MAP``, signed
  values through RescaleIntercept) and then the magnitude ((0043,xx2F) = 0),
  with VelocityEncodeScale (0019,xxE2) that gives the echo spacing.
* :func:`write_ge_multiecho_phase`: magnitude and phase ((0043,xx2F) 0 and 1)
  of each echo of a multi-echo gradient echo.
* :func:`write_siemens_fieldmap`: Siemens gre_field_mapping: the magnitude series
  (echoes 1 and 2) and the phase difference series (ImageType ``P``, echo 2 only),
  the echo times in the protocol (``alTE[0]``, ``alTE[1]``) of the CSA series header.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom

from dicomvol.testing.mr4d import TimeSeries, write_time_series
from dicomvol.testing.siemens import add_csa, csa2

GE = "GE MEDICAL SYSTEMS"
#: VelocityEncodeScale of GE's example (dcm_qa_fmap GE_6): echo spacing 2.304 ms.
VELOCITY_ENCODE_SCALE = -69.077667


def _ge_private(ds: pydicom.Dataset, image_type_code: int, pulse: str) -> None:
    ds.add_new((0x0019, 0x0010), "LO", "GEMS_ACQU_01")
    ds.add_new((0x0019, 0x109C), "LO", pulse)
    ds.add_new((0x0019, 0x10E2), "DS", f"{VELOCITY_ENCODE_SCALE:.6f}")
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    ds.add_new((0x0043, 0x102F), "SS", image_type_code)


def write_ge_fieldmap(folder: str | Path, *, shape: tuple[int, int, int] = (16, 12, 6),
                      echo_time_ms: float = 4.608, **kwargs: Any) -> TimeSeries:
    """GE B0map: volume 0 the field map in Hz (values -400..1100), volume 1 the magnitude."""
    ts = write_time_series(folder, shape=shape, n_volumes=2, manufacturer=GE,
                           series_description="B0map", **kwargs)
    z = shape[2]
    for n, path in enumerate(ts.paths):
        ds = pydicom.dcmread(path)
        fieldmap = n // z == 0
        _ge_private(ds, 2 if fieldmap else 0, "B0map")
        ds.EchoTime = f"{echo_time_ms:g}"
        if fieldmap:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "B0 MAP", "B0"]
            ds.RescaleIntercept = "-400"
        ds.save_as(path)
    values = ts.values.copy()
    values[..., 0] -= 400.0
    return TimeSeries(ts.series, ts.n_slices, values, ts.sop_instance_uids)


def echo_spacing_s() -> float:
    """The echo spacing (s) that VELOCITY_ENCODE_SCALE gives: 1 / (2 pi |VES|)."""
    return 1.0 / (2.0 * math.pi * abs(VELOCITY_ENCODE_SCALE))


def write_ge_multiecho_phase(folder: str | Path, *, shape: tuple[int, int, int] = (16, 12, 6),
                             echo_times_ms: Sequence[float] = (4.0, 9.0),
                             **kwargs: Any) -> TimeSeries:
    """Per echo, magnitude then phase (volume 2e: echo e magnitude, 2e + 1: its phase)."""
    n_echoes = len(echo_times_ms)
    nv = 2 * n_echoes
    ts = write_time_series(folder, shape=shape, n_volumes=nv, manufacturer=GE,
                           series_description="ME GRE",
                           per_volume={"EchoNumbers": [1 + v // 2 for v in range(nv)],
                                       "EchoTime": [f"{echo_times_ms[v // 2]:g}"
                                                    for v in range(nv)]}, **kwargs)
    z = shape[2]
    for n, path in enumerate(ts.paths):
        ds = pydicom.dcmread(path)
        _ge_private(ds, (n // z) % 2, "efgre3d")
        ds.save_as(path)
    return ts


def write_siemens_fieldmap(folder: str | Path, *, shape: tuple[int, int, int] = (16, 12, 6),
                           echo_times_ms: tuple[float, float] = (4.92, 7.38),
                           **kwargs: Any) -> tuple[TimeSeries, TimeSeries]:
    """The magnitude series (folder/magnitude) and the phase difference (folder/phasediff)."""
    te1, te2 = echo_times_ms
    protocol = ("### ASCCONV BEGIN ###\n"
                f"alTE[0]\t = {te1 * 1000:g}\nalTE[1]\t = {te2 * 1000:g}\nlContrasts\t = 2\n"
                "### ASCCONV END ###\n")
    series_csa = csa2({"MrPhoenixProtocol": ("UN", [protocol])})
    root = Path(folder)
    mag = write_time_series(root / "magnitude", shape=shape, n_volumes=2, manufacturer="SIEMENS",
                            series_description="gre_field_mapping",
                            per_volume={"EchoNumbers": [1, 2],
                                        "EchoTime": [f"{te1:g}", f"{te2:g}"]}, **kwargs)
    phase = write_time_series(root / "phasediff", shape=shape, n_volumes=1,
                              manufacturer="SIEMENS", series_description="gre_field_mapping",
                              **kwargs)
    for ts, image_type in ((mag, "M"), (phase, "P")):
        for path in ts.paths:
            ds = pydicom.dcmread(path)
            ds.ImageType = ["ORIGINAL", "PRIMARY", image_type, "ND"]
            if image_type == "P":
                ds.EchoNumbers, ds.EchoTime = 2, f"{te2:g}"
                ds.SeriesNumber = 2
            add_csa(ds, series=series_csa)
            ds.save_as(path)
    return mag, phase


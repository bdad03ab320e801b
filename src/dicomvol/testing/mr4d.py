"""Synthetic MR time series with known volume order: ASL, multi-phase ASL, DCE.

Each writer lays out ``n_volumes`` volumes of ``Z`` slices as single-frame
files numbered in acquisition order (InstanceNumber 1.. volume by volume, as
scanners number them), with only the attributes a real series of that kind
uses to tell its volumes apart:

* :func:`write_asl`: label and control images at every position of each
  temporal position; nothing but InstanceNumber (and, on Philips, private
  tags) tells a label from its control (classic Philips ASL).
* :func:`write_multiphase_asl`: temporal positions x trigger delays x
  label/control (Philips multi-phase ASL).
* :func:`write_dce`: a pre-contrast pass (AcquisitionNumber 1) and post-contrast
  passes that share AcquisitionNumber 2, told apart by AcquisitionTime and
  ContentTime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.testing.series import FloatArray, SyntheticSeries, write_series


@dataclass(frozen=True)
class TimeSeries:
    """Truth of a synthetic 4D series.

    Attributes
    ----------
    series : SyntheticSeries
        The files (``series.paths[n]`` is slice ``n % Z`` of volume ``n // Z``).
    n_slices : int
        Z.
    values : ndarray of float64, shape (X, Y, Z, T)
        Modality values in acquisition (time) order.
    sop_instance_uids : tuple of str
        In voxel order: k fastest, then t.
    """

    series: SyntheticSeries
    n_slices: int
    values: FloatArray
    sop_instance_uids: tuple[str, ...]

    @property
    def paths(self) -> tuple[Path, ...]:
        """Files in acquisition order (volume by volume, slices ascending)."""
        return self.series.paths


def write_time_series(folder: str | Path, *, shape: tuple[int, int, int], n_volumes: int,
                      per_volume: Mapping[str, Sequence[Any]] | None = None,
                      slice_spacing: float = 3.0, manufacturer: str = "Philips",
                      series_description: str = "synthetic 4D", seed: int = 0,
                      shuffle_seed: int | None = 5) -> TimeSeries:
    """Volumes of ``shape`` = (X, Y, Z), numbered in acquisition order.

    ``per_volume`` maps a DICOM keyword to one value per volume (None deletes
    it from that volume's files).
    """
    x, y, z = shape
    n = z * n_volumes
    normal = np.array([0.0, 0.0, 1.0])
    origin = np.array([-0.5 * x, -0.5 * y, -0.5 * z * slice_spacing])
    positions = [tuple(float(v) for v in origin + (i % z) * slice_spacing * normal)
                 for i in range(n)]
    per_slice = {key: [values[i // z] for i in range(n)]
                 for key, values in (per_volume or {}).items()}
    series = write_series(folder, shape=(x, y, n), positions=positions, modality="MR",
                          rescale=(1.0, 0.0), slice_spacing=slice_spacing,
                          instance_numbers=list(range(1, n + 1)), per_slice=per_slice,
                          extra={"Manufacturer": manufacturer, "RepetitionTime": "4000",
                                 "EchoTime": "12"},
                          series_description=series_description, seed=seed,
                          shuffle_seed=shuffle_seed)
    values = series.values.reshape(x, y, n_volumes, z).transpose(0, 1, 3, 2)
    return TimeSeries(series, z, np.ascontiguousarray(values), series.sop_instance_uids)


def write_asl(folder: str | Path, *, shape: tuple[int, int, int] = (96, 96, 40),
              n_temporal: int = 3, **kwargs: Any) -> TimeSeries:
    """Classic Philips ASL: label and control at each temporal position, by InstanceNumber only."""
    nv = 2 * n_temporal
    return write_time_series(
        folder, shape=shape, n_volumes=nv, series_description="pCASL label/control",
        per_volume={"TemporalPositionIdentifier": [1 + v // 2 for v in range(nv)],
                    "ImageType": [["ORIGINAL", "PRIMARY", "M", "FFE", "M"]] * nv},
        **kwargs)


def write_multiphase_asl(folder: str | Path, *, shape: tuple[int, int, int] = (16, 12, 5),
                         n_temporal: int = 3, trigger_delays: Sequence[float] = (
                             100.0, 400.0, 700.0, 1000.0), **kwargs: Any) -> TimeSeries:
    """Philips multi-phase ASL: temporal positions x trigger delays x label/control."""
    per_dynamic = 2 * len(trigger_delays)
    nv = n_temporal * per_dynamic
    return write_time_series(
        folder, shape=shape, n_volumes=nv, series_description="multiphase ASL",
        per_volume={"TemporalPositionIdentifier": [1 + v // per_dynamic for v in range(nv)],
                    "TriggerTime": [f"{trigger_delays[(v % per_dynamic) // 2]:g}"
                                    for v in range(nv)]},
        **kwargs)


def write_dce(folder: str | Path, *, shape: tuple[int, int, int] = (16, 12, 60),
              post_passes: int = 2, pass_seconds: int = 45, **kwargs: Any) -> TimeSeries:
    """DCE: pre-contrast AcquisitionNumber 1, ``post_passes`` passes sharing AcquisitionNumber 2."""
    nv = 1 + post_passes
    times = [_tm(12 * 3600 + 30 * 60 + v * pass_seconds) for v in range(nv)]
    return write_time_series(
        folder, shape=shape, n_volumes=nv, series_description="DCE", manufacturer="SIEMENS",
        per_volume={"AcquisitionNumber": [1] + [2] * post_passes, "AcquisitionTime": times,
                    "ContentTime": times}, **kwargs)


def _tm(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}.000000"

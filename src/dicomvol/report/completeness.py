"""Completeness against the IDC index: what was listed (or found on disk) vs what IDC holds.

For every IDC series a run touches, the objects listed under its bucket folder
(or, for a local folder checked with ``--idc-check``, the files whose headers
name the series) are counted and summed and compared with the index's
``instanceCount`` and ``series_size_MB``. A selected series that is not
complete makes the run fail (exit 1). Series the index shows cannot become
volumes are listed with the index's reason, never fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomvol.constants import IDC_SIZE_TOLERANCE_BYTES
from dicomvol.inputs.idc import IdcSeries


@dataclass(frozen=True)
class SeriesCompleteness:
    """One IDC series: the index's counts against what is there.

    Attributes
    ----------
    series : IdcSeries
        The index row.
    listed_objects : int
        Objects listed under the series' folder (or files found for it locally).
    listed_bytes : int
        Their total size.
    idc_version : str
        The index release compared with (e.g. ``"v25"``).
    source : str
        The bucket folder or local folder looked at.
    """

    series: IdcSeries
    listed_objects: int
    listed_bytes: int
    idc_version: str
    source: str

    @property
    def complete(self) -> bool:
        """Every object there, and the bytes agree within the index's rounding."""
        return (self.listed_objects == self.series.instance_count and
                abs(self.listed_bytes - self.series.size_bytes) <= IDC_SIZE_TOLERANCE_BYTES)

    def to_row(self) -> dict[str, Any]:
        """The tabular report's IDC columns."""
        s = self.series
        return {"crdc_series_uuid": s.crdc_series_uuid, "idc_instance_count": s.instance_count,
                "idc_bytes": s.size_bytes, "listed_objects": self.listed_objects,
                "listed_bytes": self.listed_bytes, "complete": self.complete,
                "idc_version": self.idc_version, "license_short_name": s.license_short_name}

    def to_json(self) -> dict[str, Any]:
        """The report's ``idc.series`` entry."""
        s = self.series
        return {"SeriesInstanceUID": s.series_instance_uid, "PatientID": s.patient_id,
                "collection_id": s.collection_id, "Modality": s.modality,
                "source": self.source, **self.to_row()}


@dataclass(frozen=True)
class SkippedSeries:
    """A selected series not fetched: the index shows it cannot become a volume."""

    series: IdcSeries
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The report's ``idc.skipped_series`` entry."""
        s = self.series
        return {"SeriesInstanceUID": s.series_instance_uid, "Modality": s.modality,
                "crdc_series_uuid": s.crdc_series_uuid, "idc_instance_count": s.instance_count,
                "idc_bytes": s.size_bytes, "Reason": self.reason}


def check(series: IdcSeries, listed: list[tuple[str, int]], idc_version: str,
          source: str) -> SeriesCompleteness:
    """Compare a series with the objects (``(name, size)``) found for it."""
    return SeriesCompleteness(series, len(listed), sum(n for _, n in listed), idc_version,
                              source)

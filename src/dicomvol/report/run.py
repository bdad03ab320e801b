"""The run report: every input file and frame accounted for."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomvol._version import __version__
from dicomvol.constants import REPORT_NAME
from dicomvol.inputs.names import printable
from dicomvol.io.atomic import atomic_path
from dicomvol.io.jsonio import write_json_atomic
from dicomvol.model.detail import GeometryChecks, checks_json
from dicomvol.model.records import FileError, IgnoredFile, SkippedFrame
from dicomvol.report.ledger import FrameKey, Ledger, LedgerSummary

if TYPE_CHECKING:  # annotations only: the IDC modules load where a run uses them
    from dicomvol.report.completeness import SeriesCompleteness, SkippedSeries


@dataclass
class OutputRecord:
    """One image written, with what a reader of the report wants to know."""

    path: str
    sidecar: str
    series_instance_uid: str
    label: str
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    n_frames: int
    warnings: tuple[str, ...]
    sheared: bool
    resampled: bool = False
    checks: GeometryChecks | None = None
    status: str = "written"
    #: The frames the output's ``SourceInstances`` name, as ledger keys (not in the JSON).
    sources: tuple[FrameKey, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the report's ``volumes`` list."""
        return {"Path": self.path, "Sidecar": self.sidecar,
                "SeriesInstanceUID": self.series_instance_uid, "Label": self.label,
                "Shape": list(self.shape), "Spacing": [round(s, 6) for s in self.spacing],
                "Frames": self.n_frames, "Sheared": self.sheared, "Resampled": self.resampled,
                "Status": self.status, "Geometry": checks_json(self.checks),
                "Warnings": list(self.warnings)}

    def to_row(self) -> dict[str, Any]:
        """A flat row for the Parquet/CSV report (one per output)."""
        row: dict[str, Any] = {
            "series_instance_uid": self.series_instance_uid, "path": self.path,
            "sidecar": self.sidecar, "label": self.label, "status": self.status,
            "shape": "x".join(str(v) for v in self.shape),
            "spacing_mm": "x".join(f"{v:.6g}" for v in self.spacing),
            "frames": self.n_frames, "sheared": self.sheared, "resampled": self.resampled,
            "warnings": " | ".join(self.warnings),
        }
        for key, value in checks_json(self.checks).items():
            row[key] = value
        return row


@dataclass
class RunReport:
    """What a conversion did. ``ok`` is False when any file or series failed."""

    out_dir: str
    outputs: list[OutputRecord] = field(default_factory=list)
    skipped: list[SkippedFrame] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    n_files: int = 0
    #: IDC series checked against the index (``idc_version`` is the index release).
    completeness: list[SeriesCompleteness] = field(default_factory=list)
    skipped_series: list[SkippedSeries] = field(default_factory=list)
    idc_version: str | None = None
    #: Where the geometry checks disagree with IDC's volume_geometry_index.
    geometry_differences: list[dict[str, Any]] = field(default_factory=list)
    #: Series converted again under --resume because IDC revised them.
    revised: list[dict[str, Any]] = field(default_factory=list)
    #: How the frames ended (set by :meth:`settle`; None before, or for a report built by hand).
    ledger: LedgerSummary | None = None

    @property
    def ok(self) -> bool:
        """True when no file or series failed and every IDC series is complete."""
        return not self.errors and all(c.complete for c in self.completeness)

    @property
    def n_skipped_frames(self) -> int:
        """Input frames in ``skipped`` (an entry with Frame None stands for its instance's)."""
        return sum(s.n_frames for s in self.skipped)

    def settle(self, ledger: Ledger) -> LedgerSummary:
        """Check every frame of ``ledger`` against this report (see :mod:`.ledger`).

        A frame in no output, not skipped and not in a file with an error is
        added to ``errors`` (so ``ok`` turns False); the summary is kept in
        :attr:`ledger`.
        """
        summary, lost = ledger.settle((o.sources for o in self.outputs),
                                      ((s.path, s.sop_instance_uid, s.frame)
                                       for s in self.skipped),
                                      (e.path for e in self.errors))
        self.errors.extend(lost)
        self.ledger = summary
        return summary

    def to_json(self) -> dict[str, Any]:
        """The contract's report object, plus ``volumes``, ``ignored``, ``summary`` and
        ``ledger`` (once settled)."""
        out: dict[str, Any] = {
            "dicomvol_version": __version__,
            "outputs": [o.path for o in self.outputs],
            "skipped": [s.to_json() for s in self.skipped],
            "errors": [{"File": e.rel, "Error": e.error} for e in self.errors],
            "ignored": [{"File": i.rel, "Reason": i.reason} for i in self.ignored],
            "volumes": [o.to_json() for o in self.outputs],
            **self._idc_json(),
            "summary": {
                "files": self.n_files,
                "outputs": len(self.outputs),
                "frames_written": sum(o.n_frames for o in self.outputs),
                "frames_skipped": self.n_skipped_frames,
                "files_with_errors": len(self.errors),
                "files_ignored": len(self.ignored),
            },
        }
        if self.ledger is not None:
            out["ledger"] = self.ledger.to_json()
        return out

    def _idc_json(self) -> dict[str, Any]:
        """The ``idc`` section: the index release, each series' completeness, skips."""
        if self.idc_version is None and not self.completeness and not self.skipped_series:
            return {}
        return {"idc": {"idc_version": self.idc_version,
                        "complete": all(c.complete for c in self.completeness),
                        "series": [c.to_json() for c in self.completeness],
                        "skipped_series": [s.to_json() for s in self.skipped_series],
                        "geometry_differences": list(self.geometry_differences),
                        "revised": list(self.revised)}}

    def write(self) -> Path:
        """Write ``dicomvol_report.json`` and the tabular report atomically."""
        path = Path(self.out_dir) / REPORT_NAME
        write_json_atomic(path, self.to_json())
        self.write_table()
        return path

    def write_table(self) -> Path:
        """One row per output: ``dicomvol_report.parquet`` (pyarrow installed) or ``.csv``.

        The Parquet file is written by :mod:`dicomvol.report.parquet`, without importing
        pyarrow (its import would cost every run ~0.4 s and ~40 MiB); where pyarrow, the
        usual reader, is not installed, the table is CSV.
        """
        idc = {c.series.series_instance_uid: c.to_row() for c in self.completeness}
        rows = [{**o.to_row(), **idc.get(o.series_instance_uid, {})} for o in self.outputs]
        columns = list(dict.fromkeys(k for r in rows for k in r)) or ["path"]
        base = Path(self.out_dir) / REPORT_NAME.replace(".json", "")
        if not _have_pyarrow():  # one of the two writers is imported, where it is used
            import csv

            path = base.with_suffix(".csv")
            with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fp:
                writer = csv.DictWriter(fp, fieldnames=columns)
                writer.writeheader()
                writer.writerows({k: printable(v) if isinstance(v, str) else v
                                 for k, v in r.items()} for r in rows)
            return path
        from dicomvol.report.parquet import write_parquet

        path = base.with_suffix(".parquet")
        write_parquet(path, {c: [r.get(c) for r in rows] for c in columns}, len(rows))
        return path


def _have_pyarrow() -> bool:
    """Whether pyarrow can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        return False

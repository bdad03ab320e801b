"""Straight from the archive: IDC selections, bucket inputs and completeness against the index.

:func:`select` turns ``--idc`` IDs and ``--idc-query`` SQL into bucket URLs
(resolved on the shipped index, no bucket access), setting aside the series
the index shows cannot become volumes. After the scan, :func:`check_run`
compares every IDC series the run touched with the index: bucket folders from
the scan's own listings (no second LIST), local folders (``--idc-check``) from
the files in folders that ``idc download`` or s5cmd made
(``.../Modality_SeriesInstanceUID/`` or ``.../crdc_series_uuid/``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dicomvol.constants import (
    IDC_GEOMETRY_OBLIQUITY_TOLERANCE_DEGREES,
    IDC_GEOMETRY_SPACING_TOLERANCE_MM,
)
from dicomvol.inputs import fs

if TYPE_CHECKING:  # pragma: no cover - the index's modules load where a run uses the index
    from dicomvol.inputs.idc import IdcSeries
    from dicomvol.model.detail import GeometryChecks
    from dicomvol.report.completeness import SeriesCompleteness, SkippedSeries
    from dicomvol.report.run import RunReport

log = logging.getLogger(__name__)

#: ``idc download`` names a series folder ``<Modality>_<SeriesInstanceUID>``.
_IDC_FOLDER = re.compile(r"^[A-Za-z]+_(\d+(?:\.\d+)+)$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Archive:
    """What a run takes from the archive.

    Attributes
    ----------
    inputs : list of str
        Paths and URLs to scan (the user's, then the selected series' folders).
    selected : list of IdcSeries
        Series chosen by ``--idc``/``--idc-query`` that will be fetched.
    skipped : list of SkippedSeries
        Selected series not fetched, with the index's reason.
    local_check : bool
        ``--idc-check``: compare local folders with the index too.
    """

    inputs: list[str] = field(default_factory=list)
    selected: list[IdcSeries] = field(default_factory=list)
    skipped: list[SkippedSeries] = field(default_factory=list)
    local_check: bool = False

    @property
    def uses_index(self) -> bool:
        """True when the run compares anything with the IDC index."""
        return bool(self.selected or self.skipped or self.local_check
                    or any(fs.is_url(i) for i in self.inputs))


def select(inputs: Sequence[str], ids: Sequence[str] = (), sql: str | None = None,
           scheme: str = "s3", local_check: bool = False) -> Archive:
    """The inputs plus the IDC series the IDs and the query select (no bucket access).

    Raises
    ------
    UsageError
        An ID is not in the index, the query fails, or the index is not installed.
    """
    archive = Archive(inputs=[str(i) for i in inputs], local_check=local_check)
    if not (ids or sql):
        return archive
    from dicomvol.inputs import idc
    from dicomvol.report.completeness import SkippedSeries

    chosen: dict[str, IdcSeries] = {}
    if ids:
        chosen.update((s.series_instance_uid, s) for s in idc.resolve(ids))
    if sql:
        chosen.update((s.series_instance_uid, s) for s in idc.query(sql))
    for series in chosen.values():
        reason = series.skip_reason
        if reason is not None:
            archive.skipped.append(SkippedSeries(series, reason))
        else:
            archive.selected.append(series)
            archive.inputs.append(series.url(scheme))
    return archive


def dry_run(archive: Archive) -> list[dict[str, object]]:
    """What a run would fetch: one row per series folder or input, with bytes (no GET).

    Selected series come from the index; other URL inputs are listed (one LIST
    each); local inputs are summed on disk.
    """
    from dicomvol.inputs import idc

    rows: list[dict[str, object]] = []
    urls = {s.url("s3"): s for s in archive.selected} | {s.url("gs"): s for s in archive.selected}
    for entry in archive.inputs:
        series = urls.get(entry)
        if series is not None:
            rows.append({"input": entry, "SeriesInstanceUID": series.series_instance_uid,
                         "Modality": series.modality, "objects": series.instance_count,
                         "bytes": series.size_bytes, "from": f"IDC index {idc.data_version()}"})
        elif fs.is_url(entry):
            listed = [(n, b) for n, b in fs.list_objects(entry) if n.lower().endswith(".dcm")]
            rows.append({"input": entry, "objects": len(listed),
                         "bytes": sum(b for _, b in listed), "from": "listing"})
        else:
            files = [p for p in Path(entry).rglob("*") if p.is_file()] if Path(entry).is_dir() \
                else [Path(entry)]
            rows.append({"input": entry, "objects": len(files),
                         "bytes": sum(p.stat().st_size for p in files), "from": "local"})
    return rows


def check_run(archive: Archive) -> tuple[list[SeriesCompleteness], str | None]:
    """Completeness of every IDC series the scan listed (and, with ``--idc-check``, found).

    Returns the comparisons and the index release (None when the index is not
    installed and nothing was selected through it).
    """
    if not (archive.uses_index or fs.listings()):
        return [], None
    from dicomvol.inputs import idc
    from dicomvol.report.completeness import check

    if not idc.available():
        return [], None
    version = idc.data_version()
    groups: dict[str, tuple[str, list[tuple[str, int]]]] = {}
    for prefix, objects in fs.listings().items():
        for name, nbytes in objects:
            uuid = idc.series_uuid_of(name)
            if uuid is not None and name.lower().endswith(".dcm"):
                folder = name.rsplit("/", 1)[0] + "/"
                groups.setdefault(uuid, (folder, []))[1].append((name, nbytes))
        uuid = idc.series_uuid_of(prefix + "/x")
        if uuid is not None:
            groups.setdefault(uuid, (prefix + "/", []))
    for series in archive.selected:  # a selected folder with nothing in it is incomplete
        groups.setdefault(series.crdc_series_uuid, (series.s3_url, []))
    by_uuid = idc.by_column("crdc_series_uuid", groups)
    found = [check(by_uuid[u], objs, version, folder) for u, (folder, objs) in groups.items()
             if u in by_uuid]
    if archive.local_check:
        found.extend(_local(archive.inputs, version))
    found.sort(key=lambda c: c.series.series_instance_uid)
    return found, version


def start_report(archive: Archive, report: RunReport, checks: dict[str, GeometryChecks | None],
                 out: Path, resume: bool) -> dict[str, str]:
    """Fill a run's ``idc`` section before its jobs run; the series a resume must redo.

    Series skipped before fetching, completeness against the index, geometry
    differences from ``volume_geometry_index``; with ``resume``, the series
    whose outputs came from an earlier IDC version (see :func:`revised_sources`).
    """
    report.skipped_series = list(archive.skipped)
    report.completeness, report.idc_version = check_run(archive)
    if report.idc_version is not None:
        report.geometry_differences = geometry_differences(checks)
    return revised_sources(out, report.completeness) if resume else {}


def geometry_differences(checks: dict[str, GeometryChecks | None]
                         ) -> list[dict[str, object]]:
    """Where dicomvol's per-series checks disagree with IDC's ``volume_geometry_index``.

    Both measure each instance against its own orientation (IDC's definition).
    One entry per differing column: ``{SeriesInstanceUID, check, dicomvol, idc}``;
    empty when the table is not installed.
    """
    from dicomvol.inputs import idc

    rows = idc.geometry_rows(uid for uid, c in checks.items() if c is not None)
    out: list[dict[str, object]] = []
    for uid, row in sorted(rows.items()):
        ours = checks[uid]
        assert ours is not None
        for name in idc.GEOMETRY_COLUMNS:
            mine, theirs = getattr(ours, name), row[name]
            if theirs is None or _agrees(name, mine, theirs):
                continue
            out.append({"SeriesInstanceUID": uid, "check": name, "dicomvol": mine,
                        "idc": theirs})
    return out


def _agrees(name: str, mine: object, theirs: object) -> bool:
    if name == "slice_spacing_mm":
        return mine is not None and abs(float(str(mine)) - float(str(theirs))) <= \
            IDC_GEOMETRY_SPACING_TOLERANCE_MM
    if name == "obliquity_degrees":
        return abs(float(str(mine)) - float(str(theirs))) <= \
            IDC_GEOMETRY_OBLIQUITY_TOLERANCE_DEGREES
    return bool(mine) == bool(theirs)


def revised_sources(out: Path, completeness: Sequence[SeriesCompleteness]
                    ) -> dict[str, str]:
    """Series whose outputs in ``out`` came from another crdc_series_uuid than the index's now.

    IDC gives a revised series a new folder (its objects new names), so a
    sidecar whose ``SourceInstances`` name another series folder was made from
    an earlier version: ``--resume`` converts the series again and the report
    says ``revised``. Returns SeriesInstanceUID -> the earlier crdc_series_uuid.
    """
    current = {c.series.series_instance_uid: c.series.crdc_series_uuid for c in completeness}
    found: dict[str, str] = {}
    if not current or not out.is_dir():
        return found
    from dicomvol.inputs import idc

    for sidecar in out.glob("*.json"):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        uid = meta.get("SeriesInstanceUID") if isinstance(meta, dict) else None
        if uid not in current:
            continue
        for source in meta.get("SourceInstances") or ():
            before = idc.series_uuid_of(str(source.get("File", "")))
            if before is not None and before != current[uid]:
                found[uid] = before
                break
    return found


def mark_revised(report: RunReport, revised: dict[str, str]) -> None:
    """Outputs written again because their series was revised get the status ``revised``.

    The report's ``idc.revised`` names each such series, its earlier folder and
    whether ``prior_versions_index`` lists that folder as an earlier version.
    """
    for o in report.outputs:
        if o.series_instance_uid in revised and o.status == "written":
            o.status = "revised"
    earlier: dict[str, list[str]] = {}
    if revised:
        from dicomvol.inputs import idc

        earlier = idc.revisions(revised)
    report.revised = [{"SeriesInstanceUID": uid, "previous_crdc_series_uuid": before,
                       "in_prior_versions_index": before in earlier.get(uid, [])}
                      for uid, before in sorted(revised.items())]


def _local(inputs: Sequence[str], version: str) -> list[SeriesCompleteness]:
    """Series folders under local inputs named as ``idc download`` or s5cmd name them."""
    from dicomvol.inputs import idc
    from dicomvol.report.completeness import check

    by_uid: dict[str, str] = {}
    by_uuid: dict[str, str] = {}
    for entry in inputs:
        if fs.is_url(entry) or not Path(entry).is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(entry):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            name = os.path.basename(dirpath.rstrip(os.sep))
            match = _IDC_FOLDER.match(name)
            if match:
                by_uid[match.group(1)] = dirpath
            elif _UUID.match(name):
                by_uuid[name] = dirpath
    rows = idc.by_column("SeriesInstanceUID", by_uid)
    out = [check(rows[uid], _files(folder), version, folder)
           for uid, folder in by_uid.items() if uid in rows]
    uuids = idc.by_column("crdc_series_uuid", by_uuid)
    out.extend(check(uuids[u], _files(folder), version, folder)
               for u, folder in by_uuid.items() if u in uuids)
    return out


def _files(folder: str) -> list[tuple[str, int]]:
    return [(str(p), p.stat().st_size) for p in sorted(Path(folder).iterdir())
            if p.is_file() and not p.name.startswith(".")]

"""NCI Imaging Data Commons: selections resolved on the ``idc-index-data`` parquet files.

``pip install dicomvol[cloud]`` installs ``idc-index-data`` (the index, offline)
and duckdb, which queries the parquet directly (no ``IDCClient``: it takes
seconds and gigabytes to start and needs s5cmd). An ID is a
SeriesInstanceUID, StudyInstanceUID, PatientID, collection_id or
crdc_series_uuid; a query is SQL over the tables ``index`` (``idc_index``)
and ``prior_versions_index``. Objects live at
``s3://<aws_bucket>/<crdc_series_uuid>/<crdc_instance_uuid>.dcm`` (the index
holds no instance UUIDs: a series is listed, never guessed object by object).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dicomvol.errors import UsageError

#: The columns a selection reads from ``idc_index``.
COLUMNS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "collection_id", "Modality",
           "SOPClassUID", "crdc_series_uuid", "instanceCount", "series_size_MB",
           "license_short_name", "aws_bucket", "series_aws_url", "series_revised_idc_version")
#: The id columns ``--idc ID`` matches, in this order.
ID_COLUMNS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "collection_id",
              "crdc_series_uuid")
#: IDC's GCS bucket for each AWS bucket (the same objects under the same keys).
GCS_BUCKETS = {"idc-open-data": "idc-open-data", "idc-open-data-two": "idc-open-idc1",
               "idc-open-data-cr": "idc-open-cr"}
#: Modalities no dicomvol converter turns into a volume (skipped before any fetch).
NOT_VOLUMES = {
    "SR": "structured report (no pixel data)", "KO": "key object selection (no pixel data)",
    "PR": "presentation state (no pixel data)", "REG": "registration (no pixel data)",
    "RWV": "real world value mapping (no pixel data)", "DOC": "document (no pixel data)",
    "RTPLAN": "RT plan (no pixel data)", "RTRECORD": "RT treatment record (no pixel data)",
    "ANN": "microscopy bulk annotations (no pixel data)",
    "PLAN": "plan (no pixel data)", "RAW": "raw data (not an image)",
    "SM": "slide microscopy (no slide converter yet)",
    "ECG": "waveform (not an image)", "HD": "waveform (not an image)",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class IdcSeries:
    """One series as the IDC index describes it.

    Attributes
    ----------
    series_instance_uid, study_instance_uid, patient_id, collection_id, modality : str
    crdc_series_uuid : str
        The series' folder in the bucket (changes when IDC revises the series).
    instance_count : int
        Objects the series holds.
    size_bytes : int
        Its total size (``series_size_MB`` × 10⁶, as the index rounds it).
    license_short_name, aws_bucket : str
    revised_version : int or None
        The IDC data version that last revised the series.
    """

    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    collection_id: str
    modality: str
    crdc_series_uuid: str
    instance_count: int
    size_bytes: int
    license_short_name: str
    aws_bucket: str
    revised_version: int | None = None
    sop_class_uid: str = ""

    @property
    def s3_url(self) -> str:
        """The series' folder in the AWS bucket, ``s3://bucket/uuid/``."""
        return f"s3://{self.aws_bucket}/{self.crdc_series_uuid}/"

    @property
    def gcs_url(self) -> str:
        """The same folder in IDC's Google Cloud bucket."""
        return f"gs://{GCS_BUCKETS.get(self.aws_bucket, self.aws_bucket)}/{self.crdc_series_uuid}/"

    def url(self, scheme: str = "s3") -> str:
        """:attr:`s3_url` or :attr:`gcs_url`."""
        return self.gcs_url if scheme in ("gs", "gcs") else self.s3_url

    @property
    def skip_reason(self) -> str | None:
        """Why the index shows this series cannot become a volume (None: it can)."""
        reason = NOT_VOLUMES.get(self.modality)
        return f"{self.modality}: {reason}" if reason else None


def available() -> bool:
    """True when ``idc-index-data`` and duckdb are installed."""
    try:
        import duckdb  # noqa: F401
        import idc_index_data  # noqa: F401
    except ImportError:
        return False
    return True


def _package() -> Any:
    try:
        import idc_index_data
    except ImportError as exc:
        raise UsageError("IDC selections need the index: pip install dicomvol[cloud] "
                         "(idc-index-data and duckdb)") from exc
    return idc_index_data


def index_path() -> str:
    """The ``idc_index`` parquet file ``idc-index-data`` ships (``$DICOMVOL_IDC_INDEX`` wins)."""
    return os.environ.get("DICOMVOL_IDC_INDEX") or str(_package().IDC_INDEX_PARQUET_FILEPATH)


def _table_path(name: str) -> str | None:
    """Another shipped table (``prior_versions_index``, ...), None when not shipped."""
    path = os.path.join(os.path.dirname(index_path()), f"{name}.parquet")
    return path if os.path.isfile(path) else None


@lru_cache(maxsize=4)
def _data_version(path: str) -> str:
    versions = _table_path("version_metadata_index")
    if versions is not None:
        rows = _connect().execute(
            f"SELECT max(idc_version) FROM read_parquet('{_quote(versions)}')").fetchall()
        if rows and rows[0][0] is not None:
            return f"v{rows[0][0]}"
    version = str(getattr(_package(), "__version__", "")).split(".")[0]
    return f"v{version}" if version else "unknown"


def data_version() -> str:
    """The IDC data release the installed index describes, e.g. ``"v25"``."""
    return _data_version(index_path())


def _connect() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise UsageError("IDC selections need duckdb: pip install dicomvol[cloud]") from exc
    return duckdb.connect()


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _session() -> Any:
    """A duckdb connection with the views ``index`` and ``prior_versions_index``."""
    con = _connect()
    con.execute(f"CREATE VIEW idc_index AS SELECT * FROM read_parquet('{_quote(index_path())}')")
    con.execute('CREATE VIEW "index" AS SELECT * FROM idc_index')
    prior = _table_path("prior_versions_index")
    if prior is not None:
        con.execute("CREATE VIEW prior_versions_index AS SELECT * FROM "
                    f"read_parquet('{_quote(prior)}')")
    return con


def _rows(con: Any, where: str, params: Sequence[Any]) -> list[IdcSeries]:
    cols = ", ".join(COLUMNS)
    cursor = con.execute(f"SELECT {cols} FROM idc_index WHERE {where} "
                         "ORDER BY PatientID, StudyInstanceUID, SeriesInstanceUID", list(params))
    return [_series(dict(zip(COLUMNS, row, strict=True))) for row in cursor.fetchall()]


def _series(row: dict[str, Any]) -> IdcSeries:
    return IdcSeries(
        series_instance_uid=str(row["SeriesInstanceUID"]),
        study_instance_uid=str(row["StudyInstanceUID"] or ""),
        patient_id=str(row["PatientID"] or ""), collection_id=str(row["collection_id"] or ""),
        modality=str(row["Modality"] or ""), crdc_series_uuid=str(row["crdc_series_uuid"]),
        instance_count=int(row["instanceCount"] or 0),
        size_bytes=round(float(row["series_size_MB"] or 0.0) * 1e6),
        license_short_name=str(row["license_short_name"] or ""),
        aws_bucket=str(row["aws_bucket"] or ""),
        revised_version=(None if row["series_revised_idc_version"] is None
                         else int(row["series_revised_idc_version"])),
        sop_class_uid=str(row["SOPClassUID"] or ""))


def resolve(ids: Iterable[str]) -> list[IdcSeries]:
    """The series the IDs select (each ID may be any of :data:`ID_COLUMNS`).

    Raises
    ------
    UsageError
        An ID matches nothing in the index (names it), or the index is not installed.
    """
    wanted = [i.strip() for i in ids if i.strip()]
    if not wanted:
        raise UsageError("--idc: no IDs given")
    con = _session()
    found: dict[str, IdcSeries] = {}
    for ident in wanted:
        column = "crdc_series_uuid" if _UUID.match(ident) else None
        columns = (column,) if column else ID_COLUMNS
        where = " OR ".join(f"{c} = ?" for c in columns)
        rows = _rows(con, where, [ident] * len(columns))
        if not rows:
            raise UsageError(f"--idc {ident}: not in the IDC index {data_version()} "
                             "(expected a SeriesInstanceUID, StudyInstanceUID, PatientID, "
                             "collection_id or crdc_series_uuid)")
        for s in rows:
            found.setdefault(s.series_instance_uid, s)
    return list(found.values())


def query(sql: str) -> list[IdcSeries]:
    """The series a SQL query over ``index`` selects (it must return SeriesInstanceUID).

    Raises
    ------
    UsageError
        The query fails or returns no SeriesInstanceUID column.
    """
    con = _session()
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except Exception as exc:  # duckdb raises its own error classes for bad SQL
        raise UsageError(f"--idc-query failed: {exc}") from exc
    lowered = [n.lower() for n in names]
    for column in ("seriesinstanceuid", "crdc_series_uuid"):
        if column in lowered:
            at = lowered.index(column)
            values = sorted({str(r[at]) for r in rows if r[at]})
            if not values:
                return []
            name = names[lowered.index(column)]
            marks = ", ".join("?" for _ in values)
            return _rows(con, f"{name} IN ({marks})", values)
    raise UsageError("--idc-query must return a SeriesInstanceUID or crdc_series_uuid column")


def by_column(column: str, values: Iterable[str]) -> dict[str, IdcSeries]:
    """Index rows whose ``column`` (SeriesInstanceUID or crdc_series_uuid) is in ``values``."""
    if column not in ("SeriesInstanceUID", "crdc_series_uuid"):
        raise ValueError(column)
    wanted = sorted(set(values))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = _rows(_session(), f"{column} IN ({marks})", wanted)
    key = "series_instance_uid" if column == "SeriesInstanceUID" else "crdc_series_uuid"
    return {getattr(s, key): s for s in rows}


def revisions(series_uids: Iterable[str]) -> dict[str, list[str]]:
    """The crdc_series_uuids each series had in earlier IDC versions (``prior_versions_index``)."""
    prior = _table_path("prior_versions_index")
    wanted = sorted(set(series_uids))
    if prior is None or not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = _connect().execute(
        f"SELECT SeriesInstanceUID, crdc_series_uuid FROM read_parquet('{_quote(prior)}') "
        f"WHERE SeriesInstanceUID IN ({marks})", wanted).fetchall()
    out: dict[str, list[str]] = {}
    for uid, uuid in rows:
        out.setdefault(str(uid), []).append(str(uuid))
    return out


def series_uuid_of(url: str) -> str | None:
    """The crdc_series_uuid a bucket URL's first folder names (None when it is no UUID)."""
    key = url.split("://", 1)[-1]
    parts = [p for p in key.split("/") if p]
    if len(parts) >= 2 and _UUID.match(parts[1]):
        return parts[1]
    return None


#: Columns of ``volume_geometry_index`` compared with dicomvol's checks.
GEOMETRY_COLUMNS = ("single_orientation", "orthogonal_orientation", "unique_slice_positions",
                    "consistent_in_plane_row", "consistent_in_plane_col",
                    "consistent_pixel_spacing", "consistent_image_dimensions",
                    "uniform_slice_spacing", "regularly_spaced_3d_volume",
                    "obliquity_degrees", "slice_spacing_mm")


def geometry_rows(series_uids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """IDC's ``volume_geometry_index`` rows by SeriesInstanceUID (empty when not installed).

    ``idc-index-data`` ships this table's schema; the parquet itself is looked
    for next to ``idc_index.parquet``.
    """
    table = _table_path("volume_geometry_index") if available() else None
    wanted = sorted(set(series_uids))
    if table is None or not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    cols = ", ".join(GEOMETRY_COLUMNS)
    rows = _connect().execute(
        f"SELECT SeriesInstanceUID, {cols} FROM read_parquet('{_quote(table)}') "
        f"WHERE SeriesInstanceUID IN ({marks})", wanted).fetchall()
    return {str(r[0]): dict(zip(GEOMETRY_COLUMNS, r[1:], strict=True)) for r in rows}

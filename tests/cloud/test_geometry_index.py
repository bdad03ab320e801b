"""dicomvol's geometry checks against IDC's volume_geometry_index.

``idc-index-data`` ships this table's schema (``volume_geometry_index.sql``)
but not its parquet, so the test builds the LUNG1-001 CT's row the way IDC
defines it, once as IDC would publish it and once with a check flipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomvol.api import scan
from dicomvol.batch.archive import geometry_differences
from dicomvol.inputs import idc

pytestmark = pytest.mark.corpus
LUNG1_CT_UID = "1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046"


def _index_with_geometry(folder: Path, row: dict[str, object]) -> Path:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    duckdb.execute(f"COPY (SELECT * FROM read_parquet('{idc.index_path()}') "
                   f"WHERE PatientID = 'LUNG1-001') TO '{folder / 'idc_index.parquet'}' "
                   "(FORMAT parquet)")
    pq.write_table(pa.table({k: [v] for k, v in row.items()}),
                   folder / "volume_geometry_index.parquet")
    return folder / "idc_index.parquet"


def test_geometry_checks_are_compared_with_idc_rows(
        tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = scan([corpus / "ct_lung1" / "image"])
    ours = result.series_checks[LUNG1_CT_UID]
    assert ours is not None
    row: dict[str, object] = {"SeriesInstanceUID": LUNG1_CT_UID, "single_orientation": True,
                              "orthogonal_orientation": True, "unique_slice_positions": True,
                              "consistent_in_plane_row": True, "consistent_in_plane_col": True,
                              "consistent_pixel_spacing": True,
                              "consistent_image_dimensions": True,
                              "uniform_slice_spacing": True, "obliquity_degrees": 0.0,
                              "regularly_spaced_3d_volume": True, "slice_spacing_mm": 3.0004}
    monkeypatch.setenv("DICOMVOL_IDC_INDEX", str(_index_with_geometry(tmp_path / "same", row)))
    assert geometry_differences(result.series_checks) == []  # spacing within tolerance

    flipped = {**row, "uniform_slice_spacing": False, "regularly_spaced_3d_volume": False,
               "slice_spacing_mm": 2.5}
    monkeypatch.setenv("DICOMVOL_IDC_INDEX",
                       str(_index_with_geometry(tmp_path / "flipped", flipped)))
    found = geometry_differences(result.series_checks)
    assert {d["check"] for d in found} == {"uniform_slice_spacing",
                                           "regularly_spaced_3d_volume", "slice_spacing_mm"}
    assert all(d["SeriesInstanceUID"] == LUNG1_CT_UID for d in found)
    spacing = next(d for d in found if d["check"] == "slice_spacing_mm")
    assert spacing["idc"] == 2.5 and abs(float(str(spacing["dicomvol"])) - 3.0) < 1e-3


def test_without_the_table_nothing_is_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    (tmp_path / "plain").mkdir()
    index = tmp_path / "plain" / "idc_index.parquet"
    duckdb.execute(f"COPY (SELECT * FROM read_parquet('{idc.index_path()}') "
                   f"WHERE PatientID = 'LUNG1-001') TO '{index}' (FORMAT parquet)")
    monkeypatch.setenv("DICOMVOL_IDC_INDEX", str(index))
    assert idc.geometry_rows([LUNG1_CT_UID]) == {}

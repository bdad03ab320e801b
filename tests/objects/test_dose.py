"""RT Dose grids and parametric maps written as volumes with their units.

Synthetic objects (``dicomvol.testing.write_rtdose``, ``write_parametric_map``)
with known values; the written NIfTI is read back with nibabel and its voxels
placed through its own affine are compared with the values the test wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import dicomvol
from dicomvol.options import ConvertOptions
from dicomvol.testing import write_parametric_map, write_rtdose, write_series
from exactness import check_exact
from labelcheck import FLIP

#: float32 storage of the scaled dose (NIfTI scl_slope is float32).
DOSE_RTOL = 1e-6


def convert(inputs: list[Path], out: Path) -> dict[str, Any]:
    dicomvol.convert([str(p) for p in inputs], out, ConvertOptions(jobs=1, compress=False))
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return report


@pytest.mark.parametrize("absolute", [False, True])
def test_rtdose_is_a_volume_in_gy(tmp_path: Path, absolute: bool) -> None:
    series = write_series(tmp_path / "ct", shape=(8, 8, 4), modality="CT")
    rng = np.random.default_rng(1)
    dose = rng.uniform(0, 70, (12, 10, 7))
    origin = (-30.0, -40.0, 25.0)
    spacing = (2.5, 3.0, 4.0)
    write_rtdose(tmp_path / "dose" / "dose.dcm", series, dose, origin, spacing,
                 absolute_offsets=absolute, scaling=1e-4)
    report = convert([tmp_path / "dose"], tmp_path / "out")
    assert report["errors"] == [] and report["skipped"] == []
    (name,) = report["outputs"]
    img: Any = nib.load(str(tmp_path / "out" / name))
    data = np.asarray(img.get_fdata())
    assert data.shape == dose.shape
    np.testing.assert_allclose(data, np.rint(dose / 1e-4) * 1e-4, rtol=DOSE_RTOL, atol=1e-7)
    lps = FLIP @ img.get_sform()
    expected = np.diag([*spacing, 1.0])
    expected[:3, 3] = origin
    np.testing.assert_allclose(lps, expected, atol=1e-4)
    meta = json.loads((tmp_path / "out" / name.replace(".nii", ".json")).read_text())
    assert meta["Units"] == "Gy" and meta["DoseGridScaling"] == pytest.approx(1e-4)
    assert meta["Modality"] == "RTDOSE" and len(meta["SourceInstances"]) == 7
    assert [e["Frame"] for e in meta["SourceInstances"]] == list(range(1, 8))


def test_parametric_map_float_values_and_units(tmp_path: Path) -> None:
    series = write_series(tmp_path / "mr", shape=(10, 9, 5), modality="MR")
    rng = np.random.default_rng(2)
    adc = rng.uniform(100, 3000, series.shape).astype(np.float32)
    pm = write_parametric_map(tmp_path / "pm" / "pm.dcm", series, adc)
    report = convert([tmp_path / "pm"], tmp_path / "out")
    assert report["errors"] == [] and report["skipped"] == []
    (name,) = report["outputs"]
    img: Any = nib.load(str(tmp_path / "out" / name))
    assert img.get_data_dtype() == np.float32
    assert np.array_equal(np.asarray(img.dataobj), adc)  # float pixels, frames sorted
    np.testing.assert_allclose(FLIP @ img.get_sform(), series.affine_lps, atol=1e-4)
    check_exact(tmp_path / "out" / name, [pm.parent])
    meta = json.loads((tmp_path / "out" / name.replace(".nii", ".json")).read_text())
    assert meta["Units"] == "um2/s"
    assert meta["RealWorldValueMapping"]["LUTLabel"] == "ADC"

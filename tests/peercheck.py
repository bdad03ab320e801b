"""Helpers of the differential tests on synthetic series: run both tools, match volumes.

Grids are compared in world space after reorienting both images to the closest
canonical orientation (``nibabel.as_closest_canonical``), so that axis order and
flips do not matter; values volume by volume.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

import dicomvol
from dicomvol import ConvertOptions
from exactness import check_exact

#: World-space tolerance between the two tools' affines (dcm2niix stores float32).
AFFINE_TOL_MM = 1e-3


def run_dcm2niix(exe: str, inp: Path, out: Path) -> list[tuple[Any, dict[str, Any]]]:
    out.mkdir()
    subprocess.run([exe, "-z", "n", "-b", "y", "-ba", "n", "-f", "%s_%d", "-o", str(out),
                    str(inp)], check=True, capture_output=True, text=True)
    return [(nib.load(p), json.loads(p.with_suffix(".json").read_text()))
            for p in sorted(out.glob("*.nii"))]


def run_dicomvol(inp: Path, out: Path,
                 check_roots: list[Path] | None = None) -> list[tuple[Any, dict[str, Any]]]:
    """Convert with dicomvol: nothing skipped, no error, every output exact (checked against
    the files under ``check_roots``, by default the input)."""
    dicomvol.convert([inp], out, ConvertOptions(jobs=1, compress=False))
    report = json.loads((out / "dicomvol_report.json").read_text())
    assert report["errors"] == [] and report["skipped"] == []
    found = []
    for name in report["outputs"]:
        check_exact(out / name, check_roots or [inp])
        found.append((nib.load(out / name),
                      json.loads((out / name.replace(".nii", ".json")).read_text())))
    return found


def canonical(img: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data as float, always 4D; affine) in the closest canonical orientation."""
    can = nib.as_closest_canonical(img)
    data = np.asarray(can.get_fdata(dtype=np.float64))
    return data.reshape((*data.shape[:3], -1)), np.asarray(can.affine)


def volume_map(theirs: Any, ours: Any) -> list[int]:
    """For each dcm2niix volume, the index of the dicomvol volume it equals (same grid)."""
    dc, dc_affine = canonical(theirs)
    dv, dv_affine = canonical(ours)
    assert dc.shape[:3] == dv.shape[:3], (dc.shape, dv.shape)
    np.testing.assert_allclose(dc_affine, dv_affine, atol=AFFINE_TOL_MM)
    found = []
    for t in range(dc.shape[3]):
        same = [u for u in range(dv.shape[3])
                if np.allclose(dc[..., t], dv[..., u], rtol=1e-5, atol=1e-3)]
        assert len(same) == 1, f"dcm2niix volume {t}: matches {same}"
        found.append(same[0])
    return found

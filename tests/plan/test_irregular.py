"""Issue 3: series that are not one regular grid, built from synthetic series.

Cases: gantry tilt, variable slice spacing, missing slices, several frames at one
position, several stacks in one series, lateral shift, oblique and non-axial
orientations (with ``--reorient``). Each case is converted with the default policy and
with every option, and checked by

* ``tests/exactness.py`` (pydicom + nibabel + scipy): exact outputs pass ``check_exact``,
  resampled outputs pass ``check_resampled``;
* independent geometry computed here with numpy from the synthetic ground truth
  (``values``, ``positions``, ``row_dir``, ``col_dir``): resampled voxels on planes that
  coincide with a source slice equal that slice's values, content linear in world
  coordinates is reproduced everywhere, nearest-neighbour resampling picks the nearest
  pixel of the nearest slice;
* the run report: every source frame is in some output's ``SourceInstances`` or in
  ``skipped``;
* ``dicomvol inspect --json``: the ``Case`` text carries the measured numbers and the
  ``Action`` says what convert does.

No expectation is taken from dicomvol's own geometry code.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol import ConvertOptions
from dicomvol.cli.main import main
from dicomvol.options import PlanOptions
from dicomvol.testing import (
    SyntheticSeries,
    oblique_directions,
    rotation_matrix,
    write_series,
)
from exactness import assert_accounted, check_exact, check_resampled, frame_geometry

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
REPORT = "dicomvol_report.json"
COLS, ROWS = 40, 36
PS = (0.8, 0.7)  # PixelSpacing: row spacing (j step), column spacing (i step)
AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
ORIGIN = (-20.0, -15.0, 10.0)
CT_FILL = -1024.0
TILTS = (5.0, -5.0, 12.0, -12.0, 30.0, -30.0)

Vec = Sequence[float]


# ------------------------------------------------------------------------------------------
# building series
# ------------------------------------------------------------------------------------------


def _normal(row: Vec, col: Vec) -> np.ndarray:
    n = np.cross(np.asarray(row, float), np.asarray(col, float))
    return n / np.linalg.norm(n)


def _along_normal(mm: Sequence[float], row: Vec = AXIAL[0], col: Vec = AXIAL[1],
                  origin: Vec = ORIGIN) -> list[np.ndarray]:
    """Positions at the given distances (mm) along the slice normal from ``origin``."""
    n = _normal(row, col)
    return [np.asarray(origin, float) + p * n for p in mm]


def _tilted(n_slices: int, d: float, degrees: float, row: Vec = AXIAL[0],
            col: Vec = AXIAL[1], origin: Vec = ORIGIN) -> list[np.ndarray]:
    """IPP_k = IPP_0 + k d (cos t n + sin t col_dir): a CT gantry tilt of ``degrees``."""
    t = math.radians(degrees)
    step = d * (math.cos(t) * _normal(row, col) + math.sin(t) * np.asarray(col, float))
    return [np.asarray(origin, float) + k * step for k in range(n_slices)]


def _write(folder: Path, positions: Sequence[Vec], *, row: Vec = AXIAL[0],
           col: Vec = AXIAL[1], **kw: Any) -> SyntheticSeries:
    kw.setdefault("shuffle_seed", 5)
    return write_series(folder, shape=(COLS, ROWS, len(positions)), pixel_spacing=PS,
                        row_dir=row, col_dir=col, positions=[list(p) for p in positions], **kw)


def _pixel_world(s: SyntheticSeries, k: int) -> np.ndarray:
    """World (LPS) position of every pixel of source slice k, shape (3, X*Y).

    Pixels in the order of ``values[:, :, k].ravel()`` (index ``[i, j]``, j fastest).
    """
    ii, jj = np.meshgrid(np.arange(COLS), np.arange(ROWS), indexing="ij")
    return (s.positions[k][:, None] + np.outer(s.row_dir * s.pixel_spacing[1], ii.ravel())
            + np.outer(s.col_dir * s.pixel_spacing[0], jj.ravel()))


LinearFn = Callable[[np.ndarray], np.ndarray]


def _linear_series(folder: Path, positions: Sequence[Vec], grad: Vec = (2.0, -1.5, 3.0),
                   c0: float = 150.0, **kw: Any) -> tuple[SyntheticSeries, LinearFn]:
    """A series whose modality values are ``c0 + grad . world`` (quantised to 0.01).

    Bilinear interpolation in plane and linear blending along the normal reproduce such
    content exactly, so every resampled voxel inside the acquired field is known.
    """
    s = _write(folder, positions, rescale=(0.01, 0.0), **kw)
    g = np.asarray(grad, float)

    def f(world: np.ndarray) -> np.ndarray:
        return c0 + g @ world

    for k, path in enumerate(s.paths):
        ds = pydicom.dcmread(path)
        values = f(_pixel_world(s, k)).reshape(COLS, ROWS)
        stored = np.rint(values / 0.01)
        assert stored.min() > -32768 and stored.max() < 32767
        ds.PixelData = np.ascontiguousarray(stored.T.astype("<i2")).tobytes()
        ds.save_as(path)
    return s, f


# ------------------------------------------------------------------------------------------
# converting and the invariants every conversion must keep
# ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One conversion: the report and every output image with its sidecar."""

    out: Path
    report: dict[str, Any]
    outputs: list[tuple[Path, dict[str, Any]]]

    @property
    def exact(self) -> list[tuple[Path, dict[str, Any]]]:
        return [(p, sc) for p, sc in self.outputs if not sc["Resampled"]]

    @property
    def resampled(self) -> list[tuple[Path, dict[str, Any]]]:
        return [(p, sc) for p, sc in self.outputs if sc["Resampled"]]

    def by_suffix(self, suffix: str) -> tuple[Path, dict[str, Any]]:
        (hit,) = [(p, sc) for p, sc in self.outputs if p.name.endswith(f"{suffix}.nii.gz")]
        return hit


def _sidecar(image: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(image.with_name(
        image.name.removesuffix(".gz").removesuffix(".nii") + ".json").read_text())
    return data


def _sops(sidecar: dict[str, Any]) -> list[str]:
    return [e["SOPInstanceUID"] for e in sidecar["SourceInstances"]]


def _convert(inp: Path, out: Path, plan: PlanOptions | None = None, *,
             check: bool = True, **kw: Any) -> Run:
    """Convert in this process; check accounting and every output (unless ``check``)."""
    dicomvol.convert([inp], out, ConvertOptions(jobs=1, plan=plan or PlanOptions(), **kw))
    report: dict[str, Any] = json.loads((out / REPORT).read_text())
    assert report["errors"] == []
    run = Run(out, report, [(out / n, _sidecar(out / n)) for n in report["outputs"]])
    assert_accounted(inp, run.out)
    if check:
        for image, sidecar in run.outputs:
            _assert_valid_output(image, sidecar, inp)
    return run


def _lps(img: Any) -> np.ndarray:
    return LPS_TO_RAS @ img.get_sform()


def _assert_orthogonal(m: np.ndarray) -> None:
    gram = m[:3, :3].T @ m[:3, :3]
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-5 * gram.max()), "sheared"


def _assert_valid_output(image: Path, sidecar: dict[str, Any], inp: Path) -> None:
    img: Any = nib.load(image)
    assert int(img.header["sform_code"]) == 1
    if sidecar["Resampled"]:
        assert sidecar["ResampleReason"]
        assert sidecar["Sheared"] is False
        affine = _lps(img)
        _assert_orthogonal(affine)
        spacing = sidecar["GeometryDetail"]["resample"]["spacing_mm"]
        assert np.linalg.norm(affine[:3, 2]) == pytest.approx(spacing, rel=1e-5)
        assert sidecar["Resampling"]["spacing_mm"] == pytest.approx(spacing, rel=1e-6)
        assert img.shape[2] == sidecar["Resampling"]["n_output_slices"]
        assert sidecar["Warnings"], "a resampled volume without a warning"
        if sidecar["Resampling"]["method"] == "linear":
            check_resampled(image, [inp])
        return
    check_exact(image, [inp])
    if sidecar["Sheared"]:
        assert int(img.header["qform_code"]) == 0, "sheared affine must be in the sform only"
        assert sidecar["GeometryDetail"]["sheared"] is True
    else:
        assert int(img.header["qform_code"]) > 0
        assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)
        _assert_orthogonal(_lps(img))


def _inspect(capsys: pytest.CaptureFixture[str], inp: Path, *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["inspect", "--json", "-q", *args, str(inp)]) == 0
    volumes: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["volumes"]
    return volumes


# ------------------------------------------------------------------------------------------
# independent checks of resampled voxels against the ground truth
# ------------------------------------------------------------------------------------------


def _coincident_truth(image: Path, s: SyntheticSeries) -> tuple[list[int], np.ndarray]:
    """Source slices whose pixels all land on output voxel centres must be copied unchanged.

    Returns the output planes checked (in source slice order) and a mask of the voxels
    those slices cover.
    """
    img: Any = nib.load(image)
    data = np.asarray(img.dataobj, dtype=np.float64)
    inv = np.linalg.inv(_lps(img))
    covered = np.zeros(data.shape[:3], dtype=bool)
    planes: list[int] = []
    for k in range(s.shape[2]):
        world = _pixel_world(s, k)
        idx = inv[:3, :3] @ world + inv[:3, 3:4]
        r = np.rint(idx)
        if float(np.max(np.abs(idx - r))) > 1e-3:
            continue
        r = r.astype(int)
        assert np.all(r >= 0) and np.all(r < np.array(data.shape[:3])[:, None]), k
        got = data[r[0], r[1], r[2]]
        np.testing.assert_allclose(got, s.values[:, :, k].ravel(), rtol=1e-6, atol=1e-3,
                                   err_msg=f"source slice {k}")
        assert len(set(r[2].tolist())) == 1
        covered[r[0], r[1], r[2]] = True
        planes.append(int(r[2][0]))
    return planes, covered


def _voxel_world(img: Any) -> tuple[np.ndarray, np.ndarray]:
    """(world LPS of every voxel, shape (3, M); data raveled in the same C order)."""
    data = np.asarray(img.dataobj, dtype=np.float64)
    idx = np.indices(data.shape[:3]).reshape(3, -1).astype(np.float64)
    a = _lps(img)
    return a[:3, :3] @ idx + a[:3, 3:4], data.reshape(-1)


def _footprints(s: SyntheticSeries, world: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each source slice: (ci, cj) of ``world`` projected along the normal onto it."""
    n = _normal(s.row_dir, s.col_dir)
    out = []
    for k in range(s.shape[2]):
        rel = world - s.positions[k][:, None]
        rel -= np.outer(n, n @ rel)
        out.append((s.row_dir @ rel / s.pixel_spacing[1], s.col_dir @ rel / s.pixel_spacing[0]))
    return out


def _inside(ci: np.ndarray, cj: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    return (ci >= -tol) & (ci <= COLS - 1 + tol) & (cj >= -tol) & (cj <= ROWS - 1 + tol)


def _check_linear(image: Path, s: SyntheticSeries, f: LinearFn, grad_normal: float) -> None:
    """Linear content: every voxel inside all slices' footprints equals f(world); every
    voxel outside all of them is the fill value."""
    img: Any = nib.load(image)
    world, values = _voxel_world(img)
    inside_all = np.ones(values.size, dtype=bool)
    inside_any = np.zeros(values.size, dtype=bool)
    for ci, cj in _footprints(s, world):
        ins = _inside(ci, cj)
        inside_all &= ins
        inside_any |= ins
    assert inside_all.mean() > 0.3, "test geometry leaves too little common field"
    # A plane within 1 % of a spacing from a slice is a copy of that slice (the contract's
    # exactness tolerance): allow for the content's change over that distance. Otherwise
    # only the 0.01 quantisation of the stored values (and float32) remains.
    a = _lps(img)
    spacing = float(np.linalg.norm(a[:3, 2]))
    k = (s.positions - a[:3, 3]) @ (a[:3, 2] / spacing) / spacing
    off = np.abs(k - np.rint(k)) * spacing
    copied = off[(off > 0) & (off <= 0.01 * spacing + 1e-9)]
    tol = 0.012 + abs(grad_normal) * (float(copied.max()) if copied.size else 0.0)
    np.testing.assert_allclose(values[inside_all], f(world[:, inside_all]), rtol=0, atol=tol)
    assert np.all(values[~inside_any] == CT_FILL)


def _check_nearest(image: Path, s: SyntheticSeries) -> int:
    """Nearest neighbour: each voxel holds the nearest pixel of the nearest slice (ties
    between two slices or two pixels accept either); outside the field, the fill value."""
    img: Any = nib.load(image)
    world, values = _voxel_world(img)
    n = _normal(s.row_dir, s.col_dir)
    q = s.positions @ n
    p = n @ world
    dist = np.abs(p[None, :] - q[:, None])  # (slices, voxels)
    nearest = dist <= dist.min(axis=0) + 1e-6
    ok = np.zeros(values.size, dtype=bool)
    for k, (ci, cj) in enumerate(_footprints(s, world)):
        sel = nearest[k]
        ins = _inside(ci, cj)
        expected = np.full(values.size, CT_FILL)
        ri = np.clip(np.rint(ci), 0, COLS - 1).astype(int)
        rj = np.clip(np.rint(cj), 0, ROWS - 1).astype(int)
        expected[ins] = s.values[ri[ins], rj[ins], k]
        tie = (np.abs(np.abs(ci - np.floor(ci)) - 0.5) < 1e-6) | (
            np.abs(np.abs(cj - np.floor(cj)) - 0.5) < 1e-6)
        ok |= sel & (tie | np.isclose(values, expected, rtol=1e-6, atol=1e-3))
    assert ok.all(), f"{int((~ok).sum())} voxels are not the nearest source pixel"
    return int(values.size)


def _assert_on_planes(image: Path, positions: np.ndarray) -> list[int]:
    """Every acquired position lies within 1 % of a spacing of an output plane, in-bounds."""
    img: Any = nib.load(image)
    inv = np.linalg.inv(_lps(img))
    ks = []
    for p in positions:
        k = float((inv @ np.r_[p, 1.0])[2])
        assert abs(k - round(k)) <= 0.01, f"position {p} is {k} planes from the first"
        assert 0 <= round(k) < img.shape[2]
        ks.append(round(k))
    assert len(set(ks)) == len(ks)
    return ks


# ------------------------------------------------------------------------------------------
# gantry tilt
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tilt", TILTS)
def test_gantry_tilt_default_writes_sheared_and_resampled(
    tmp_path: Path, tilt: float, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    d = 2.0
    s = _write(inp, _tilted(10, d, tilt), extra={"GantryDetectorTilt": tilt})
    run = _convert(inp, tmp_path / "out")
    assert len(run.outputs) == 2
    ((sheared, ssc),) = run.exact
    ((resampled, rsc),) = run.resampled

    # the exact sheared stack: every slice where its DICOM puts it (check_exact passed)
    assert ssc["Sheared"] is True
    assert _sops(ssc) == list(s.sop_instance_uids)
    step = (LPS_TO_RAS @ nib.load(sheared).get_sform())[:3, 2]  # type: ignore[attr-defined]
    t = math.radians(tilt)
    expected_step = d * (math.cos(t) * np.array([0, 0, 1.0]) + math.sin(t) * s.col_dir)
    np.testing.assert_allclose(step, expected_step, atol=1e-5)
    detail = ssc["GeometryDetail"]
    assert detail["case"] == "gantry tilt"
    assert detail["shear_degrees"] == pytest.approx(abs(tilt), abs=1e-3)
    assert detail["step_angle_degrees"] == pytest.approx(abs(tilt), abs=1e-3)
    assert any("sheared" in w for w in ssc["Warnings"])

    # the orthogonal resampled copy: slices at d cos t along the normal, each on a plane
    reason = rsc["ResampleReason"]
    assert "gantry tilt" in reason and f"{abs(tilt):.2f}°" in reason
    assert f"GantryDetectorTilt {tilt:g}" in reason
    img: Any = nib.load(resampled)
    assert np.linalg.norm(_lps(img)[:3, 2]) == pytest.approx(d * math.cos(t), rel=1e-5)
    assert _assert_on_planes(resampled, s.positions) == list(range(10))
    assert set(_sops(rsc)) == set(s.sop_instance_uids)
    # the field grows in plane by the tilt's shift (rows run along col_dir)
    shift_px = 9 * d * abs(math.sin(t)) / PS[0]
    assert img.shape[0] == COLS
    assert ROWS + math.floor(shift_px) <= img.shape[1] <= ROWS + math.ceil(shift_px)

    vols = _inspect(capsys, inp)
    cases = sorted(v["Case"] for v in vols)
    assert f"gantry tilt {abs(tilt):.2f}°" in cases
    actions = sorted(v["Action"] for v in vols)
    assert actions[0].startswith("resample to ") and "gantry tilt" in actions[0]
    assert actions[1] == "write (sheared affine)"


@pytest.mark.parametrize("tilt", TILTS)
def test_gantry_tilt_resampled_equals_ground_truth(tmp_path: Path, tilt: float) -> None:
    """With a step whose in-plane part is a whole number of pixels, every source slice
    lands on output voxel centres: its values must be copied unchanged, and every other
    voxel of its plane (outside the acquired field) holds the CT fill value."""
    t = math.radians(tilt)
    m = 1 if abs(tilt) < 20 else 2
    d = m * PS[0] / abs(math.sin(t))
    inp = tmp_path / "in"
    s = _write(inp, _tilted(8, d, tilt), extra={"GantryDetectorTilt": tilt})
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt="resample"))
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampled"] is True
    planes, covered = _coincident_truth(image, s)
    assert planes == list(range(8))
    data = np.asarray(nib.load(image).dataobj)  # type: ignore[attr-defined]
    assert data.shape == (COLS, ROWS + 7 * m, 8)
    assert np.all(data[~covered] == CT_FILL)


@pytest.mark.parametrize("tilt", ["shear", "resample", "both"])
def test_gantry_tilt_options(tmp_path: Path, tilt: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _tilted(10, 2.0, 12.0), extra={"GantryDetectorTilt": 12.0})
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt=tilt))
    kinds = sorted("sheared" if sc["Sheared"] else "resampled" if sc["Resampled"] else "other"
                   for _, sc in run.outputs)
    assert kinds == {"shear": ["sheared"], "resample": ["resampled"],
                     "both": ["resampled", "sheared"]}[tilt]
    for _, sc in run.outputs:
        assert set(_sops(sc)) == set(s.sop_instance_uids)
    if tilt == "both":
        assert run.by_suffix("_resampled")[1]["Resampled"] is True
    vols = _inspect(capsys, inp, "--tilt", tilt)
    assert len(vols) == len(run.outputs)
    assert sum("sheared affine" in v["Action"] for v in vols) == kinds.count("sheared")
    assert sum(v["Action"].startswith("resample to") for v in vols) == kinds.count("resampled")


def test_gantry_tilt_resampled_copy_names_the_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    _write(inp, _tilted(10, 2.0, 12.0), extra={"GantryDetectorTilt": 12.0})
    vols = _inspect(capsys, inp, "--tilt", "resample")
    assert [v["Case"] for v in vols] == ["gantry tilt 12.00°"]
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt="resample"))
    assert run.outputs[0][1]["GeometryDetail"]["case"] == "gantry tilt"


def test_inspect_matrix_of_resampled_tilt_is_the_written_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    _write(inp, _tilted(10, 2.0, 12.0), extra={"GantryDetectorTilt": 12.0})
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt="resample"))
    written = list(nib.load(run.outputs[0][0]).shape)  # type: ignore[attr-defined]
    assert [v["Matrix"] for v in _inspect(capsys, inp, "--tilt", "resample")] == [written]


def test_gantry_tilt_oblique_orientation(tmp_path: Path) -> None:
    """A tilt on an oblique grid: the same two outputs, both correct."""
    row, col = oblique_directions(20.0, (1.0, 0.3, 0.2))
    inp = tmp_path / "in"
    s = _write(inp, _tilted(10, 2.5, -17.0, row, col), row=row, col=col,
               extra={"GantryDetectorTilt": -17.0})
    run = _convert(inp, tmp_path / "out")
    assert [sc["Sheared"] for _, sc in run.exact] == [True]
    ((image, sidecar),) = run.resampled
    assert sidecar["GeometryDetail"]["step_angle_degrees"] == pytest.approx(17.0, abs=1e-3)
    _assert_on_planes(image, s.positions)


def test_gantry_tilt_resampling_of_linear_content_is_exact_everywhere(tmp_path: Path) -> None:
    """The tilt's in-plane shift is a fraction of a pixel: bilinear interpolation of linear
    content is exact, so every voxel inside the field equals the content at its position."""
    inp = tmp_path / "in"
    s, f = _linear_series(inp, _tilted(10, 2.0, -17.0), extra={"GantryDetectorTilt": -17.0})
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt="resample"))
    ((image, _),) = run.outputs
    _check_linear(image, s, f, grad_normal=3.0)


def test_gantry_tilt_nearest_interpolation(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _tilted(10, 2.0, 12.0), extra={"GantryDetectorTilt": 12.0})
    run = _convert(inp, tmp_path / "out", PlanOptions(tilt="resample", interpolation="nearest"))
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampling"]["method"] == "nearest"
    _check_nearest(image, s)


def test_gantry_tilt_with_duplicate_file(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An identical copy of a slice (same SOPInstanceUID) is used once and reported."""
    inp = tmp_path / "in"
    s = _write(inp, _tilted(10, 2.0, 12.0), extra={"GantryDetectorTilt": 12.0})
    shutil.copyfile(s.paths[4], inp / "zz_copy")
    run = _convert(inp, tmp_path / "out")
    for _, sc in run.outputs:
        assert sorted(_sops(sc)) == sorted(s.sop_instance_uids)
        assert "zz_copy" not in {e["File"] for e in sc["SourceInstances"]}
    (dup,) = [e for e in run.report["skipped"] if e["File"] == "zz_copy"]
    assert dup["SOPInstanceUID"] == s.sop_instance_uids[4]
    assert "duplicate" in dup["Reason"].lower()
    capsys.readouterr()
    assert main(["inspect", "--json", "-q", str(inp)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [s["Frames"] for s in rows["skipped"] if "duplicate" in s["Reason"]] == [1]
    assert sorted(v["Frames"] for v in rows["volumes"]) == [10, 10]


# ------------------------------------------------------------------------------------------
# variable slice spacing
# ------------------------------------------------------------------------------------------


def _spacing_numbers(positions: np.ndarray) -> tuple[float, float, float]:
    q = np.sort(positions @ np.array([0, 0, 1.0]))
    steps = np.diff(q)
    return float(np.min(steps)), float(np.median(steps)), float(np.max(steps))


def _case_numbers(case: str) -> tuple[float, float, float]:
    """'variable spacing a/b/c mm (min/median/max)' -> (a, b, c)."""
    prefix = "variable spacing "
    assert case.startswith(prefix) and case.endswith(" mm (min/median/max)"), case
    a, b, c = case[len(prefix):].split(" ")[0].split("/")
    return float(a), float(b), float(c)


@pytest.mark.parametrize(
    ("mm", "spacing"),
    [
        pytest.param((0, 1.25, 2.5, 3.75, 5, 7.5, 10, 12.5, 15), 1.25, id="fine-then-coarse"),
        pytest.param((0, 2, 5, 7, 10, 12, 15, 17), 1.0, id="steps-2-and-3"),
        pytest.param((0, 3, 6, 9, 10.5, 12, 13.5, 16.5, 19.5), 1.5, id="coarse-fine-coarse"),
    ],
)
def test_variable_spacing_with_a_common_step_resamples_onto_it(
    tmp_path: Path, mm: tuple[float, ...], spacing: float,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Default: the coarsest regular grid that still has a plane at every acquired
    position; each acquired slice is copied to its plane unchanged."""
    inp = tmp_path / "in"
    s = _write(inp, _along_normal(mm))
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampled"] is True
    assert sidecar["GeometryDetail"]["case"] == "variable spacing"
    assert sidecar["GeometryDetail"]["gaps"] == []
    assert sidecar["GeometryDetail"]["resample"]["spacing_mm"] == pytest.approx(spacing, rel=1e-6)
    assert nib.load(image).shape[2] == round(mm[-1] / spacing) + 1  # type: ignore[attr-defined]
    ks = _assert_on_planes(image, s.positions)
    assert ks == [round(p / spacing) for p in mm]
    planes, _ = _coincident_truth(image, s)
    assert planes == ks
    assert set(_sops(sidecar)) == set(s.sop_instance_uids)
    lo, med, hi = _spacing_numbers(s.positions)
    for key, value in (("min_spacing_mm", lo), ("median_spacing_mm", med),
                       ("max_spacing_mm", hi)):
        assert sidecar["GeometryDetail"][key] == pytest.approx(value, abs=1e-4)
    (vol,) = _inspect(capsys, inp)
    assert _case_numbers(vol["Case"]) == pytest.approx((lo, med, hi), abs=1e-4)
    assert vol["Action"].startswith(f"resample to {spacing:g} mm")


def test_variable_spacing_resampling_of_linear_content_is_exact(tmp_path: Path) -> None:
    """Planes between acquired slices are interpolated along the normal: exact for content
    linear in world coordinates."""
    inp = tmp_path / "in"
    s, f = _linear_series(inp, _along_normal((0, 1.25, 2.5, 3.75, 5, 7.5, 10, 12.5, 15)))
    run = _convert(inp, tmp_path / "out")
    ((image, _),) = run.outputs
    _check_linear(image, s, f, grad_normal=3.0)


def _jitter(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(np.cumsum(np.r_[0.0, 2.0 + rng.uniform(-0.4, 0.4, n - 1)]))


@pytest.mark.parametrize("seed", [1, 2])
def test_spacing_jitter_resamples_at_the_median(
    tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """No common step keeps every position within 1 %: the median interval, adjusted so
    that the first and the last slice lie on planes."""
    mm = _jitter(12, seed)
    inp = tmp_path / "in"
    s = _write(inp, _along_normal(mm))
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    lo, med, hi = _spacing_numbers(s.positions)
    span = mm[-1] - mm[0]
    expected = span / max(1, round(span / med))
    spacing = sidecar["GeometryDetail"]["resample"]["spacing_mm"]
    assert spacing == pytest.approx(expected, rel=1e-6)
    assert abs(spacing - med) <= 0.5 * med / round(span / med) + 1e-9
    img: Any = nib.load(image)
    inv = np.linalg.inv(_lps(img))
    for p, k in ((s.positions[0], 0), (s.positions[-1], img.shape[2] - 1)):
        assert (inv @ np.r_[p, 1.0])[2] == pytest.approx(k, abs=0.01)
    (vol,) = _inspect(capsys, inp)
    assert vol["GeometryDetail"]["case"] == "variable spacing"
    assert _case_numbers(vol["Case"]) == pytest.approx((lo, med, hi), abs=1e-4)


def test_spacing_jitter_linear_content(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s, f = _linear_series(inp, _along_normal(_jitter(12, 1)))
    run = _convert(inp, tmp_path / "out")
    ((image, _),) = run.outputs
    _check_linear(image, s, f, grad_normal=3.0)


def _assert_split_pieces(run: Run, s: SyntheticSeries) -> list[list[int]]:
    """Each piece is exact and regular; pieces are disjoint; returns the source slice
    indices of each piece (pieces ordered by name)."""
    index = {uid: k for k, uid in enumerate(s.sop_instance_uids)}
    pieces = []
    for _, sc in sorted(run.outputs, key=lambda o: o[0].name):
        assert sc["Resampled"] is False
        assert "split" in sc["GeometryDetail"]
        ks = [index[u] for u in _sops(sc)]
        assert len(ks) >= 2
        q = s.positions[ks] @ _normal(s.row_dir, s.col_dir)
        steps = np.diff(q)
        assert np.all(steps > 0) and np.ptp(steps) <= 0.01 * steps.min()
        pieces.append(ks)
    return pieces


def test_variable_spacing_split_gives_the_largest_exact_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    mm = (0, 1.25, 2.5, 3.75, 5, 7.5, 10, 12.5, 15, 17.5)
    s = _write(inp, _along_normal(mm))
    run = _convert(inp, tmp_path / "out", PlanOptions(irregular="split"))
    pieces = _assert_split_pieces(run, s)
    # 0..5 at 1.25 (5 slices) and 7.5..17.5 at 2.5 (5 slices), or 5..17.5 at 2.5 (6 slices)
    # and 0..3.75 (4 slices): either way two pieces covering all ten slices
    assert sorted(k for p in pieces for k in p) == list(range(10))
    assert len(pieces) == 2 and max(len(p) for p in pieces) >= 5
    assert run.report["skipped"] == []
    vols = _inspect(capsys, inp, "--irregular", "split")
    assert [v["Action"] for v in vols] == ["write exact piece 1/2", "write exact piece 2/2"]
    assert all(v["Case"].startswith("variable spacing 1.25/") for v in vols)


def test_spacing_jitter_split_and_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _along_normal(_jitter(12, 1)))
    run = _convert(inp, tmp_path / "split", PlanOptions(irregular="split"))
    pieces = _assert_split_pieces(run, s)
    in_pieces = [k for p in pieces for k in p]
    assert len(in_pieces) == len(set(in_pieces))
    skipped = {e["SOPInstanceUID"] for e in run.report["skipped"]}
    assert len(in_pieces) + len(skipped) == 12
    assert all("isolated" in e["Reason"] for e in run.report["skipped"])
    run = _convert(inp, tmp_path / "skip", PlanOptions(irregular="skip"))
    _assert_all_skipped(run, s, "slice spacing varies")
    assert _inspect(capsys, inp, "--irregular", "skip") == []


def _assert_all_skipped(run: Run, s: SyntheticSeries, why: str) -> None:
    assert run.outputs == []
    assert sorted(e["SOPInstanceUID"] for e in run.report["skipped"]) == sorted(
        s.sop_instance_uids)
    for e in run.report["skipped"]:
        assert why in e["Reason"] and "--irregular skip" in e["Reason"], e["Reason"]


# ------------------------------------------------------------------------------------------
# missing slices
# ------------------------------------------------------------------------------------------


MISSING = {
    # id: (slice numbers present on a regular 2.5 mm grid, expected gaps as
    #      (index of the slice before the gap, missing count))
    "one-missing": ((0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11), [(4, 1)]),
    "three-missing": ((0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13), [(5, 3)]),
    "one-and-three": ((0, 1, 2, 4, 5, 6, 7, 11, 12, 13, 14), [(2, 1), (6, 3)]),
}


@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
@pytest.mark.parametrize("case", list(MISSING))
def test_missing_slices_default(tmp_path: Path, case: str, oblique: bool,
                                capsys: pytest.CaptureFixture[str]) -> None:
    present, gaps = MISSING[case]
    row, col = oblique_directions(25.0, (0.2, 1.0, 0.1)) if oblique else AXIAL
    step = 2.5
    inp = tmp_path / "in"
    s = _write(inp, _along_normal([n * step for n in present], row, col), row=row, col=col)
    q = s.positions @ _normal(row, col)
    expected_gaps = [{"after_position_mm": pytest.approx(round(float(q[k]), 4), abs=1e-4),
                      "gap_mm": pytest.approx((m + 1) * step, abs=1e-4), "missing_slices": m}
                     for k, m in gaps]

    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    detail = sidecar["GeometryDetail"]
    assert detail["case"] == "missing slices"
    assert detail["gaps"] == expected_gaps
    assert detail["resample"]["spacing_mm"] == pytest.approx(step, rel=1e-6)
    warning = " ".join(sidecar["Warnings"])
    total = sum(m for _, m in gaps)
    assert f"{total} slice(s) missing" in warning
    for k, _ in gaps:
        assert f"{q[k]:g} mm" in warning or f"{round(float(q[k]), 4):g} mm" in warning
    # every acquired slice on its plane, unchanged; missing planes interpolated
    img: Any = nib.load(image)
    assert img.shape[2] == present[-1] + 1
    assert _assert_on_planes(image, s.positions) == list(present)
    planes, _ = _coincident_truth(image, s)
    assert planes == list(present)
    data = np.asarray(img.dataobj, dtype=np.float64)
    for k, m in gaps:
        a, b = s.values[:, :, k], s.values[:, :, k + 1]
        for n in range(1, m + 1):
            w = n / (m + 1)
            np.testing.assert_allclose(data[:, :, present[k] + n], (1 - w) * a + w * b,
                                       rtol=1e-5, atol=1e-3)

    (vol,) = _inspect(capsys, inp)
    text = ", ".join(f"{m} after {round(float(q[k]), 4):g} mm" for k, m in gaps)
    assert vol["Case"] == f"missing slices: {text}"
    assert vol["Action"].startswith(f"resample to {step:g} mm")
    assert vol["GeometryDetail"]["gaps"] == expected_gaps


@pytest.mark.parametrize("case", list(MISSING))
def test_missing_slices_split_and_skip(tmp_path: Path, case: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    present, gaps = MISSING[case]
    inp = tmp_path / "in"
    s = _write(inp, _along_normal([n * 2.5 for n in present]))
    run = _convert(inp, tmp_path / "split", PlanOptions(irregular="split"))
    pieces = _assert_split_pieces(run, s)
    bounds = [0, *[k + 1 for k, _ in gaps], len(present)]
    assert pieces == [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
    for _, sc in run.outputs:
        assert sc["GeometryDetail"]["gaps"] and sc["Warnings"]
        assert "missing" in " ".join(sc["Warnings"])
    assert run.report["skipped"] == []
    vols = _inspect(capsys, inp, "--irregular", "split")
    assert [v["Action"] for v in vols] == [f"write exact piece {n + 1}/{len(pieces)}"
                                           for n in range(len(pieces))]
    assert all(v["Case"].startswith("missing slices: ") for v in vols)

    run = _convert(inp, tmp_path / "skip", PlanOptions(irregular="skip"))
    _assert_all_skipped(run, s, "slice(s) missing")


def test_missing_slices_linear_content(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s, f = _linear_series(inp, _along_normal([n * 2.5 for n in MISSING["one-and-three"][0]]))
    run = _convert(inp, tmp_path / "out")
    ((image, _),) = run.outputs
    _check_linear(image, s, f, grad_normal=3.0)


def test_missing_slices_nearest_interpolation(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _along_normal([n * 2.5 for n in MISSING["one-and-three"][0]]))
    run = _convert(inp, tmp_path / "out", PlanOptions(interpolation="nearest"))
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampling"]["method"] == "nearest"
    _check_nearest(image, s)
    planes, _ = _coincident_truth(image, s)
    assert planes == list(MISSING["one-and-three"][0])


# ------------------------------------------------------------------------------------------
# several frames at one position; several stacks in one series
# ------------------------------------------------------------------------------------------


def _two_stacks(inp: Path, first: Sequence[float], second: Sequence[float],
                acquisition: tuple[int, int] = (1, 2)) -> tuple[SyntheticSeries, SyntheticSeries]:
    uids = {"series_instance_uid": "1.2.826.0.1.3680043.8.498.1",
            "study_instance_uid": "1.2.826.0.1.3680043.8.498.2",
            "frame_of_reference_uid": "1.2.826.0.1.3680043.8.498.3"}
    a = _write(inp, _along_normal(first), extra={"AcquisitionNumber": acquisition[0]},
               prefix="a", seed=1, **uids)
    b = _write(inp, _along_normal(second), extra={"AcquisitionNumber": acquisition[1]},
               prefix="b", seed=2, **uids)
    return a, b


def test_acquisition_number_at_the_same_positions_gives_4d(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    mm = [2.5 * k for k in range(8)]
    a, b = _two_stacks(inp, mm, mm)
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    assert nib.load(image).shape == (COLS, ROWS, 8, 2)  # type: ignore[attr-defined]
    assert _sops(sidecar) == [*a.sop_instance_uids, *b.sop_instance_uids]
    assert sidecar["Resampled"] is False
    (vol,) = _inspect(capsys, inp)
    assert vol["Action"] == "write 4D (2 volumes by acquisition number)"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param([2.0 * k for k in range(8)], [0.7 + 2.0 * k for k in range(8)],
                     id="interleaved"),
        pytest.param([2.0 * k for k in range(10)], [13.0 + 2.0 * k for k in range(10)],
                     id="overlapping-ranges"),
        pytest.param([2.0 * k for k in range(8)], [30.0 + 2.5 * k for k in range(8)],
                     id="apart-different-steps"),
    ],
)
def test_overlapping_stacks_become_separate_exact_volumes(
    tmp_path: Path, first: list[float], second: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    inp = tmp_path / "in"
    a, b = _two_stacks(inp, first, second)
    run = _convert(inp, tmp_path / "out")
    assert run.resampled == []
    assert len(run.outputs) == 2
    assert _sops(run.by_suffix("_stack1")[1]) == list(a.sop_instance_uids)
    assert _sops(run.by_suffix("_stack2")[1]) == list(b.sop_instance_uids)
    for _, sc in run.outputs:
        assert any("stack" in w for w in sc["Warnings"])
    vols = _inspect(capsys, inp)
    assert sorted(v["Label"] for v in vols) == ["stack 1", "stack 2"]
    assert all(v["Action"] == "write" for v in vols)


def test_overlapping_stacks_sharing_positions_are_exact(tmp_path: Path) -> None:
    """Overlapping ranges whose positions partly coincide: still two exact volumes."""
    inp = tmp_path / "in"
    a, b = _two_stacks(inp, [2.0 * k for k in range(10)], [12.0 + 2.0 * k for k in range(10)])
    run = _convert(inp, tmp_path / "out")
    assert run.resampled == []
    assert sorted(_sops(sc) for _, sc in run.outputs) == sorted(
        [list(a.sop_instance_uids), list(b.sop_instance_uids)])


def test_overlapping_stacks_sharing_positions_are_named_as_stacks(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    _two_stacks(inp, [2.0 * k for k in range(10)], [12.0 + 2.0 * k for k in range(10)])
    run = _convert(inp, tmp_path / "out")
    names = sorted(p.name for p, _ in run.outputs)
    assert names == ["SYNTH001_1_synthetic_stack1.nii.gz", "SYNTH001_1_synthetic_stack2.nii.gz"]
    for _, sc in run.outputs:
        assert any("stack" in w for w in sc["Warnings"])


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param([2.0 * k for k in range(6)], [12.0 + 2.0 * k for k in range(6)],
                     id="end-to-end"),
        pytest.param([4.0 * k for k in range(6)], [2.0 + 4.0 * k for k in range(6)],
                     id="interleaved-half-step"),
    ],
)
def test_stacks_that_form_one_regular_grid_give_one_volume(
    tmp_path: Path, first: list[float], second: list[float]
) -> None:
    inp = tmp_path / "in"
    a, b = _two_stacks(inp, first, second)
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampled"] is False
    assert nib.load(image).shape == (COLS, ROWS, 12)  # type: ignore[attr-defined]
    by_position = sorted(zip([*first, *second], [*a.sop_instance_uids, *b.sop_instance_uids],
                             strict=True))
    assert _sops(sidecar) == [uid for _, uid in by_position]


# ------------------------------------------------------------------------------------------
# lateral shift
# ------------------------------------------------------------------------------------------

#: In-plane offsets (whole pixels along row, column) of each slice: not constant, not linear
#: in k, and the last slice back in line with the first (no net trend, so no tilt).
LATERAL_PX = ((0, 0), (1, 0), (2, 1), (1, 2), (-1, 1), (0, 0), (2, -1), (3, 1), (1, 0), (0, 0))


def _lateral(px: Sequence[tuple[int, int]] = LATERAL_PX, d: float = 2.0) -> list[np.ndarray]:
    row, col = (np.asarray(v) for v in AXIAL)
    return [np.asarray(ORIGIN) + k * d * _normal(row, col) + a * PS[1] * row + b * PS[0] * col
            for k, (a, b) in enumerate(px)]


def _expected_shift(s: SyntheticSeries) -> float:
    return max(float(np.ptp(s.positions @ s.row_dir)), float(np.ptp(s.positions @ s.col_dir)))


def test_lateral_shift_is_resampled_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _lateral())
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs  # never one exact stack "as if aligned"
    assert sidecar["Resampled"] is True
    detail = sidecar["GeometryDetail"]
    assert detail["case"] == "lateral shift"
    shift = _expected_shift(s)
    assert detail["in_plane_shift_mm"] == pytest.approx(shift, abs=1e-4)
    assert "in plane" in sidecar["ResampleReason"]
    # whole-pixel shifts: every slice copied onto its own plane at its own place
    planes, covered = _coincident_truth(image, s)
    assert planes == list(range(10))
    assert np.all(np.asarray(nib.load(image).dataobj)[~covered] == CT_FILL)  # type: ignore[attr-defined]
    (vol,) = _inspect(capsys, inp)
    assert vol["Case"] == f"lateral shift up to {shift:g} mm"
    assert vol["Action"].startswith("resample to 2 mm")


def test_lateral_shift_linear_content(tmp_path: Path) -> None:
    """Sub-pixel lateral shifts: linear content is still reproduced exactly."""
    frac = [(0.3 * a + 0.1, 0.45 * b) for a, b in LATERAL_PX]
    row, col = (np.asarray(v) for v in AXIAL)
    positions = [np.asarray(ORIGIN) + k * 2.0 * _normal(row, col) + a * PS[1] * row
                 + b * PS[0] * col for k, (a, b) in enumerate(frac)]
    positions[-1] = positions[-1] - (frac[-1][0] * PS[1]) * row  # back in line: no trend
    inp = tmp_path / "in"
    s, f = _linear_series(inp, positions)
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    assert sidecar["GeometryDetail"]["case"] == "lateral shift"
    _check_linear(image, s, f, grad_normal=3.0)


def test_lateral_shift_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in"
    s = _write(inp, _lateral())
    run = _convert(inp, tmp_path / "out", PlanOptions(irregular="split"))
    assert run.resampled == []
    index = {uid: k for k, uid in enumerate(s.sop_instance_uids)}
    written = []
    for _, sc in run.outputs:
        ks = [index[u] for u in _sops(sc)]
        assert 2 <= len(ks) < 10
        # each piece: consecutive slices whose IPP steps are equal (an exact regular run)
        assert ks == list(range(ks[0], ks[0] + len(ks)))
        steps = np.diff(s.positions[ks], axis=0)
        assert np.allclose(steps, steps[0], atol=1e-6)
        written += ks
    skipped = {index[e["SOPInstanceUID"]] for e in run.report["skipped"]}
    assert sorted(written + sorted(skipped)) == list(range(10))
    for e in run.report["skipped"]:
        assert "isolated" in e["Reason"] and "in plane" in e["Reason"]
    vols = _inspect(capsys, inp, "--irregular", "split")
    assert len(vols) == len(run.outputs)
    assert all(v["Case"].startswith("lateral shift up to") for v in vols)


def test_lateral_shift_with_a_net_trend_is_still_a_lateral_shift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    px = list(LATERAL_PX)
    px[-1] = (2, 1)  # the last slice 1.4 mm / 0.8 mm off: a first-to-last trend of 5.12°
    s = _write(inp, _lateral(px))
    (vol,) = _inspect(capsys, inp)
    assert vol["GeometryDetail"]["case"] == "lateral shift"
    assert vol["Case"] == f"lateral shift up to {_expected_shift(s):g} mm"


# ------------------------------------------------------------------------------------------
# oblique and non-axial, --reorient
# ------------------------------------------------------------------------------------------

def _rotated(plane: tuple[Vec, Vec], axis: Vec, degrees: float) -> tuple[Vec, Vec]:
    r = rotation_matrix(axis, degrees)
    return (tuple(float(v) for v in r @ np.asarray(plane[0])),
            tuple(float(v) for v in r @ np.asarray(plane[1])))


SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
ORIENTATIONS: dict[str, tuple[Vec, Vec]] = {
    "sagittal": SAGITTAL,
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "axial-flipped": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "oblique-axial-20": oblique_directions(20.0, (1.0, 0.3, 0.2)),
    "oblique-sagittal-25": _rotated(SAGITTAL, (0.3, 1.0, 0.4), 25.0),
    "oblique-coronal-170": _rotated(((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)), (0.1, 1.0, 0.2), 170.0),
}


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_oblique_and_non_axial_are_exact_without_resampling(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    row, col = ORIENTATIONS[name]
    inp = tmp_path / "in"
    s = _write(inp, _along_normal([2.5 * k for k in range(8)], row, col, origin=(5, -7, 12)),
               row=row, col=col)
    run = _convert(inp, tmp_path / "out")
    ((image, sidecar),) = run.outputs
    assert sidecar["Resampled"] is False and sidecar["Sheared"] is False
    assert _sops(sidecar) == list(s.sop_instance_uids)
    np.testing.assert_allclose(_lps(nib.load(image)), s.affine_lps, atol=1e-4)
    (vol,) = _inspect(capsys, inp)
    assert vol["Case"] == "regular" and vol["Action"] == "write"


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_reorient_permutes_and_flips_only(tmp_path: Path, name: str) -> None:
    """--reorient: the nearest RAS orientation by axis permutation/flip only, so every voxel
    keeps its value and its world position; Reoriented.SliceAxis names the axis the slices
    now run along, and SourceInstances follow that axis."""
    row, col = ORIENTATIONS[name]
    inp = tmp_path / "in"
    s = _write(inp, _along_normal([2.5 * k for k in range(8)], row, col, origin=(5, -7, 12)),
               row=row, col=col)
    plain = _convert(inp, tmp_path / "plain")
    re = _convert(inp, tmp_path / "re", check=False, reorient=True)
    ((image0, _),) = plain.outputs
    ((image1, sidecar),) = re.outputs
    img0: Any = nib.load(image0)
    img1: Any = nib.load(image1)
    m0, m1 = img0.get_sform(), img1.get_sform()
    d0, d1 = np.asarray(img0.dataobj), np.asarray(img1.dataobj)
    assert sorted(d1.shape) == sorted(d0.shape)

    # the new axes are the nearest RAS axes: each column points mostly along +R, +A, +S
    for c in range(3):
        axis = m1[:3, c]
        assert int(np.argmax(np.abs(axis))) == c and axis[c] > 0, (name, m1)
    # permutation and flips only: every voxel maps onto a voxel with the same value
    idx0 = np.indices(d0.shape).reshape(3, -1).astype(float)
    idx1 = (np.linalg.inv(m1) @ m0 @ np.vstack([idx0, np.ones(idx0.shape[1])]))[:3]
    r = np.rint(idx1)
    assert np.max(np.abs(idx1 - r)) < 1e-3
    r = r.astype(int)
    assert np.all(r >= 0) and np.all(r < np.array(d1.shape)[:, None])
    assert np.array_equal(d1[r[0], r[1], r[2]], d0.reshape(-1))
    assert len({tuple(v) for v in r.T}) == d0.size

    # the slice axis: the voxel axis nearest to the slice normal, in RAS
    normal_ras = LPS_TO_RAS[:3, :3] @ _normal(row, col)
    axis = int(np.argmax(np.abs(normal_ras)))
    info = sidecar["Reoriented"]
    if info is None:  # already RAS: nothing to do
        assert np.allclose(m1, m0)
        return
    assert info["SliceAxis"] == axis
    assert info["SliceAxisFlipped"] is bool(normal_ras[axis] < 0)
    # SourceInstances run along SliceAxis in increasing index order, each on its plane
    inv1 = np.linalg.inv(LPS_TO_RAS @ m1)
    index = {uid: k for k, uid in enumerate(s.sop_instance_uids)}
    for n, entry in enumerate(sidecar["SourceInstances"]):
        ds = pydicom.dcmread(inp / entry["File"])
        assert str(ds.SOPInstanceUID) == entry["SOPInstanceUID"]
        ipp = frame_geometry(ds, entry["Frame"])[0]
        np.testing.assert_allclose(ipp, s.positions[index[entry["SOPInstanceUID"]]])
        assert (inv1 @ np.r_[ipp, 1.0])[axis] == pytest.approx(n, abs=0.01)


@pytest.mark.parametrize("tilt", [12.0, -30.0])
def test_reorient_keeps_a_sheared_tilt_in_place(tmp_path: Path, tilt: float) -> None:
    """--reorient on the sheared tilt stack: same voxel values at the same world positions."""
    inp = tmp_path / "in"
    _write(inp, _tilted(8, 2.0, tilt, *SAGITTAL), row=SAGITTAL[0], col=SAGITTAL[1],
           extra={"GantryDetectorTilt": tilt})
    plain = _convert(inp, tmp_path / "plain", PlanOptions(tilt="shear"))
    re = _convert(inp, tmp_path / "re", PlanOptions(tilt="shear"), check=False, reorient=True)
    ((image0, sc0),) = plain.outputs
    ((image1, sc1),) = re.outputs
    assert sc0["Sheared"] and sc1["Sheared"]
    img0: Any = nib.load(image0)
    img1: Any = nib.load(image1)
    assert int(img1.header["qform_code"]) == 0
    d0, d1 = np.asarray(img0.dataobj), np.asarray(img1.dataobj)
    idx0 = np.indices(d0.shape).reshape(3, -1).astype(float)
    idx1 = (np.linalg.inv(img1.get_sform()) @ img0.get_sform()
            @ np.vstack([idx0, np.ones(idx0.shape[1])]))[:3]
    r = np.rint(idx1)
    assert np.max(np.abs(idx1 - r)) < 1e-3
    r = r.astype(int)
    assert np.array_equal(d1[r[0], r[1], r[2]], d0.reshape(-1))

"""Tests of dicomvol.resample: synthetic stacks sampled from analytic functions of LPS position.

Every stack is built from f(x, y, z) evaluated at each source pixel's world position (its
own IPP, the shared IOP and PixelSpacing). A linear f must be reproduced by linear
interpolation up to float32 rounding wherever the output is in the acquired field; a smooth
nonlinear f within the interpolation error bound derived from the pixel and slice spacing.
The acquired field is computed here independently of the implementation, from the world
position of every output voxel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomvol.model.grids import MAX_OUTPUT_FACTOR, choose_spacing
from dicomvol.pixels.resample import ResampleResult, resample_stack

Func = Callable[[np.ndarray], np.ndarray]

ROWS, COLS = 20, 24
PS = (0.8, 1.1)  # (row spacing, column spacing)
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ORIGIN = np.array([-12.0, -9.5, -30.0])
LINEAR_TOL = 1e-3


def f_linear(w: np.ndarray) -> np.ndarray:
    return 0.7 * w[..., 0] - 0.45 * w[..., 1] + 1.3 * w[..., 2] + 20.0


# Nonlinear: a sum of sines along x, y, z; its Hessian is diagonal with |entries| <= H_MAX,
# so every directional second derivative is bounded by H_MAX.
_A = ((40.0, 9.0), (30.0, 11.0), (25.0, 7.0))  # (amplitude, length) along x, y, z
H_MAX = max(a / (L * L) for a, L in _A)


def f_smooth(w: np.ndarray) -> np.ndarray:
    return (_A[0][0] * np.sin(w[..., 0] / _A[0][1]) + _A[1][0] * np.cos(w[..., 1] / _A[1][1])
            + _A[2][0] * np.sin(w[..., 2] / _A[2][1]))


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix (degrees about x, then y, then z)."""
    a, b, c = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


OBLIQUE = tuple(float(v) for v in np.r_[rotation(20, -15, 35)[:, 0], rotation(20, -15, 35)[:, 1]])


def dirs(iop: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.asarray(iop[:3], dtype=np.float64)
    c = np.asarray(iop[3:], dtype=np.float64)
    return r, c, np.cross(r, c)


def make_stack(f: Func, ipps: np.ndarray, iop: Sequence[float]) -> list[np.ndarray]:
    """Slices (Rows, Columns) with pixel (j, i) = f(IPP + i PS[1] R + j PS[0] C)."""
    r, c, _ = dirs(iop)
    jj, ii = np.mgrid[0:ROWS, 0:COLS]
    out = []
    for ipp in ipps:
        w = ipp + ii[..., None] * PS[1] * r + jj[..., None] * PS[0] * c
        out.append(f(w))
    return out


def tilted_ipps(n: int, d: float, tilt_deg: float, iop: Sequence[float],
                ks: Sequence[int] | None = None) -> np.ndarray:
    """IPP_k = ORIGIN + k d (cos t n + sin t col_dir)."""
    _, c, nrm = dirs(iop)
    t = math.radians(tilt_deg)
    ks = range(n) if ks is None else ks
    return np.array([ORIGIN + k * d * (math.cos(t) * nrm + math.sin(t) * c) for k in ks])


def world_of_voxels(res: ResampleResult) -> np.ndarray:
    """World position of every output voxel, shape (X, Y, Z, 3)."""
    idx = np.indices(res.data.shape, dtype=np.float64)
    return np.moveaxis(np.tensordot(res.affine[:3, :3], idx, axes=1), 0, -1) + res.affine[:3, 3]


def field_masks(res: ResampleResult, ipps: np.ndarray, iop: Sequence[float],
                order: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent reference: (inside, outside, nearest slice index) per output voxel.

    A voxel draws on the source slice it hits (within 1e-6 mm along the normal) or the two
    bracketing slices (order 1) or the nearer one (order 0). It is inside the field when its
    world point projected along the normal onto each such slice lies within that slice's
    pixel-centre extent, outside when it falls clearly beyond some slice's extent.
    """
    r, c, nrm = dirs(iop)
    w = world_of_voxels(res).reshape(-1, 3)
    q_all = ipps @ nrm
    srt = np.argsort(q_all)
    q = q_all[srt]
    p = w @ nrm
    nearest = np.argmin(np.abs(p[:, None] - q[None, :]), axis=1)
    hit = np.abs(p - q[nearest]) <= 1e-6
    b = np.clip(np.searchsorted(q, p), 1, len(q) - 1)
    a = b - 1
    frac = (p - q[a]) / (q[b] - q[a])
    if order == 0:
        first = np.where(hit, nearest, np.where(frac <= 0.5, a, b))
        second = first
    else:
        first = np.where(hit, nearest, a)
        second = np.where(hit, nearest, b)
    inside = np.ones(len(p), dtype=bool)
    outside = np.zeros(len(p), dtype=bool)
    for s in (first, second):
        rel = w - ipps[srt[s]]
        u = rel @ r / PS[1]
        v = rel @ c / PS[0]
        inside &= (u >= -1e-5) & (u <= COLS - 1 + 1e-5) & (v >= -1e-5) & (v <= ROWS - 1 + 1e-5)
        outside |= (u < -1e-3) | (u > COLS - 1 + 1e-3) | (v < -1e-3) | (v > ROWS - 1 + 1e-3)
    shape = res.data.shape
    return inside.reshape(shape), outside.reshape(shape), srt[first].reshape(shape)


def check_orthogonal(res: ResampleResult, iop: Sequence[float]) -> None:
    r, c, nrm = dirs(iop)
    a = res.affine
    np.testing.assert_allclose(a[:3, 0], r * PS[1], atol=1e-12)
    np.testing.assert_allclose(a[:3, 1], c * PS[0], atol=1e-12)
    np.testing.assert_allclose(a[:3, 2], nrm * res.spacing, atol=1e-9)
    np.testing.assert_array_equal(a[3], [0, 0, 0, 1])
    gram = a[:3, :3].T @ a[:3, :3]
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-9)
    assert res.data.dtype == np.float32
    assert res.data.flags.f_contiguous


def check_extent_covers(res: ResampleResult, ipps: np.ndarray, iop: Sequence[float]) -> None:
    """Every source pixel centre lies inside the output grid, and the grid is tight.

    Along k the grid runs from the first slice to the last plane at or before the last slice
    (or at most 1 % of a step beyond it): the last slice lies less than one step beyond it.
    """
    r, c, _ = dirs(iop)
    inv = np.linalg.inv(res.affine)
    corners = np.array([[0, 0], [COLS - 1, 0], [0, ROWS - 1], [COLS - 1, ROWS - 1]], float)
    idx = []
    for ipp in ipps:
        w = ipp + corners[:, :1] * PS[1] * r + corners[:, 1:] * PS[0] * c
        idx.append((np.c_[w, np.ones(4)] @ inv.T)[:, :3])
    ijk = np.concatenate(idx)
    shape = np.array(res.data.shape)
    assert np.all(ijk[:, :2] >= -1e-6)
    assert np.all(ijk[:, :2] <= shape[:2] - 1 + 1e-6)
    assert np.all(ijk[:, 2] >= -1e-6)
    assert np.all(ijk[:, 2] < shape[2])
    assert np.min(ijk[:, 2]) == pytest.approx(0.0, abs=1e-6)
    # Tight: rounding out to whole pixels adds less than one pixel on each side.
    assert np.all(ijk[:, :2].min(axis=0) < 1)
    assert np.all(ijk[:, :2].max(axis=0) > shape[:2] - 2)


def check_values(res: ResampleResult, ipps: np.ndarray, iop: Sequence[float], f: Func,
                 tol: float, fill: float) -> np.ndarray:
    """In-field voxels equal f at their world position within tol; outside voxels equal fill."""
    inside, outside, _ = field_masks(res, ipps, iop)
    assert not np.any(inside & outside)
    expected = f(world_of_voxels(res))
    err = np.abs(res.data.astype(np.float64) - expected)[inside]
    assert inside.any()
    assert float(err.max()) <= tol, f"max error {err.max():.3g} > {tol:.3g}"
    assert np.all(res.data[outside] == np.float32(fill))
    return inside


def smooth_tol(res: ResampleResult, ipps: np.ndarray, iop: Sequence[float]) -> float:
    """Interpolation error bound: (ps_row^2 + ps_col^2 + max gap along n^2) / 8 * H_MAX."""
    q = np.sort(ipps @ dirs(iop)[2])
    gap = float(np.max(np.diff(q))) if len(q) > 1 else 0.0
    return (PS[0] ** 2 + PS[1] ** 2 + gap**2) / 8 * H_MAX + 1e-3


# ----------------------------------------------------------------------------- choose_spacing


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        ([0, 1, 2, 3, 5, 6], 1.0),
        ([0, 1, 2, 3, 5, 7, 10], 1.0),
        ([1.25 * i for i in range(21)] + [25 + 2.5 * i for i in range(1, 21)], 1.25),
        ([3.0 * i for i in range(15)], 3.0),
        ([-40 + 0.75 * i for i in (0, 1, 2, 4, 5, 6, 9, 10)], 0.75),
        ([0, 1.5, 4.0, 5.0], 0.5),  # intervals 1.5, 2.5, 1 -> common step 0.5
        ([9, 3, 0, 6, 12], 3.0),  # any order
    ],
)
def test_choose_spacing_common_step(positions: list[float], expected: float) -> None:
    s, reason = choose_spacing(positions)
    assert s == pytest.approx(expected, rel=1e-12)
    assert reason.startswith("common step")


def test_choose_spacing_refines_rounded_positions() -> None:
    # 0.625 mm slices written with 2 decimals: each interval alone is 0.62 or 0.63 mm.
    pos = [round(-100 + 0.625 * i, 2) for i in range(60)]
    s, reason = choose_spacing(pos)
    assert s == pytest.approx(0.625, abs=2e-4)
    assert reason.startswith("common step")
    dev = np.abs(np.subtract(pos, pos[0]) / s - np.rint(np.subtract(pos, pos[0]) / s))
    assert np.all(dev * s <= 0.01 * s)


def test_choose_spacing_jitter_falls_back_to_median() -> None:
    rng = np.random.default_rng(7)
    steps = 2.0 + rng.uniform(-0.3, 0.3, size=24)
    pos = np.concatenate([[0.0], np.cumsum(steps)])
    s, reason = choose_spacing(pos)
    assert "median" in reason
    median = float(np.median(steps))
    span = float(pos[-1] - pos[0])
    # The median, adjusted so that a whole number of steps spans the stack.
    assert s == pytest.approx(span / round(span / median), rel=1e-12)
    assert abs(s - median) <= median / 2 / round(span / median) + 1e-12


def test_choose_spacing_limits() -> None:
    # A step of 0.5 fits but would need 41 planes for 4 slices (> 4x): not allowed.
    s, reason = choose_spacing([0, 10, 20, 20.5])
    assert "median" in reason
    assert 20.5 / s + 1 <= MAX_OUTPUT_FACTOR * 4
    # Intervals 1 and 1.1 share only 0.1 = min/10 < min/8: not allowed.
    s, reason = choose_spacing([0, 1, 2.1, 3.1, 4.2])
    assert "median" in reason
    assert s >= 1 / 8
    # One slice 3 % of a step off the grid: no common step within 1 %.
    s, reason = choose_spacing([0, 1, 2.03, 3, 4])
    assert "median" in reason
    assert choose_spacing([0, 1, 2.03, 3, 4], rel_tolerance=0.05)[1].startswith("common step")
    # Duplicates count once; a single position gets the nominal spacing.
    assert choose_spacing([0, 0, 2, 2, 4])[0] == pytest.approx(2.0)
    assert choose_spacing([5.0])[0] == 1.0
    with pytest.raises(ValueError):
        choose_spacing([])
    with pytest.raises(ValueError):
        choose_spacing([0.0, float("nan")])


@settings(max_examples=60, deadline=None)
@given(
    step=st.floats(0.3, 5.0),
    start=st.floats(-300, 300),
    diffs=st.lists(st.integers(1, 3), min_size=1, max_size=30),
    jitter=st.floats(0.0, 0.004),
    seed=st.integers(0, 2**16),
)
def test_choose_spacing_property(step: float, start: float, diffs: list[int], jitter: float,
                                 seed: int) -> None:
    """Positions on multiples of a step (with jitter < 0.4 % of it): the coarsest common step
    is found and every position lies within 1 % of it from a grid plane."""
    ks = np.concatenate([[0], np.cumsum(diffs)])
    rng = np.random.default_rng(seed)
    pos = start + ks * step + rng.uniform(-jitter, jitter, size=ks.size) * step
    rng.shuffle(pos)
    s, reason = choose_spacing(pos)
    assert reason.startswith("common step")
    g = math.gcd(*diffs)
    assert s == pytest.approx(g * step, rel=0.01)
    x = np.sort(pos) - pos.min()
    assert np.all(np.abs(x - np.rint(x / s) * s) <= 0.01 * s * (1 + 1e-9))


# ----------------------------------------------------------------------------- resample_stack


def test_regular_orthogonal_is_identity() -> None:
    rng = np.random.default_rng(1)
    n, d = 12, 2.5
    ipps = tilted_ipps(n, d, 0.0, AXIAL)
    slices = [rng.normal(0, 300, size=(ROWS, COLS)).astype(np.float32) for _ in range(n)]
    perm = rng.permutation(n)
    for order in (1, 0):
        res = resample_stack([slices[p] for p in perm], [ipps[p] for p in perm], AXIAL, PS,
                             order=order, fill=-1024.0)
        assert res.data.shape == (COLS, ROWS, n)
        for k in range(n):
            np.testing.assert_array_equal(res.data[:, :, k], slices[k].T)
        expected = np.eye(4)
        expected[:3, 0] = [PS[1], 0, 0]
        expected[:3, 1] = [0, PS[0], 0]
        expected[:3, 2] = [0, 0, d]
        expected[:3, 3] = ORIGIN
        np.testing.assert_allclose(res.affine, expected, rtol=0, atol=1e-12)
        assert res.spacing == pytest.approx(d, rel=1e-12)
        assert res.used == tuple(int(np.flatnonzero(perm == k)[0]) for k in range(n))
        assert res.detail["planes_copied"] == n
        assert res.detail["in_plane_growth_pixels"] == [0, 0]


def test_regular_oblique_int16_is_identity() -> None:
    ipps = tilted_ipps(9, 1.7, 0.0, OBLIQUE)[::-1]  # given top to bottom
    slices = [np.arange(ROWS * COLS, dtype=np.int16).reshape(ROWS, COLS) * (k + 1) - 3000
              for k in range(9)][::-1]
    res = resample_stack(slices, ipps, OBLIQUE, PS)
    check_orthogonal(res, OBLIQUE)
    np.testing.assert_allclose(res.affine[:3, 3], ipps[-1], atol=1e-9)
    for k in range(9):
        np.testing.assert_array_equal(res.data[:, :, k], slices[8 - k].T.astype(np.float32))
    assert res.used == tuple(range(8, -1, -1))


@pytest.mark.parametrize("f", [f_linear, f_smooth])
def test_variable_spacing(f: Func) -> None:
    intervals = [1, 1, 1, 2, 2, 3]
    z = np.concatenate([[0.0], np.cumsum(intervals)])
    ipps = ORIGIN + np.outer(z, [0.0, 0.0, 1.0])
    slices = make_stack(f, ipps, AXIAL)
    res = resample_stack(slices, ipps, AXIAL, PS)
    check_orthogonal(res, AXIAL)
    assert res.spacing == pytest.approx(1.0, rel=1e-12)
    assert res.data.shape == (COLS, ROWS, 11)
    tol = LINEAR_TOL if f is f_linear else smooth_tol(res, ipps, AXIAL)
    inside = check_values(res, ipps, AXIAL, f, tol, fill=0.0)
    assert inside.all()  # no in-plane shift: the whole output is in the field
    # Every source position within 1 % of the spacing from a grid plane.
    x = (z - z[0]) / res.spacing
    assert np.all(np.abs(x - np.rint(x)) <= 0.01)
    assert res.used == tuple(range(len(z)))
    assert res.detail["planes_interpolated"] == 11 - len(z)
    json.dumps(res.detail)


@pytest.mark.parametrize("missing", [(7,), (8, 9, 10), (3, 9, 15)])
def test_missing_slices_interpolated(missing: tuple[int, ...]) -> None:
    n, d = 20, 1.5
    ks = [k for k in range(n) if k not in missing]
    ipps = tilted_ipps(n, d, 0.0, AXIAL, ks)
    slices = make_stack(f_linear, ipps, AXIAL)
    res = resample_stack(slices, ipps, AXIAL, PS, fill=-1024.0)
    check_orthogonal(res, AXIAL)
    assert res.spacing == pytest.approx(d, rel=1e-12)
    assert res.data.shape[2] == n
    check_values(res, ipps, AXIAL, f_linear, LINEAR_TOL, fill=-1024.0)
    expected = f_linear(world_of_voxels(res))
    for k in missing:  # the holes hold interpolated, exact values
        np.testing.assert_allclose(res.data[:, :, k], expected[:, :, k], atol=LINEAR_TOL)
    for pos, k in enumerate(ks):  # the acquired planes are copies
        np.testing.assert_array_equal(res.data[:, :, k], slices[pos].T.astype(np.float32))
    assert res.used == tuple(range(len(ks)))


@pytest.mark.parametrize("iop", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
@pytest.mark.parametrize("tilt", [5.0, -12.0, 30.0])
@pytest.mark.parametrize("spacing_factor", [None, 0.7])
def test_gantry_tilt(iop: tuple[float, ...], tilt: float, spacing_factor: float | None) -> None:
    n, d = 14, 2.0
    ipps = tilted_ipps(n, d, tilt, iop)
    step = d * math.cos(math.radians(tilt))
    spacing = None if spacing_factor is None else spacing_factor * step
    for f in (f_linear, f_smooth):
        slices = make_stack(f, ipps, iop)
        res = resample_stack(slices, ipps, iop, PS, spacing=spacing, fill=-1024.0)
        check_orthogonal(res, iop)
        assert res.spacing == pytest.approx(spacing or step, rel=1e-9)
        check_extent_covers(res, ipps, iop)
        shift_px = (n - 1) * d * abs(math.sin(math.radians(tilt))) / PS[0]
        assert res.data.shape[0] == COLS
        assert res.data.shape[1] == ROWS + math.ceil(shift_px - 1e-9)
        tol = LINEAR_TOL if f is f_linear else smooth_tol(res, ipps, iop)
        inside = check_values(res, ipps, iop, f, tol, fill=-1024.0)
        assert inside.mean() > 0.4
        assert res.used == tuple(range(n))
        assert res.detail["position_trend_angle_degrees"] == pytest.approx(abs(tilt), abs=1e-6)


@pytest.mark.parametrize("iop", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
def test_tilt_with_missing_and_variable_spacing(iop: tuple[float, ...]) -> None:
    ks = [0, 1, 2, 3, 5, 6, 8, 11, 12, 13, 14, 16]
    ipps = tilted_ipps(0, 1.8, -17.0, iop, ks)
    slices = make_stack(f_linear, ipps, iop)
    res = resample_stack(slices, ipps, iop, PS, fill=-5.0)
    check_orthogonal(res, iop)
    assert res.spacing == pytest.approx(1.8 * math.cos(math.radians(17.0)), rel=1e-9)
    assert res.data.shape[2] == 17
    check_extent_covers(res, ipps, iop)
    check_values(res, ipps, iop, f_linear, LINEAR_TOL, fill=-5.0)


@pytest.mark.parametrize("iop", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
def test_lateral_shift(iop: tuple[float, ...]) -> None:
    r, c, nrm = dirs(iop)
    n, d = 16, 1.5
    k = np.arange(n)
    a = 2.3 * np.sin(1.7 * k)  # mm along the row direction, not linear in k
    b = 1.1 * np.cos(0.9 * k) * k / 3  # mm along the column direction
    ipps = ORIGIN + np.outer(k * d, nrm) + np.outer(a, r) + np.outer(b, c)
    for f in (f_linear, f_smooth):
        slices = make_stack(f, ipps, iop)
        res = resample_stack(slices, ipps, iop, PS, fill=-1024.0)
        check_orthogonal(res, iop)
        assert res.spacing == pytest.approx(d, rel=1e-9)
        check_extent_covers(res, ipps, iop)
        # The first slice's pixel lattice, extended by whole pixels to every footprint.
        ia, jb = (a - a[0]) / PS[1], (b - b[0]) / PS[0]
        assert res.data.shape[0] == COLS + math.ceil(ia.max() - 1e-9) - math.floor(ia.min() + 1e-9)
        assert res.data.shape[1] == ROWS + math.ceil(jb.max() - 1e-9) - math.floor(jb.min() + 1e-9)
        assert res.detail["in_plane_offset_pixels"] == [math.floor(ia.min() + 1e-9),
                                                        math.floor(jb.min() + 1e-9)]
        tol = LINEAR_TOL if f is f_linear else smooth_tol(res, ipps, iop)
        check_values(res, ipps, iop, f, tol, fill=-1024.0)
        assert res.used == tuple(range(n))
    # Lateral shift with blending between planes (spacing not a divisor of the step).
    slices = make_stack(f_linear, ipps, iop)
    res = resample_stack(slices, ipps, iop, PS, spacing=0.65, fill=-1024.0)
    check_orthogonal(res, iop)
    check_values(res, ipps, iop, f_linear, LINEAR_TOL, fill=-1024.0)


@pytest.mark.parametrize("iop", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
@pytest.mark.parametrize("tilt", [0.0, 12.0])
def test_nearest_takes_values_of_nearest_slice(iop: tuple[float, ...], tilt: float) -> None:
    rng = np.random.default_rng(3)
    ks = [0, 1, 2, 4, 5, 7, 8, 9]
    ipps = tilted_ipps(0, 2.0, tilt, iop, ks)
    slices = [rng.integers(-1000, 3000, size=(ROWS, COLS)).astype(np.float64) for _ in ks]
    perm = rng.permutation(len(ks))
    ipps_p = ipps[perm]
    slices_p = [slices[p] for p in perm]
    res = resample_stack(slices_p, ipps_p, iop, PS, spacing=0.77, order=0, fill=-7.5)
    check_orthogonal(res, iop)
    inside, outside, nearest = field_masks(res, ipps_p, iop, order=0)
    assert inside.mean() > 0.4
    assert np.all(res.data[outside] == np.float32(-7.5))
    for k in range(res.data.shape[2]):
        m = inside[:, :, k]
        src = np.unique(nearest[:, :, k][m])
        assert src.size <= 1
        if src.size:
            allowed = np.unique(slices_p[int(src[0])])
            assert np.all(np.isin(res.data[:, :, k][m], allowed))
    assert res.detail["method"] == "nearest"


def test_used_indices() -> None:
    rng = np.random.default_rng(5)
    n, d = 12, 2.0
    ipps = tilted_ipps(n, d, 0.0, AXIAL)
    slices = make_stack(f_linear, ipps, AXIAL)
    perm = rng.permutation(n)
    ipps_p = ipps[perm]
    slices_p = [slices[p] for p in perm]
    by_position = tuple(int(np.flatnonzero(perm == k)[0]) for k in range(n))
    # Chosen and finer spacings: every slice within the output range contributes.
    assert resample_stack(slices_p, ipps_p, AXIAL, PS).used == by_position
    assert resample_stack(slices_p, ipps_p, AXIAL, PS, spacing=0.7 * d).used == by_position
    # A coarse grid (planes at 0, 6, 12, 18 mm) hits slices 0, 3, 6, 9 only.
    res = resample_stack(slices_p, ipps_p, AXIAL, PS, spacing=3 * d)
    assert res.data.shape[2] == 4
    assert res.used == tuple(by_position[k] for k in (0, 3, 6, 9))
    assert sorted(res.detail["unused_slices"]) == sorted(set(range(n)) - set(res.used))


def test_detail_is_json_ready() -> None:
    ipps = tilted_ipps(10, 2.0, 12.0, AXIAL)
    res = resample_stack(make_stack(f_linear, ipps, AXIAL), ipps, AXIAL, PS, fill=-1024.0)
    detail: dict[str, Any] = json.loads(json.dumps(res.detail))
    for key in ("method", "spacing_mm", "spacing_reason", "fill", "in_plane_extent",
                "n_output_slices"):
        assert key in detail
    assert detail["method"] == "linear"
    assert detail["fill"] == -1024.0
    assert detail["n_output_slices"] == res.data.shape[2]
    assert detail["spacing_source"] == "chosen"


def test_single_slice() -> None:
    ipps = tilted_ipps(1, 1.0, 0.0, AXIAL)
    slices = make_stack(f_linear, ipps, AXIAL)
    res = resample_stack(slices, ipps, AXIAL, PS)
    assert res.data.shape == (COLS, ROWS, 1)
    np.testing.assert_array_equal(res.data[:, :, 0], slices[0].T.astype(np.float32))
    assert res.used == (0,)


def test_invalid_input() -> None:
    ipps = tilted_ipps(4, 1.0, 0.0, AXIAL)
    slices = make_stack(f_linear, ipps, AXIAL)
    with pytest.raises(ValueError, match="order"):
        resample_stack(slices, ipps, AXIAL, PS, order=3)
    with pytest.raises(ValueError, match="positions"):
        resample_stack(slices, ipps[:3], AXIAL, PS)
    with pytest.raises(ValueError, match="shape"):
        resample_stack([*slices[:3], np.zeros((ROWS, COLS + 1))], ipps, AXIAL, PS)
    with pytest.raises(ValueError, match="share a position"):
        resample_stack(slices, np.array([ipps[0], ipps[1], ipps[1] + [1, 0, 0], ipps[3]]),
                       AXIAL, PS)
    with pytest.raises(ValueError, match="spacing"):
        resample_stack(slices, ipps, AXIAL, PS, spacing=0.0)
    with pytest.raises(ValueError):
        resample_stack([], [], AXIAL, PS)

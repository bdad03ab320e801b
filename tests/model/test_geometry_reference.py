"""The plain-Python geometry of the planner against the numpy formulas it replaced
(random oblique stacks, exact and perturbed): the voxel errors, the affine and its
inverse, and the in-plane line fit of the stack measures."""

from __future__ import annotations

import numpy as np
import pytest

from dicomvol.model import geometry
from dicomvol.model.records import FrameRecord
from dicomvol.plan.stacks import _line_residual
from dicomvol.testing.geometry import oblique_directions


def _numpy_voxel_errors(affine: np.ndarray, frames: list[FrameRecord]) -> np.ndarray:
    """The vectorised formula of dicomvol 0.1 (world corners through np.linalg.inv)."""
    inv = np.linalg.inv(affine)
    n = len(frames)
    pos = np.array([f.position for f in frames], dtype=float)
    iop = np.array([f.orientation for f in frames], dtype=float)
    ps = np.array([f.pixel_spacing for f in frames], dtype=float)
    size = np.array([(f.columns - 1, f.rows - 1) for f in frames], dtype=float)
    ci = size[:, :1] * np.array([0.0, 1.0, 0.0, 1.0])
    cj = size[:, 1:] * np.array([0.0, 0.0, 1.0, 1.0])
    world = (pos[:, None, :] + (ci * ps[:, 1:2])[..., None] * iop[:, None, 0:3]
             + (cj * ps[:, 0:1])[..., None] * iop[:, None, 3:6])
    index = world @ inv[:3, :3].T + inv[:3, 3]
    expected = np.stack([ci, cj, np.broadcast_to(np.arange(n, dtype=float)[:, None], ci.shape)],
                        axis=-1)
    out: np.ndarray = np.max(np.abs(index - expected), axis=(1, 2))
    return out


def _stack(rng: np.random.Generator, n: int, jitter: float) -> list[FrameRecord]:
    row, col = oblique_directions(float(rng.uniform(0, 40)), tuple(rng.normal(size=3)))
    normal = np.cross(row, col)
    step = normal * rng.uniform(0.5, 5) + (np.asarray(row) * rng.uniform(0, 0.5)
                                          if rng.random() < 0.3 else 0.0)
    origin = rng.normal(size=3) * 100
    frames = []
    for k in range(n):
        p = origin + k * step + rng.normal(size=3) * jitter
        frames.append(_frame(tuple(map(float, p)), (*map(float, row), *map(float, col)),
                             (float(rng.uniform(0.3, 2)),) * 2, int(rng.integers(2, 600)),
                             int(rng.integers(2, 600))))
    return frames


def _frame(position: tuple[float, ...], orientation: tuple[float, ...],
           spacing: tuple[float, float], rows: int, columns: int) -> FrameRecord:
    return FrameRecord(
        path="/in/f", rel="f", sop_instance_uid="1.2", sop_class_uid="", frame=1,
        number_of_frames=1, series_instance_uid="s", study_instance_uid="", modality="CT",
        series_number=1, series_description="", instance_number=1, image_type=(),
        rows=rows, columns=columns, samples_per_pixel=1, photometric="MONOCHROME2",
        bits_allocated=16, bits_stored=16, pixel_representation=0, transfer_syntax="",
        orientation=orientation, position=position,  # type: ignore[arg-type]
        pixel_spacing=spacing, slice_thickness=None, spacing_between_slices=None,
        rescale_slope=1.0, rescale_intercept=0.0, echo_number=None, echo_time=None,
        acquisition_number=None, temporal_position=None, trigger_time=None,
        acquisition_time=None)


@pytest.mark.parametrize("jitter", [0.0, 1e-4, 0.05, 2.0])
def test_voxel_errors_and_affine_agree_with_numpy(jitter: float) -> None:
    rng = np.random.default_rng(int(jitter * 1e4) + 7)
    for _ in range(40):
        frames = _stack(rng, int(rng.integers(1, 30)), jitter)
        rows = geometry.affine_for(frames, 2.0)
        affine = np.array(rows)
        ours = np.array(geometry.voxel_errors(rows, frames))
        reference = _numpy_voxel_errors(affine, frames)
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)
        inv, shift = geometry._inverse(rows)
        np.testing.assert_allclose(np.array(inv), np.linalg.inv(affine)[:3, :3], atol=1e-12,
                                   rtol=1e-9)
        np.testing.assert_allclose(shift, np.linalg.inv(affine)[:3, 3], atol=1e-9, rtol=1e-9)
        assert geometry.shear_degrees(rows) == pytest.approx(geometry.shear_degrees(affine))


def test_line_residual_is_numpy_polyfit() -> None:
    rng = np.random.default_rng(3)
    for n in (3, 4, 10, 200):
        x = np.sort(rng.uniform(-100, 100, n))
        y = 0.3 * x + 5 + rng.normal(size=n) * rng.choice([0.0, 1e-3, 2.0])
        fit = np.polyfit(x, y, 1)
        reference = float(np.max(np.abs(y - np.polyval(fit, x))))
        assert _line_residual(list(x), list(y)) == pytest.approx(reference, rel=1e-6, abs=1e-9)


def test_singular_affine_is_a_geometry_error() -> None:
    from dicomvol.errors import GeometryError

    with pytest.raises(GeometryError, match="singular"):
        geometry._inverse(((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0),
                           (0.0, 0.0, 0.0, 1.0)))

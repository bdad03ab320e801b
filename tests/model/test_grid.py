"""VolumeGeometry, the pixel-free twin of Volume: the same geometry API, on plans and volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dicomvol
from dicomvol.constants import SHEAR_TOLERANCE_DEGREES
from dicomvol.model.grid import VolumeGeometry
from dicomvol.testing import oblique_directions, write_series

#: Millimetres: how closely mapped points must agree.
TOL_MM = 1e-6


def _oblique(tmp_path: Path) -> tuple[dicomvol.VolumePlan, dicomvol.Volume]:
    row, col = oblique_directions(25.0, (1.0, 0.5, 0.2))
    write_series(tmp_path, shape=(12, 10, 7), row_dir=row, col_dir=col, slice_spacing=2.0)
    (plan,) = dicomvol.scan([tmp_path]).plans
    return plan, dicomvol.read_volume(plan)


def test_plan_geometry_is_the_volume_geometry(tmp_path: Path) -> None:
    plan, volume = _oblique(tmp_path)
    grid = plan.geometry
    assert isinstance(grid, VolumeGeometry)
    assert grid.spatial_shape == volume.spatial_shape == (12, 10, 7)
    assert grid.frame_of_reference_uid == volume.frame_of_reference_uid
    assert grid.frame_of_reference_uid
    assert grid.geometry_equal(volume) and volume.geometry.geometry_equal(grid)
    assert grid.spacing == pytest.approx(volume.spacing)
    assert np.allclose(grid.direction, volume.direction)


def test_index_and_world_mappings_invert_each_other(tmp_path: Path) -> None:
    plan, volume = _oblique(tmp_path)
    rng = np.random.default_rng(0)
    idx = rng.uniform(-1, 12, size=(20, 3))
    world = volume.map_indices_to_reference(idx)
    assert np.allclose(plan.geometry.map_reference_to_indices(world), idx, atol=1e-9)
    corner = volume.map_indices_to_reference([0, 0, 0])
    assert np.allclose(corner, volume.position, atol=TOL_MM)
    # voxel (i, j, k) sits where slice k's DICOM pixel (row j, column i) is
    pos = np.asarray(plan.frames[0][3].position)
    row_dir = np.asarray(plan.first.orientation[:3])
    col_dir = np.asarray(plan.first.orientation[3:])
    ps = plan.first.pixel_spacing
    expected = pos + 5 * ps[1] * row_dir + 2 * ps[0] * col_dir
    assert np.allclose(volume.map_indices_to_reference([5, 2, 3]), expected, atol=TOL_MM)
    assert tuple(volume.map_reference_to_indices(expected, round_output=True)) == (5, 2, 3)


def test_direction_is_orthonormal_and_unsheared(tmp_path: Path) -> None:
    _, volume = _oblique(tmp_path)
    d = volume.direction
    assert np.allclose(d.T @ d, np.eye(3), atol=1e-9)
    assert not volume.geometry.sheared
    assert volume.geometry.shear_degrees < SHEAR_TOLERANCE_DEGREES  # DS rounding only


def test_geometry_equal_notices_every_difference() -> None:
    a = VolumeGeometry(np.eye(4), (4, 5, 6), "1.2.3")
    assert a.geometry_equal(VolumeGeometry(np.eye(4), (4, 5, 6), "1.2.3"))
    assert not a.geometry_equal(VolumeGeometry(np.eye(4), (4, 5, 7), "1.2.3"))
    assert not a.geometry_equal(VolumeGeometry(np.eye(4), (4, 5, 6), "1.2.4"))
    moved = np.eye(4)
    moved[0, 3] = 0.01
    assert not a.geometry_equal(VolumeGeometry(moved, (4, 5, 6), "1.2.3"))
    sheared = np.eye(4)
    sheared[0, 2] = 0.5
    assert VolumeGeometry(sheared, (4, 5, 6)).sheared

"""The measurements behind the dcm2niix miss kinds, on synthetic series with known truth."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from dicomvol.testing import grids, misses, reproduce, write_series

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SHAPE = (8, 6, 5)


def _nifti(path: Path, values: np.ndarray, affine_lps: np.ndarray) -> reproduce.Image:
    img = nib.Nifti1Image(values.astype(np.float32), LPS_TO_RAS @ affine_lps)
    img.set_sform(LPS_TO_RAS @ affine_lps, code=1)
    nib.save(img, str(path))
    return reproduce.Image(path)


def test_match_slices_measures_a_stack_that_ignores_the_tilt(tmp_path: Path) -> None:
    """A tilted series written under its true (sheared) affine has every slice on its IPP;
    under an orthogonal affine with the slice spacing along the normal (dcm2niix's raw stack),
    slice k sits k times the difference of the two slice vectors off: the measure finds it."""
    tilt = np.radians(15.0)
    step = 3.0  # along the table (z); the plane's normal is tilted off z
    positions = [(0.0, 0.0, k * step) for k in range(SHAPE[2])]
    s = write_series(tmp_path / "in", shape=SHAPE, positions=positions,
                     col_dir=(0, np.cos(tilt), -np.sin(tilt)), shuffle_seed=3)
    true = _nifti(tmp_path / "true.nii", s.values, s.affine_lps)
    errors = grids.match_slices(true, list(s.paths))
    assert errors is not None and float(errors.max()) < 1e-4
    raw = s.affine_lps.copy()
    normal = np.cross(raw[:3, 0], raw[:3, 1])
    normal /= np.linalg.norm(normal)
    spacing = float(normal @ raw[:3, 2])
    raw[:3, 2] = normal * spacing
    stack = _nifti(tmp_path / "raw.nii", s.values, raw)
    errors = grids.match_slices(stack, list(s.paths))
    assert errors is not None
    expected = [float(np.linalg.norm(s.affine_lps[:3, 2] - raw[:3, 2])) * k
                for k in range(SHAPE[2])]
    np.testing.assert_allclose(errors, expected, atol=1e-4)
    assert expected[-1] > misses.PLACEMENT_TOL_MM
    # a slice whose pixels match no file: no measure
    other = _nifti(tmp_path / "other.nii", s.values + 1.0, s.affine_lps)
    assert grids.match_slices(other, list(s.paths)) is None


def test_header_support_and_planes_through_sources(tmp_path: Path) -> None:
    s = write_series(tmp_path / "in", shape=SHAPE, shuffle_seed=4)
    true = _nifti(tmp_path / "true.nii", s.values, s.affine_lps)
    median, inside = grids.header_support(true, list(s.paths))
    assert median < 1e-3 and inside == 1.0
    assert grids.planes_through_sources(true, list(s.paths)) == 1.0
    shifted = s.affine_lps.copy()
    shifted[:3, 3] += shifted[:3, 2] * 0.5  # half a slice along the normal
    half = _nifti(tmp_path / "half.nii", s.values, shifted)
    assert grids.planes_through_sources(half, list(s.paths)) == 0.0
    median, _ = grids.header_support(half, list(s.paths))
    assert median > 1.0


def test_sub_grid_and_same_grid(tmp_path: Path) -> None:
    s = write_series(tmp_path / "in", shape=SHAPE, shuffle_seed=5)
    whole = _nifti(tmp_path / "whole.nii", s.values, s.affine_lps)
    part_affine = s.affine_lps.copy()
    part_affine[:3, 3] += part_affine[:3, 2] * 2  # slices 2 and 3 of the whole
    part = _nifti(tmp_path / "part.nii", s.values[:, :, 2:4], part_affine)
    found = grids.sub_grid_values(part, whole)
    assert found is not None
    np.testing.assert_allclose(found[0], found[1], atol=1e-3)
    off = part_affine.copy()
    off[:3, 3] += off[:3, 2] * 0.3
    assert grids.sub_grid_values(_nifti(tmp_path / "off.nii", s.values[:, :, 2:4], off),
                                 whole) is None
    filled = s.values.copy()
    filled[0, :, :] = -1024.0
    ours = _nifti(tmp_path / "ours.nii", filled, s.affine_lps)
    same = grids.resampled_same_grid(whole, ours, -1024.0)
    assert same is not None and same[0] == 0 and same[1] > 0
    assert not grids.outside_sources(ours, same[3], list(s.paths)).any()  # all in the field
    beyond = np.array([[-1.0, 0.0, 0.0], [0.0, SHAPE[1] + 0.5, 2.0], [3.0, 3.0, 3.0]])
    assert grids.outside_sources(ours, beyond, list(s.paths)).tolist() == [True, True, False]
    noisy = filled.copy()
    noisy[3, 3, 3] += 10.0
    same = grids.resampled_same_grid(whole, _nifti(tmp_path / "noisy.nii", noisy,
                                                   s.affine_lps), -1024.0)
    assert same is not None and same[0] == 1


def test_tiles_in_slide(tmp_path: Path) -> None:
    """Frames stacked as slices are found as tiles of the written slide level (in-plane flips
    allowed); a frame that is no tile is not."""
    import tifffile

    level = np.random.default_rng(7).integers(0, 255, (20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "slide.tif", level)
    tiles = [level[r:r + 10, c:c + 10].T for r in (0, 10) for c in (0, 10, 20)]
    stack = np.stack([tiles[0], tiles[4][::-1], tiles[5][:, ::-1]], axis=-1).astype(float)
    image = _nifti(tmp_path / "stack.nii", stack, np.eye(4))
    assert grids.tiles_in_slide(image, tmp_path / "slide.tif") == 1.0
    stack[:, :, 2] = 300.0
    image = _nifti(tmp_path / "stack2.nii", stack, np.eye(4))
    assert abs(grids.tiles_in_slide(image, tmp_path / "slide.tif") - 2 / 3) < 1e-9

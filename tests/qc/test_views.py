"""QC rendering: views in patient orientation, their letters, windowing, PNG, sampling.

Expectations come from the DICOM patient frame (LPS) and the radiological
display convention, written out here by hand: an axial view has the patient's
right on the screen's left and anterior at the top; a coronal view right on
the left and superior at the top; a sagittal view anterior on the left and
superior at the top. The marker tests place a bright rod by its *patient*
coordinates (through the volume's own affine, computed here) and check the
screen quadrant it lands in, for grids in every orientation, flipped, permuted,
oblique and sheared.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dicomvol.qc.png import encode_png
from dicomvol.qc.sample import SliceSampler, sample_array
from dicomvol.qc.thumbs import drawn, render_views
from dicomvol.qc.views import direction_letters, view_specs
from dicomvol.qc.window import apply_window, ct_window, windows_for
from pngread import decode_png

#: Grey-level tolerance of window tests (rounding to uint8).
GREY_TOLERANCE = 1
#: Mean of a quadrant the marker does not reach.
EMPTY_TOLERANCE = 1e-6
SHAPE = (40, 36, 30)


def affine_from(row: tuple[float, ...], col: tuple[float, ...], step: tuple[float, ...],
                spacing: tuple[float, float] = (0.9, 1.1),
                origin: tuple[float, ...] = (-20.0, 15.0, 40.0)) -> np.ndarray:
    """An LPS affine from DICOM-style directions: column i along ``row``, j along ``col``."""
    a = np.eye(4)
    a[:3, 0] = np.asarray(row) * spacing[1]
    a[:3, 1] = np.asarray(col) * spacing[0]
    a[:3, 2] = step
    a[:3, 3] = origin
    return a


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


AXIAL = affine_from((1, 0, 0), (0, 1, 0), (0, 0, 2.5))
CORONAL = affine_from((1, 0, 0), (0, 0, -1), (0, 2.0, 0))  # normal row x col = +P
SAGITTAL = affine_from((0, 1, 0), (0, 0, -1), (3.0, 0, 0))  # normal = +L
FLIPPED_X = affine_from((-1, 0, 0), (0, 1, 0), (0, 0, 2.5))  # rows run to the patient's right
FEET_FIRST = affine_from((1, 0, 0), (0, 1, 0), (0, 0, -2.5))  # slices step inferior
PERMUTED = affine_from((0, 0, 1), (1, 0, 0), (0, 1.5, 0))  # i along S, j along L, k along P


def _oblique() -> np.ndarray:
    m = rot_z(30.0)
    return affine_from(tuple(m[:, 0]), tuple(m[:, 1]), tuple(2.5 * m[:, 2]))


def _sheared() -> np.ndarray:  # gantry tilt: the slice step leans 15° toward P
    t = math.radians(15.0)
    return affine_from((1, 0, 0), (0, 1, 0), (0, 2.5 * math.sin(t), 2.5 * math.cos(t)))


OBLIQUE_AXIAL = _oblique()
SHEARED = _sheared()
TILTED_SAG = (lambda m: affine_from(tuple(m @ (0, 1, 0)), tuple(m @ (0, 0, -1)),
                                    tuple(3.0 * (m @ (1, 0, 0)))))(rot_x(25.0))

GRIDS = {"axial": AXIAL, "coronal": CORONAL, "sagittal": SAGITTAL, "flipped x": FLIPPED_X,
         "feet first": FEET_FIRST, "permuted": PERMUTED, "oblique axial": OBLIQUE_AXIAL,
         "sheared": SHEARED, "tilted sagittal": TILTED_SAG}

#: (left, right, top, bottom) of each view of a grid aligned with the patient axes.
STANDARD = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"),
            "sagittal": ("A", "P", "S", "I")}


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal", "flipped x", "feet first",
                                  "permuted"])
def test_letters_of_aligned_grids_are_standard(name: str) -> None:
    # Whatever the voxel order, an aligned grid is drawn in the standard orientation.
    specs = view_specs(GRIDS[name], SHAPE)
    assert [s.plane for s in specs] == ["axial", "coronal", "sagittal"]
    for spec in specs:
        assert spec.letters.as_tuple() == STANDARD[spec.plane], (name, spec.plane)


def test_letters_of_an_oblique_axial_grid() -> None:
    # Rows along (cos 30, sin 30, 0): toward L and P; columns along (-sin 30, cos 30, 0).
    axial = view_specs(OBLIQUE_AXIAL, SHAPE)[0]
    assert axial.letters.as_tuple() == ("RA", "LP", "AL", "PR")


def test_letters_of_a_sheared_grid_follow_the_tilted_slice_step() -> None:
    # The k axis leans 15° toward P: in the sagittal view, screen down is I and a little A.
    # sin 15° = 0.26 >= LETTER_MIN_COMPONENT, so the secondary letter shows.
    sagittal = view_specs(SHEARED, SHAPE)[2]
    assert sagittal.letters.as_tuple() == ("A", "P", "SP", "IA")


def test_direction_letters() -> None:
    assert direction_letters(np.array([0.0, 0.0, 1.0])) == "S"
    assert direction_letters(np.array([-1.0, 0.1, 0.0])) == "R"  # 0.1 < 0.2: not named
    assert direction_letters(np.array([0.5, -0.8, 0.3])) == "ALS"


def _rod_volume(affine: np.ndarray, plane: str) -> np.ndarray:
    """Zeros with a bright rod toward the view's top-right corner, placed in patient space.

    The rod runs through every plane of the view, along the diagonal between
    screen right and screen top: axial L + A (along S), coronal L + S (along P),
    sagittal P + S (along L). A grid rotated less than 45° keeps it in that quadrant.
    """
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    world = np.einsum("ab,bijk->aijk", affine[:3, :3], np.stack([ii, jj, kk]).astype(float))
    centre = affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2)
    rel = world - centre[:, None, None, None]
    diagonal, across = {"axial": ((1, -1, 0), (1, 1, 0)), "coronal": ((1, 0, 1), (1, 0, -1)),
                        "sagittal": ((0, 1, 1), (0, 1, -1))}[plane]
    along = np.einsum("a,aijk->ijk", np.array(diagonal) / math.sqrt(2), rel)
    side = np.einsum("a,aijk->ijk", np.array(across) / math.sqrt(2), rel)
    width = 0.15 * min(np.ptp(rel[0]), np.ptp(rel[1]), np.ptp(rel[2]))
    return np.where((along > width) & (np.abs(side) < width), 1000.0, 0.0).astype(np.float32)


def _quadrant_means(image: np.ndarray) -> dict[str, float]:
    h, w = image.shape
    return {"top left": float(image[: h // 2, : w // 2].mean()),
            "top right": float(image[: h // 2, w // 2:].mean()),
            "bottom left": float(image[h // 2:, : w // 2].mean()),
            "bottom right": float(image[h // 2:, w // 2:].mean())}


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("view", [0, 1, 2])
def test_marker_shows_in_the_expected_quadrant(grid: str, view: int) -> None:
    affine = GRIDS[grid]
    spec = view_specs(affine, SHAPE)[view]
    data = _rod_volume(affine, spec.plane)
    assert data.any(), "the rod must exist in the volume"
    sample = sample_array(data)
    image = drawn(sample.planes[(0, spec.fixed_axis)], spec)
    means = _quadrant_means(image)
    assert max(means, key=lambda q: means[q]) == "top right", (grid, spec.plane, means)
    assert means["bottom left"] < EMPTY_TOLERANCE


def test_physical_aspect_ratio_of_a_thick_slice_view() -> None:
    # 40 columns of 1.1 mm across, 30 slices of 2.5 mm down in the coronal view of an axial
    # grid: 44 mm x 75 mm.
    coronal = view_specs(AXIAL, SHAPE)[1]
    image = drawn(np.zeros((SHAPE[0], SHAPE[2]), np.float32), coronal)
    height, width = image.shape
    assert height / width == pytest.approx(75.0 / 44.0, rel=0.02)


def test_ct_windows() -> None:
    soft = ct_window("soft tissue", 40.0, 400.0)
    grey = apply_window(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), soft)
    assert np.allclose(grey.astype(int), [0, 0, 128, 255, 255], atol=GREY_TOLERANCE)
    lung = ct_window("lung", -600.0, 1500.0)
    grey = apply_window(np.array([-1350.0, -600.0, 150.0]), lung)
    assert np.allclose(grey.astype(int), [0, 128, 255], atol=GREY_TOLERANCE)
    names = [w.name for w in windows_for("CT", [])]
    assert names == ["soft tissue W400 L40", "lung W1500 L-600"]


def test_percentile_windows_for_mr_and_pet() -> None:
    ramp = np.arange(0.0, 1001.0)  # percentile p of 0..1000 is 10 p
    (mr,) = windows_for("MR", [ramp])
    assert (mr.low, mr.high) == pytest.approx((10.0, 990.0), abs=1e-6)
    assert not mr.inverted
    (pet,) = windows_for("PT", [ramp])
    assert (pet.low, pet.high) == pytest.approx((0.0, 995.0), abs=1e-6)
    assert pet.inverted  # uptake dark on white
    grey = apply_window(np.array([0.0, 995.0]), pet)
    assert grey.tolist() == [255, 0]
    (flat,) = windows_for("MR", [np.full(10, 7.0)])
    assert flat.high > flat.low  # a constant image still has a usable window


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_round_trip(channels: int) -> None:
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, size=(7, 11, channels), dtype=np.uint8)
    decoded = decode_png(encode_png(image if channels > 1 else image[:, :, 0]))
    assert np.array_equal(decoded, image)


def test_streamed_sample_equals_in_memory_sample() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(-1000, 3000, size=(9, 7, 5, 4), dtype=np.int16)
    sampler = SliceSampler(data.shape, mip=True)
    for n in range(2):  # the writer may start over: n == 0 resets
        for t in range(data.shape[3]):
            for k in range(data.shape[2]):
                sampler(t * data.shape[2] + k, np.asfortranarray(data[:, :, k, t]))
        if n == 0:
            sampler(0, np.zeros((9, 7), np.int16))
    streamed = sampler.result(0.5, -10.0)
    memory = sample_array(data, 0.5, -10.0, mip=True)
    assert streamed.times == memory.times == (0, 3)
    assert streamed.planes.keys() == memory.planes.keys()
    for key in memory.planes:
        assert np.array_equal(streamed.planes[key], memory.planes[key]), key
        assert np.array_equal(streamed.mips[key], memory.mips[key]), key
    # independently: the coronal plane of the last volume and its projection
    assert np.array_equal(memory.planes[(3, 1)], data[:, 3, :, 3] * np.float32(0.5) - 10)
    assert np.array_equal(memory.mips[(3, 1)], data[:, :, :, 3].max(axis=1) * np.float32(0.5)
                          - 10)


def test_pet_views_include_projections_that_show_an_off_centre_hot_spot(tmp_path: Path) -> None:
    data = np.zeros(SHAPE, np.float32)
    data += 10.0  # background uptake
    # a hot spot at the patient's left, superior, away from every centre plane
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    world = np.einsum("ab,bijk->aijk", AXIAL[:3, :3], np.stack([ii, jj, kk]).astype(float))
    centre = AXIAL[:3, :3] @ ((np.array(SHAPE) - 1) / 2)
    x, y, z = (world - centre[:, None, None, None])
    data[(x > 10) & (abs(y - 8) < 3) & (z > 20)] = 5000.0
    thumbs = render_views(sample_array(data, mip=True), AXIAL, "PT", tmp_path, "pet")
    captions = [t.caption.split(" [")[0] for t in thumbs]
    assert captions[3:] == ["coronal MIP 0-99.5 %", "sagittal MIP 0-99.5 %"]
    coronal_view = decode_png(tmp_path / thumbs[1].file)[..., 0]
    coronal_mip = decode_png(tmp_path / thumbs[3].file)[..., 0]
    assert coronal_view.min() > 0  # no hot spot in the centre plane (inverted: hot is dark)
    h, w = coronal_mip.shape
    assert coronal_mip[: h // 2, w // 2:].min() == 0  # the projection shows it, top right
    assert coronal_mip[h // 2:, : w // 2].min() > 0

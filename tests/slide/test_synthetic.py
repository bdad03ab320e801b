"""Synthetic slides with known pixels: sparse tiles, concatenations, optical paths, focal
planes, JPEG/J2K colour variants, offset tables, regions, dask."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import dicomvol
from dicomvol.errors import RegionError
from dicomvol.testing.slides import SlideSpec, smooth_image, write_slide

pytest.importorskip("imagecodecs")
warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")

#: Mean absolute error of a correctly decoded 4:2:0 JPEG at quality 95 stays below this;
#: a wrong colour transform gives tens of grey levels.
RIGHT_COLOUR_MEAN_ERROR = 2.0
WRONG_COLOUR_MEAN_ERROR = 10.0


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return smooth_image(150, 200, 3, seed=3)


def test_sparse_shuffled_with_holes(tmp_path: Path, rgb: np.ndarray) -> None:
    holes = frozenset({(1, 1), (2, 3)})
    write_slide(SlideSpec([[rgb]], tile=(64, 64), sparse=True, shuffle=True, holes=holes),
                tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    level = slide.levels[0]
    assert level.sparse and sorted(level.missing_tiles()) == [(0, 0, 1, 1), (0, 0, 2, 3)]
    expected = rgb.copy()
    for r, c in holes:
        expected[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] = 255  # white for brightfield
    np.testing.assert_array_equal(slide.read_level(0), expected)
    filled = slide.read_region(0, 60, 60, 10, 10, fill=7)  # crosses into hole (1, 1)
    assert (filled[4:, 4:] == 7).all() and np.array_equal(filled[:4, :4], rgb[60:64, 60:64])


def test_concatenation(tmp_path: Path, rgb: np.ndarray) -> None:
    paths = write_slide(SlideSpec([[rgb]], tile=(64, 64), concatenation=3), tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    assert len(paths) == 3 and slide.levels[0].concatenated
    assert len(slide.levels[0].instances) == 3 and slide.levels[0].n_frames == 12
    np.testing.assert_array_equal(slide.read_level(0), rgb)


def test_optical_paths_and_focal_planes(tmp_path: Path) -> None:
    grey = [[smooth_image(100, 130, 1, seed=10 * p + z, dtype="uint16") for z in range(2)]
            for p in range(2)]
    write_slide(SlideSpec(grey, tile=(32, 48), sparse=True, shuffle=True,
                          path_names=["DAPI", "FITC"], z_um=[0.0, 1.5]), tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    assert slide.optical_paths == ("1", "2") and slide.focal_planes == (0.0, 1.5)
    assert [p.description for p in slide.info.optical_paths] == ["DAPI", "FITC"]
    for p in range(2):
        for z in range(2):
            got = slide.read_level(0, path=p, z=z)
            assert got.dtype == np.uint16
            np.testing.assert_array_equal(got, grey[p][z])
    np.testing.assert_array_equal(slide.read_region(0, 5, 7, 60, 40, path="2", z=1.5),
                                  grey[1][1][7:47, 5:65])
    with pytest.raises(RegionError):
        slide.read_region(0, 0, 0, 4, 4, path="3")


@pytest.mark.parametrize("variant, decoded", [("jfif", "YCbCr"), ("adobe0", "RGB"),
                                              ("adobe1", "YCbCr"), ("rgbids", "RGB"),
                                              ("ids123", "YCbCr")])
@pytest.mark.parametrize("label", ["RGB", "YBR_FULL_422"])
def test_jpeg_colour_variants(tmp_path: Path, rgb: np.ndarray, variant: str, decoded: str,
                              label: str) -> None:
    write_slide(SlideSpec([[rgb]], tile=(64, 64), codec="jpeg", variant=variant,
                          photometric=label), tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    colour = slide.levels[0].instances[0].colour
    assert colour.decoded_as == decoded
    label_says = "YCbCr" if label.startswith("YBR") else "RGB"
    assert colour.conflict == (decoded != label_says)
    assert any("codestream says" in w for w in slide.info.warnings) == colour.conflict
    error = np.abs(slide.read_level(0).astype(float) - rgb).mean()
    assert error < RIGHT_COLOUR_MEAN_ERROR
    by_label = dicomvol.open_slide(tmp_path, jpeg_color="pi")
    error_pi = np.abs(by_label.read_level(0).astype(float) - rgb).mean()
    if colour.conflict:  # trusting the label gives false colours
        assert error_pi > WRONG_COLOUR_MEAN_ERROR
    else:
        assert error_pi < RIGHT_COLOUR_MEAN_ERROR


@pytest.mark.parametrize("mct", [True, False])
@pytest.mark.parametrize("label", ["RGB", "YBR_RCT", "YBR_ICT"])
def test_j2k_with_and_without_mct(tmp_path: Path, rgb: np.ndarray, mct: bool,
                                  label: str) -> None:
    write_slide(SlideSpec([[rgb]], tile=(64, 64), codec="j2k", mct=mct, photometric=label),
                tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    colour = slide.levels[0].instances[0].colour
    assert colour.stream == ("MCT" if mct else "no MCT")
    assert colour.conflict == (mct != label.startswith("YBR_"))
    np.testing.assert_array_equal(slide.read_level(0), rgb)  # lossless, the stream decides


@pytest.mark.parametrize("table", ["bot", "none", "eot"])
def test_offset_tables(tmp_path: Path, rgb: np.ndarray, table: str) -> None:
    write_slide(SlideSpec([[rgb]], tile=(48, 80), codec="jpegls", offset_table=table),
                tmp_path)
    np.testing.assert_array_equal(dicomvol.open_slide(tmp_path).read_level(0), rgb)


def test_regions_cross_tiles_and_edges(tmp_path: Path) -> None:
    img = smooth_image(203, 317, 3, seed=5)
    write_slide(SlideSpec([[img]], tile=(64, 48)), tmp_path)
    slide = dicomvol.open_slide(tmp_path)
    rng = np.random.default_rng(1)
    for _ in range(25):
        x, y = int(rng.integers(0, 316)), int(rng.integers(0, 202))
        w, h = int(rng.integers(1, 318 - x)), int(rng.integers(1, 204 - y))
        np.testing.assert_array_equal(slide.read_region(0, x, y, w, h),
                                      img[y:y + h, x:x + w])
    with pytest.raises(RegionError, match="leaves the level"):
        slide.read_region(0, 300, 200, 20, 20)
    padded = slide.read_region(0, 300, 200, 20, 20, fill=0)
    np.testing.assert_array_equal(padded[:3, :17], img[200:, 300:])
    assert (padded[3:] == 0).all()
    with pytest.raises(RegionError):
        slide.read_region(1, 0, 0, 1, 1)


def test_to_dask_one_chunk_per_frame(tmp_path: Path) -> None:
    img = smooth_image(130, 100, 3, seed=2)
    write_slide(SlideSpec([[img]], tile=(64, 48)), tmp_path)
    arr = dicomvol.open_slide(tmp_path).to_dask(0)
    assert arr.chunks == ((64, 64, 2), (48, 48, 4), (3,))
    np.testing.assert_array_equal(arr.compute(), img)
    np.testing.assert_array_equal(arr[70:90, 40:60].compute(), img[70:90, 40:60])


def test_levels_label_and_overview(tmp_path: Path) -> None:
    base = smooth_image(256, 320, 3, seed=1)
    uid = "1.2.826.0.1.3680043.8.498.77"
    for name, img, flavour in (("l0", base, "VOLUME"), ("l1", base[::2, ::2], "VOLUME"),
                               ("label", smooth_image(40, 60, 3), "LABEL"),
                               ("overview", smooth_image(50, 120, 3), "OVERVIEW")):
        write_slide(SlideSpec([[img]], tile=(64, 64), series_uid=uid, flavour=flavour,
                              spacing_mm=0.00025 * (2 if name == "l1" else 1)), tmp_path, name)
    slide = dicomvol.open_slide(tmp_path)
    assert [lv.shape for lv in slide.levels] == [(256, 320), (128, 160)]
    assert slide.levels[1].downsample == pytest.approx(2.0)
    assert slide.levels[1].pixel_spacing_um == pytest.approx((0.5, 0.5))
    assert slide.label is not None and slide.label.shape == (40, 60, 3)
    assert slide.overview is not None and slide.overview.shape == (50, 120, 3)
    assert slide.thumbnail(100).shape[:2] == (64, 80)

"""The corpus slides: the CMU pyramid (12 levels, JFIF tiles labelled RGB) and the tiny SM
files of highdicom, against independent decodes (pydicom + its plugins, Pillow)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

import dicomvol

pytest.importorskip("imagecodecs")

#: The H&E colours of CMU level 2 (mean R, G, B); the label-trusting decode gives about
#: 202/131/136.
CMU_LEVEL2_MEAN = (213.4, 195.3, 207.5)
MEAN_TOLERANCE = 1.0
#: Two JPEG decoders (IDCT and upsampling differ) agree within this many grey levels / PSNR.
DECODER_MAX_DIFFERENCE = 8
DECODER_MIN_PSNR_DB = 50.0


@pytest.fixture(scope="module")
def cmu(corpus: Path) -> dicomvol.Slide:
    return dicomvol.open_slide(corpus / "slide_cmu")


def test_cmu_levels_and_warnings(cmu: dicomvol.Slide) -> None:
    assert len(cmu.levels) == 12
    assert [lv.width for lv in cmu.levels] == [2220, 1110, 555, 277, 138, 69, 34, 17, 8, 4,
                                               2, 1]
    assert cmu.levels[0].shape == (2967, 2220) and cmu.levels[0].tile_shape == (500, 500)
    assert cmu.levels[1].downsample == pytest.approx(2.0)
    assert cmu.levels[0].pixel_spacing_um == pytest.approx((0.499, 0.499))
    warnings = " | ".join(cmu.info.warnings)
    assert "FrameOfReferenceUID differs per level (12 values)" in warnings
    assert "no OpticalPathSequence" in warnings
    assert "JFIF APP0" in warnings and "says RGB" in warnings


def test_cmu_colours(corpus: Path, cmu: dicomvol.Slide) -> None:
    mean = cmu.read_level(2).reshape(-1, 3).mean(axis=0)
    assert mean == pytest.approx(CMU_LEVEL2_MEAN, abs=MEAN_TOLERANCE)
    assert cmu.levels[2].instances[0].colour.decoded_as == "YCbCr"
    wrong = dicomvol.open_slide(corpus / "slide_cmu", jpeg_color="pi").read_level(2)
    assert wrong.reshape(-1, 3).mean(axis=0)[1] < 150  # false colours when the label rules


def test_cmu_regions_equal_crops_of_the_level(cmu: dicomvol.Slide) -> None:
    full = cmu.read_level(0)
    for x, y, w, h in ((450, 480, 700, 600), (1990, 2900, 230, 67), (0, 0, 2220, 2967),
                       (499, 499, 2, 2), (2000, 10, 220, 1000)):
        np.testing.assert_array_equal(cmu.read_region(0, x, y, w, h), full[y:y + h, x:x + w])
    np.testing.assert_array_equal(cmu.to_dask(1).compute(), cmu.read_level(1))


def test_cmu_agrees_with_pillow(corpus: Path, cmu: dicomvol.Slide) -> None:
    from PIL import Image

    path = corpus / "slide_cmu" / "level-0-frames-0-30.dcm"
    ds = pydicom.dcmread(path)
    full = cmu.read_level(0).astype(np.float64)
    tx = math.ceil(ds.TotalPixelMatrixColumns / ds.Columns)
    for n, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=30)):
        ref = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"), dtype=np.float64)
        r, c = divmod(n, tx)
        mine = full[r * 500:(r + 1) * 500, c * 500:(c + 1) * 500]
        ref = ref[:mine.shape[0], :mine.shape[1]]
        diff = np.abs(mine - ref)
        mse = float((diff**2).mean())
        assert diff.max() <= DECODER_MAX_DIFFERENCE
        assert mse == 0 or 10 * math.log10(255**2 / mse) >= DECODER_MIN_PSNR_DB


def _pydicom_stitch(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape((ds.NumberOfFrames, ds.Rows, ds.Columns, -1))
    tx = math.ceil(ds.TotalPixelMatrixColumns / ds.Columns)
    ty = math.ceil(ds.TotalPixelMatrixRows / ds.Rows)
    out = np.zeros((ty * ds.Rows, tx * ds.Columns, frames.shape[-1]), frames.dtype)
    for n in range(ds.NumberOfFrames):
        r, c = divmod(n, tx)
        out[r * ds.Rows:(r + 1) * ds.Rows, c * ds.Columns:(c + 1) * ds.Columns] = frames[n]
    out = out[:ds.TotalPixelMatrixRows, :ds.TotalPixelMatrixColumns]
    return out[..., 0] if out.shape[-1] == 1 else out


@pytest.mark.parametrize("name", ["sm_image", "sm_image_dots", "sm_image_numbers",
                                  "sm_image_grayscale", "sm_image_grayscale_reversed",
                                  "sm_image_jpegls", "sm_image_jpegls_nobot"])
def test_highdicom_sm_equals_pydicom(corpus: Path, name: str) -> None:
    path = corpus / "seg_highdicom" / f"{name}.dcm"
    slide = dicomvol.open_slide(path)
    got = slide.read_level(0)
    expected = _pydicom_stitch(path)
    assert got.dtype == expected.dtype  # 16-bit grey stays uint16
    np.testing.assert_array_equal(got, expected)


def test_highdicom_series_with_two_slides(corpus: Path) -> None:
    result = dicomvol.scan([corpus / "seg_highdicom"])
    grey = [s for s in result.slides if s.levels[0].samples == 1]
    assert sorted(s.suffix for s in grey) == ["_s1", "_s2"]
    assert all("claim the same tiles" in s.warnings[0] for s in grey)

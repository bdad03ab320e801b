"""Slide outputs read back by independent readers (tifffile, OpenSlide, zarr) equal
dicomvol's own region reads; the run report accounts for every SM frame."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import dicomvol
from conftest import import_peer
from dicomvol.cli.main import main
from dicomvol.testing.slides import SlideSpec, smooth_image, write_slide

pytest.importorskip("imagecodecs")
warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
UID = "1.2.826.0.1.3680043.8.498.4242"


def _pyramid(folder: Path, codec: str = "jpeg", tile: tuple[int, int] = (64, 64)) -> Path:
    base = smooth_image(300, 380, 3, seed=4)
    for n, step in enumerate((1, 2, 4)):
        write_slide(SlideSpec([[base[::step, ::step]]], tile=tile, codec=codec,
                              series_uid=UID, spacing_mm=0.00025 * step,
                              holes=frozenset({(0, 1)}) if n == 0 else frozenset(),
                              sparse=n == 0), folder, f"level{n}")
    write_slide(SlideSpec([[smooth_image(40, 60, 3)]], tile=(64, 64), series_uid=UID,
                          flavour="LABEL"), folder, "label")
    write_slide(SlideSpec([[smooth_image(50, 90, 3)]], tile=(64, 64), series_uid=UID,
                          flavour="OVERVIEW"), folder, "overview")
    return folder


def _accounted(out: Path, src: Path) -> None:
    """Every frame of every input file is in one output's SourceInstances or skipped."""
    import pydicom

    report = json.loads((out / "dicomvol_report.json").read_text())
    seen: set[tuple[str, int]] = set()
    for v in report["volumes"]:
        for s in json.loads((out / v["Sidecar"]).read_text())["SourceInstances"]:
            key = (s["File"], s["Frame"])
            assert key not in seen
            seen.add(key)
    skipped = {s["File"] for s in report["skipped"] if s["Frame"] is None}
    for path in src.glob("*.dcm"):
        n = int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
        frames = {(path.name, f) for f in range(1, n + 1)}
        assert frames <= seen or path.name in skipped, path.name
        assert not (frames & seen and path.name in skipped)


@pytest.mark.parametrize("codec", ["jpeg", "native"])
def test_ome_tiff_read_by_tifffile(tmp_path: Path, codec: str) -> None:
    tifffile = import_peer("tifffile")
    src = _pyramid(tmp_path / "src", codec)
    report = dicomvol.convert([src], tmp_path / "out", dicomvol.ConvertOptions(jobs=1))
    assert report.ok
    slide = dicomvol.open_slide(src)
    image = tmp_path / "out" / report.outputs[0].path
    assert image.name.endswith(".ome.tif")
    with tifffile.TiffFile(image) as tif:
        assert tif.is_ome
        levels = tif.series[0].levels
        assert len(levels) == 3
        for n, level in enumerate(levels):
            np.testing.assert_array_equal(level.asarray(), slide.read_level(n))
        page = tif.series[0].levels[0].keyframe
        assert page.tilewidth == 64
        # JPEG frames copied as JPEG tiles; native frames re-tiled into deflate tiles
        assert page.compression == (7 if codec == "jpeg" else 8)
    side = json.loads((tmp_path / "out" / report.outputs[0].sidecar).read_text())
    assert side["Slide"]["MissingTiles"] == [{"Level": 0, "OpticalPath": "1", "FocalPlane": 0.0,
                                              "TileRow": 0, "TileColumn": 1}]
    assert side["Slide"]["ColorDecision"][0]["DecodedAs"] == ("YCbCr" if codec == "jpeg"
                                                               else "RGB")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert any(n.endswith("_label.ome.tif") for n in names)
    assert any(n.endswith("_overview.ome.tif") for n in names)
    _accounted(tmp_path / "out", src)


def test_plain_tiff_read_by_openslide(tmp_path: Path) -> None:
    openslide = import_peer("openslide")
    src = _pyramid(tmp_path / "src")
    assert main(["convert", str(src), "-o", str(tmp_path / "out"), "-e", "tif", "-q",
                 "-j", "1", "--anonymize"]) == 0
    slide = dicomvol.open_slide(src)
    image = next((tmp_path / "out").glob("*[0-9A-Za-z].tif"))
    osr = openslide.OpenSlide(str(image))
    assert osr.level_count == 3
    for n in range(3):
        w, h = osr.level_dimensions[n]
        assert (h, w) == slide.levels[n].shape
        got = np.asarray(osr.read_region((0, 0), n, (w, h)))[..., :3]
        np.testing.assert_array_equal(got, slide.read_level(n))
    report = json.loads((tmp_path / "out" / "dicomvol_report.json").read_text())
    left_out = [s for s in report["skipped"] if "--anonymize" in s["Reason"]]
    assert sorted(s["File"] for s in left_out) == ["label-0.dcm", "overview-0.dcm"]
    assert not list((tmp_path / "out").glob("*_label*"))
    _accounted(tmp_path / "out", src)


def test_ome_zarr_read_by_zarr_and_dask(tmp_path: Path) -> None:
    zarr = import_peer("zarr")
    da = import_peer("dask.array")
    grey = [[smooth_image(90, 140, 1, seed=p, dtype="uint16") for _ in range(1)]
            for p in range(3)]
    src = tmp_path / "src"
    write_slide(SlideSpec(grey, tile=(32, 32), sparse=True, shuffle=True,
                          path_names=["DAPI", "CD3", "CD8"]), src)
    report = dicomvol.convert([src], tmp_path / "out",
                              dicomvol.ConvertOptions(jobs=1, slide=dicomvol.options.SlideOptions(
                                  format="ome.zarr")))
    path = tmp_path / "out" / report.outputs[0].path
    group = zarr.open_group(str(path), mode="r")
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5"
    assert [c["label"] for c in ome["omero"]["channels"]] == ["DAPI", "CD3", "CD8"]
    scale = ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[2:] == pytest.approx([0.25, 0.25])
    arr = da.from_zarr(group["0"])
    assert arr.shape == (3, 1, 90, 140) and arr.chunksize == (1, 1, 32, 32)
    slide = dicomvol.open_slide(src)
    for p in range(3):
        np.testing.assert_array_equal(arr[p, 0].compute(), slide.read_level(0, path=p))
    _accounted(tmp_path / "out", src)


def test_ome_tiff_channels_and_planes(tmp_path: Path) -> None:
    tifffile = import_peer("tifffile")
    grey = [[smooth_image(70, 90, 1, seed=10 * p + z, dtype="uint16") for z in range(2)]
            for p in range(2)]
    src = tmp_path / "src"
    write_slide(SlideSpec(grey, tile=(32, 32), sparse=True, path_names=["A", "B"],
                          z_um=[0.0, 2.0]), src)
    report = dicomvol.convert([src], tmp_path / "out", dicomvol.ConvertOptions(jobs=1))
    with tifffile.TiffFile(tmp_path / "out" / report.outputs[0].path) as tif:
        series = tif.series[0]
        assert series.axes == "ZCYX"
        data = series.asarray()
    for z in range(2):
        for p in range(2):
            np.testing.assert_array_equal(data[z, p], grey[p][z])


def test_inspect_prints_slide_rows(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(corpus / "slide_cmu"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "12 levels, 52 frames" in out and "JFIF APP0 -> YCbCr" in out
    assert "level 1: 1110x1483, tile 500x500, 0.998x0.998 um/px, x2," in out


def test_icc_profile_carried_and_applied(tmp_path: Path) -> None:
    tifffile = import_peer("tifffile")
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = smooth_image(96, 128, 3, seed=6)
    src = tmp_path / "src"
    write_slide(SlideSpec([[img]], tile=(64, 64), codec="jpeg", variant="adobe0",
                          photometric="RGB", icc_profile=icc), src)
    slide = dicomvol.open_slide(src)
    assert slide.icc_profile == icc
    carried = dicomvol.convert([src], tmp_path / "carried", dicomvol.ConvertOptions(jobs=1))
    with tifffile.TiffFile(tmp_path / "carried" / carried.outputs[0].path) as tif:
        assert tif.pages[0].iccprofile == icc and tif.pages[0].compression == 7
        np.testing.assert_array_equal(tif.series[0].asarray(), slide.read_level(0))
    applied = dicomvol.convert([src], tmp_path / "applied", dicomvol.ConvertOptions(
        jobs=1, slide=dicomvol.options.SlideOptions(apply_icc=True)))
    side = json.loads((tmp_path / "applied" / applied.outputs[0].sidecar).read_text())
    assert side["Slide"]["ICCApplied"] is True
    srgb = dicomvol.open_slide(src, apply_icc=True).read_level(0)
    # sRGB -> sRGB through LittleCMS: the same colours within rounding
    assert np.abs(srgb.astype(int) - slide.read_level(0)).max() <= 2
    with tifffile.TiffFile(tmp_path / "applied" / applied.outputs[0].path) as tif:
        assert tif.pages[0].iccprofile is None and tif.pages[0].compression == 8
        np.testing.assert_array_equal(tif.series[0].asarray(), srgb)

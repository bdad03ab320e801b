"""Siemens MOSAIC: tile extraction, per-tile geometry, and a differential test against dcm2niix.

The corpus tests use the real Siemens mosaics of ``mr_orientation`` (axial,
coronal, sagittal; ascending, descending, interleaved; JPEG lossless and JPEG
2000) and ``mr_4d_nih/20180918Si``. Two independent references are used:

* dcm2niix: for every tile of the first volume, the tile's pixels are found in
  dcm2niix's NIfTI (under one of the 8 in-plane flips/transposes) and the world
  position of every pixel is compared with where dcm2niix's affine puts it;
* the Siemens protocol (``MrPhoenixProtocol`` in the CSA series header), whose
  ``sSliceArray.asSlice[t].sPosition`` is the centre of slice t.
"""

from __future__ import annotations

import importlib
import itertools
import re
import struct
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from conftest import require_dcm2niix
from dicomvol.dicom.mosaic import MosaicInfo, extract_tiles, is_mosaic, mosaic_info
from dicomvol.errors import HeaderError, PixelDataError
from dicomvol.testing.siemens import csa2

#: Series of the differential test (folder under the corpus).
DIFFERENTIAL_SERIES = [
    "mr_orientation/ax/axasc35",
    "mr_orientation/ax/axdesc36",
    "mr_orientation/cor/corasc36",
    "mr_orientation/cor/cordesc35",
    "mr_orientation/sag/sagasc35",
    "mr_orientation/sag/sagdesc36",
    "mr_orientation/axmb/AxAsc36mb2a",  # JPEG lossless
    "mr_orientation/axmb/AxInt36mb",  # JPEG 2000
    "mr_4d_nih/20180918Si/mr_0003",
    "mr_4d_nih/20180918Si/mr_0005",
]
MOSAIC_SETS = ["mr_orientation", "mr_4d_nih/20180918Si"]
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
POSITION_TOLERANCE_MM = 0.01


# --------------------------------------------------------------------------- helpers


def _csareader() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module("nibabel.nicom.csareader")


def mosaic_dataset(n: int = 10, tile: tuple[int, int] = (6, 8), csa: bytes | None = b"",
                   normal: tuple[float, float, float] | None = (0.0, 0.0, 1.0),
                   orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0)) -> Dataset:
    """A header-only mosaic of ``n`` tiles of ``tile`` (rows, columns) pixels."""
    m = int(np.ceil(np.sqrt(n)))
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.Rows, ds.Columns = tile[0] * m, tile[1] * m
    ds.ImagePositionPatient = [-100.0, -80.0, 20.0]
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [2.0, 3.0]
    ds.SliceThickness = 3.0
    ds.SpacingBetweenSlices = 4.0
    if csa == b"":
        tags: dict[str, tuple[str, list[str]]] = {
            "NumberOfImagesInMosaic": ("US", [str(n)])}
        if normal is not None:
            tags["SliceNormalVector"] = ("FD", [repr(v) for v in normal])
        csa = csa2(tags)
    if csa is not None:
        ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA HEADER")
        ds.add_new((0x0029, 0x1010), "OB", csa)
    return ds


def dcm2niix_binary() -> str:
    """The dcm2niix executable; skip (fail on CI) when absent."""
    return require_dcm2niix()


def dicom_files(folder: Path) -> list[tuple[Path, Dataset]]:
    """The DICOM files of a folder (the corpus also holds a .nii), by InstanceNumber."""
    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        found.append((path, ds))
    return sorted(found, key=lambda item: int(item[1].InstanceNumber))


def mosaic_files(corpus: Path) -> list[Path]:
    out = []
    for name in MOSAIC_SETS:
        for path in sorted((corpus / name).rglob("*")):
            if path.is_file() and path.suffix not in {".nii", ".txt", ".pdf"} \
                    and path.name != "LICENSE":
                out.append(path)
    return out


def in_plane_ops(a: np.ndarray) -> Iterator[tuple[tuple[bool, bool, bool], np.ndarray]]:
    """The 8 in-plane flips/transposes of a 2D array, labelled (transpose, flip0, flip1)."""
    for transpose, flip0, flip1 in itertools.product((False, True), repeat=3):
        b = a.T if transpose else a
        b = b[::-1] if flip0 else b
        b = b[:, ::-1] if flip1 else b
        yield (transpose, flip0, flip1), b


def apply_op(a: np.ndarray, op: tuple[bool, bool, bool]) -> np.ndarray:
    return dict(in_plane_ops(a))[op]


def tile_world_ras(info: MosaicInfo, ds: Dataset, t: int) -> np.ndarray:
    """RAS of every pixel (row j, column i) of tile t, shape (tile_rows, tile_columns, 3)."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    ps = np.asarray(ds.PixelSpacing, dtype=np.float64)
    j, i = np.indices((info.tile_rows, info.tile_columns), dtype=np.float64)
    lps = (np.asarray(info.positions[t]) + i[..., None] * ps[1] * iop[:3]
           + j[..., None] * ps[0] * iop[3:])
    return lps @ LPS_TO_RAS.T


# --------------------------------------------------------------------------- unit tests


def test_extract_tiles_row_major_and_drops_blank_tiles() -> None:
    info = MosaicInfo(n_slices=7, tiles_per_side=3, tile_rows=2, tile_columns=4,
                      positions=((0.0, 0.0, 0.0),) * 7, normal=(0.0, 0.0, 1.0))
    pixels = np.arange(6 * 12, dtype=np.uint16).reshape(6, 12)
    tiles = extract_tiles(pixels, info)
    assert tiles.shape == (7, 2, 4)
    assert tiles.dtype == np.uint16
    for t in range(7):
        r, c = divmod(t, 3)
        np.testing.assert_array_equal(tiles[t], pixels[2 * r:2 * r + 2, 4 * c:4 * c + 4])
    assert tiles.flags.c_contiguous
    tiles[0, 0, 0] = 999
    assert pixels[0, 0] == 0  # a copy, not a view


def test_extract_tiles_rejects_wrong_shape() -> None:
    info = MosaicInfo(4, 2, 3, 3, ((0.0, 0.0, 0.0),) * 4, (0.0, 0.0, 1.0))
    with pytest.raises(PixelDataError, match=r"\(6, 6\)"):
        extract_tiles(np.zeros((6, 7)), info)
    with pytest.raises(PixelDataError):
        extract_tiles(np.zeros((6, 6, 3)), info)


def test_is_mosaic() -> None:
    assert is_mosaic(mosaic_dataset())
    ds = Dataset()
    assert not is_mosaic(ds)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    assert not is_mosaic(ds)
    ds.ImageType = "DERIVED\\PRIMARY\\MOSAIC"
    assert is_mosaic(ds)


def test_synthetic_geometry() -> None:
    # 10 tiles of 6 x 8 in a 4 x 4 grid: mosaic 24 x 32 pixels.
    info = mosaic_info(mosaic_dataset(n=10))
    assert (info.n_slices, info.tiles_per_side, info.tile_rows, info.tile_columns) == (10, 4, 6, 8)
    # row direction +x with column spacing 3: (32 - 8) / 2 * 3 = 36;
    # column direction +y with row spacing 2: (24 - 6) / 2 * 2 = 18.
    np.testing.assert_allclose(info.positions[0], (-64.0, -62.0, 20.0))
    np.testing.assert_allclose(info.positions[9], (-64.0, -62.0, 20.0 + 9 * 4.0))
    assert info.normal == (0.0, 0.0, 1.0)


def test_csa_normal_against_cross_product_reverses_tiles() -> None:
    info = mosaic_info(mosaic_dataset(n=4, normal=(0.0, 0.0, -1.0)))
    assert info.normal == (0.0, 0.0, -1.0)
    np.testing.assert_allclose(np.diff(np.array(info.positions)[:, 2]), [-4.0] * 3)


def test_missing_slice_normal_falls_back_to_cross_product(
        caplog: pytest.LogCaptureFixture) -> None:
    info = mosaic_info(mosaic_dataset(n=4, normal=None, orientation=(0, 1, 0, 0, 0, -1)))
    assert info.normal == (-1.0, 0.0, 0.0)
    assert "SliceNormalVector" in caplog.text


def test_non_parallel_slice_normal_is_an_error() -> None:
    with pytest.raises(HeaderError, match="SliceNormalVector"):
        mosaic_info(mosaic_dataset(n=4, normal=(0.0, 1.0, 0.0)))


def test_single_slice_mosaic() -> None:
    info = mosaic_info(mosaic_dataset(n=1))
    assert (info.tiles_per_side, info.tile_rows, info.tile_columns) == (1, 6, 8)
    assert info.positions == ((-100.0, -80.0, 20.0),)


def test_missing_csa_header_names_what_is_missing() -> None:
    with pytest.raises(HeaderError, match=r"CSA image header \(0029,xx10\).*"
                                          r"NumberOfImagesInMosaic"):
        mosaic_info(mosaic_dataset(csa=None))


def test_csa_without_number_of_images() -> None:
    csa = csa2({"SliceNormalVector": ("FD", ["0.0", "0.0", "1.0"])})
    with pytest.raises(HeaderError, match="lacks NumberOfImagesInMosaic"):
        mosaic_info(mosaic_dataset(csa=csa))


def test_unreadable_csa_header() -> None:
    with pytest.raises(HeaderError, match="cannot be read"):
        mosaic_info(mosaic_dataset(csa=b"SV10" + b"\x00" * 4 + struct.pack("<2I", 0, 77)))


def test_missing_dicom_attribute_is_named() -> None:
    ds = mosaic_dataset()
    del ds.ImagePositionPatient
    with pytest.raises(HeaderError, match="ImagePositionPatient"):
        mosaic_info(ds)
    ds = mosaic_dataset()
    del ds.SpacingBetweenSlices
    del ds.SliceThickness
    with pytest.raises(HeaderError, match="SpacingBetweenSlices"):
        mosaic_info(ds)


def test_rows_not_divisible_by_grid() -> None:
    ds = mosaic_dataset(n=10)
    ds.Rows = 25
    with pytest.raises(HeaderError, match="4 x 4 tiles"):
        mosaic_info(ds)


# --------------------------------------------------------------------------- corpus


def test_corpus_tiles_match_protocol_slice_centres(corpus: Path) -> None:
    """Tile t's centre equals sSliceArray.asSlice[t].sPosition of the Siemens protocol.

    Siemens places a slice's centre half a tile (tile_columns / 2 and
    tile_rows / 2 pixel steps) from its top-left pixel centre.
    """
    csar = _csareader()
    pattern = re.compile(r"sSliceArray\.asSlice\[(\d+)\]\.sPosition\.d(Sag|Cor|Tra)\s*=\s*(\S+)")
    files = mosaic_files(corpus)
    assert len(files) >= 40
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert is_mosaic(ds), path
        info = mosaic_info(ds)
        protocol = csar.get_csa_header(ds, "series")["tags"]["MrPhoenixProtocol"]["items"][0]
        protocol = protocol[protocol.index("### ASCCONV BEGIN"):]
        centres = np.zeros((info.n_slices, 3))
        for match in pattern.finditer(protocol):
            centres[int(match[1]), ("Sag", "Cor", "Tra").index(match[2])] = float(match[3])
        iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        ps = np.asarray(ds.PixelSpacing, dtype=np.float64)
        ours = (np.asarray(info.positions) + iop[:3] * ps[1] * info.tile_columns / 2
                + iop[3:] * ps[0] * info.tile_rows / 2)
        error = float(np.max(np.linalg.norm(ours - centres, axis=1)))
        assert error < 1e-3, f"{path}: tile centres {error:.2e} mm from the protocol's"


@pytest.mark.parametrize("series", DIFFERENTIAL_SERIES)
def test_positions_match_dcm2niix(corpus: Path, tmp_path: Path, series: str) -> None:
    folder = corpus / series
    if not folder.is_dir():
        pytest.fail(f"corpus series {series} missing")
    exe = dcm2niix_binary()
    run = subprocess.run([exe, "-z", "n", "-b", "y", "-f", "%s_%p", "-o", str(tmp_path),
                          str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    outputs = sorted(tmp_path.glob("*.nii"))
    assert len(outputs) == 1, outputs
    img = nib.load(outputs[0])
    affine = img.affine
    data = np.asarray(img.dataobj.get_unscaled())
    if data.ndim == 3:
        data = data[..., None]

    _, ds = dicom_files(folder)[0]
    assert is_mosaic(ds)
    info = mosaic_info(ds)
    tiles = extract_tiles(ds.pixel_array, info)
    assert data.shape[2] == info.n_slices

    # The in-plane mapping and the volume: from the tile with the most structure.
    best = int(np.argmax([np.ptp(tile) for tile in tiles]))
    candidates = [(op, v, k)
                  for op, view in in_plane_ops(tiles[best])
                  for v in range(data.shape[3]) for k in range(data.shape[2])
                  if view.shape == data.shape[:2] and np.array_equal(view, data[:, :, k, v])]
    assert len({(op, v) for op, v, _ in candidates}) == 1, candidates
    op, volume, _ = candidates[0]
    vol = data[..., volume]

    # Voxel (x, y) of a dcm2niix slice holds tile pixel (rows[x, y], cols[x, y]).
    j, i = np.indices((info.tile_rows, info.tile_columns))
    rows, cols = apply_op(j, op), apply_op(i, op)
    x, y = np.indices(vol.shape[:2])
    worst = 0.0
    matched = []
    for t in range(info.n_slices):
        view = apply_op(tiles[t], op)
        ks = [k for k in range(vol.shape[2]) if np.array_equal(view, vol[:, :, k])]
        if np.ptp(tiles[t]) == 0:
            continue  # a blank tile matches any blank slice
        assert len(ks) == 1, f"tile {t} matches dcm2niix slices {ks}"
        k = ks[0]
        matched.append(k)
        ours = tile_world_ras(info, ds, t)[rows, cols]
        voxels = np.stack([x, y, np.full_like(x, k), np.ones_like(x)], axis=-1)
        theirs = (voxels.astype(np.float64) @ affine.T)[..., :3]
        worst = max(worst, float(np.max(np.linalg.norm(ours - theirs, axis=-1))))
    assert len(matched) >= info.n_slices - 1
    assert len(set(matched)) == len(matched)
    assert worst < POSITION_TOLERANCE_MM, f"{series}: {worst:.3g} mm"

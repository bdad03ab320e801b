"""Synthetic Siemens MOSAIC series, with or without the CSA image header.

:func:`write_mosaic_series` writes ``n_volumes`` mosaic files (one per volume)
laid out as a scanner lays them out (see :mod:`dicomvol.dicom.mosaic`): the
tiles row-major in a grid of ``ceil(sqrt(N))`` tiles per side, the mosaic's
ImagePositionPatient centred as if it were one image, the slice normal in the
CSA image header, N in the CSA image header and in (0019,xx0A), and the
protocol (``MrPhoenixProtocol``, ASCCONV ``sSliceArray``) in the CSA series
header. Each of those can be left out, as de-identification does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid

from dicomvol.testing.geometry import ds_text, readonly, unit_vector
from dicomvol.testing.siemens import CSA_CREATOR, add_csa, csa2
from dicomvol.testing.slices import FloatArray, ideal_values, slice_dataset


@dataclass(frozen=True)
class SyntheticMosaic:
    """Truth of :func:`write_mosaic_series`.

    Attributes
    ----------
    paths : tuple of Path
        One mosaic file per volume, in time order.
    values : ndarray of float64, shape (X, Y, Z, T)
        X = tile columns, Y = tile rows, Z = slices (tile order), T = volumes.
    affine_lps : ndarray, shape (4, 4)
        Voxel (i, j, k) to LPS of the de-mosaiced volume.
    """

    paths: tuple[Path, ...]
    values: FloatArray
    affine_lps: FloatArray


def write_mosaic_series(
    folder: str | Path, *, n_slices: int = 10, tile: tuple[int, int] = (12, 16),
    n_volumes: int = 2, pixel_spacing: tuple[float, float] = (2.5, 2.0),
    slice_spacing: float = 3.5, row_dir: Sequence[float] = (1.0, 0.0, 0.0),
    col_dir: Sequence[float] = (0.0, 1.0, 0.0), first_tile: Sequence[float] = (-16.0, -15.0, -20.0),
    image_header: bool = True, n_images_tag: bool = True, protocol: bool = True,
    seed: int = 0,
) -> SyntheticMosaic:
    """Write a Siemens EPI mosaic series; returns the de-mosaiced truth.

    Parameters
    ----------
    folder : path
        Output folder (created).
    n_slices : int
        NumberOfImagesInMosaic.
    tile : (rows, columns)
        Size of one slice.
    n_volumes : int
        Mosaic files (AcquisitionNumber 1..T).
    pixel_spacing : (row spacing, column spacing)
    slice_spacing : float
        SpacingBetweenSlices; tile t + 1 lies this far from tile t along the normal.
    row_dir, col_dir : sequence of float
        ImageOrientationPatient.
    first_tile : sequence of float
        LPS of the top-left pixel centre of tile 0.
    image_header, n_images_tag, protocol : bool
        Write the CSA image header (NumberOfImagesInMosaic, SliceNormalVector),
        (0019,xx0A) NumberOfImagesInMosaic, and the CSA series header protocol.
    seed : int
        Seed of the pixel content.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows_t, cols_t = tile
    m = int(np.ceil(np.sqrt(n_slices)))
    row, col = unit_vector(row_dir, "row_dir"), unit_vector(col_dir, "col_dir")
    normal = np.cross(row, col)
    ps = (float(ds_text(pixel_spacing[0])), float(ds_text(pixel_spacing[1])))
    p0 = np.asarray(first_tile, dtype=np.float64)
    ipp = p0 - row * ps[1] * (cols_t * m - cols_t) / 2.0 - col * ps[0] * (rows_t * m - rows_t) / 2.0
    ipp_text = [ds_text(v) for v in ipp]
    ipp = np.asarray([float(v) for v in ipp_text])
    p0 = ipp + row * ps[1] * (cols_t * m - cols_t) / 2.0 + col * ps[0] * (rows_t * m - rows_t) / 2.0
    values = np.stack([ideal_values((cols_t, rows_t, n_slices), "MR", seed + v)
                       for v in range(n_volumes)], axis=-1).round()
    series_uid, study_uid, for_uid = (pydicom.uid.generate_uid() for _ in range(3))
    centres = [p0 + t * slice_spacing * normal + row * ps[1] * cols_t / 2.0
               + col * ps[0] * rows_t / 2.0 for t in range(n_slices)]
    series_csa = csa2({"MrPhoenixProtocol": ("UN", [_protocol(centres, normal)])})
    image_csa = mosaic_image_csa(n_slices, [float(v) for v in normal], tile)
    paths = []
    for v in range(n_volumes):
        ds = slice_dataset(pydicom.uid.MRImageStorage, pydicom.uid.generate_uid(),
                           pydicom.uid.ExplicitVRLittleEndian)
        ds.Manufacturer = "SIEMENS"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.Modality = "MR"
        ds.SeriesDescription = "ep2d_bold mosaic"
        ds.ProtocolName = "ep2d_bold"
        ds.PatientID = "SYNTH_MOSAIC"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = for_uid
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = 5, v + 1, v + 1
        ds.AcquisitionTime = f"1200{v * 2:02d}.000000"
        ds.RepetitionTime, ds.EchoTime = "2000", "30"
        ds.ImagePositionPatient = ipp_text
        ds.ImageOrientationPatient = [ds_text(x) for x in (*row, *col)]
        ds.PixelSpacing = [ds_text(x) for x in ps]
        ds.SliceThickness = ds_text(slice_spacing)
        ds.SpacingBetweenSlices = ds_text(slice_spacing)
        ds.Rows, ds.Columns = rows_t * m, cols_t * m
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
        ds.PixelData = tile_grid(values[:, :, :, v], m, m).tobytes()
        if n_images_tag:
            ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
            ds.add_new((0x0019, 0x100A), "US", n_slices)
        if image_header or protocol:
            add_csa(ds, image=image_csa if image_header else None,
                    series=series_csa if protocol else None)
            assert ds[0x0029, 0x0010].value == CSA_CREATOR
        path = out / f"MOSAIC{v + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True, overwrite=False)
        paths.append(path)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = row * ps[1], col * ps[0]
    affine[:3, 2], affine[:3, 3] = normal * slice_spacing, p0
    return SyntheticMosaic(tuple(paths), readonly(values), readonly(affine))


def tile_grid(volume: np.ndarray, per_row: int, grid_rows: int) -> np.ndarray:
    """Slices laid out as tiles of one image, row by row (Siemens mosaic, UIH grid).

    Parameters
    ----------
    volume : ndarray of shape (X, Y, N)
        Voxel values indexed (column, row, slice).
    per_row : int
        Tiles per image row.
    grid_rows : int
        Tile rows of the image (unused tiles stay 0).

    Returns
    -------
    ndarray of shape (grid_rows * Y, per_row * X), dtype uint16
    """
    cols_t, rows_t, n_slices = volume.shape
    grid = np.zeros((rows_t * grid_rows, cols_t * per_row), dtype=np.uint16)
    for t in range(n_slices):
        r, c = divmod(t, per_row)
        grid[r * rows_t:(r + 1) * rows_t, c * cols_t:(c + 1) * cols_t] = \
            volume[:, :, t].T.astype(np.uint16)
    return grid


def mosaic_image_csa(n_slices: int, normal: Sequence[float], tile: tuple[int, int]) -> bytes:
    """The CSA image header of a mosaic: NumberOfImagesInMosaic, SliceNormalVector and the
    AcquisitionMatrixText that nibabel's mosaic reader also asks for."""
    return csa2({"NumberOfImagesInMosaic": ("US", [str(n_slices)]),
                 "SliceNormalVector": ("FD", [repr(float(v)) for v in normal]),
                 "AcquisitionMatrixText": ("SH", [f"{tile[0]}p*{tile[1]}"])})


def _protocol(centres: Sequence[np.ndarray], normal: np.ndarray) -> str:
    """The ASCCONV block of a Siemens protocol holding the slice array."""
    lines = ['tProtocolName\t = "ep2d_bold"', f"sSliceArray.lSize\t = {len(centres)}"]
    for t, centre in enumerate(centres):
        for axis, value in zip(("Sag", "Cor", "Tra"), centre, strict=True):
            if value != 0:  # Siemens leaves zero components out
                lines.append(f"sSliceArray.asSlice[{t}].sPosition.d{axis}\t = {value:.6f}")
        for axis, value in zip(("Sag", "Cor", "Tra"), normal, strict=True):
            if value != 0:
                lines.append(f"sSliceArray.asSlice[{t}].sNormal.d{axis}\t = {value:.6f}")
    lines.append("### ASCCONV END ###")
    return "### ASCCONV BEGIN ###\n" + "\n".join(lines) + "\n"

"""Synthetic United Imaging (UIH) grid ("VFRAME") series: slices tiled in one image.

Geometry only in private group 0065 (creator ``Image Private Header``), as
:mod:`dicomvol.dicom.uih` describes: (0065,xx50) the number of slices,
(0065,xx51) MRVFrameSequence with each slice's ImagePositionPatient,
(0065,xx14) the slice normal; the top level has no ImagePositionPatient.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicomvol.testing.diffusion import uih_image_frame
from dicomvol.testing.geometry import ds_text, readonly, unit_vector
from dicomvol.testing.mosaic import SyntheticMosaic, tile_grid
from dicomvol.testing.slices import ideal_values, slice_dataset

UIH_CREATOR = "Image Private Header"


def write_uih_grid_series(
    folder: str | Path, *, n_slices: int = 10, tile: tuple[int, int] = (12, 12),
    n_volumes: int = 2, pixel_spacing: tuple[float, float] = (2.0, 2.0),
    slice_spacing: float = 4.0, row_dir: Sequence[float] = (1.0, 0.0, 0.0),
    col_dir: Sequence[float] = (0.0, 0.0, -1.0), first_tile: Sequence[float] = (-12.0, 30.0, 11.0),
    positions: str = "all", normal: bool = True, count: bool = True, seed: int = 0,
    diffusion: Sequence[tuple[float, Sequence[float] | None]] | None = None,
) -> SyntheticMosaic:
    """Write UIH grid images, one per volume; returns the de-tiled truth.

    ``positions``: ``"all"`` (one MRVFrameSequence item per slice), ``"first"``
    (one item; the rest follow from SpacingBetweenSlices and the normal) or
    ``"none"`` (no MRVFrameSequence). ``normal``, ``count``: write (0065,xx14)
    and (0065,xx50). ``diffusion``: one (b-value, LPS direction or None) per volume, written
    as UIH does: (0065,1009) b-value and (0065,1037) direction along (row, column, normal).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows_t, cols_t = tile
    m = int(np.ceil(np.sqrt(n_slices)))  # tiles across
    m_rows = -(-n_slices // m)  # rows of tiles
    row, col = unit_vector(row_dir, "row_dir"), unit_vector(col_dir, "col_dir")
    step = np.cross(row, col)
    ps = (float(ds_text(pixel_spacing[0])), float(ds_text(pixel_spacing[1])))
    ipp_text = [[ds_text(v) for v in np.asarray(first_tile) + t * slice_spacing * step]
                for t in range(n_slices)]
    ipps = np.asarray([[float(v) for v in p] for p in ipp_text])
    values = np.stack([ideal_values((cols_t, rows_t, n_slices), "MR", seed + v)
                       for v in range(n_volumes)], axis=-1).round()
    series_uid, study_uid, for_uid = (pydicom.uid.generate_uid() for _ in range(3))
    paths = []
    for v in range(n_volumes):
        ds = slice_dataset(pydicom.uid.MRImageStorage, pydicom.uid.generate_uid(),
                           pydicom.uid.ExplicitVRLittleEndian)
        ds.Manufacturer = "UIH"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "VFRAME"]
        ds.Modality = "MR"
        ds.SeriesDescription = "epi_dti grid"
        ds.PatientID = "SYNTH_UIH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = for_uid
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = 7, v + 1, v + 1
        ds.AcquisitionTime = f"1300{v * 3:02d}.000000"
        ds.ImageOrientationPatient = [ds_text(x) for x in (*row, *col)]
        ds.PixelSpacing = [ds_text(x) for x in ps]
        ds.SliceThickness = ds_text(slice_spacing)
        ds.SpacingBetweenSlices = ds_text(slice_spacing)
        ds.Rows, ds.Columns = rows_t * m_rows, cols_t * m
        ds.AcquisitionMatrix = [0, cols_t, rows_t, 0]
        ds.InPlanePhaseEncodingDirection = "COL"
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
        ds.PixelData = tile_grid(values[:, :, :, v], m, m_rows).tobytes()
        block = ds.private_block(0x0065, UIH_CREATOR, create=True)
        if count:
            block.add_new(0x50, "DS", str(n_slices))
        if normal:
            block.add_new(0x14, "DS", [ds_text(x) for x in step])
        if diffusion is not None:
            b, direction = diffusion[v]
            block.add_new(0x09, "FD", float(b))
            block.add_new(0x37, "FD", [0.0, 0.0, 0.0] if direction is None else uih_image_frame(
                direction, [*row, *col]))
        if positions != "none":
            items = []
            for t in range(n_slices if positions == "all" else 1):
                item = Dataset()
                item.ImagePositionPatient = ipp_text[t]
                item.ImageOrientationPatient = list(ds.ImageOrientationPatient)
                items.append(item)
            block.add_new(0x51, "SQ", DicomSequence(items))
        path = out / f"UIH{v + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True, overwrite=False)
        paths.append(path)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = row * ps[1], col * ps[0]
    affine[:3, 2], affine[:3, 3] = step * slice_spacing, ipps[0]
    return SyntheticMosaic(tuple(paths), readonly(values), readonly(affine))

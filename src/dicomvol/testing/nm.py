"""Synthetic NM (SPECT) reconstructions: one multi-frame NM Image object per file.

The geometry is where PS3.3 puts it for RECON TOMO and RECON GATED TOMO: Image
Position and Orientation (Patient) in the first Detector Information Sequence item,
Spacing Between Slices (signed), and the frame vectors (Slice Vector, Time Slot
Vector). Every voxel value encodes its slice, gate, row and column (see
:func:`nm_value`), so a reader's placement can be checked from the values alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.20"


@dataclass(frozen=True)
class NmSeries:
    """What :func:`write_nm` wrote: the file and the truth to check a reader against."""

    path: Path
    #: Slice number (1-based) and gate (1-based) of each frame, in file order.
    slices: tuple[int, ...]
    gates: tuple[int, ...]
    orientation: tuple[float, ...]
    first_position: tuple[float, float, float]
    spacing: float
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int


def nm_value(slice_number: int, gate: int, row: Any, column: Any) -> Any:
    """The stored value of the voxel at (row, column) of slice ``slice_number`` in ``gate``
    (``row`` and ``column`` may be index arrays of one shape: values of that shape)."""
    return 1000 * gate + 40 * slice_number + 3 * row + column


def write_nm(path: str | Path, *, rows: int = 6, columns: int = 5, n_slices: int = 8,
             n_gates: int = 1, spacing: float = 4.5,
             orientation: Sequence[float] = (1, 0, 0, 0, 0, -1),
             position: Sequence[float] = (-10.0, -20.0, 30.0),
             pixel_spacing: tuple[float, float] = (4.0, 3.0),
             slice_order: Sequence[int] | None = None, detector_geometry: bool = True,
             modality: str = "NM", extra: Mapping[str, Any] | None = None,
             series_description: str = "spect") -> NmSeries:
    """Write one NM reconstruction (RECON TOMO, or RECON GATED TOMO for ``n_gates`` > 1).

    Frames are gate-major (all slices of gate 1, then gate 2, ...), each gate's slices in
    ``slice_order`` (slice numbers, default 1..n_slices). ``detector_geometry=False``
    writes no Detector Information Sequence (the geometry is then unknown). ``extra``
    sets further attributes by keyword (None deletes one).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as Seq
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    order = list(slice_order) if slice_order is not None else list(range(1, n_slices + 1))
    slices = tuple(s for _ in range(n_gates) for s in order)
    gates = tuple(g for g in range(1, n_gates + 1) for _ in order)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(NM_SOP_CLASS)
    ds.SOPClassUID = NM_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = modality, "NM001", "NM^SYNTHETIC"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 1, 1, series_description
    gated = n_gates > 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON GATED TOMO" if gated else "RECON TOMO",
                    "EMISSION"]
    ds.NumberOfFrames = len(slices)
    ds.FrameIncrementPointer = ([(0x0054, 0x0070), (0x0054, 0x0080)] if gated
                                else (0x0054, 0x0080))
    ds.SliceVector = list(slices)
    ds.NumberOfSlices = n_slices
    if gated:
        ds.TimeSlotVector = list(gates)
        ds.NumberOfTimeSlots = n_gates
    ds.EnergyWindowVector = [1] * len(slices)
    ds.NumberOfEnergyWindows = 1
    ds.DetectorVector = [1] * len(slices)
    ds.NumberOfDetectors = 1
    if detector_geometry:
        detector = Dataset()
        detector.ImagePositionPatient = [float(v) for v in position]
        detector.ImageOrientationPatient = [float(v) for v in orientation]
        ds.DetectorInformationSequence = Seq([detector])
    ds.PixelSpacing = list(pixel_spacing)
    ds.SpacingBetweenSlices = spacing
    ds.SliceThickness = abs(spacing)
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    r, c = np.indices((rows, columns))
    frames = np.stack([np.asarray(nm_value(s, g, r, c))
                       for s, g in zip(slices, gates, strict=True)])
    ds.PixelData = frames.astype("<u2").tobytes()
    for keyword, value in (extra or {}).items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return NmSeries(out, slices, gates, tuple(float(v) for v in orientation),
                    (float(position[0]), float(position[1]), float(position[2])), spacing,
                    pixel_spacing, rows, columns)

"""Synthetic SEG and RTSTRUCT objects that reference a synthetic image series.

Written with pydicom directly (not with a SEG library), so that tests can
build what real producers write and what no library would: frames in any
order, frames on a few slices only, positions drifting off the image planes,
frames between planes, contours between slices, POINT ROIs, holes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence

from dicomvol.testing.geometry import ds_text as ds_str
from dicomvol.testing.series import SyntheticSeries

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: (CodeValue, scheme, meaning) of the segmented property used for every synthetic segment.
TISSUE = ("85756007", "SCT", "Tissue")
ORGAN = ("113343008", "SCT", "Organ")


@dataclass(frozen=True)
class SegFrame:
    """One frame to write: its segment (0 for a label map), position (LPS) and pixels.

    ``pixels`` has shape (Rows, Columns): bool for BINARY, float 0..1 for FRACTIONAL,
    integer labels for LABELMAP. ``source`` names the referenced image instance.
    """

    segment: int
    position: tuple[float, float, float]
    pixels: np.ndarray
    source: str = ""


@dataclass(frozen=True)
class Roi:
    """An RTSTRUCT ROI: number, name, colour and contours ``(ContourGeometricType, (N, 3))``."""

    number: int
    name: str
    contours: Sequence[tuple[str, np.ndarray]]
    colour: tuple[int, int, int] = (255, 0, 0)
    interpreted_type: str = "ORGAN"


def _code(value: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def _base(sop_class: str, series: SyntheticSeries, modality: str, series_number: int,
          description: str) -> Dataset:
    uid = pydicom.uid.generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.UID(sop_class)
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(uid)
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.Modality = modality
    ds.StudyInstanceUID = series.study_instance_uid
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.SeriesNumber, ds.InstanceNumber = series_number, 1
    ds.SeriesDescription = description
    ds.PatientID, ds.PatientName = "SYNTH001", "Synthetic^Patient"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.Manufacturer = "dicomvol synthetic"
    return ds


def seg_frames_from_masks(series: SyntheticSeries, masks: Mapping[int, np.ndarray],
                          drift_mm: float = 0.0, seed: int = 0) -> list[SegFrame]:
    """One frame per segment and image slice where the mask is not empty.

    ``masks[s]`` has the image's shape (X, Y, Z). ``drift_mm`` moves each frame's
    position along the slice normal by a random amount in [-drift, drift].
    """
    rng = np.random.default_rng(seed)
    normal = np.cross(series.row_dir, series.col_dir)
    frames = []
    for segment, mask in masks.items():
        for k in range(mask.shape[2]):
            if not np.any(mask[:, :, k]):
                continue
            shift = rng.uniform(-drift_mm, drift_mm) if drift_mm else 0.0
            pos = series.positions[k] + shift * normal
            frames.append(SegFrame(segment, (float(pos[0]), float(pos[1]), float(pos[2])),
                                   np.asarray(mask[:, :, k]).T, series.sop_instance_uids[k]))
    return frames


def write_seg(path: str | Path, series: SyntheticSeries, frames: Iterable[SegFrame],
              segments: Mapping[int, str], *, kind: str = "BINARY",
              shuffle_seed: int | None = None, colours: Mapping[int, Sequence[int]] | None = None,
              max_fractional: int = 255) -> Path:
    """Write a SEG (BINARY, FRACTIONAL or a Label Map Segmentation) on ``series``.

    Parameters
    ----------
    path : str or Path
        The file to write.
    series : SyntheticSeries
        The image the SEG references (UIDs, orientation, pixel spacing).
    frames : iterable of SegFrame
        Written in this order (after the shuffle, when ``shuffle_seed`` is given).
    segments : mapping of int to str
        SegmentNumber -> SegmentLabel.
    kind : {"BINARY", "FRACTIONAL", "LABELMAP"}
    colours : mapping of int to 3 ints, optional
        RecommendedDisplayCIELabValue per segment.

    Returns
    -------
    Path
    """
    frames = list(frames)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(frames))
        frames = [frames[int(n)] for n in order]
    sop_class = LABELMAP_SOP_CLASS if kind == "LABELMAP" else SEG_SOP_CLASS
    ds = _base(sop_class, series, "SEG", 100, f"synthetic {kind.lower()} seg")
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SegmentationType = kind
    if kind == "FRACTIONAL":
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = max_fractional
    ds.ContentLabel, ds.ContentCreatorName = "SEG", "dicomvol"
    rows, cols = frames[0].pixels.shape if frames else (series.shape[1], series.shape[0])
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = 1 if kind == "BINARY" else (16 if kind == "LABELMAP" and len(segments) > 255 else 8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.LossyImageCompression = "00"
    ds.NumberOfFrames = len(frames)
    ds.SegmentSequence = DicomSequence([_segment_item(n, label, colours)
                                        for n, label in sorted(segments.items())])
    ds.SharedFunctionalGroupsSequence = DicomSequence([_shared(series)])
    normal = np.cross(series.row_dir, series.col_dir)
    ranks = {q: n for n, q in enumerate(sorted({round(float(np.asarray(f.position) @ normal), 4)
                                                for f in frames}), 1)}
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [_per_frame(f, ranks[round(float(np.asarray(f.position) @ normal), 4)], kind, series)
         for f in frames])
    _dimensions(ds, kind)
    ref = Dataset()
    ref.SeriesInstanceUID = series.series_instance_uid
    ref.ReferencedInstanceSequence = DicomSequence()
    for uid in series.sop_instance_uids:
        inst = Dataset()
        inst.ReferencedSOPClassUID, inst.ReferencedSOPInstanceUID = _image_class(series), uid
        ref.ReferencedInstanceSequence.append(inst)
    ds.ReferencedSeriesSequence = DicomSequence([ref])
    ds.PixelData = _pixel_data(frames, kind, bits, max_fractional)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _image_class(series: SyntheticSeries) -> str:
    return {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
            "PT": "1.2.840.10008.5.1.4.1.1.128"}.get(series.modality, "1.2.840.10008.5.1.4.1.1.2")


def _segment_item(number: int, label: str, colours: Mapping[int, Sequence[int]] | None
                  ) -> Dataset:
    item = Dataset()
    item.SegmentNumber, item.SegmentLabel = number, label
    item.SegmentAlgorithmType = "MANUAL"
    item.SegmentedPropertyCategoryCodeSequence = DicomSequence([_code(TISSUE)])
    item.SegmentedPropertyTypeCodeSequence = DicomSequence([_code(ORGAN)])
    if colours and number in colours:
        item.RecommendedDisplayCIELabValue = [int(v) for v in colours[number]]
    return item


def _shared(series: SyntheticSeries) -> Dataset:
    shared = Dataset()
    ori = Dataset()
    ori.ImageOrientationPatient = [ds_str(v) for v in (*series.row_dir, *series.col_dir)]
    shared.PlaneOrientationSequence = DicomSequence([ori])
    measures = Dataset()
    measures.PixelSpacing = [ds_str(v) for v in series.pixel_spacing]
    step = (float(np.linalg.norm(series.positions[1] - series.positions[0]))
            if len(series.positions) > 1 else 1.0)
    measures.SliceThickness = ds_str(step)
    measures.SpacingBetweenSlices = ds_str(step)
    shared.PixelMeasuresSequence = DicomSequence([measures])
    return shared


def _dimensions(ds: Dataset, kind: str) -> None:
    """Dimension organization: (segment number,) ImagePositionPatient, as SEG producers write."""
    uid = pydicom.uid.generate_uid()
    ds.DimensionOrganizationSequence = DicomSequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = uid
    ds.DimensionOrganizationType = "3D"
    dims = []
    if kind != "LABELMAP":
        seg = Dataset()
        seg.DimensionOrganizationUID = uid
        seg.DimensionIndexPointer = 0x0062000B  # ReferencedSegmentNumber
        seg.FunctionalGroupPointer = 0x0062000A  # SegmentIdentificationSequence
        seg.DimensionDescriptionLabel = "ReferencedSegmentNumber"
        dims.append(seg)
    pos = Dataset()
    pos.DimensionOrganizationUID = uid
    pos.DimensionIndexPointer = 0x00200032  # ImagePositionPatient
    pos.FunctionalGroupPointer = 0x00209113  # PlanePositionSequence
    pos.DimensionDescriptionLabel = "ImagePositionPatient"
    dims.append(pos)
    ds.DimensionIndexSequence = DicomSequence(dims)


def _per_frame(frame: SegFrame, n: int, kind: str, series: SyntheticSeries) -> Dataset:
    fg = Dataset()
    content = Dataset()
    content.DimensionIndexValues = [n] if kind == "LABELMAP" else [frame.segment, n]
    fg.FrameContentSequence = DicomSequence([content])
    pos = Dataset()
    pos.ImagePositionPatient = [ds_str(v) for v in frame.position]
    fg.PlanePositionSequence = DicomSequence([pos])
    if kind != "LABELMAP":
        ident = Dataset()
        ident.ReferencedSegmentNumber = frame.segment
        fg.SegmentIdentificationSequence = DicomSequence([ident])
    if frame.source:
        derivation = Dataset()
        src = Dataset()
        src.ReferencedSOPClassUID = _image_class(series)
        src.ReferencedSOPInstanceUID = frame.source
        derivation.SourceImageSequence = DicomSequence([src])
        fg.DerivationImageSequence = DicomSequence([derivation])
    return fg


def _pixel_data(frames: Sequence[SegFrame], kind: str, bits: int, max_fractional: int) -> bytes:
    from pydicom.pixels.utils import pack_bits

    if kind == "BINARY":
        rows, cols = frames[0].pixels.shape if frames else (0, 0)
        if (rows * cols) % 8 == 0:  # frames start on byte boundaries: pack one at a time
            return b"".join(pack_bits((f.pixels != 0).astype(np.uint8)) for f in frames)
        stacked = np.stack([(f.pixels != 0).astype(np.uint8) for f in frames])
        return bytes(pack_bits(stacked))
    dtype = np.uint16 if bits == 16 else np.uint8
    parts = []
    for f in frames:
        values = (np.rint(np.asarray(f.pixels, dtype=np.float64) * max_fractional)
                  if kind == "FRACTIONAL" else np.asarray(f.pixels))
        parts.append(values.astype(dtype).tobytes())
    data = b"".join(parts)
    return data + (b"\x00" if len(data) % 2 else b"")


def write_rtstruct(path: str | Path, series: SyntheticSeries, rois: Sequence[Roi]) -> Path:
    """Write an RTSTRUCT whose ROIs reference ``series`` (contours in LPS mm)."""
    ds = _base(RTSTRUCT_SOP_CLASS, series, "RTSTRUCT", 200, "synthetic rtstruct")
    ds.StructureSetLabel = "synthetic"
    ds.StructureSetDate, ds.StructureSetTime = "20240101", "120000"
    frame = Dataset()
    frame.FrameOfReferenceUID = series.frame_of_reference_uid
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = series.study_instance_uid
    ser = Dataset()
    ser.SeriesInstanceUID = series.series_instance_uid
    ser.ContourImageSequence = DicomSequence()
    for uid in series.sop_instance_uids:
        img = Dataset()
        img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = _image_class(series), uid
        ser.ContourImageSequence.append(img)
    study.RTReferencedSeriesSequence = DicomSequence([ser])
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    ds.StructureSetROISequence = DicomSequence()
    ds.ROIContourSequence = DicomSequence()
    ds.RTROIObservationsSequence = DicomSequence()
    for roi in rois:
        item = Dataset()
        item.ROINumber, item.ROIName = roi.number, roi.name
        item.ReferencedFrameOfReferenceUID = series.frame_of_reference_uid
        item.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = roi.number
        rc.ROIDisplayColor = list(roi.colour)
        rc.ContourSequence = DicomSequence()
        for kind, points in roi.contours:
            c = Dataset()
            c.ContourGeometricType = kind
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [ds_str(v) for v in pts.ravel()]
            rc.ContourSequence.append(c)
        ds.ROIContourSequence.append(rc)
        obs = Dataset()
        obs.ObservationNumber = obs.ReferencedROINumber = roi.number
        obs.RTROIInterpretedType, obs.ROIInterpreter = roi.interpreted_type, ""
        ds.RTROIObservationsSequence.append(obs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def polygon_on_slice(series: SyntheticSeries, k: float, ij: np.ndarray) -> np.ndarray:
    """LPS points (N, 3) of a polygon given in (i, j) voxel indices on slice ``k``.

    ``k`` may be fractional (a contour between slices).
    """
    ij = np.asarray(ij, dtype=np.float64)
    affine = series.affine_lps
    pts = np.c_[ij, np.full(len(ij), float(k)), np.ones(len(ij))] @ affine.T
    return np.asarray(pts[:, :3])


RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
PARAMETRIC_MAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"


def write_rtdose(path: str | Path, series: SyntheticSeries, dose_gy: np.ndarray,
                 origin: Sequence[float], spacing: tuple[float, float, float], *,
                 absolute_offsets: bool = False, scaling: float = 1e-4) -> Path:
    """Write a multi-frame RT Dose on an axial grid, in the frame of reference of ``series``.

    ``dose_gy`` has shape (X, Y, Z) (Gy); stored as uint32 ``round(dose / scaling)``.
    ``spacing`` is (column step, row step, frame step) in mm. The GridFrameOffsetVector is
    relative (first offset 0) or, with ``absolute_offsets``, the z coordinates.
    """
    ds = _base(RTDOSE_SOP_CLASS, series, "RTDOSE", 300, "synthetic dose")
    nx, ny, nz = dose_gy.shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = ny, nx, nz
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.ImagePositionPatient = [ds_str(v) for v in origin]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [ds_str(spacing[1]), ds_str(spacing[0])]
    offsets = np.arange(nz) * spacing[2] + (float(origin[2]) if absolute_offsets else 0.0)
    ds.GridFrameOffsetVector = [ds_str(v) for v in offsets]
    ds.FrameIncrementPointer = 0x3004000C
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = ds_str(scaling)
    stored = np.rint(np.asarray(dose_gy) / scaling).astype("<u4")
    ds.PixelData = np.ascontiguousarray(stored.transpose(2, 1, 0)).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_parametric_map(path: str | Path, series: SyntheticSeries, values: np.ndarray, *,
                         units: tuple[str, str, str] = ("um2/s", "UCUM", "um2/s"),
                         label: str = "ADC") -> Path:
    """Write a Parametric Map (FloatPixelData) on the grid of ``series``.

    ``values`` has the image's shape (X, Y, Z); frames are written in reverse slice order
    with per-frame positions and an identity RealWorldValueMapping in ``units``.
    """
    ds = _base(PARAMETRIC_MAP_SOP_CLASS, series, series.modality, 400, f"synthetic {label}")
    nx, ny, nz = values.shape
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ContentLabel = label
    ds.Rows, ds.Columns, ds.NumberOfFrames = ny, nx, nz
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = 32
    shared = _shared(series)
    mapping = Dataset()
    mapping.LUTLabel, mapping.LUTExplanation = label, f"{label} in {units[2]}"
    mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept = 1.0, 0.0
    mapping.RealWorldValueFirstValueMapped, mapping.RealWorldValueLastValueMapped = 0, 0
    mapping.MeasurementUnitsCodeSequence = DicomSequence([_code(units)])
    shared.RealWorldValueMappingSequence = DicomSequence([mapping])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    order = list(range(nz))[::-1]
    ds.PerFrameFunctionalGroupsSequence = DicomSequence()
    for k in order:
        fg = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [ds_str(v) for v in series.positions[k]]
        fg.PlanePositionSequence = DicomSequence([pos])
        content = Dataset()
        content.DimensionIndexValues = [k + 1]
        fg.FrameContentSequence = DicomSequence([content])
        ds.PerFrameFunctionalGroupsSequence.append(fg)
    frames = np.stack([np.asarray(values[:, :, k], dtype="<f4").T for k in order])
    ds.FloatPixelData = frames.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path

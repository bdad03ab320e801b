"""Synthetic enhanced (multi-frame) MR objects made from synthetic single-frame files.

:func:`enhanced_from_files` packs single-frame files (e.g. written by
:func:`dicomvol.testing.series.write_series`) into one Enhanced MR Image
Storage object, frame n holding file n: each file's position, rescale,
temporal position, acquisition time, echo time and image type move into the
frame's functional groups, so that a test compares the classic and the
enhanced path on the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

#: Enhanced MR Image Storage.
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
#: Single-frame attributes that become functional groups (removed from the top level).
_MOVED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
          "SpacingBetweenSlices", "RescaleSlope", "RescaleIntercept", "RescaleType",
          "TemporalPositionIdentifier", "AcquisitionTime", "EchoTime", "TriggerTime",
          "InstanceNumber", "SliceLocation", "EchoNumbers")


def enhanced_from_files(paths: Sequence[str | Path], out: str | Path, *,
                        dimension_index: bool = True) -> Path:
    """One Enhanced MR object whose frame n is the single-frame file ``paths[n]``.

    Parameters
    ----------
    paths : sequence of path
        Single-frame MR files of one series and grid, in the frame order wanted.
    out : path
        File to write (its folder must exist).
    dimension_index : bool, optional
        Write a DimensionIndexSequence (StackID, InStackPositionNumber,
        TemporalPositionIndex, the frame's rank among the frames of its position and
        temporal position) and each frame's DimensionIndexValues.

    Returns
    -------
    Path
        ``out``.
    """
    files = [pydicom.dcmread(p) for p in paths]
    first = files[0]
    ds = Dataset()
    ds.file_meta = first.file_meta
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.UID(ENHANCED_MR)
    sop_uid = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    for elem in first:
        if elem.keyword not in _MOVED and elem.keyword != "PixelData":
            ds.add(elem)
    ds.SOPClassUID = ENHANCED_MR
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(files)
    ds.ImageType = list(first.ImageType)
    shared = Dataset()
    ori = Dataset()
    ori.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PlaneOrientationSequence = DicomSequence([ori])
    measures = Dataset()
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.get("SliceThickness", "1")
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    positions = sorted({_along_normal(f) for f in files})
    per_frame = []
    seen: dict[tuple[float, Any], int] = {}
    for f in files:
        cell = (_along_normal(f), f.get("TemporalPositionIdentifier"))
        seen[cell] = seen.get(cell, 0) + 1
        per_frame.append(_frame_groups(f, positions, seen[cell] if dimension_index else 0))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    if dimension_index:
        _dimension_index(ds)
    pixels = np.stack([np.asarray(f.pixel_array) for f in files])
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.save_as(out, enforce_file_format=True, overwrite=False)
    return Path(out)


def _along_normal(f: Dataset) -> float:
    iop = np.asarray([float(v) for v in f.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return round(float(np.asarray([float(v) for v in f.ImagePositionPatient]) @ normal), 4)


def _frame_groups(f: Dataset, positions: Sequence[float], repeat: int) -> Dataset:
    """The frame's groups; ``repeat`` > 0: its DimensionIndexValues, with ``repeat`` the
    frame's rank among the frames of its position and temporal position."""
    fg = Dataset()
    content = Dataset()
    content.StackID = "1"
    content.InStackPositionNumber = positions.index(_along_normal(f)) + 1
    temporal = f.get("TemporalPositionIdentifier")
    if temporal is not None:
        content.TemporalPositionIndex = int(temporal)
    acq = f.get("AcquisitionTime")
    if acq:
        content.FrameAcquisitionDateTime = f"{f.get('AcquisitionDate', '20240101')}{acq}"
    if repeat:
        content.DimensionIndexValues = [1, int(content.InStackPositionNumber),
                                        int(temporal) if temporal is not None else 1, repeat]
    fg.FrameContentSequence = DicomSequence([content])
    pos = Dataset()
    pos.ImagePositionPatient = f.ImagePositionPatient
    fg.PlanePositionSequence = DicomSequence([pos])
    transform = Dataset()
    transform.RescaleSlope = f.get("RescaleSlope", "1")
    transform.RescaleIntercept = f.get("RescaleIntercept", "0")
    transform.RescaleType = "US"
    fg.PixelValueTransformationSequence = DicomSequence([transform])
    frame_type = Dataset()
    frame_type.FrameType = list(f.ImageType)
    fg.MRImageFrameTypeSequence = DicomSequence([frame_type])
    if f.get("EchoTime") is not None:
        echo = Dataset()
        echo.EffectiveEchoTime = float(f.EchoTime)
        fg.MREchoSequence = DicomSequence([echo])
    return fg


def _dimension_index(ds: Dataset) -> None:
    uid = pydicom.uid.generate_uid()
    ds.DimensionOrganizationSequence = DicomSequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = uid
    dims = []
    for pointer, group, label in (
            (0x00209056, 0x00209111, "StackID"),
            (0x00209057, 0x00209111, "InStackPositionNumber"),
            (0x00209128, 0x00209111, "TemporalPositionIndex"),
            # what tells repeated frames apart (Philips: a private label/control index)
            (0x00200013, 0x00209111, "repeat at position")):
        item = Dataset()
        item.DimensionOrganizationUID = uid
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = group
        item.DimensionDescriptionLabel = label
        dims.append(item)
    ds.DimensionIndexSequence = DicomSequence(dims)


def shuffle_frames(path: str | Path, order: Sequence[int], seed: int | None = None) -> Path:
    """Rewrite an enhanced object with its frames reordered: new frame n is old frame
    ``order[n]`` (0-based), functional groups (DimensionIndexValues included) and pixels
    moving together, so that only the frame numbers change. ``seed``: a random order
    instead (``order`` ignored)."""
    ds = pydicom.dcmread(path)
    n = int(ds.NumberOfFrames)
    perm = list(np.random.default_rng(seed).permutation(n)) if seed is not None else list(order)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"not a permutation of {n} frames: {perm}")
    pixels = np.asarray(ds.pixel_array).reshape((n, int(ds.Rows), int(ds.Columns)))
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence([groups[i] for i in perm])
    shuffled = pixels[perm]
    ds.PixelData = shuffled.astype(shuffled.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return Path(path)

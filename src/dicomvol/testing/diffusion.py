"""Synthetic diffusion series per vendor (classic and enhanced), with known b-values and vectors.

Each vendor stores the diffusion encoding where its scanners do:

* ``"GE"``: (0043,xx39) b-value (first of four IS values) of ``GEMS_PARM_01`` and the
  vector (0019,xxBB/BC/BD) of ``GEMS_ACQU_01`` in the image frame (written as given);
* ``"Siemens"``: the CSA image header (0029,1010) ``B_value`` and
  ``DiffusionGradientDirection`` (LPS);
* ``"SiemensXA"``: XA "interoperable" classic: DiffusionBValue (0018,9087) but the
  direction only in (0019,100E) of ``SIEMENS MR HEADER`` (with the b-value in (0019,100C));
  enhanced: the per-frame MRDiffusionSequence;
* ``"Philips"``: (2001,1003) b-value, (2001,1004) direction flag (``I`` for isotropic) and
  (2005,10B0/B1/B2) vector, plus the standard attributes, as Philips writes both;
* ``"Canon"``: the standard DiffusionBValue and DiffusionGradientOrientation (0018,9087/9089);
* ``"CanonComments"``: newer Canon software: DiffusionBValue, and the direction only in
  ImageComments as ``b=1000(x,y,z)``, written from ``direction`` taken as the (a, b, c) of
  that text (image-frame components; see ``dicomvol.dicom.diffusion._canon_comment``);
* ``"UIH"``: (0065,1009) b-value and (0065,1037) direction of ``Image Private Header`` (FD),
  the direction's components along (row, column, normal), written from the LPS
  ``direction``; and, as UIH does (dcm2niix issue 836), the standard DiffusionBValue and a
  DiffusionGradientOrientation holding those same components unrotated (wrong when oblique).

Enhanced files (``enhanced=True``) hold every volume as frames of one Enhanced MR object with
the per-frame MRDiffusionSequence (DiffusionDirectionality DIRECTIONAL, NONE or ISOTROPIC).
A :class:`DwiVolume` of another ``kind`` than ``"dwi"`` is a derived image (trace, ADC, FA,
exponential ADC) stored as vendors do: DERIVED ImageType naming it, b > 0 (trace, eADC) or 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset

from dicomvol._typing import Vec3
from dicomvol.testing.geometry import ds_text
from dicomvol.testing.siemens import add_csa, csa2
from dicomvol.testing.slices import slice_dataset

#: Manufacturer values written per vendor key.
MANUFACTURERS = {"GE": "GE MEDICAL SYSTEMS", "Siemens": "SIEMENS",
                 "SiemensXA": "Siemens Healthineers", "Philips": "Philips Medical Systems",
                 "Canon": "CANON_MEC", "CanonComments": "CANON_MEC", "UIH": "UIH"}
#: ImageType value 4 of derived images per kind (what Philips and Siemens write).
DERIVED_IMAGE_TYPES = {"trace": "TRACEW", "adc": "ADC", "fa": "FA", "eadc": "EADC"}


@dataclass(frozen=True)
class DwiVolume:
    """One volume of a synthetic diffusion series.

    ``direction`` is LPS for every vendor but GE, where it is the raw (0019,xxBB/BC/BD)
    vector; None for b = 0 and derived images.
    """

    b: float
    direction: Vec3 | None = None
    kind: str = "dwi"


@dataclass(frozen=True)
class DwiSeries:
    """What :func:`write_dwi_series` wrote: files, volumes in acquisition order, geometry."""

    paths: tuple[Path, ...]
    volumes: tuple[DwiVolume, ...]
    orientation: tuple[float, ...]
    series_instance_uid: str


def _pixels(shape: tuple[int, int], vol: int, k: int) -> np.ndarray:
    rows, cols = shape
    j, i = np.mgrid[0:rows, 0:cols]
    out: np.ndarray = ((i * 7 + j * 13 + k * 31 + vol * 101) % 997 + 10).astype(np.uint16)
    return out


def _clock(seconds: int) -> str:
    """HHMMSS of 12:00:00 plus ``seconds`` (volumes are one RepetitionTime, 5 s, apart)."""
    total = 12 * 3600 + seconds
    return f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}"


def _geometry(row: Sequence[float], col: Sequence[float], n_slices: int,
              spacing: float) -> tuple[list[str], list[list[str]]]:
    r, c = np.asarray(row, dtype=float), np.asarray(col, dtype=float)
    normal = np.cross(r, c)
    origin = np.array([-30.0, -25.0, 10.0])
    iop = [ds_text(float(v)) for v in (*r, *c)]
    ipps = [[ds_text(float(v)) for v in origin + k * spacing * normal] for k in range(n_slices)]
    return iop, ipps


def _vendor_tags(ds: Dataset, vendor: str, vol: DwiVolume) -> None:
    """The private (and standard) diffusion attributes of one classic slice."""
    v = vol.direction or (0.0, 0.0, 0.0)
    if vendor == "GE":
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(
            0x39, "IS", [int(vol.b), 8, 0, 0])
        block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        for offset, value in zip((0xBB, 0xBC, 0xBD), v, strict=True):
            block.add_new(offset, "DS", ds_text(value))
    elif vendor == "Siemens":
        tags = {"B_value": ("IS", [f"{vol.b:g}"])}
        if vol.direction is not None:
            tags["DiffusionGradientDirection"] = ("FD", [f"{x:.8f}" for x in v])
        add_csa(ds, image=csa2(tags))
    elif vendor == "SiemensXA":
        ds.DiffusionBValue = float(vol.b)
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", str(int(vol.b)))
        if vol.direction is not None:
            block.add_new(0x0E, "FD", list(v))
    elif vendor == "Philips":
        _philips_private(ds, vol)
        ds.DiffusionBValue = float(vol.b)
        if vol.direction is not None:
            ds.DiffusionGradientOrientation = list(v)
    elif vendor == "Canon":
        ds.DiffusionBValue = float(vol.b)
        if vol.direction is not None:
            ds.DiffusionGradientOrientation = list(v)
    elif vendor == "CanonComments":
        ds.DiffusionBValue = float(vol.b)
        ds.ImageComments = f"b={vol.b:g}({v[0]:.3f},{v[1]:.3f},{v[2]:.3f})"
    elif vendor == "UIH":
        _uih_private(ds, vol)
    else:
        raise ValueError(f"unknown vendor {vendor!r}")


def uih_image_frame(direction: Sequence[float], orientation: Sequence[float]) -> list[float]:
    """An LPS direction's components along (row, column, normal): UIH's (0065,1037)."""
    o = np.asarray(orientation, dtype=float)
    row, col = o[:3], o[3:6]
    axes = np.array([row, col, np.cross(row, col)])
    return [float(x) for x in axes @ np.asarray(direction, dtype=float)]


def _uih_private(ds: Dataset, vol: DwiVolume) -> None:
    v = [0.0, 0.0, 0.0] if vol.direction is None else uih_image_frame(
        vol.direction, [float(x) for x in ds.ImageOrientationPatient])
    block = ds.private_block(0x0065, "Image Private Header", create=True)
    block.add_new(0x09, "FD", float(vol.b))
    block.add_new(0x37, "FD", v)
    ds.DiffusionBValue = float(vol.b)
    if vol.direction is not None:
        ds.DiffusionGradientOrientation = v  # unrotated, as UIH writes it


def _philips_private(ds: Dataset, vol: DwiVolume) -> None:
    v = vol.direction or (0.0, 0.0, 0.0)
    block = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
    block.add_new(0x03, "FL", float(vol.b))
    flag = "I" if vol.kind == "trace" else ("O" if vol.direction is not None else "")
    block.add_new(0x04, "CS", flag)
    mr = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    for offset, value in zip((0xB0, 0xB1, 0xB2), v, strict=True):
        mr.add_new(offset, "FL", float(value))


def _image_type(vol: DwiVolume) -> list[str]:
    if vol.kind == "dwi":
        return ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    return ["DERIVED", "PRIMARY", "DIFFUSION", DERIVED_IMAGE_TYPES[vol.kind]]


def _base(sop_class: pydicom.uid.UID, vendor: str, uids: Sequence[str],
          shape: tuple[int, int], transfer_syntax: str) -> Dataset:
    ds = slice_dataset(sop_class, pydicom.uid.generate_uid(), transfer_syntax)
    ds.Manufacturer = MANUFACTURERS[vendor]
    ds.Modality = "MR"
    ds.SeriesDescription = f"DTI {vendor}"
    ds.ProtocolName = f"DTI_{vendor}"
    ds.PatientID = "SYNTHDWI"
    ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = uids
    ds.SeriesNumber = 7
    ds.Rows, ds.Columns = shape
    ds.PixelRepresentation = 0
    ds.PatientPosition = "HFS"
    ds.InPlanePhaseEncodingDirection = "COL"
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "EP", "SK", "2D"
    ds.EchoTime, ds.RepetitionTime, ds.MagneticFieldStrength = "80", "5000", "3"
    return ds


def write_dwi_series(folder: str | Path, vendor: str, volumes: Sequence[DwiVolume], *,
                     enhanced: bool = False, shape: tuple[int, int] = (10, 12),
                     n_slices: int = 4, row: Sequence[float] = (1.0, 0.0, 0.0),
                     col: Sequence[float] = (0.0, 1.0, 0.0), spacing: float = 3.0,
                     transfer_syntax: str = pydicom.uid.ExplicitVRLittleEndian) -> DwiSeries:
    """Write a diffusion series of ``volumes`` (acquisition order) x ``n_slices`` slices.

    Parameters
    ----------
    folder : str or Path
        Output folder (created).
    vendor : {"GE", "Siemens", "SiemensXA", "Philips", "Canon", "CanonComments", "UIH"}
        Where the diffusion encoding is stored (see the module docstring).
    volumes : sequence of DwiVolume
        In acquisition order; classic InstanceNumbers and enhanced frame numbers follow it.
    enhanced : bool
        One Enhanced MR Image object (``"SiemensXA"``, ``"Philips"``, ``"Canon"``) instead of one
        file per slice.
    shape : (rows, columns)
        Matrix of every slice.
    n_slices : int
        Slices per volume.
    row, col : sequence of 3 float
        ImageOrientationPatient (unit, orthogonal).
    spacing : float
        Slice spacing and thickness (mm); PixelSpacing is 2 x 2 mm.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    iop, ipps = _geometry(row, col, n_slices, spacing)
    uids = [str(pydicom.uid.generate_uid()) for _ in range(3)]
    if enhanced and vendor == "SiemensXA":  # XA writes one enhanced object per volume
        paths = [_write_enhanced(out / f"ENH{n + 1:04d}.dcm", vendor, [vol], shape, iop, ipps,
                                 spacing, uids, transfer_syntax, n)
                 for n, vol in enumerate(volumes)]
        return DwiSeries(tuple(paths), tuple(volumes), tuple(float(v) for v in iop), uids[0])
    if enhanced:
        path = _write_enhanced(out / "ENHANCED.dcm", vendor, volumes, shape, iop, ipps,
                               spacing, uids, transfer_syntax)
        return DwiSeries((path,), tuple(volumes), tuple(float(v) for v in iop), uids[0])
    paths = []
    for n, vol in enumerate(volumes):
        for k, ipp in enumerate(ipps):
            ds = _base(pydicom.uid.MRImageStorage, vendor, uids, shape, transfer_syntax)
            ds.ImageType = _image_type(vol)
            ds.InstanceNumber = n * n_slices + k + 1
            ds.AcquisitionNumber = 1
            ds.AcquisitionTime = f"{_clock(5 * n)}.{k * 100:06d}"
            ds.ImageOrientationPatient, ds.ImagePositionPatient = iop, ipp
            ds.PixelSpacing, ds.SliceThickness = ["2", "2"], ds_text(spacing)
            ds.SpacingBetweenSlices = ds_text(spacing)
            ds.SliceLocation = ipp[2]
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
            _vendor_tags(ds, vendor, vol)
            ds.PixelData = _pixels(shape, n, k).tobytes()
            path = out / f"IM{n * n_slices + k + 1:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return DwiSeries(tuple(paths), tuple(volumes), tuple(float(v) for v in iop), uids[0])


def _diffusion_item(vol: DwiVolume) -> Dataset:
    item = Dataset()
    item.DiffusionBValue = float(vol.b)
    if vol.kind == "trace":
        item.DiffusionDirectionality = "ISOTROPIC"
    elif vol.direction is None:
        item.DiffusionDirectionality = "NONE"
    else:
        item.DiffusionDirectionality = "DIRECTIONAL"
        grad = Dataset()
        grad.DiffusionGradientOrientation = [float(x) for x in vol.direction]
        item.DiffusionGradientDirectionSequence = [grad]
    return item


def _write_enhanced(path: Path, vendor: str, volumes: Sequence[DwiVolume],
                    shape: tuple[int, int], iop: list[str], ipps: list[list[str]],
                    spacing: float, uids: list[str], transfer_syntax: str,
                    first: int = 0) -> Path:
    """One Enhanced MR object of ``volumes`` (volume ``first`` onwards of the series)."""
    ds = _base(pydicom.uid.EnhancedMRImageStorage, vendor, uids, shape, transfer_syntax)
    derived = any(v.kind != "dwi" for v in volumes)
    ds.ImageType = ["DERIVED" if derived else "ORIGINAL", "PRIMARY", "DIFFUSION", "MIXED"
                    if derived else "NONE"]
    ds.InstanceNumber = first + 1
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.ContentDate, ds.ContentTime = "20240101", "120000"
    ds.AcquisitionDateTime = "20240101120000"
    n_slices = len(ipps)
    ds.NumberOfFrames = len(volumes) * n_slices
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = ["2", "2"], ds_text(spacing)
    measures.SpacingBetweenSlices = ds_text(spacing)
    orient = Dataset()
    orient.ImageOrientationPatient = iop
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = "1", "0", "US"
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orient]
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]
    dim_uid = pydicom.uid.generate_uid()
    dims = []
    for pointer, group in ((0x00209056, 0x00209111), (0x00209057, 0x00209111),
                           (0x00209128, 0x00209111)):
        d = Dataset()
        d.DimensionOrganizationUID = dim_uid
        d.DimensionIndexPointer = pointer
        d.FunctionalGroupPointer = group
        dims.append(d)
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = [org]
    ds.DimensionIndexSequence = dims
    frames, data = [], []
    for n, vol in enumerate(volumes, start=first):
        for k, ipp in enumerate(ipps):
            fg = Dataset()
            content = Dataset()
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.TemporalPositionIndex = n + 1
            content.DimensionIndexValues = [1, k + 1, n + 1]
            content.FrameAcquisitionDateTime = f"20240101{_clock(5 * n)}.{k * 100:06d}"
            pos = Dataset()
            pos.ImagePositionPatient = ipp
            ftype = Dataset()
            ftype.FrameType = _image_type(vol)
            fg.FrameContentSequence = [content]
            fg.PlanePositionSequence = [pos]
            fg.MRImageFrameTypeSequence = [ftype]
            fg.MRDiffusionSequence = [_diffusion_item(vol)]
            if vendor == "Philips":
                private = Dataset()
                _philips_private(private, vol)
                fg.private_block(0x2005, "Philips MR Imaging DD 005", create=True).add_new(
                    0x0F, "SQ", [private])
            frames.append(fg)
            data.append(_pixels(shape, n, k))
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.stack(data).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path

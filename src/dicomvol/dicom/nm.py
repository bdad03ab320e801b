"""Nuclear medicine reconstructions (SPECT): where the slices of an NM multi-frame lie.

An NM Image object whose Image Type (0008,0008) value 3 is RECON TOMO or RECON
GATED TOMO holds reconstructed slices as frames (PS3.3 A.5, C.8.4). It has no
per-frame functional groups and, usually, no top-level Image Position/Orientation:

- Image Position and Orientation (Patient) are in the first item of the Detector
  Information Sequence (0054,0022) (NM Detector Module, C.8.4.11), for the first slice;
- the slices follow along the normal ``row x column`` at Spacing Between Slices
  (0018,0088), whose sign gives the direction: "a positive spacing indicates slices
  are stacked behind the first slice and a negative spacing indicates slices are
  stacked in front of the first slice" (NM Reconstruction Module, C.8.4.15);
- the frame vectors say what each frame is (C.8.4.8): Slice Vector (0054,0080) its
  slice number (1-based), Time Slot Vector (0054,0070) its gate of a gated
  reconstruction (and R-R Interval Vector (0054,0060) its beat-length window).

Frames that also differ by energy window, detector, phase or rotation are not one
volume: that is a layout error, named, and the file is not converted (never a guess).
Without Spacing Between Slices the positions are unknown: the same (Slice Thickness
is the nominal thickness, not the spacing; cornerstone and dcm4che's viewers also
refuse to invent it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomvol._typing import Orientation, Vec3
from dicomvol.dicom.values import first_item, to_float, to_floats, to_str, to_strs
from dicomvol.errors import HeaderError
from dicomvol.model.geometry import along_normal

#: NM Image Storage and the retired NM Image Storage of ACR-NEMA days.
NM_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.5"})
#: Image Type value 3 of reconstructed slices (PS3.3 C.8.4.7.1.1).
RECON_TYPES = frozenset({"RECON TOMO", "RECON GATED TOMO"})
#: Frame vectors whose values, when they differ between frames, make frames that are
#: neither slices nor gates of one volume.
OTHER_VECTORS = ("EnergyWindowVector", "DetectorVector", "PhaseVector", "RotationVector")


@dataclass(frozen=True, slots=True)
class NmGeometry:
    """The place of every frame of an NM reconstruction.

    Attributes
    ----------
    orientation : tuple of 6 float
        ImageOrientationPatient of every frame (LPS direction cosines of row and column).
    positions : tuple of (float, float, float)
        ImagePositionPatient of each frame, shape (NumberOfFrames, 3), in mm (LPS).
    gates : tuple of int or None
        The gate of each frame (1-based; R-R interval windows after one another) for a
        gated reconstruction, else None.
    spacing : float
        Spacing Between Slices as written (its sign is the stacking direction).
    """

    orientation: Orientation
    positions: tuple[Vec3, ...]
    gates: tuple[int, ...] | None
    spacing: float


def is_nm_reconstruction(ds: Any) -> bool:
    """True for an NM Image object of reconstructed slices (RECON TOMO / RECON GATED TOMO).

    The SOP class decides where the Modality is not NM (GE Xeleris writes reconstructions
    with Modality OT).
    """
    if to_str(ds.get("SOPClassUID")) not in NM_SOP_CLASSES and to_str(ds.get("Modality")) != "NM":
        return False
    image_type = to_strs(ds.get("ImageType"))
    return len(image_type) > 2 and image_type[2].strip() in RECON_TYPES


def nm_geometry(ds: Any, n_frames: int) -> NmGeometry:
    """The orientation and each frame's position (and gate) of an NM reconstruction.

    Raises
    ------
    HeaderError
        Naming what is missing or inconsistent: no orientation or position, no Spacing
        Between Slices, frame vectors of the wrong length, or frames that differ by
        something other than slice and gate.
    """
    detector = first_item(ds, "DetectorInformationSequence")
    iop = to_floats(_either(ds, detector, "ImageOrientationPatient"), 6)
    ipp = to_floats(_either(ds, detector, "ImagePositionPatient"), 3)
    missing = [name for name, value in (("ImageOrientationPatient", iop),
                                        ("ImagePositionPatient", ipp)) if value is None]
    if missing:
        raise HeaderError(f"no {' or '.join(missing)} (in the DetectorInformationSequence "
                          "or at the top level)")
    assert iop is not None and ipp is not None
    spacing = to_float(ds.get("SpacingBetweenSlices"))
    if not spacing:
        raise HeaderError("no SpacingBetweenSlices (0018,0088): the slice positions are "
                          "unknown")
    for keyword in OTHER_VECTORS:
        values = _vector(ds, keyword, n_frames)
        if values is not None and len(set(values)) > 1:
            raise HeaderError(f"frames differ by {keyword} ({len(set(values))} values): not "
                              "one volume")
    slices = _vector(ds, "SliceVector", n_frames)
    gated = to_strs(ds.get("ImageType"))[2].strip() == "RECON GATED TOMO"
    slots = _vector(ds, "TimeSlotVector", n_frames)
    intervals = _vector(ds, "RRIntervalVector", n_frames)
    if slices is None:
        if gated and n_frames > 1 and slots is not None and len(set(slots)) > 1:
            raise HeaderError("a gated reconstruction without SliceVector (0054,0080)")
        slices = list(range(1, n_frames + 1))
    if min(slices) < 1:
        raise HeaderError(f"SliceVector value {min(slices)} is not a slice number (from 1)")
    gates = _gates(slots, intervals)
    positions = tuple(along_normal(ipp, iop, [(s - 1) * spacing for s in slices]))
    orientation = (iop[0], iop[1], iop[2], iop[3], iop[4], iop[5])
    return NmGeometry(orientation, positions, gates, spacing)


def _either(ds: Any, detector: Any, keyword: str) -> Any:
    value = ds.get(keyword)
    if value is None and detector is not None:
        value = detector.get(keyword)
    return value


def _vector(ds: Any, keyword: str, n_frames: int) -> list[int] | None:
    """A frame vector (one positive integer per frame), None when absent or empty."""
    raw = ds.get(keyword)
    if raw is None or raw == "" or raw == []:
        return None
    values = [raw] if isinstance(raw, int) else list(raw)
    try:
        ints = [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"{keyword} is not a list of numbers") from exc
    if len(ints) != n_frames:
        raise HeaderError(f"{keyword} has {len(ints)} values for {n_frames} frames")
    return ints


def _gates(slots: list[int] | None, intervals: list[int] | None) -> tuple[int, ...] | None:
    """One gate number per frame: the time slot, after the R-R interval window's slots."""
    if slots is None and (intervals is None or len(set(intervals)) < 2):
        return None
    slots = slots or [1] * len(intervals or ())
    if intervals is None or len(set(intervals)) < 2:
        return tuple(slots)
    per_window = max(slots)
    return tuple((r - 1) * per_window + s for r, s in zip(intervals, slots, strict=True))

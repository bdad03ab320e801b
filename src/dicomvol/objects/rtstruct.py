"""RTSTRUCT contours rasterised on an output grid: even-odd rule, voxel centres.

Each closed planar contour (``CLOSED_PLANAR`` or ``CLOSEDPLANAR_XOR``) is
matched to the output slice whose plane holds every vertex (within
:data:`~dicomvol.constants.CONTOUR_PLANE_TOLERANCE_MM` or
:data:`~dicomvol.constants.CONTOUR_PLANE_TOLERANCE_VOXELS` of the slice step,
whichever is larger). All contours of one ROI on one slice are filled
together with the even-odd rule: a voxel is inside when a ray from its
centre crosses the ROI's contour edges an odd number of times, so an inner
contour is a hole (as ``CLOSEDPLANAR_XOR`` says explicitly, and as
plastimatch ``--xor-contours`` does). A voxel whose centre lies exactly on an
edge follows the half-open rule (left and top edges inside). Contours on no
slice plane, POINT and OPEN contours are reported, never snapped or drawn.

The rasteriser works on voxel indices (i along the columns, j along the
rows) through the grid's inverse affine, so non-square images, oblique and
sheared (gantry tilt) grids need no special case.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicomvol.constants import CONTOUR_PLANE_TOLERANCE_MM, CONTOUR_PLANE_TOLERANCE_VOXELS
from dicomvol.dicom.values import to_int, to_str
from dicomvol.model.derived import CLOSED_CONTOUR_TYPES, DerivedObject, SegmentInfo
from dicomvol.model.grid import VolumeGeometry

#: The ContourData element (3006,0050): parsed from its raw bytes (pydicom's DS parsing of
#: hundreds of thousands of values is the slow part of reading an RTSTRUCT).
CONTOUR_DATA_TAG = 0x30060050


@dataclass(frozen=True, slots=True)
class Contour:
    """One contour of an ROI, in voxel indices of the target grid."""

    roi: int
    index: int  # 1-based position in the ROI's ContourSequence
    kind: str
    ijk: np.ndarray  # (N, 3) fractional voxel indices


@dataclass
class ContourAccount:
    """Contours drawn and contours skipped (with why), per ROI."""

    drawn: dict[int, int] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    voxels: dict[int, int] = field(default_factory=dict)


def contour_points(item: Any) -> np.ndarray:
    """ContourData of a contour item as an (N, 3) float64 array (LPS mm)."""
    raw = item.get_item(CONTOUR_DATA_TAG) if CONTOUR_DATA_TAG in item else None
    value = getattr(raw, "value", None)
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("ascii", errors="replace").strip("\x00 ")
        numbers = np.array(text.split("\\"), dtype=np.float64) if text else np.zeros(0)
    else:
        numbers = np.asarray(item.get("ContourData") or [], dtype=np.float64)
    if numbers.size % 3:
        raise ValueError(f"ContourData holds {numbers.size} values, not a multiple of 3")
    return numbers.reshape(-1, 3)


def plane_tolerance(target: VolumeGeometry) -> tuple[float, float]:
    """(tolerance in mm, slice step along the normal in mm) for matching contours to slices."""
    affine = np.asarray(target.affine, dtype=np.float64)
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    step = abs(float(affine[:3, 2] @ normal)) / float(np.linalg.norm(normal))
    return max(CONTOUR_PLANE_TOLERANCE_MM, CONTOUR_PLANE_TOLERANCE_VOXELS * step), step


def read_contours(ds: Any, obj: DerivedObject, target: VolumeGeometry,
                  account: ContourAccount) -> dict[int, dict[int, list[np.ndarray]]]:
    """Closed contours by ROI number and slice k, as (N, 2) arrays of (i, j) indices.

    Contours on no slice of the grid, POINT and OPEN contours and contours
    with fewer than three vertices go to ``account.skipped``.
    """
    tol_mm, step = plane_tolerance(target)
    nz = target.spatial_shape[2]
    known = {s.number for s in obj.segments}
    out: dict[int, dict[int, list[np.ndarray]]] = {n: {} for n in known}
    for rc in ds.get("ROIContourSequence") or ():
        roi = to_int(rc.get("ReferencedROINumber"))
        for n, item in enumerate(rc.get("ContourSequence") or (), 1):
            kind = to_str(item.get("ContourGeometricType")).upper()

            def skip(reason: str, **extra: Any) -> None:
                account.skipped.append({"ROINumber": roi, "Contour": n,  # noqa: B023
                                        "ContourGeometricType": kind, "Reason": reason,  # noqa: B023
                                        **extra})

            if roi not in known:
                skip("ROI not defined in StructureSetROISequence")
                continue
            if kind not in CLOSED_CONTOUR_TYPES:
                skip(f"{kind or 'untyped'} contour: only closed planar contours enclose voxels")
                continue
            points = contour_points(item)
            if len(points) < 3:
                skip(f"closed contour with {len(points)} vertices")
                continue
            ijk = target.map_reference_to_indices(points)
            k0 = int(np.rint(np.median(ijk[:, 2])))
            dist = float(np.max(np.abs(ijk[:, 2] - k0))) * step
            if dist > tol_mm:
                skip("not on a slice plane of the output grid",
                     DistanceMm=round(dist, 4), ToleranceMm=round(tol_mm, 4))
                continue
            if not 0 <= k0 < nz:
                skip("outside the output grid", Slice=k0)
                continue
            out[roi].setdefault(k0, []).append(ijk[:, :2])
            account.drawn[roi] = account.drawn.get(roi, 0) + 1
    return out


def even_odd(polygons: Sequence[np.ndarray], shape: tuple[int, int]
             ) -> tuple[int, int, np.ndarray]:
    """Voxel centres inside ``polygons`` by the even-odd rule, within their bounding box.

    Parameters
    ----------
    polygons : sequence of ndarray of shape (N, 2)
        Closed polygons in (i, j) voxel indices (the last vertex joins the first).
    shape : tuple (X, Y)
        The slice's size; the box is clipped to it.

    Returns
    -------
    i0, j0 : int
        Index of the box's first voxel.
    mask : ndarray of shape (W, H), bool
        ``mask[a, b]`` is voxel (i0 + a, j0 + b).

    Notes
    -----
    For each row centre j, every edge crossing it (half-open in j: an edge
    from y0 to y1 crosses when min <= j < max) toggles the parity of all
    centres i >= its crossing abscissa; the cumulative parity along i is the
    mask. Edges of all polygons toggle the same rows, which is the even-odd
    rule across contours (holes, XOR).
    """
    nx, ny = shape
    pts = np.concatenate([np.asarray(p, dtype=np.float64) for p in polygons])
    i0 = int(np.clip(np.floor(pts[:, 0].min()), 0, nx))
    i1 = int(np.clip(np.ceil(pts[:, 0].max()) + 1, 0, nx))
    j0 = int(np.clip(np.floor(pts[:, 1].min()), 0, ny))
    j1 = int(np.clip(np.ceil(pts[:, 1].max()) + 1, 0, ny))
    w, h = i1 - i0, j1 - j0
    if w <= 0 or h <= 0:
        return i0, j0, np.zeros((max(w, 0), max(h, 0)), dtype=bool)
    toggles = np.zeros((w + 1, h), dtype=np.int32)
    for poly in polygons:
        a = np.asarray(poly, dtype=np.float64) - (i0, j0)
        b = np.roll(a, -1, axis=0)
        lo = np.minimum(a[:, 1], b[:, 1])
        hi = np.maximum(a[:, 1], b[:, 1])
        r0 = np.clip(np.ceil(lo), 0, h).astype(np.int64)
        counts = np.clip(np.ceil(hi), 0, h).astype(np.int64) - r0
        keep = counts > 0
        if not keep.any():
            continue
        a, b, r0, counts = a[keep], b[keep], r0[keep], counts[keep]
        edge = np.repeat(np.arange(len(a)), counts)
        offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        j = r0[edge] + offset
        ya, yb = a[edge, 1], b[edge, 1]
        xa, xb = a[edge, 0], b[edge, 0]
        x = xa + (j - ya) * (xb - xa) / (yb - ya)
        i = np.clip(np.ceil(x), 0, w).astype(np.int64)
        np.add.at(toggles, (i, j), 1)
    mask: np.ndarray = (np.cumsum(toggles[:w], axis=0) & 1).astype(bool)
    return i0, j0, mask


#: Filled slices of each ROI: ROI number -> k -> (i0, j0, bounding-box mask).
Filled = dict[int, dict[int, tuple[int, int, np.ndarray]]]


def fill_rois(contours: dict[int, dict[int, list[np.ndarray]]],
              target: VolumeGeometry) -> Filled:
    """Every ROI's filled slices (bounding boxes only: small next to the volume)."""
    nx, ny, _ = target.spatial_shape
    return {number: {k: even_odd(polygons, (nx, ny)) for k, polygons in sorted(slices.items())}
            for number, slices in contours.items()}


def roi_volumes(filled: Filled, rois: Sequence[SegmentInfo],
                target: VolumeGeometry) -> Iterator[tuple[SegmentInfo, np.ndarray]]:
    """One boolean volume (X, Y, Z) per ROI, in StructureSetROISequence order."""
    for info in rois:
        volume = np.zeros(target.spatial_shape, dtype=bool, order="F")
        for k, (i0, j0, mask) in filled.get(info.number, {}).items():
            volume[i0:i0 + mask.shape[0], j0:j0 + mask.shape[1], k] = mask
        yield info, volume


def labels_or_none(filled: Filled, rois: Sequence[SegmentInfo], target: VolumeGeometry,
                   account: ContourAccount) -> np.ndarray | None:
    """One integer volume of ROI numbers, or None when two ROIs share a voxel."""
    top = max((r.number for r in rois), default=0)
    out = np.zeros(target.spatial_shape, order="F",
                   dtype=np.uint8 if top <= 255 else (np.uint16 if top <= 65535 else np.uint32))
    for info in rois:
        count = 0
        for k, (i0, j0, mask) in filled.get(info.number, {}).items():
            region = out[i0:i0 + mask.shape[0], j0:j0 + mask.shape[1], k]
            if np.any(region[mask] != 0):
                return None
            region[mask] = info.number
            count += int(np.count_nonzero(mask))
        account.voxels[info.number] = count
    return out

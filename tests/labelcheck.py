"""Independent checks of written label maps (pydicom + nibabel + numpy only).

Nothing here uses dicomvol's geometry, decoding or rasterisation:

- :func:`check_seg` reads a SEG with pydicom (pixel_array, functional groups)
  and verifies that every segmented pixel of every frame lands, through the
  label map's NIfTI affine, on a voxel centre holding that segment, and that
  the map holds nothing else (pixel for pixel, both ways); the map's grid must
  be identical to the image output's (shape and affine).
- :func:`rasterise_even_odd` is a brute-force voxel-centre point-in-polygon
  test (ray crossing parity over all contours of an ROI on a slice), for the
  RTSTRUCT Dice check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom

#: LPS <-> RAS.
FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
#: A frame pixel lands on a voxel centre when within this many voxels of it (real SEGs drift
#: by a few hundredths of a mm; dicomvol snaps within 0.05 mm or 0.05 voxel).
LANDING_TOLERANCE_VOXELS = 0.1
#: Two affines describe the same grid (float32 NIfTI storage).
GRID_TOLERANCE_MM = 1e-3
#: Fractional values agree to within one step of 8-bit storage and float32 rounding.
FRACTION_TOLERANCE = 1e-6


def sidecar_of(image: Path) -> dict[str, Any]:
    name = image.name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".ome.tif", ".ome.zarr", ".tif"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    data: dict[str, Any] = json.loads((image.parent / f"{name}.json").read_text())
    return data


def load_lps(image: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data with the header's scaling applied, LPS affine) of a NIfTI file (sform)."""
    img: Any = nib.load(str(image))
    return np.asanyarray(img.dataobj), FLIP @ np.asarray(img.get_sform())


def assert_same_grid(label_map: Path, image: Path) -> None:
    """Shape (first three axes) and affine of the map equal the image output's."""
    a: Any = nib.load(str(label_map))
    b: Any = nib.load(str(image))
    assert a.shape[:3] == b.shape[:3], (a.shape, b.shape)
    np.testing.assert_allclose(a.get_sform(), b.get_sform(), atol=GRID_TOLERANCE_MM)


def seg_frames(seg: Path) -> list[dict[str, Any]]:
    """Each frame of a SEG: segment, IPP, row/col directions, spacing, pixels (Rows, Cols)."""
    ds = pydicom.dcmread(seg)
    pixels = np.asarray(ds.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[None]
    shared = ds.SharedFunctionalGroupsSequence[0]
    out = []
    for n, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        def group(keyword: str) -> Any:
            return (fg.get(keyword) or shared.get(keyword))[0]  # noqa: B023
        iop = np.array(group("PlaneOrientationSequence").ImageOrientationPatient, float)
        ident = fg.get("SegmentIdentificationSequence")
        out.append({
            "frame": n + 1,
            "segment": int(ident[0].ReferencedSegmentNumber) if ident else 0,
            "ipp": np.array(group("PlanePositionSequence").ImagePositionPatient, float),
            "row": iop[:3], "col": iop[3:],
            "spacing": np.array(group("PixelMeasuresSequence").PixelSpacing, float),
            "pixels": pixels[n],
        })
    return out


def check_seg(seg: Path, label_map: Path, image: Path | None = None) -> dict[str, int]:
    """Every segmented pixel of every frame is where the map holds its segment, and only there.

    Returns the number of segmented pixels checked per segment (as text keys).
    """
    if image is not None:
        assert_same_grid(label_map, image)
    data, affine = load_lps(label_map)
    meta = sidecar_of(label_map)["LabelMap"]
    encoding = meta["Encoding"]
    ds = pydicom.dcmread(seg, stop_before_pixels=True)
    max_value = float(ds.get("MaximumFractionalValue", 255) or 255)
    labelmap = str(ds.SegmentationType) == "LABELMAP"
    where = {s["SegmentNumber"]: s for s in meta["Segments"]}
    inverse = np.linalg.inv(affine)
    expected: dict[int, dict[tuple[int, int, int], float]] = {n: {} for n in where}
    for f in seg_frames(seg):
        rows, cols = np.nonzero(f["pixels"])
        if rows.size == 0:
            continue
        world = (f["ipp"] + np.outer(cols * f["spacing"][1], f["row"])
                 + np.outer(rows * f["spacing"][0], f["col"]))
        idx = world @ inverse[:3, :3].T + inverse[:3, 3]
        rounded = np.rint(idx)
        off = float(np.max(np.abs(idx - rounded)))
        assert off <= LANDING_TOLERANCE_VOXELS, f"frame {f['frame']}: {off:.3f} voxel off-centre"
        for (i, j, k), r, c in zip(rounded.astype(int), rows, cols, strict=True):
            value = float(f["pixels"][r, c])
            segment = int(value) if labelmap else f["segment"]
            expected[segment][(i, j, k)] = value
    counts = {}
    for number, voxels in expected.items():
        entry = where[number]
        if encoding == "labels":
            mask = data == entry["LabelValue"]
        else:
            mask = data[..., entry["Volume"]] != 0
        assert int(mask.sum()) == len(voxels), (
            f"segment {number}: map holds {int(mask.sum())} voxels, frames {len(voxels)}")
        for (i, j, k), value in voxels.items():
            assert mask[i, j, k], f"segment {number}: voxel {(i, j, k)} not in the map"
            if encoding == "fractional":
                got = data[i, j, k, entry["Volume"]]
                assert abs(got - value / max_value) <= FRACTION_TOLERANCE + 0.5 / max_value
        counts[str(number)] = len(voxels)
    return counts


def rasterise_even_odd(polygons_ij: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Voxel centres (i, j) inside an odd number of polygon boundaries, shape (X, Y) bool.

    The textbook crossing test, row by row: for the row of centres at j, every
    edge that straddles j (half-open: min(y0, y1) <= j < max(y0, y1)) crosses
    it at some x; a centre i is inside when an odd number of crossings lie at
    or left of it (counted with ``searchsorted``).
    """
    nx, ny = shape
    edges = []
    for poly in polygons_ij:
        a = np.asarray(poly, dtype=float)
        edges.append(np.c_[a, np.roll(a, -1, axis=0)])
    e = np.concatenate(edges)
    e = e[e[:, 1] != e[:, 3]]
    inside = np.zeros((nx, ny), dtype=bool)
    centres = np.arange(nx, dtype=float)
    for j in range(ny):
        lo, hi = np.minimum(e[:, 1], e[:, 3]), np.maximum(e[:, 1], e[:, 3])
        hit = e[(lo <= j) & (j < hi)]
        if len(hit) == 0:
            continue
        x = np.sort(hit[:, 0] + (j - hit[:, 1]) * (hit[:, 2] - hit[:, 0]) / (hit[:, 3] - hit[:, 1]))
        inside[:, j] = np.searchsorted(x, centres, side="right") % 2 == 1
    return inside


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays (1 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def rtstruct_reference(rtstruct: Path, label_map: Path,
                       plane_tolerance_mm: float) -> dict[int, np.ndarray]:
    """Per ROI number, the even-odd rasterisation of its closed contours on the map's grid."""
    img: Any = nib.load(str(label_map))
    shape = img.shape
    affine = FLIP @ np.asarray(img.get_sform())
    inverse = np.linalg.inv(affine)
    step = abs(float(np.linalg.norm(affine[:3, 2])))
    ds = pydicom.dcmread(rtstruct)
    out = {}
    for rc in ds.ROIContourSequence:
        number = int(rc.ReferencedROINumber)
        by_slice: dict[int, list[np.ndarray]] = {}
        for c in rc.get("ContourSequence", []):
            if str(c.ContourGeometricType) not in ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR"):
                continue
            pts = np.array(c.ContourData, dtype=float).reshape(-1, 3)
            idx = pts @ inverse[:3, :3].T + inverse[:3, 3]
            k = int(np.rint(np.median(idx[:, 2])))
            if float(np.max(np.abs(idx[:, 2] - k))) * step > plane_tolerance_mm:
                continue
            if 0 <= k < shape[2]:
                by_slice.setdefault(k, []).append(idx[:, :2])
        volume = np.zeros(shape[:3], dtype=bool)
        for k, polys in by_slice.items():
            volume[:, :, k] = rasterise_even_odd(polys, shape[:2])
        out[number] = volume
    return out


def map_masks(label_map: Path) -> dict[int, np.ndarray]:
    """Per SegmentNumber / ROINumber, the boolean mask the map holds."""
    data, _ = load_lps(label_map)
    meta = sidecar_of(label_map)["LabelMap"]
    out = {}
    for s in meta["Segments"]:
        number = s.get("SegmentNumber", s.get("ROINumber"))
        if meta["Encoding"] == "labels":
            out[number] = data == s["LabelValue"]
        else:
            out[number] = data[..., s["Volume"]] != 0
    return out

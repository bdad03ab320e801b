"""United Imaging (UIH) grid images ("VFRAME"): the slices of a volume tiled in one image.

Like a Siemens mosaic, one image holds ``N`` slices tiled row-major,
``ceil(sqrt(N))`` tiles across and only as many rows of tiles as the slices
fill (``ceil(N / across)``; dcm2niix reads the tile height so), but the geometry is in
private elements of group 0065 (private creator ``Image Private Header``), as
Aliza's ``SplitUihGridFilter`` and dcm2niix read them:

* (0065,xx50) MRNumberOfSliceInVolume (DS): ``N`` (dcm2niix's
  ``NumberOfImagesInGridUIH``);
* (0065,xx51) MRVFrameSequence (SQ): one item per slice, each with the
  slice's ImagePositionPatient (the centre of its first pixel) and, in some
  versions, ImageOrientationPatient; the top level often has no
  ImagePositionPatient at all;
* (0065,xx14) SliceNormalVector (DS, 3): the direction in which the tiles
  step when the sequence gives the first position only.

Tile t's position is item t's ImagePositionPatient; when the sequence holds
only the first item, tile t lies ``t * SpacingBetweenSlices`` from it along
cross(row, col) signed like the SliceNormalVector. What cannot be read raises
a :class:`~dicomvol.errors.HeaderError` naming the missing element.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dicomvol._typing import Vec3
from dicomvol.dicom.mosaic import MosaicInfo
from dicomvol.dicom.private import private_value
from dicomvol.dicom.values import to_float, to_floats, vendor
from dicomvol.errors import HeaderError

if TYPE_CHECKING:
    import numpy as np

#: Private creator of UIH's group 0065.
UIH_CREATOR = "Image Private Header"
N_SLICES = "(0065,xx50) MRNumberOfSliceInVolume"
FRAMES = "(0065,xx51) MRVFrameSequence"
NORMAL = "(0065,xx14) SliceNormalVector"


def is_uih_grid(ds: Any) -> bool:
    """A UIH image that says it tiles more than one slice ((0065,xx50) > 1), or a
    ``VFRAME`` image without ImagePositionPatient (a grid whose count is missing)."""
    if vendor(ds.get("Manufacturer")) != "UIH":
        return False
    try:
        n = to_float(_first(private_value(ds, 0x0065, UIH_CREATOR, 0x50)))
    except Exception:  # a malformed private element: read (and named) by uih_grid_info
        n = None
    if n is not None:
        return n > 1
    image_type = ds.get("ImageType") or ()
    values = image_type.split("\\") if isinstance(image_type, str) else list(image_type)
    return "VFRAME" in [str(v).strip().upper() for v in values] and (
        ds.get("ImagePositionPatient") is None)


def uih_grid_info(ds: Any) -> MosaicInfo:
    """Tile layout and positions of a UIH grid image (see the module notes).

    Raises
    ------
    HeaderError
        Naming the missing or unusable element: (0065,xx50), (0065,xx51) and its
        ImagePositionPatient, ImageOrientationPatient, PixelSpacing, Rows/Columns,
        SpacingBetweenSlices when only the first position is given.
    """
    import numpy as np

    n_value = to_float(_first(private_value(ds, 0x0065, UIH_CREATOR, 0x50)))
    if n_value is None or n_value < 1 or n_value != int(n_value):
        raise HeaderError(f"UIH grid image: {N_SLICES} missing or not a count ({n_value!r})")
    n = int(n_value)
    tiles = math.isqrt(n)
    tiles += 1 if tiles * tiles < n else 0
    tile_row_count = -(-n // tiles)  # rows of tiles: only as many as the slices fill
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if not rows or not columns or rows % tile_row_count or columns % tiles:
        raise HeaderError(f"UIH grid image of {rows} x {columns} pixels cannot hold "
                          f"{tile_row_count} x {tiles} tiles ({N_SLICES} {n})")
    items = list(private_value(ds, 0x0065, UIH_CREATOR, 0x51) or [])
    if not items:
        raise HeaderError(f"UIH grid image without {FRAMES}: slice positions unknown")
    iop = to_floats(ds.get("ImageOrientationPatient") or items[0].get("ImageOrientationPatient"),
                    6)
    if iop is None:
        raise HeaderError("UIH grid image without ImageOrientationPatient (top level or "
                          f"{FRAMES})")
    ipps = [to_floats(item.get("ImagePositionPatient"), 3) for item in items[:n]]
    if ipps[0] is None:
        raise HeaderError(f"UIH grid image: {FRAMES} item 1 lacks ImagePositionPatient")
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    norm = float(np.linalg.norm(normal))
    if norm < 0.5:
        raise HeaderError(f"UIH grid image: ImageOrientationPatient {iop} is degenerate")
    normal /= norm
    if len(ipps) >= n and all(p is not None for p in ipps):
        positions = tuple(_vec3(np.asarray(p)) for p in ipps)
    else:
        positions = _stepped(ds, np.asarray(ipps[0]), normal, n)
    orientation = (iop[0], iop[1], iop[2], iop[3], iop[4], iop[5])
    return MosaicInfo(n_slices=n, tiles_per_side=tiles, tile_rows=rows // tile_row_count,
                      tile_columns=columns // tiles, positions=positions, normal=_vec3(normal),
                      orientation=orientation)


def _stepped(ds: Any, first: np.ndarray, normal: np.ndarray, n: int) -> tuple[Vec3, ...]:
    """Positions from the first slice's: SpacingBetweenSlices along the signed normal."""
    import numpy as np

    step = to_float(ds.get("SpacingBetweenSlices")) or to_float(ds.get("SliceThickness"))
    if not step:
        raise HeaderError(f"UIH grid image: {FRAMES} gives the first position only and "
                          "SpacingBetweenSlices (and SliceThickness) is missing")
    given = to_floats(private_value(ds, 0x0065, UIH_CREATOR, 0x14), 3)
    if given is None:
        raise HeaderError(f"UIH grid image: {FRAMES} gives the first position only and "
                          f"{NORMAL} is missing: the slice direction's sign is unknown")
    if float(np.dot(given, normal)) < 0:
        normal = -normal
    return tuple(_vec3(first + t * step * normal) for t in range(n))


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _vec3(v: np.ndarray) -> Vec3:
    return (float(v[0]) + 0.0, float(v[1]) + 0.0, float(v[2]) + 0.0)


# --------------------------------------------------------------------------- diffusion

#: UIH diffusion elements (creator ``Image Private Header``), as dcm2niix reads them.
B_VALUE = "(0065,xx09) b-value"
DIRECTION = "(0065,xx37) gradient direction"


def uih_diffusion(ds: Any) -> tuple[float | None, tuple[float, float, float] | None]:
    """UIH's own diffusion encoding: b-value (0065,xx09) FD and direction (0065,xx37) FD.

    The direction's components are along the image axes (row, column, slice normal
    ``cross(row, col)``), not patient axes: dcm2niix (``readDICOMx``, cases
    ``kDiffusion_bValueUIH`` / ``kDiffusionGradientDirectionUIH``) copies them into its
    image-frame vector unrotated and only negates the column component for FSL (as it does
    for every vendor; its ``siemensPhilipsCorrectBvecs`` returns early for UIH). Measured
    against dcm2niix v1.0.20260724 on oblique synthetic series, classic and grid. Since
    dcm2niix issue 836, (0065,xx37) also wins over DiffusionGradientOrientation (0018,9089),
    which UIH fills with the unrotated (protocol) direction. ``(None, None)`` when neither
    element is present.
    """
    b = to_float(_first(private_value(ds, 0x0065, UIH_CREATOR, 0x09)))
    raw = to_floats(private_value(ds, 0x0065, UIH_CREATOR, 0x37), 3)
    vector = None if raw is None else (raw[0], raw[1], raw[2])
    return b, vector


def uih_direction_to_lps(vector: Any, orientation: Any) -> np.ndarray:
    """A (0065,xx37) direction (row, column, normal components) in patient LPS.

    Parameters
    ----------
    vector : sequence of 3 float
        (0065,xx37).
    orientation : sequence of 6 float
        ImageOrientationPatient of the image (or of its grid items).

    Returns
    -------
    ndarray of shape (3,)
    """
    import numpy as np

    o = np.asarray(orientation, dtype=np.float64)
    row, col = o[:3], o[3:6]
    v = np.asarray(vector, dtype=np.float64)
    out: np.ndarray = v[0] * row + v[1] * col + v[2] * np.cross(row, col)
    return out


def uih_orientation(ds: Any) -> tuple[float, ...] | None:
    """ImageOrientationPatient at the top level, else that of the first (0065,xx51) item."""
    iop = to_floats(ds.get("ImageOrientationPatient"), 6)
    if iop is None:
        try:
            items = list(private_value(ds, 0x0065, UIH_CREATOR, 0x51) or [])
        except Exception:  # a malformed private sequence: no orientation
            items = []
        iop = to_floats(items[0].get("ImageOrientationPatient"), 6) if items else None
    return None if iop is None else tuple(iop)

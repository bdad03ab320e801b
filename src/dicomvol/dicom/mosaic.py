"""Siemens MOSAIC: one 2D image that tiles the N slices of an EPI volume.

A Siemens mosaic stores a whole volume in one image whose ImageType contains
``MOSAIC``. The tiles are laid out row-major in a square grid of
``ceil(sqrt(N))`` tiles per side (the unused tiles at the end are blank),
where N is ``NumberOfImagesInMosaic`` in the Siemens CSA image header
(private element (0029,xx10), creator ``SIEMENS CSA HEADER``). When that header
was removed (common after de-identification), N comes from (0019,xx0A)
NumberOfImagesInMosaic or the protocol's ``sSliceArray.lSize`` in the CSA
series header (0029,xx20), the slice normal's sign from
``sSliceArray.asSlice[0].sNormal``, and the tile positions are checked
against the protocol's slice centres ``sSliceArray.asSlice[t].sPosition``
(as dcm2niix and dicom2nifti read such files).

Geometry (all LPS, mm; row_dir = IOP[:3], col_dir = IOP[3:]; PixelSpacing =
(spacing between rows, spacing between columns)):

* ImagePositionPatient of a mosaic is *not* the centre of its top-left pixel:
  the scanner computes it as if the whole mosaic (Rows x Columns pixels) were
  one image centred where each slice is centred. The top-left pixel centre of
  tile 0 is therefore::

      P0 = IPP + row_dir * PixelSpacing[1] * (Columns - tile_columns) / 2
               + col_dir * PixelSpacing[0] * (Rows - tile_rows) / 2

  Source: nibabel ``nibabel/nicom/dicomwrappers.py``, ``MosaicWrapper.image_position``
  (``vox_trans_fixes = (md_rc - rd_rc) / 2``; ``Q = np.fliplr(iop) * pix_spacing``;
  ``ipp + Q @ vox_trans_fixes``), documented in nibabel's ``doc/theory/dicom_mosaic``.

* The slice direction is the unit normal cross(row_dir, col_dir), with the sign
  of the CSA ``SliceNormalVector`` (the two must be parallel). Source: nibabel
  ``SiemensWrapper.slice_normal`` ("Use the slice normal computed with the cross
  product as it will always be the most orthogonal, but take the sign from the
  CSA slice normal"). A sagittal mosaic whose CSA normal points against
  cross(row, col) stores its tiles in the opposite direction to that cross
  product.

* Tile t lies at ``P0 + t * SpacingBetweenSlices * normal``. Source: nibabel
  ``Wrapper.affine`` (voxel size along the slice axis from ``Wrapper.voxel_sizes``:
  ``SpacingBetweenSlices``, else ``SliceThickness``) applied to the de-mosaiced
  array of ``MosaicWrapper.get_unscaled_data``, whose slice axis is the tile order.
  Checked against dcm2niix (the differential test in ``tests/test_mosaic.py``)
  and against the slice centres ``sSliceArray.asSlice[t].sPosition`` of the
  Siemens protocol in the CSA series header.

Tile order is the order in which the scanner stores the slices in the mosaic:
spatial order along ``normal`` (the protocol's slice array order). It is not the
temporal acquisition order; an ascending, descending or interleaved acquisition
of the same prescription gives the same tile order (only the CSA
``MosaicRefAcqTimes`` slice times differ).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomvol._typing import Orientation, Vec3
from dicomvol.dicom.private import (
    CSA_IMAGE,
    CSA_SERIES,
    SIEMENS_MR_HEADER,
    csa_header,
    csareader,
    private_value,
    siemens_protocol,
)
from dicomvol.errors import HeaderError, PixelDataError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported where a file needs it
    import pydicom

log = logging.getLogger(__name__)

#: Largest allowed 1 - |cos| between the CSA SliceNormalVector and cross(row, col).
#: nibabel asserts ``np.allclose(abs(dot), 1, atol=1e-5)``; the corpus is within 1e-8.
_NORMAL_PARALLEL_TOLERANCE = 1e-4

#: Largest distance (mm) between a tile centre and the protocol's slice centre when the
#: CSA image header is absent (the corpus agrees within 1e-3 mm).
PROTOCOL_CENTRE_TOLERANCE_MM = 0.05

_CSA_IMAGE = CSA_IMAGE


@dataclass(frozen=True)
class MosaicInfo:
    """Layout and geometry of the tiles of one Siemens mosaic image."""

    #: NumberOfImagesInMosaic.
    n_slices: int
    #: ceil(sqrt(n_slices)): tiles per row and per column of the mosaic grid.
    tiles_per_side: int
    #: Rows // tiles_per_side.
    tile_rows: int
    #: Columns // tiles_per_side.
    tile_columns: int
    #: ImagePositionPatient (LPS) of the top-left pixel centre of each tile 0..n-1, tile order.
    positions: tuple[Vec3, ...]
    #: Unit slice normal: cross(row, col) signed like the CSA SliceNormalVector
    #: (cross(row, col) itself when the CSA header has no SliceNormalVector). Tile t + 1
    #: lies one slice spacing from tile t along this vector.
    normal: Vec3
    #: ImageOrientationPatient when it comes from elsewhere than the top level (UIH grids).
    orientation: Orientation | None = None


def is_mosaic(ds: pydicom.Dataset) -> bool:
    """True when the ImageType (0008,0008) of ``ds`` contains ``MOSAIC``."""
    value = ds.get("ImageType")
    if value is None or value == "":
        return False
    parts = value.split("\\") if isinstance(value, str) else list(value)
    return any(str(p).strip().upper() == "MOSAIC" for p in parts)


def mosaic_info(ds: pydicom.Dataset) -> MosaicInfo:
    """Tile layout and per-tile positions of a Siemens mosaic.

    Raises
    ------
    HeaderError
        When the CSA image header is absent or unreadable, lacks
        NumberOfImagesInMosaic, or a needed DICOM attribute (Rows, Columns,
        ImagePositionPatient, ImageOrientationPatient, PixelSpacing,
        SpacingBetweenSlices / SliceThickness) is missing; when Rows or
        Columns is not a multiple of the tiles per side; or when the CSA
        SliceNormalVector is not parallel to the row x column direction.
    """
    import numpy as np

    csa, why = _csa_image_header(ds)
    protocol = _protocol(ds) if csa is None or _csa_n(csa) is None else None
    n_slices = _n_mosaic(ds, csa, why, protocol)
    tiles = math.isqrt(n_slices)
    if tiles * tiles < n_slices:
        tiles += 1  # ceil(sqrt(n)), exactly

    rows = _required_int(ds, "Rows")
    columns = _required_int(ds, "Columns")
    if rows % tiles or columns % tiles:
        raise HeaderError(f"mosaic of {rows} x {columns} pixels cannot hold {tiles} x {tiles} "
                          f"tiles (NumberOfImagesInMosaic {n_slices})")
    tile_rows, tile_columns = rows // tiles, columns // tiles

    ipp = _required_floats(ds, "ImagePositionPatient", 3)
    iop = _required_floats(ds, "ImageOrientationPatient", 6)
    spacing = _required_floats(ds, "PixelSpacing", 2)
    row_dir, col_dir = iop[:3], iop[3:]

    cross = np.cross(row_dir, col_dir)
    norm = float(np.linalg.norm(cross))
    if norm == 0:
        raise HeaderError("ImageOrientationPatient has parallel row and column directions")
    normal = cross / norm
    csa_normal = _csa_slice_normal(csa) if csa is not None else None
    normal_source = f"{_CSA_IMAGE} SliceNormalVector"
    if csa_normal is None and protocol is not None:
        csa_normal = _protocol_normal(protocol)
        normal_source = f"{CSA_SERIES} sSliceArray.asSlice[0].sNormal"
    if csa_normal is None:
        log.warning("%s has no SliceNormalVector: mosaic tiles assumed to run along "
                    "row x column direction", _CSA_IMAGE)
    else:
        # nibabel SiemensWrapper.slice_normal: direction from the cross product,
        # sign from the CSA SliceNormalVector (or the protocol's slice normal).
        csa_norm = float(np.linalg.norm(csa_normal))
        cos = float(csa_normal @ normal) / csa_norm if csa_norm > 0 else 0.0
        if 1.0 - abs(cos) > _NORMAL_PARALLEL_TOLERANCE:
            raise HeaderError(f"{normal_source} {tuple(csa_normal.tolist())} is not "
                              f"parallel to row x column {tuple(normal.tolist())}")
        if cos < 0:
            normal = -normal

    # nibabel MosaicWrapper.image_position: the mosaic IPP is offset by half the
    # size difference between the mosaic and one tile, in each in-plane direction.
    first = (ipp + row_dir * spacing[1] * (columns - tile_columns) / 2.0
             + col_dir * spacing[0] * (rows - tile_rows) / 2.0)
    step = _slice_spacing(ds) if n_slices > 1 else 0.0
    # nibabel Wrapper.affine on the de-mosaiced array: tile t at t * spacing along the normal.
    positions = tuple(_vec3(first + t * step * normal) for t in range(n_slices))
    if protocol is not None:  # no image header: the protocol's slice centres must agree
        centre = row_dir * spacing[1] * tile_columns / 2.0 + col_dir * spacing[0] * tile_rows / 2.0
        _check_protocol_centres([np.asarray(p) + centre for p in positions], protocol)
    log.debug("mosaic: %d slices in %d x %d tiles of %d x %d, spacing %g mm, normal %s",
              n_slices, tiles, tiles, tile_rows, tile_columns, step, _vec3(normal))
    return MosaicInfo(n_slices=n_slices, tiles_per_side=tiles, tile_rows=tile_rows,
                      tile_columns=tile_columns, positions=positions, normal=_vec3(normal))


def extract_tiles(pixels: NDArray[Any], info: MosaicInfo) -> NDArray[Any]:
    """Cut a mosaic (Rows, Columns) into its slices, shape (n_slices, tile_rows, tile_columns).

    Tile t is the block at grid row ``t // tiles_per_side`` and grid column
    ``t % tiles_per_side`` (nibabel ``MosaicWrapper.get_unscaled_data``); the
    blank tiles after the last slice are dropped. The result is a new array of
    the input's dtype.

    Raises
    ------
    PixelDataError
        When ``pixels`` is not a 2D array of the mosaic's size.
    """
    import numpy as np

    m = info.tiles_per_side
    expected = (m * info.tile_rows, m * info.tile_columns)
    if pixels.ndim != 2 or pixels.shape != expected:
        raise PixelDataError(f"mosaic pixel array has shape {pixels.shape}; expected "
                             f"{expected} ({m} x {m} tiles of {info.tile_rows} x "
                             f"{info.tile_columns})")
    grid = pixels.reshape(m, info.tile_rows, m, info.tile_columns).transpose(0, 2, 1, 3)
    tiles = grid.reshape(m * m, info.tile_rows, info.tile_columns)[: info.n_slices]
    return np.ascontiguousarray(tiles)


def _csa_image_header(ds: pydicom.Dataset) -> tuple[dict[str, Any] | None, str]:
    """The CSA image header, or None and why it is not there."""
    try:
        csa = csa_header(ds, "image")
    except HeaderError as exc:
        return None, str(exc)
    if not csa:
        return None, f"no Siemens {_CSA_IMAGE}"
    return csa, f"{_CSA_IMAGE} lacks NumberOfImagesInMosaic"


def _protocol(ds: pydicom.Dataset) -> dict[str, str] | None:
    try:
        return siemens_protocol(ds)
    except HeaderError as exc:
        log.debug("mosaic: %s", exc)
        return None


def _csa_n(csa: dict[str, Any]) -> Any:
    return csareader().get_n_mosaic(csa)


def _n_mosaic(ds: pydicom.Dataset, csa: dict[str, Any] | None, why: str,
              protocol: dict[str, str] | None) -> int:
    """NumberOfImagesInMosaic: the CSA image header's, else (0019,xx0A), else sSliceArray.lSize.

    dcm2niix and dicom2nifti read the same three places; de-identification often
    removes the CSA image header but keeps the others.
    """
    candidates: list[tuple[str, Any]] = []
    if csa is not None:
        candidates.append((f"{_CSA_IMAGE} NumberOfImagesInMosaic", _csa_n(csa)))
    candidates.append(("NumberOfImagesInMosaic (0019,xx0A)",
                       private_value(ds, 0x0019, SIEMENS_MR_HEADER, 0x0A)))
    if protocol is not None:
        candidates.append((f"{CSA_SERIES} sSliceArray.lSize", protocol.get("sSliceArray.lSize")))
    for where, value in candidates:
        if value is None or value == "" or value == b"":
            continue
        if isinstance(value, bytes) and len(value) == 2:  # US read without a dictionary
            value = int.from_bytes(value, "little")
        try:
            n = int(value)
        except (TypeError, ValueError) as exc:
            raise HeaderError(f"{where} {value!r} is not a number") from exc
        if n < 1:
            raise HeaderError(f"{where} is {n}")
        if where != candidates[0][0] or csa is None:
            log.debug("mosaic: %d slices from %s (%s)", n, where, why)
        return n
    raise HeaderError(f"{why}, and neither NumberOfImagesInMosaic (0019,xx0A) nor "
                      f"sSliceArray.lSize in the {CSA_SERIES} protocol is present: "
                      "NumberOfImagesInMosaic unknown")


def _protocol_vector(protocol: dict[str, str], prefix: str) -> NDArray[np.float64] | None:
    """``prefix.dSag/dCor/dTra`` of the protocol (LPS x, y, z; absent components are 0)."""
    import numpy as np

    values = [protocol.get(f"{prefix}.d{axis}") for axis in ("Sag", "Cor", "Tra")]
    if all(v is None for v in values):
        return None
    try:
        return np.asarray([float(v) if v is not None else 0.0 for v in values])
    except ValueError as exc:
        raise HeaderError(f"{CSA_SERIES} {prefix} {values!r} is not numeric") from exc


def _protocol_normal(protocol: dict[str, str]) -> NDArray[np.float64] | None:
    return _protocol_vector(protocol, "sSliceArray.asSlice[0].sNormal")


def _check_protocol_centres(centres: list[NDArray[np.float64]],
                            protocol: dict[str, str]) -> None:
    """Tile centres from the DICOM geometry against ``sSliceArray.asSlice[t].sPosition``."""
    import numpy as np

    worst = 0.0
    for t, centre in enumerate(centres):
        theirs = _protocol_vector(protocol, f"sSliceArray.asSlice[{t}].sPosition")
        if theirs is not None:
            worst = max(worst, float(np.linalg.norm(centre - theirs)))
    if worst > PROTOCOL_CENTRE_TOLERANCE_MM:
        raise HeaderError(f"mosaic tile centres are {worst:.3g} mm from the slice centres of "
                          f"the {CSA_SERIES} protocol (sSliceArray.asSlice[].sPosition)")


def _csa_slice_normal(csa: dict[str, Any]) -> NDArray[np.float64] | None:
    import numpy as np

    try:
        value = csareader().get_slice_normal(csa)
    except ValueError as exc:  # not 3 values
        raise HeaderError(f"{_CSA_IMAGE} SliceNormalVector: {exc}") from exc
    if value is None:
        return None
    try:
        return np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"{_CSA_IMAGE} SliceNormalVector {value!r} is not numeric") from exc


def _slice_spacing(ds: pydicom.Dataset) -> float:
    # nibabel Wrapper.voxel_sizes: SpacingBetweenSlices, else SliceThickness.
    for name in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(name)
        if value is None or value == "":
            continue
        try:
            spacing = float(value)
        except (TypeError, ValueError):
            continue
        if spacing > 0:
            if name != "SpacingBetweenSlices":
                log.warning("mosaic without SpacingBetweenSlices: slices assumed %g mm apart "
                            "(SliceThickness); wrong if the slices have gaps", spacing)
            return spacing
    raise HeaderError("mosaic lacks SpacingBetweenSlices (and SliceThickness): slice "
                      "positions unknown")


def _required_int(ds: pydicom.Dataset, name: str) -> int:
    value = ds.get(name)
    if value is None or value == "":
        raise HeaderError(f"mosaic lacks {name}")
    return int(value)


def _required_floats(ds: pydicom.Dataset, name: str, count: int) -> NDArray[np.float64]:
    import numpy as np

    value = ds.get(name)
    if value is None or value == "":
        raise HeaderError(f"mosaic lacks {name}")
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"mosaic {name} {value!r} is not numeric") from exc
    if out.shape != (count,):
        raise HeaderError(f"mosaic {name} has {out.size} values; expected {count}")
    if not np.all(np.isfinite(out)):
        raise HeaderError(f"mosaic {name} {value!r} is not finite")
    return out


def _vec3(v: NDArray[np.float64]) -> Vec3:
    return (float(v[0]) + 0.0, float(v[1]) + 0.0, float(v[2]) + 0.0)  # no -0.0

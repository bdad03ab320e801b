"""VolumeGeometry: a grid in patient space without pixels, and the geometry API it shares.

As in highdicom, :class:`VolumeGeometry` (shape, affine, frame of reference)
and :class:`~dicomvol.model.volume.Volume` (the same plus an array) share one
geometry API (:class:`GridMixin`), so that planning, streaming, label maps and
slide regions can be placed on a grid without holding pixels. Coordinates are
DICOM patient coordinates (LPS, mm); indices are ``(i, j, k)`` with i along a
DICOM row, j down the columns and k along the slice step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dicomvol._typing import FloatArray
from dicomvol.constants import SHEAR_TOLERANCE_DEGREES
from dicomvol.model.geometry import affines_close, column_norms, shear_degrees

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: Default tolerance (mm, and on direction cosines) of :meth:`VolumeGeometry.geometry_equal`.
GEOMETRY_EQUAL_TOLERANCE = 1e-5


class HasGeometry(Protocol):
    """Anything with a grid: a VolumeGeometry, a Volume, a plan."""

    @property
    def geometry(self) -> VolumeGeometry:
        """The grid."""
        ...


class GridMixin:
    """The geometry API shared by :class:`VolumeGeometry` and :class:`Volume`."""

    affine: FloatArray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel step lengths (mm) along i, j and k (the affine's column norms)."""
        return column_norms(self.affine)

    @property
    def direction(self) -> FloatArray:
        """Unit LPS direction of each voxel axis, shape (3, 3): column c is axis c."""
        import numpy as np

        m = np.asarray(self.affine, dtype=np.float64)[:3, :3]
        out: FloatArray = m / np.linalg.norm(m, axis=0)
        return out

    @property
    def position(self) -> tuple[float, float, float]:
        """LPS position (mm) of the centre of voxel (0, 0, 0)."""
        p = self.affine[:3, 3]
        return (float(p[0]), float(p[1]), float(p[2]))

    @property
    def shear_degrees(self) -> float:
        """Angle (degrees) between the slice step and the normal of the (i, j) plane."""
        return shear_degrees(self.affine)

    def map_indices_to_reference(self, indices: ArrayLike) -> FloatArray:
        """Voxel indices ``(i, j, k)`` to LPS mm.

        Parameters
        ----------
        indices : array_like of shape (N, 3) or (3,)

        Returns
        -------
        ndarray of shape (N, 3) or (3,)
        """
        import numpy as np

        idx = np.asarray(indices, dtype=np.float64)
        out: FloatArray = idx @ self.affine[:3, :3].T + self.affine[:3, 3]
        return out

    def map_reference_to_indices(self, points: ArrayLike, round_output: bool = False) -> Any:
        """LPS mm to (fractional) voxel indices ``(i, j, k)``; integers with ``round_output``.

        Parameters
        ----------
        points : array_like of shape (N, 3) or (3,)

        Returns
        -------
        ndarray of shape (N, 3) or (3,), float64 (or int64 when rounded)
        """
        import numpy as np

        inv = np.linalg.inv(self.affine)
        idx = np.asarray(points, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]
        return np.rint(idx).astype(np.int64) if round_output else idx


@dataclass(frozen=True, eq=False)
class VolumeGeometry(GridMixin):
    """A grid in patient space without pixels.

    Attributes
    ----------
    affine : ndarray of shape (4, 4)
        Maps (i, j, k, 1) to LPS mm (column 2 may be sheared).
    spatial_shape : tuple (X, Y, Z)
        Grid size along i, j, k.
    frame_of_reference_uid : str or None
        The DICOM FrameOfReferenceUID the coordinates refer to.
    """

    affine: FloatArray
    spatial_shape: tuple[int, int, int]
    frame_of_reference_uid: str | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """The spatial shape (X, Y, Z)."""
        return self.spatial_shape

    @property
    def sheared(self) -> bool:
        """True when the slice step leaves the (i, j) plane's normal (gantry tilt)."""
        return self.shear_degrees > SHEAR_TOLERANCE_DEGREES

    @property
    def geometry(self) -> VolumeGeometry:
        """Itself (so that a geometry and a volume can be passed alike)."""
        return self

    def geometry_equal(self, other: HasGeometry,
                       tol: float = GEOMETRY_EQUAL_TOLERANCE) -> bool:
        """True when ``other`` has the same spatial shape, frame of reference and affine."""
        theirs = other.geometry
        return (tuple(theirs.spatial_shape) == tuple(self.spatial_shape)
                and (theirs.frame_of_reference_uid or None) == (self.frame_of_reference_uid
                                                               or None)
                and affines_close(theirs.affine, self.affine, atol=tol, rtol=0.0))

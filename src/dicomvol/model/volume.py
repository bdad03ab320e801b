"""The Volume value object: an array, its LPS affine and where it came from.

Its pixel-free twin is :class:`~dicomvol.model.grid.VolumeGeometry`; both share
the geometry API of :class:`~dicomvol.model.grid.GridMixin`. Writers live in
:mod:`dicomvol.io` (``dicomvol.to_nifti(volume)``); nothing here does file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomvol.constants import SHEAR_TOLERANCE_DEGREES
from dicomvol.model.grid import GridMixin, VolumeGeometry
from dicomvol.model.plan import VolumePlan

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, eq=False)
class Volume(GridMixin):
    """A 3D or 4D image placed in patient space.

    Attributes
    ----------
    data : ndarray of shape (X, Y, Z) or (X, Y, Z, T)
        Voxel data indexed ``[i, j, k(, t)]``: i along a DICOM row (the column
        index, X = Columns), j down the columns (the row index, Y = Rows), k
        along the slice step, t the volume index. Fortran-ordered, so each
        slice ``data[:, :, k]`` is contiguous. Modality values are
        ``data * scl_slope + scl_inter`` (see :attr:`values`).
    affine : ndarray of shape (4, 4)
        Maps (i, j, k, 1) to DICOM patient coordinates (LPS, mm). Column 2
        may be sheared (gantry tilt), see ``metadata["Sheared"]``.
    scl_slope, scl_inter : float
        Linear scaling from ``data`` to modality values (1 and 0 when ``data``
        already holds them).
    metadata : dict
        The JSON sidecar's content (acquisition keys, ``Geometry``,
        ``GeometryDetail``, ``Warnings``, ...), without ``SourceInstances``.
    source_instances : tuple of dict
        One ``{"SOPInstanceUID", "Frame", "File"}`` per slice, k fastest then t.
    plan : VolumePlan or None
        The plan the volume was read from.
    """

    data: np.ndarray
    affine: np.ndarray
    scl_slope: float = 1.0
    scl_inter: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    source_instances: tuple[dict[str, Any], ...] = ()
    plan: VolumePlan | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape (X, Y, Z[, T])."""
        return tuple(self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The first three axes (X, Y, Z)."""
        x, y, z = self.data.shape[:3]
        return (int(x), int(y), int(z))

    @property
    def frame_of_reference_uid(self) -> str | None:
        """FrameOfReferenceUID of the source series (from the plan or the metadata)."""
        if self.plan is not None and self.plan.first.frame_of_reference_uid:
            return self.plan.first.frame_of_reference_uid
        uid = self.metadata.get("FrameOfReferenceUID")
        return str(uid) if uid else None

    @property
    def geometry(self) -> VolumeGeometry:
        """The pixel-free twin: the same grid without the array."""
        import numpy as np

        return VolumeGeometry(np.array(self.affine, dtype=np.float64), self.spatial_shape,
                              self.frame_of_reference_uid)

    @property
    def values(self) -> np.ndarray:
        """Modality values (e.g. HU), shape (X, Y, Z[, T]); a float copy when scaled."""
        import numpy as np

        if self.scl_slope == 1.0 and self.scl_inter == 0.0:
            return self.data
        return self.data.astype(np.float64) * self.scl_slope + self.scl_inter

    @property
    def sheared(self) -> bool:
        """True when the slice step is not along the slice normal (gantry tilt)."""
        if "Sheared" in self.metadata:
            return bool(self.metadata["Sheared"])
        return self.shear_degrees > SHEAR_TOLERANCE_DEGREES

    def sidecar(self) -> dict[str, Any]:
        """The complete JSON sidecar: metadata plus ``SourceInstances``."""
        return {**self.metadata, "SourceInstances": list(self.source_instances)}

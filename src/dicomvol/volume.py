"""The Volume value object: an array, its LPS affine and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import nibabel as nib

    from dicomvol.plan import VolumePlan


@dataclass(frozen=True, eq=False)
class Volume:
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
    def values(self) -> np.ndarray:
        """Modality values (e.g. HU), shape (X, Y, Z[, T]); a float copy when scaled."""
        if self.scl_slope == 1.0 and self.scl_inter == 0.0:
            return self.data
        return self.data.astype(np.float64) * self.scl_slope + self.scl_inter

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel step lengths (mm) along i, j and k."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def sheared(self) -> bool:
        """True when the slice step is not along the slice normal (gantry tilt)."""
        return bool(self.metadata.get("Sheared", False))

    def to_nifti(self) -> nib.Nifti1Image:
        """The volume as a ``nibabel.Nifti1Image`` (RAS affine, sform and qform set)."""
        from dicomvol.nifti import to_nifti

        return to_nifti(self)

    def to_simpleitk(self) -> Any:
        """The volume as a ``SimpleITK.Image`` (LPS, ITK's native frame); needs SimpleITK."""
        from dicomvol.writers import to_simpleitk

        return to_simpleitk(self)

    def sidecar(self) -> dict[str, Any]:
        """The complete JSON sidecar: metadata plus ``SourceInstances``."""
        return {**self.metadata, "SourceInstances": list(self.source_instances)}

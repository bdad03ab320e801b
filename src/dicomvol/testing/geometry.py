"""Geometry and value formatting for synthetic DICOM: directions, DS strings, read-only arrays.

Conventions are the project's: LPS millimetres, ImageOrientationPatient row
and column directions, DS strings of at most 16 characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from pydicom.valuerep import format_number_as_ds

FloatArray = npt.NDArray[np.float64]
Vec3 = tuple[float, float, float]
_ArrayT = TypeVar("_ArrayT", bound="np.ndarray[Any, Any]")

_PLANES: dict[str, tuple[Vec3, Vec3]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}

# --------------------------------------------------------------------------------------------
# Direction helpers
# --------------------------------------------------------------------------------------------


def rotation_matrix(axis: Sequence[float], degrees: float) -> FloatArray:
    """Rotation about ``axis`` by ``degrees`` (right-handed), by Rodrigues' formula.

    Parameters
    ----------
    axis : sequence of float, length 3
        Rotation axis; need not be normalised but must be non-zero.
    degrees : float
        Rotation angle in degrees.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Orthonormal matrix ``R`` such that ``R @ v`` rotates the vector ``v``.
    """
    a = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"rotation axis must be a finite non-zero vector, got {tuple(axis)}")
    a = a / norm
    theta = math.radians(degrees)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    rot: FloatArray = np.eye(3) + math.sin(theta) * k + (1.0 - math.cos(theta)) * (k @ k)
    return rot


def vec3(v: npt.ArrayLike) -> Vec3:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    return (float(a[0]), float(a[1]), float(a[2]))


def oblique_directions(
    degrees: float, axis: Sequence[float] = (1.0, 1.0, 0.0)
) -> tuple[Vec3, Vec3]:
    """Axial row/column directions rotated by ``degrees`` about ``axis``.

    Parameters
    ----------
    degrees : float
        Rotation angle in degrees.
    axis : sequence of float, length 3, optional
        Rotation axis in LPS, default ``(1, 1, 0)``.

    Returns
    -------
    row_dir, col_dir : tuple of float, length 3 each
        ``R @ (1, 0, 0)`` and ``R @ (0, 1, 0)``; orthonormal.
    """
    rot = rotation_matrix(axis, degrees)
    return vec3(rot[:, 0]), vec3(rot[:, 1])


def directions_for(plane: str) -> tuple[Vec3, Vec3]:
    """Standard row/column directions of an acquisition plane.

    Parameters
    ----------
    plane : {"axial", "coronal", "sagittal"}
        Plane name (case-insensitive).

    Returns
    -------
    row_dir, col_dir : tuple of float, length 3 each
        ``axial``: ``(1, 0, 0), (0, 1, 0)``; ``coronal``: ``(1, 0, 0), (0, 0, -1)``;
        ``sagittal``: ``(0, 1, 0), (0, 0, -1)``.
    """
    try:
        return _PLANES[plane.lower()]
    except KeyError:
        raise ValueError(f"unknown plane {plane!r}; expected one of {sorted(_PLANES)}") from None


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def ds_text(value: float) -> str:
    """Format a float as a DS string of at most 16 characters (tiny values snap to 0)."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"cannot write non-finite value {value!r} as DS")
    if abs(v) < 1e-12:
        v = 0.0
    text = str(format_number_as_ds(v))
    digits = 15
    while len(text) > 16 and digits > 0:  # pydicom rounds 9.999999999999998 up to 17 chars
        text = f"{v:.{digits}g}"
        digits -= 1
    return text


def ds_list(values: npt.ArrayLike) -> tuple[list[str], FloatArray]:
    """Format values as DS strings; also return the floats as written, shape (n,)."""
    strings = [ds_text(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]
    return strings, np.array([float(s) for s in strings], dtype=np.float64)


def unit_vector(v: Sequence[float], name: str) -> FloatArray:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{name} must be a finite non-zero 3-vector, got {tuple(v)}")
    out: FloatArray = a / norm
    return out


def readonly(a: _ArrayT) -> _ArrayT:
    a.flags.writeable = False
    return a

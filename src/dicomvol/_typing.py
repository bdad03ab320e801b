"""Type aliases shared by every package."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

#: A point or direction in DICOM patient coordinates (LPS, mm).
Vec3 = tuple[float, float, float]
#: ImageOrientationPatient: row direction cosines, then column direction cosines.
Orientation = tuple[float, float, float, float, float, float]
#: A file-system path as the library accepts it.
PathLike = str | os.PathLike[str]
#: A float64 array (affines, positions, projections).
FloatArray = NDArray[np.float64]

"""Type aliases shared by every package.

numpy's aliases exist for the type checker only: importing this module (every
package does) must not import numpy, which a run's main process never needs
for a plain series (issue 15: numpy alone is 22 MiB of resident memory). At
run time they are ``typing.Any``; annotations are never evaluated
(``from __future__ import annotations`` everywhere).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

#: A point or direction in DICOM patient coordinates (LPS, mm).
Vec3 = tuple[float, float, float]
#: ImageOrientationPatient: row direction cosines, then column direction cosines.
Orientation = tuple[float, float, float, float, float, float]
#: A file-system path as the library accepts it.
PathLike = str | os.PathLike[str]
#: A 4 x 4 affine as four rows of four floats (plain Python: plans carry no ndarray).
AffineRows = tuple[tuple[float, ...], ...]

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    #: A float64 array (affines, positions, projections).
    FloatArray = NDArray[np.float64]
    #: An affine as rows or as a (4, 4) ndarray: what the geometry functions accept.
    AffineLike = Sequence[Sequence[float]] | NDArray[Any]
else:
    FloatArray = Any
    AffineLike = Any

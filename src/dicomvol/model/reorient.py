"""Reorient a volume to the nearest RAS axes without interpolation (``--reorient``).

Only permutes and flips voxel axes (nibabel's orientation tools), so every
voxel value and every voxel's world position is unchanged. The slice axis may
move: the sidecar records where (``Reoriented.SliceAxis``) and whether it was
flipped, and ``SourceInstances`` are reordered to follow the output's slice
axis in increasing index order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from dicomvol.constants import LPS_TO_RAS
from dicomvol.model.volume import Volume

_LPS_TO_RAS = np.array(LPS_TO_RAS)


def reorient_to_ras(volume: Volume) -> Volume:
    """The same volume with voxel axes permuted/flipped to be closest to R, A, S.

    Returns
    -------
    Volume
        ``data`` of shape permuted like the axes, ``affine`` (LPS) such that
        every voxel keeps its world position; metadata ``Reoriented``.
    """
    from nibabel import orientations as ornt_mod

    ras = _LPS_TO_RAS @ volume.affine
    current = ornt_mod.io_orientation(ras)
    target = ornt_mod.axcodes2ornt(("R", "A", "S"))
    transform = ornt_mod.ornt_transform(current, target)
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return replace(volume, metadata={**volume.metadata, "Reoriented": None})
    shape3 = volume.data.shape[:3]
    data = ornt_mod.apply_orientation(volume.data, transform)
    new_ras = ras @ ornt_mod.inv_ornt_aff(transform, shape3)
    slice_axis = int(transform[2, 0])
    flipped = bool(transform[2, 1] < 0)
    sources: list[dict[str, Any]] = list(volume.source_instances)
    z = shape3[2]
    if flipped and sources:
        sources = [sources[t * z + (z - 1 - k)] for t in range(len(sources) // z)
                   for k in range(z)]
    metadata = dict(volume.metadata)
    if flipped and isinstance(metadata.get("SliceTiming"), list):
        metadata["SliceTiming"] = metadata["SliceTiming"][::-1]  # follows the slice axis
    info = {"SliceAxis": slice_axis, "SliceAxisFlipped": flipped,
            "AxisPermutation": [int(a) for a in transform[:, 0]],
            "AxisFlips": [bool(f < 0) for f in transform[:, 1]],
            "Note": "SourceInstances run along SliceAxis in increasing index order"}
    return replace(volume, data=np.asfortranarray(data), affine=_LPS_TO_RAS @ new_ras,
                   source_instances=tuple(sources),
                   metadata={**metadata, "Reoriented": info})

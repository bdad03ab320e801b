"""Values derived after assembly: PET SUV and the diffusion gradient table.

Both read headers again (a few per volume) rather than widening every
``FrameRecord``: they are needed once per output, not for grouping.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.errors import HeaderError
from dicomvol.index import header_of
from dicomvol.records import FrameRecord
from dicomvol.volume import Volume

log = logging.getLogger(__name__)


def apply_suv(volume: Volume) -> Volume:
    """The volume in body-weight SUV (g/ml): float32 values times the SUVbw factor.

    The factor and every input are recorded in the sidecar (``SUVbw``), and
    ``Units`` becomes ``g/ml``.

    Raises
    ------
    HeaderError
        SUV cannot be computed; the message names the missing attribute.
    """
    from dicomvol.suv import suv_bw_factor

    plan = volume.plan
    if plan is None or plan.modality != "PT":
        raise HeaderError("SUV applies to PET (Modality PT) only")
    frames = plan.all_frames
    series = [header_of(path) for path in dict.fromkeys(f.path for f in frames)]
    factor = suv_bw_factor(series[0], series=series)
    data = np.asfortranarray(volume.values.astype(np.float32) * np.float32(factor.factor))
    metadata = {**volume.metadata, "Units": "g/ml", "SUVbw": factor.to_json(),
                "UnitsBeforeSUV": volume.metadata.get("Units")}
    return replace(volume, data=data, scl_slope=1.0, scl_inter=0.0, metadata=metadata)


def diffusion_table(volume: Volume) -> tuple[list[float], list[tuple[float, float, float]]] | None:
    """FSL b-values and b-vectors of a 4D diffusion volume, in its voxel axes.

    Returns None when the volume is not 4D or no volume carries diffusion
    information. Vectors follow dcm2niix/FSL: components along the NIfTI voxel
    axes, x negated when the affine's determinant is positive.
    """
    from dicomvol.diffusion import diffusion_of, fsl_bvec_for_affine

    plan = volume.plan
    if plan is None or len(plan.frames) < 2 or plan.resample is not None:
        return None
    bvals: list[float] = []
    bvecs: list[tuple[float, float, float]] = []
    found = False
    headers: dict[str, Any] = {}  # an enhanced file holds every volume: parse it once
    for vol in plan.frames:
        frame = vol[0]
        if frame.path not in headers:
            headers[frame.path] = header_of(frame.path)
        info = _diffusion(frame, headers[frame.path], diffusion_of)
        if info is None:
            bvals.append(0.0)
            bvecs.append((0.0, 0.0, 0.0))
            continue
        found = True
        b, direction = info
        bvals.append(float(b))
        bvecs.append(fsl_bvec_for_affine(direction, volume.affine) if direction is not None
                     and b > 0 else (0.0, 0.0, 0.0))
    return (bvals, bvecs) if found and any(b > 0 for b in bvals) else None


def _diffusion(frame: FrameRecord, ds: Any, diffusion_of: Any) -> Any:
    frame_fg = None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame.frame <= len(per_frame):
        frame_fg = per_frame[frame.frame - 1]
    try:
        return diffusion_of(ds, frame_fg)
    except HeaderError as exc:
        log.warning("%s: diffusion direction unavailable: %s", frame.rel, exc)
        return None


def write_diffusion(volume: Volume, image: Path) -> list[Path]:
    """Write ``.bval``/``.bvec`` beside ``image`` when the volume is diffusion-weighted."""
    from dicomvol.diffusion import write_bval_bvec

    table = diffusion_table(volume)
    if table is None:
        return []
    stem = image.with_name(image.name.split(".nii")[0].split(".nrrd")[0].split(".mha")[0])
    return list(write_bval_bvec(stem, table[0], table[1], overwrite=True))

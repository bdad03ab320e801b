"""Make the QC record of an image output: in its job (``convert --qc``) or from the written file.

:func:`from_job` runs inside the job that wrote the volume, on the
:class:`~dicomvol.qc.sample.Sample` it took while it had the pixels, with the
plan's source positions. :func:`from_image` reads a written image back
(``dicomvol qc`` on a folder converted without ``--qc``, or a resumed output)
and knows only what the file and its sidecar say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dicomvol.io.readback import open_image
from dicomvol.model.plan import VolumePlan
from dicomvol.qc.record import (
    QC_DIR,
    FourthAxis,
    VolumeQC,
    affine_positions,
    image_stat,
    is_irregular,
    plan_fourth_axis,
    plan_positions,
    write_record,
)
from dicomvol.qc.sample import MIP_MODALITIES, Sample, sample_volumes
from dicomvol.qc.thumbs import render_views


def wants_mip(modality: str) -> bool:
    """Whether a volume of this modality is sampled with maximum-intensity projections."""
    return modality in MIP_MODALITIES


def from_job(plan: VolumePlan, image: Path, stem: str, sample: Sample, affine: np.ndarray,
             shape: tuple[int, ...]) -> VolumeQC:
    """Render and write the record of a volume a job has just written.

    Parameters
    ----------
    plan : VolumePlan
        The volume's plan (source positions, 4th-axis values).
    image : Path
        The written image (its folder is the output folder).
    stem : str
        The output's name without extension.
    sample : Sample
        Taken while the job had the pixels.
    affine : ndarray of shape (4, 4)
        The written volume's LPS affine (differs from the plan's after ``--reorient``).
    shape : tuple of int
        The written volume's shape.
    """
    out_dir = image.parent
    thumbs = render_views(sample, affine, plan.modality, out_dir / QC_DIR, stem)
    irregular = is_irregular(plan.detail.to_json(), plan.resample is not None, plan.sheared,
                             plan.label)
    record = VolumeQC(image.name, plan.modality, tuple(shape), np.asarray(affine), thumbs,
                      plan_positions(plan, affine, shape) if irregular else None,
                      plan_fourth_axis(plan), image_stat(image))
    write_record(out_dir, stem, record)
    return record


def from_image(out_dir: Path, image_name: str, stem: str, sidecar: dict[str, Any]) -> VolumeQC:
    """Render and write the record of a written 3D/4D image from the file and its sidecar."""
    path = out_dir / image_name
    image = open_image(path)
    modality = str(sidecar.get("Modality", ""))
    sample = sample_volumes(image.shape, image.volume, mip=wants_mip(modality))
    thumbs = render_views(sample, image.affine, modality, out_dir / QC_DIR, stem)
    positions = None
    detail = sidecar.get("GeometryDetail")
    resampled = bool(sidecar.get("Resampled"))
    if is_irregular(detail if isinstance(detail, dict) else {}, resampled,
                    bool(sidecar.get("Sheared")), str(sidecar.get("VolumeLabel", ""))):
        sources = sidecar.get("SourceInstances")
        positions = affine_positions(image.affine, image.shape, resampled,
                                     sources if isinstance(sources, list) else None)
    record = VolumeQC(image_name, modality, image.shape, image.affine, thumbs, positions,
                      file_fourth_axis(path, stem, image.shape, sidecar), image_stat(path))
    if positions is not None and not positions.acquired_mm:
        record.notes.append("acquired slice positions are not in the output folder "
                            "(resampled output converted without --qc): the plot shows the "
                            "output grid and the gaps the sidecar names")
    write_record(out_dir, stem, record)
    return record


def file_fourth_axis(path: Path, stem: str, shape: tuple[int, ...],
                     sidecar: dict[str, Any]) -> FourthAxis | None:
    """The 4th axis of a written 4D image: b-values from its ``.bval``, else just its name."""
    if len(shape) < 4 or shape[3] < 2:
        return None
    detail = sidecar.get("GeometryDetail")
    name = str(detail.get("fourth_dimension") or "volume") if isinstance(detail, dict) else (
        "volume")
    bval = path.with_name(f"{stem}.bval")
    if bval.is_file():
        try:
            values = tuple(float(v) for v in bval.read_text(encoding="utf-8").split())
        except (OSError, ValueError):
            values = ()
        if len(values) == shape[3]:
            return FourthAxis(name, "b (s/mm²)", values)
    return FourthAxis(name, "", tuple(None for _ in range(shape[3])))

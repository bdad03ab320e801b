"""Values derived per job from headers read once: PET SUV, diffusion tables (bval/bvec).

Everything that needs a header is read from the job's
:class:`~dicomvol.dicom.cache.JobSources` *before* the pixels, so no file is
opened twice; what depends on the final voxel axes (bvecs after
``--reorient``) is applied after.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomvol._typing import AffineLike
from dicomvol.errors import HeaderError
from dicomvol.io.formats import stem_of
from dicomvol.model.plan import VolumePlan
from dicomvol.model.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - imported where a PET, dose or diffusion job needs it
    from dicomvol.dicom.cache import JobSources
    from dicomvol.dicom.diffusion import Diffusion
    from dicomvol.metadata.suv import SuvFactor

log = logging.getLogger(__name__)


def suv_factor(plan: VolumePlan, sources: JobSources) -> SuvFactor:
    """The SUVbw factor of a PET plan, from its first header and its frames' acquisition times.

    Raises
    ------
    HeaderError
        Not PET, or SUV cannot be computed; the message names the missing attribute.
    """
    from dicomvol.metadata.suv import suv_bw_factor  # pydicom: for --suv only

    if plan.modality != "PT":
        raise HeaderError("SUV applies to PET (Modality PT) only")
    first = sources.header(plan.first.path)
    frames = plan.all_frames
    if plan.first.number_of_frames > 1:
        series: list[Any] = [first]  # an enhanced file: its own header holds the times
    else:
        by_file = {f.path: f for f in frames}
        series = [{"AcquisitionDate": f.acquisition_date, "AcquisitionTime": f.acquisition_time,
                   "AcquisitionDateTime": f.acquisition_datetime} for f in by_file.values()]
    return suv_bw_factor(first, series=series)


def with_object_metadata(metadata: dict[str, Any], plan: VolumePlan,
                         sources: JobSources) -> dict[str, Any]:
    """The sidecar plus the units of an RT Dose or parametric map (unchanged for others)."""
    if plan.first.sop_class_uid not in OBJECT_SOP_CLASSES:
        return metadata
    from dicomvol.objects.dose import object_metadata

    extra = object_metadata(plan.first.sop_class_uid, sources.header(plan.first.path))
    return {**metadata, **extra} if extra else metadata


#: Image objects whose sidecars carry units from :mod:`dicomvol.objects.dose`: RT Dose and
#: Parametric Map Storage (``dicom.frames.RTDOSE_SOP_CLASS``,
#: ``objects.dose.PARAMETRIC_MAP_SOP_CLASS``; tests/batch/test_lean_imports.py holds them
#: equal), named here so that an ordinary job imports neither.
OBJECT_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.30"})


def apply_suv(volume: Volume, factor: SuvFactor) -> Volume:
    """The volume in body-weight SUV (g/ml): float32 values times the SUVbw factor.

    The factor and every input are recorded in the sidecar (``SUVbw``), and
    ``Units`` becomes ``g/ml``.
    """
    import numpy as np

    data = np.asfortranarray(volume.values.astype(np.float32) * np.float32(factor.factor))
    metadata = {**volume.metadata, "Units": "g/ml", "SUVbw": factor.to_json(),
                "UnitsBeforeSUV": volume.metadata.get("Units")}
    return replace(volume, data=data, scl_slope=1.0, scl_inter=0.0, metadata=metadata)


def write_diffusion(diffusions: list[Diffusion | None] | None, affine: AffineLike,
                    image: Path) -> list[Path]:
    """Write ``.bval``/``.bvec`` beside ``image`` when the volume is diffusion-weighted."""
    if diffusions is None:
        return []
    from dicomvol.io.fsl import write_bval_bvec
    from dicomvol.metadata.diffusion import fsl_table

    bvals, bvecs = fsl_table(diffusions, affine)
    return list(write_bval_bvec(Path(stem_of(image)), bvals, bvecs, overwrite=True))

"""Frozen option objects, passed explicitly (they reach worker processes intact)."""

from __future__ import annotations

from dataclasses import dataclass

#: Default output name template; fields are DICOM keywords in braces.
DEFAULT_TEMPLATE = "{PatientID}_{SeriesNumber}_{SeriesDescription}"


@dataclass(frozen=True)
class ConvertOptions:
    """How ``convert`` writes its outputs.

    Parameters
    ----------
    compress : bool
        Write ``.nii.gz`` (True) or ``.nii`` (False).
    template : str
        Output name template. Fields are DICOM keywords in braces, e.g.
        ``{PatientID}``, ``{SeriesNumber}``, ``{SeriesDescription}``,
        ``{Modality}``, ``{StudyDate}``, ``{SeriesInstanceUID}``, ``{EchoNumbers}``.
        Names are made safe for file systems and never collide.
    overwrite : bool
        Replace existing outputs instead of refusing.
    jobs : int
        Worker processes for assembling and writing (1 = in this process).
    """

    compress: bool = True
    template: str = DEFAULT_TEMPLATE
    overwrite: bool = False
    jobs: int = 1

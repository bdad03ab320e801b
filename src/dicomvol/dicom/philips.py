"""Philips private intensity scaling: display values versus floating-point values.

Philips MR images carry two linear scalings of the stored pixel value SV:

* the standard modality rescale, RescaleSlope RS and RescaleIntercept RI
  (top level in classic images, in the PixelValueTransformationSequence
  (0028,9145) of the per-frame or shared functional groups in enhanced
  images), giving the **display value** ``DV = RS * SV + RI``;
* the private ScaleSlope SS, (2005,xx0E) of the private creator
  ``Philips MR Imaging DD 001`` (top level in classic images; in enhanced
  images inside the private per-frame item (2005,xx0F) of creator
  ``Philips MR Imaging DD 005``, i.e. tag (2005,140F)), giving the
  **floating-point value** ``FP = DV / (RS * SS) = SV / SS + RI / (RS * SS)``
  (Chenevert et al., Transl Oncol 2014, PMC3998685).

Only FP values are comparable between scans (and needed for quantitative
maps such as ADC). What dcm2niix writes, checked on the shared corpus with
dcm2niix v1.0.20260724 (see ``tests/test_vendor_scaling.py``):

* by default (``-p y``, "Philips precise float (not display) scaling") it
  writes **FP** values: NIfTI ``scl_slope = 1 / SS`` and
  ``scl_inter = RI / (RS * SS)``, and its JSON sidecar has
  ``"UsePhilipsFloatNotDisplayScaling": 1``;
* with ``-p n`` it writes display values: ``scl_slope = RS``,
  ``scl_inter = RI``;
* in both cases the JSON reports ``PhilipsRescaleSlope`` (RS),
  ``PhilipsRescaleIntercept`` (RI) and ``PhilipsScaleSlope`` (SS).

:func:`philips_nifti_scaling` gives the (scl_slope, scl_inter) pair of either
mode.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dicomvol.dicom.private import private_value
from dicomvol.dicom.values import first_item, is_dataset, to_float, vendor
from dicomvol.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover - pydicom only where a file needs it (leanimports)
    import pydicom

log = logging.getLogger(__name__)

#: Private creator of the group-2005 block holding the ScaleSlope (element xx0E).
PHILIPS_MR_CREATOR = "Philips MR Imaging DD 001"
#: Private creator of the group-2005 block holding the per-frame private item (xx0F).
PHILIPS_MR_CREATOR_005 = "Philips MR Imaging DD 005"
#: Element offset of the ScaleSlope within the ``PHILIPS_MR_CREATOR`` block: (2005,xx0E).
SCALE_SLOPE_OFFSET = 0x0E
#: Element offset of the per-frame private item sequence in the DD 005 block: (2005,xx0F).
PER_FRAME_PRIVATE_OFFSET = 0x0F
#: The two value modes of :func:`philips_values`.
MODES = ("display", "fp")


def is_philips(ds: pydicom.Dataset) -> bool:
    """True when Manufacturer (0008,0070) names Philips."""
    return vendor(ds) == "Philips"


def _per_frame_private(frame_fg: pydicom.Dataset | None) -> pydicom.Dataset | None:
    """The Philips private per-frame item (2005,xx0F)[0] of a functional-group item."""
    if frame_fg is None:
        return None
    seq = private_value(frame_fg, 0x2005, PHILIPS_MR_CREATOR_005, PER_FRAME_PRIVATE_OFFSET)
    if seq is None or not hasattr(seq, "__len__") or len(seq) == 0:
        return None
    item = seq[0]
    return item if is_dataset(item) else None


def _shared_fg(ds: pydicom.Dataset) -> pydicom.Dataset | None:
    return first_item(ds, "SharedFunctionalGroupsSequence")


def _rescale(ds: pydicom.Dataset,
             frame_fg: pydicom.Dataset | None) -> tuple[float, float] | None:
    """(RescaleSlope, RescaleIntercept): per-frame, shared, private item, then top level."""
    candidates = [
        first_item(frame_fg, "PixelValueTransformationSequence"),
        first_item(_shared_fg(ds), "PixelValueTransformationSequence"),
        _per_frame_private(frame_fg),
        ds,
    ]
    for item in candidates:
        if item is None:
            continue
        slope = to_float(item.get("RescaleSlope"))
        if slope is None:
            continue
        intercept = to_float(item.get("RescaleIntercept"))
        return slope, 0.0 if intercept is None else intercept
    return None


def _scale_slope(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> float | None:
    """Private ScaleSlope (2005,xx0E): per-frame private item, frame item, shared, top level."""
    for item in (_per_frame_private(frame_fg), frame_fg,
                 _per_frame_private(_shared_fg(ds)), ds):
        if item is None:
            continue
        value = to_float(private_value(item, 0x2005, PHILIPS_MR_CREATOR, SCALE_SLOPE_OFFSET))
        if value is not None:
            return value
    return None


def philips_scaling(ds: pydicom.Dataset,
                    frame_fg: pydicom.Dataset | None = None) -> tuple[float, float, float] | None:
    """The Philips scaling triple (RS, RI, SS) of a data set or of one frame.

    Parameters
    ----------
    ds : pydicom.Dataset
        A classic or enhanced (multi-frame) Philips image header.
    frame_fg : pydicom.Dataset, optional
        For enhanced images, the frame's item of the
        PerFrameFunctionalGroupsSequence (5200,9230). RS and RI are then taken
        from its PixelValueTransformationSequence (falling back to the shared
        functional groups), SS from its private item (2005,140F). When omitted
        for an enhanced image, frame 1 is used (frames may differ: pass each
        frame's item when they can, e.g. a Philips B0 map with magnitude and
        field-map frames).

    Returns
    -------
    tuple of float or None
        ``(RescaleSlope, RescaleIntercept, ScaleSlope)``; None when the data
        set is not Philips or lacks the RescaleSlope or the private
        ScaleSlope (2005,xx0E).
    """
    if not is_philips(ds):
        return None
    if frame_fg is None:
        frame_fg = first_item(ds, "PerFrameFunctionalGroupsSequence")
        if frame_fg is not None:
            log.debug("enhanced Philips image without frame_fg: using frame 1's scaling")
    rescale = _rescale(ds, frame_fg)
    ss = _scale_slope(ds, frame_fg)
    if rescale is None or ss is None:
        log.debug("Philips image without RescaleSlope or private ScaleSlope (2005,xx0E)")
        return None
    return rescale[0], rescale[1], ss


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UsageError(f"Philips scaling mode must be one of {MODES}, not {mode!r}")


def philips_values(stored: ArrayLike, rs: float, ri: float, ss: float,
                   mode: str) -> NDArray[np.float64]:
    """Stored pixel values to Philips display or floating-point values.

    Parameters
    ----------
    stored : array_like
        Stored pixel values SV.
    rs, ri : float
        RescaleSlope and RescaleIntercept.
    ss : float
        Philips private ScaleSlope (2005,xx0E).
    mode : {"display", "fp"}
        ``"display"``: ``RS * SV + RI`` (the standard DICOM rescale).
        ``"fp"``: ``(RS * SV + RI) / (RS * SS)``, the Philips floating-point
        value (what dcm2niix writes by default).

    Returns
    -------
    ndarray of float64, the shape of ``stored``

    Raises
    ------
    dicomvol.errors.UsageError
        Unknown mode, or ``"fp"`` with ``RS * SS == 0``.
    """
    import numpy as np

    _check_mode(mode)
    display = np.asarray(stored, dtype=np.float64) * rs + ri
    if mode == "display":
        return display
    if rs * ss == 0:
        raise UsageError("Philips floating-point scaling needs RescaleSlope * ScaleSlope != 0")
    return display / (rs * ss)


def philips_nifti_scaling(rs: float, ri: float, ss: float, mode: str) -> tuple[float, float]:
    """NIfTI (scl_slope, scl_inter) that turn stored values into ``mode`` values.

    ``"display"`` gives ``(RS, RI)``; ``"fp"`` gives ``(1 / SS, RI / (RS * SS))``,
    which is what dcm2niix writes by default.
    """
    _check_mode(mode)
    if mode == "display":
        return rs, ri
    if rs * ss == 0:
        raise UsageError("Philips floating-point scaling needs RescaleSlope * ScaleSlope != 0")
    return 1.0 / ss, ri / (rs * ss)


#: Private creator of (2005,15xx), where (2005,1596) MRImageDiffVolumeNumber lives.
PHILIPS_MR_CREATOR_006 = "Philips MR Imaging DD 006"


def philips_volume_number(ds: pydicom.Dataset) -> int | None:
    """(2005,1596) MRImageDiffVolumeNumber (IS): a diffusion volume's acquisition index.

    Philips software from R5.6 numbers each diffusion volume in acquisition order here;
    dcm2niix calls it so ("2005,1596 provides temporal order", its issue 546, and "use
    2005,1596 for Philips DWI >= R5.6" in ``readDICOMx``) but orders the volumes of classic
    files by InstanceNumber. Read under its creator, else at the fixed tag as dcm2niix reads
    it; None when absent or not a positive number.
    """
    value = private_value(ds, 0x2005, PHILIPS_MR_CREATOR_006, 0x96)
    if value is None:
        elem = ds.get((0x2005, 0x1596))
        value = None if elem is None else elem.value
    number = to_float(value)
    return int(number) if number is not None and number >= 1 and number == int(number) else None

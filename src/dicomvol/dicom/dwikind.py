"""Derived diffusion images: which kind (trace, ADC, FA, eADC) an image's headers name.

The trace (isotropic), ADC, FA and exponential ADC images scanners append to a
DTI series are not acquired volumes; the planner writes them apart from the DWI
4D (:mod:`dicomvol.plan.dwi`). The encoding itself is :mod:`dicomvol.dicom.diffusion`.
"""

from __future__ import annotations

from dicomvol.dicom.diffusion import ZERO_B_VALUE, Diffusion

#: Image types (ImageType / FrameType values) of derived diffusion images -> output kind.
DERIVED_IMAGE_TYPES = {"TRACEW": "trace", "TRACE": "trace", "ISOTROPIC": "trace",
                       "ISO": "trace", "ADC": "ADC", "EADC": "eADC", "EXP": "eADC",
                       "FA": "FA"}
#: Of those, the values that name a derived image only when ImageType value 1 is DERIVED.
_DERIVED_ONLY = {"ISO", "EXP", "FA"}


def derived_kind(image_type: tuple[str, ...], diffusion: Diffusion | None, maker: str,
                 isotropic: bool = False) -> str | None:
    """The kind of a derived diffusion image (``"trace"``, ``"ADC"``, ``"FA"``, ``"eADC"``).

    None for an acquired image (b = 0 or a gradient direction). A derived image is
    named by its ImageType (or enhanced FrameType) values (Siemens and Philips
    write TRACEW, ADC, FA, EADC); DiffusionDirectionality ISOTROPIC or the
    Philips flag (2001,xx04) ``I`` with b > 0 (``isotropic``) is a trace image;
    and a Philips image with b > 0 and a zero vector is one too (dcm2niix's rule
    for Philips isotropic images).
    """
    derived = bool(image_type) and image_type[0].strip().upper() == "DERIVED"
    for value in image_type[2:]:
        token = value.strip().upper()
        kind = DERIVED_IMAGE_TYPES.get(token)
        if kind is not None and (derived or token not in _DERIVED_ONLY):
            return kind
    if diffusion is None or diffusion[0] <= ZERO_B_VALUE or diffusion[1] is not None:
        return None
    if isotropic or maker == "Philips":
        return "trace"
    return None

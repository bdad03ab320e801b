"""``--apply-icc``: a slide's ICC profile applied, giving sRGB pixels (Pillow's LittleCMS).

Off by default: the stored values and their profile are carried into every
output unchanged, so that a colour-managed viewer applies the profile itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from dicomvol.errors import UsageError

#: A transform from profile RGB to sRGB on (H, W, 3) uint8 arrays.
IccTransform = Callable[[np.ndarray], np.ndarray]


@lru_cache(maxsize=8)
def to_srgb(profile: bytes) -> IccTransform:
    """The transform of ``profile`` (ICC bytes) to sRGB, perceptual intent.

    Raises
    ------
    UsageError
        Pillow is not installed or the profile cannot be read.
    """
    try:
        from PIL import Image, ImageCms
    except ImportError as exc:  # pragma: no cover - the slide extra installs it
        raise UsageError("--apply-icc needs Pillow: pip install 'dicomvol[slide]'") from exc
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise UsageError(f"the slide's ICC profile cannot be read: {exc}") from exc
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    transform = ImageCms.buildTransform(source, srgb, "RGB", "RGB")

    def apply(data: np.ndarray) -> np.ndarray:
        image = ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(data), "RGB"),
                                        transform)
        assert image is not None
        return np.asarray(image, dtype=np.uint8)

    return apply

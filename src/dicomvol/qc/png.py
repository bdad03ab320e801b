"""A small PNG writer (8-bit grey, RGB or RGBA), so thumbnails need no imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np

#: zlib level for thumbnails: small images, so the best compression costs little.
PNG_ZLIB_LEVEL = 6
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type by number of channels: grey, grey+alpha, RGB, RGBA.
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(image: np.ndarray) -> bytes:
    """The PNG bytes of an 8-bit image.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C), dtype uint8
        Row 0 is the top of the picture; C is 1 (grey), 2 (grey + alpha),
        3 (RGB) or 4 (RGBA).

    Returns
    -------
    bytes
        A complete PNG file (filter type 0 on every row).
    """
    if image.dtype != np.uint8:
        raise ValueError(f"PNG thumbnails are 8-bit; got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _COLOUR_TYPES:
        raise ValueError(f"expected (H, W) or (H, W, 1..4), got shape {image.shape}")
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise ValueError("a PNG needs at least one pixel")
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # column 0: filter byte
    rows[:, 1:] = np.ascontiguousarray(image).reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_ZLIB_LEVEL))
            + _chunk(b"IEND", b""))

"""Pixel digests: whether two frames hold the same image (for identical-copy detection).

The planner receives :class:`SamePixels` as a callable, so that planning
itself never decodes; it is asked only about frames at one position that no
attribute tells apart.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from dicomvol.model.records import FrameRecord

if TYPE_CHECKING:  # pragma: no cover
    from hashlib import _Hash

log = logging.getLogger(__name__)

#: CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before): the same digests as
#: ``hashlib.sha256`` without loading OpenSSL's libcrypto (about 3.7 MiB of a worker's peak).
_BUILTIN_SHA256 = ("_sha2", "_sha256")


def sha256(data: bytes = b"") -> _Hash:
    """A SHA-256 hash object, from CPython's builtin module when there is one.

    ``hashlib.sha256`` is OpenSSL's (``import hashlib`` loads libcrypto); the
    builtin gives byte-identical digests, so resume keys written by either agree.
    """
    for name in _BUILTIN_SHA256:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.sha256(data)  # type: ignore[no-any-return]
    import hashlib  # a Python built without its own hashes: OpenSSL's

    return hashlib.sha256(data)

_UNDECODABLE = b"undecodable:"


class SamePixels:
    """``same(a, b)``: True when two frames decode to the same values with the same rescale.

    Each frame is decoded at most once (its digest is kept). Values, not bytes,
    are compared: a big-endian copy of an image holds the same image.
    """

    def __init__(self) -> None:
        self._digests: dict[tuple[str, str, int, int], bytes] = {}

    def digest(self, frame: FrameRecord) -> bytes:
        """SHA-256 of the frame's values (as int64 or float64) and its rescale."""
        key = (frame.path, *frame.key)
        if key not in self._digests:
            from numpy.lib.recfunctions import structured_to_unstructured  # imports numpy.ma

            from dicomvol.pixels.decode import decode  # pydicom: only when a frame is asked

            try:
                for f, pixels in decode(frame.path, [frame]):
                    if pixels.dtype.names:  # RGB as (R, G, B) records: compare the samples
                        pixels = structured_to_unstructured(pixels)
                    wide = pixels.astype("<i8" if pixels.dtype.kind in "iu" else "<f8")
                    self._digests[key] = sha256(
                        wide.tobytes() + repr((f.rescale_slope, f.rescale_intercept)).encode()
                    ).digest()
            except Exception:  # undecodable: like no other frame (decoding reports it later)
                log.debug("%s: no pixel digest", frame.path, exc_info=True)
                self._digests[key] = _UNDECODABLE + repr(key).encode()
        return self._digests[key]

    def decodable(self, frame: FrameRecord) -> bool:
        """Whether the frame's pixels decode (so that a comparison with it means something)."""
        return not self.digest(frame).startswith(_UNDECODABLE)

    def __call__(self, a: FrameRecord, b: FrameRecord) -> bool:
        return self.digest(a) == self.digest(b)

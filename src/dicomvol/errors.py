"""One exception root; each subclass also inherits the builtin it resembles.

Failures keep their type until the run report turns them into text: a
``HeaderError`` becomes an ``errors`` entry for its file, a ``PixelDataError``
names the file whose pixels failed (``path``) so that the rest of its series
can be planned again without it.
"""

from __future__ import annotations


class DicomvolError(Exception):
    """Root of every error dicomvol raises on purpose."""


class NotDicomError(DicomvolError, ValueError):
    """A file is not DICOM (no preamble and no parsable data set)."""


class HeaderError(DicomvolError, ValueError):
    """A DICOM header cannot be read or lacks a required attribute."""


class PixelDataError(DicomvolError, ValueError):
    """Pixel data is missing, truncated or cannot be decoded.

    ``path`` names the file when known, so that a batch can report it and
    convert the rest of its series.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class MissingDecoderError(PixelDataError):
    """No installed pydicom decoder plugin handles the file's transfer syntax.

    The message names the packages that would (from pydicom's own decoder
    registry), so the user knows what to install.
    """


class GeometryError(DicomvolError, ValueError):
    """Slices do not form the grid an operation needs."""


class OutputExistsError(DicomvolError, FileExistsError):
    """An output file exists and overwriting was not requested."""


class UsageError(DicomvolError, ValueError):
    """The caller asked for something that cannot be done as asked."""


class RegionError(DicomvolError, IndexError):
    """A slide region lies (partly) outside its level and no ``fill`` value was given."""

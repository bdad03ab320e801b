"""The format registry: output format name -> extension and writer.

The names and extensions are :data:`dicomvol.constants.OUTPUT_FORMATS` (the
one list of formats); this module maps each to its writer, so no writer
dispatches into another.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dicomvol.constants import OUTPUT_FORMATS
from dicomvol.errors import UsageError
from dicomvol.model.volume import Volume

#: writer(volume, path, compress, threads)
Writer = Callable[[Volume, "str | os.PathLike[str]", bool, int], None]

def _nifti(volume: Volume, path: str | os.PathLike[str], compress: bool, threads: int) -> None:
    from dicomvol.io import nifti  # the writers import nibabel: only where a job writes

    nifti.write_nifti(volume, path, compress=compress, threads=threads)


def _nrrd(volume: Volume, path: str | os.PathLike[str], compress: bool, threads: int) -> None:
    from dicomvol.io import itk

    itk.write_nrrd(volume, path, compress=compress)


def _mha(volume: Volume, path: str | os.PathLike[str], compress: bool, threads: int) -> None:
    from dicomvol.io import itk

    itk.write_mha(volume, path, compress=compress)


WRITERS: dict[str, Writer] = {"nifti": _nifti, "nrrd": _nrrd, "mha": _mha}
assert set(WRITERS) == set(OUTPUT_FORMATS), "every output format needs a writer"


def extension(fmt: str, compress: bool = True) -> str:
    """The file extension for ``fmt`` (a key of :data:`~dicomvol.constants.OUTPUT_FORMATS`).

    Parameters
    ----------
    fmt : {"nifti", "nrrd", "mha"}
        Output format.
    compress : bool, optional
        Only matters for NIfTI: ``.nii.gz`` when True, ``.nii`` when False.

    Returns
    -------
    str
        The extension, with its leading dot.

    Raises
    ------
    UsageError
        If ``fmt`` is not a known format.
    """
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown output format {fmt!r}; choose one of {sorted(OUTPUT_FORMATS)}")
    packed, plain = OUTPUT_FORMATS[fmt]
    return packed if compress else plain


def stem_of(path: str | os.PathLike[str]) -> str:
    """A path without its output-format extension (``a/b.nii.gz`` -> ``a/b``)."""
    text = os.fspath(path)
    for packed, plain in OUTPUT_FORMATS.values():
        for ext in (packed, plain):
            if text.endswith(ext):
                return text[: -len(ext)]
    return text


def write_volume(volume: Volume, path: str | os.PathLike[str], fmt: str,
                 compress: bool = True, threads: int = 1) -> None:
    """Write ``volume`` to ``path`` in format ``fmt`` (atomically).

    Raises
    ------
    UsageError
        If ``fmt`` is unknown, or the volume cannot be stored in ``fmt``.
    """
    extension(fmt)  # validates fmt
    WRITERS[fmt](volume, path, compress, threads)

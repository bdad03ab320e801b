"""FSL ``.bval`` / ``.bvec`` files, written as dcm2niix writes them (atomically)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomvol.errors import OutputExistsError, UsageError
from dicomvol.io.atomic import atomic_path

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _fmt(value: float) -> str:
    text = f"{value:g}"
    return "0" if text in ("-0", "0") else text


def _vector(v: Any) -> tuple[float, float, float]:
    """One bvec as three floats (a sequence or an array of any shape holding three)."""
    flat = v.reshape(-1) if hasattr(v, "reshape") else v
    try:
        x, y, z = (float(c) for c in flat)
    except (TypeError, ValueError) as exc:
        raise UsageError("every bvec needs 3 components") from exc
    return (x, y, z)


def _atomic_write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_bval_bvec(stem_path: Path, bvals: Sequence[float], bvecs: Sequence[ArrayLike],
                    *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write FSL ``<stem>.bval`` and ``<stem>.bvec`` files, as dcm2niix does.

    The bval file is one line of space-separated b-values; the bvec file has
    three lines (the x, y and z components of every volume). Numbers use
    ``%g`` (6 significant digits, ``-0`` written as ``0``), like dcm2niix.
    Each file is written to a temporary file in the same folder and moved into
    place with ``os.replace``.

    Parameters
    ----------
    stem_path : Path
        Output path without extension (a trailing ``.nii`` or ``.nii.gz`` is
        removed).
    bvals : sequence of float
        One b-value per volume.
    bvecs : sequence of (x, y, z)
        One FSL bvec per volume (see :func:`dicomvol.metadata.diffusion.fsl_bvec`).
    overwrite : bool
        Replace existing files; otherwise an existing file raises.

    Returns
    -------
    (Path, Path)
        The bval and bvec paths.

    Raises
    ------
    dicomvol.errors.UsageError
        Empty input, lengths that differ, a vector without 3 components, or a
        value that is not finite.
    dicomvol.errors.OutputExistsError
        A file exists and ``overwrite`` is False.
    """
    if len(bvals) == 0 or len(bvals) != len(bvecs):
        raise UsageError(f"need one bvec per b-value ({len(bvals)} b-values, {len(bvecs)} "
                         "bvecs)")
    vecs = [_vector(v) for v in bvecs]
    vals = [float(b) for b in bvals]
    if not all(math.isfinite(x) for x in (*vals, *(c for v in vecs for c in v))):
        raise UsageError("b-values and bvecs must be finite")
    stem = str(stem_path)
    for ext in (".nii.gz", ".nii"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    bval_path, bvec_path = Path(stem + ".bval"), Path(stem + ".bvec")
    if not overwrite:
        for p in (bval_path, bvec_path):
            if p.exists():
                raise OutputExistsError(f"{p} exists (overwrite not requested)")
    _atomic_write(bval_path, " ".join(_fmt(b) for b in vals) + "\n")
    _atomic_write(bvec_path, "".join(" ".join(_fmt(v[axis]) for v in vecs) + "\n"
                                     for axis in range(3)))
    return bval_path, bvec_path

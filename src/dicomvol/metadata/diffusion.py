"""FSL b-value and b-vector tables of a diffusion volume, in its voxel axes.

FSL bvec convention (:func:`fsl_bvec`, :func:`fsl_bvec_for_affine`)
--------------------------------------------------------------------
FSL ``.bvec`` vectors are expressed in the **voxel axes** of the NIfTI image
they accompany: component *x* along voxel axis i, *y* along j, *z* along k
(unit directions of the affine's columns), with one sign rule: FSL works in a
"radiological" voxel frame, so when the image affine has a **positive
determinant** (``det(A[:3, :3]) > 0``, the sign is the same for the LPS and
the RAS affine) the x component is negated::

    b_fsl = D @ inv(R) @ g_lps,   R = affine columns normalised,
    D = diag(-1, 1, 1) if det(affine) > 0 else identity.

dicomvol's volumes have i along the row direction IOP[:3], j along the column
direction IOP[3:] and k along +normal = cross(row, col): a right-handed frame,
so the determinant is always positive and ``fsl_bvec`` returns
``(-(g.row), g.col, g.normal)``. dcm2niix instead flips j (its j runs along
-col) and keeps k along +normal, giving a negative determinant and
``(g.row, -(g.col), g.normal)``: both describe the same physical gradient
(the two FSL frames differ by a 180 degree rotation about the normal, as do
the two voxel arrays). Evidence: ``tests/test_diffusion.py`` maps dcm2niix's
bvecs back to LPS through dcm2niix's own affine with this rule and recovers
the header directions, and :func:`fsl_bvec_for_affine` applied to dcm2niix's
affine reproduces dcm2niix's bvec files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomvol._typing import FloatArray, Vec3
from dicomvol.errors import HeaderError, UsageError
from dicomvol.model import geometry
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover - header readers (pydicom): only for a diffusion series
    from dicomvol.dicom.cache import JobSources
    from dicomvol.dicom.diffusion import Diffusion

log = logging.getLogger(__name__)

#: Max deviation of the normalised affine columns from orthonormal before a warning.
ORTHONORMAL_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- FSL


def _clean(values: Sequence[float]) -> Vec3:
    out = [0.0 if abs(float(x)) < 1e-12 else float(x) for x in values]
    return (out[0], out[1], out[2])


def _axes(affine_lps: ArrayLike) -> tuple[tuple[Vec3, Vec3, Vec3], bool]:
    """The unit voxel axes (columns) of an affine's 3 x 3 part, and whether its
    determinant is positive (plain Python: a DWI job never needs numpy)."""
    cols = tuple(geometry.column(affine_lps, c) for c in range(3))  # type: ignore[arg-type]
    norms = [geometry.norm(c) for c in cols]
    if any(n == 0 for n in norms):
        raise UsageError("affine has a zero-length voxel axis")
    r = tuple((c[0] / n, c[1] / n, c[2] / n) for c, n in zip(cols, norms, strict=True))
    worst = max(abs(geometry.dot(r[a], r[b]) - (a == b)) for a in range(3) for b in range(3))
    if worst > ORTHONORMAL_TOLERANCE:
        log.warning("voxel axes are not orthogonal (sheared affine): bvecs use oblique "
                    "components")
    det = geometry.det3(cols[0], cols[1], cols[2])
    return (r[0], r[1], r[2]), det > 0


def fsl_bvec_for_affine(direction_lps: Sequence[float] | FloatArray | None,
                        affine_lps: ArrayLike) -> Vec3:
    """A patient-LPS gradient direction as an FSL bvec for an image with this affine.

    Parameters
    ----------
    direction_lps : sequence of 3 float or None
        Gradient direction in LPS (None or zero for b = 0: gives (0, 0, 0)).
    affine_lps : array_like, shape (4, 4) or (3, 3)
        Voxel (i, j, k) to LPS mm. An RAS affine gives the same result only if
        converted first (``diag(-1, -1, 1) @ A``); the determinant rule is
        unaffected.

    Returns
    -------
    tuple of 3 float
        Components along the voxel axes i, j, k, with x negated when
        ``det(affine) > 0`` (FSL's radiological convention).
    """
    if direction_lps is None:
        return (0.0, 0.0, 0.0)
    from dicomvol.dicom.diffusion import ZERO_VECTOR_LENGTH

    g = [float(v) for v in direction_lps]
    if geometry.norm(g) <= ZERO_VECTOR_LENGTH:
        return (0.0, 0.0, 0.0)
    r, positive = _axes(affine_lps)
    # Solve r c = g (columns r[0..2]) by Cramer's rule: c_i = det(r, column i = g) / det(r).
    det = geometry.det3(r[0], r[1], r[2])
    c = [geometry.det3(g, r[1], r[2]) / det,
         geometry.det3(r[0], g, r[2]) / det,
         geometry.det3(r[0], r[1], g) / det]
    if positive:
        c[0] = -c[0]
    return _clean(c)


def fsl_bvec_to_lps(bvec: Sequence[float] | FloatArray, affine_lps: ArrayLike) -> Vec3:
    """Inverse of :func:`fsl_bvec_for_affine`: an FSL bvec back to a patient-LPS direction."""
    c = [float(v) for v in bvec]
    r, positive = _axes(affine_lps)
    if positive:
        c[0] = -c[0]
    return _clean([sum(c[i] * r[i][axis] for i in range(3)) for axis in range(3)])


def fsl_bvec(direction_lps: Sequence[float] | FloatArray | None,
             orientation: Sequence[float]) -> Vec3:
    """FSL bvec for dicomvol's voxel axes (i = row, j = column, k = +normal).

    Parameters
    ----------
    direction_lps : sequence of 3 float or None
        Gradient direction in LPS; None (b = 0) gives (0, 0, 0).
    orientation : sequence of 6 float
        ImageOrientationPatient of the volume.

    Returns
    -------
    tuple of 3 float
        ``(-(g . row), g . col, g . normal)``: dicomvol's frame is right-handed
        (positive determinant), so FSL's convention negates x.
    """
    o = [float(v) for v in orientation]
    if len(o) != 6:
        raise UsageError("orientation must have 6 values (ImageOrientationPatient)")
    row, col = geometry.directions(o)
    normal = geometry.cross3(row, col)
    axes = [(row[a], col[a], normal[a]) for a in range(3)]  # rows of [row col normal]
    return fsl_bvec_for_affine(direction_lps, axes)


# --------------------------------------------------------------------------- tables


def plan_diffusion(plan: VolumePlan, sources: JobSources | None = None
                   ) -> list[Diffusion | None] | None:
    """The (b, LPS direction) of each volume of a 4D plan, from its first frame.

    None when the plan is not 4D, is resampled, or no volume carries a b > 0.
    The records carry what :func:`dicomvol.dicom.diffusion.read_diffusion` read
    at indexing; only records without it (none today) send the job back to the
    headers, from ``sources`` (read before the pixels, so that no file is
    opened twice).
    """
    if len(plan.frames) < 2 or plan.resample is not None:
        return None
    firsts = [vol[0] for vol in plan.frames]
    if all(f.diffusion_source for f in firsts):  # read at indexing by the same function
        found: list[Diffusion | None] = [
            (f.diffusion_b or 0.0, f.diffusion_direction) for f in firsts]
    else:
        from dicomvol.dicom.cache import JobSources

        sources = sources if sources is not None else JobSources()
        found = [_frame_diffusion(f, sources) for f in firsts]
    if not any(d is not None and d[0] > 0 for d in found):
        return None
    return found


def fsl_table(diffusions: list[Diffusion | None], affine: ArrayLike
              ) -> tuple[list[float], list[Vec3]]:
    """FSL b-values and b-vectors in the voxel axes of ``affine`` (see the module docstring).

    Vectors follow dcm2niix/FSL: components along the NIfTI voxel axes, x
    negated when the affine's determinant is positive; b = 0 volumes and
    volumes without diffusion information get b 0 and a zero vector.
    """
    bvals: list[float] = []
    bvecs: list[Vec3] = []
    for info in diffusions:
        if info is None:
            bvals.append(0.0)
            bvecs.append((0.0, 0.0, 0.0))
            continue
        b, direction = info
        bvals.append(float(b))
        bvecs.append(fsl_bvec_for_affine(direction, affine) if direction is not None
                     and b > 0 else (0.0, 0.0, 0.0))
    return bvals, bvecs


def _frame_diffusion(frame: FrameRecord, sources: JobSources) -> Diffusion | None:
    from dicomvol.dicom.diffusion import diffusion_of

    try:
        ds = sources.header(frame.path)
        frame_fg = None
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and frame.frame <= len(per_frame):
            frame_fg = per_frame[frame.frame - 1]
        return diffusion_of(ds, frame_fg)
    except HeaderError as exc:
        log.warning("%s: diffusion direction unavailable: %s", frame.rel, exc)
        return None


def sidecar_keys(plan: VolumePlan) -> dict[str, Any]:
    """Sidecar keys naming where the plan's diffusion encoding was read, and its derived kind.

    ``DiffusionGradientSource``: the header source of the b-values and vectors
    (one of :data:`dicomvol.dicom.diffusion.SOURCES`; a list when volumes differ),
    dcm2niix has no such key. ``DiffusionDerivedImage``: ``"trace"``, ``"ADC"``,
    ``"FA"`` or ``"eADC"`` for a derived image written apart from the DWI 4D.
    """
    frames = [vol[0] for vol in plan.frames]
    sources = sorted({f.diffusion_source for f in frames if f.diffusion_source})
    out: dict[str, Any] = {}
    if sources and any(f.diffusion_b for f in frames):
        out["DiffusionGradientSource"] = sources[0] if len(sources) == 1 else sources
    kinds = sorted({f.diffusion_derived for f in frames if f.diffusion_derived})
    if kinds:
        out["DiffusionDerivedImage"] = kinds[0] if len(kinds) == 1 else kinds
    return out

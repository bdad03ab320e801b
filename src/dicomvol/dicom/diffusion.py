"""Diffusion b-values and gradient directions from DICOM headers (standard and vendor tags).

Reading (:func:`diffusion_of`)
------------------------------
Every direction is returned in **patient LPS** coordinates as a unit vector
(``None`` for b = 0, isotropic/trace images or a zero vector). Sources, in
order:

1. **Standard** MR Diffusion macro: the MRDiffusionSequence (0018,9117) of the
   frame's per-frame functional groups (``frame_fg``), of the shared
   functional groups, or of the data set; else DiffusionBValue (0018,9087)
   at the top level. The direction is DiffusionGradientOrientation (0018,9089),
   directly or inside DiffusionGradientDirectionSequence (0018,9076), in
   patient coordinates (LPS) by definition. A present, non-zero direction is
   used whatever DiffusionDirectionality says (a weighted frame labelled NONE
   or ISOTROPIC that carries a direction, as reported for Siemens XA: dcm2niix
   reads the direction, measured); without one, ISOTROPIC or NONE gives no
   direction and BMATRIX the principal eigenvector of the b-matrix (sign
   arbitrary).
2. **Siemens** CSA image header (0029,xx10) read with nibabel's
   ``csareader``: ``B_value`` and ``DiffusionGradientDirection`` (LPS, the
   frame dcm2niix assumes too); without a direction, the principal
   eigenvector of ``B_matrix`` (sign arbitrary, as in nibabel's
   ``SiemensWrapper``); else the older private (0019,xx0C) b-value and
   (0019,xx0E) direction of creator ``SIEMENS MR HEADER``.
3. **Philips** private: b-value (2001,xx03) of ``Philips Imaging DD 001``,
   direction (2005,xxB0/B1/B2) of ``Philips MR Imaging DD 001`` (named RL, AP,
   FH; they are the LPS x, y, z components: on the corpus Philips DTI they
   equal the standard (0018,9089) of the same frame). For enhanced images the
   private elements are read from the frame's private item (2005,140F).
   Diffusion direction (2001,xx04) ``I`` (isotropic) gives no direction.
4. **GE** private: b-value = first value of (0043,xx39) (``GEMS_PARM_01``);
   values of 1e9 or more carry a flag offset and are taken modulo 1e9
   (dcm2niix: 1000015000 -> 15000). The direction (0019,xxBB/BC/BD)
   (``GEMS_ACQU_01``) is in the **image frame**, not the patient frame; it is
   mapped to LPS with the signed permutation dcm2niix applies (its
   ``geCorrectBvecs``), which depends on InPlanePhaseEncodingDirection
   (0018,1312) and on the slice plane (the dominant LPS axis of the slice
   normal). The table :data:`GE_IMAGE_TO_PATIENT` was measured against
   dcm2niix v1.0.20260724 for all six plane x phase-encoding cases (see
   ``tests/test_diffusion.py``); dcm2niix itself calls only axial COL
   validated. Without (0018,1312), COL is assumed (logged): dcm2niix then
   leaves the vector untransformed. As in dcm2niix, a GE vector of length
   between 0.03 and 0.97 scales the b-value by its squared length and is
   normalised. **GE directions are the least certain of all vendors here.**
5. **UIH** private (:func:`dicomvol.dicom.uih.uih_diffusion`): b-value (0065,xx09) and
   direction (0065,xx37) in the image frame (row, column, normal), both read before the
   standard attributes, whose (0018,9089) UIH fills unrotated (dcm2niix issue 836).

A standard b > 0 without a direction (DiffusionDirectionality neither ISOTROPIC
nor NONE) takes the vendor's direction: Siemens XA classic images keep it in
(0019,xx0E) only, XA enhanced frames maybe in a private functional group item
(as dcm2niix reads them). :func:`read_diffusion` also names the source it read
(:data:`SOURCES`, the sidecar's ``DiffusionGradientSource``).

Derived images (:func:`dicomvol.dicom.dwikind.derived_kind`): the trace (isotropic), ADC, FA and
exponential ADC images scanners append to a DTI series are named by their
ImageType / FrameType (TRACEW, ADC, FA, EADC), by DiffusionDirectionality
ISOTROPIC or the Philips flag (2001,xx04) ``I``, or (Philips, dcm2niix's rule) by b > 0
with a zero vector; the planner writes them apart from the DWI 4D. The FSL tables are
:mod:`dicomvol.metadata.diffusion`. numpy is imported on first use (``dicomvol._lazy``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import warnings
from typing import TYPE_CHECKING, Any

from dicomvol._typing import FloatArray, Vec3
from dicomvol.dicom.private import csa_header, csareader, private_value
from dicomvol.dicom.uih import uih_diffusion, uih_direction_to_lps, uih_orientation
from dicomvol.dicom.values import first_item, is_dataset, to_float, to_floats, vendor
from dicomvol.errors import HeaderError

if TYPE_CHECKING:  # pragma: no cover - pydicom only where a file needs it (leanimports)
    import numpy as np
    import pydicom
else:
    from dicomvol._lazy import numpy as np

log = logging.getLogger(__name__)
#: (b-value in s/mm^2, unit gradient direction in LPS or None).
Diffusion = tuple[float, Vec3 | None]

#: A b-value at or below this (s/mm^2) is b = 0 (dcm2niix uses FLT_EPSILON).
ZERO_B_VALUE = 1e-6
#: A direction shorter than this is no direction (b = 0 or trace image).
ZERO_VECTOR_LENGTH = 1e-6
#: Directions whose length differs from 1 by more than this are logged before normalising.
UNIT_LENGTH_TOLERANCE = 0.01
#: GE vectors with a length in this open interval scale the b-value by length**2 (dcm2niix).
GE_SCALED_VECTOR_RANGE = (0.03, 0.97)
#: GE b-values at or above this carry a flag offset and are taken modulo it.
GE_B_VALUE_OFFSET = 1e9

#: Where a diffusion encoding was read (the sidecar's ``DiffusionGradientSource``).
SOURCE_STANDARD = "DICOM standard (0018,9087/9089)"
SOURCE_CSA = "Siemens CSA image header (0029,xx10)"
SOURCE_SIEMENS = "Siemens private (0019,xx0C/xx0E)"
SOURCE_PHILIPS = "Philips private (2001,xx03; 2005,xxB0-B2)"
SOURCE_GE = "GE private (0043,xx39; 0019,xxBB-BD)"
SOURCE_CANON = "Canon ImageComments (0020,4000)"
SOURCE_UIH = "UIH private (0065,xx09/xx37)"
SOURCES = (SOURCE_STANDARD, SOURCE_CSA, SOURCE_SIEMENS, SOURCE_PHILIPS, SOURCE_GE, SOURCE_CANON,
           SOURCE_UIH)

#: Siemens CSA and private creators.
SIEMENS_MR_CREATOR = "SIEMENS MR HEADER"
#: Philips private creators of the b-value (group 2001) and direction (group 2005).
PHILIPS_IMAGING_CREATOR = "Philips Imaging DD 001"
PHILIPS_MR_CREATOR = "Philips MR Imaging DD 001"
PHILIPS_MR_CREATOR_005 = "Philips MR Imaging DD 005"
#: GE private creators of the direction (group 0019) and b-value (group 0043).
GE_ACQU_CREATOR = "GEMS_ACQU_01"
GE_PARM_CREATOR = "GEMS_PARM_01"

#: GE image-frame direction (BB, BC, BD) -> coefficients along (row, col, normal), as
#: ((source index, sign), ...) per (phase-encoding direction, slice plane). Measured
#: against dcm2niix v1.0.20260724 (gradient polarity as dcm2niix writes it).
GE_IMAGE_TO_PATIENT: dict[tuple[str, str], tuple[tuple[int, int], ...]] = {
    ("COL", "axial"): ((0, -1), (1, -1), (2, 1)),
    ("COL", "coronal"): ((0, -1), (1, 1), (2, 1)),
    ("COL", "sagittal"): ((0, 1), (1, 1), (2, -1)),
    ("ROW", "axial"): ((1, -1), (0, 1), (2, 1)),
    ("ROW", "coronal"): ((1, 1), (0, 1), (2, 1)),
    ("ROW", "sagittal"): ((1, 1), (0, -1), (2, -1)),
}
_PLANES = ("sagittal", "coronal", "axial")
#: What a GE direction without (0018,1312) is read as (``FrameRecord.assumed``).
GE_COL_ASSUMED = ("GE diffusion direction without InPlanePhaseEncodingDirection (0018,1312): "
                  "assuming COL")


# --------------------------------------------------------------------------- helpers


def _shared(ds: pydicom.Dataset) -> pydicom.Dataset | None:
    return first_item(ds, "SharedFunctionalGroupsSequence")


def _floats(value: Any, n: int) -> FloatArray | None:
    """``n`` floats from a multi-valued element, a list or raw bytes; None if not ``n``."""
    values = to_floats(value, n)
    return None if values is None else np.array(values, dtype=np.float64)


def _unit(vector: Any, source: str) -> Vec3 | None:  # a sequence or an array of 3
    if vector is None:
        return None
    x, y, z = (float(c) for c in vector)
    length = math.sqrt(x * x + y * y + z * z)  # NaN or inf when a component is
    if not math.isfinite(length) or length <= ZERO_VECTOR_LENGTH:
        return None
    if abs(length - 1.0) > UNIT_LENGTH_TOLERANCE:
        log.debug("%s diffusion direction of length %.4f normalised", source, length)
    return (x / length, y / length, z / length)


def _from_b_matrix(b_matrix: FloatArray) -> Vec3 | None:
    """Principal eigenvector of a 3 x 3 b-matrix (sign arbitrary, x >= 0 as in nibabel)."""
    with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM readers are experimental
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dwiparams
    b2q: Any = dwiparams.B2q  # untyped
    try:
        q = b2q(b_matrix, tol=1e-8)
    except ValueError:
        return None
    return _unit(np.asarray(q, dtype=np.float64), "b-matrix")


def _result(b: float, direction: Vec3 | None) -> Diffusion:
    if abs(b) <= ZERO_B_VALUE:
        return (0.0, None)
    if b < 0:
        log.warning("negative b-value %g: no direction", b)
        return (b, None)
    return (b, direction)


# --------------------------------------------------------------------------- standard


def _standard_item(ds: pydicom.Dataset,
                   frame_fg: pydicom.Dataset | None) -> pydicom.Dataset | None:
    for holder in (frame_fg, _shared(ds), ds):
        item = first_item(holder, "MRDiffusionSequence")
        if item is not None and "DiffusionBValue" in item:
            return item
    if "DiffusionBValue" in ds:
        return ds
    return None


def _standard(item: pydicom.Dataset) -> Diffusion | None:
    b = to_float(item.get("DiffusionBValue"))
    if b is None:
        return None
    directionality = str(item.get("DiffusionDirectionality", "")).strip().upper()
    holder = first_item(item, "DiffusionGradientDirectionSequence") or item
    vector = _unit(to_floats(holder.get("DiffusionGradientOrientation"), 3), "DICOM")
    if vector is not None:  # an explicit direction wins, whatever the directionality says
        if directionality in ("ISOTROPIC", "NONE"):
            log.debug("DiffusionDirectionality %s with a gradient direction: direction used",
                      directionality)
        return _result(b, vector)
    if directionality == "BMATRIX":
        bm = first_item(item, "DiffusionBMatrixSequence")
        if bm is not None:
            keys = ("DiffusionBValueXX", "DiffusionBValueXY", "DiffusionBValueXZ",
                    "DiffusionBValueYY", "DiffusionBValueYZ", "DiffusionBValueZZ")
            vals = [to_float(bm.get(k)) for k in keys]
            if all(v is not None for v in vals):
                xx, xy, xz, yy, yz, zz = (float(v) for v in vals if v is not None)
                matrix = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
                return _result(b, _from_b_matrix(matrix))
    return _result(b, None)


# --------------------------------------------------------------------------- vendors


def _siemens(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None = None
             ) -> tuple[Diffusion | None, str]:
    try:
        csa = csa_header(ds, "image")
    except HeaderError as exc:
        log.debug("unreadable Siemens CSA image header: %s", exc)
        csa = None
    if csa:
        reader = csareader()
        b = to_float(reader.get_b_value(csa))
        if b is not None:
            try:
                g = reader.get_g_vector(csa)
            except ValueError:
                g = None
            if g is not None:
                return _result(b, _unit(np.asarray(g, dtype=np.float64), "Siemens CSA")), \
                    SOURCE_CSA
            try:
                bm = reader.get_b_matrix(csa)
            except ValueError:
                bm = None
            if bm is not None and b > ZERO_B_VALUE:
                log.debug("Siemens direction from the CSA B_matrix: polarity unknown")
                return _result(b, _from_b_matrix(np.asarray(bm, dtype=np.float64))), SOURCE_CSA
            return _result(b, None), SOURCE_CSA
    for holder in (*_private_items(frame_fg), ds):
        b = to_float(private_value(holder, 0x0019, SIEMENS_MR_CREATOR, 0x0C))
        g = _floats(private_value(holder, 0x0019, SIEMENS_MR_CREATOR, 0x0E), 3)
        direction = _unit(g, "Siemens (0019,100E)")
        if b is not None:
            return _result(b, direction), SOURCE_SIEMENS
        if direction is not None:  # a direction for a b-value read elsewhere (XA enhanced)
            return (0.0, direction), SOURCE_SIEMENS
    return None, SOURCE_SIEMENS


#: Canon ImageComments such as ``b=1500(0.445,0.000,0.895)``.
_CANON_COMMENT = re.compile(r"b=\s*([-+\d.eE]+)\s*\(\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*,"
                            r"\s*([-+\d.eE]+)\s*\)")


def _canon_comment(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> Diffusion | None:
    """Canon's direction in ImageComments (newer software omits (0018,9089)), as dcm2niix reads it.

    The components (a, b, c) are in the image frame; dcm2niix's reading (validated by
    its authors on axial data, measured here against dcm2niix v1.0.20260724 on axial and
    oblique-axial series) is (-b, -a, c) along (row, column, normal).
    """
    found = _CANON_COMMENT.search(str(ds.get("ImageComments") or ""))
    orientation = _orientation(ds, frame_fg)
    if found is None or orientation is None:
        return None
    b, a1, a2, a3 = (float(v) for v in found.groups())
    row, col = orientation[:3], orientation[3:6]
    vector = -a2 * row - a1 * col + a3 * np.cross(row, col)
    return _result(b, _unit(vector, "Canon ImageComments"))


def _private_items(frame_fg: pydicom.Dataset | None) -> list[pydicom.Dataset]:
    """The items of the private sequences of a frame's functional groups (XA keeps some there)."""
    if frame_fg is None:
        return []
    if hasattr(frame_fg, "private_items"):  # a lean item (dicom/leanmf.py)
        return list(frame_fg.private_items())
    items: list[pydicom.Dataset] = []
    for elem in frame_fg:
        if elem.tag.is_private and elem.VR == "SQ":
            items.extend(item for item in elem.value if is_dataset(item))
    return items


def _philips_holder(frame_fg: pydicom.Dataset | None) -> pydicom.Dataset | None:
    if frame_fg is None:
        return None
    seq = private_value(frame_fg, 0x2005, PHILIPS_MR_CREATOR_005, 0x0F)
    if seq is None or isinstance(seq, str | bytes) or len(seq) == 0:
        return None
    item = seq[0]
    return item if is_dataset(item) else None


def _philips(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> Diffusion | None:
    for holder in (_philips_holder(frame_fg), ds):
        if holder is None:
            continue
        b = to_float(private_value(holder, 0x2001, PHILIPS_IMAGING_CREATOR, 0x03))
        if b is None:
            continue
        kind = private_value(holder, 0x2001, PHILIPS_IMAGING_CREATOR, 0x04)
        if isinstance(kind, bytes):
            kind = kind.decode("ascii", errors="ignore")
        if str(kind or "").strip().upper() == "I":
            return _result(b, None)
        comps = [to_float(private_value(holder, 0x2005, PHILIPS_MR_CREATOR, off))
                 for off in (0xB0, 0xB1, 0xB2)]
        if any(c is None for c in comps):
            return _result(b, None)
        vector = np.array([c for c in comps if c is not None], dtype=np.float64)
        return _result(b, _unit(vector, "Philips (2005,10B0-B2)"))
    return None


def _orientation(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> FloatArray | None:
    for holder in (frame_fg, _shared(ds)):
        item = first_item(holder, "PlaneOrientationSequence")
        if item is not None:
            iop = _floats(item.get("ImageOrientationPatient"), 6)
            if iop is not None:
                return iop
    return _floats(ds.get("ImageOrientationPatient"), 6)


def _phase_encoding(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> str | None:
    for holder in (frame_fg, _shared(ds)):
        item = first_item(holder, "MRFOVGeometrySequence")
        if item is not None and item.get("InPlanePhaseEncodingDirection"):
            return str(item.InPlanePhaseEncodingDirection).strip().upper()
    value = ds.get("InPlanePhaseEncodingDirection")
    return str(value).strip().upper() if value else None


def ge_b_value(raw: float) -> float:
    """GE (0043,xx39) first value as a b-value: values >= 1e9 are taken modulo 1e9."""
    return math.fmod(raw, GE_B_VALUE_OFFSET) if raw >= GE_B_VALUE_OFFSET else raw


def ge_direction_to_lps(vector: np.typing.ArrayLike, orientation: np.typing.ArrayLike,
                        phase_encoding: str) -> FloatArray:
    """GE image-frame direction (BB, BC, BD) to patient LPS (see :data:`GE_IMAGE_TO_PATIENT`).

    Parameters
    ----------
    vector : sequence of 3 float
        (0019,xxBB), (0019,xxBC), (0019,xxBD).
    orientation : sequence of 6 float
        ImageOrientationPatient.
    phase_encoding : {"COL", "ROW"}
        InPlanePhaseEncodingDirection (only the first letter is used).
    """
    pe = "ROW" if phase_encoding.strip().upper().startswith("R") else "COL"
    o = np.asarray(orientation, dtype=np.float64)
    row, col = o[:3], o[3:6]
    normal = np.cross(row, col)
    plane = _PLANES[int(np.argmax(np.abs(normal)))]
    v = np.asarray(vector, dtype=np.float64)
    coeffs = [sign * v[src] for src, sign in GE_IMAGE_TO_PATIENT[(pe, plane)]]
    out: FloatArray = coeffs[0] * row + coeffs[1] * col + coeffs[2] * normal
    return out


def _ge(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None) -> Diffusion | None:
    raw_b = to_float(private_value(ds, 0x0043, GE_PARM_CREATOR, 0x39))
    if raw_b is None:
        return None
    b = ge_b_value(raw_b)
    comps = [to_float(private_value(ds, 0x0019, GE_ACQU_CREATOR, off))
             for off in (0xBB, 0xBC, 0xBD)]
    if b <= ZERO_B_VALUE or any(c is None for c in comps):
        return _result(b, None)
    if (orientation := _orientation(ds, frame_fg)) is None:
        raise HeaderError("cannot place a GE diffusion direction: ImageOrientationPatient "
                          "missing")
    pe = _phase_encoding(ds, frame_fg)
    if pe is None:  # the planner warns once per series (FrameRecord.assumed)
        log.debug(GE_COL_ASSUMED)
        pe = "COL"
    return _ge_encoding(b, tuple(c for c in comps if c is not None),
                        tuple(float(x) for x in orientation), pe)


@functools.lru_cache(maxsize=4096)
def _ge_encoding(b: float, comps: tuple[float, ...], orientation: tuple[float, ...],
                 pe: str) -> Diffusion:
    """(b, LPS direction) of a GE vector; cached: the slices of a volume share it."""
    v = np.array(comps, dtype=np.float64)
    length = float(np.linalg.norm(v))
    if length <= ZERO_VECTOR_LENGTH:
        return _result(b, None)
    low, high = GE_SCALED_VECTOR_RANGE
    if low < length < high:
        b *= length * length
        log.debug("GE direction of length %.4f: b-value scaled to %g", length, b)
    return _result(b, _unit(ge_direction_to_lps(v / length, orientation, pe), "GE"))


def diffusion_of(ds: pydicom.Dataset,
                 frame_fg: pydicom.Dataset | None = None) -> Diffusion | None:
    """The b-value and gradient direction (patient LPS) of an image or of one frame.

    Parameters
    ----------
    ds : pydicom.Dataset
        An MR image header (classic or enhanced).
    frame_fg : pydicom.Dataset, optional
        For enhanced images, the frame's item of the
        PerFrameFunctionalGroupsSequence (5200,9230).

    Returns
    -------
    tuple or None
        ``(b_value, direction)``: b in s/mm^2 and a unit LPS vector, or None as
        direction for b = 0, isotropic (trace) images and zero vectors. None
        when the header carries no diffusion information. The sources and
        vendor rules are listed in the module docstring.

    Raises
    ------
    dicomvol.errors.HeaderError
        A GE direction without ImageOrientationPatient to place it.
    """
    found = read_diffusion(ds, frame_fg)
    return None if found is None else found[0]


def read_diffusion(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None = None
                   ) -> tuple[Diffusion, str] | None:
    """:func:`diffusion_of` with the source it read: one of :data:`SOURCES`.

    A standard b > 0 without a direction (DiffusionDirectionality neither
    ISOTROPIC nor NONE) takes the vendor's private direction when there is one
    (Siemens XA "interoperable" classic images carry the b-value in (0018,9087)
    and the direction only in (0019,xx0E), newer Canon software only in
    ImageComments, as dcm2niix reads them).
    """
    item = _standard_item(ds, frame_fg)
    standard = _standard(item) if item is not None else None
    maker = vendor(ds)
    if maker == "UIH" and (uih := _uih(ds, standard)) is not None:
        return uih, SOURCE_UIH
    if standard is not None and not _lacks_direction(standard, item):
        return standard, SOURCE_STANDARD
    private: Diffusion | None = None
    source = ""
    if maker == "Siemens":
        private, source = _siemens(ds, frame_fg)
    elif maker == "Philips":
        private, source = _philips(ds, frame_fg), SOURCE_PHILIPS
    elif maker == "GE":
        private, source = _ge(ds, frame_fg), SOURCE_GE
    elif maker in ("Canon", "Toshiba") and standard is not None:
        private, source = _canon_comment(ds, frame_fg), SOURCE_CANON
    if standard is None:
        return None if private is None else (private, source)
    if private is not None and private[1] is not None:
        log.debug("standard b = %g without a direction: %s direction used", standard[0], source)
        return (standard[0], private[1]), source
    return standard, SOURCE_STANDARD


def _uih(ds: pydicom.Dataset, standard: Diffusion | None) -> Diffusion | None:
    """UIH's private encoding (:func:`~dicomvol.dicom.uih.uih_diffusion`), else None."""
    b, vector = uih_diffusion(ds)
    if b is None and vector is not None and standard is not None:
        b = standard[0]
    if b is None:
        return None
    if vector is None:
        return _result(b, standard[1] if standard is not None else None)
    if (orientation := uih_orientation(ds)) is None:
        raise HeaderError("UIH direction (0065,xx37) without ImageOrientationPatient")
    return _result(b, _unit(uih_direction_to_lps(vector, orientation), "UIH"))


def assumed_phase_encoding(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None,
                           source: str, direction: Vec3 | None) -> str | None:
    """:data:`GE_COL_ASSUMED` when a GE direction was placed without (0018,1312), else None."""
    if source != SOURCE_GE or direction is None or _phase_encoding(ds, frame_fg) is not None:
        return None
    return GE_COL_ASSUMED


def _lacks_direction(found: Diffusion, item: Any) -> bool:
    directionality = str(item.get("DiffusionDirectionality", "")).strip().upper()
    return found[0] > ZERO_B_VALUE and found[1] is None and directionality not in (
        "ISOTROPIC", "NONE")


def is_isotropic(ds: pydicom.Dataset, frame_fg: pydicom.Dataset | None = None) -> bool:
    """DiffusionDirectionality ISOTROPIC, or the Philips direction flag (2001,xx04) ``I``."""
    item = _standard_item(ds, frame_fg)
    if item is not None and str(item.get("DiffusionDirectionality", "")).strip().upper() == \
            "ISOTROPIC":
        return True
    if vendor(ds) != "Philips":
        return False
    for holder in (_philips_holder(frame_fg), ds):
        if holder is not None:
            kind = private_value(holder, 0x2001, PHILIPS_IMAGING_CREATOR, 0x04)
            if isinstance(kind, bytes):
                kind = kind.decode("ascii", errors="ignore")
            if kind is not None:
                return str(kind).strip().upper() == "I"
    return False

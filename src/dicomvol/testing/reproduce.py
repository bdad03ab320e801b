"""Which of dcm2niix's volumes dicomvol reproduces: same world grid, same values, same bval/bvec.

Used by the differential diffusion tests and by ``benchmarks/reproduced.py`` (the
fraction over the corpus). Independent of dicomvol's code paths: it reads the
written NIfTI files with nibabel and the FSL tables as text.

A dcm2niix volume is *reproduced* when some dicomvol output holds a volume

* on the same world grid: dicomvol's voxel axes are a signed permutation of
  dcm2niix's, and the affines put every voxel at the same point (to
  :data:`AFFINE_TOL_MM` at the corners);
* with the same values (to :data:`VALUE_RTOL` of the value range), after
  undoing dcm2niix's Philips floating-point scaling (its sidecar's
  ``UsePhilipsFloatNotDisplayScaling``: FP * RS * SS = the DICOM value);
* with the same b-value and the same physical gradient axis (up to sign): each
  tool's FSL bvec mapped back to patient LPS through its own affine (FSL:
  components along the voxel axes, x negated when the affine's determinant is
  positive). A dcm2niix
  volume without a bval (no table written) needs a dicomvol volume that has b = 0
  or no table either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

#: World-space tolerance between two affines of one grid (dcm2niix stores float32), mm.
AFFINE_TOL_MM = 1e-3
#: Relative tolerance of voxel values (of the larger value range).
VALUE_RTOL = 1e-4
#: Tolerances of b-values (s/mm^2) and LPS gradient components.
BVAL_TOL = 0.5
BVEC_TOL = 1e-3
#: RAS <-> LPS.
FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(eq=False)
class Image:
    """A written NIfTI with its FSL table (None when there is none) and sidecar."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def img(self) -> Any:
        return nib.load(str(self.path))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.img.shape)

    @property
    def n_volumes(self) -> int:
        return int(np.prod(self.shape[3:], dtype=np.int64))

    @cached_property
    def affine(self) -> np.ndarray:
        """Voxel -> LPS (the sform when coded, as both tools write it)."""
        sform, code = self.img.get_sform(coded=True)
        ras = np.asarray(sform if code else self.img.affine, dtype=np.float64)
        out: np.ndarray = FLIP @ ras
        return out

    @cached_property
    def data(self) -> np.ndarray:
        """Values as float64, always 4D (X, Y, Z, volumes); an RGB voxel as R * 65536 + G * 256
        + B (NIfTI RGB24 has no scaling, so equal colours give equal numbers)."""
        raw = np.asanyarray(self.img.dataobj)
        if raw.dtype.names:  # RGB24: a structured (R, G, B) uint8 dtype
            arr = sum(raw[name].astype(np.float64) * 256.0 ** (2 - n)
                      for n, name in enumerate(raw.dtype.names))
            return np.asarray(arr).reshape((*raw.shape[:3], -1))
        arr = np.asarray(self.img.get_fdata(dtype=np.float64))
        factor = philips_factor(self.meta)
        return (arr * factor).reshape((*arr.shape[:3], -1))

    @cached_property
    def table(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(bvals (N,), LPS gradient directions (N, 3)) or None without a .bval file."""
        stem = self.path.name.removesuffix(".gz").removesuffix(".nii")
        bval, bvec = self.path.with_name(stem + ".bval"), self.path.with_name(stem + ".bvec")
        if not bval.is_file() or not bvec.is_file():
            return None
        bvals = np.atleast_1d(np.loadtxt(bval))
        vecs = np.loadtxt(bvec).reshape(3, -1)
        return bvals, np.array([fsl_to_lps(vecs[:, t], self.affine) for t in range(len(bvals))])


def philips_factor(meta: dict[str, Any]) -> float:
    """RS * SS when dcm2niix wrote Philips FP values (FP * RS * SS = DICOM value), else 1."""
    if meta.get("UsePhilipsFloatNotDisplayScaling") == 1 and "PhilipsRescaleSlope" in meta:
        return float(meta["PhilipsRescaleSlope"]) * float(meta["PhilipsScaleSlope"])
    return 1.0


def fsl_to_lps(bvec: Sequence[float] | np.ndarray, affine_lps: np.ndarray) -> np.ndarray:
    """An FSL bvec back to a patient-LPS unit vector (zero stays zero)."""
    m = affine_lps[:3, :3]
    axes = m / np.linalg.norm(m, axis=0)
    c = np.array(bvec, dtype=np.float64)
    if np.linalg.det(m) > 0:
        c[0] = -c[0]
    out: np.ndarray = axes @ c
    return out


def load_images(folder: Path, dcm2niix: bool = False) -> list[Image]:
    """Every NIfTI in ``folder`` with its sidecar (dcm2niix's factor only for dcm2niix)."""
    images = []
    for path in sorted([*folder.glob("*.nii"), *folder.glob("*.nii.gz")]):
        side = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".json")
        meta = json.loads(side.read_text()) if side.is_file() and dcm2niix else {}
        images.append(Image(path, meta))
    return images


def axis_map(a: Image, b: Image) -> tuple[list[int], list[bool]] | None:
    """b's axis q = a's axis perm[q] (flipped where flips[q]), when both hold one world grid."""
    m = np.linalg.solve(b.affine, a.affine)  # a index -> b index
    r = np.round(m[:3, :3])
    if np.abs(m[:3, :3] - r).max() > 1e-3 or not np.array_equal(np.abs(r).sum(0), np.ones(3)) \
            or not np.array_equal(np.abs(r).sum(1), np.ones(3)):
        return None
    perm = [int(np.flatnonzero(r[q])[0]) for q in range(3)]
    flips = [bool(r[q, perm[q]] < 0) for q in range(3)]
    if [a.shape[p] for p in perm] != list(b.shape[:3]):
        return None
    corners = np.array([[i, j, k, 1.0] for i in (0, a.shape[0] - 1)
                        for j in (0, a.shape[1] - 1) for k in (0, a.shape[2] - 1)])
    mapped = corners @ m.T
    world_a = corners @ a.affine.T
    world_b = mapped @ b.affine.T
    if np.abs(world_a - world_b).max() > AFFINE_TOL_MM:
        return None
    expect = np.array([(a.shape[perm[q]] - 1) if flips[q] else 0 for q in range(3)], float)
    if np.abs(m[:3, 3] - expect).max() > 1e-2:
        return None
    return perm, flips


def in_b_axes(data: np.ndarray, perm: list[int], flips: list[bool]) -> np.ndarray:
    """a's 4D array in b's voxel axes."""
    out = np.transpose(data, (*perm, 3))
    for q, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=q)
    return out


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(float(np.ptp(a)), float(np.ptp(b)), 1.0)
    return bool(np.abs(a - b).max() <= VALUE_RTOL * scale)


def same_encoding(a: Image, t: int, b: Image, u: int) -> bool:
    """Same b-value and LPS gradient axis (a missing table counts as b = 0).

    Up to sign: the diffusion signal is the same for g and -g (dcm2niix itself
    writes vectors opposite to dicm2nii's for GE), and without
    InPlanePhaseEncodingDirection the GE vector's polarity is not in the headers.
    """
    ta, tb = a.table, b.table
    ba, ga = (0.0, np.zeros(3)) if ta is None else (float(ta[0][t]), ta[1][t])
    bb, gb = (0.0, np.zeros(3)) if tb is None else (float(tb[0][u]), tb[1][u])
    return abs(ba - bb) <= BVAL_TOL and bool(min(np.abs(ga - gb).max(),
                                                 np.abs(ga + gb).max()) <= BVEC_TOL)


def reproduced(reference: Sequence[Image], ours: Sequence[Image]) -> list[tuple[str, int, bool]]:
    """For every volume of every reference (dcm2niix) image: (name, volume, reproduced?)."""
    out: list[tuple[str, int, bool]] = []
    for ref in reference:
        found = [False] * ref.n_volumes
        for mine in ours:
            amap = axis_map(ref, mine)
            if amap is None:
                continue
            moved = in_b_axes(ref.data, *amap)
            for t in range(ref.n_volumes):
                if found[t]:
                    continue
                found[t] = any(same_values(moved[..., t], mine.data[..., u])
                               and same_encoding(ref, t, mine, u)
                               for u in range(mine.n_volumes))
        out.extend((ref.path.name, t, ok) for t, ok in enumerate(found))
    return out

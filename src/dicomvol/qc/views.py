"""Three orthogonal views of a volume, drawn in patient orientation, with their letters.

A view is one voxel plane through the volume's centre (i, j or k held at
``n // 2``), flipped and transposed, never interpolated, so that it is drawn
the way radiologists look at that patient plane:

=========  ============  ============  ===========================
plane      screen right  screen down   fixed patient axis
=========  ============  ============  ===========================
axial      patient L     patient P     S (seen from the feet)
coronal    patient L     patient I     P (seen from the front)
sagittal   patient P     patient I     L (seen from the left)
=========  ============  ============  ===========================

Each voxel axis is assigned to the patient axis it runs closest to (the
assignment maximising the summed cosines, as for ``--reorient``). The letters
at the four edges are computed from the affine itself: the patient direction
each screen edge points to, named by its dominant LPS component and any other
component of at least :data:`LETTER_MIN_COMPONENT` (an oblique edge reads
``LA``, ``SP``, ...). A volume whose affine is wrong therefore shows its
anatomy upside down or mirrored next to the standard letters, and an oblique
or sheared grid shows oblique letters. Geometry is LPS, index (i, j, k).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: The letters of the + and - direction of each LPS axis.
AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))
#: A secondary direction letter is named when its component is at least this (about 11.5°).
LETTER_MIN_COMPONENT = 0.2
#: Longest side of a thumbnail (px); the other side follows the physical aspect ratio.
THUMB_BOX_PX = 192
#: Largest shrink block (pixels) that :func:`resize` averages by gathering only the blocks
#: it shows; larger blocks are averaged over the whole image at once.
MAX_GATHERED_BLOCK = 16
#: Plane name -> (fixed LPS axis, LPS unit vector screen-right, LPS unit vector screen-down).
PLANES: dict[str, tuple[int, tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": (2, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": (1, (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": (0, (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
PLANE_ORDER = ("axial", "coronal", "sagittal")
#: Voxel axis names, for captions.
AXIS_NAMES = ("i", "j", "k")


@dataclass(frozen=True)
class Letters:
    """The patient direction each screen edge points to (e.g. ``R``, ``L``, ``A``, ``P``)."""

    left: str
    right: str
    top: str
    bottom: str

    def as_tuple(self) -> tuple[str, str, str, str]:
        """(left, right, top, bottom)."""
        return (self.left, self.right, self.top, self.bottom)


@dataclass(frozen=True)
class ViewSpec:
    """How one voxel plane is drawn.

    Attributes
    ----------
    plane : {"axial", "coronal", "sagittal"}
        The patient plane this voxel plane is closest to.
    fixed_axis : int
        Voxel axis (0 = i, 1 = j, 2 = k) held at ``index``.
    index : int
        The centre index ``n // 2`` along ``fixed_axis``.
    row_axis, col_axis : int
        Voxel axes running down and across the screen.
    row_flip, col_flip : bool
        Whether that axis runs against the screen direction.
    row_mm, col_mm : float
        Voxel step lengths (mm) along the screen rows and columns.
    letters : Letters
        From the affine's directions.
    """

    plane: str
    fixed_axis: int
    index: int
    row_axis: int
    col_axis: int
    row_flip: bool
    col_flip: bool
    row_mm: float
    col_mm: float
    letters: Letters

    @property
    def caption(self) -> str:
        """e.g. ``axial, k = 67``."""
        return f"{self.plane}, {AXIS_NAMES[self.fixed_axis]} = {self.index}"


def direction_letters(vector: np.ndarray) -> str:
    """Letters of an LPS direction: dominant first, then components >= LETTER_MIN_COMPONENT.

    Parameters
    ----------
    vector : ndarray of shape (3,)
        Any non-zero LPS vector (normalised here).
    """
    v = np.asarray(vector, dtype=np.float64)
    v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v), kind="stable")
    letters = [AXIS_LETTERS[int(order[0])][0 if v[order[0]] > 0 else 1]]
    for axis in order[1:]:
        if abs(v[axis]) >= LETTER_MIN_COMPONENT:
            letters.append(AXIS_LETTERS[int(axis)][0 if v[axis] > 0 else 1])
    return "".join(letters)


def axis_assignment(affine: np.ndarray) -> tuple[int, int, int]:
    """For each voxel axis, the LPS axis it runs closest to (a permutation of 0, 1, 2).

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k, 1) -> LPS mm; a sheared column is fine.
    """
    cosines = np.abs(_unit_columns(affine))  # [lps axis, voxel axis]
    best = max(itertools.permutations(range(3)),
               key=lambda p: sum(cosines[p[v], v] for v in range(3)))
    return (int(best[0]), int(best[1]), int(best[2]))


def _unit_columns(affine: np.ndarray) -> np.ndarray:
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    norms[norms == 0] = 1.0
    units: np.ndarray = m / norms
    return units


def view_specs(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[ViewSpec, ...]:
    """The axial, coronal and sagittal views of a grid, in that order.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel (i, j, k, 1) -> LPS mm.
    shape : tuple of int
        (X, Y, Z[, T]); only the first three count.
    """
    units = _unit_columns(affine)
    steps = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    to_lps = axis_assignment(affine)
    voxel_of = {lps: v for v, lps in enumerate(to_lps)}
    specs = []
    for plane in PLANE_ORDER:
        fixed_lps, right, down = PLANES[plane]
        fixed = voxel_of[fixed_lps]
        col = voxel_of[int(np.argmax(np.abs(right)))]
        row = voxel_of[int(np.argmax(np.abs(down)))]
        col_flip = float(units[:, col] @ np.array(right)) < 0
        row_flip = float(units[:, row] @ np.array(down)) < 0
        screen_right = units[:, col] * (-1.0 if col_flip else 1.0)
        screen_down = units[:, row] * (-1.0 if row_flip else 1.0)
        letters = Letters(left=direction_letters(-screen_right),
                          right=direction_letters(screen_right),
                          top=direction_letters(-screen_down),
                          bottom=direction_letters(screen_down))
        specs.append(ViewSpec(plane, fixed, int(shape[fixed]) // 2, row, col, row_flip,
                              col_flip, float(steps[row]), float(steps[col]), letters))
    return tuple(specs)


def plane_axes(fixed_axis: int) -> tuple[int, int]:
    """The two voxel axes of a plane with ``fixed_axis`` held, ascending."""
    a, b = (axis for axis in range(3) if axis != fixed_axis)
    return a, b


def orient(plane: np.ndarray, spec: ViewSpec) -> np.ndarray:
    """A voxel plane as drawn on screen.

    Parameters
    ----------
    plane : ndarray of shape (A, B)
        The plane with ``spec.fixed_axis`` held, indexed by the other two voxel
        axes in ascending order (e.g. ``data[:, j, :]`` for a fixed j).

    Returns
    -------
    ndarray of shape (rows, columns)
        Row 0 at the top of the screen, column 0 at the left.
    """
    first, _ = plane_axes(spec.fixed_axis)
    out = plane if spec.row_axis == first else plane.T
    if spec.row_flip:
        out = out[::-1, :]
    if spec.col_flip:
        out = out[:, ::-1]
    return out


def thumb_size(shape: tuple[int, int], row_mm: float, col_mm: float,
               box: int = THUMB_BOX_PX) -> tuple[int, int]:
    """(height, width) in pixels of a view whose longer physical side is ``box`` pixels."""
    height_mm, width_mm = shape[0] * max(row_mm, 1e-6), shape[1] * max(col_mm, 1e-6)
    scale = box / max(height_mm, width_mm)
    return max(1, round(height_mm * scale)), max(1, round(width_mm * scale))


def resize(image: np.ndarray, height: int, width: int, smooth: bool = True) -> np.ndarray:
    """``image`` at (height, width): block means when shrinking by >= 2 (``smooth``), then nearest.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Values (``smooth``) or labels (``smooth=False``: nearest only).
    """
    h, w = image.shape
    fy, fx = (max(1, h // height), max(1, w // width)) if smooth else (1, 1)
    # the blocks the nearest-neighbour step picks (block means of the others are never seen)
    hb, wb = h // fy, w // fx
    rows = np.minimum((np.arange(height) + 0.5) * hb / height, hb - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * wb / width, wb - 1).astype(np.intp)
    if fy == 1 and fx == 1:
        return np.asarray(image)[np.ix_(rows, cols)]
    source = np.asarray(image)
    if fy * fx > MAX_GATHERED_BLOCK:  # large shrink: whole-image block means are cheaper
        blocks = np.asarray(source[:hb * fy, :wb * fx], dtype=np.float32)
        means: np.ndarray = blocks.reshape(hb, fy, wb, fx).mean(axis=(1, 3))
        return means[np.ix_(rows, cols)]
    total = np.zeros((height, width), dtype=np.float32)
    for dy in range(fy):
        for dx in range(fx):
            total += source[np.ix_(rows * fy + dy, cols * fx + dx)]
    return total * np.float32(1.0 / (fy * fx))

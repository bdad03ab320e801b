"""The few voxels a QC thumbnail needs: centre planes (and MIPs) of the first and last volume.

Taken while a job holds the pixels, never by reading a volume again: from
an array in memory (:func:`sample_array`) or slice by slice while the
streaming NIfTI writer passes each slice by (:class:`SliceSampler`, given to
:func:`dicomvol.io.stream.stream_nifti` as its ``on_slice``). Both give the
same :class:`Sample` for the same volume (tested). Memory: three planes per
time point shown (plus three projections for PET).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Modalities whose views include maximum-intensity projections.
MIP_MODALITIES = frozenset({"PT", "NM"})


def time_points(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The volumes shown: the only one of a 3D image, the first and last of a 4D one."""
    if len(shape) < 4 or shape[3] <= 1:
        return (0,)
    return (0, int(shape[3]) - 1)


@dataclass
class Sample:
    """Centre planes of a volume, in modality values.

    Attributes
    ----------
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T) of the volume sampled.
    planes : dict
        ``(t, fixed_axis) -> ndarray``: the plane through the centre index
        ``n // 2`` of voxel axis ``fixed_axis`` (0 = i, 1 = j, 2 = k), indexed by
        the two other axes in ascending order: shape (Y, Z), (X, Z) or (X, Y).
    mips : dict
        The same keys: maxima along ``fixed_axis`` (empty unless asked for).
    """

    shape: tuple[int, ...]
    planes: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    mips: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    @property
    def times(self) -> tuple[int, ...]:
        """The time points sampled."""
        return time_points(self.shape)


def sample_array(data: np.ndarray, scl_slope: float = 1.0, scl_inter: float = 0.0,
                 mip: bool = False) -> Sample:
    """The sample of an array in memory.

    Parameters
    ----------
    data : ndarray of shape (X, Y, Z) or (X, Y, Z, T)
        Stored values; modality values are ``data * scl_slope + scl_inter``.
    mip : bool
        Also take the maximum-intensity projections.
    """
    shape = tuple(int(n) for n in data.shape)
    return sample_volumes(shape, lambda t: data[..., t] if data.ndim == 4 else data,
                          scl_slope, scl_inter, mip)


def sample_volumes(shape: tuple[int, ...], volume: Callable[[int], np.ndarray],
                   scl_slope: float = 1.0, scl_inter: float = 0.0,
                   mip: bool = False) -> Sample:
    """The sample of a volume read one time point at a time.

    Parameters
    ----------
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T).
    volume : callable
        ``volume(t)`` gives volume t as an ndarray of shape (X, Y, Z); called
        once for each time point shown.
    """
    out = Sample(tuple(int(n) for n in shape))
    cx, cy, cz = (n // 2 for n in out.shape[:3])
    for t in out.times:
        vol = volume(t)
        raw = {0: vol[cx, :, :], 1: vol[:, cy, :], 2: vol[:, :, cz]}
        for axis, plane in raw.items():
            out.planes[(t, axis)] = _scaled(plane, scl_slope, scl_inter)
            if mip:
                out.mips[(t, axis)] = _scaled(np.max(vol, axis=axis), scl_slope, scl_inter)
    return out


def _scaled(stored: np.ndarray, slope: float, inter: float) -> np.ndarray:
    if stored.dtype.names == ("R", "G", "B"):  # an RGB24 volume: its luma (BT.601)
        stored = (0.299 * stored["R"] + 0.587 * stored["G"] + 0.114 * stored["B"])
    values = np.asarray(stored, dtype=np.float32)
    if slope != 1.0 or inter != 0.0:
        values = values * np.float32(slope) + np.float32(inter)
    return np.array(values, dtype=np.float32)  # own memory, not a view of the volume


class SliceSampler:
    """Collects a :class:`Sample` from slices passed one by one, in file order.

    Call it with ``(n, plane)`` for each slice: ``n`` counts slices k fastest,
    then volumes t; ``plane`` has shape (X, Y) and holds stored values. ``n == 0``
    starts over (the streaming writer may restart with another pixel mode).

    Parameters
    ----------
    shape : tuple of int
        (X, Y, Z) or (X, Y, Z, T) of the volume being written.
    mip : bool
        Also accumulate the maximum-intensity projections.
    """

    def __init__(self, shape: tuple[int, ...], mip: bool = False) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.mip = mip
        self._reset()

    def _reset(self) -> None:
        self._planes: dict[tuple[int, int], np.ndarray] = {}
        self._mips: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, n: int, plane: np.ndarray) -> None:
        """Take what the sample needs from slice ``n``."""
        if n == 0:
            self._reset()
        nx, ny, nz = self.shape[:3]
        t, k = divmod(n, nz)
        if t not in time_points(self.shape):
            return
        for axis, rows in ((0, ny), (1, nx)):
            if (t, axis) not in self._planes:
                self._planes[(t, axis)] = np.zeros((rows, nz), dtype=plane.dtype)
        self._planes[(t, 0)][:, k] = plane[nx // 2, :]
        self._planes[(t, 1)][:, k] = plane[:, ny // 2]
        if k == nz // 2:
            self._planes[(t, 2)] = np.array(plane)
        if self.mip:
            self._project(t, k, plane)

    def _project(self, t: int, k: int, plane: np.ndarray) -> None:
        nx, ny, nz = self.shape[:3]
        if (t, 2) not in self._mips:
            self._mips[(t, 0)] = np.zeros((ny, nz), dtype=plane.dtype)
            self._mips[(t, 1)] = np.zeros((nx, nz), dtype=plane.dtype)
            self._mips[(t, 2)] = np.array(plane)
        else:
            np.maximum(self._mips[(t, 2)], plane, out=self._mips[(t, 2)])
        self._mips[(t, 0)][:, k] = plane.max(axis=0)
        self._mips[(t, 1)][:, k] = plane.max(axis=1)

    def result(self, scl_slope: float = 1.0, scl_inter: float = 0.0) -> Sample:
        """The sample, in modality values ``stored * scl_slope + scl_inter``."""
        out = Sample(self.shape)
        out.planes = {key: _scaled(v, scl_slope, scl_inter) for key, v in self._planes.items()}
        out.mips = {key: _scaled(v, scl_slope, scl_inter) for key, v in self._mips.items()}
        return out

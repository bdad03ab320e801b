"""Stream a planned volume straight into a NIfTI file, slice by slice.

NIfTI stores voxels in Fortran order, so slice k of volume t is one
contiguous run of bytes: a slice can be written as soon as it is decoded.
Memory is then one interpreter plus a few slices, however large the volume
(dcm2niix holds the whole volume). Used by ``convert`` for single-frame series
written as NIfTI without SUV, reorientation or resampling; everything else
goes through :func:`dicomvol.assemble.read_volume`. Both paths share the
pixel-mode choice, the decoders and the placement code, and write identical
files (tested).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from dicomvol.assemble import (
    PixelMode,
    _decode,
    _native_ok,
    _Overflow,
    _place,
    pixel_mode,
    stored_dtype,
)
from dicomvol.atomic import atomic_path
from dicomvol.plan import VolumePlan
from dicomvol.records import FrameRecord
from dicomvol.volume import Volume

#: Slices decoded ahead of the writer per thread (bounds memory).
_READ_AHEAD = 4


def can_stream(plan: VolumePlan) -> bool:
    """True when every frame is a single-frame file slice (no multi-frame, no mosaic)."""
    return plan.resample is None and all(
        f.number_of_frames == 1 and f.tile is None for f in plan.all_frames)


def stream_nifti(plan: VolumePlan, path: str | os.PathLike[str], compress: bool,
                 threads: int = 1) -> Volume:
    """Write ``plan`` to ``path`` (atomically) without holding the whole volume.

    Returns
    -------
    Volume
        A header-only volume (``data`` is a zero-stride placeholder of the
        right shape and dtype) carrying the affine, scaling, metadata and
        source instances, for the sidecar and diffusion tables.
    """
    from dicomvol.sidecar import build_metadata, source_instances

    mode = pixel_mode(plan.all_frames)
    metadata = build_metadata(plan)
    try:
        return _write(plan, path, compress, threads, mode, metadata, source_instances(plan))
    except _Overflow:
        first = plan.first
        raw = PixelMode("raw", stored_dtype(first), first.rescale_slope, first.rescale_intercept)
        return _write(plan, path, compress, threads, raw, metadata, source_instances(plan))


def _write(plan: VolumePlan, path: str | os.PathLike[str], compress: bool, threads: int,
           mode: PixelMode, metadata: dict[str, object],
           sources: list[dict[str, object]]) -> Volume:
    from dicomvol.nifti import _gzip_writer, write_header

    placeholder = np.broadcast_to(np.zeros((), dtype=mode.dtype), plan.shape)
    volume = Volume(data=placeholder, affine=plan.affine.copy(), scl_slope=mode.scl_slope,
                    scl_inter=mode.scl_inter, metadata=metadata,
                    source_instances=tuple(sources), plan=plan)
    with atomic_path(path) as tmp, (_gzip_writer(tmp, threads) if compress
                                    else open(tmp, "wb")) as fp:
        write_header(volume, fp)
        for plane in _slices(plan, mode, threads):
            fp.write(plane)
    return volume


def _slice_bytes(frame: FrameRecord, mode: PixelMode) -> bytes:
    """One decoded, converted slice as F-order bytes (module level: picklable)."""
    ((_, pixels),) = _decode(frame.path, [frame])
    target = np.empty((frame.columns, frame.rows), dtype=mode.dtype, order="F")
    _place(target, pixels, frame, mode)
    return target.T.tobytes()  # the F-order bytes of the slice


def _slices(plan: VolumePlan, mode: PixelMode, threads: int) -> Iterator[bytes]:
    """Each slice's bytes in file order (k fastest, then t).

    Native slices are read in this thread (I/O bound). Compressed slices are
    decoded ahead in ``threads`` worker processes: codecs hold the GIL for part
    of their work, so processes scale where threads do not. ``threads`` > 1 only
    when this volume is the only job of the run (see ``api.convert``).
    """
    frames = plan.all_frames
    if threads <= 1 or all(_native_ok(f) for f in frames):  # native reads: no gain
        for frame in frames:
            yield _slice_bytes(frame, mode)
        return
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    with ProcessPoolExecutor(max_workers=threads) as pool:
        window = threads * _READ_AHEAD * 4
        for start in range(0, len(frames), window):
            part = frames[start:start + window]
            yield from pool.map(_slice_bytes, part, repeat(mode), chunksize=_READ_AHEAD)

"""Stream a planned volume straight into a NIfTI file, slice by slice.

NIfTI stores voxels in Fortran order, so slice k of volume t is one
contiguous run of bytes: a slice can be written as soon as it is decoded.
Memory is then one interpreter plus a few slices, however large the volume
(dcm2niix holds the whole volume). Used for single-frame series written as
NIfTI without SUV, reorientation or resampling; everything else goes through
:func:`dicomvol.pixels.assemble.assemble`. Both paths share the pixel-mode
choice, the decoders and the placement code, and write identical files
(tested). The header is described from the plan's pixel-free grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomvol.dicom.cache import JobSources
from dicomvol.io.atomic import atomic_path
from dicomvol.io.nifti import NiftiSpec, describe, open_output, time_step, write_header
from dicomvol.model.plan import VolumePlan
from dicomvol.model.records import FrameRecord
from dicomvol.pixels.assemble import (
    INT16_MAX,
    INT16_MIN,
    Overflow,
    PixelMode,
    pixel_mode,
    place,
    raw_mode,
    shift_bytes,
    shift_fits,
)
from dicomvol.pixels.decode import (
    decode,
    is_native_multiframe,
    native_bytes,
    native_run,
    read_native_frame,
    stored_format,
    streams_natively,
)

if TYPE_CHECKING:
    import numpy as np

#: Slices decoded ahead of the writer per thread (bounds memory).
_READ_AHEAD = 4

#: ``on_slice(n, plane)``: slice ``n`` in file order (k fastest, then t) as written, shape
#: (X, Y), stored values (a read-only view: copy what you keep). ``n`` restarts at 0 when the
#: writer starts over in another pixel mode.
SliceSink = Callable[[int, "np.ndarray"], None]


def can_stream(plan: VolumePlan) -> bool:
    """True when every frame is a single-frame file slice or a frame of a native
    (uncompressed) multi-frame file, read frame by frame (no mosaic, no compressed
    multi-frame file: those are decoded whole)."""
    return plan.resample is None and all(
        f.tile is None and (f.number_of_frames == 1 or is_native_multiframe(f))
        for f in plan.all_frames)


def stream_nifti(plan: VolumePlan, path: str | os.PathLike[str], compress: bool,
                 metadata: dict[str, Any], threads: int = 1,
                 sources: JobSources | None = None,
                 on_slice: SliceSink | None = None) -> PixelMode:
    """Write ``plan`` to ``path`` (atomically) without holding the whole volume.

    ``metadata`` is the sidecar content (for the header's time step and
    description); ``sources`` the job's file cache; ``on_slice`` sees every
    slice as it is written (e.g. to sample QC thumbnails, see :data:`SliceSink`).

    Returns
    -------
    PixelMode
        The representation written (dtype and NIfTI scaling).
    """
    mode = pixel_mode(plan.all_frames)
    try:
        _write(plan, Path(path), compress, threads, mode, metadata, sources, on_slice)
    except Overflow:
        mode = raw_mode(plan.first)
        _write(plan, Path(path), compress, threads, mode, metadata, sources, on_slice)
    return mode


def spec_of(plan: VolumePlan, mode: PixelMode, metadata: dict[str, Any]) -> NiftiSpec:
    """The NIfTI header of a streamed plan: its grid, the pixel mode and the time step."""
    return NiftiSpec(shape=tuple(plan.shape), dtype=mode.type_name, affine=plan.affine_rows,
                     sheared=plan.sheared, scl_slope=mode.scl_slope, scl_inter=mode.scl_inter,
                     time_step=time_step(plan.detail.fourth_dimension, metadata),
                     description=describe(metadata))


def _write(plan: VolumePlan, path: Path, compress: bool, threads: int, mode: PixelMode,
           metadata: dict[str, Any], sources: JobSources | None,
           on_slice: SliceSink | None = None) -> None:
    columns, rows = plan.shape[0], plan.shape[1]
    if (not compress and on_slice is None and hasattr(os, "pwrite")  # POSIX
            and _decoded_apart(plan.all_frames, threads)):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as raw:
                write_header(spec_of(plan, mode, metadata), raw)
                start = raw.tell()
            _decode_into(tmp, start, plan.all_frames, mode, threads)
        return
    with atomic_path(path) as tmp, open_output(tmp, compress, threads) as fp:
        write_header(spec_of(plan, mode, metadata), fp)
        if on_slice is None:  # consecutive frames of a file: one read and write per run
            for chunk in _slices(plan, mode, threads, sources, runs=True):
                fp.write(chunk)
            return
        import numpy as np

        for n, plane in enumerate(_slices(plan, mode, threads, sources)):
            fp.write(plane)  # the F-order bytes of an (X, Y) slice
            on_slice(n, np.frombuffer(plane, dtype=mode.dtype).reshape((columns, rows),
                                                                          order="F"))


def _slice_bytes(frame: FrameRecord, mode: PixelMode,
                 sources: JobSources | None = None) -> bytes:
    """One decoded, converted slice as F-order bytes (module level: picklable).

    Stored values kept as they are ("raw" mode) in a (Rows, Columns) C-order array
    already are the F-order bytes of the (X, Y) slice: they are taken as they are. A
    native slice (a single-frame file, or a frame of a native multi-frame file) in "raw"
    mode, or 16-bit in a "shift" mode (unsigned values that cannot overflow, signed ones
    checked: :class:`~dicomvol.pixels.assemble.Overflow` as :func:`place` raises it), is
    converted on its bytes (:func:`~dicomvol.pixels.decode.native_bytes`,
    :func:`~dicomvol.pixels.assemble.shift_bytes`): a plain series is written by a
    process that never imports numpy (the same bytes, tested).
    """
    if _native_sample(frame):
        stored = stored_format(frame)
        if mode.kind == "raw" and mode.type_name == stored:
            return native_bytes(frame, sources)
        intercept = int(frame.rescale_intercept)
        if mode.kind == "shift" and stored in ("u2", "i2") and shift_fits(frame):
            return shift_bytes(native_bytes(frame, sources), intercept)
        if mode.kind == "shift" and stored == "i2" and INT16_MIN <= intercept <= INT16_MAX:
            return shift_bytes(native_bytes(frame, sources), intercept, signed=True)
    import numpy as np

    if frame.number_of_frames > 1:  # a native multi-frame file: this frame's bytes only
        pixels = read_native_frame(frame, sources)
    else:
        ((_, pixels),) = decode(frame.path, [frame], sources)
    if mode.kind == "raw" and pixels.dtype == mode.dtype and pixels.flags.c_contiguous \
            and pixels.shape == (frame.rows, frame.columns):
        return pixels.tobytes()
    target = np.empty((frame.columns, frame.rows), dtype=mode.dtype, order="F")
    place(target, pixels, frame, mode)
    return target.T.tobytes()  # the F-order bytes of the slice


#: Most bytes read at once for a run of consecutive frames: a block that stays in a core's
#: cache between its read and its write (125 MB of frames, 2-core AMD EPYC host: 0.05 s in
#: 1 MiB blocks, 0.07 s in 8 MiB blocks, 0.09 s frame by frame).
RUN_BYTES = 1 << 20


def _native_runs(frames: list[FrameRecord], mode: PixelMode,
                 sources: JobSources | None) -> Iterator[bytes]:
    """The bytes :func:`_slice_bytes` gives each frame, in order; where consecutive frames
    are consecutive frames of one native multi-frame file whose stored values are written
    as they are ("raw" mode of their own type), up to :data:`RUN_BYTES` of them in one
    read (:func:`~dicomvol.pixels.decode.native_run`; a run it cannot read whole is read
    frame by frame, for the error naming the frame)."""
    i, n = 0, len(frames)
    while i < n:
        first, j = frames[i], i + 1
        if (mode.kind == "raw" and is_native_multiframe(first) and _native_sample(first)
                and mode.type_name == stored_format(first)):
            limit = i + max(1, RUN_BYTES // (first.rows * first.columns * mode.itemsize))
            while (j < n and j < limit and frames[j].path == first.path
                   and frames[j].frame == frames[j - 1].frame + 1):
                j += 1
        block = native_run(first, j - i, sources) if j - i > 1 else None
        if block is not None:
            yield block
        else:
            for frame in frames[i:j]:
                yield _slice_bytes(frame, mode, sources)
        i = j


def _native_sample(frame: FrameRecord) -> bool:
    """Whether a frame's integer samples (one per pixel) are read straight from its file."""
    return not frame.pixel_format and frame.samples_per_pixel == 1 and streams_natively(frame)


def _decoded_apart(frames: list[FrameRecord], threads: int) -> bool:
    """Whether slices are decoded in worker processes (compressed, and cores to spare)."""
    return threads > 1 and not all(streams_natively(f) for f in frames)


def _slice_into(frame: FrameRecord, mode: PixelMode, path: str, offset: int) -> None:
    """Decode one slice and write its bytes at ``offset`` of ``path`` (module level:
    picklable; the worker writes, so the slice never travels back through a pipe)."""
    data = _slice_bytes(frame, mode)
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.pwrite(fd, data, offset)
        while written < len(data):  # a short write (e.g. interrupted): write the rest
            written += os.pwrite(fd, data[written:], offset + written)
    finally:
        os.close(fd)


def _decode_into(path: Path, start: int, frames: list[FrameRecord], mode: PixelMode,
                 threads: int) -> None:
    """Every slice decoded in ``threads`` processes, each written by its worker into
    ``path`` at ``start`` plus its place in file order (an uncompressed NIfTI).

    The same bytes at the same offsets as :func:`_slices` writes in order; a
    failure in any slice propagates after the pool has stopped (so no worker
    writes into the temporary file once it is removed).
    """
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    size = frames[0].columns * frames[0].rows * mode.itemsize
    with ProcessPoolExecutor(max_workers=threads) as pool:
        todo = iter(enumerate(frames))
        pending: deque[Future[None]] = deque(
            pool.submit(_slice_into, frame, mode, str(path), start + n * size)
            for _, (n, frame) in zip(range(threads * _READ_AHEAD), todo, strict=False))
        while pending:
            pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                n, frame = following
                pending.append(pool.submit(_slice_into, frame, mode, str(path),
                                           start + n * size))


def _slices(plan: VolumePlan, mode: PixelMode, threads: int,
            sources: JobSources | None, runs: bool = False) -> Iterator[bytes]:
    """Each slice's bytes in file order (k fastest, then t); with ``runs``, the slices of
    a run of consecutive frames of one native multi-frame file as one block
    (:func:`_native_runs`).

    Native slices are read in this thread (I/O bound). Compressed slices are
    decoded ahead in ``threads`` worker processes: codecs hold the GIL for part
    of their work, so processes scale where threads do not. ``threads`` > 1 only
    when this volume is the only job of the run (see ``batch.run``).
    """
    frames = plan.all_frames
    if threads <= 1 or all(streams_natively(f) for f in frames):  # native reads: no gain
        if runs:
            yield from _native_runs(frames, mode, sources)
            return
        for frame in frames:
            yield _slice_bytes(frame, mode, sources)
        return
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=threads) as pool:
        # A sliding window, one slice per task: a worker never waits for the slowest slice
        # of a batch (a decode takes tens of ms; its pickled result is one slice).
        todo = iter(frames)
        pending: deque[Future[bytes]] = deque(
            pool.submit(_slice_bytes, frame, mode) for _, frame in zip(
                range(threads * _READ_AHEAD), todo, strict=False))
        while pending:
            plane = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(pool.submit(_slice_bytes, following, mode))
            yield plane

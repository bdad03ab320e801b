"""The header pass over objects: batched concurrent range reads, more only where needed.

Each round reads the first bytes of every pending object in one concurrent
batch (:func:`dicomvol.inputs.fs.read_heads`: one ranged GET per object) and
parses each from its head (:class:`dicomvol.inputs.fs.HeadFile`). pydicom
parses a cut-off buffer into a partial data set without a warning, so the
head records whether the parse asked for any byte past it: such an object's
result is thrown away and it is read again with
:data:`~dicomvol.inputs.fs.HEAD_GROWTH` times the bytes, until the parse ends
within the head (it reached PixelData, or the end of a header-only object)
or the head is the whole object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import BinaryIO, TypeVar, cast

from dicomvol.inputs import fs
from dicomvol.inputs.discover import Candidate

log = logging.getLogger(__name__)

R = TypeVar("R")


def parse_heads(candidates: Sequence[Candidate], parse: Callable[[Candidate, BinaryIO], R],
                failed: Callable[[Candidate, str], R]) -> list[R]:
    """``parse(candidate, head)`` for each object, from as few bytes as its header needs.

    ``failed(candidate, why)`` stands for an object that cannot be read. Results
    come in the order of ``candidates``.
    """
    results: dict[int, R] = {}
    pending: list[tuple[int, Candidate, int, int]] = []
    for n, cand in enumerate(candidates):
        try:
            size = cand.size if cand.size is not None else fs.size(cand.path)
        except OSError as exc:
            results[n] = failed(cand, f"cannot open: {exc.strerror or exc}")
            continue
        pending.append((n, cand, size, fs.head_length(size)))
    rounds = 0
    while pending:
        rounds += 1
        heads = fs.read_heads([c.path for _, c, _, _ in pending], [k for *_, k in pending])
        again: list[tuple[int, Candidate, int, int]] = []
        for (n, cand, size, length), head in zip(pending, heads, strict=True):
            if isinstance(head, OSError):
                results[n] = failed(cand, f"cannot open: {head.strerror or head}")
                continue
            stream = fs.HeadFile(head, size)
            result = parse(cand, cast(BinaryIO, stream))
            if stream.overrun and len(head) < size:
                again.append((n, cand, size, min(size, length * fs.HEAD_GROWTH)))
            else:
                results[n] = result
        pending = again
    log.debug("read the headers of %d objects in %d round(s)", len(candidates), rounds)
    return [results[n] for n in range(len(candidates)) if n in results]

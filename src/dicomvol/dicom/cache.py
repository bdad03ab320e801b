"""One job's view of its input files: each file opened once, each header parsed once.

A job (one output volume) needs some headers (the sidecar's first file, slice
timing, diffusion tables) and every file's pixels. :class:`JobSources` reads a
file whose header is asked for in full, once, keeps its bytes until its
pixels are taken, and parses the header once; a file whose header is never
asked for is read once, for its pixels only. On a local disk this saves
system calls; on an object store each avoided open is a network round trip.
Every read goes through :mod:`dicomvol.inputs.fs`. Objects (URLs) are fetched
whole, once each, ahead of use on a few threads with the bytes in flight
bounded (:class:`dicomvol.inputs.fetch.Prefetcher`); a pixel range of an
object is cut from its one fetch, never read again.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomvol.dicom.header import gunzip_if_needed, parse_dataset, read_header_from
from dicomvol.dicom.leands import LeanDataset, lean_dataset
from dicomvol.dicom.leanmf import first_frame_only
from dicomvol.dicom.tags import PIXEL_DATA_TAGS
from dicomvol.errors import HeaderError, NotDicomError
from dicomvol.inputs import fs

if TYPE_CHECKING:  # pragma: no cover - pydicom parses what the lean reader declines
    from pydicom.dataset import Dataset

    from dicomvol.inputs.fetch import Prefetcher

#: Bytes a job fetches ahead of what it has consumed (objects only).
DEFAULT_BYTES_AHEAD = 64 * 1024 * 1024


class JobSources:
    """The input files of one job, each read at most once (not thread-safe per path).

    ``prefetch`` lists the job's inputs in the order it will use them; the
    objects among them are fetched ahead, at most ``max_bytes`` ahead.
    """

    def __init__(self, prefetch: Sequence[str] = (),
                 max_bytes: int = DEFAULT_BYTES_AHEAD,
                 header_ends: dict[str, int] | None = None) -> None:
        self._bytes: dict[str, bytes] = {}
        #: Local files whose header ends at a known offset (a multi-frame file's PixelData):
        #: the lean header reads that much of them, not the whole file.
        self._header_ends = dict(header_ends or {})
        self._heads: dict[str, bytes] = {}
        self._headers: dict[str, Dataset] = {}
        self._first_frames: dict[str, Dataset | LeanDataset] = {}
        self._gzipped: dict[str, bool] = {}
        self._open: dict[str, int] = {}  # path -> descriptor (read_range of local files)
        urls = [p for p in prefetch if fs.is_url(p)]
        self._fetch: Prefetcher | None = None
        if urls:  # objects only: their fetches run on threads (the module loads with them)
            from dicomvol.inputs.fetch import Prefetcher

            self._fetch = Prefetcher(urls, max_bytes)

    def close(self) -> None:
        """Stop fetching ahead (a job that failed part way) and close open files."""
        if self._fetch is not None:
            self._fetch.close()
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def read_range(self, path: str, start: int, length: int) -> bytes | memoryview:
        """``length`` bytes from ``start`` of an uncompressed file, the file kept for more.

        Unlike :meth:`take_range`, the cached bytes stay (a multi-frame file is read
        frame by frame): from memory when cached, else from one descriptor per local
        file (``os.pread``, closed by :meth:`close`), else (an object) from its one fetch.
        """
        data = self._bytes.get(path)
        if data is None and fs.is_url(path):
            data = self._file_bytes(path)
        if data is not None:
            return memoryview(data)[start:start + length]
        return self._pread(path, start, length)

    def _pread(self, path: str, start: int, length: int) -> bytes:
        """``length`` bytes at ``start`` of a local file, through its one descriptor."""
        fd = self._open.get(path)
        if fd is None:
            fd = self._open[path] = os.open(path, os.O_RDONLY)
        return os.pread(fd, length, start)

    @classmethod
    def from_headers(cls, headers: dict[str, Dataset]) -> JobSources:
        """Sources whose headers are already known (e.g. built in memory by a test)."""
        sources = cls()
        sources._headers.update(headers)
        return sources

    def header(self, path: str) -> Dataset:
        """The header of ``path`` (no pixel data), parsed once per job.

        Raises
        ------
        HeaderError
            The file cannot be read or parsed.
        """
        found = self._headers.get(path)
        if found is None:
            data = self._head(path)
            try:
                found, _ = read_header_from(io.BytesIO(data), self._gzipped.get(path, False))
            except NotDicomError as exc:
                raise HeaderError(str(exc)) from exc
            self._headers[path] = found
        return found

    def first_frame_header(self, path: str) -> Dataset | LeanDataset:
        """The header of ``path`` with at most the first item of its per-frame sequence.

        For readers of one frame's functional groups (the sidecar keys): one item
        of a 5,000-frame file's PerFrameFunctionalGroupsSequence is parsed
        (:func:`~dicomvol.dicom.leanmf.first_frame_only`), not all. A little-endian
        header in a character set :mod:`dicomvol.dicom.leands` decodes is a
        :class:`~dicomvol.dicom.leands.LeanDataset` (no pydicom); any other is
        parsed by pydicom (the whole header, :meth:`header`, when there is nothing
        to cut). Parsed once per job.

        Raises
        ------
        HeaderError
            The file cannot be read or parsed.
        """
        found = self._headers.get(path) or self._first_frames.get(path)
        if found is not None:
            return found
        head = self._head(path)
        cut = first_frame_only(head)
        lean = lean_dataset(head if cut is None else cut)
        if lean is not None:
            self._first_frames[path] = lean
            return lean
        if cut is None:
            return self.header(path)
        try:
            found, _ = read_header_from(io.BytesIO(cut), False)
        except NotDicomError as exc:
            raise HeaderError(str(exc)) from exc
        self._first_frames[path] = found
        return found

    def has_bytes(self, path: str) -> bool:
        """True when the whole file is in memory (its header was asked for)."""
        return path in self._bytes

    def take_bytes(self, path: str) -> bytes:
        """The whole file (gzip-decompressed); it is released from the cache."""
        data = self._bytes.pop(path, None)
        if data is None:
            data = self._load(path)
        return data

    def take_dataset(self, path: str) -> Dataset:
        """The full data set with pixel data; the file's bytes are released from the cache."""
        return parse_dataset(io.BytesIO(self.take_bytes(path)))

    def take_range(self, path: str, start: int, length: int) -> bytes | memoryview:
        """``length`` bytes from ``start`` of an uncompressed file (from memory when cached).

        A range of a file in memory is a view of its bytes (a multi-frame file's
        pixels are not copied).
        """
        data = self._bytes.pop(path, None)
        if data is None and fs.is_url(path):  # one fetch per object: cut the range from it
            data = self._load(path)
        if data is not None:
            return memoryview(data)[start:start + length]
        if path in self._open:  # its header was read through a descriptor: read on with it
            return self._pread(path, start, length)
        return fs.read_bytes(path, start, length)

    def _head(self, path: str) -> bytes:
        """The file's bytes up to its header's end when known (``header_ends``), else the
        whole file (:meth:`_file_bytes`)."""
        end = self._header_ends.get(path)
        if end is None or path in self._bytes or fs.is_url(path):
            return self._file_bytes(path)
        head = self._heads.get(path)
        if head is None:  # through the descriptor its frames are read with: one open
            try:
                head = self._pread(path, 0, end)
            except OSError as exc:
                raise HeaderError(f"cannot open: {exc.strerror or exc}") from exc
            if not _ends_at_pixel_data(head, end):  # not where the scan saw it (the file
                self._header_ends.pop(path)  # changed since): the whole file
                return self._file_bytes(path)
            self._heads[path] = head
        return head

    def _file_bytes(self, path: str) -> bytes:
        data = self._bytes.get(path)
        if data is None:
            data = self._load(path)
            self._bytes[path] = data
        return data

    def _load(self, path: str) -> bytes:
        try:
            if self._fetch is not None and path in self._fetch:
                raw = self._fetch.take(path)
            else:
                raw = fs.read_bytes(path)
        except OSError as exc:
            raise HeaderError(f"cannot open: {exc.strerror or exc}") from exc
        data, gzipped = gunzip_if_needed(raw)
        self._gzipped[path] = gzipped
        return data

    def headers(self) -> dict[str, Any]:
        """The headers parsed so far, by path."""
        return dict(self._headers)


def _ends_at_pixel_data(head: bytes, end: int) -> bool:
    """Whether ``head``, a file's first ``end`` bytes, ends with the header of a pixel data
    element: tag, VR and length (12 bytes, explicit VR) or tag and length (8, implicit)."""
    return len(head) == end and any(
        ((group << 16) | elem) in PIXEL_DATA_TAGS
        for group, elem in (struct.unpack_from("<HH", head, end - n) for n in (12, 8) if end >= n))

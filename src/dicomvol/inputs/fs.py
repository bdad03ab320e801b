"""The one file-system layer: every read of an input goes through these functions.

Inputs are local paths or object-store URLs (``s3://bucket/key``,
``gs://bucket/key``, through fsspec with s3fs/gcsfs: ``pip install
dicomvol[cloud]``). Local files are opened once per call. Objects are read
with explicit byte ranges (never an fsspec file with its default read-ahead
block, which downloads whole objects); listings are kept per process, so
that discovering a prefix and checking it against the IDC index cost one
LIST. Every process (a pool worker, a Dask worker) builds its own client from
the :class:`~dicomvol.options.StorageOptions` its task carries
(:func:`configure`), anonymous by default, honouring ``--endpoint-url`` and
``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

from dicomvol._typing import PathLike
from dicomvol.errors import UsageError
from dicomvol.options import StorageOptions

#: URL schemes read through fsspec.
URL_SCHEMES = ("s3://", "gs://", "gcs://")
#: First bytes of an object the header pass reads (at most; see :func:`head_length`).
HEAD_BYTES = 65536
#: The first read never exceeds this fraction of the object (a 512² CT slice: 32 KiB) ...
HEAD_FRACTION = 16
#: ... nor goes below this many bytes (the lean header reader's first read).
HEAD_MIN_BYTES = 32768
#: A header that did not end in the first read is read again with this many times the bytes.
HEAD_GROWTH = 8

_state: dict[str, Any] = {"options": StorageOptions(), "pid": None, "clients": {}}
_listings: dict[str, list[tuple[str, int]]] = {}
_lock = threading.Lock()


def is_url(path: PathLike) -> bool:
    """True for an object-store URL (``s3://``, ``gs://``)."""
    return isinstance(path, str) and path.startswith(URL_SCHEMES)


def configure(options: StorageOptions) -> None:
    """Use ``options`` for object-store clients built from now on in this process."""
    with _lock:
        if options != _state["options"]:
            _state["options"] = options
            _state["clients"] = {}


def storage_options() -> StorageOptions:
    """The options object-store clients of this process are built with."""
    options: StorageOptions = _state["options"]
    return options


def filesystem(url: str) -> Any:
    """This process's fsspec file system for ``url``'s scheme (built on first use).

    Raises
    ------
    UsageError
        s3fs/gcsfs is not installed.
    """
    scheme = url.split("://", 1)[0]
    scheme = "gs" if scheme == "gcs" else scheme
    with _lock:
        if _state["pid"] != os.getpid():  # a forked worker never shares its parent's client
            _state["pid"], _state["clients"] = os.getpid(), {}
        found = _state["clients"].get(scheme)
        if found is None:
            found = _state["clients"][scheme] = _build(scheme, _state["options"])
    return found


def _build(scheme: str, options: StorageOptions) -> Any:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec comes with the cloud extra
        raise UsageError("cloud inputs need the cloud extra: pip install dicomvol[cloud]") from exc
    kwargs: dict[str, Any] = {"skip_instance_cache": True}
    if scheme == "s3":
        endpoint = (options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL"))
        # max_concurrency=1: one GET per object (s3fs would split a whole-object read into
        # a HEAD and block-sized range GETs); a job's concurrency is across objects.
        kwargs.update(anon=options.anon, max_concurrency=1,
                      config_kwargs={"retries": {"max_attempts": options.retries,
                                                 "mode": "adaptive"}})
        if endpoint:
            kwargs["endpoint_url"] = endpoint
    elif scheme == "gs":
        endpoint = options.endpoint_url or os.environ.get("STORAGE_EMULATOR_HOST")
        kwargs.update(token="anon" if options.anon else None, retries=options.retries)
        if endpoint:
            kwargs["endpoint_url"] = endpoint
    try:
        if scheme == "gs":  # the plain client: gcsfs's experimental one asks a gRPC control
            from gcsfs.core import GCSFileSystem  # plane for each bucket's layout first

            return GCSFileSystem(**kwargs)
        return fsspec.filesystem(scheme, **kwargs)
    except ImportError as exc:
        package = "s3fs" if scheme == "s3" else "gcsfs"
        raise UsageError(f"{scheme}:// inputs need {package}: pip install dicomvol[cloud]"
                         ) from exc


def _key(url: str) -> str:
    return url.split("://", 1)[1]


def _url(scheme: str, key: str) -> str:
    return f"{scheme}://{key}"


def list_objects(url: str) -> list[tuple[str, int]]:
    """Every object under a URL prefix (or the one object it names) with its size, by URL.

    One LIST per prefix and process (the result is kept until
    :func:`forget_listings`); sorted by URL; empty when nothing is there.

    Raises
    ------
    UsageError
        The listing fails (no such bucket, access denied, no client library).
    """
    prefix = url.rstrip("/")
    with _lock:
        known = _listings.get(prefix)
    if known is not None:
        return known
    client = filesystem(url)
    scheme = url.split("://", 1)[0]
    try:
        found = client.find(_key(prefix), detail=True)
    except FileNotFoundError:
        found = {}
    except OSError as exc:
        raise UsageError(f"cannot list {url}: {exc}") from exc
    objects = sorted((_url(scheme, str(info.get("name", key))), int(info.get("size") or 0))
                     for key, info in found.items() if info.get("type", "file") != "directory")
    with _lock:
        _listings[prefix] = objects
    return objects


def listings() -> dict[str, list[tuple[str, int]]]:
    """The listings kept in this process: URL prefix -> objects with sizes."""
    with _lock:
        return dict(_listings)


def forget_listings() -> None:
    """Drop the listings kept in this process (the next look-up lists again)."""
    with _lock:
        _listings.clear()


def open_input(path: PathLike) -> BinaryIO:
    """Open an input file for binary reading (the caller closes it).

    An object is fetched whole (one GET) into memory.
    """
    if is_url(path):
        return io.BytesIO(read_bytes(path))
    return open(path, "rb")


def read_bytes(path: PathLike, start: int = 0, length: int | None = None) -> bytes:
    """``length`` bytes of a file from ``start`` (to the end when ``length`` is None).

    An object: one GET (with a Range header unless the whole object is asked for).
    """
    if is_url(path):
        url = str(path)
        end = None if length is None else start + length
        try:
            data: bytes = filesystem(url).cat_file(_key(url), start=start or None, end=end)
        except FileNotFoundError as exc:
            raise FileNotFoundError(2, "no such object", url) from exc
        return data
    with open(path, "rb") as fp:
        if start:
            fp.seek(start)
        return fp.read() if length is None else fp.read(length)


def read_heads(urls: Sequence[str], lengths: Sequence[int]) -> list[bytes | OSError]:
    """The first ``lengths[i]`` bytes of each object, in one concurrent batch of range GETs.

    A failed read comes back as its ``OSError`` (the caller records it for that
    object only).
    """
    if not urls:
        return []
    client = filesystem(urls[0])
    keys = [_key(u) for u in urls]
    got = client.cat_ranges(keys, [0] * len(keys), list(lengths), on_error="return")
    out: list[bytes | OSError] = []
    for url, value in zip(urls, got, strict=True):
        if isinstance(value, bytes | OSError):
            out.append(value)
        else:
            out.append(OSError(f"cannot read {url}: {value}"))
    return out


def head_length(size: int) -> int:
    """Bytes the header pass reads first from an object of ``size`` bytes."""
    return min(size, HEAD_BYTES, max(HEAD_MIN_BYTES, size // HEAD_FRACTION))


def size(path: PathLike) -> int:
    """The size of a file in bytes."""
    if is_url(path):
        url = str(path)
        parent = url.rsplit("/", 1)[0]
        with _lock:
            listed = _listings.get(parent)
        for name, nbytes in listed or ():
            if name == url:
                return nbytes
        return int(filesystem(url).size(_key(url)))
    return os.stat(path).st_size


def stream_size(fp: BinaryIO) -> int:
    """The size of an open input in bytes (without another look-up by name)."""
    if isinstance(fp, HeadFile):
        return fp.size
    try:
        return os.fstat(fp.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        here = fp.tell()
        end = fp.seek(0, 2)
        fp.seek(here)
        return end


class HeadFile(io.RawIOBase):
    """The first bytes of an object, read as if it were the whole object.

    ``size`` is the object's full size. A read that asks for bytes beyond the
    head (when the head is not the whole object) returns only what the head
    holds and sets :attr:`overrun`: a parse that needed more must be redone on a
    longer head (pydicom would otherwise return a partial data set silently).
    """

    def __init__(self, head: bytes, size: int) -> None:
        super().__init__()
        self.head = head
        self.size = size
        self.overrun = False
        self._pos = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move within the whole object (beyond the head is allowed; reads there overrun)."""
        base = (0, self._pos, self.size)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        """The position in the object."""
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the head; flag an overrun when the object goes on."""
        want = len(buffer)
        end = min(self._pos + want, self.size)
        if end > len(self.head):
            self.overrun = True
        chunk = self.head[self._pos:min(end, len(self.head))]
        n = len(chunk)
        buffer[:n] = chunk
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (the rest of the head when negative)."""
        if size is None or size < 0:
            size = self.size - self._pos
        buf = bytearray(max(0, size))
        n = self.readinto(buf)
        return bytes(buf[:n])

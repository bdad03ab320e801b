"""Whole-object fetches for one job: each object once, concurrently, bytes in flight bounded.

A job reads every input object in full (headers, then pixels), in an order it
knows in advance. :class:`Prefetcher` downloads ahead of the consumer on a few
threads, keeping at most ``max_bytes`` of fetched-but-not-taken data (plus the
requests under way), so a 10 GB series never sits in memory at once and the
network stays busy while the job decodes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from dicomvol.inputs import fs

#: Concurrent GETs per job.
FETCH_THREADS = 8


class Prefetcher:
    """Fetch ``urls`` (in consumption order) ahead of :meth:`take`, each exactly once."""

    def __init__(self, urls: Sequence[str], max_bytes: int,
                 threads: int = FETCH_THREADS) -> None:
        self._order = list(dict.fromkeys(urls))
        self._next = 0
        self._max = max_bytes
        self._threads = threads
        self._futures: dict[str, Future[bytes]] = {}
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __contains__(self, url: str) -> bool:
        return url in self._order

    def take(self, url: str) -> bytes:
        """The whole object (fetched now if it was not under way); released from here.

        Raises
        ------
        OSError
            The object cannot be read.
        """
        with self._lock:
            future = self._futures.pop(url, None)
            if future is None:
                future = self._submit(url)
                self._futures.pop(url, None)
            self._fill()
        try:
            return future.result()
        finally:
            with self._lock:
                self._fill()

    def close(self) -> None:
        """Stop fetching (objects under way finish; nothing new starts)."""
        with self._lock:
            self._next = len(self._order)
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, url: str) -> Future[bytes]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="dicomvol-fetch")
        future = self._pool.submit(fs.read_bytes, url)
        self._futures[url] = future
        self._started.add(url)
        return future

    def _held(self) -> int:
        """Bytes fetched and not yet taken."""
        return sum(len(f.result()) for f in self._futures.values()
                   if f.done() and not f.cancelled() and f.exception() is None)

    def _fill(self) -> None:
        """Start fetches in order while fewer than ``threads`` run and memory allows."""
        running = sum(1 for f in self._futures.values() if not f.done())
        held = self._held()
        while self._next < len(self._order) and running < self._threads and held < self._max:
            url = self._order[self._next]
            self._next += 1
            if url not in self._started:
                self._submit(url)
                running += 1

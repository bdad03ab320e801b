"""A job's object fetches: each object once, concurrently, bytes ahead bounded."""

from __future__ import annotations

import threading
import time

import pytest

from dicomvol.dicom.cache import JobSources
from dicomvol.inputs import fetch, fs

SIZE = 1000


class FakeStore:
    """Stands in for ``fs.read_bytes`` on URLs: counts calls and concurrent fetches."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def read_bytes(self, path: str, start: int = 0, length: int | None = None) -> bytes:
        assert start == 0 and length is None, "a job never reads part of an object"
        with self.lock:
            self.calls.append(path)
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
        return path.encode().ljust(SIZE, b"\0")


@pytest.fixture()
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(fs, "read_bytes", fake.read_bytes)
    return fake


def test_prefetcher_fetches_each_object_once_within_the_byte_bound(store: FakeStore) -> None:
    urls = [f"s3://b/s/{n:03d}.dcm" for n in range(40)]
    ahead = 5 * SIZE
    pre = fetch.Prefetcher(urls, max_bytes=ahead, threads=4)
    got = []
    for url in urls:
        data = pre.take(url)
        got.append(data)
        held = pre._held()
        assert held <= ahead + 4 * SIZE  # what is held, plus what the threads are fetching
        assert len(store.calls) <= urls.index(url) + 1 + ahead // SIZE + 4
    pre.close()
    assert sorted(store.calls) == urls  # each object exactly once
    assert [g[:len(u)] for g, u in zip(got, urls, strict=True)] == [u.encode() for u in urls]
    assert 1 < store.peak <= 4  # concurrent, bounded


def test_out_of_order_take_is_not_fetched_twice(store: FakeStore) -> None:
    urls = [f"s3://b/s/{n}.dcm" for n in range(6)]
    pre = fetch.Prefetcher(urls, max_bytes=10 * SIZE, threads=2)
    for url in [urls[5], *urls[:5]]:
        pre.take(url)
    pre.close()
    assert sorted(store.calls) == sorted(urls)


def test_job_sources_cut_pixel_ranges_from_the_one_fetch(store: FakeStore) -> None:
    urls = [f"s3://b/s/{n}.dcm" for n in range(3)]
    sources = JobSources(urls, max_bytes=10 * SIZE)
    try:
        parts = [sources.take_range(u, 2, 10) for u in urls]
    finally:
        sources.close()
    assert parts == [u.encode()[2:12] for u in urls]
    assert sorted(store.calls) == urls

"""The process policy: without ``-j``, small local inputs run in this process."""

from __future__ import annotations

from pathlib import Path

from dicomvol.batch.executors import (
    IN_PROCESS_MAX_BYTES,
    IN_PROCESS_MAX_FILES,
    estimated_bytes,
    run_workers,
)
from dicomvol.batch.scan import INDEX_CHUNK
from dicomvol.inputs.discover import Candidate


def _files(folder: Path, n: int, size: int) -> list[Candidate]:
    folder.mkdir()
    out = []
    for i in range(n):
        path = folder / f"{i:05d}.dcm"
        with path.open("wb") as fp:
            fp.truncate(size)  # sparse: the size is what counts
        out.append(Candidate(str(path), path.name))
    return out


def test_small_inputs_run_in_process_only_when_jobs_was_not_chosen(tmp_path: Path) -> None:
    small = _files(tmp_path / "small", 20, 4096)
    assert run_workers(4, small, adaptive=True) == 1
    assert run_workers(4, small, adaptive=False) == 4  # -j 4 keeps its meaning
    assert run_workers(1, small, adaptive=False) == 1


def test_many_files_or_many_bytes_keep_the_pool(tmp_path: Path) -> None:
    many = _files(tmp_path / "many", IN_PROCESS_MAX_FILES + 1, 16)
    assert run_workers(2, many, adaptive=True) == 2
    assert run_workers(2, many[:IN_PROCESS_MAX_FILES], adaptive=True) == 1
    per_file = IN_PROCESS_MAX_BYTES // 10 + 1
    large = _files(tmp_path / "large", 10, per_file)
    assert estimated_bytes(large) == 10 * per_file
    assert run_workers(2, large, adaptive=True) == 2
    assert run_workers(2, large[:9], adaptive=True) == 1


def test_one_large_file_runs_in_process(tmp_path: Path) -> None:
    """One file is one header and one series: a pool would only move its job elsewhere."""
    (huge,) = _files(tmp_path / "one", 1, 2 * IN_PROCESS_MAX_BYTES)
    two = _files(tmp_path / "two", 2, IN_PROCESS_MAX_BYTES)
    assert run_workers(2, [huge], adaptive=True) == 1
    assert run_workers(2, [huge], adaptive=False) == 2  # -j 2 keeps its meaning
    assert run_workers(2, two, adaptive=True) == 2
    one_object = [Candidate("s3://bucket/big.dcm", "big.dcm", size=2 * IN_PROCESS_MAX_BYTES)]
    assert run_workers(2, one_object, adaptive=True) == 1


def test_object_store_inputs_keep_the_pool() -> None:
    objects = [Candidate(f"s3://bucket/{i}.dcm", f"{i}.dcm", size=100) for i in range(2)]
    assert run_workers(2, objects, adaptive=True) == 2


def test_the_size_estimate_samples_evenly_and_skips_missing_files(tmp_path: Path) -> None:
    cands = _files(tmp_path / "mixed", 64, 1000)
    gone = Path(cands[0].path)
    gone.unlink()
    assert estimated_bytes(cands) == 64 * 1000  # the mean of the files that are there
    assert estimated_bytes([]) == 0
    known = [Candidate("s3://b/a.dcm", "a.dcm", size=10), Candidate("s3://b/b.dcm", "b", 30)]
    assert estimated_bytes(known) == 40


def test_the_file_threshold_is_where_headers_are_read_in_process_anyway() -> None:
    assert IN_PROCESS_MAX_FILES == 2 * INDEX_CHUNK

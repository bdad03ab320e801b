"""dicomvol._gc.paused: the cyclic collector off inside, as it was after, nested or not."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomvol._gc import paused


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_enabled_after_even_when_the_block_raises() -> None:
    gc.enable()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer one's pause alone
    assert gc.isenabled()
    with pytest.raises(KeyError), paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_a_caller_who_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    with paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_the_scan_runs_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading headers and planning run with the collector paused (the run enables it)."""
    import dicomvol.batch.scan as scan
    from dicomvol.testing import write_series

    seen: list[bool] = []
    real = scan.plan_index

    def spying(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan, "plan_index", spying)
    write_series(tmp_path, shape=(4, 3, 3))
    gc.enable()
    result = scan.scan_inputs([tmp_path])
    assert len(result.plans) == 1 and seen == [False] and gc.isenabled()

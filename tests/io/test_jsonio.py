"""io/jsonio.dumps writes json.dumps(obj, indent=2, default=json_default)'s text exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dicomvol.io.jsonio import dumps, json_default, write_json_atomic
from dicomvol.testing import write_series

SCALARS: list[Any] = [
    None, True, False, 0, -1, 10**30, 0.1, -0.0, 1e300, 5e-324, float("nan"), float("inf"),
    -float("inf"), "", "plain", 'quote " backslash \\ tab \t', "é ü ß", "\u2028 \x00 \x1f",
    "𝄞 emoji 🙂", np.float64(1.25), np.float32(2.5), np.int64(-7), np.uint16(9),
    np.bool_(True), {1, 2}, frozenset({"a"}), Path("/x/y"), np.arange(3), 1 + 2j,
]
KEYS: list[Any] = ["k", "é", "", 3, -2.5, True, False, None, 10**20]


def _random(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth >= 4 or roll < 0.4:
        return rng.choice(SCALARS)
    size = rng.randrange(4)
    if roll < 0.7:
        return {rng.choice(KEYS): _random(rng, depth + 1) for _ in range(size)}
    items = [_random(rng, depth + 1) for _ in range(size)]
    return tuple(items) if rng.random() < 0.3 else items


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=json_default)


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_are_written_as_json_writes_them(seed: int) -> None:
    rng = random.Random(seed)
    doc = {f"key{n}": _random(rng, 0) for n in range(8)}
    assert dumps(doc) == _json(doc)


def test_every_scalar_and_key_alone() -> None:
    for value in SCALARS:
        assert dumps(value) == _json(value) and dumps([value]) == _json([value])
    for key in KEYS:
        assert dumps({key: 1}) == _json({key: 1})


def test_subclasses_are_written_by_their_items() -> None:
    from collections import OrderedDict, namedtuple

    point = namedtuple("point", "x y")
    doc = {"o": OrderedDict(a=1, b=[2]), "p": point(1.5, "y"), "b": bool(1), "t": ()}
    assert dumps(doc) == _json(doc)


def test_a_key_json_refuses_is_refused() -> None:
    with pytest.raises((TypeError, ValueError)):
        _json({(1, 2): 3})
    with pytest.raises(ValueError, match="keys must be"):
        dumps({(1, 2): 3})


def test_written_sidecars_and_report_read_back(tmp_path: Path) -> None:
    """A converted series' sidecar and report, written by write_json_atomic, are the text
    json.dumps gives for what they hold."""
    from dicomvol.cli.main import main

    write_series(tmp_path / "in", shape=(6, 5, 4), modality="MR")
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 0
    written = sorted((tmp_path / "out").glob("*.json"))
    assert len(written) == 2  # the sidecar and dicomvol_report.json
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text == _json(json.loads(text)) + "\n"
    write_json_atomic(tmp_path / "x.json", {"a": [1, {"b": None}]})
    expected = '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ]\n}\n'
    assert (tmp_path / "x.json").read_text() == expected

"""Every output of a whole-corpus conversion equals the recorded one (see outputs.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from regression.outputs import GOLDEN, convert_all

#: Relative tolerance on the data statistics of resampled images.
STATS_RELATIVE_TOLERANCE = 1e-5


@pytest.mark.corpus
@pytest.mark.slow
def test_outputs_unchanged(corpus: Path, tmp_path: Path) -> None:
    recorded = json.loads(GOLDEN.read_text())
    now = convert_all(corpus, tmp_path)
    assert sorted(now) == sorted(recorded)
    problems = []
    for name, files in recorded.items():
        if sorted(now[name]) != sorted(files):
            problems.append(f"{name}: files {sorted(set(now[name]) ^ set(files))} differ")
            continue
        for file, want in files.items():
            got = now[name][file]
            if isinstance(want, dict):
                assert isinstance(got, dict)
                same = got["header_sha256"] == want["header_sha256"] and all(
                    math.isclose(a, b, rel_tol=STATS_RELATIVE_TOLERANCE, abs_tol=1e-6)
                    for a, b in zip(got["stats"], want["stats"], strict=True))
            else:
                same = got == want
            if not same:
                problems.append(f"{name}/{file} changed")
    assert not problems, "\n".join(problems) + (
        "\n(a deliberate change re-records: python tests/regression/outputs.py record)")

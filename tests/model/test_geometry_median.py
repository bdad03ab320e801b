"""model.geometry.median: np.median's value without importing numpy.ma."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from dicomvol.model.geometry import median


def test_median_agrees_with_numpy_for_odd_and_even_lengths() -> None:
    rng = np.random.default_rng(7)
    for n in range(1, 12):
        values = rng.normal(2.5, 1.0, size=n)
        assert median(values) == pytest.approx(float(np.median(values)), abs=1e-12)
        assert median(list(values)) == pytest.approx(float(np.median(values)), abs=1e-12)
    assert median([3.0, 1.0, 2.0, 10.0]) == pytest.approx(2.5, abs=1e-12)


def test_median_of_nan_is_nan_and_of_nothing_raises() -> None:
    assert math.isnan(median([1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_planning_a_series_does_not_import_numpy_ma(tmp_path: object) -> None:
    script = ("import sys, tempfile, pathlib\n"
              "from dicomvol.testing import write_series\n"
              "d = pathlib.Path(tempfile.mkdtemp())\n"
              "write_series(d, shape=(4, 3, 6))\n"
              "write_series(d / 'gap', shape=(4, 3, 6), series_number=2,\n"
              "             positions=[(0, 0, z) for z in (0, 2, 4, 8, 10, 12)])\n"
              "before = 'numpy.ma' in sys.modules\n"
              "from dicomvol.batch.scan import scan_inputs\n"
              "result = scan_inputs([d], jobs=1)\n"
              "assert len(result.plans) >= 2, result.plans\n"
              "print(before, 'numpy.ma' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "False"

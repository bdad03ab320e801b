"""JSON outputs (sidecars, the run report), written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dicomvol.io.atomic import atomic_path


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place."""
    text = json.dumps(obj, indent=2, default=json_default)  # one write, not one per token
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fp:
        fp.write(text + "\n")


def json_default(obj: Any) -> Any:
    """JSON form of numpy scalars and arrays, sets and tuples; text for anything else."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)

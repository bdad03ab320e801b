"""One output as the QC pages show it, and where its section is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicomvol.qc.record import PAGE_NAME, VolumeQC


@dataclass
class Entry:
    """One output as the page shows it."""

    name: str
    stem: str
    sidecar: dict[str, Any]
    volume: dict[str, Any]
    record: VolumeQC | None = None
    kind: str = "image"  # "image", "label" or "slide"
    problems: list[str] = field(default_factory=list)
    page: str = PAGE_NAME  # the HTML file (in qc/) holding this output's section

    @property
    def anchor(self) -> str:
        """The section's HTML id."""
        return "v-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.stem)

    def href(self, here: str) -> str:
        """A link to this output's section from the page ``here``."""
        return f"#{self.anchor}" if here == self.page else f"{self.page}#{self.anchor}"

    def get(self, key: str, default: Any = None) -> Any:
        """A value from the report's ``volumes`` entry, else from the sidecar."""
        if key in self.volume:
            return self.volume[key]
        return self.sidecar.get(key, default)

    @property
    def spacing(self) -> list[float]:
        """Voxel spacing (mm): from the report, else from the record's affine."""
        spacing = self.get("Spacing")
        if isinstance(spacing, list) and spacing:
            return [float(v) for v in spacing]
        if self.record is not None and len(self.record.shape) >= 3:
            return [round(float(v), 6) for v in np.linalg.norm(
                np.asarray(self.record.affine)[:3, :3], axis=0)]
        return []


def fmt_list(values: Any, digits: int = 4) -> str:
    """``512×512×134`` from a list of numbers ('' for anything else)."""
    if not isinstance(values, list | tuple):
        return ""
    return "×".join(f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in values)


def status(e: Entry) -> str:
    """What became of an output: the report's status and its kind."""
    flags = [str(e.get("Status", "written"))]
    if e.get("Resampled"):
        flags.append("resampled")
    if e.get("Sheared"):
        flags.append("sheared")
    if e.kind == "label":
        flags.append("label map")
    if e.kind == "slide":
        flags.append("slide")
    return ", ".join(flags)

"""Segment metadata for the sidecar's ``LabelMap`` and colour tables for viewers.

Two colour tables are written beside every label map:

- ``NAME.ctbl``: the 3D Slicer colour table (``# Color table file`` header;
  one line ``index name R G B A`` per entry, names without spaces, 0..255),
  loaded by Slicer's Colors module and applied to a label map volume;
- ``NAME.label.txt``: the ITK-SNAP label description file (``IDX R G B A VIS
  MSH "LABEL"``, A in 0..1), loaded by ITK-SNAP's Segmentation > Import Label
  Descriptions.

For ``labels`` the index is the label value in the map; for ``one-hot`` and
``fractional`` maps it is the volume index along the 4th axis plus one (0 is
the background in both tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dicomvol.model.derived import SegmentInfo

#: Colours for segments without a display colour (tab20-like, distinct on black).
DEFAULT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232),
    (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
    (247, 182, 210), (219, 219, 141), (158, 218, 229),
)
#: The suffixes of the two colour tables (after the output stem).
SLICER_TABLE_SUFFIX = ".ctbl"
ITKSNAP_TABLE_SUFFIX = ".label.txt"


def colour_of(info: SegmentInfo, position: int) -> tuple[int, int, int]:
    """The segment's display colour, or a default one by its position (0-based)."""
    return info.rgb if info.rgb is not None else DEFAULT_COLOURS[position % len(DEFAULT_COLOURS)]


def table_entries(segments: Sequence[SegmentInfo], encoding: str,
                  label_values: Sequence[int]) -> list[tuple[int, str, tuple[int, int, int]]]:
    """(index, name, RGB) per segment: the label value, or volume index + 1."""
    out = []
    for n, (info, value) in enumerate(zip(segments, label_values, strict=True)):
        index = value if encoding == "labels" else n + 1
        out.append((index, info.label or f"segment {info.number}", colour_of(info, n)))
    return out


def segments_json(segments: Sequence[SegmentInfo], kind: str, encoding: str,
                  label_values: Sequence[int], voxels: dict[int, int]) -> list[dict[str, Any]]:
    """The contract's ``Segments`` list: per segment its number, LabelValue or Volume,
    name, codes, algorithm, colour and its voxel count in the map."""
    out = []
    for n, (info, value) in enumerate(zip(segments, label_values, strict=True)):
        entry = info.to_json(kind)
        if encoding == "labels":
            entry["LabelValue"] = value
        else:
            entry["Volume"] = n
        entry["RGB"] = list(colour_of(info, n))
        entry["DisplayColorSource"] = "source" if info.rgb is not None else "default"
        entry["Voxels"] = int(voxels.get(info.number, 0))
        out.append(entry)
    return out


def slicer_table(entries: Sequence[tuple[int, str, tuple[int, int, int]]]) -> str:
    """The 3D Slicer ``.ctbl`` text (background 0 first)."""
    lines = ["# Color table file written by dicomvol", f"# {len(entries) + 1} values",
             "0 Background 0 0 0 0"]
    for index, name, (r, g, b) in entries:
        lines.append(f"{index} {_slicer_name(name)} {r} {g} {b} 255")
    return "\n".join(lines) + "\n"


def itksnap_table(entries: Sequence[tuple[int, str, tuple[int, int, int]]]) -> str:
    """The ITK-SNAP label description text (background 0 first)."""
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File (written by dicomvol)",
        "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        "################################################",
        '    0     0    0    0        0  0  0    "Clear Label"',
    ]
    for index, name, (r, g, b) in entries:
        label = name.replace('"', "'")
        lines.append(f"{index:5d} {r:5d} {g:4d} {b:4d}        1  1  1    \"{label}\"")
    return "\n".join(lines) + "\n"


def _slicer_name(name: str) -> str:
    """Slicer separates fields by spaces: spaces in names become underscores."""
    cleaned = "_".join(name.split())
    return cleaned or "unnamed"

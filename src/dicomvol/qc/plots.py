"""Geometry explained in a picture: inline SVG plots of slice positions and of a 4th axis.

For an irregular series, :func:`positions_plot` draws every acquired slice's
position along the slice normal against its index (coloured by the output
that holds it), shades gaps (an interval of more than :data:`GAP_FACTOR`
times the median), rings frames that share a position with another frame
(duplicates), draws each output's grid as a rail of ticks on the right, and,
for a tilt or lateral shift, a second panel with each slice's in-plane
offset. :func:`fourth_axis_plot` draws the value that orders a 4D volume.
Plain SVG text, no scripts: it renders from ``file://`` anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from dicomvol.constants import IN_PLANE_TOLERANCE_MM, SAME_POSITION_TOLERANCE_MM
from dicomvol.qc.record import FourthAxis, Positions

#: An interval longer than this many median intervals is drawn as a gap.
GAP_FACTOR = 1.5
#: Colours of the outputs of one series, in order.
SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                  "#e377c2", "#17becf")
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 760, 260, 64, 300, 18, 40
#: Output grids drawn as rails (and named in the legend) per plot, at most.
MAX_RAILS = 8


@dataclass(frozen=True)
class PlotOutput:
    """One output of a series, as the plot shows it."""

    name: str
    positions: Positions
    resampled: bool
    gaps: tuple[tuple[float, float], ...] = ()  # (after_position_mm, gap_mm) from the sidecar


def nice_ticks(lo: float, hi: float, n: int = 5, integers: bool = False) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (whole numbers only if ``integers``)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integers:
        step = max(1.0, float(round(step)))
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


class _Frame:
    """Maps data to pixels inside a plot box."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], box: tuple[int, ...],
                 flip_y: bool = True) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0] - 0.5, x[0] + 0.5)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0] - 0.5, y[0] + 0.5)
        self.left, self.top, self.width, self.height = box
        self.flip_y = flip_y

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.width

    def py(self, y: float) -> float:
        frac = (y - self.y0) / (self.y1 - self.y0)
        return self.top + (1 - frac if self.flip_y else frac) * self.height

    def axes(self, xlabel: str, ylabel: str) -> list[str]:
        b = self.top + self.height
        out = [f'<rect x="{self.left}" y="{self.top}" width="{self.width}" '
               f'height="{self.height}" class="box"/>']
        for t in nice_ticks(self.y0, self.y1):
            y = self.py(t)
            out.append(f'<line x1="{self.left - 4}" y1="{y:.1f}" x2="{self.left}" '
                       f'y2="{y:.1f}" class="tick"/><text x="{self.left - 6}" y="{y + 4:.1f}" '
                       f'text-anchor="end">{t:g}</text>')
        for t in nice_ticks(self.x0, self.x1, 8, integers=True):
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{b}" x2="{x:.1f}" y2="{b + 4}" class="tick"/>'
                       f'<text x="{x:.1f}" y="{b + 16}" text-anchor="middle">{t:g}</text>')
        out.append(f'<text x="{self.left + self.width / 2:.0f}" y="{b + 32}" '
                   f'text-anchor="middle">{escape(xlabel)}</text>')
        cy = self.top + self.height / 2
        out.append(f'<text x="14" y="{cy:.0f}" text-anchor="middle" '
                   f'transform="rotate(-90 14 {cy:.0f})">{escape(ylabel)}</text>')
        return out


def _acquired(outputs: Sequence[PlotOutput]) -> list[tuple[float, int, str, float, float]]:
    """Unique acquired frames: (position, output index, frame key, row mm, col mm), sorted."""
    seen: dict[str, tuple[float, int, str, float, float]] = {}
    for n, out in enumerate(outputs):
        p = out.positions
        keys = p.frames if len(p.frames) == len(p.acquired_mm) else tuple(
            f"{n}:{i}" for i in range(len(p.acquired_mm)))
        for i, key in enumerate(keys):
            if key not in seen or (outputs[seen[key][1]].resampled and not out.resampled):
                row = p.row_mm[i] if i < len(p.row_mm) else 0.0
                col = p.col_mm[i] if i < len(p.col_mm) else 0.0
                seen[key] = (p.acquired_mm[i], n, key, row, col)
    return sorted(seen.values(), key=lambda v: (v[0], v[2]))


def positions_plot(title: str, outputs: Sequence[PlotOutput]) -> str:
    """The SVG of one irregular series' slice positions and output grids.

    Parameters
    ----------
    title : str
        Shown above the plot (e.g. the series number and description).
    outputs : sequence of PlotOutput
        The series' outputs (the same slice normal).
    """
    slices = _acquired(outputs)
    pos = np.array([s[0] for s in slices], dtype=np.float64)
    grids = [np.array(o.positions.grid_mm, dtype=np.float64) for o in outputs]
    every = np.concatenate([pos, *grids])
    if every.size == 0:
        every = np.zeros(1)
    lo, hi = float(np.min(every)), float(np.max(every))
    pad = 0.04 * (hi - lo) if hi > lo else 1.0
    plot_w = _W - _LEFT - _RIGHT
    frame = _Frame((-0.5, max(len(slices) - 0.5, 0.5)), (lo - pad, hi + pad),
                   (_LEFT, _TOP, plot_w, _H - _TOP - _BOTTOM))
    parts = _gap_bands(frame, pos, outputs)
    parts += frame.axes("acquired slice index (sorted by position)", "position on normal (mm)")
    parts += _points(frame, slices, pos)
    parts += _rails(frame, outputs, grids, plot_w)
    svg = _svg("acquired slice positions along the slice normal (dots, coloured by output); "
               "ticks on the right: each output's planes", _H, parts, title)
    tilt = _tilt_panel(slices)
    return svg + tilt


def _gap_bands(frame: _Frame, pos: np.ndarray,
               outputs: Sequence[PlotOutput]) -> list[str]:
    out: list[str] = []
    bands: list[tuple[float, float, str]] = []
    steps = np.diff(pos)
    positive = steps[steps > SAME_POSITION_TOLERANCE_MM]
    if len(positive):
        median = float(np.median(positive))
        wide = [i for i, step in enumerate(steps) if step > GAP_FACTOR * median]
        runs: list[list[int]] = []
        for i in wide:  # adjacent wide intervals make one band
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            lo, hi = float(pos[run[0]]), float(pos[run[-1] + 1])
            bands.append((lo, hi, _gap_text(steps[run], median)))
    elif not len(pos):
        for o in outputs:
            bands += [(a, a + g, f"gap {g:.3g} mm (sidecar)") for a, g in o.gaps]
    for a, b, text in bands:
        y1, y0 = frame.py(b), frame.py(a)
        out.append(f'<rect x="{frame.left}" y="{min(y0, y1):.1f}" width="{frame.width}" '
                   f'height="{abs(y0 - y1):.1f}" class="gap"><title>{escape(text)}</title>'
                   f'</rect><text x="{frame.left + 4}" y="{min(y0, y1) + 12:.1f}" '
                   f'class="gaptext">{escape(text)}</text>')
    return out


def _gap_text(steps: np.ndarray, median: float) -> str:
    """e.g. ``gap 10 mm: 1 slice missing`` or ``13 intervals of 5.9-7 mm (median 1.1 mm)``."""
    if len(steps) == 1:
        ratio = float(steps[0]) / median
        missing = round(ratio) - 1
        if abs(ratio - round(ratio)) < 0.1 and missing >= 1:
            return f"gap {steps[0]:.3g} mm: {missing} slice(s) missing"
        return f"interval {steps[0]:.3g} mm = {ratio:.2g} x the median {median:.3g} mm"
    lo, hi = f"{float(steps.min()):.3g}", f"{float(steps.max()):.3g}"
    span = lo if lo == hi else f"{lo}-{hi}"
    return f"{len(steps)} intervals of {span} mm (median {median:.3g} mm)"


def _points(frame: _Frame, slices: list[tuple[float, int, str, float, float]],
            pos: np.ndarray) -> list[str]:
    out = []
    dup = np.zeros(len(pos), dtype=bool)
    if len(pos) > 1:
        close = np.diff(pos) < SAME_POSITION_TOLERANCE_MM
        dup[1:] |= close
        dup[:-1] |= close
    for i, (p, n, _, _, _) in enumerate(slices):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        x, y = frame.px(i), frame.py(p)
        tip = f"slice {i}: {p:.3f} mm" + (" (duplicate position)" if dup[i] else "")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" style="fill:{colour}">'
                   f'<title>{escape(tip)}</title></circle>')
        if dup[i]:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" class="dup"/>')
    if dup.any():
        out.append(f'<text x="{frame.left + frame.width - 4}" y="{frame.top + 12}" '
                   f'text-anchor="end" class="duptext">{int(dup.sum())} frames share a '
                   f'position (ringed)</text>')
    return out


def _rails(frame: _Frame, outputs: Sequence[PlotOutput], grids: list[np.ndarray],
           plot_w: int) -> list[str]:
    """Each output's grid as a rail of ticks right of the plot, and a legend beside them."""
    out = []
    shown = list(zip(outputs, grids, strict=True))[:MAX_RAILS]
    for n, (o, grid) in enumerate(shown):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        x = _LEFT + plot_w + 14 + n * 12
        ticks = "".join(f'<line x1="{x - 4}" y1="{frame.py(g):.1f}" x2="{x + 4}" '
                        f'y2="{frame.py(g):.1f}"/>' for g in grid)
        kind = "resampled grid" if o.resampled else "exact grid"
        out.append(f'<g stroke="{colour}" class="rail"><title>{escape(o.name)}: {kind}, '
                   f'{len(grid)} planes</title>{ticks}</g>')
    x = _LEFT + plot_w + 14 + len(shown) * 12 + 4
    out.append(f'<text x="{x}" y="{_TOP + 8}" class="muted">output grids:</text>')
    for n, (o, grid) in enumerate(shown):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        kind = "resampled" if o.resampled else "exact"
        out.append(f'<text x="{x}" y="{_TOP + 22 + 14 * n}" style="fill:{colour}">'
                   f'<title>{escape(o.name)}</title>{escape(_short(o.name))} ({kind}, '
                   f'{len(grid)})</text>')
    if len(outputs) > len(shown):
        out.append(f'<text x="{x}" y="{_TOP + 22 + 14 * len(shown)}">… and '
                   f"{len(outputs) - len(shown)} more</text>")
    return out


def _short(name: str, n: int = 26) -> str:
    return name if len(name) <= n else "…" + name[-(n - 1):]


def _tilt_panel(slices: list[tuple[float, int, str, float, float]]) -> str:
    """In-plane offsets per slice when they drift (tilt, lateral shift); '' otherwise."""
    if len(slices) < 2:
        return ""
    row = np.array([s[3] for s in slices]) - slices[0][3]
    col = np.array([s[4] for s in slices]) - slices[0][4]
    if max(np.ptp(row), np.ptp(col)) <= IN_PLANE_TOLERANCE_MM:
        return ""
    height = 150
    every = np.concatenate([row, col])
    frame = _Frame((-0.5, len(slices) - 0.5), (float(every.min()), float(every.max())),
                   (_LEFT, 12, _W - _LEFT - _RIGHT, height - 12 - _BOTTOM))
    parts = frame.axes("acquired slice index", "in-plane offset (mm)")
    for values, colour, name in ((row, "#1f77b4", "along rows"), (col, "#d62728",
                                                                  "along columns")):
        pts = " ".join(f"{frame.px(i):.1f},{frame.py(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}"/>')
        parts.append(f'<text x="{_W - _RIGHT + 14}" y="{24 if colour == "#1f77b4" else 38}" '
                     f'style="fill:{colour}">{name}</text>')
    pos = np.array([s[0] for s in slices])
    span = float(pos[-1] - pos[0])
    drift = float(math.hypot(row[-1], col[-1]))
    angle = math.degrees(math.atan2(drift, span)) if span > 0 else 0.0
    title = f"slice origins drift {drift:.3g} mm in plane over {span:.3g} mm ({angle:.1f}°)"
    return _svg(title, height, parts)


def fourth_axis_plot(axis: FourthAxis) -> str:
    """SVG plots of what orders a 4D volume (and of acquisition time); '' when nothing is known."""
    out = _per_volume(f"4D: {len(axis.values)} volumes ordered by {axis.name}",
                      axis.values, f"{axis.name} {axis.unit}".strip(), axis.labels)
    if axis.times_s and axis.name != "acquisition time":
        out += _per_volume("acquisition time of each volume (first slice)", axis.times_s,
                           "acquisition time (s)", ())
    return out


def _per_volume(caption: str, values: Sequence[float | None], ylabel: str,
                labels: Sequence[str]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    height = 170
    frame = _Frame((0.5, len(values) + 0.5), (min(known), max(known)),
                   (_LEFT, 12, _W - _LEFT - 24, height - 12 - _BOTTOM))
    parts = frame.axes("volume (4th axis index + 1)", ylabel)
    for i, v in enumerate(values):
        if v is None:
            continue
        label = labels[i] if i < len(labels) else ""
        tip = f"volume {i + 1}: {v:g} {label}".strip()
        parts.append(f'<circle cx="{frame.px(i + 1):.1f}" cy="{frame.py(v):.1f}" r="2.6" '
                     f'style="fill:#1f77b4"><title>{escape(tip)}</title></circle>')
    return _svg(caption, height, parts)


def _svg(caption: str, height: int, parts: list[str], label: str = "") -> str:
    return (f'<figure class="plot"><figcaption>{escape(caption)}</figcaption>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
            f'viewBox="0 0 {_W} {height}" role="img" aria-label="{escape(label or caption)}">'
            f'{"".join(parts)}</svg></figure>')

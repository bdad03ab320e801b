"""The HTML of ``qc/index.html``: run counts and ledger, the outputs table, what was
skipped and failed, the geometry of irregular series, and one section per output
(on ``index.html``, or on pages of their own for a large run: :mod:`~dicomvol.qc.sections`).

Pure text assembly from :class:`~dicomvol.qc.entry.Entry` values (built by
:mod:`dicomvol.qc.build`); every link is relative (``../NAME.json``,
``img/...``), so the folder can be copied anywhere and opened from ``file://``.
Images are lazy-loaded and carry their size, so a page lays out at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from dicomvol.qc.assets import CSS, JS
from dicomvol.qc.entry import Entry, fmt_list, status
from dicomvol.qc.plots import PlotOutput, positions_plot
from dicomvol.qc.record import PAGE_NAME
from dicomvol.qc.sections import SECTIONS_PER_PAGE, page_names, section, volumes_page
from dicomvol.report.ledger import LEDGER_BALANCED_KEY, LEDGER_COUNT_KEYS


@dataclass(frozen=True)
class Ledger:
    """The frame accounting the page shows.

    From the report's ``ledger`` object when it has one (``frames_in`` set);
    else counted from the sidecars and the report's entries, unbalanced-able.
    """

    frames_in: int | None
    written: int
    skipped: int
    error_files: int
    error_frames: int | None
    written_and_skipped: int
    #: The report's own verdict (``ledger.balanced``), None without a ledger.
    reported_balance: bool | None = None

    @property
    def balanced(self) -> bool | None:
        """True/False when the report counts the input frames, else None."""
        if self.frames_in is None:
            return None
        errors = self.error_frames if self.error_frames is not None else self.error_files
        return (self.reported_balance is not False
                and self.frames_in == self.written + self.skipped + errors
                and self.written_and_skipped == 0)


def ledger_of(report: dict[str, Any], entries: Sequence[Entry]) -> Ledger:
    """The run's frame ledger: the report's ``ledger`` object, checked against the sidecars.

    The counts are the report's (:data:`~dicomvol.report.ledger.LEDGER_COUNT_KEYS`,
    each frame counted once) when it has a ledger; without one (a report of an
    older version) they are counted here: distinct frames in the sidecars'
    ``SourceInstances``, ``skipped`` entries and files in ``errors``, and the
    balance is unknown. Either way, skipped frames that an output's sidecar
    names as well are counted (they unbalance the ledger).
    """
    written: set[tuple[Any, ...]] = set()
    for e in entries:
        for s in e.sidecar.get("SourceInstances") or ():
            if isinstance(s, dict):  # an input frame: file, instance, frame (and mosaic tile)
                written.add((s.get("File"), s.get("SOPInstanceUID"), s.get("Frame"),
                             s.get("Tile")))
    frames = {w[:3] for w in written}
    skipped = [s for s in report.get("skipped", ()) if isinstance(s, dict)]
    both = sum(1 for s in skipped
               if (s.get("File"), s.get("SOPInstanceUID"), s.get("Frame")) in frames)
    n_errors = len(report.get("errors", ()))
    led = report.get("ledger")
    if isinstance(led, dict) and all(isinstance(led.get(k), int) for k in LEDGER_COUNT_KEYS):
        counts = [int(led[k]) for k in LEDGER_COUNT_KEYS]
        verdict = led.get(LEDGER_BALANCED_KEY)
        return Ledger(counts[0], counts[1], counts[2], n_errors, counts[3], both,
                      verdict if isinstance(verdict, bool) else None)
    return Ledger(None, len(written), len(skipped), n_errors, None, both)


def _checks(geometry: Any) -> tuple[str, str]:
    """(cell text, class) for the IDC checks: ``ok`` or the names of those that fail."""
    if not isinstance(geometry, dict) or not geometry:
        return "-", "muted"
    failed = [k for k, v in geometry.items() if v is False and k != "regularly_spaced_3d_volume"]
    return ("ok", "ok") if not failed else (", ".join(failed), "bad")


def table(entries: Sequence[Entry]) -> str:
    """The outputs table: one row per output."""
    head = ("output", "series", "description", "modality", "shape", "spacing (mm)",
            "orientation", "IDC checks", "warnings", "status")
    rows = []
    for e in entries:
        detail = e.sidecar.get("GeometryDetail")
        orientation = detail.get("orientation", "") if isinstance(detail, dict) else ""
        shape = e.get("Shape") or (list(e.record.shape) if e.record else [])
        voxels = 1
        for n in shape if isinstance(shape, list | tuple) else ():
            voxels *= int(n)
        checks, css = _checks(e.get("Geometry"))
        warnings = [str(w) for w in e.get("Warnings") or ()]
        description = " ".join(str(v) for v in (e.sidecar.get("SeriesDescription", ""),
                                                e.sidecar.get("VolumeLabel", "")) if v)
        series = e.sidecar.get("SeriesNumber")
        cells = [
            f'<td><a href="{e.href(PAGE_NAME)}">{escape(e.name)}</a></td>',
            f'<td class="num" data-v="{series if isinstance(series, int) else -1}">'
            f'{escape(str(series if series is not None else ""))}</td>',
            f"<td>{escape(description)}</td>",
            f"<td>{escape(str(e.sidecar.get('Modality', '')))}</td>",
            f'<td class="num nw" data-v="{voxels}">{escape(fmt_list(shape))}</td>',
            f"<td class=\"nw\">{escape(fmt_list(e.spacing))}</td>",
            f"<td>{escape(str(orientation))}</td>",
            f'<td class="{css}">{escape(checks)}</td>',
            f'<td class="num" data-v="{len(warnings)}" title="{escape(" | ".join(warnings))}">'
            f"{len(warnings) or ''}</td>",
            f"<td>{escape(status(e))}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return (f'<p><input id="filter" type="search" placeholder="filter: words that must all '
            f'occur in a row" aria-label="filter outputs"> <span id="shown">{len(entries)}'
            f"</span> of {len(entries)} shown</p>"
            f'<table id="outputs-table"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def summary(report: dict[str, Any], entries: Sequence[Entry], ledger: Ledger) -> str:
    """The run's counts and the ledger balance."""
    s = report.get("summary") if isinstance(report.get("summary"), dict) else {}
    assert isinstance(s, dict)
    boxes = [("files", s.get("files", "?")), ("outputs", len(entries)),
             ("frames written", ledger.written), ("frames skipped", ledger.skipped),
             ("files with errors", ledger.error_files),
             ("files ignored", len(report.get("ignored", ())))]
    counts = "".join(f"<div><b>{escape(str(v))}</b>{escape(k)}</div>" for k, v in boxes)
    errors = (f"{ledger.error_frames} in files with errors" if ledger.error_frames is not None
              else f"{ledger.error_files} file(s) with errors")
    parts = f"{ledger.written} written + {ledger.skipped} skipped + {errors}"
    if ledger.balanced is None:
        line = (f"frames accounted for: {parts}. The report does not count its input frames "
                "(no frame ledger), so the balance cannot be checked here.")
        css = "ledger"
    else:
        mark = "balances" if ledger.balanced else "does NOT balance"
        line = f"frames in: {ledger.frames_in} = {parts}: the ledger {mark}."
        css = "ledger ok" if ledger.balanced else "ledger bad"
    if ledger.written_and_skipped:
        line += (f" {ledger.written_and_skipped} skipped frame(s) are also in an output's "
                 "SourceInstances.")
        css = "ledger bad"
    return f'<div class="counts">{counts}</div><p class="{css}">{escape(line)}</p>'


def grouped(items: Sequence[dict[str, Any]], reason_key: str, what: str,
            columns: Sequence[str]) -> str:
    """Entries grouped by reason, each group collapsed, with every file listed."""
    if not items:
        return f'<p class="muted">No {what}.</p>'
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[str(item.get(reason_key, ""))].append(item)
    out = []
    for reason, group in sorted(groups.items(), key=lambda g: -len(g[1])):
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(i.get(c, '')))}</td>"
                                        for c in columns) + "</tr>" for i in group)
        out.append(f"<details><summary><b>{len(group)}</b> {what}: {escape(reason)}</summary>"
                   f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                   f"</details>")
    return "".join(out)


def errors_table(errors: Sequence[dict[str, Any]]) -> str:
    """Every file that could not be read or converted, with what is wrong."""
    if not errors:
        return '<p class="ok">No errors.</p>'
    rows = "".join(f'<tr><td>{escape(str(e.get("File", "")))}</td>'
                   f'<td class="bad">{escape(str(e.get("Error", "")))}</td></tr>'
                   for e in errors if isinstance(e, dict))
    return ("<table><thead><tr><th>file</th><th>error</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def series_plots(groups: Sequence[tuple[str, list[Entry]]]) -> tuple[str, dict[str, str]]:
    """One slice-position plot per irregular series; also the plot anchor of each output."""
    html = []
    anchors: dict[str, str] = {}
    for n, (title, members) in enumerate(groups):
        outputs = []
        for e in members:
            assert e.record is not None and e.record.positions is not None
            detail = e.sidecar.get("GeometryDetail")
            gaps = tuple((float(g["after_position_mm"]), float(g["gap_mm"]))
                         for g in (detail.get("gaps") or [] if isinstance(detail, dict) else [])
                         if isinstance(g, dict))
            outputs.append(PlotOutput(e.name, e.record.positions, bool(e.get("Resampled")), gaps))
        anchor = f"geometry-{n + 1}"
        for e in members:
            anchors[e.name] = anchor
        links = ", ".join(f'<a href="{e.href(PAGE_NAME)}">{escape(e.name)}</a>'
                          for e in members)
        html.append(f'<div id="{anchor}"><h3>{escape(title)}</h3><p class="muted">outputs: '
                    f"{links}</p>{positions_plot(title, outputs)}</div>")
    return "".join(html), anchors


def pages(report: dict[str, Any], entries: Sequence[Entry], title: str,
          generated: str) -> dict[str, str]:
    """Every page: file name (in ``qc/``) -> HTML; ``index.html`` first.

    Sets each entry's ``page`` (see :func:`~dicomvol.qc.sections.page_names`).
    """
    for e, name in zip(entries, page_names(len(entries)), strict=True):
        e.page = name
    by_name = {e.name: e for e in entries}
    labels_on: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        if e.kind == "label":
            ref = e.sidecar["LabelMap"].get("ReferencedImage")
            labels_on[str(ref)].append(e)
    groups = _irregular_series(entries)
    plots, plot_anchor = series_plots(groups)
    by_page: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        by_page[e.page].append(section(
            e, labels_on.get(e.name, []),
            by_name.get(str(e.sidecar["LabelMap"].get("ReferencedImage")))
            if e.kind == "label" else None, plot_anchor.get(e.name)))
    out = {PAGE_NAME: _index(report, entries, title, generated, plots, len(groups),
                             "".join(by_page.pop(PAGE_NAME, [])), list(by_page))}
    for name, parts in by_page.items():
        out[name] = volumes_page(name, title, "".join(parts), list(by_page))
    return out


def _index(report: dict[str, Any], entries: Sequence[Entry], title: str, generated: str,
           plots: str, n_groups: int, sections: str, volume_pages: list[str]) -> str:
    """``index.html``: one template, top to bottom, of the parts built above."""
    ledger = ledger_of(report, entries)
    skipped = [s for s in report.get("skipped", ()) if isinstance(s, dict)]
    ignored = [s for s in report.get("ignored", ()) if isinstance(s, dict)]
    kinds = Counter(e.kind for e in entries)
    if volume_pages:
        links = " · ".join(f'<a href="{p}">{escape(p)}</a>' for p in volume_pages)
        sections = (f'<p>{len(entries)} outputs: their sections are on {len(volume_pages)} '
                    f"pages of {SECTIONS_PER_PAGE} (the table links to each): {links}</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dicomvol QC: {escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><style>{CSS}</style></head><body>
<h1>dicomvol quality control</h1>
<p class="muted">{escape(title)} · dicomvol {escape(str(report.get("dicomvol_version", "")))}
 · page built {escape(generated)} · {kinds["image"]} image(s), {kinds["label"]} label map(s),
 {kinds["slide"]} slide(s)</p>
<nav><a href="#run">run</a> · <a href="#outputs">outputs</a> · <a href="#geometry">irregular
 series</a> · <a href="#skipped">skipped</a> · <a href="#errors">errors</a> ·
 <a href="#ignored">ignored</a> · <a href="#volumes">volumes</a></nav>
<section id="run"><h2>Run</h2>{summary(report, entries, ledger)}</section>
<section id="outputs"><h2>Outputs ({len(entries)})</h2>{table(entries)}</section>
<section id="geometry"><h2>Irregular series ({n_groups})</h2>
{plots or '<p class="muted">Every series is one regular grid.</p>'}</section>
<section id="skipped"><h2>Skipped frames ({len(skipped)})</h2>
{grouped(skipped, "Reason", "frame(s)", ("File", "SOPInstanceUID", "Frame"))}</section>
<section id="errors"><h2>Errors ({len(report.get("errors", ()))})</h2>
{errors_table(report.get("errors", ()))}</section>
<section id="ignored"><h2>Ignored files ({len(ignored)})</h2>
{grouped(ignored, "Reason", "file(s)", ("File",))}</section>
<section id="volumes"><h2>Volumes</h2>{sections}</section>
<script>{JS}</script></body></html>
"""


def _irregular_series(entries: Sequence[Entry]) -> list[tuple[str, list[Entry]]]:
    """Outputs with slice positions, grouped by series and slice normal, in page order."""
    groups: dict[tuple[str, tuple[float, ...]], list[Entry]] = {}
    for e in entries:
        if e.record is None or e.record.positions is None:
            continue
        normal = tuple(round(v, 3) for v in e.record.positions.normal)
        key = (str(e.sidecar.get("SeriesInstanceUID", e.name)), normal)
        groups.setdefault(key, []).append(e)
    out = []
    for members in groups.values():
        first = members[0].sidecar
        title = " ".join(str(v) for v in (f"series {first.get('SeriesNumber', '?')}",
                                          first.get("SeriesDescription", ""),
                                          f"({first.get('Modality', '')})") if v)
        out.append((title, members))
    return out

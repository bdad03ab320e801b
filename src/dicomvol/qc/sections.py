"""The section of each output: its views, overlays, plots and facts; and the pages of sections.

A run with more than :data:`SECTIONS_PER_PAGE` outputs gets its sections on
pages of that many (``qc/volumes-001.html``, ...), so that ``index.html``
(counts, table, skips, errors, plots) stays light however large the run;
smaller runs have them on ``index.html`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from dicomvol.qc.assets import CSS
from dicomvol.qc.entry import Entry, fmt_list, status
from dicomvol.qc.plots import fourth_axis_plot
from dicomvol.qc.record import PAGE_NAME
from dicomvol.qc.thumbs import Thumb

#: Output sections per page once a run has more outputs than this.
SECTIONS_PER_PAGE = 100


def thumb_html(thumb: Thumb, overlay: Thumb | None = None) -> str:
    """One view: the image, an optional overlay on top, the four letters and the caption."""
    letters = "".join(f'<span class="lt {side}">{escape(text)}</span>'
                      for side, text in zip("lrtb", thumb.letters, strict=True) if text)
    over = ""
    if overlay is not None:
        over = (f'<img class="overlay" loading="lazy" decoding="async" src="{escape(overlay.file)}"'
                f' width="{thumb.width}" height="{thumb.height}" alt="labels">')
    return (f'<figure class="view"><div class="frame" style="width:{thumb.width}px;'
            f'height:{thumb.height}px"><img loading="lazy" decoding="async" '
            f'src="{escape(thumb.file)}" width="{thumb.width}" height="{thumb.height}" '
            f'alt="{escape(thumb.caption)}">{over}{letters}</div>'
            f"<figcaption>{escape(thumb.caption)}</figcaption></figure>")


def view_rows(thumbs: Sequence[Thumb]) -> str:
    """Thumbnails row by row, each row under its label."""
    rows: dict[str, list[Thumb]] = {}
    for t in thumbs:
        rows.setdefault(t.row, []).append(t)
    return "".join(f'<div class="row"><div class="rowlabel">{escape(label)}</div>'
                   f"{''.join(thumb_html(t) for t in group)}</div>"
                   for label, group in rows.items())


def overlay_rows(image: Entry | None, label: Entry, here: str) -> str:
    """A label map drawn over the first row of its referenced image, with its legend.

    ``here`` is the page the rows are on (links to other pages name them).
    """
    assert label.record is not None
    overlays = {t.plane: t for t in label.record.thumbs if t.row == "labels"}
    base = [] if image is None or image.record is None else image.record.thumbs
    first_row = base[0].row if base else None
    views = [thumb_html(t, overlays.get(t.plane)) for t in base
             if t.row == first_row and t.plane in overlays and "MIP" not in t.caption]
    if not views:  # no image to draw over: the overlays alone
        views = [thumb_html(t) for t in overlays.values()]
    legend = "".join(f'<span><span class="swatch" style="background:rgb'
                     f'({int(s["rgb"][0])},{int(s["rgb"][1])},{int(s["rgb"][2])})"></span>'
                     f'{escape(str(s.get("label", "")))} ({escape(str(s.get("value", "")))})'
                     f"</span>" for s in label.record.legend)
    ref = (f'<a href="{image.href(here)}">{escape(image.name)}</a>' if image is not None
           else "its image (not in this run)")
    return (f'<div class="row"><div class="rowlabel">label map <a href="{label.href(here)}">'
            f"{escape(label.name)}</a> on {ref}</div>{''.join(views)}</div>"
            f'<div class="legend">{legend}</div>')


def section(e: Entry, labels_on: Sequence[Entry], image_of: Entry | None,
            plot_anchor: str | None) -> str:
    """The section of one output (on the page ``e.page``).

    ``labels_on`` are the label maps drawn on it, ``image_of`` the image a label
    map is drawn on, ``plot_anchor`` the id of its series' plot on ``index.html``.
    """
    here = e.page
    shape = e.get("Shape") or (list(e.record.shape) if e.record else [])
    facts = [str(e.sidecar.get("Modality", "")), fmt_list(shape),
             (fmt_list(e.spacing) + " mm") if e.spacing else ""]
    detail = e.sidecar.get("GeometryDetail")
    if isinstance(detail, dict):
        facts += [str(detail.get("orientation", "")), str(detail.get("case", ""))]
        if e.get("Sheared"):
            facts.append(f"sheared grid drawn in voxel order (the slice axis leans "
                         f"{float(detail.get('shear_degrees') or 0):.1f}° in the patient)")
    links = (f'<a href="../{escape(e.name)}">image</a> · '
             f'<a href="../{escape(e.stem)}.json">sidecar</a>')
    if plot_anchor:
        target = f"#{plot_anchor}" if here == PAGE_NAME else f"{PAGE_NAME}#{plot_anchor}"
        links += f' · <a href="{target}">slice positions</a>'
    warnings = "".join(f"<li>{escape(str(w))}</li>" for w in e.get("Warnings") or ())
    notes = [*e.problems, *(e.record.notes if e.record else [])]
    body = ""
    if e.kind == "label" and e.record is not None:
        body = overlay_rows(image_of, e, here)
    elif e.record is not None:
        body = view_rows(e.record.thumbs)
        body += "".join(overlay_rows(e, lab, here) for lab in labels_on
                        if lab.record is not None)
        if e.record.fourth is not None:
            body += fourth_axis_plot(e.record.fourth) or (
                f'<p class="muted">4D: {len(e.record.fourth.values)} volumes ordered by '
                f"{escape(e.record.fourth.name)}</p>")
    return (f'<article class="vol" id="{e.anchor}"><h3><a href="#{e.anchor}">'
            f'{escape(e.name)}</a> <span class="muted">{escape(status(e))}</span></h3>'
            f'<p class="facts">{escape(" · ".join(f for f in facts if f))} · {links}</p>'
            + (f'<ul class="warnings">{warnings}</ul>' if warnings else "")
            + "".join(f'<p class="bad">{escape(n)}</p>' for n in notes)
            + body + "</article>")




def page_names(n_entries: int) -> list[str]:
    """The page of each output's section, in order: ``index.html`` or ``volumes-NNN.html``."""
    if n_entries <= SECTIONS_PER_PAGE:
        return [PAGE_NAME] * n_entries
    return [f"volumes-{i // SECTIONS_PER_PAGE + 1:03d}.html" for i in range(n_entries)]


def volumes_page(name: str, title: str, sections: str, pages: Sequence[str]) -> str:
    """A page of output sections, with links back to the table and to its neighbours."""
    n = list(pages).index(name)
    nav = [f'<a href="{PAGE_NAME}#outputs">outputs table</a>']
    if n > 0:
        nav.append(f'<a href="{pages[n - 1]}">previous page</a>')
    if n + 1 < len(pages):
        nav.append(f'<a href="{pages[n + 1]}">next page</a>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dicomvol QC: {escape(title)}, volumes {n + 1} of {len(pages)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><style>{CSS}</style></head><body>
<h1>dicomvol quality control: volumes, page {n + 1} of {len(pages)}</h1>
<nav>{" · ".join(nav)}</nav><section id="volumes">{sections}</section>
<nav>{" · ".join(nav)}</nav></body></html>
"""

"""Build ``qc/index.html`` from an output folder: its run report, sidecars and QC records.

Each output's record (``qc/data/NAME.json``) is used when it is fresh (written
by ``convert --qc`` for the same image file); otherwise it is made here from
the written file: a 3D/4D image is read back (one volume at a time), a label
map drawn as overlays, a slide thumbnailed from one pyramid level. A failure
to draw one output is a note in its section, never a missing page. Files in
``qc/img`` and ``qc/data`` that no output uses any more are removed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dicomvol.constants import OUTPUT_FORMATS, REPORT_NAME
from dicomvol.errors import UsageError
from dicomvol.inputs.names import printable
from dicomvol.io.atomic import atomic_path
from dicomvol.qc.capture import from_image
from dicomvol.qc.derived import SLIDE_ENDINGS, from_label_map, from_slide, is_label_map, is_slide
from dicomvol.qc.entry import Entry
from dicomvol.qc.page import pages
from dicomvol.qc.record import DATA_DIR, IMG_DIR, PAGE_NAME, QC_DIR, read_record

log = logging.getLogger(__name__)

#: progress(done, total, what)
ProgressFn = Callable[[int, int, str], None]
#: Endings stripped to find an output's stem when the report does not name its sidecar.
STEM_ENDINGS = tuple(sorted({e for pair in OUTPUT_FORMATS.values() for e in pair}
                            | set(SLIDE_ENDINGS) | {".ome.zarr", ".zarr"},
                            key=len, reverse=True))


def stem_of(name: str, volume: dict[str, Any]) -> str:
    """An output's name without its extension (from its sidecar's name when the report has it)."""
    sidecar = volume.get("Sidecar")
    if isinstance(sidecar, str) and sidecar.endswith(".json"):
        return sidecar[: -len(".json")]
    for ending in STEM_ENDINGS:
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def read_report(out_dir: Path) -> dict[str, Any]:
    """The run report of an output folder.

    Raises
    ------
    UsageError
        If the folder has no readable ``dicomvol_report.json``.
    """
    path = out_dir / REPORT_NAME
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{out_dir}: no {REPORT_NAME} (run dicomvol convert into it first)"
                         ) from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the run report: {exc}") from exc
    if not isinstance(report, dict):
        raise UsageError(f"{path}: not a dicomvol run report")
    return report


def _sidecar(out_dir: Path, stem: str) -> tuple[dict[str, Any], str | None]:
    path = out_dir / f"{stem}.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, f"sidecar {path.name} unreadable: {exc}"
    return (value, None) if isinstance(value, dict) else ({}, f"sidecar {path.name}: not an object")


def entries_of(out_dir: Path, report: dict[str, Any], rebuild: bool = False,
               progress: ProgressFn | None = None) -> list[Entry]:
    """One :class:`Entry` per output of the report, with its QC record (made when needed)."""
    volumes = {str(v.get("Path")): v for v in report.get("volumes", ()) if isinstance(v, dict)}
    names = [str(n) for n in report.get("outputs", ())]
    entries = []
    for n, name in enumerate(names, 1):
        volume = volumes.get(name, {})
        stem = stem_of(name, volume)
        sidecar, problem = _sidecar(out_dir, stem)
        kind = "label" if is_label_map(sidecar) else "slide" if is_slide(name) else "image"
        entry = Entry(name, stem, sidecar, volume, kind=kind)
        if problem:
            entry.problems.append(problem)
        entry.record = None if rebuild else read_record(out_dir, stem)
        if entry.record is None:
            entry.record = _make(out_dir, entry)
        entries.append(entry)
        if progress is not None:
            progress(n, len(names), "QC page")
    return entries


def _make(out_dir: Path, entry: Entry) -> Any:
    try:
        if entry.kind == "label":
            return from_label_map(out_dir, entry.name, entry.stem, entry.sidecar)
        if entry.kind == "slide":
            return from_slide(out_dir, entry.name, entry.stem)
        return from_image(out_dir, entry.name, entry.stem, entry.sidecar)
    except Exception as exc:  # one output that cannot be drawn costs its pictures only
        log.warning("QC: cannot draw %s: %s: %s", entry.name, type(exc).__name__, exc)
        log.debug("QC drawing failed", exc_info=True)
        entry.problems.append(f"not drawn: {type(exc).__name__}: {exc}")
        return None


def _prune(qc_dir: Path, entries: list[Entry]) -> None:
    """Remove thumbnails and records no output of this page uses."""
    used = {f"{DATA_DIR}/{e.stem}.json" for e in entries}
    used |= {t.file for e in entries if e.record is not None for t in e.record.thumbs}
    for sub in (IMG_DIR, DATA_DIR):
        folder = qc_dir / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and f"{sub}/{path.name}" not in used:
                try:
                    path.unlink()
                except OSError:
                    log.warning("QC: cannot remove stale %s", path)


def build_page(out_dir: str | Path, rebuild: bool = False,
               progress: ProgressFn | None = None,
               report: dict[str, Any] | None = None) -> Path:
    """Write ``OUTDIR/qc/index.html`` (see the module docstring); returns its path.

    Parameters
    ----------
    out_dir : str or Path
        An output folder of ``dicomvol convert``.
    rebuild : bool
        Redraw every output from its file, ignoring existing records.
    report : dict, optional
        The run report's JSON object (read from the folder when not given).

    Raises
    ------
    UsageError
        If the folder holds no run report.
    """
    out = Path(out_dir)
    report = report if report is not None else read_report(out)
    entries = entries_of(out, report, rebuild, progress)
    qc_dir = out / QC_DIR
    qc_dir.mkdir(parents=True, exist_ok=True)
    written = pages(report, entries, str(out.resolve().name),
                    time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    for name, html in written.items():
        with atomic_path(qc_dir / name) as tmp:
            tmp.write_text(printable(html), encoding="utf-8")
    for old in qc_dir.glob("volumes-*.html"):  # pages of an earlier, larger run
        if old.name not in written:
            old.unlink(missing_ok=True)
    _prune(qc_dir, entries)
    return qc_dir / PAGE_NAME

"""``dicomvol qc OUTDIR``: build the visual quality-control page of an output folder."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "qc", help="build the visual quality-control page of an output folder",
        description="Write OUTDIR/qc/index.html from the folder's run report, sidecars and "
        "images: one row per output, thumbnails in patient orientation, slice positions of "
        "irregular series, everything skipped and every error. Thumbnails that convert --qc "
        "drew are reused; the rest are drawn from the written files.")
    p.add_argument("output", metavar="OUTDIR", help="an output folder of dicomvol convert")
    p.add_argument("--rebuild", action="store_true",
                   help="redraw every thumbnail from the written files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the page and print its path on stdout."""
    from pathlib import Path

    from dicomvol.cli.progress import Progress
    from dicomvol.errors import UsageError
    from dicomvol.qc.build import build_page

    if not Path(args.output).is_dir():
        raise UsageError(f"{args.output}: not a folder")
    progress = Progress(enabled=False if args.quiet else None)
    try:
        path = build_page(args.output, rebuild=args.rebuild, progress=progress)
    finally:
        progress.close()
    print(path)
    return 0

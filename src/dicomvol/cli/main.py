"""``dicomvol`` entry point: parse arguments, dispatch, map errors to exit codes.

Exit codes: 0 everything converted or deliberately skipped; 1 some files or
series failed; 2 usage error (bad arguments, missing input, existing output
folder conflicts). User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line on stderr (exit 2), never the usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"dicomvol: error: {message} (see dicomvol --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands (no heavy imports here)."""
    from dicomvol._version import __version__
    from dicomvol.cli import convert, demo, inspect, qc

    parser = _Parser(
        prog="dicomvol",
        description="Turn DICOM series into exact 3D/4D volumes (NIfTI), with a report "
        "that accounts for every input file.",
        epilog="Exit codes: 0 all converted or deliberately skipped, 1 some files or series "
        "failed, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"dicomvol {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug) on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    convert.add_parser(sub)
    inspect.add_parser(sub)
    qc.add_parser(sub)
    demo.add_parser(sub)
    return parser


#: Thread counts the CLI gives numpy's BLAS unless the user set them: dicomvol runs in
#: parallel with processes and does no large linear algebra, and OpenBLAS starting a thread
#: per core in every process costs ~0.06-0.1 s of CPU at each start-up (measured on 2 cores).
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}


def _tolerant_streams() -> None:
    """stdout and stderr that print any file name: a name that is not UTF-8 (its bytes
    held as lone surrogates) is shown with backslash escapes where the terminal's
    encoding would refuse it (a strict UTF-8 locale), never a traceback."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    for name, value in BLAS_THREADS.items():  # before numpy is imported (lazily, below)
        os.environ.setdefault(name, value)
    _tolerant_streams()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        print("dicomvol: error: a command is required: convert, inspect, qc or demo "
              "(see dicomvol --help)", file=sys.stderr)
        return EXIT_USAGE
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="dicomvol: %(levelname)s: %(message)s",
                        stream=sys.stderr)
    from dicomvol.errors import DicomvolError, UsageError

    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"dicomvol: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DicomvolError as exc:
        print(f"dicomvol: error: {exc}", file=sys.stderr)
        return EXIT_FAILURES
    except KeyboardInterrupt:
        print("dicomvol: interrupted (outputs already written are complete)", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"dicomvol: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_FAILURES


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

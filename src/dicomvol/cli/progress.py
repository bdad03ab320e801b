"""A small progress bar on stderr, drawn only for a terminal and a run longer than a moment."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds before the bar first appears (short runs print nothing).
DELAY_S = 0.5


class Progress:
    """Callable ``progress(done, total, what)`` drawing ``what [#####   ] done/total``."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self.drawn = False
        self._last = 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < DELAY_S or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + " " * (width - filled)
        self.stream.write(f"\r{what:<16} [{bar}] {done}/{total}")
        self.drawn = True
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

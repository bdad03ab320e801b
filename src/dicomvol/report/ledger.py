"""The frame ledger: every frame indexing found, and where each one ended.

Every input frame is entered once, as soon as indexing finds it (image
frames, SEG frames, each RTSTRUCT as one whole instance; other frame sources,
such as whole-slide microscopy, enter theirs through :meth:`Ledger.enter`).
When a run ends, :meth:`Ledger.close` settles the run report against it: each
frame must be in an output's ``SourceInstances`` (:attr:`OutputRecord.sources`),
in ``skipped`` or, by file, in ``errors``. A frame that is nowhere is a bug
somewhere in the pipeline; it costs an ``errors`` entry naming its series and
file ("internal: frame not accounted for"), so the run fails loudly instead
of losing data silently. Everything is one pass over the frames and the
report's entries: O(frames).

A frame is counted once, in the first of: written (in an output; a resampled
output may share frames with the exact stack it was made from), in a file
with an error, skipped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dicomvol.model.derived import DerivedObject
from dicomvol.model.records import FileError, FrameRecord

log = logging.getLogger(__name__)

#: A frame's identity in the ledger: (path, SOPInstanceUID, frame (1-based), mosaic tile or 0).
FrameKey = tuple[str, str, int, int]
#: The error text of a frame that ended nowhere.
NOT_ACCOUNTED = "internal: frame not accounted for"
#: The counts of the run report's ``ledger`` object (integers), and its verdict (bool).
LEDGER_COUNT_KEYS = ("frames_in", "frames_written", "frames_skipped", "frames_errors")
LEDGER_BALANCED_KEY = "balanced"


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    """How the frames of a run ended; the report's ``ledger`` object.

    Attributes
    ----------
    frames_in : int
        Distinct frames entered (indexing found them).
    frames_written : int
        Frames in at least one output's ``SourceInstances``.
    frames_skipped : int
        Frames in no output, listed in ``skipped``.
    frames_errors : int
        Frames in no output and not skipped whose file is in ``errors``
        (including the frames the ledger itself found unaccounted for).
    unaccounted : int
        Frames that were in no output, not skipped and not in a file with an
        error until the ledger reported them (0 in a correct run).
    written_and_skipped : int
        Frames in an output that ``skipped`` lists as well (0 in a correct run).
    """

    frames_in: int
    frames_written: int
    frames_skipped: int
    frames_errors: int
    unaccounted: int = 0
    written_and_skipped: int = 0

    @property
    def balanced(self) -> bool:
        """Every frame ended in exactly one place and none had to be reported by the ledger."""
        return self.unaccounted == 0 and self.written_and_skipped == 0 and self.frames_in == (
            self.frames_written + self.frames_skipped + self.frames_errors)

    def to_json(self) -> dict[str, Any]:
        """The run report's ``ledger`` object (:data:`LEDGER_COUNT_KEYS` and more)."""
        return {"frames_in": self.frames_in, "frames_written": self.frames_written,
                "frames_skipped": self.frames_skipped, "frames_errors": self.frames_errors,
                "frames_unaccounted": self.unaccounted,
                "frames_written_and_skipped": self.written_and_skipped,
                LEDGER_BALANCED_KEY: self.balanced}


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the ledger keeps of a frame: where to name it if it is lost."""

    rel: str
    series: str


class Ledger:
    """Frames in, and the check that each one ended in the report.

    Examples
    --------
    >>> ledger = Ledger()
    >>> ledger.enter("/in/a.dcm", "a.dcm", "1.2.3", series="1.2")
    >>> len(ledger)
    1
    """

    def __init__(self) -> None:
        self._frames: dict[FrameKey, _Entry] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def enter(self, path: str, rel: str, sop_instance_uid: str, frame: int = 1, tile: int = 0,
              series: str = "") -> None:
        """Enter one frame (a second entry of the same frame is the same frame)."""
        self._frames.setdefault((path, sop_instance_uid, frame, tile), _Entry(rel, series))

    def enter_frames(self, frames: Iterable[FrameRecord]) -> None:
        """Enter indexed frame records (image and SEG frames; mosaic tiles one by one)."""
        for f in frames:
            self.enter(f.path, f.rel, f.sop_instance_uid, f.frame, f.tile or 0,
                       f.series_instance_uid)

    def enter_derived(self, objects: Iterable[DerivedObject]) -> None:
        """Enter derived objects without frame records: an RTSTRUCT is one whole instance.

        A SEG's frames are frame records (:meth:`enter_frames`), so a SEG object adds nothing.
        """
        for obj in objects:
            if obj.kind == "RTSTRUCT":
                self.enter(obj.path, obj.rel, obj.sop_instance_uid, 1, 0,
                           obj.series_instance_uid)

    def settle(self, written: Iterable[Iterable[FrameKey]],
               skipped: Iterable[tuple[str, str, int | None]],
               error_paths: Iterable[str]) -> tuple[LedgerSummary, list[FileError]]:
        """Count where every frame ended; the errors to add for frames that ended nowhere.

        Parameters
        ----------
        written : iterable of iterables of FrameKey
            Each output's sources.
        skipped : iterable of (path, SOPInstanceUID, frame or None)
            The ``skipped`` entries (frame None: every frame of the instance;
            a frame number covers all its mosaic tiles).
        error_paths : iterable of str
            Paths of the files in ``errors``.
        """
        out: set[FrameKey] = set()
        for keys in written:
            out.update(keys)
        skips = set(skipped)
        bad = set(error_paths)
        counts = {"written": 0, "errors": 0, "skipped": 0, "both": 0}
        lost: dict[str, list[tuple[FrameKey, _Entry]]] = defaultdict(list)
        for key, entry in self._frames.items():
            path, sop, frame, _ = key
            is_skipped = (path, sop, frame) in skips or (path, sop, None) in skips
            if key in out:
                counts["written"] += 1
                counts["both"] += is_skipped
            elif path in bad:
                counts["errors"] += 1
            elif is_skipped:
                counts["skipped"] += 1
            else:
                lost[path].append((key, entry))
        errors = [_lost_error(path, frames) for path, frames in sorted(lost.items())]
        n_lost = sum(len(v) for v in lost.values())
        summary = LedgerSummary(len(self._frames), counts["written"], counts["skipped"],
                                counts["errors"] + n_lost, n_lost, counts["both"])
        if counts["both"]:
            log.error("%d frame(s) are in an output and also listed as skipped", counts["both"])
        if n_lost:
            log.error("%d frame(s) in %d file(s) were in no output, not skipped and not in "
                      "errors: reported as errors (%s)", n_lost, len(lost), NOT_ACCOUNTED)
        return summary, errors


def _lost_error(path: str, frames: list[tuple[FrameKey, _Entry]]) -> FileError:
    """One ``errors`` entry for a file's frames that ended nowhere, naming series and frames."""
    rel = frames[0][1].rel
    series = sorted({e.series for _, e in frames if e.series})
    numbers = sorted({(k[2], k[3]) for k, _ in frames})
    shown = ", ".join(f"{f}" + (f" tile {t}" if t else "") for f, t in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return FileError(path, rel, f"{NOT_ACCOUNTED}: series {', '.join(series) or '(unknown)'}, "
                                f"file {rel}, frame(s) {shown}{more} are in no output, not "
                                "skipped and not in errors (a dicomvol bug: please report it)")

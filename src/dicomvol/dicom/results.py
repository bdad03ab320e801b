"""What indexing returns, and the unit of work a header-reading worker runs.

Kept apart from :mod:`dicomvol.dicom.index` (which imports pydicom) so that the
process that plans a run can hold these values, and unpickle them from its
workers, without importing pydicom: a conversion's main process never reads a
header itself (its peak memory stays that of numpy and the planner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dicomvol.inputs.discover import Candidate
from dicomvol.model.derived import DerivedObject
from dicomvol.model.records import FileError, FrameRecord, IgnoredFile
from dicomvol.options import StorageOptions


@dataclass
class IndexResult:
    """Everything the index learned about a set of files."""

    frames: list[FrameRecord] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    #: SEG and RTSTRUCT instances (a SEG's frames are in ``frames`` as well).
    derived: list[DerivedObject] = field(default_factory=list)

    def extend(self, other: IndexResult) -> None:
        """Append another result's entries to this one."""
        self.frames.extend(other.frames)
        self.ignored.extend(other.ignored)
        self.errors.extend(other.errors)
        self.derived.extend(other.derived)

    def sort(self) -> None:
        """Order entries by file, so results do not depend on which worker finished first."""
        self.frames.sort(key=lambda f: (f.path, f.frame, f.tile or 0))
        self.ignored.sort(key=lambda i: i.path)
        self.errors.sort(key=lambda e: e.path)
        self.derived.sort(key=lambda d: (d.path, d.sop_instance_uid))


@dataclass(frozen=True)
class IndexTask:
    """A chunk of files to index, and the header keywords the records must carry."""

    candidates: tuple[Candidate, ...]
    names: tuple[str, ...] = ()
    storage: StorageOptions | None = None  # how a worker builds its object-store client

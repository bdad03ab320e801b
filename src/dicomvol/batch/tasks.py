"""The picklable entry points a run's pool executes, importing their code where they run.

:func:`run_job` and :func:`index_chunk` import the job and index code (pydicom,
the pixel, metadata and writer stages) in the worker that runs them, or in this
process with ``-j 1``. The process that plans a run pickles references to these
two functions only, so for an ordinary run it never imports pydicom, nibabel or
OpenSSL: its peak memory is that of numpy, the planner and the records.
``tests/batch/test_main_imports.py`` checks it.

Where they run, pydicom is imported only if a file needs it (the lean readers decline
it), and then without ``requests`` (:func:`guard_pydicom_import`): pydicom imports it
only to download its own test data (``pydicom.data``, which falls back to ``urllib``
without it), and with urllib3, charset_normalizer and idna it costs each worker about
5 MiB of its peak memory.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dicomvol.batch.work import Done, Job
from dicomvol.dicom.results import IndexResult, IndexTask

if TYPE_CHECKING:  # pragma: no cover - importlib.abc imports importlib.resources, tempfile...
    from importlib.machinery import ModuleSpec


class _WithoutRequests:
    """pydicom's own loader, run while ``import requests`` raises ImportError.

    (A loader and a finder by protocol, not by ``importlib.abc``, whose import costs
    ``importlib.resources``, ``tempfile``, ``shutil``, ``bz2`` and ``lzma``: 0.8 MiB.)
    """

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        if "requests" in sys.modules:
            self._loader.exec_module(module)
            return
        sys.modules["requests"] = None  # type: ignore[assignment]  # import requests: ImportError
        try:
            self._loader.exec_module(module)
        finally:
            del sys.modules["requests"]


class _PydicomFinder:
    """Finds pydicom once (through the other finders), with :class:`_WithoutRequests`
    as its loader."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None
                  ) -> ModuleSpec | None:
        if fullname != "pydicom":
            return None
        _drop_finder()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _WithoutRequests(spec.loader)  # type: ignore[assignment]
                return spec
        return None


def _drop_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PydicomFinder)]


def guard_pydicom_import() -> None:
    """Make a later ``import pydicom`` (if any) refuse its optional import of ``requests``.

    It imports nothing: a job or chunk whose files the lean readers handle never loads
    pydicom at all.
    """
    if "pydicom" in sys.modules or "requests" in sys.modules:
        return
    if not any(isinstance(f, _PydicomFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PydicomFinder())


def run_job(job: Job) -> Done:
    """:func:`dicomvol.batch.jobs.run_job`, imported where the job runs."""
    guard_pydicom_import()
    from dicomvol.batch import jobs

    return jobs.run_job(job)


def index_chunk(task: IndexTask) -> IndexResult:
    """:func:`dicomvol.dicom.index.index_task`, imported where the chunk is read."""
    guard_pydicom_import()
    from dicomvol.dicom.index import index_task

    return index_task(task)

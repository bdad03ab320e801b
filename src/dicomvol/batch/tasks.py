"""The picklable entry points a run's pool executes, importing their code where they run.

:func:`run_job` and :func:`index_chunk` import the job and index code (pydicom,
the pixel, metadata and writer stages) in the worker that runs them, or in this
process with ``-j 1``. The process that plans a run pickles references to these
two functions only, so for an ordinary run it never imports pydicom, nibabel or
OpenSSL: its peak memory is that of numpy, the planner and the records.
``tests/batch/test_main_imports.py`` checks it.

Where they run, pydicom is imported without ``requests`` (:func:`import_pydicom`):
pydicom imports it only to download its own test data (``pydicom.data``, which
falls back to ``urllib`` without it), and with urllib3, charset_normalizer and
idna it costs each worker about 5 MiB of its peak memory.
"""

from __future__ import annotations

import sys

from dicomvol.batch.work import Done, Job
from dicomvol.dicom.results import IndexResult, IndexTask


def import_pydicom() -> None:
    """Import pydicom, unless done already, without letting it import ``requests``.

    ``requests`` stays importable afterwards (e.g. by a cloud client): only
    pydicom's optional import of it, for downloading its test data, is refused.
    """
    if "pydicom" in sys.modules or "requests" in sys.modules:
        return
    sys.modules["requests"] = None  # type: ignore[assignment]  # import requests: ImportError
    try:
        import pydicom  # noqa: F401
    finally:
        del sys.modules["requests"]


def run_job(job: Job) -> Done:
    """:func:`dicomvol.batch.jobs.run_job`, imported where the job runs."""
    import_pydicom()
    from dicomvol.batch import jobs

    return jobs.run_job(job)


def index_chunk(task: IndexTask) -> IndexResult:
    """:func:`dicomvol.dicom.index.index_task`, imported where the chunk is read."""
    import_pydicom()
    from dicomvol.dicom.index import index_task

    return index_task(task)

"""The picklable entry points a run's pool executes, importing their code where they run.

:func:`run_job` and :func:`index_chunk` import the job and index code (pydicom,
the pixel, metadata and writer stages) in the worker that runs them, or in this
process with ``-j 1``. The process that plans a run pickles references to these
two functions only, so for an ordinary run it never imports pydicom, nibabel or
OpenSSL: its peak memory is that of numpy, the planner and the records.
``tests/batch/test_main_imports.py`` checks it.
"""

from __future__ import annotations

from dicomvol.batch.work import Done, Job
from dicomvol.dicom.results import IndexResult, IndexTask


def run_job(job: Job) -> Done:
    """:func:`dicomvol.batch.jobs.run_job`, imported where the job runs."""
    from dicomvol.batch import jobs

    return jobs.run_job(job)


def index_chunk(task: IndexTask) -> IndexResult:
    """:func:`dicomvol.dicom.index.index_task`, imported where the chunk is read."""
    from dicomvol.dicom.index import index_task

    return index_task(task)

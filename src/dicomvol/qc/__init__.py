"""The visual quality-control report: ``qc/index.html`` in an output folder.

Floor 6, between ``report`` and ``batch``: a job (:mod:`dicomvol.batch.jobs`)
samples the centre planes of the volume it writes (:mod:`~dicomvol.qc.sample`)
and renders small PNG thumbnails in patient orientation
(:mod:`~dicomvol.qc.views`, :mod:`~dicomvol.qc.window`, :mod:`~dicomvol.qc.png`),
with its geometry facts (:mod:`~dicomvol.qc.record`); the page
(:mod:`~dicomvol.qc.page`) is built from the run report, the sidecars and those
records by :func:`dicomvol.qc.build.build_page`, which renders whatever is
missing from the written images (``dicomvol qc OUTDIR``).
"""

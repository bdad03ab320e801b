"""Writing outputs, atomically: the format registry, NIfTI (the only place with RAS), NRRD/MHA."""

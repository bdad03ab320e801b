"""DICOM files -> frame records: headers (lean reader, pydicom), values, vendor private tags."""

"""Synthetic DICOM with known ground truth, for the demo, the benchmarks and the tests.

The library never imports this package. Split by concern: :mod:`series`
(single-frame series and localizers), :mod:`damaged` (broken files),
:mod:`derived` (SEG and RTSTRUCT),
:mod:`geometry` (directions, DS formatting), :mod:`siemens` (CSA headers),
:mod:`demo` (the demo study).
"""

from dicomvol.testing.damaged import (
    element_offsets,
    write_conflicting_copy,
    write_header_garbage,
    write_nested_sequences,
    write_non_dicom,
    write_overlong_element,
    write_raw_value,
    write_truncated,
)
from dicomvol.testing.demo import write_demo_study
from dicomvol.testing.derived import (
    Roi,
    SegFrame,
    polygon_on_slice,
    seg_frames_from_masks,
    write_parametric_map,
    write_rtdose,
    write_rtstruct,
    write_seg,
)
from dicomvol.testing.geometry import directions_for, oblique_directions, rotation_matrix
from dicomvol.testing.series import (
    SyntheticSeries,
    deterministic_uids,
    write_localizer,
    write_series,
)

__all__ = [
    "Roi",
    "SegFrame",
    "SyntheticSeries",
    "deterministic_uids",
    "directions_for",
    "element_offsets",
    "oblique_directions",
    "polygon_on_slice",
    "rotation_matrix",
    "seg_frames_from_masks",
    "write_conflicting_copy",
    "write_demo_study",
    "write_header_garbage",
    "write_localizer",
    "write_nested_sequences",
    "write_non_dicom",
    "write_overlong_element",
    "write_parametric_map",
    "write_raw_value",
    "write_rtdose",
    "write_rtstruct",
    "write_seg",
    "write_series",
    "write_truncated",
]

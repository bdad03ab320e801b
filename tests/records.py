"""A FrameRecord for planner tests: one frame of a plain axial CT slice, any field changed."""

from __future__ import annotations

from typing import Any

from dicomvol.model.records import FrameRecord


def axial_frame(k: int = 0, **changes: Any) -> FrameRecord:
    """Frame ``k`` of a 4 x 3 axial stack 2 mm apart (file ``f<k>``, UID ``1.<k>``)."""
    fields: dict[str, Any] = dict(
        path=f"/in/f{k}", rel=f"f{k}", sop_instance_uid=f"1.{k}", sop_class_uid="", frame=1,
        number_of_frames=1, series_instance_uid="s", study_instance_uid="", modality="CT",
        series_number=1, series_description="", instance_number=k, image_type=(),
        rows=4, columns=3, samples_per_pixel=1, photometric="MONOCHROME2", bits_allocated=16,
        bits_stored=16, pixel_representation=0, transfer_syntax="",
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), position=(0.0, 0.0, 2.0 * k),
        pixel_spacing=(1.0, 1.0), slice_thickness=None, spacing_between_slices=None,
        rescale_slope=1.0, rescale_intercept=0.0, echo_number=None, echo_time=None,
        acquisition_number=None, temporal_position=None, trigger_time=None,
        acquisition_time=None)
    fields.update(changes)
    return FrameRecord(**fields)

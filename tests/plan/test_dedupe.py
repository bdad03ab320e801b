"""plan/planner._dedupe: frames are compared by SOPInstanceUID, never by an empty one."""

from __future__ import annotations

from typing import Any

import pytest

from dicomvol.model.records import FrameRecord
from dicomvol.plan.planner import plan_index


def _frame(k: int, uid: str) -> FrameRecord:
    fields: dict[str, Any] = dict(
        path=f"/in/f{k}", rel=f"f{k}", sop_instance_uid=uid, sop_class_uid="", frame=1,
        number_of_frames=1, series_instance_uid="s", study_instance_uid="", modality="CT",
        series_number=1, series_description="", instance_number=k, image_type=(),
        rows=2, columns=2, samples_per_pixel=1, photometric="MONOCHROME2", bits_allocated=16,
        bits_stored=16, pixel_representation=0, transfer_syntax="",
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), position=(0.0, 0.0, 2.0 * k),
        pixel_spacing=(1.0, 1.0), slice_thickness=None, spacing_between_slices=None,
        rescale_slope=1.0, rescale_intercept=0.0, echo_number=None, echo_time=None,
        acquisition_number=None, temporal_position=None, trigger_time=None,
        acquisition_time=None)
    return FrameRecord(**fields)


@pytest.mark.parametrize("n", [4, 400])
def test_frames_without_a_uid_are_not_one_instance(n: int,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        result = plan_index([_frame(k, "") for k in range(n)], n_files=n)
    assert not caplog.records
    (plan,) = result.plans
    assert len(plan.all_frames) == n and not result.skipped


def test_a_uid_shared_by_different_images_still_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        result = plan_index([_frame(k, "1.2.3") for k in range(3)], n_files=3)
    assert len([r for r in caplog.records if "share SOPInstanceUID 1.2.3" in r.getMessage()]) == 2
    (plan,) = result.plans
    assert len(plan.all_frames) == 3

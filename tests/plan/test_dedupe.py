"""plan/planner._dedupe: frames are compared by SOPInstanceUID, never by an empty one."""

from __future__ import annotations

import pytest

from dicomvol.model.records import FrameRecord
from dicomvol.plan.planner import plan_index
from records import axial_frame


def _frame(k: int, uid: str) -> FrameRecord:
    return axial_frame(k, sop_instance_uid=uid, rows=2, columns=2)


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

"""The planner's per-frame shortcuts give what the work they skip gives.

``non_volume_reason`` with a run's table of known reasons (looked up by what frames share
and the state of their position) against the reason worked out frame by frame;
``plan_stack`` with the measures of stacks at the same positions (the volumes of a
diffusion series) against planning each stack afresh.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

from dicomvol.model import geometry
from dicomvol.options import PlanOptions
from dicomvol.plan import stacks
from dicomvol.plan.planner import non_volume_reason, plan_index
from dicomvol.plan.stacks import StackContext, plan_stack
from records import axial_frame

NAN, INF = float("nan"), float("inf")


_frame = axial_frame


#: Frames with every kind of reason, and frames that share all but a broken position.
CASES = [
    {}, {"position": None}, {"position": (0.0, NAN, 1.0)}, {"position": (INF, 0.0, 1.0)},
    {"orientation": None}, {"orientation": None, "position": None},
    {"pixel_spacing": None, "position": (NAN, 0.0, 0.0)},
    {"orientation": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)}, {"pixel_spacing": (0.0, 1.0)},
    {"pixel_spacing": (NAN, 1.0)}, {"pixel_spacing": (NAN, 1.0), "position": (NAN, 0.0, 0.0)},
    {"orientation": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), "position": (NAN, 0.0, 0.0)},
    {"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, {"layout_error": "Siemens mosaic: x"},
    {"samples_per_pixel": 3, "photometric": "RGB", "bits_allocated": 8},
    {"samples_per_pixel": 3, "photometric": "YBR_FULL", "bits_allocated": 16},
    {"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"},
]


@pytest.mark.parametrize("order", [0, 1, 2])
def test_known_reasons_are_the_reasons_worked_out(order: int) -> None:
    frames = [_frame(k, **case) for k, case in enumerate(CASES * 2)]
    if order:  # the table filled in another order: each frame still gets its own reason
        frames = frames[::-1] if order == 1 else frames[1::2] + frames[::2]
    known: dict[tuple[Any, ...], str | None] = {}
    assert [non_volume_reason(f, known) for f in frames] == [non_volume_reason(f) for f in frames]
    reasons = {non_volume_reason(f) for f in frames}
    assert None in reasons and len(reasons) > 10  # the cases are distinct, one of them fine


def _summary(planned: tuple[list[Any], list[Any]], geometry_only: bool = False
             ) -> list[Any]:
    """What a plan_stack result says (VolumePlan compares by identity)."""
    plans, skipped = planned
    out: list[Any] = [(p.suffix, p.affine_rows, p.shape, p.detail, tuple(p.warnings),
                       p.resample) for p in plans]
    if not geometry_only:
        out += [[f.key for f in p.all_frames] for p in plans]
        out += [(s.path, s.reason) for s in skipped]
    return out


def test_a_stack_measured_before_is_planned_as_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = StackContext("", "", (), None, PlanOptions())
    regular = [_frame(k) for k in range(5)]
    gapped = [_frame(k, position=(0.0, 0.0, 2.0 * k + (3.0 if k > 2 else 0.0)))
              for k in range(5)]
    tilted = [_frame(k, position=(0.0, 0.3 * k, 2.0 * k)) for k in range(5)]
    calls: list[int] = []
    real = geometry.voxel_errors

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(stacks.geometry, "voxel_errors", counting)
    for stack in (regular, gapped, tilted):
        fresh = plan_stack(stack, ctx)
        measured: dict[tuple[Any, ...], Any] = {}
        first = plan_stack(stack, ctx, measured)
        before = len(calls)
        again = [dataclasses.replace(f, sop_instance_uid=f"2.{n}", path=f"/in/g{n}")
                 for n, f in enumerate(stack)]  # another volume at the same positions
        second = plan_stack(again, ctx, measured)
        assert _summary(first) == _summary(fresh)
        assert _summary(second, geometry_only=True) == _summary(fresh, geometry_only=True)
        assert {f.path for p in second[0] for f in p.all_frames} | {
            s.path for s in second[1]} == {f.path for f in again}  # its own frames
        if stack is regular:
            assert len(calls) == before  # measured once, for the first volume
    moved = [dataclasses.replace(f, position=(0.0, 0.0, 2.0 * n + 0.5))
             for n, f in enumerate(regular)]
    measured = {}
    plan_stack(regular, ctx, measured)
    (plan,), _ = plan_stack(moved, ctx, measured)  # other positions: measured anew
    assert plan.affine_rows != plan_stack(regular, ctx)[0][0].affine_rows


def test_a_diffusion_series_plans_the_same_with_and_without_measures(tmp_path: Path) -> None:
    from dicomvol.dicom.index import index_files
    from dicomvol.inputs.discover import discover
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    volumes = [DwiVolume(0.0), DwiVolume(1000.0, (0.6, 0.48, 0.64)),
               DwiVolume(1000.0, (0.0, 0.6, 0.8)), DwiVolume(0.0)]
    write_dwi_series(tmp_path / "ge", "GE", volumes, shape=(6, 5), n_slices=4)
    frames = index_files(discover([tmp_path])).frames
    (plan,) = plan_index(frames, n_files=len(frames)).plans
    assert plan.shape == (5, 6, 4, 4) and plan.detail.fourth_dimension == "diffusion"
    for volume in plan.frames:  # each volume exact under the 4D's affine
        assert max(geometry.voxel_errors(plan.affine_rows, volume)) < 1e-3
    assert list(itertools.chain(*plan.frames)) == plan.all_frames

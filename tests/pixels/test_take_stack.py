"""One native multi-frame file gathered in one copy: the same array as the frame-by-frame loop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.dicom.cache import JobSources
from dicomvol.errors import PixelDataError
from dicomvol.model.plan import VolumePlan
from dicomvol.pixels import assemble as assemble_mod
from dicomvol.pixels.assemble import assemble
from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

VOLUMES = [DwiVolume(0.0), DwiVolume(1000.0, (0.0, 0.0, 1.0)),
           DwiVolume(1000.0, (0.0, 1.0, 0.0))]


def _enhanced(tmp_path: Path) -> Path:
    series = write_dwi_series(tmp_path / "in", "Philips", VOLUMES, enhanced=True,
                              shape=(6, 5), n_slices=4)
    return series.paths[0]


def _shuffle(path: Path, seed: int, high_bits: bool = False) -> None:
    """Permute the frames (items and pixels together); optionally BitsStored 12 + high bits."""
    ds = pydicom.dcmread(path)
    order = np.random.default_rng(seed).permutation(int(ds.NumberOfFrames))
    pixels = ds.pixel_array[order]
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(
        [ds.PerFrameFunctionalGroupsSequence[int(i)] for i in order])
    if high_bits:
        ds.BitsStored, ds.HighBit = 12, 11
        pixels = pixels | np.uint16(0xA000)  # garbage above BitsStored, cleared on read
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _both(plan: VolumePlan, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray]:
    """(one-copy result, frame-by-frame result) of the same plan."""
    calls: list[bool] = []
    real = assemble_mod._take_stack

    def spy(*args: object) -> bool:
        calls.append(real(*args))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(assemble_mod, "_take_stack", spy)
    fast = assemble(plan, sources=JobSources()).data
    assert calls == [True], "the one-copy path was taken"
    monkeypatch.setattr(assemble_mod, "_take_stack", lambda *args: False)
    slow = assemble(plan, sources=JobSources()).data
    return fast, slow


@pytest.mark.parametrize(("seed", "high_bits"), [(0, False), (1, True), (2, False)])
def test_shuffled_frames_give_the_loop_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              seed: int, high_bits: bool) -> None:
    path = _enhanced(tmp_path)
    _shuffle(path, seed, high_bits)
    (plan,) = dicomvol.scan([path.parent]).plans
    assert plan.shape == (5, 6, 4, 3)
    fast, slow = _both(plan, monkeypatch)
    assert fast.flags.f_contiguous and fast.dtype == slow.dtype
    np.testing.assert_array_equal(fast, slow)
    if high_bits:
        assert int(fast.max()) < 1 << 12


def test_unshuffled_and_pydicom_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    fast, slow = _both(plan, monkeypatch)
    np.testing.assert_array_equal(fast, slow)
    stored = pydicom.dcmread(path).pixel_array  # frames in volume-major order here
    np.testing.assert_array_equal(fast[:, :, 2, 1], stored[1 * 4 + 2].T)


def test_one_volume_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3D plan taking some of a file's frames (here: one volume) is gathered as well."""
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    frames = plan.frames[2]
    one = replace(plan, frames=(frames,), shape=(*plan.shape[:3],))
    fast, slow = _both(one, monkeypatch)
    assert fast.shape == (5, 6, 4)
    np.testing.assert_array_equal(fast, slow)


def test_a_frame_in_two_slots_fills_both(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths put a frame asked for twice in both slots (the loop once kept the last)."""
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    vol = plan.frames[0]
    twice = replace(plan, frames=((vol[0], vol[0], *vol[2:]),), shape=(*plan.shape[:3],))
    fast, slow = _both(twice, monkeypatch)
    np.testing.assert_array_equal(fast, slow)
    stored = pydicom.dcmread(path).pixel_array
    for k, frame in enumerate(twice.frames[0]):
        np.testing.assert_array_equal(fast[:, :, k], stored[frame.frame - 1].T)


def test_float_or_shifted_values_take_the_loop(tmp_path: Path) -> None:
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    data = np.empty(plan.shape, dtype=np.float32, order="F")
    items = next(iter(assemble_mod._by_file(plan).items()))
    mode = assemble_mod.PixelMode("float", "f4", 1.0, 0.0)
    assert not assemble_mod._take_stack(data, *items, mode, None)


def test_truncated_file_is_a_pixel_error(tmp_path: Path) -> None:
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PixelDataError, match="truncated"):
        assemble(plan, sources=JobSources())


def test_frames_in_voxel_order_are_a_view_when_asked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``writable=False``: stored frames already in voxel order are not copied at all."""
    path = _enhanced(tmp_path)
    (plan,) = dicomvol.scan([path.parent]).plans
    _, slow = _both(plan, monkeypatch)
    view = assemble(plan, sources=JobSources(), writable=False).data
    assert not view.flags.writeable and not view.flags.owndata and view.flags.f_contiguous
    np.testing.assert_array_equal(view, slow)
    one = replace(plan, frames=(plan.frames[1],), shape=(*plan.shape[:3],))  # frames 5 to 8
    part = assemble(one, sources=JobSources(), writable=False).data
    assert not part.flags.writeable
    np.testing.assert_array_equal(part, slow[:, :, :, 1])
    assert assemble(plan, sources=JobSources()).data.flags.writeable  # the default: a copy


@pytest.mark.parametrize(("seed", "high_bits"), [(4, False), (None, True)])
def test_no_view_when_frames_must_move_or_be_masked(tmp_path: Path, seed: int | None,
                                                    high_bits: bool) -> None:
    path = _enhanced(tmp_path)
    if seed is not None:
        _shuffle(path, seed)
    if high_bits:
        ds = pydicom.dcmread(path)
        ds.BitsStored, ds.HighBit = 12, 11
        ds.save_as(path, enforce_file_format=True)
    (plan,) = dicomvol.scan([path.parent]).plans
    data = assemble(plan, sources=JobSources(), writable=False).data
    assert data.flags.writeable and data.flags.owndata
    expected = assemble(plan, sources=JobSources()).data
    np.testing.assert_array_equal(data, expected)

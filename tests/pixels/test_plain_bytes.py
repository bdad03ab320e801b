"""The byte-level pixel path of a plain series, against the numpy path it replaces:
:func:`~dicomvol.pixels.decode.native_bytes` (stored values masked to BitsStored) and
:func:`~dicomvol.pixels.assemble.shift_bytes` (stored + intercept as int16)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.model.records import FrameRecord
from dicomvol.pixels.assemble import PixelMode, pixel_mode, place, shift_bytes, shift_fits
from dicomvol.pixels.decode import native_bytes, read_native
from dicomvol.testing import write_series


def _frames(tmp_path: Path, **kw: object) -> list[FrameRecord]:
    write_series(tmp_path / "in", shape=(9, 7, 3), **kw)  # type: ignore[arg-type]
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    return plan.all_frames


def test_high_bits_above_bits_stored_are_cleared_as_numpy_does(tmp_path: Path) -> None:
    """Overlay bits above BitsStored (12 of 16) set in every value: both paths clear them."""
    frames = _frames(tmp_path, modality="CT", rescale=(1.0, -1024.0), pixel_representation=0,
                     extra={"BitsStored": 12, "HighBit": 11})
    for frame in frames:
        ds = pydicom.dcmread(frame.path)
        raw = np.frombuffer(ds.PixelData, "<u2") | np.uint16(0xF000)
        ds.PixelData = raw.tobytes()
        ds.save_as(frame.path)
    for frame in frames:
        ours = native_bytes(frame)
        assert ours == read_native(frame).tobytes()
        assert max(np.frombuffer(ours, "<u2")) < 4096


@pytest.mark.parametrize("bits", [1, 5, 7, 8, 9, 11, 15, 16])
def test_every_bits_stored_masks_like_numpy(tmp_path: Path, bits: int) -> None:
    frames = _frames(tmp_path, modality="MR", rescale=(1.0, 0.0), pixel_representation=0)
    for frame in frames:
        narrowed = replace(frame, bits_stored=bits)
        assert native_bytes(narrowed) == read_native(narrowed).tobytes()


@pytest.mark.parametrize(("lo", "hi", "intercept", "signed"), [
    (0, 4095, -1024, False), (0, 4095, -32768, False), (0, 32767, 0, False),
    (0, 65535 - 40000, 7000, False), (-20000, 20000, 1000, True), (-32768, 30000, 2767, True),
    (-1, 1, -32767, True)])
def test_shift_bytes_is_the_int16_sum(lo: int, hi: int, intercept: int, signed: bool) -> None:
    rng = np.random.default_rng(abs(intercept) + hi)
    for n in (1, 2, 3, 257, 64 * 64):
        values = rng.integers(lo, hi + 1, size=n)
        values[:2] = (lo, hi)[: min(n, 2)]
        stored = values.astype("<i2" if signed else "<u2").tobytes()
        expected = (values + intercept).astype("<i2").tobytes()
        assert shift_bytes(stored, intercept) == expected


def test_shift_fits_is_the_guarantee_the_byte_path_relies_on(tmp_path: Path) -> None:
    """12-bit unsigned CT: "shift" and no value can overflow; 16-bit unsigned with the
    same intercept could exceed int16, so it is written raw with scl_inter."""
    ct12 = _frames(tmp_path / "a", modality="CT", rescale=(1.0, -1024.0),
                   pixel_representation=0, extra={"BitsStored": 12, "HighBit": 11})
    assert pixel_mode(ct12) == PixelMode("shift", "i2", 1.0, 0.0) and shift_fits(ct12[0])
    ct16 = _frames(tmp_path / "b", modality="CT", rescale=(1.0, -1024.0),
                   pixel_representation=0)
    assert not shift_fits(ct16[0])
    assert pixel_mode(ct16) == PixelMode("raw", "u2", 1.0, -1024.0)
    frame = ct12[0]
    target = np.empty((frame.columns, frame.rows), dtype=np.int16, order="F")
    place(target, read_native(frame), frame, pixel_mode(ct12))
    assert shift_bytes(native_bytes(frame), -1024) == target.T.tobytes()


@pytest.mark.parametrize("bits_stored", [16, 12])
def test_frames_of_a_native_multiframe_file_read_as_numpy_reads_them(
        tmp_path: Path, bits_stored: int) -> None:
    """Each frame of an Enhanced MR object (one file, frames at offsets): the bytes numpy's
    frame reader gives, high bits cleared, and a frame number outside the file named."""
    from dicomvol.errors import PixelDataError
    from dicomvol.pixels.decode import read_native_frame
    from dicomvol.testing.enhanced import enhanced_from_files

    series = write_series(tmp_path / "in", shape=(9, 7, 5), modality="MR", rescale=(1.0, 0.0),
                          pixel_representation=0,
                          extra={"BitsStored": bits_stored, "HighBit": bits_stored - 1})
    (tmp_path / "mf").mkdir()
    enhanced_from_files(series.paths, tmp_path / "mf" / "enhanced.dcm")
    (plan,) = dicomvol.scan([tmp_path / "mf"]).plans
    frames = plan.all_frames
    assert len(frames) == 5 and frames[0].number_of_frames == 5
    for frame in frames:
        assert native_bytes(frame) == read_native_frame(frame).tobytes()
    with pytest.raises(PixelDataError, match="frame 6 not in pixel data of 5 frames"):
        native_bytes(replace(frames[0], frame=6))


def test_signed_shift_is_checked_like_place() -> None:
    """int16 stored values plus an intercept: the int16 sum where it fits, Overflow where
    any value leaves int16 (both signs), as :func:`place` decides."""
    from dicomvol.pixels.assemble import Overflow

    rng = np.random.default_rng(5)
    for intercept in (-1024, 1024, -32768, 32767, 0):
        values = rng.integers(-32768, 32768, size=4096)
        fits = values[(values + intercept >= -32768) & (values + intercept <= 32767)]
        stored = fits.astype("<i2").tobytes()
        assert shift_bytes(stored, intercept, signed=True) == (
            (fits + intercept).astype("<i2").tobytes())
        if len(fits) < len(values):
            with pytest.raises(Overflow):
                shift_bytes(values.astype("<i2").tobytes(), intercept, signed=True)
    with pytest.raises(Overflow):  # one value over the top among many that fit
        shift_bytes(np.array([0, 5, 32000, -7], "<i2").tobytes(), 1000, signed=True)
    with pytest.raises(Overflow):  # and one under the bottom
        shift_bytes(np.array([0, -32000, 3], "<i2").tobytes(), -1000, signed=True)

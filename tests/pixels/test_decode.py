"""Decoding: a missing decoder is named from pydicom's own decoder registry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.errors import MissingDecoderError, PixelDataError
from dicomvol.pixels.decode import check_decoder
from dicomvol.testing import write_series

MPEG2 = "1.2.840.10008.1.2.4.100"


def test_no_decoder_for_a_syntax_is_named(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(8, 6, 1))
    (plan,) = dicomvol.scan([tmp_path]).plans
    video = replace(plan.first, transfer_syntax=MPEG2)
    with pytest.raises(MissingDecoderError, match="no pixel data decoder exists for MPEG2"):
        check_decoder(video)
    assert issubclass(MissingDecoderError, PixelDataError)
    check_decoder(plan.first)  # native: nothing to check


def test_file_in_an_undecodable_syntax_is_an_error_entry(tmp_path: Path) -> None:
    series = write_series(tmp_path / "in", shape=(8, 6, 3))
    ds = pydicom.dcmread(series.paths[1])
    ds.file_meta.TransferSyntaxUID = MPEG2
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    ds.save_as(series.paths[1], enforce_file_format=True)
    report = dicomvol.convert([tmp_path / "in"], tmp_path / "out")
    errors = {e.rel: e.error for e in report.errors}
    assert series.paths[1].name in errors
    assert "no pixel data decoder exists for MPEG2" in errors[series.paths[1].name]
    assert report.outputs, "the other slices still convert"


def test_native_multiframe_read_in_one_range_equals_pydicom(tmp_path: Path) -> None:
    """An uncompressed enhanced file is read from its pixel offset, frame by frame as pydicom."""
    from dicomvol.dicom.index import index_file
    from dicomvol.inputs.discover import discover
    from dicomvol.pixels.decode import decode
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    series = write_dwi_series(tmp_path, "Philips", [DwiVolume(0.0),
                                                   DwiVolume(1000.0, (0.0, 0.0, 1.0))],
                              enhanced=True)
    frames = index_file(discover([tmp_path])[0]).frames
    assert len(frames) == 8 and frames[0].pixel_offset is not None
    expected = pydicom.dcmread(series.paths[0]).pixel_array
    shuffled = frames[::-1]
    for frame, pixels in decode(str(series.paths[0]), shuffled):
        np.testing.assert_array_equal(pixels, expected[frame.frame - 1])

"""Colour (RGB/YBR) images with patient geometry become RGB24 NIfTI volumes, not skips."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.testing.series import write_series


def _colour_series(folder: Path, planar: int = 0, bits: int = 8) -> dict[str, np.ndarray]:
    write_series(folder, shape=(16, 12, 5), modality="MR", rescale=(1.0, 0.0),
                 pixel_representation=0)
    rng = np.random.default_rng(0)
    truth = {}
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        rgb = rng.integers(0, 256, (ds.Rows, ds.Columns, 3), dtype=np.uint8)
        ds.Modality = "US"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
        ds.PlanarConfiguration = planar
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
            bits, bits, bits - 1, 0)
        stored = rgb.astype(f"<u{bits // 8}")
        ds.PixelData = (stored.transpose(2, 0, 1) if planar else stored).tobytes()
        for key in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
            if key in ds:
                del ds[key]
        ds.save_as(path)
        truth[ds.SOPInstanceUID] = rgb
    return truth


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_series_becomes_an_rgb24_volume(tmp_path: Path, planar: int) -> None:
    truth = _colour_series(tmp_path / "src", planar)
    report = dicomvol.convert([tmp_path / "src"], tmp_path / "out",
                              dicomvol.ConvertOptions(jobs=1, qc=True))
    assert report.ok and not report.skipped and len(report.outputs) == 1
    img = nib.load(tmp_path / "out" / report.outputs[0].path)
    assert int(img.header["datatype"]) == 128 and img.shape == (16, 12, 5)  # RGB24
    data = np.asarray(img.dataobj)
    side = json.loads((tmp_path / "out" / report.outputs[0].sidecar).read_text())
    for k, src in enumerate(side["SourceInstances"]):
        plane = data[:, :, k]
        got = np.stack([plane["R"], plane["G"], plane["B"]], axis=-1).transpose(1, 0, 2)
        np.testing.assert_array_equal(got, truth[src["SOPInstanceUID"]])


def test_16_bit_colour_is_skipped_with_the_reason(tmp_path: Path) -> None:
    _colour_series(tmp_path / "src", bits=16)
    result = dicomvol.scan([tmp_path / "src"])
    assert not result.plans
    assert {s.reason for s in result.skipped} == {
        "colour image (RGB, 3 samples per pixel, 16 bits); dicomvol writes greyscale volumes "
        "and 8-bit RGB volumes"}

"""Pixel digests tell copies from conflicts, for grey and colour images alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom

import dicomvol
from dicomvol.options import ConvertOptions


def test_colour_slide_with_the_same_uid_and_other_pixels_is_a_conflict(
        corpus: Path, tmp_path: Path) -> None:
    """The corpus pair shares a SOPInstanceUID but not its RGB pixels (was 'not compared')."""
    src = corpus / "seg_highdicom"
    a, b = (pydicom.dcmread(src / n) for n in ("sm_image.dcm", "sm_image_control.dcm"))
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.PhotometricInterpretation == "RGB"
    assert a.PixelData != b.PixelData
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("sm_image.dcm", "sm_image_control.dcm"):
        shutil.copy(src / name, inp / name)
    shutil.copy(src / "sm_image.dcm", inp / "z_copy.dcm")
    report = dicomvol.convert([inp], tmp_path / "out", ConvertOptions())
    reasons = {s.rel: s.reason for s in report.skipped}
    assert reasons["sm_image_control.dcm"].startswith("conflict:")
    assert "different pixel data" in reasons["sm_image_control.dcm"]
    assert reasons["z_copy.dcm"].startswith("duplicate: a copy of sm_image.dcm")
    assert "not compared" not in " ".join(reasons.values())

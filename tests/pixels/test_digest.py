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


def test_sha256_without_openssl_gives_hashlibs_digests() -> None:
    """Resume keys (``DicomvolPlanDigest``) written with ``hashlib.sha256`` still match, and
    computing one in a fresh process loads neither ``_hashlib`` nor libcrypto."""
    import hashlib
    import subprocess
    import sys

    from dicomvol.pixels.digest import sha256

    for data in (b"", b"abc", bytes(range(256)) * 1000):
        h = sha256()
        h.update(data)
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()
        assert sha256(data).digest() == hashlib.sha256(data).digest()
    script = ("import sys\n"
              "from dicomvol.pixels.digest import sha256\n"
              "sha256(b'x').hexdigest()\n"
              "maps = open('/proc/self/maps').read() if sys.platform == 'linux' else ''\n"
              "print('_hashlib' in sys.modules, 'libcrypto' in maps)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.split() == ["False", "False"]

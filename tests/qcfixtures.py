"""Derived outputs written the way other writers will: label maps and slides, for QC tests.

A label map follows ``shared/docs/OUTPUT_CONTRACT.md`` (a NIfTI on exactly the
grid of an image output, its sidecar holding a ``LabelMap`` object); a slide is
a pyramidal OME-TIFF (tifffile) whose levels each have their own colour, so a
test can tell which level a thumbnail came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def add_outputs(out: Path, names: list[str]) -> None:
    """List more outputs in a folder's run report (as their writers will)."""
    report = json.loads((out / "dicomvol_report.json").read_text())
    report["outputs"] += names
    (out / "dicomvol_report.json").write_text(json.dumps(report))


def write_label_map(out: Path, image: str, name: str, encoding: str) -> str:
    """Write a label map on ``image``'s grid: 1 at the patient's left-anterior, 2 at the
    right-posterior (through every slice), in the contract's format; returns its file name."""
    img: Any = nib.load(str(out / image))
    shape = img.shape[:3]
    lps = LPS_TO_RAS @ img.affine
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    x = lps[0, 0] * ii + lps[0, 1] * jj + lps[0, 3]
    y = lps[1, 0] * ii + lps[1, 1] * jj + lps[1, 3]
    cx, cy = np.median(x), np.median(y)
    left_anterior = np.repeat(((x > cx) & (y < cy))[:, :, None], shape[2], axis=2)
    right_posterior = np.repeat(((x < cx) & (y > cy))[:, :, None], shape[2], axis=2)
    segments: list[dict[str, Any]] = [
        {"SegmentNumber": 1, "Label": "left anterior", "RecommendedDisplayRGBValue": [255, 0, 0]},
        {"SegmentNumber": 2, "Label": "right posterior", "RecommendedDisplayRGBValue": [0, 255, 0]}]
    if encoding == "labels":
        data = (left_anterior * 1 + right_posterior * 2).astype(np.uint8)
        for n, s in enumerate(segments, 1):
            s["LabelValue"] = n
    else:
        data = np.stack([left_anterior, right_posterior], axis=-1).astype(np.uint8)
        for n, s in enumerate(segments):
            s["Volume"] = n
    nib.save(nib.Nifti1Image(data, img.affine), str(out / f"{name}.nii.gz"))
    sidecar = {"Modality": "SEG", "SeriesInstanceUID": "1.2.3", "SeriesDescription": name,
               "SourceInstances": [{"SOPInstanceUID": "1.2.3.4", "Frame": 1, "File": "seg.dcm"}],
               "Resampled": False, "Geometry": {}, "Warnings": [],
               "LabelMap": {"SourceObject": {"SOPInstanceUID": "1.2.3.4", "File": "seg.dcm",
                                             "Modality": "SEG"},
                            "ReferencedImage": image, "Encoding": encoding,
                            "Segments": segments}}
    (out / f"{name}.json").write_text(json.dumps(sidecar))
    return f"{name}.nii.gz"


def write_slide(out: Path) -> tuple[str, list[tuple[int, int, int]]]:
    """An OME-TIFF pyramid of 4 levels (1024x768 down to 128x96), each its own colour."""
    tifffile = pytest.importorskip("tifffile")
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    with tifffile.TiffWriter(str(out / "slide.ome.tif"), ome=True) as tif:
        for n, colour in enumerate(colours):
            level = np.empty((1024 >> n, 768 >> n, 3), np.uint8)
            level[...] = colour
            extra: dict[str, Any] = ({"subifds": len(colours) - 1, "metadata": {"axes": "YXS"}}
                                     if n == 0 else {"subfiletype": 1})
            tif.write(level, tile=(64, 64), photometric="rgb", **extra)
    (out / "slide.json").write_text(json.dumps({"Modality": "SM", "SourceInstances": []}))
    return "slide.ome.tif", colours

"""SimpleITK baseline: every series of a folder to NIfTI with ImageSeriesReader.

Usage: ``python benchmarks/sitk_convert.py DATA OUT y|n``

This is the textbook ITK recipe (GetGDCMSeriesIDs, then GetGDCMSeriesFileNames per series,
ImageSeriesReader, WriteImage). Note that GetGDCMSeriesFileNames scans the folder again for every
series, which is part of what this baseline measures.
"""

from __future__ import annotations

import os
import sys

import SimpleITK as sitk


def main(argv: list[str]) -> int:
    data, out, z = argv
    ext = ".nii.gz" if z == "y" else ".nii"
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(data)
    for n, sid in enumerate(series_ids, 1):
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(data, sid)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        image = reader.Execute()
        sitk.WriteImage(image, os.path.join(out, f"series{n:03d}{ext}"), useCompression=z == "y")
    return 0 if series_ids else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

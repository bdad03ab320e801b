"""The one CIELab -> sRGB conversion (SEG display colours in sidecars, colour tables, QC)."""

from __future__ import annotations

import itertools

import pytest
from highdicom.color import CIELabColor

from dicomvol.model.derived import cielab_to_rgb
from dicomvol.qc.derived import segment_colour


@pytest.mark.parametrize("value", list(itertools.product((0, 9000, 32896, 50000, 65535),
                                                         repeat=3)))
def test_cielab_to_rgb_agrees_with_highdicom(value: tuple[int, int, int]) -> None:
    ours = cielab_to_rgb(value)
    theirs = CIELabColor.from_dicom_value(value).to_rgb(clip=True)
    assert ours is not None
    assert all(abs(a - int(b)) <= 1 for a, b in zip(ours, theirs, strict=True)), (ours, theirs)


def test_malformed_triplets_give_none_and_qc_falls_back() -> None:
    assert cielab_to_rgb(("x", 1, 2)) is None and cielab_to_rgb((1, 2)) is None
    assert segment_colour({"RecommendedDisplayCIELabValue": [65535, 32896, 32896]}) == (
        255, 255, 255)

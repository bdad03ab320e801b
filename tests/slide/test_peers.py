"""Peers as oracles where they are right: wsidicom reads the same pixels from slides whose
label agrees with the codestream, and sparse shuffled tiles. (wsidicom 0.36 refuses the
synthetic concatenation: "Datasets in instances does not match".)"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import dicomvol
from conftest import import_peer
from dicomvol.testing.slides import SlideSpec, smooth_image, write_slide

pytest.importorskip("imagecodecs")
warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")


@pytest.mark.parametrize("spec_kwargs", [
    {"codec": "jpeg", "variant": "adobe0", "photometric": "RGB"},
    {"codec": "jpeg", "variant": "jfif", "photometric": "YBR_FULL_422"},
    {"codec": "native", "sparse": True, "shuffle": True},
], ids=["jpeg-rgb", "jpeg-ybr", "sparse"])
def test_wsidicom_reads_the_same_pixels(tmp_path: Path, spec_kwargs: dict[str, object]) -> None:
    wsidicom = import_peer("wsidicom")
    img = smooth_image(150, 200, 3, seed=8)
    write_slide(SlideSpec([[img]], tile=(64, 64), **spec_kwargs), tmp_path)  # type: ignore[arg-type]
    ours = dicomvol.open_slide(tmp_path).read_region(0, 10, 20, 170, 120)
    wsi = wsidicom.WsiDicom.open(tmp_path)
    theirs = np.asarray(wsi.read_region((10, 20), 0, (170, 120)))[..., :3]
    np.testing.assert_array_equal(ours, theirs)

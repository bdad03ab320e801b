"""RTSTRUCT label maps on synthetic images: even-odd voxel-centre rasterisation, reported skips.

Each ROI of the written map is compared (Dice >= 0.95, and exact for the
synthetic polygons) with the brute-force even-odd rasterisation of
``tests/labelcheck.py``, which reads the RTSTRUCT with pydicom and places the
contours through the map's NIfTI affine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dicomvol
from dicomvol.constants import CONTOUR_PLANE_TOLERANCE_MM
from dicomvol.objects.rtstruct import even_odd
from dicomvol.options import ConvertOptions, PlanOptions
from dicomvol.testing import Roi, polygon_on_slice, write_rtstruct, write_series
from labelcheck import (
    assert_same_grid,
    dice,
    load_lps,
    map_masks,
    rasterise_even_odd,
    rtstruct_reference,
    sidecar_of,
)

#: Dice every ROI must reach against the test's own rasterisation (the issue's bar).
MIN_DICE = 0.95
#: Non-square: 40 columns, 26 rows.
SHAPE = (40, 26, 6)

SQUARE = np.array([[4.3, 3.2], [30.6, 3.9], [31.2, 20.4], [5.1, 21.7]])
HOLE = np.array([[12.2, 8.4], [22.7, 8.1], [22.3, 15.6], [12.6, 16.2]])
TRIANGLE = np.array([[2.4, 2.2], [37.7, 6.5], [9.2, 23.6]])


def convert(inputs: list[Path], out: Path, **options: Any) -> dict[str, Any]:
    dicomvol.convert([str(p) for p in inputs], out, ConvertOptions(jobs=1, compress=False,
                                                                   **options))
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return report


def the_map(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    images = [out / p for p in report["outputs"]]
    maps = [p for p in images if "LabelMap" in sidecar_of(p)]
    (label_map,) = maps
    (image,) = [p for p in images if p not in maps]
    return image, label_map


@pytest.fixture
def series(tmp_path: Path) -> Any:
    return write_series(tmp_path / "ct", shape=SHAPE, pixel_spacing=(0.9, 0.6),
                        slice_spacing=2.5, modality="CT")


def assert_matches_reference(rtstruct: Path, label_map: Path) -> dict[int, float]:
    reference = rtstruct_reference(rtstruct, label_map, CONTOUR_PLANE_TOLERANCE_MM)
    masks = map_masks(label_map)
    scores = {n: dice(masks[n], reference[n]) for n in reference}
    assert all(s >= MIN_DICE for s in scores.values()), scores
    return scores


def test_hole_and_non_square_image(tmp_path: Path, series: Any) -> None:
    rois = [Roi(1, "ring", [("CLOSED_PLANAR", polygon_on_slice(series, k, SQUARE))
                            for k in (1, 2, 3)]
                + [("CLOSED_PLANAR", polygon_on_slice(series, 2, HOLE))]),
            Roi(2, "xor", [("CLOSEDPLANAR_XOR", polygon_on_slice(series, 4, SQUARE)),
                           ("CLOSEDPLANAR_XOR", polygon_on_slice(series, 4, HOLE))]),
            Roi(3, "triangle", [("CLOSED_PLANAR", polygon_on_slice(series, 5, TRIANGLE))])]
    rt = write_rtstruct(tmp_path / "rt" / "rt.dcm", series, rois)
    report = convert([tmp_path / "ct", tmp_path / "rt"], tmp_path / "out")
    assert report["errors"] == []
    image, label_map = the_map(report, tmp_path / "out")
    assert_same_grid(label_map, image)
    scores = assert_matches_reference(rt, label_map)
    assert scores == {1: 1.0, 2: 1.0, 3: 1.0}
    masks = map_masks(label_map)
    hole = rasterise_even_odd([HOLE], SHAPE[:2])
    assert hole.sum() > 50
    assert not masks[1][:, :, 2][hole].any() and masks[1][:, :, 1][hole].all()
    assert not masks[2][:, :, 4][hole].any()
    # non-square: the triangle reaches i = 35 (i runs along the 40 columns, j the 26 rows)
    assert masks[3][35, 7:9, 5].all() and not masks[3][:, 24:, 5].any()
    meta = sidecar_of(label_map)
    lm = meta["LabelMap"]
    assert lm["Encoding"] == "labels" and lm["SourceObject"]["Modality"] == "RTSTRUCT"
    assert [(s["ROINumber"], s["LabelValue"], s["Label"], s["RGB"])
            for s in lm["Segments"]] == [(1, 1, "ring", [255, 0, 0]), (2, 2, "xor", [255, 0, 0]),
                                         (3, 3, "triangle", [255, 0, 0])]
    assert len(report["outputs"]) == 2
    assert meta["SourceInstances"] == [{"SOPInstanceUID": lm["SourceObject"]["SOPInstanceUID"],
                                        "Frame": 1, "File": "rt.dcm"}]


def test_contour_between_slices_and_point_roi_are_reported(tmp_path: Path,
                                                           series: Any) -> None:
    rois = [Roi(1, "between", [("CLOSED_PLANAR", polygon_on_slice(series, 2.5, SQUARE)),
                               ("CLOSED_PLANAR", polygon_on_slice(series, 3, SQUARE))]),
            Roi(7, "marker", [("POINT", polygon_on_slice(series, 2, SQUARE[:1]))]),
            Roi(9, "line", [("OPEN_PLANAR", polygon_on_slice(series, 1, SQUARE))])]
    rt = write_rtstruct(tmp_path / "rt" / "rt.dcm", series, rois)
    report = convert([tmp_path / "ct", tmp_path / "rt"], tmp_path / "out")
    _, label_map = the_map(report, tmp_path / "out")
    assert_matches_reference(rt, label_map)
    meta = sidecar_of(label_map)
    skipped = meta["LabelMap"]["SkippedContours"]
    assert [(s["ROINumber"], s["ContourGeometricType"]) for s in skipped] == [
        (1, "CLOSED_PLANAR"), (7, "POINT"), (9, "OPEN_PLANAR")]
    assert skipped[0]["Reason"] == "not on a slice plane of the output grid"
    assert skipped[0]["DistanceMm"] == pytest.approx(1.25, abs=1e-3)
    masks = map_masks(label_map)
    assert masks[1][:, :, 3].any() and not masks[1][:, :, 2].any()  # never snapped
    voxels = {s["ROINumber"]: s["Voxels"] for s in meta["LabelMap"]["Segments"]}
    assert voxels[7] == 0 and voxels[9] == 0
    assert any("not drawn" in w for w in meta["Warnings"])


def test_overlapping_rois_are_never_given_to_one(tmp_path: Path, series: Any) -> None:
    rois = [Roi(1, "outer", [("CLOSED_PLANAR", polygon_on_slice(series, 2, SQUARE))]),
            Roi(2, "inner", [("CLOSED_PLANAR", polygon_on_slice(series, 2, HOLE))])]
    rt = write_rtstruct(tmp_path / "rt" / "rt.dcm", series, rois)
    report = convert([tmp_path / "ct", tmp_path / "rt"], tmp_path / "out")
    _, label_map = the_map(report, tmp_path / "out")
    assert sidecar_of(label_map)["LabelMap"]["Encoding"] == "one-hot"
    masks = map_masks(label_map)
    assert (masks[1] & masks[2]).sum() == rasterise_even_odd([HOLE], SHAPE[:2]).sum()
    assert_matches_reference(rt, label_map)


def test_rtstruct_without_its_image_is_skipped_with_the_reason(tmp_path: Path,
                                                               series: Any) -> None:
    write_rtstruct(tmp_path / "rt" / "rt.dcm", series,
                   [Roi(1, "a", [("CLOSED_PLANAR", polygon_on_slice(series, 2, SQUARE))])])
    report = convert([tmp_path / "rt"], tmp_path / "out")
    assert report["outputs"] == []
    (skip,) = report["skipped"]
    assert skip["File"] == "rt.dcm" and skip["Frame"] is None
    assert series.series_instance_uid in skip["Reason"] and "not in the input" in skip["Reason"]
    assert report["ignored"] == []


def test_rtstruct_on_a_tilted_ct_sheared_and_resampled(tmp_path: Path) -> None:
    col = np.array([0.0, 1.0, 0.0])
    positions = [np.array([-10.0, -20.0, 30.0]) + k * (np.array([0, 0, 2.0]) + 0.5 * col)
                 for k in range(SHAPE[2])]
    series = write_series(tmp_path / "ct", shape=SHAPE, pixel_spacing=(0.9, 0.6),
                          positions=positions, modality="CT")
    rt = write_rtstruct(tmp_path / "rt" / "rt.dcm", series, [
        Roi(1, "a", [("CLOSED_PLANAR", polygon_on_slice(series, k, SQUARE)) for k in (1, 2, 3)])])
    report = convert([tmp_path / "ct", tmp_path / "rt"], tmp_path / "out",
                     plan=PlanOptions(tilt="both"))
    assert report["errors"] == []
    maps = [tmp_path / "out" / p for p in report["outputs"]
            if "LabelMap" in sidecar_of(tmp_path / "out" / p)]
    assert len(maps) == 2
    for label_map in maps:
        image = tmp_path / "out" / sidecar_of(label_map)["LabelMap"]["ReferencedImage"]
        assert_same_grid(label_map, image)
        assert_matches_reference(rt, label_map)
        data, _ = load_lps(label_map)
        assert data.sum() > 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 30), st.floats(-3, 22)), min_size=3, max_size=9),
       st.lists(st.tuples(st.floats(0, 27), st.floats(0, 19)), min_size=3, max_size=6))
def test_even_odd_equals_brute_force(outer: list[tuple[float, float]],
                                     inner: list[tuple[float, float]]) -> None:
    polys = [np.array(outer), np.array(inner)]
    i0, j0, mask = even_odd(polys, (28, 20))
    full = np.zeros((28, 20), dtype=bool)
    full[i0:i0 + mask.shape[0], j0:j0 + mask.shape[1]] = mask
    assert np.array_equal(full, rasterise_even_odd(polys, (28, 20)))

"""SEG label maps on synthetic images: every frame lands where the map says, or is reported.

Each case writes a synthetic CT (``dicomvol.testing.write_series``) and a SEG
referencing it (``dicomvol.testing.write_seg``, pydicom), converts both with
``dicomvol.convert`` and checks the result with ``tests/labelcheck.py``
(pydicom + nibabel only): the label map has the image output's grid, and
every segmented pixel of every frame lands, pixel for pixel, where the map
holds its segment. Ground truth is the masks the test drew.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

import dicomvol
from dicomvol.cli.main import main as cli_main
from dicomvol.options import ConvertOptions, PlanOptions
from dicomvol.testing import SegFrame, seg_frames_from_masks, write_seg, write_series
from labelcheck import FLIP, assert_same_grid, check_seg, load_lps, map_masks, sidecar_of

SHAPE = (24, 20, 10)


def ct(folder: Path, **kwargs: Any) -> Any:
    return write_series(folder, shape=kwargs.pop("shape", SHAPE), pixel_spacing=(0.8, 0.7),
                        slice_spacing=2.0, modality="CT", **kwargs)


def blob(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float,
         slices: range) -> np.ndarray:
    """A ball (in voxel units) restricted to ``slices``, shape (X, Y, Z) bool."""
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    d = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2
    mask = d <= radius ** 2
    keep = np.zeros(shape[2], dtype=bool)
    keep[list(slices)] = True
    return mask & keep[None, None, :]


def convert(inputs: list[Path], out: Path, **options: Any) -> dict[str, Any]:
    options = {"jobs": 1, "compress": False, **options}
    dicomvol.convert([str(p) for p in inputs], out, ConvertOptions(**options))
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return report


def outputs(report: dict[str, Any], out: Path) -> tuple[list[Path], list[Path]]:
    """(images, label maps) written."""
    images, maps = [], []
    for name in report["outputs"]:
        path = out / name
        (maps if "LabelMap" in sidecar_of(path) else images).append(path)
    return images, maps


def assert_frames_accounted(report: dict[str, Any], out: Path, seg: Path) -> None:
    """Each SEG frame is in a label map's SourceInstances or skipped, never both or neither."""
    import pydicom

    ds = pydicom.dcmread(seg, stop_before_pixels=True)
    n = int(ds.NumberOfFrames)
    used: set[int] = set()
    for path in outputs(report, out)[1]:
        meta = sidecar_of(path)
        for e in meta["SourceInstances"]:
            if e["SOPInstanceUID"] == ds.SOPInstanceUID:
                used.add(int(e["Frame"]))
    skipped = {s["Frame"] for s in report["skipped"] if s["SOPInstanceUID"] == ds.SOPInstanceUID}
    if None in skipped:
        assert not used
        return
    assert not used & skipped
    assert used | skipped == set(range(1, n + 1)), (sorted(used), sorted(skipped))


@pytest.fixture
def three_segments(tmp_path: Path) -> tuple[Any, dict[int, np.ndarray]]:
    series = ct(tmp_path / "ct")
    masks = {1: blob(SHAPE, (6, 6, 3), 3.5, range(2, 5)),
             2: blob(SHAPE, (16, 12, 6), 4.0, range(5, 8)),
             3: blob(SHAPE, (18, 5, 2), 2.5, range(1, 3))}
    return series, masks


def test_shuffled_frames_on_a_few_slices_land_pixel_for_pixel(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    frames = seg_frames_from_masks(series, masks)
    assert len(frames) == 8 and len({f.position for f in frames}) < SHAPE[2]
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, frames,
                    {1: "liver", 2: "kidney", 3: "spleen"}, shuffle_seed=7,
                    colours={1: (30000, 50000, 40000)})
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    assert report["errors"] == []
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    counts = check_seg(seg, label_map, image)
    assert counts == {str(n): int(m.sum()) for n, m in masks.items()}
    data, _ = load_lps(label_map)
    for number, mask in masks.items():  # the test's own masks, on the image's grid
        assert np.array_equal(data == number, mask)
    meta = sidecar_of(label_map)
    lm = meta["LabelMap"]
    assert lm["Encoding"] == "labels"
    assert lm["ReferencedImage"] == image.name
    assert lm["SourceObject"]["Modality"] == "SEG"
    assert [s["SegmentNumber"] for s in lm["Segments"]] == [1, 2, 3]
    assert [s["LabelValue"] for s in lm["Segments"]] == [1, 2, 3]
    assert lm["Segments"][0]["SegmentedPropertyType"]["CodeMeaning"] == "Organ"
    assert lm["Segments"][0]["DisplayColorSource"] == "source"
    assert lm["Segments"][1]["DisplayColorSource"] == "default"
    assert meta["Resampled"] is False and meta["Modality"] == "SEG"
    assert len(meta["SourceInstances"]) == 8
    assert_frames_accounted(report, tmp_path / "out", seg)
    img: Any = nib.load(str(label_map))
    assert img.get_data_dtype() == np.uint8


def test_colour_tables_load_as_slicer_and_itksnap_tables(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
              {1: "left liver", 2: "kidney", 3: "spleen"})
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (label_map,) = outputs(report, tmp_path / "out")[1]
    lm = sidecar_of(label_map)["LabelMap"]
    slicer = (tmp_path / "out" / lm["ColorTables"]["Slicer"]).read_text().splitlines()
    assert slicer[0].startswith("# Color table file")
    rows = [line.split() for line in slicer if not line.startswith("#")]
    assert all(len(r) == 6 for r in rows)  # index name R G B A, names without spaces
    assert [(int(r[0]), r[1]) for r in rows] == [(0, "Background"), (1, "left_liver"),
                                                (2, "kidney"), (3, "spleen")]
    itk = (tmp_path / "out" / lm["ColorTables"]["ITK-SNAP"]).read_text().splitlines()
    assert "ITK-SnAP Label Description File" in itk[1]
    entries = [line for line in itk if not line.startswith("#")]
    fields = [[*e.split('"')[0].split(), e.split('"')[1]] for e in entries]
    assert [(int(f[0]), f[-1]) for f in fields] == [(0, "Clear Label"), (1, "left liver"),
                                                   (2, "kidney"), (3, "spleen")]
    assert all(len(f) == 8 for f in fields)  # IDX R G B A VIS MSH LABEL
    segments = {s["LabelValue"]: s["RGB"] for s in lm["Segments"]}
    assert [int(v) for v in fields[2][1:4]] == segments[2]


def test_overlapping_segments_are_one_hot(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    masks = {1: blob(SHAPE, (10, 10, 4), 4.0, range(2, 7)),
             2: blob(SHAPE, (12, 10, 4), 3.0, range(3, 6)),
             4: np.zeros(SHAPE, dtype=bool)}  # an empty segment: no frames at all
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
                    {1: "a", 2: "b", 4: "empty"}, shuffle_seed=1)
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    check_seg(seg, label_map, image)
    lm = sidecar_of(label_map)["LabelMap"]
    assert lm["Encoding"] == "one-hot"
    assert [(s["SegmentNumber"], s["Volume"], s["Voxels"]) for s in lm["Segments"]] == [
        (1, 0, int(masks[1].sum())), (2, 1, int(masks[2].sum())), (4, 2, 0)]
    data, _ = load_lps(label_map)
    assert data.shape == (*SHAPE, 3)
    for n, (number, mask) in enumerate(masks.items()):
        assert np.array_equal(data[..., n] != 0, mask), number
    assert any("overlap" in w for w in sidecar_of(label_map)["Warnings"])


def test_fractional_seg_is_float_in_0_to_1(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    rng = np.random.default_rng(3)
    prob = np.where(blob(SHAPE, (10, 8, 5), 5.0, range(3, 8)), rng.uniform(0.01, 1, SHAPE), 0)
    frames = [SegFrame(1, tuple(series.positions[k]), prob[:, :, k].T, series.sop_instance_uids[k])
              for k in range(3, 8)]
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, frames, {1: "p"}, kind="FRACTIONAL",
                    max_fractional=200)
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    check_seg(seg, label_map, image)
    data, _ = load_lps(label_map)
    assert data.shape == (*SHAPE, 1)
    expected = np.rint(prob * 200) / 200
    np.testing.assert_allclose(data[..., 0], expected, atol=1e-6)
    img: Any = nib.load(str(label_map))
    assert img.get_data_dtype() == np.float32
    lm = sidecar_of(label_map)["LabelMap"]
    assert lm["Encoding"] == "fractional" and lm["MaximumFractionalValue"] == 200


def test_label_map_segmentation_sop_class(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[2:9, 3:10, 2:5] = 1
    labels[12:20, 4:15, 3:8] = 2
    frames = [SegFrame(0, tuple(series.positions[k]), labels[:, :, k].T,
                       series.sop_instance_uids[k]) for k in range(2, 8)]
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, frames, {0: "background", 1: "a",
                                                                   2: "b"}, kind="LABELMAP")
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    check_seg(seg, label_map, image)
    data, _ = load_lps(label_map)
    assert np.array_equal(data, labels)
    lm = sidecar_of(label_map)["LabelMap"]
    assert lm["Encoding"] == "labels"
    assert [s["SegmentNumber"] for s in lm["Segments"]] == [1, 2]


def test_frames_drifting_from_the_planes_snap_and_the_drift_is_recorded(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series,
                    seg_frames_from_masks(series, masks, drift_mm=0.04, seed=5), {1: "a", 2: "b",
                                                                                 3: "c"})
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    check_seg(seg, label_map, image)
    meta = sidecar_of(label_map)
    assert meta["Resampled"] is False
    assert 0.0 < meta["LabelMap"]["MaxFrameDriftMm"] <= 0.04 + 1e-6
    assert meta["LabelMap"]["SnapToleranceMm"] == pytest.approx(0.05)


def test_frame_between_planes_is_never_silently_misplaced(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    frames = seg_frames_from_masks(series, masks)
    normal = np.cross(series.row_dir, series.col_dir)
    moved = frames[0]
    frames[0] = SegFrame(moved.segment, tuple(np.asarray(moved.position) + 0.7 * normal),
                         moved.pixels, moved.source)
    write_seg(tmp_path / "seg" / "seg.dcm", series, frames, {1: "a", 2: "b", 3: "c"})
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    assert_same_grid(label_map, image)
    meta = sidecar_of(label_map)
    assert meta["Resampled"] is True
    assert "do not lie on the output grid's planes" in meta["ResampleReason"]
    assert "0.7 mm from the nearest plane" in meta["ResampleReason"]
    # nearest neighbour: the moved frame (0.7 mm off, slice step 2 mm) still lands on its slice
    data, _ = load_lps(label_map)
    for number, mask in masks.items():
        assert np.array_equal(data == number, mask)


def test_seg_without_its_image_is_written_on_its_own_grid(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
                    {1: "a", 2: "b", 3: "c"}, shuffle_seed=2)
    report = convert([tmp_path / "seg"], tmp_path / "out")
    assert report["errors"] == []
    images, (label_map,) = outputs(report, tmp_path / "out")
    assert images == []
    check_seg(seg, label_map)
    meta = sidecar_of(label_map)
    assert meta["LabelMap"]["OwnGrid"] is True and meta["LabelMap"]["ReferencedImage"] is None
    data, affine = load_lps(label_map)
    # the grid spans the segmented slices 1..7 at the image's spacing: slice k of the map is
    # slice k + 1 of the image
    assert data.shape == (SHAPE[0], SHAPE[1], 7)
    np.testing.assert_allclose(affine[:3, 3], series.positions[1], atol=1e-4)
    for number, mask in masks.items():
        assert np.array_equal(data == number, mask[:, :, 1:8])
    assert_frames_accounted(report, tmp_path / "out", seg)


def _tilted_ct(folder: Path) -> Any:
    normal = np.array([0.0, 0.0, 1.0])
    col = np.array([0.0, 1.0, 0.0])
    origin = np.array([-10.0, -20.0, 30.0])
    positions = [origin + k * (2.0 * normal + 0.6 * col) for k in range(SHAPE[2])]
    return write_series(folder, shape=SHAPE, pixel_spacing=(0.8, 0.7), positions=positions,
                        modality="CT", extra={"GantryDetectorTilt": 16.7})


def test_seg_on_a_tilted_ct_on_the_sheared_and_the_resampled_grid(
        tmp_path: Path) -> None:
    series = _tilted_ct(tmp_path / "ct")
    masks = {1: blob(SHAPE, (8, 8, 4), 4.0, range(2, 7)), 2: blob(SHAPE, (17, 12, 5), 3.0,
                                                                  range(3, 8))}
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
                    {1: "a", 2: "b"}, shuffle_seed=4)
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out",
                     plan=PlanOptions(tilt="both"))
    assert report["errors"] == []
    images, maps = outputs(report, tmp_path / "out")
    assert len(images) == 2 and len(maps) == 2
    by_ref = {sidecar_of(m)["LabelMap"]["ReferencedImage"]: m for m in maps}
    for image in images:
        label_map = by_ref[image.name]
        assert_same_grid(label_map, image)
        meta = sidecar_of(label_map)
        if sidecar_of(image)["Resampled"]:
            assert meta["Resampled"] is True and meta["Sheared"] is False
            _check_nearest(series, masks, label_map)
        else:
            assert meta["Sheared"] is True and meta["Resampled"] is False
            check_seg(seg, label_map, image)
            img: Any = nib.load(str(label_map))
            assert int(img.header["qform_code"]) == 0  # sheared: sform only


def _check_nearest(series: Any, masks: dict[int, np.ndarray], label_map: Path) -> None:
    """Each voxel of the resampled map holds the segment of the nearest source pixel.

    Independent nearest neighbour: voxel centre -> source slice index (nearest along the
    normal, within half a step) and pixel (rounded), from the synthetic ground truth.
    """
    data, affine = load_lps(label_map)
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij")
    world = np.stack([ii, jj, kk, np.ones_like(ii)], -1) @ affine.T
    src = np.linalg.inv(series.affine_lps)
    idx = world @ src.T
    i, j, k = (np.rint(idx[..., a]).astype(int) for a in range(3))
    inside = ((i >= 0) & (i < SHAPE[0]) & (j >= 0) & (j < SHAPE[1]) & (k >= 0) & (k < SHAPE[2]))
    expected = np.zeros(data.shape, dtype=np.int64)
    for number, mask in masks.items():
        hit = np.zeros(data.shape, dtype=bool)
        hit[inside] = mask[i[inside], j[inside], k[inside]]
        expected[hit] = number
    agree = float(np.mean(expected == data))
    assert agree >= 0.995, agree
    for number in masks:
        assert (data == number).sum() > 0


def test_inspect_shows_each_derived_object(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]],
        capsys: pytest.CaptureFixture[str]) -> None:
    series, masks = three_segments
    write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
              {1: "a", 2: "b", 3: "c"})
    assert cli_main(["inspect", str(tmp_path), "--json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (d,) = rows["derived"]
    assert d["Modality"] == "SEG" and d["Type"] == "binary" and d["Frames"] == 8
    assert d["ReferencedSeries"] == [series.series_instance_uid]
    assert d["TargetSeriesInstanceUID"] == series.series_instance_uid
    assert "label map on the exact grid" in d["Action"]
    assert cli_main(["inspect", str(tmp_path), "-q"]) == 0
    text = capsys.readouterr().out
    assert "derived objects:" in text and "SEG seg/seg.dcm (binary, 3 segments, 8 frames)" in text


@pytest.mark.slow
def test_memory_is_one_volume_per_segment_in_flight(tmp_path: Path) -> None:
    """40 segments over 48 slices of 128 x 96: peak traced memory stays a few volumes."""
    shape = (128, 96, 48)
    series = write_series(tmp_path / "ct", shape=shape, modality="CT", shuffle_seed=None)
    rng = np.random.default_rng(0)
    frames = []
    for s in range(1, 41):
        k0 = int(rng.integers(0, 40))
        for k in range(k0, k0 + 8):
            pix = np.zeros((shape[1], shape[0]), dtype=bool)
            r, c = int(rng.integers(0, 80)), int(rng.integers(0, 110))
            pix[r:r + 10, c:c + 12] = True
            frames.append(SegFrame(s, tuple(series.positions[k]), pix,
                                   series.sop_instance_uids[k]))
    write_seg(tmp_path / "seg" / "seg.dcm", series, frames, {s: f"s{s}" for s in range(1, 41)})
    volume_bytes = shape[0] * shape[1] * shape[2]
    tracemalloc.start()
    dicomvol.convert([tmp_path / "seg"], tmp_path / "out", ConvertOptions(compress=False))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maps = outputs(json.loads((tmp_path / "out" / "dicomvol_report.json").read_text()),
                   tmp_path / "out")[1]
    assert len(maps) == 1
    assert sidecar_of(maps[0])["LabelMap"]["Encoding"] in ("labels", "one-hot")
    # 40 segments one-hot would be 40 volumes; in flight: a few volumes plus decoded frames
    assert peak < 8 * volume_bytes + 8 * 2**20, peak / volume_bytes


def test_masks_agree_with_image_affine_in_ras(
        tmp_path: Path, three_segments: tuple[Any, dict[int, np.ndarray]]) -> None:
    series, masks = three_segments
    write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
              {1: "a", 2: "b", 3: "c"})
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (label_map,) = outputs(report, tmp_path / "out")[1]
    img: Any = nib.load(str(label_map))
    np.testing.assert_allclose(FLIP @ img.get_sform(), series.affine_lps, atol=1e-4)
    assert set(map_masks(label_map)) == {1, 2, 3}


@pytest.mark.slow
def test_label_maps_in_every_run_mode(tmp_path: Path) -> None:
    """Pool workers, NRRD, --reorient, --resume and an existing output: the same map or the
    reason; every frame accounted."""
    series = _tilted_ct(tmp_path / "ct")
    masks = {1: blob(SHAPE, (8, 8, 4), 4.0, range(2, 7)), 2: blob(SHAPE, (10, 8, 4), 3.0,
                                                                  range(3, 8))}
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, seg_frames_from_masks(series, masks),
                    {1: "a", 2: "b"})
    inputs = [tmp_path / "ct", tmp_path / "seg"]
    pool = convert(inputs, tmp_path / "pool", jobs=2)
    _, maps = outputs(pool, tmp_path / "pool")
    assert len(maps) == 2
    for label_map in maps:
        assert sidecar_of(label_map)["LabelMap"]["Encoding"] == "one-hot"
        if not sidecar_of(label_map)["Resampled"]:
            check_seg(seg, label_map, referenced_image(label_map))
    assert_frames_accounted(pool, tmp_path / "pool", seg)
    resumed = convert(inputs, tmp_path / "pool", resume=True)
    assert [v["Status"] for v in resumed["volumes"]] == ["resumed"] * 4
    assert_frames_accounted(resumed, tmp_path / "pool", seg)
    again = convert(inputs, tmp_path / "pool")
    assert again["outputs"] == []
    assert any(s["SOPInstanceUID"] == pydicom_uid(seg) and "output exists" in s["Reason"]
               for s in again["skipped"])
    nrrd = convert(inputs, tmp_path / "nrrd", format="nrrd", plan=PlanOptions(tilt="resample"))
    assert sorted(p.rsplit(".", 1)[1] for p in nrrd["outputs"]) == ["nrrd", "nrrd"]
    import nrrd as pynrrd

    (nrrd_image,), (nrrd_map,) = outputs(nrrd, tmp_path / "nrrd")
    data, _ = pynrrd.read(str(nrrd_map), index_order="F")
    image_data, _ = pynrrd.read(str(nrrd_image), index_order="F")
    assert data.shape == (*image_data.shape, 2)
    reoriented = convert(inputs, tmp_path / "reorient", reorient=True,
                         plan=PlanOptions(tilt="resample"))
    (image,), (label_map,) = outputs(reoriented, tmp_path / "reorient")
    assert_same_grid(label_map, image)
    assert "Reoriented" in sidecar_of(label_map)


def referenced_image(label_map: Path) -> Path:
    return label_map.parent / sidecar_of(label_map)["LabelMap"]["ReferencedImage"]


def pydicom_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_compressed_seg_frames_are_decoded_one_by_one(tmp_path: Path) -> None:
    """An RLE Lossless Label Map Segmentation (encapsulated frames) lands like a native one."""
    import pydicom
    from pydicom.uid import RLELossless

    series = ct(tmp_path / "ct")
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[3:11, 2:9, 1:6] = 1
    labels[13:22, 6:17, 4:9] = 2
    frames = [SegFrame(0, tuple(series.positions[k]), labels[:, :, k].T,
                       series.sop_instance_uids[k]) for k in range(1, 9)]
    seg = write_seg(tmp_path / "seg" / "seg.dcm", series, frames, {1: "a", 2: "b"},
                    kind="LABELMAP", shuffle_seed=3)
    ds = pydicom.dcmread(seg)
    ds.compress(RLELossless)
    ds.save_as(seg)
    report = convert([tmp_path / "ct", tmp_path / "seg"], tmp_path / "out")
    (image,), (label_map,) = outputs(report, tmp_path / "out")
    check_seg(seg, label_map, image)
    data, _ = load_lps(label_map)
    assert np.array_equal(data, labels)

"""Integration over every set of the shared corpus.

For each set: the conversion finishes without a crash; every written volume
passes the independent exactness check; every input image frame is in an
output, in ``skipped`` or (by file) in ``errors``; and every series that the
IDC rules call a regularly spaced 3D volume comes out as exactly one volume
holding all of its instances. The IDC rules are recomputed here from the
headers with pydicom, following the ``volume_geometry_index`` definition with
the contract's tolerances, independently of dicomvol's own geometry code.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

import dicomvol
from dicomvol.options import ConvertOptions
from exactness import check_exact, check_resampled

pytestmark = [pytest.mark.slow, pytest.mark.corpus]

#: IDC's single-frame CT, MR and PET SOP classes.
IDC_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4",
                   "1.2.840.10008.5.1.4.1.1.128"}
SETS = ["ct_tilt", "ct_lung1", "pet_wholebody_seg", "edge_cases", "mr_orientation",
        "mr_4d_nih", "transfer_syntaxes", "enhanced_mr", "seg_dcmqi", "seg_highdicom"]


@pytest.fixture(scope="module")
def converted(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each corpus set converted into its own folder (2 workers)."""
    out: dict[str, Any] = {}
    for name in SETS:
        src = corpus / name
        if not src.is_dir():
            pytest.fail(f"corpus set {name} missing from {corpus}")
        dest = tmp_path_factory.mktemp(name)
        report = dicomvol.convert([src], dest, ConvertOptions(jobs=2))
        out[name] = (src, dest, report)
    return out


def test_every_corpus_set_lists_in_readme(corpus: Path) -> None:
    present = {p.name for p in corpus.iterdir() if p.is_dir()}
    assert set(SETS) <= present


@pytest.mark.parametrize("name", SETS)
def test_outputs_are_exact(converted: dict[str, Any], name: str) -> None:
    src, dest, _ = converted[name]
    written = json.loads((dest / "dicomvol_report.json").read_text())
    for volume in written["volumes"]:
        side = json.loads((dest / volume["Sidecar"]).read_text())
        if "LabelMap" in side:  # label maps: tests/integration/test_labelmaps.py (labelcheck)
            continue
        if "Slide" in side:  # slides: tests/slide/ (regions against pydicom, readers)
            continue
        if volume["Resampled"]:
            check_resampled(dest / volume["Path"], [src])
        else:
            check_exact(dest / volume["Path"], [src])


@pytest.mark.parametrize("name", SETS)
def test_every_frame_accounted_for(converted: dict[str, Any], name: str) -> None:
    src, dest, _ = converted[name]
    written = json.loads((dest / "dicomvol_report.json").read_text())
    exact: set[tuple[str, int]] = set()
    resampled: set[tuple[str, int]] = set()
    for volume in written["volumes"]:
        side = json.loads((dest / volume["Sidecar"]).read_text())
        target = resampled if side["Resampled"] else exact
        tiles_seen: set[tuple[str, int, int]] = set()
        for s in side["SourceInstances"]:
            key = (s["File"], s["Frame"])
            tile = (s["File"], s["Frame"], s.get("Tile", 0))
            assert tile not in tiles_seen, f"{tile} twice in {volume['Path']}"
            tiles_seen.add(tile)
            # A frame is in one exact output only; a resampled output may share frames
            # with the exact stack it was made from (contract), but not with another one.
            assert s.get("Tile") or key not in target, f"{key} written twice"
            target.add(key)
    in_outputs = exact | resampled
    skipped_frames = {(s["File"], s["Frame"]) for s in written["skipped"]}
    skipped_files = {s["File"] for s in written["skipped"] if s["Frame"] is None}
    error_files = {e["File"] for e in written["errors"]}
    for path, frames in _image_files(src):
        rel = os.path.relpath(path, src)
        if rel in error_files or rel in skipped_files:
            continue
        for frame in range(1, frames + 1):
            key = (rel, frame)
            assert (key in in_outputs) != (key in skipped_frames), (
                f"{name}: {rel} frame {frame} is "
                + ("both written and skipped" if key in in_outputs else "lost"))


@pytest.mark.parametrize("name", SETS)
def test_idc_regular_series_become_one_volume(converted: dict[str, Any], name: str) -> None:
    src, dest, _ = converted[name]
    written = json.loads((dest / "dicomvol_report.json").read_text())
    by_series: dict[str, list[set[str]]] = defaultdict(list)
    for volume in written["volumes"]:
        side = json.loads((dest / volume["Sidecar"]).read_text())
        by_series[side["SeriesInstanceUID"]].append(
            {s["SOPInstanceUID"] for s in side["SourceInstances"]})
    regular = [key for key, ok in idc_regular(src).items() if ok]
    if name in ("ct_lung1", "pet_wholebody_seg", "edge_cases", "seg_dcmqi"):
        assert regular, f"{name}: the corpus README lists regular series here"
    for uid, sops in regular:
        outs = by_series.get(uid, [])
        assert len(outs) == 1, f"{name}: IDC-regular series {uid} gave {len(outs)} volumes"
        assert outs[0] == sops, f"{name}: series {uid} volume lacks instances"


def test_lung_ct_is_one_regular_volume(converted: dict[str, Any]) -> None:
    _, dest, report = converted["ct_lung1"]
    images = [o for o in report.outputs
              if "LabelMap" not in json.loads((dest / o.sidecar).read_text())]
    assert [o.shape for o in images] == [(512, 512, 134)]
    side = json.loads((dest / images[0].sidecar).read_text())
    assert side["Geometry"]["regularly_spaced_3d_volume"] is True
    assert side["Resampled"] is False and side["Warnings"] == []


def test_no_errors_on_valid_corpus(converted: dict[str, Any]) -> None:
    for name, (_, _, report) in converted.items():
        assert report.errors == [], f"{name}: {report.errors}"


def _image_files(root: Path) -> list[tuple[str, int]]:
    """Every file under root holding Pixel Data, with its frame count."""
    found = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=False, defer_size=1024)
            except Exception:
                continue
            if any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                found.append((path, int(ds.get("NumberOfFrames", 1) or 1)))
    return found


def idc_regular(root: Path) -> dict[tuple[str, frozenset[str]], bool]:
    """IDC regularly_spaced_3d_volume per series (key: series UID, its SOPInstanceUIDs)."""
    series: dict[str, dict[str, Any]] = defaultdict(dict)
    localizer: set[str] = set()
    for path, _ in _image_files(root):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if str(ds.get("SOPClassUID", "")) not in IDC_SOP_CLASSES:
            continue
        uid = str(ds.SeriesInstanceUID)
        types = [str(t).upper() for t in (ds.get("ImageType") or [])]
        if "LOCALIZER" in types or any("MIP" in t for t in types):
            localizer.add(uid)
        series[uid].setdefault(str(ds.SOPInstanceUID), ds)  # one copy per instance
    result = {}
    for uid, instances in series.items():
        if uid in localizer:
            continue
        result[(uid, frozenset(instances))] = _idc_checks(list(instances.values()))
    return result


def _idc_checks(items: list[Any]) -> bool:
    try:
        iops = [tuple(round(float(v), 6) for v in d.ImageOrientationPatient) for d in items]
        ipps = np.array([[float(v) for v in d.ImagePositionPatient] for d in items])
        spacing = {tuple(float(v) for v in d.PixelSpacing) for d in items}
    except AttributeError:
        return False
    dims = {(int(d.Rows), int(d.Columns)) for d in items}
    row, col = np.array(iops[0][:3]), np.array(iops[0][3:])
    normal = np.cross(row, col)
    proj = np.sort(ipps @ normal)
    ok = (len(set(iops)) == 1 and abs(np.linalg.norm(normal) - 1) <= 0.01
          and len(np.unique(np.round(proj, 4))) == len(items)
          and np.ptp(ipps @ row) < 0.1 and np.ptp(ipps @ col) < 0.1
          and len(spacing) == 1 and len(dims) == 1)
    if ok and len(proj) > 1:
        expected = (proj[-1] - proj[0]) / (len(proj) - 1)
        ok = bool(np.max(np.abs(np.diff(proj) - expected)) < 0.01 * expected)
    return bool(ok)


def test_missing_slice_case_is_resampled_with_its_gap_named(converted: dict[str, Any]) -> None:
    """failing/sliceincrement/001 (corpus README: a missing slice) changes AcquisitionNumber
    mid-scan; it must not be mistaken for two stacks: one resampled volume naming the gap."""
    _, dest, _ = converted["edge_cases"]
    found = []
    for side_path in dest.glob("*.json"):
        if side_path.name.startswith("dicomvol_report"):
            continue
        side = json.loads(side_path.read_text())
        files = {s["File"] for s in side["SourceInstances"]}
        if any(f.startswith("failing/sliceincrement/001/") for f in files):
            found.append(side)
    assert len(found) == 1, [s.get("VolumeLabel") for s in found]
    side = found[0]
    assert side["Resampled"] is True and len(side["SourceInstances"]) == 4
    gaps = side["GeometryDetail"]["gaps"]
    assert [g["missing_slices"] for g in gaps] == [1]
    assert gaps[0]["after_position_mm"] == pytest.approx(28.1075, abs=1e-3)
    assert any("missing" in w for w in side["Warnings"])


def _all_sets() -> list[str]:
    """Every set of the shared corpus (those converted above, and any other there)."""
    from conftest import corpus_root

    root = corpus_root()
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root else []
    return list(dict.fromkeys([*SETS, *present]))


@pytest.mark.parametrize("name", _all_sets())
def test_ledger_balances_and_no_image_is_ignored(converted: dict[str, Any], corpus: Path,
                                                 tmp_path: Path, name: str) -> None:
    """The run's own frame ledger balances on every set, and ``ignored`` holds no file with
    Pixel Data (a damaged image is an error, never "not an image")."""
    if name in converted:
        src, dest, _ = converted[name]
    else:  # a set this module does not convert otherwise (e.g. slides)
        src, dest = corpus / name, tmp_path / name
        dicomvol.convert([src], dest, ConvertOptions(jobs=2))
    written = json.loads((dest / "dicomvol_report.json").read_text())
    ledger = written["ledger"]
    assert ledger["balanced"] is True, f"{name}: {ledger}"
    assert ledger["frames_in"] == (ledger["frames_written"] + ledger["frames_skipped"]
                                   + ledger["frames_errors"])
    # Every frame pydicom finds was entered (mosaic tiles count one by one, so >=).
    assert ledger["frames_in"] >= sum(n for _, n in _image_files(src)) - sum(
        1 for _ in written["errors"])
    for item in written["ignored"]:
        try:
            ds = pydicom.dcmread(src / item["File"], force=True, defer_size=1024)
        except Exception:
            continue  # not DICOM at all
        assert not any(t in ds for t in ("PixelData", "FloatPixelData",
                                          "DoubleFloatPixelData")), (
            f"{name}: {item['File']} holds Pixel Data but is ignored: {item['Reason']}")

"""The QC page of real conversions of synthetic series: content, links, plots, label maps,
slides, ``dicomvol qc`` and the ledger line.

Expectations come from the synthetic ground truth (slice positions written by
the test, the label boxes placed in patient space here) and from the output
contract (``LabelMap`` sidecar objects); pixels are read back with the test's
own PNG reader.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dicomvol
from dicomvol.cli.main import main
from dicomvol.options import ConvertOptions
from dicomvol.qc.build import build_page
from dicomvol.qc.entry import Entry
from dicomvol.qc.page import ledger_of
from dicomvol.qc.thumbs import OVERLAY_ALPHA
from dicomvol.testing import write_series
from pngread import decode_png
from qcfixtures import add_outputs, write_label_map, write_slide

COLS, ROWS = 40, 36
AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
ORIGIN = np.array([-20.0, -15.0, 10.0])
#: Positions (mm) compared after the JSON round trip (4 decimals).
POSITION_TOLERANCE_MM = 1e-3


def _series(folder: Path, positions: list[np.ndarray], **kw: Any) -> Any:
    return write_series(folder, shape=(COLS, ROWS, len(positions)), pixel_spacing=(0.8, 0.7),
                        row_dir=AXIAL[0], col_dir=AXIAL[1], positions=[list(p) for p in positions],
                        shuffle_seed=3, **kw)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three CT series: regular, one missing slice (split policy), 12° gantry tilt."""
    root = tmp_path_factory.mktemp("qcstudy")
    regular = _series(root / "in" / "regular",
                      [ORIGIN + np.array([0, 0, 2.5 * k]) for k in range(12)],
                      series_number=1, series_description="regular")
    gap_mm = [0, 2.5, 5, 7.5, 12.5, 15, 17.5, 20]  # 10 mm missing
    missing = _series(root / "in" / "missing", [ORIGIN + np.array([0, 0, z]) for z in gap_mm],
                      series_number=2, series_description="missing slice")
    t = math.radians(12.0)
    tilted = _series(root / "in" / "tilted",
                     [ORIGIN + k * 2.0 * np.array([0, math.sin(t), math.cos(t)])
                      for k in range(10)], series_number=3, series_description="tilted",
                     extra={"GantryDetectorTilt": 12.0})
    out = root / "out"
    report = dicomvol.convert([root / "in"], out, ConvertOptions(qc=True, jobs=1))
    return {"root": root, "out": out, "report": report, "regular": regular,
            "missing": missing, "tilted": tilted, "gap_mm": gap_mm}


def _html(out: Path) -> str:
    return (out / "qc" / "index.html").read_text(encoding="utf-8")


def _record(out: Path, stem: str) -> dict[str, Any]:
    return json.loads((out / "qc" / "data" / f"{stem}.json").read_text(encoding="utf-8"))


def test_page_has_one_row_and_one_section_per_output(study: dict[str, Any]) -> None:
    out, report = study["out"], study["report"]
    html = _html(out)
    body = html.split('<table id="outputs-table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr><td><a href="#([^"]+)">([^<]+)</a>', body)
    assert sorted(name for _, name in rows) == sorted(o.path for o in report.outputs)
    for anchor, _ in rows:
        assert f'id="{anchor}"' in html
    # every picture the page shows exists and is a PNG of the size the page states
    images = re.findall(r'<img [^>]*src="([^"]+)" width="(\d+)" height="(\d+)"', html)
    assert images
    for src, width, height in images:
        pixels = decode_png(out / "qc" / src)
        assert pixels.shape[:2] == (int(height), int(width))
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_views_carry_patient_letters(study: dict[str, Any]) -> None:
    record = _record(study["out"], Path(study["report"].outputs[0].path).name.split(".")[0])
    letters = {t["plane"]: t["letters"] for t in record["Thumbs"]}
    assert letters == {"axial": ["R", "L", "A", "P"], "coronal": ["R", "L", "S", "I"],
                       "sagittal": ["A", "P", "S", "I"]}
    rows = list(dict.fromkeys(t["row"] for t in record["Thumbs"]))
    assert rows == ["soft tissue W400 L40 [-160, 240]", "lung W1500 L-600 [-1350, 150]"]


def _stem_of(report: Any, description: str) -> list[str]:
    stems = []
    for o in report.outputs:
        sidecar = json.loads((Path(report.out_dir) / o.sidecar).read_text())
        if sidecar["SeriesDescription"] == description:
            stems.append(o.sidecar[: -len(".json")])
    return stems


def test_irregular_series_plot_shows_the_gap_and_the_source_positions(
        study: dict[str, Any]) -> None:
    out, report = study["out"], study["report"]
    (stem,) = _stem_of(report, "missing slice")  # resampled by default
    positions = _record(out, stem)["Positions"]
    truth = [float(ORIGIN[2] + z) for z in study["gap_mm"]]  # normal is +S
    assert positions["source"] == "plan"
    assert np.allclose(positions["acquired_mm"], truth, atol=POSITION_TOLERANCE_MM)
    # the resampled grid spans the acquired range on the regular 2.5 mm step
    assert np.allclose(positions["grid_mm"], np.arange(truth[0], truth[-1] + 1e-6, 2.5),
                       atol=POSITION_TOLERANCE_MM)
    html = _html(out)
    plot = html.split("series 2 missing slice", 1)[1].split("</figure>", 1)[0]
    assert 'class="gap"' in plot and "gap 5 mm: 1 slice(s) missing" in plot
    assert "(resampled, 9)" in plot  # the output grid (0 to 20 mm by 2.5) in the legend


def test_tilted_series_plot_shows_the_in_plane_drift(study: dict[str, Any]) -> None:
    out, report = study["out"], study["report"]
    stems = _stem_of(report, "tilted")
    assert len(stems) == 2  # sheared and resampled (default --tilt both)
    html = _html(out)
    section = html.split("series 3 tilted", 1)[1].split("</div>", 1)[0]
    assert "(12.0°)" in section  # atan(drift / span) from the source positions
    assert "(exact, 10)" in section and "(resampled," in section


def test_ledger_line(study: dict[str, Any]) -> None:
    report = study["report"].to_json()
    html = _html(study["out"])
    n = sum(len(s.positions) for s in (study["regular"], study["missing"], study["tilted"]))
    assert report["ledger"]["frames_in"] == n and report["ledger"]["balanced"] is True
    assert (f"frames in: {n} = {n} written + 0 skipped + 0 in files with errors: the ledger "
            "balances.") in html
    entries = [Entry(o.path, o.sidecar[:-5], json.loads(
        (study["out"] / o.sidecar).read_text()), {}) for o in study["report"].outputs]
    assert ledger_of(report, entries).balanced is True
    ledger = report["ledger"]
    more = {**report, "ledger": {**ledger, "frames_in": n + 1}}
    assert ledger_of(more, entries).balanced is False  # a frame the counts do not place
    lost = {**report, "ledger": {**ledger, "balanced": False}}
    assert ledger_of(lost, entries).balanced is False  # the run's own verdict is kept
    old = {k: v for k, v in report.items() if k != "ledger"}  # a report without a ledger
    assert ledger_of(old, entries).balanced is None
    assert ledger_of(old, entries).written == n  # counted from the sidecars instead
    first = entries[0].sidecar["SourceInstances"][0]  # a written frame listed as skipped too
    both = {**report, "skipped": [{**first, "Reason": "test"}]}
    assert ledger_of(both, entries).written_and_skipped == 1
    assert ledger_of(both, entries).balanced is False


def test_qc_command_draws_what_convert_drew(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "plain"
    dicomvol.convert([study["root"] / "in" / "regular"], out, ConvertOptions(jobs=1))
    assert not (out / "qc").exists()
    assert main(["qc", str(out), "-q"]) == 0
    (stem,) = _stem_of(dicomvol.convert([study["root"] / "in" / "regular"], tmp_path / "again",
                                        ConvertOptions(jobs=1, qc=True)), "regular")
    from_file, from_job = _record(out, stem), _record(tmp_path / "again", stem)
    assert [t["file"] for t in from_file["Thumbs"]] == [t["file"] for t in from_job["Thumbs"]]
    for thumb in from_job["Thumbs"]:  # streamed in the job vs read back from the NIfTI
        assert np.array_equal(decode_png(tmp_path / "again" / "qc" / thumb["file"]),
                              decode_png(out / "qc" / thumb["file"]))


def test_qc_command_without_a_report_is_a_usage_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qc", str(tmp_path)]) == 2
    assert "no dicomvol_report.json" in capsys.readouterr().err


def test_stale_record_is_redrawn(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = dicomvol.convert([study["root"] / "in" / "regular"], out,
                              ConvertOptions(jobs=1, qc=True))
    stem = report.outputs[0].sidecar[:-5]
    data = out / "qc" / "data" / f"{stem}.json"
    before = data.stat().st_mtime_ns
    image = out / report.outputs[0].path
    image.write_bytes(image.read_bytes())  # same content, new mtime: the record is stale
    build_page(out)
    assert data.stat().st_mtime_ns > before
    (out / "qc" / "img" / "orphan.png").write_bytes(b"x")
    build_page(out)
    assert not (out / "qc" / "img" / "orphan.png").exists()  # unused files are pruned


def test_a_failing_thumbnail_costs_only_the_thumbnail(study: dict[str, Any], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr("dicomvol.qc.capture.from_job", boom)
    out = tmp_path / "out"
    report = dicomvol.convert([study["root"] / "in" / "regular"], out,
                              ConvertOptions(jobs=1, qc=True))
    assert report.ok and len(report.outputs) == 1
    stem = report.outputs[0].sidecar[:-5]
    assert _record(out, stem)["ImageStat"]  # drawn by the page builder, from the file
    assert f'id="v-{stem}"' in _html(out)


# ----------------------------------------------------------------------- label maps, slides


@pytest.mark.parametrize("encoding", ["labels", "one-hot"])
def test_label_maps_and_slides_render(study: dict[str, Any], tmp_path: Path,
                                      encoding: str) -> None:
    out = tmp_path / "out"
    report = dicomvol.convert([study["root"] / "in" / "regular"], out,
                              ConvertOptions(jobs=1, qc=True))
    image = report.outputs[0].path
    label = write_label_map(out, image, "labels", encoding)
    slide, colours = write_slide(out)
    add_outputs(out, [label, slide])  # as the derived-object and slide writers list them
    build_page(out)
    html = _html(out)
    rows = html.split('<table id="outputs-table">', 1)[1].split("</table>", 1)[0]
    assert rows.count("<tr><td>") == 3

    overlay = _record(out, "labels")
    assert [s["rgb"] for s in overlay["Legend"]] == [[255, 0, 0], [0, 255, 0]]
    axial = next(t for t in overlay["Thumbs"] if t["plane"] == "axial")
    rgba = decode_png(out / "qc" / axial["file"])
    h, w = rgba.shape[:2]
    top_right, bottom_left = rgba[: h // 2, w // 2:], rgba[h // 2:, : w // 2]
    assert (top_right[..., :3] == (255, 0, 0)).all(axis=-1).mean() > 0.9  # left anterior
    assert (bottom_left[..., :3] == (0, 255, 0)).all(axis=-1).mean() > 0.9  # right posterior
    assert set(np.unique(rgba[..., 3])) <= {0, OVERLAY_ALPHA}
    image_stem = report.outputs[0].sidecar[:-5]
    section = html.split(f'id="v-{image_stem}"', 1)[1].split("</article>", 1)[0]
    assert f'class="overlay" loading="lazy" decoding="async" src="{axial["file"]}"' in section
    assert "left anterior (1)" in section and "right posterior (2)" in section

    thumb = _record(out, "slide")["Thumbs"][0]
    assert "level 2 of 4" in thumb["caption"]  # the smallest level >= 192 px: 256 x 192
    pixels = decode_png(out / "qc" / thumb["file"])
    assert (pixels[..., :3] == colours[2]).all()
    assert pixels.shape[:2] == (192, 144)  # thumbnail box, aspect kept


def test_cli_convert_qc(study: dict[str, Any], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["convert", str(study["root"] / "in" / "regular"), "-o", str(out), "-q", "-j",
                 "1", "--qc"]) == 0
    assert (out / "qc" / "index.html").is_file()
    assert main(["qc", str(out), "-q", "--rebuild"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "qc" / "index.html")


def test_4d_shows_first_and_last_volume_and_its_fourth_axis(tmp_path: Path) -> None:
    n = 4
    write_series(tmp_path / "in", shape=(12, 10, n * 3), modality="MR",
                 positions=[(0.0, 0.0, 2.0 * (k % n)) for k in range(n * 3)],
                 per_slice={"TemporalPositionIdentifier": [k // n + 1 for k in range(n * 3)],
                            "AcquisitionTime": [f"1200{2 * (k // n):02d}.{k % n}"
                                                for k in range(n * 3)]})
    out = tmp_path / "out"
    report = dicomvol.convert([tmp_path / "in"], out, ConvertOptions(jobs=1, qc=True))
    (output,) = report.outputs
    record = _record(out, output.sidecar[:-5])
    rows = list(dict.fromkeys(t["row"] for t in record["Thumbs"]))
    assert [r.split(",")[0] for r in rows] == ["volume 1 of 3", "volume 3 of 3"]
    fourth = record["FourthAxis"]
    assert fourth["name"] == "temporal position" and fourth["values"] == [1.0, 2.0, 3.0]
    # AcquisitionTime 12:00:00.0, 12:00:02.0, 12:00:04.0 for the first slice of each volume
    assert np.allclose(fourth["times_s"], [0.0, 2.0, 4.0], atol=1e-6)
    html = _html(out)
    assert "4D: 3 volumes ordered by temporal position" in html
    assert "acquisition time of each volume" in html


@pytest.mark.parametrize("fmt", ["nrrd", "mha"])
def test_qc_command_reads_nrrd_and_metaimage(study: dict[str, Any], tmp_path: Path,
                                             fmt: str) -> None:
    regular = study["root"] / "in" / "regular"
    drawn = dicomvol.convert([regular], tmp_path / "job", ConvertOptions(jobs=1, qc=True))
    dicomvol.convert([regular], tmp_path / fmt, ConvertOptions(jobs=1, format=fmt))
    build_page(tmp_path / fmt)
    stem = drawn.outputs[0].sidecar[:-5]
    for thumb in _record(tmp_path / "job", stem)["Thumbs"]:  # NIfTI in the job vs read back
        assert np.array_equal(decode_png(tmp_path / fmt / "qc" / thumb["file"]),
                              decode_png(tmp_path / "job" / "qc" / thumb["file"]))

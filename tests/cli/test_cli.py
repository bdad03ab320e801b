"""The ``dicomvol`` command line, called as ``main([...])`` (and once as a real process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from dicomvol.cli.main import main
from dicomvol.testing import (
    SyntheticSeries,
    directions_for,
    oblique_directions,
    write_series,
    write_truncated,
)
from exactness import check_exact

REPO = Path(__file__).resolve().parents[2]
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SHAPE = (8, 6, 5)
IDC_KEYS = (
    "single_orientation", "orthogonal_orientation", "unique_slice_positions",
    "consistent_in_plane_row", "consistent_in_plane_col", "consistent_pixel_spacing",
    "consistent_image_dimensions", "uniform_slice_spacing", "regularly_spaced_3d_volume",
    "obliquity_degrees", "slice_spacing_mm",
)
SAFE_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _series(folder: Path, **kw: Any) -> SyntheticSeries:
    kw.setdefault("shape", SHAPE)
    kw.setdefault("shuffle_seed", 1)
    return write_series(folder, **kw)


def _images(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.endswith((".nii", ".nii.gz")))


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    return data


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text


# ------------------------------------------------------------------------------------------
# convert
# ------------------------------------------------------------------------------------------


def test_convert_writes_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    s = _series(inp, order="descending")
    code, stdout, stderr = _run(capsys, "convert", str(inp), "-o", str(out), "-j", "1")
    assert code == 0, stderr
    assert "wrote" in stdout
    (image,) = _images(out)
    assert image.name.endswith(".nii.gz")
    assert image.name in stdout
    img: Any = nib.load(image)
    assert np.array_equal(img.get_fdata(), s.values)
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ s.affine_lps, atol=1e-6)
    check_exact(image, [inp])
    assert _report(out)["outputs"] == [image.name]


def test_convert_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    s = _series(inp)
    code, stdout, _ = _run(capsys, "convert", str(inp), "-o", str(out), "--json", "-j", "1")
    assert code == 0
    data = json.loads(stdout)  # stdout is exactly one JSON document
    assert {"outputs", "skipped", "errors"} <= set(data)
    assert data["errors"] == [] and data["skipped"] == []
    assert len(data["outputs"]) == 1
    assert (out / data["outputs"][0]).is_file()
    assert data == _report(out)
    sidecar = json.loads((out / data["outputs"][0].replace(".nii.gz", ".json")).read_text())
    assert [e["SOPInstanceUID"] for e in sidecar["SourceInstances"]] == list(
        s.sop_instance_uids)


def test_convert_uncompressed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    s = _series(inp, row_dir=directions_for("sagittal")[0], col_dir=directions_for("sagittal")[1])
    code, _, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-z", "n", "-q", "-j", "1")
    assert code == 0
    (image,) = _images(out)
    assert image.name.endswith(".nii") and not image.name.endswith(".nii.gz")
    assert image.read_bytes()[344:348] == b"n+1\x00"  # a plain single-file NIfTI-1
    assert (out / (image.name[:-4] + ".json")).is_file()
    img: Any = nib.load(image)
    assert np.array_equal(img.get_fdata(), s.values)
    check_exact(image, [inp])


def test_name_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    _series(inp, patient_id="PAT42", series_number=7, modality="MR", rescale=(1.0, 0.0))
    code, _, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-q", "-j", "1",
                      "-f", "{PatientID}_{SeriesNumber}_{Modality}")
    assert code == 0
    assert [p.name for p in _images(out)] == ["PAT42_7_MR.nii.gz"]
    assert (out / "PAT42_7_MR.json").is_file()


def test_unsafe_characters_are_sanitized(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    _series(inp, series_description="a/b c*", patient_id="../x")
    code, _, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-q", "-j", "1",
                      "-f", "{PatientID}_{SeriesDescription}")
    assert code == 0
    entries = sorted(p.name for p in out.iterdir())
    assert all(not (out / e).is_dir() for e in entries), entries
    assert not (tmp_path / "x").exists()  # nothing escaped the output folder
    (image,) = _images(out)
    stem = image.name[: -len(".nii.gz")]
    assert SAFE_NAME.match(stem), stem
    assert "a" in stem and "b" in stem and "c" in stem
    assert (out / f"{stem}.json").is_file()


def test_same_name_never_collides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    a = _series(inp, series_number=1, seed=1)
    b = _series(inp, series_number=1, seed=2)  # same PatientID, number and description
    c = _series(inp, series_number=2, seed=3)
    code, _, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-q", "-j", "1",
                      "-f", "{Modality}")
    assert code == 0
    images = _images(out)
    assert len(images) == 3
    assert len({p.name.lower() for p in images}) == 3
    truth = {x.series_instance_uid: x for x in (a, b, c)}
    seen = set()
    for image in images:
        sidecar = json.loads((out / image.name.replace(".nii.gz", ".json")).read_text())
        uid = sidecar["SeriesInstanceUID"]
        seen.add(uid)
        img: Any = nib.load(image)
        assert np.array_equal(img.get_fdata(), truth[uid].values)
    assert seen == set(truth)


def test_existing_outputs_need_overwrite(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    s = _series(inp)
    assert _run(capsys, "convert", str(inp), "-o", str(out), "-j", "1")[0] == 0
    (image,) = _images(out)
    image.write_bytes(b"stale")  # stands for a file the user wants to keep

    code, stdout, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-j", "1")
    assert code == 0
    assert image.read_bytes() == b"stale"
    assert "output exists" in stdout
    report = _report(out)
    assert report["outputs"] == []
    assert {e["SOPInstanceUID"] for e in report["skipped"]} == set(s.sop_instance_uids)
    assert all("output exists" in e["Reason"] for e in report["skipped"])

    code, stdout, _ = _run(capsys, "convert", str(inp), "-o", str(out), "-j", "1",
                           "--overwrite")
    assert code == 0
    assert "wrote" in stdout
    img: Any = nib.load(image)
    assert np.array_equal(img.get_fdata(), s.values)
    assert _report(out)["skipped"] == []


def test_truncated_file_fails_the_batch(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    s = _series(inp)
    write_truncated(s.paths[0], inp / "BROKEN_FILE")
    code, stdout, stderr = _run(capsys, "convert", str(inp), "-o", str(out), "-j", "1")
    assert code == 1
    assert "BROKEN_FILE" in stdout + stderr
    _no_traceback(stdout + stderr)
    assert [e["File"] for e in _report(out)["errors"]] == ["BROKEN_FILE"]
    assert len(_images(out)) == 1  # the rest still converts

    code, stdout, _ = _run(capsys, "convert", str(inp), "-o", str(tmp_path / "o2"), "--json",
                           "-j", "1")
    assert code == 1
    assert [e["File"] for e in json.loads(stdout)["errors"]] == ["BROKEN_FILE"]


# ------------------------------------------------------------------------------------------
# usage errors
# ------------------------------------------------------------------------------------------

def _usage_cases(tmp: Path) -> dict[str, list[str]]:
    return {
        "missing-input": ["convert", str(tmp / "does-not-exist"), "-o", str(tmp / "out")],
        "bad-template": ["convert", str(tmp), "-o", str(tmp / "out"), "-f", "{Patient"],
        "format-spec-template": ["convert", str(tmp), "-o", str(tmp / "out"), "-f",
                                 "{SeriesNumber:03d}"],
        "no-subcommand": [],
        "unknown-option": ["convert", str(tmp), "-o", str(tmp / "out"), "--no-such-option"],
        "unknown-subcommand": ["frobnicate"],
        "bad-jobs": ["convert", str(tmp), "-o", str(tmp / "out"), "-j", "0"],
    }


USAGE_CASES = ["missing-input", "bad-template", "format-spec-template", "no-subcommand",
               "unknown-option", "unknown-subcommand", "bad-jobs"]


@pytest.mark.parametrize("case", USAGE_CASES)
def test_usage_error_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               case: str) -> None:
    code, stdout, stderr = _run(capsys, *_usage_cases(tmp_path)[case])
    assert code == 2
    assert stderr.strip(), "nothing said on stderr"
    _no_traceback(stdout + stderr)
    assert not (tmp_path / "out").exists(), "a usage error created the output folder"


@pytest.mark.parametrize(
    "case",
    [
        "missing-input", "bad-template", "format-spec-template", "bad-jobs",
        "no-subcommand", "unknown-option", "unknown-subcommand",
    ],
)
def test_usage_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 case: str) -> None:
    code, _, stderr = _run(capsys, *_usage_cases(tmp_path)[case])
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "error" in lines[0]


def test_help_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(capsys, "--help")
    assert code == 0
    for word in ("convert", "inspect", "demo"):
        assert word in stdout
    code, stdout, _ = _run(capsys, "convert", "--help")
    assert code == 0
    assert "--overwrite" in stdout and "TEMPLATE" in stdout


def test_help_is_fast_as_a_process() -> None:
    exe = Path(sys.executable).with_name("dicomvol")
    cmd = [str(exe), "--help"] if exe.is_file() else [sys.executable, "-m",
                                                       "dicomvol.cli.main", "--help"]
    subprocess.run(cmd, capture_output=True, check=True, timeout=30)  # warm the .pyc cache
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0
    assert "convert" in proc.stdout
    assert elapsed < 1.0, f"dicomvol --help took {elapsed:.2f} s"


# ------------------------------------------------------------------------------------------
# inspect and demo
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plane", "dirs"),
    [
        ("axial", directions_for("axial")),
        ("sagittal", directions_for("sagittal")),
        ("coronal", directions_for("coronal")),
        ("oblique", oblique_directions(30.0, (1.0, 1.0, 0.0))),
    ],
)
def test_inspect_table(tmp_path: Path, capsys: pytest.CaptureFixture[str], plane: str,
                       dirs: tuple[Any, Any]) -> None:
    _series(tmp_path, modality="MR", rescale=(1.0, 0.0), row_dir=dirs[0], col_dir=dirs[1])
    code, stdout, _ = _run(capsys, "inspect", str(tmp_path))
    assert code == 0
    rows = [line for line in stdout.splitlines() if "8x6x5" in line]
    assert len(rows) == 1, stdout
    row = rows[0]
    assert re.search(r"\bMR\b", row)
    assert re.search(rf"\b{plane}\b", row), row
    assert re.search(r"\byes\b", row), row
    assert not list(tmp_path.glob("*.nii*")), "inspect must not write anything"


def test_inspect_irregular_series_is_not_regular(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    positions = [(0.0, 0.0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0)]
    _series(tmp_path, positions=positions)
    code, stdout, _ = _run(capsys, "inspect", str(tmp_path))
    assert code == 0
    table = [line for line in stdout.splitlines() if "8x6x" in line]
    assert table
    assert not any(re.search(r"\byes\b", line) for line in table), stdout


def test_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _series(tmp_path)
    code, stdout, _ = _run(capsys, "inspect", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(stdout)
    (vol,) = data["volumes"]
    assert set(IDC_KEYS) <= set(vol["Geometry"])
    assert vol["Geometry"]["regularly_spaced_3d_volume"] is True
    assert vol["Geometry"]["slice_spacing_mm"] == pytest.approx(2.5)
    assert vol["Action"]
    assert vol["SeriesInstanceUID"] == s.series_instance_uid
    assert vol["Matrix"] == list(SHAPE)


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = _run(capsys, "demo", "--keep", str(tmp_path))
    assert code == 0, stdout + stderr
    ok_lines = [line for line in stdout.splitlines() if line.rstrip().endswith("-> OK")]
    assert len(ok_lines) == 2, stdout  # the oblique CT and the MR series
    assert "MISMATCH" not in stdout and "NOT WRITTEN" not in stdout
    images = sorted((tmp_path / "nifti").glob("*.nii.gz"))
    assert len(images) == 2
    for image in images:
        check_exact(image, [tmp_path / "dicom"])


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("2", "2")])
def test_cli_gives_blas_one_thread_unless_told(tmp_path: Path, given: str | None,
                                               expected: str) -> None:
    """The CLI sets OPENBLAS_NUM_THREADS before numpy loads (a user's own value wins)."""
    _series(tmp_path, modality="MR", rescale=(1.0, 0.0))
    script = ("import os, sys\n"
              "from dicomvol.cli.main import main\n"
              "assert 'numpy' not in sys.modules\n"
              f"code = main(['inspect', {str(tmp_path)!r}])\n"
              "assert code == 0\n"
              "print(os.environ['OPENBLAS_NUM_THREADS'])\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == expected


def test_python_dash_m_dicomvol_is_the_command_line(tmp_path: Path) -> None:
    write_series(tmp_path / "in", shape=SHAPE)
    proc = subprocess.run([sys.executable, "-m", "dicomvol", "convert", str(tmp_path / "in"),
                           "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote ") and len(list((tmp_path / "out").glob("*.nii.gz"))) == 1
    usage = subprocess.run([sys.executable, "-m", "dicomvol", "--no-such-option"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "dicomvol: error:" in usage.stderr


# --- file names that are not UTF-8 (Latin-1 names from old archives) ---------------------------

LATIN1 = b"caf\xe9"


def test_names_that_are_not_utf8_convert_and_print_under_a_strict_locale(tmp_path: Path) -> None:
    """A series with a Latin-1 file name converts (its sidecar names the file by its bytes),
    a damaged file and a broken link with such names are errors shown with escapes, and no
    output (JSON, Parquet, terminal) raises, even where stdout refuses lone surrogates."""
    import pyarrow.parquet as pq

    series = write_series(tmp_path / "in", shape=SHAPE)
    folder = os.fsencode(tmp_path / "in")
    first = sorted(os.fsencode(p) for p in series.paths)[0]
    os.rename(first, os.path.join(folder, LATIN1 + b".dcm"))
    with open(os.path.join(folder, b"bad" + LATIN1 + b".dcm"), "wb") as fp:
        fp.write(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI")  # meta group cut short
    os.symlink(b"/no/such/target", os.path.join(folder, b"link" + LATIN1))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run([sys.executable, "-m", "dicomvol", "convert", str(tmp_path / "in"),
                           "-o", str(tmp_path / "out")], capture_output=True, env=env,
                          timeout=120)
    stdout = proc.stdout.decode("utf-8")  # valid UTF-8: the bytes are escaped
    assert proc.returncode == 1, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in proc.stderr
    assert "error: badcaf\\udce9.dcm: damaged file meta information" in stdout
    assert "error: linkcaf\\udce9: broken symbolic link" in stdout
    report = json.loads((tmp_path / "out" / "dicomvol_report.json").read_text())
    assert {os.fsencode(e["File"]) for e in report["errors"]} == {
        b"bad" + LATIN1 + b".dcm", b"link" + LATIN1}
    assert report["ledger"]["balanced"] is True and report["summary"]["outputs"] == 1
    (volume,) = report["volumes"]
    sidecar = json.loads((tmp_path / "out" / volume["Sidecar"]).read_text())
    names = {os.fsencode(s["File"]) if isinstance(s, dict) else os.fsencode(s)
             for s in sidecar["SourceInstances"]}
    assert LATIN1 + b".dcm" in names and len(names) == SHAPE[2]
    table = pq.read_table(tmp_path / "out" / "dicomvol_report.parquet")
    assert table.num_rows == 1
    again = subprocess.run([sys.executable, "-m", "dicomvol", "convert", str(tmp_path / "in"),
                            "-o", str(tmp_path / "out"), "--resume"], capture_output=True,
                           env=env, timeout=120)
    assert b"Traceback" not in again.stderr
    resumed = json.loads((tmp_path / "out" / "dicomvol_report.json").read_text())
    assert [v["Status"] for v in resumed["volumes"]] == ["resumed"]  # the digest matched


def test_a_dicomdir_given_as_the_input_converts_its_media(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pydicom
    from pydicom.fileset import FileSet

    series = write_series(tmp_path / "src", shape=SHAPE)
    media = FileSet()
    for path in series.paths:
        media.add(pydicom.dcmread(path))
    media.write(tmp_path / "media")  # DICOMDIR + PT000000/ST000000/SE000000/IM00000n
    code, stdout, _ = _run(capsys, "convert", str(tmp_path / "media" / "DICOMDIR"), "-o",
                           str(tmp_path / "out"))
    assert code == 0 and stdout.startswith("wrote ")
    report = json.loads((tmp_path / "out" / "dicomvol_report.json").read_text())
    assert report["ledger"]["frames_written"] == SHAPE[2]
    assert report["ignored"] == [{"File": "DICOMDIR", "Reason": "DICOMDIR (a directory index)"}]

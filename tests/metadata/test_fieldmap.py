"""Field maps, phase images and multi-echo series named and described as dcm2niix does
(issue 9 item 9): GE direct B0 field maps (``_fieldmaphz``, Hz, ``EchoTime1/2``), GE
magnitude/phase told apart only by private (0043,xx2F) (``_ph``), echoes (``_e1``, ``_e2``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import dicomvol
from dicomvol.dicom.complex import complex_part, ge_image_type
from dicomvol.plan.splits import is_b0_map, part_suffix
from dicomvol.testing.fieldmaps import (
    echo_spacing_s,
    write_ge_fieldmap,
    write_ge_multiecho_phase,
    write_siemens_fieldmap,
)
from peercheck import run_dcm2niix, run_dicomvol, volume_map


def by_suffix(outputs: list[tuple[Any, dict[str, Any]]], stem: str) -> dict[str, Any]:
    """Outputs by what their file name adds to ``stem`` (the series' own name)."""
    found = {}
    for img, side in outputs:
        name = Path(img.get_filename()).name.removesuffix(".nii")
        assert name.startswith(stem), (name, stem)
        found[name[len(stem):]] = (img, side)
    return found


def test_complex_part_sources() -> None:
    ds = Dataset()
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    assert complex_part(ds, ("ORIGINAL", "PRIMARY", "OTHER")) is None
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    ds.add_new((0x0043, 0x102F), "SS", 1)
    assert ge_image_type(ds) == 1
    assert complex_part(ds, ("ORIGINAL", "PRIMARY", "OTHER")) == "PHASE"
    assert complex_part(ds, (), "REAL") == "REAL"  # enhanced ComplexImageComponent first
    siemens = Dataset()
    siemens.Manufacturer = "SIEMENS"
    siemens.add_new((0x0043, 0x102F), "SS", 1)  # not GE: the private tag means nothing
    assert complex_part(siemens, ("ORIGINAL", "PRIMARY", "P", "ND")) == "PHASE"
    assert complex_part(siemens, ("ORIGINAL", "PRIMARY", "M", "ND")) == "MAGNITUDE"
    assert complex_part(siemens, ("P", "PRIMARY", "OTHER")) is None  # from the third value on
    assert is_b0_map(("ORIGINAL", "PRIMARY", "B0 MAP", "B0"))
    assert is_b0_map(("ORIGINAL", "PRIMARY", "T1", "FIELD_MAP"))
    assert not is_b0_map(("ORIGINAL", "PRIMARY", "M", "ND"))
    assert part_suffix("REAL", ("ORIGINAL", "PRIMARY", "B0 MAP")) == "_fieldmaphz"
    assert [part_suffix(p, ()) for p in ("MAGNITUDE", "PHASE", "REAL", "IMAGINARY", None)] == [
        "", "_ph", "_real", "_imaginary", ""]


@pytest.mark.parametrize("implicit", [False, True])
def test_ge_private_image_type_is_read_by_the_lean_reader(tmp_path: Path, implicit: bool) -> None:
    write_ge_multiecho_phase(tmp_path / "in", shape=(8, 6, 3), echo_times_ms=(5.0,))
    if implicit:  # the private element's VR is then known only from the lean reader's table
        for path in (tmp_path / "in").iterdir():
            ds = pydicom.dcmread(path)
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
            ds.save_as(path, implicit_vr=True, little_endian=True)
    result = dicomvol.scan([tmp_path / "in"])
    parts = sorted((p.suffix, {f.complex_part for f in p.all_frames}) for p in result.plans)
    assert parts == [("", {"MAGNITUDE"}), ("_ph", {"PHASE"})]


def test_ge_b0_field_map(tmp_path: Path) -> None:
    ts = write_ge_fieldmap(tmp_path / "in")
    outputs = by_suffix(run_dicomvol(tmp_path / "in", tmp_path / "out"), "SYNTH001_1_B0map")
    assert sorted(outputs) == ["", "_fieldmaphz"]
    fmap, side = outputs["_fieldmaphz"]
    np.testing.assert_allclose(np.asarray(fmap.get_fdata()), ts.values[..., 0], atol=1e-6)
    assert float(np.min(fmap.get_fdata())) < 0  # signed Hz through RescaleIntercept
    assert side["Units"] == "Hz"
    assert side["EchoTime1"] == pytest.approx(0.004608)
    assert side["EchoTime2"] == pytest.approx(0.004608 + echo_spacing_s(), abs=1e-6)
    assert "EchoTime" not in side
    assert side["ImageType"][-1] == "FIELDMAPHZ"
    mag, mag_side = outputs[""]
    np.testing.assert_allclose(np.asarray(mag.get_fdata()), ts.values[..., 1], atol=1e-6)
    assert mag_side["ImageType"][-1] == "MAGNITUDE" and "Units" not in mag_side


def test_ge_multiecho_magnitude_and_phase(tmp_path: Path) -> None:
    ts = write_ge_multiecho_phase(tmp_path / "in")
    outputs = by_suffix(run_dicomvol(tmp_path / "in", tmp_path / "out"), "SYNTH001_1_ME_GRE")
    assert sorted(outputs) == ["_e1", "_e1_ph", "_e2", "_e2_ph"]
    for n, suffix in enumerate(["_e1", "_e1_ph", "_e2", "_e2_ph"]):  # volume n of the series
        img, side = outputs[suffix]
        np.testing.assert_allclose(np.asarray(img.get_fdata()), ts.values[..., n], atol=1e-6)
        assert side["EchoTime"] == pytest.approx([0.004, 0.009][n // 2])
        assert side["EchoNumber"] == 1 + n // 2
        assert side["ImageType"][-1] == ("PHASE" if suffix.endswith("_ph") else "MAGNITUDE")


@pytest.mark.parametrize("case", ["fieldmap", "multiecho"])
def test_ge_parts_match_dcm2niix(dcm2niix_exe: str, tmp_path: Path, case: str) -> None:
    """Same files, same suffixes, same grids and values, same field-map keys."""
    write = write_ge_fieldmap if case == "fieldmap" else write_ge_multiecho_phase
    write(tmp_path / "in")
    stem = "B0map" if case == "fieldmap" else "ME_GRE"
    theirs = by_suffix(run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc"), f"1_{stem}")
    ours = by_suffix(run_dicomvol(tmp_path / "in", tmp_path / "dv"), f"SYNTH001_1_{stem}")
    assert sorted(theirs) == sorted(ours)
    for suffix, (img, side) in theirs.items():
        our_img, our_side = ours[suffix]
        assert volume_map(img, our_img) == [0]
        for key in ("Units", "EchoTime", "EchoTime1", "EchoTime2", "EchoNumber", "ImageType"):
            if key in side or key in our_side:
                assert json.dumps(our_side.get(key)) == json.dumps(side.get(key)) or (
                    our_side.get(key) == pytest.approx(side.get(key))), (suffix, key)


def test_siemens_phase_difference(tmp_path: Path) -> None:
    """gre_field_mapping: magnitude _e1/_e2; the phase difference (echo 2 only) _e2_ph with
    EchoTime1/EchoTime2 from the protocol's alTE[0]/alTE[1]."""
    mag, phase = write_siemens_fieldmap(tmp_path / "in")
    mags = by_suffix(run_dicomvol(tmp_path / "in" / "magnitude", tmp_path / "m"),
                     "SYNTH001_1_gre_field_mapping")
    assert sorted(mags) == ["_e1", "_e2"]
    for n, suffix in enumerate(["_e1", "_e2"]):
        img, side = mags[suffix]
        np.testing.assert_allclose(np.asarray(img.get_fdata()), mag.values[..., n], atol=1e-6)
        assert side["ImageType"] == ["ORIGINAL", "PRIMARY", "M", "ND", "MAGNITUDE"]
        assert "EchoTime1" not in side
    ((img, side),) = run_dicomvol(tmp_path / "in" / "phasediff", tmp_path / "p")
    assert Path(img.get_filename()).name == "SYNTH001_2_gre_field_mapping_e2_ph.nii"
    np.testing.assert_allclose(np.asarray(img.get_fdata()), phase.values[..., 0], atol=1e-6)
    assert (side["EchoTime1"], side["EchoTime2"]) == (pytest.approx(0.00492),
                                                      pytest.approx(0.00738))
    assert side["EchoTime"] == pytest.approx(0.00738) and side["EchoNumber"] == 2
    assert side["ImageType"][-1] == "PHASE"


def test_siemens_phase_difference_matches_dcm2niix(dcm2niix_exe: str, tmp_path: Path) -> None:
    write_siemens_fieldmap(tmp_path / "in")
    for part, number in (("magnitude", 1), ("phasediff", 2)):
        stem = f"{number}_gre_field_mapping"
        theirs = by_suffix(run_dcm2niix(dcm2niix_exe, tmp_path / "in" / part,
                                        tmp_path / f"dc_{part}"), stem)
        ours = by_suffix(run_dicomvol(tmp_path / "in" / part, tmp_path / f"dv_{part}"),
                         f"SYNTH001_{stem}")
        assert sorted(theirs) == sorted(ours)
        for suffix, (img, side) in theirs.items():
            our_img, our_side = ours[suffix]
            assert volume_map(img, our_img) == [0]
            for key in ("EchoTime", "EchoTime1", "EchoTime2", "EchoNumber", "ImageType"):
                assert (key in side) == (key in our_side), (suffix, key)
                if isinstance(side.get(key), float):
                    assert our_side[key] == pytest.approx(side[key])
                else:
                    assert our_side.get(key) == side.get(key)


@pytest.mark.corpus
def test_philips_b0_map_echo_numbers_as_dcm2niix(corpus: Path, dcm2niix_exe: str,
                                                 tmp_path: Path) -> None:
    """The corpus Philips enhanced B0 map: magnitude ``_e1``, map ``_e2_fieldmaphz``, as
    dcm2niix names them. The headers: every frame has EchoNumbers 1 (private per-frame
    item), the magnitude frames the one acquired echo (EffectiveEchoTime 1.52 ms), the
    map frames EffectiveEchoTime 0, no echo at all; so the acquired echo keeps number 1
    and the computed map goes after it (main named the map ``_e1`` by echo-time order)."""
    src = corpus / "enhanced_mr" / "Philips" / "IM_0027_fMAP.dcm"
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    times: dict[str, set[float]] = {}
    for fg in ds.PerFrameFunctionalGroupsSequence:
        part = str(fg.MRImageFrameTypeSequence[0].ComplexImageComponent)
        times.setdefault(part, set()).add(float(fg.MREchoSequence[0].EffectiveEchoTime))
        assert str(fg[0x2005, 0x140F][0].EchoNumbers) == "1"
    assert times["REAL"] == {0.0} and min(times["MAGNITUDE"]) > 0
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / src.name).symlink_to(src)
    ours = by_suffix(run_dicomvol(tmp_path / "in", tmp_path / "dv"), "ROGERS_20180526_801_B0_NS")
    theirs = by_suffix(run_dcm2niix(dcm2niix_exe, tmp_path / "in", tmp_path / "dc"),
                       "801_B0_NS")
    assert set(ours) == set(theirs) == {"_e1", "_e2_fieldmaphz"}
    from dicomvol.testing.reproduce import load_images, reproduced

    mine = {i.path.name.removesuffix(".nii").removeprefix("ROGERS_20180526_"): i
            for i in load_images(tmp_path / "dv")}
    peer = {i.path.name.removesuffix(".nii"): i for i in load_images(tmp_path / "dc", True)}
    for suffix in ours:  # same grid and values (dcm2niix's Philips scaling undone) per name
        name = "801_B0_NS" + suffix
        assert [ok for _, _, ok in reproduced([peer[name]], [mine[name]])] == [True]

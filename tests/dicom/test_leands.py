"""The lean whole-header reader (dicom/leands.py) against pydicom: the same sidecar on the
whole corpus, the same values on synthetic headers, and a decline (never a wrong value or
an exception) wherever it does not apply."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomvol.dicom import cache
from dicomvol.dicom.header import merged_header
from dicomvol.dicom.leands import DS, IS, LeanDataset, explicit_le, lean_dataset
from dicomvol.dicom.leanmf import first_frame_only
from dicomvol.metadata.bids import bids_metadata


def _pydicom(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)


def _sidecar(ds: Any) -> dict[str, Any]:
    return bids_metadata(merged_header(ds))


def _corpus_files(corpus: Path) -> list[Path]:
    return [p for p in sorted(corpus.rglob("*")) if p.is_file()
            and p.suffix not in (".md", ".json", ".txt", ".png", ".nii", ".gz", ".svs")]


def test_the_sidecar_of_every_corpus_header_equals_pydicoms(corpus: Path) -> None:
    """Every corpus file pydicom reads: the lean header gives the same sidecar keys, or
    declines; and it declines only what it is meant to (see the module docstring)."""
    lean = compared = 0
    declined: list[str] = []
    for path in _corpus_files(corpus):
        data = path.read_bytes()
        cut = first_frame_only(data) or data
        try:
            reference = _pydicom(cut)
        except Exception:
            continue
        if "PixelData" not in reference and "SOPClassUID" not in reference:
            continue  # not an image or object header
        compared += 1
        ours = lean_dataset(cut)
        if ours is None:
            declined.append(str(path.relative_to(corpus)))
            ts = str(getattr(reference.get("file_meta"), "TransferSyntaxUID", "")) or str(
                getattr(getattr(reference, "file_meta", None), "TransferSyntaxUID", ""))
            charset = reference.get("SpecificCharacterSet")
            plain = (ts == ImplicitVRLittleEndian or explicit_le(ts)) and charset in (
                None, "", "ISO_IR 100", "ISO_IR 192")
            assert not plain, f"{path}: a plain header the lean reader declined"
            continue
        lean += 1
        assert _sidecar(ours) == _sidecar(reference), path
    assert compared > 1500
    assert lean > 0.95 * compared, f"lean for {lean} of {compared}; declined: {declined[:20]}"


def _rich(ts: str) -> bytes:
    """A header with every kind of value the sidecar reads, written by pydicom."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyDate = "20240131"
    ds.AcquisitionTime = "101112.250"
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS "
    ds.InstitutionName = "Hôpital Zürich — 東京"
    ds.ReferringPhysicianName = "Müller^Jörg"
    ds.PatientName = "Doe^Jane"
    ds.PatientAge = "042Y"
    ds.PatientWeight = "71.50"
    ds.SliceThickness = "1.50"
    ds.EchoTime = ""  # empty: left out, as pydicom's '' is
    ds.RepetitionTime = "2.3E+03"
    ds.ImagingFrequency = "123.2"
    ds.EchoTrainLength = "4"
    ds.AcquisitionMatrix = [0, 128, 96, 0]
    ds.FlipAngle = "9"
    ds.SeriesNumber = "7"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0.9998", "-0.0175"]
    ds.ImageComments = "a\\b, as written"  # LT: no splitting
    ds.Rows, ds.Columns = 4, 5
    ds.add_new(0x00291010, "OB", b"CSA\x00\x01")
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100A, "US", 36)
    rp = Dataset()
    rp.Radiopharmaceutical = "Fluorodeoxyglucose"
    rp.RadionuclideTotalDose = "370000000"
    code = Dataset()
    code.CodeMeaning = "^18^Fluorine"
    rp.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_values_are_pydicoms(ts: str) -> None:
    data = _rich(ts)
    ours, reference = lean_dataset(data), _pydicom(data)
    assert ours is not None
    for element in reference:
        if element.VR == "SQ":
            continue
        keyword = element.keyword
        mine = ours.get(keyword) if keyword else ours.get(element.tag).value
        theirs = element.value
        if keyword:
            assert str(mine) == str(theirs) or list(map(str, mine)) == list(map(str, theirs)), \
                keyword
        elif ts == ExplicitVRLittleEndian:
            assert mine == theirs, element.tag
    assert isinstance(ours.get("SliceThickness"), DS) and str(ours.SliceThickness) == "1.50"
    assert isinstance(ours.get("SeriesNumber"), IS) and ours.SeriesNumber == 7
    assert ours.get("InstitutionName") == "Hôpital Zürich — 東京"
    assert ours.get("ImageComments") == "a\\b, as written"
    assert ours.get("EchoTime") is None is reference.EchoTime
    assert ours.get("AcquisitionMatrix") == [0, 128, 96, 0]
    assert ours.get("NotAKeyword") is None and "NotAKeyword" not in ours
    assert "Modality" in ours and (0x0008, 0x0060) in ours and 0x00080060 in ours
    assert ours[0x00080060].value == "MR" and ours[(0x0008, 0x0060)].VR == "CS"
    assert ours.private_block(0x0019, "SIEMENS MR HEADER")[0x0A].value in (36, b"\x24\x00")
    with pytest.raises(KeyError):
        ours.private_block(0x0019, "GEMS_ACQU_01")
    rp = ours.get("RadiopharmaceuticalInformationSequence")[0]
    assert isinstance(rp, LeanDataset)
    assert rp.get("RadionuclideCodeSequence")[0].get("CodeMeaning") == "^18^Fluorine"
    assert _sidecar(ours) == _sidecar(reference)
    assert _sidecar(ours)["TracerRadionuclide"] == "18Fluorine"
    assert [e.tag for e in ours] == sorted(e.tag for e in ours)


def test_a_latin1_header_decodes_as_pydicom_does() -> None:
    data = _rich(ExplicitVRLittleEndian)
    ds = _pydicom(data)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstitutionName = "Hôpital"
    buf = io.BytesIO()
    ds.save_as(buf)
    ours = lean_dataset(buf.getvalue())
    assert ours is not None and ours.get("InstitutionName") == "Hôpital"
    assert _sidecar(ours) == _sidecar(_pydicom(buf.getvalue()))


def _resaved(mutate: Any) -> bytes:
    ds = _pydicom(_rich(ExplicitVRLittleEndian))
    mutate(ds)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # characters the extension cannot encode
        ds.save_as(buf)
    return buf.getvalue()


def _set(keyword: str, value: Any) -> Any:
    return lambda ds: setattr(ds, keyword, value)


@pytest.mark.parametrize("data", [
    pytest.param(lambda: _resaved(_set("SpecificCharacterSet", ["", "ISO 2022 IR 87"])),
                 id="ISO 2022"),
    pytest.param(lambda: _resaved(_set("SpecificCharacterSet", "GB18030")), id="GB18030"),
    pytest.param(lambda: _rich(ExplicitVRLittleEndian).replace(
        b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.2\x00", 1), id="big endian"),
    pytest.param(lambda: _rich(ExplicitVRLittleEndian).replace(
        b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99", 1), id="deflate"),
    pytest.param(lambda: _rich(ExplicitVRLittleEndian)[:-40], id="truncated"),
    pytest.param(lambda: _rich(ExplicitVRLittleEndian)[128:], id="no preamble"),
])
def test_what_it_declines(data: Any) -> None:
    assert lean_dataset(data()) is None


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(132, 2000), flips=st.lists(st.tuples(st.integers(132, 2000),
                                                            st.integers(0, 255)), max_size=4))
def test_damaged_headers_decline_or_parse_never_raise(cut: int, flips: list[tuple[int, int]]
                                                      ) -> None:
    data = bytearray(_rich(ExplicitVRLittleEndian))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    ours = lean_dataset(bytes(data[:cut]))
    if ours is not None:  # whatever it parsed converts, and the sidecar never raises
        for element in ours:
            _ = element.value
        bids_metadata(ours)


def test_job_sources_serve_the_lean_header_and_pydicom_otherwise(tmp_path: Path) -> None:
    plain = tmp_path / "plain.dcm"
    plain.write_bytes(_rich(ExplicitVRLittleEndian))
    odd = tmp_path / "odd.dcm"
    odd.write_bytes(_resaved(_set("SpecificCharacterSet", ["", "ISO 2022 IR 87"])))
    sources = cache.JobSources()
    assert isinstance(sources.first_frame_header(str(plain)), LeanDataset)
    assert isinstance(sources.first_frame_header(str(odd)), Dataset)
    assert sources.first_frame_header(str(plain)) is sources.first_frame_header(str(plain))


def test_every_corpus_plan_has_the_same_sidecar_either_way(corpus: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """build_metadata (BIDS keys, field maps, slice timing, merged enhanced groups) of every
    corpus series: with the lean header and with pydicom's, equal."""
    from dicomvol.batch.scan import scan_inputs
    from dicomvol.metadata.sidecar import build_metadata

    result = scan_inputs([corpus], jobs=1)
    plans = [p for p in result.plans if hasattr(p, "all_frames")]
    assert len(plans) > 50
    lean = [build_metadata(plan, cache.JobSources()) for plan in plans]
    monkeypatch.setattr(cache, "lean_dataset", lambda data: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = [build_metadata(plan, cache.JobSources()) for plan in plans]
    for plan, ours, theirs in zip(plans, lean, reference, strict=True):
        assert ours == theirs, plan.first.rel

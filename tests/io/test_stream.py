"""Streaming NIfTI writing gives byte-identical files to assembling in memory."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

import dicomvol
from dicomvol.io.nifti import write_nifti
from dicomvol.io.stream import can_stream, stream_nifti
from dicomvol.metadata.sidecar import build_metadata
from dicomvol.testing import write_series


def _payload(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


@pytest.mark.parametrize(("rescale", "pixel_representation", "extra"), [
    ((1.0, -1024.0), 1, {"BitsStored": 12, "HighBit": 11}),   # int16 HU ("shift")
    ((2.5, -100.0), 1, None),                                  # raw + scl
    ([(1.0 + k / 10, -5.0 * k) for k in range(6)], 1, None),   # per-slice: float32
    ((1.0, 0.0), 0, None),                                     # raw unsigned
])
@pytest.mark.parametrize("compress", [False, True])
def test_stream_equals_in_memory(tmp_path: Path, rescale: object, pixel_representation: int,
                                 extra: dict[str, int] | None, compress: bool) -> None:
    write_series(tmp_path / "in", shape=(20, 18, 6), rescale=rescale,  # type: ignore[arg-type]
                 pixel_representation=pixel_representation, extra=extra, modality="MR")
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    assert can_stream(plan)
    ext = ".nii.gz" if compress else ".nii"
    streamed, in_memory = tmp_path / f"s{ext}", tmp_path / f"m{ext}"
    metadata = build_metadata(plan)
    mode = stream_nifti(plan, streamed, compress, metadata, threads=2)
    volume = dicomvol.read_volume(plan)
    write_nifti(volume, in_memory, compress=compress)
    assert _payload(streamed) == _payload(in_memory)
    assert mode.scl_slope == volume.scl_slope and plan.shape == volume.shape
    assert metadata == volume.metadata
    assert [f.source() for f in plan.all_frames] == list(volume.source_instances)
    assert not list(tmp_path.glob(".*.tmp"))


def test_overflowing_int16_falls_back_to_raw(tmp_path: Path) -> None:
    """A stored 32767 + intercept 2000 leaves int16: both paths fall back to raw + scl."""
    import numpy as np
    import pydicom

    series = write_series(tmp_path / "in", shape=(8, 6, 3), rescale=(1.0, 2000.0))
    ds = pydicom.dcmread(series.paths[1])
    pixels = ds.pixel_array.copy()
    pixels[2, 3] = 32767
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.save_as(series.paths[1], enforce_file_format=True)
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    mode = stream_nifti(plan, tmp_path / "s.nii", False, build_metadata(plan))
    volume = dicomvol.read_volume(plan)
    write_nifti(volume, tmp_path / "m.nii", compress=False)
    assert (tmp_path / "s.nii").read_bytes() == (tmp_path / "m.nii").read_bytes()
    assert volume.data.dtype == np.int16 and volume.scl_inter == 2000.0
    assert mode.scl_inter == 2000.0
    assert float(np.max(volume.values)) == 32767 + 2000


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless"])
def test_compressed_slices_decoded_in_processes_equal_in_memory(tmp_path: Path,
                                                                syntax: str,
                                                                compress: bool) -> None:
    """.nii.gz: the slices come back to the writer; .nii: each worker writes its slice at
    its offset of the file (no slice goes through a pipe). The same bytes either way."""
    import pydicom.uid

    write_series(tmp_path / "in", shape=(40, 36, 9), modality="MR",
                 transfer_syntax=getattr(pydicom.uid, syntax))
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    ext = ".nii.gz" if compress else ".nii"
    stream_nifti(plan, tmp_path / f"s{ext}", compress, build_metadata(plan),
                 threads=2)  # decodes in 2 processes
    write_nifti(dicomvol.read_volume(plan), tmp_path / f"m{ext}", compress=compress)
    assert _payload(tmp_path / f"s{ext}") == _payload(tmp_path / f"m{ext}")
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_slice_failing_in_a_worker_leaves_no_file(tmp_path: Path) -> None:
    """A slice that cannot be decoded while workers write the others into the file: the
    error names the file, and neither the output nor its temporary file remains."""
    import pydicom.uid

    from dicomvol.errors import PixelDataError

    write_series(tmp_path / "in", shape=(40, 36, 9), modality="MR",
                 transfer_syntax=pydicom.uid.JPEG2000Lossless)
    (plan,) = dicomvol.scan([tmp_path / "in"]).plans
    bad = plan.all_frames[4].path
    data = bytearray(Path(bad).read_bytes())
    data[-200:-2] = b"\x00" * 198  # the codestream's end is zeroed: undecodable
    Path(bad).write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PixelDataError) as info:
        stream_nifti(plan, out / "s.nii", False, build_metadata(plan), threads=2)
    assert Path(bad).name in str(info.value) or info.value.path == bad
    assert not list(out.iterdir())


@pytest.mark.parametrize("vendor", ["Philips", "SiemensXA"])
def test_native_multiframe_streams_frame_by_frame(tmp_path: Path, vendor: str) -> None:
    """An enhanced (native multi-frame) file is streamed frame by frame: the same bytes as
    assembled in memory, and its job reads the header and one frame at a time, never the
    whole file."""
    import numpy as np

    from dicomvol.dicom.cache import JobSources
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    series = write_dwi_series(tmp_path / "in", vendor,
                              [DwiVolume(0.0), DwiVolume(1000.0, (1.0, 0.0, 0.0)),
                               DwiVolume(1000.0, (0.0, 0.6, 0.8))], enhanced=True)
    assert series.paths
    (plan,) = [p for p in dicomvol.scan([tmp_path / "in"]).plans if p.shape[-1] == 3]
    assert plan.first.number_of_frames > 1 and can_stream(plan)
    metadata = build_metadata(plan)
    heads = {f.path: f.pixel_offset or 0 for f in plan.all_frames}
    sources = JobSources(list(heads), header_ends=heads)
    mode = stream_nifti(plan, tmp_path / "s.nii", False, build_metadata(plan, sources),
                        sources=sources)
    assert not any(sources.has_bytes(p) for p in heads)  # frames read at offsets
    sources.close()
    volume = dicomvol.read_volume(plan)
    write_nifti(volume, tmp_path / "m.nii", compress=False)
    assert (tmp_path / "s.nii").read_bytes() == (tmp_path / "m.nii").read_bytes()
    assert mode.scl_slope == volume.scl_slope and np.asarray(volume.data).shape == plan.shape
    assert build_metadata(plan, JobSources()) == metadata


def test_a_compressed_multiframe_file_is_not_streamed(tmp_path: Path) -> None:
    from dataclasses import replace

    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    write_dwi_series(tmp_path / "in", "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (1, 0, 0))],
                     enhanced=True)
    (plan,) = [p for p in dicomvol.scan([tmp_path / "in"]).plans if p.shape[-1] == 2]
    assert can_stream(plan)
    frames = [[replace(f, transfer_syntax="1.2.840.10008.1.2.5") for f in vol]
              for vol in plan.frames]
    assert not can_stream(replace(plan, frames=frames))


def test_read_range_keeps_the_file_and_closes_it(tmp_path: Path) -> None:
    from dicomvol.dicom.cache import JobSources

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    sources = JobSources()
    assert bytes(sources.read_range(str(path), 10, 4)) == bytes([10, 11, 12, 13])
    assert bytes(sources.read_range(str(path), 300, 2)) == bytes([44, 45])
    assert len(sources._open) == 1
    sources.close()
    assert not sources._open
    cached = JobSources()  # a cached file serves its ranges from memory and keeps them
    cached._bytes[str(path)] = path.read_bytes()
    assert bytes(cached.read_range(str(path), 0, 3)) == b"\x00\x01\x02"
    assert cached.has_bytes(str(path))


def test_an_assembled_multiframe_job_opens_its_file_once(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-frame file whose header was read up to PixelData through a descriptor
    gives its pixels through the same descriptor when the job assembles the volume."""
    import numpy as np

    from dicomvol.batch.reading import read_volume
    from dicomvol.dicom.cache import JobSources
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    write_dwi_series(tmp_path / "in", "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (1, 0, 0))],
                     enhanced=True)
    (plan,) = [p for p in dicomvol.scan([tmp_path / "in"]).plans if p.shape[-1] == 2]
    heads = {f.path: f.pixel_offset or 0 for f in plan.all_frames}
    sources = JobSources(list(heads), header_ends=heads)
    build_metadata(plan, sources)
    (path,) = heads
    assert path in sources._open and not sources.has_bytes(path)
    reference = dicomvol.read_volume(plan).data

    def another_open(*args: object) -> bytes:
        raise AssertionError(f"the file was opened again: {args}")

    monkeypatch.setattr("dicomvol.inputs.fs.read_bytes", another_open)
    volume = read_volume(plan, sources=sources)
    assert list(sources._open) == [path]
    sources.close()
    assert np.array_equal(volume.data, reference)


def test_a_header_end_that_does_not_reach_pixeldata_reads_the_whole_file(tmp_path: Path) -> None:
    """A known header end (from the scan) where the file holds no PixelData element header
    (the file changed since): the header is read from the whole file, never cut short."""
    from dicomvol.dicom.cache import JobSources
    from dicomvol.dicom.leands import LeanDataset
    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    write_dwi_series(tmp_path / "in", "Philips", [DwiVolume(0.0), DwiVolume(1000.0, (1, 0, 0))],
                     enhanced=True)
    (plan,) = [p for p in dicomvol.scan([tmp_path / "in"]).plans if p.shape[-1] == 2]
    path = plan.first.path
    assert plan.first.pixel_offset is not None
    right = JobSources([path], header_ends={path: plan.first.pixel_offset})
    wrong = JobSources([path], header_ends={path: plan.first.pixel_offset // 2})
    ours, whole = right.first_frame_header(path), wrong.first_frame_header(path)
    assert isinstance(ours, LeanDataset) and isinstance(whole, LeanDataset)
    assert not right.has_bytes(path) and wrong.has_bytes(path)
    assert build_metadata(plan, JobSources([path], header_ends={
        path: plan.first.pixel_offset // 2})) == build_metadata(plan)
    right.close()
    wrong.close()


def _enhanced_plan(tmp_path: Path, bits_stored: int | None = None) -> object:
    """The plan of a Philips enhanced DWI file (4 volumes), its BitsStored changed."""
    import pydicom

    from dicomvol.testing.diffusion import DwiVolume, write_dwi_series

    series = write_dwi_series(tmp_path / "in", "Philips",
                              [DwiVolume(0.0), *(DwiVolume(1000.0, (0.0, 0.6, 0.8))
                                                 for _ in range(3))], enhanced=True)
    if bits_stored is not None:
        ds = pydicom.dcmread(series.paths[0])
        ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
        ds.save_as(series.paths[0], enforce_file_format=True)
    (plan,) = [p for p in dicomvol.scan([tmp_path / "in"]).plans if p.shape[-1] == 4]
    return plan


@pytest.mark.parametrize("bits_stored", [None, 5])
def test_consecutive_frames_are_read_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             bits_stored: int | None) -> None:
    """Consecutive frames of a native multi-frame file are read and written as one block (up
    to RUN_BYTES): the bytes of the frames one by one (masked to BitsStored alike), in
    fewer reads; frames out of order, or a run cut short by the file's end, are read one
    by one, with the same error."""
    from dicomvol.dicom.cache import JobSources
    from dicomvol.io import stream
    from dicomvol.pixels.assemble import pixel_mode

    plan = _enhanced_plan(tmp_path, bits_stored)
    frames = plan.all_frames  # type: ignore[attr-defined]
    mode = pixel_mode(frames)
    assert mode.kind == "raw" and len(frames) > 8
    reads: list[int] = []
    real = JobSources.read_range

    def counted(self: JobSources, path: str, start: int, length: int) -> object:
        reads.append(length)
        return real(self, path, start, length)

    monkeypatch.setattr(JobSources, "read_range", counted)
    one_by_one = b"".join(stream._slice_bytes(f, mode, JobSources()) for f in frames)
    assert len(reads) == len(frames)
    if bits_stored is not None:  # the file's values do have bits above BitsStored
        assert one_by_one != b"".join(stream._slice_bytes(
            dataclasses.replace(f, bits_stored=16), mode) for f in frames)
    for run_frames, expected_reads in ((1 << 30, 1), (2, (len(frames) + 1) // 2)):
        reads.clear()
        size = frames[0].rows * frames[0].columns * mode.itemsize
        monkeypatch.setattr(stream, "RUN_BYTES", min(run_frames * size, 1 << 30))
        assert b"".join(stream._native_runs(frames, mode, JobSources())) == one_by_one
        assert len(reads) == expected_reads
    shuffled = [frames[1], frames[0], *frames[2:]]
    reads.clear()
    assert b"".join(stream._native_runs(shuffled, mode, JobSources())) == b"".join(
        stream._slice_bytes(f, mode) for f in shuffled)
    assert len(reads) == 2 + (len(frames) - 2 + 1) // 2
    path = Path(frames[0].path)
    path.write_bytes(path.read_bytes()[:-size // 2])  # the last frame cut short
    monkeypatch.setattr(stream, "RUN_BYTES", 1 << 30)
    with pytest.raises(dicomvol.errors.PixelDataError) as in_runs:
        b"".join(stream._native_runs(frames, mode, JobSources()))
    with pytest.raises(dicomvol.errors.PixelDataError) as alone:
        b"".join(stream._slice_bytes(f, mode) for f in frames)
    assert str(in_runs.value) == str(alone.value) and f"frame {len(frames)}" in str(alone.value)

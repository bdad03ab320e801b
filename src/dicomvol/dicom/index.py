"""Index files into frame records, reading each file once and only up to the pixel data.

A file is opened once: the lean reader (:mod:`dicomvol.dicom.lean`) tries the
common case on the open stream, and pydicom reads the same stream when it
declines. Every failure costs the file only: it becomes an ``errors`` entry
(a damaged image) or an ``ignored`` entry (not DICOM, a DICOMDIR, an object
without pixels), never an exception.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, BinaryIO

from dicomvol._gc import paused
from dicomvol.dicom.damage import damaged_image
from dicomvol.dicom.derived import is_rtstruct, is_seg, rtstruct_object, seg_object
from dicomvol.dicom.fgroups import FrameItem, split_per_frame
from dicomvol.dicom.frames import frame_records
from dicomvol.dicom.header import (
    DICOMDIR_SOP_CLASS,
    PixelInfo,
    check_pixel_length,
    gunzip_if_needed,
    instance_uid,
    meta_value,
    read_header_from,
    sop_name,
)
from dicomvol.dicom.lean import HEAD_BYTES, parse_meta, read_lean
from dicomvol.dicom.results import IndexResult, IndexTask
from dicomvol.errors import HeaderError, NotDicomError, PixelDataError
from dicomvol.inputs import fs
from dicomvol.inputs.discover import Candidate
from dicomvol.inputs.heads import parse_heads
from dicomvol.model.records import FileError, FrameRecord, IgnoredFile

if TYPE_CHECKING:  # pragma: no cover - pydicom reads only what the lean readers decline
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

#: Attributes of the Image Pixel module: a header holding one describes pixels it must have.
IMAGE_PIXEL_KEYWORDS = ("Rows", "Columns", "BitsAllocated", "PixelRepresentation",
                        "SamplesPerPixel", "PhotometricInterpretation")


def index_task(task: IndexTask) -> IndexResult:
    """:func:`index_files` for a picklable task (the unit a worker process runs)."""
    if task.storage is not None:
        fs.configure(task.storage)
    with paused():  # records and header items hold no cycles
        return index_files(task.candidates, task.names)


def index_files(candidates: Iterable[Candidate], names: Sequence[str] = ()) -> IndexResult:
    """Index every candidate; never raises for a bad file (it is recorded).

    Objects (URLs) are read in concurrent batches of range requests
    (:func:`dicomvol.inputs.heads.parse_heads`).
    """
    result = IndexResult()
    cands = list(candidates)
    objects = [c for c in cands if fs.is_url(c.path)]
    for part in parse_heads(objects, lambda c, fp: index_file(c, names, stream=fp),
                            lambda c, why: IndexResult(errors=[FileError(c.path, c.rel, why)])):
        result.extend(part)
    for cand in cands:
        if not fs.is_url(cand.path):
            result.extend(index_file(cand, names))
    return result


def index_file(cand: Candidate, names: Sequence[str] = (), lean: bool = True,
               stream: BinaryIO | None = None) -> IndexResult:
    """Index one file into frame records, an ignored entry or an error.

    ``names`` are header keywords the records carry for output names. With
    ``lean=False`` pydicom reads every file (the lean reader is tested
    against this). ``stream`` is the file's content already open (e.g. the
    first bytes of an object), read instead of opening ``cand.path``.
    """
    result = IndexResult()
    try:
        with nullcontext(stream) if stream is not None else _open(cand.path) as fp:
            _index_stream(fp, cand, tuple(names), result, lean)
    except OSError as exc:
        result.errors.append(FileError(cand.path, cand.rel,
                                       f"cannot open: {exc.strerror or exc}"))
    except Exception as exc:  # a bug must cost this file only, with its name
        log.debug("%s: indexing failed", cand.path, exc_info=True)
        result.errors.append(FileError(cand.path, cand.rel,
                                       f"internal: indexing failed: {type(exc).__name__}: {exc}"))
    return result


def _open(path: str) -> BinaryIO:
    """An input opened for indexing: a local file unbuffered (the lean readers read a few
    large blocks; :func:`_buffered` wraps it for pydicom's many small reads)."""
    if fs.is_url(path):
        return fs.open_input(path)
    return open(path, "rb", buffering=0)


def _buffered(fp: BinaryIO) -> BinaryIO:
    """``fp`` for many small reads: an unbuffered file wrapped in a buffered reader."""
    return io.BufferedReader(fp) if isinstance(fp, io.FileIO) else fp


def _index_stream(fp: BinaryIO, cand: Candidate, names: tuple[str, ...],
                  result: IndexResult, lean: bool = True) -> None:
    """Index an open file: the lean reader first, else pydicom on the same bytes.

    The head of the file is read once (one ``read``), and its file meta group
    walked once: the SOP class (a SEG goes to the per-frame splitter) and the
    transfer syntax the lean reader needs come from the same walk.
    """
    head = fp.read(HEAD_BYTES)
    gzipped = False
    stream: BinaryIO = fp
    if head[:2] == b"\x1f\x8b":
        fp.seek(0)
        try:
            data, gzipped = gunzip_if_needed(fp.read())
        except NotDicomError as exc:
            result.ignored.append(IgnoredFile(cand.path, cand.rel, str(exc)))
            return
        stream = io.BytesIO(data)
    elif lean:
        meta = _head_meta(head)
        if is_seg(meta[2]):  # many frames: per-frame groups read apart
            fp.seek(0)
            buffered = _buffered(fp)
            try:
                if index_split(buffered, cand, names, result):
                    return
            finally:
                if buffered is not fp:  # the file stays open for the readers below
                    buffered.detach()  # type: ignore[attr-defined]
            fp.seek(len(head))
        size = fs.stream_size(fp)
        if _index_lean(fp, size, cand, names, result, head, meta):
            return
        fp.seek(0)
        if _index_enhanced(fp, size, cand, names, result):
            return
        fp.seek(0)
        stream = _buffered(fp)
    else:
        fp.seek(0)
        stream = _buffered(fp)
    try:
        ds, pixel_info = read_header_from(stream, gzipped)
    except NotDicomError as exc:
        damage = damaged_image(stream, fs.stream_size(stream))
        if damage is not None:  # a damaged image, not "not DICOM"
            result.errors.append(FileError(cand.path, cand.rel, damage))
        else:
            result.ignored.append(IgnoredFile(cand.path, cand.rel, str(exc)))
        return
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
        return
    try:
        if pixel_info is None and not _is_index_object(ds):
            damage = damaged_image(stream, fs.stream_size(stream), ds)
            if damage is not None:  # the header ends before PixelData: not "no pixel data"
                result.errors.append(FileError(cand.path, cand.rel, damage))
                return
        _index_dataset(ds, pixel_info, gzipped, cand, names, result)
    except Exception as exc:  # a value pydicom cannot convert (e.g. an unknown VR)
        log.debug("%s: header not understood", cand.path, exc_info=True)
        result.errors.append(FileError(cand.path, cand.rel, "header not understood: "
                                       f"{type(exc).__name__}: {exc}"))


def _head_meta(head: bytes) -> tuple[int | None, str, str]:
    """:func:`~dicomvol.dicom.lean.parse_meta` of a head; a cut or damaged meta gives
    ``(None, "", "")`` (pydicom then decides)."""
    try:
        return parse_meta(head)
    except (struct.error, ValueError, IndexError):
        return None, "", ""


def _is_index_object(ds: Dataset) -> bool:
    """DICOMDIR or RTSTRUCT: objects without top-level pixels, whatever they embed."""
    sop_class = str(ds.get("SOPClassUID", "") or meta_value(ds, "MediaStorageSOPClassUID"))
    return (sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds
            or is_rtstruct(sop_class))


def index_split(fp: BinaryIO, cand: Candidate, names: tuple[str, ...],
                result: IndexResult) -> bool:
    """Index a multi-frame file whose per-frame groups :mod:`~dicomvol.dicom.fgroups` reads.

    pydicom parses the rest of the header. False (nothing recorded) when the
    walker declines the file; the caller then reads it the usual way.
    """
    split = split_per_frame(fp)
    if split is None:
        return False
    try:
        ds, info = read_header_from(io.BytesIO(split.header))
    except (NotDicomError, HeaderError, PixelDataError):
        return False
    if info is None or info.value_offset is None:
        return False
    shift = split.cut_size
    value_offset = info.value_offset + shift
    info = PixelInfo(info.tag_offset + shift, value_offset, info.length,
                     fs.stream_size(fp) - value_offset, info.tag)
    _index_dataset(ds, info, False, cand, names, result, split.per_frame)
    return True


def _index_dataset(ds: Dataset, pixel_info: PixelInfo | None, gzipped: bool, cand: Candidate,
                   names: tuple[str, ...], result: IndexResult,
                   per_frame: list[FrameItem] | None = None) -> None:
    sop_class = str(ds.get("SOPClassUID", "") or meta_value(ds, "MediaStorageSOPClassUID"))
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        result.ignored.append(IgnoredFile(cand.path, cand.rel, "DICOMDIR (a directory index)"))
        return
    sop_uid = instance_uid(ds)
    if is_rtstruct(sop_class) and sop_uid:
        _index_rtstruct(ds, cand, names, result)
        return
    if pixel_info is None:
        name = sop_name(sop_class)
        pixel_module = [k for k in IMAGE_PIXEL_KEYWORDS if k in ds]
        if pixel_module or name.endswith("Image Storage"):  # an image without its pixels
            what = ", ".join(pixel_module[:2]) or "an image SOP class"
            result.errors.append(FileError(cand.path, cand.rel, (
                f"image header ({name}, {what}) but no Pixel Data: the file ends before "
                "it (truncated?)")))
            return
        result.ignored.append(
            IgnoredFile(cand.path, cand.rel, f"no pixel data ({name})", sop_uid or None))
        return
    if not sop_uid:
        result.errors.append(FileError(cand.path, cand.rel, (
            "image without SOPInstanceUID (0008,0018) or MediaStorageSOPInstanceUID "
            "(0002,0003): it cannot be named in SourceInstances")))
        return
    try:
        check_pixel_length(ds, pixel_info)
        frames = frame_records(ds, cand, pixel_info, gzipped, names, per_frame)
        if is_seg(sop_class):
            result.derived.append(seg_object(ds, cand, names, per_frame))
        result.frames.extend(frames)
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
    except Exception as exc:  # odd headers must cost this file only, with its name
        log.debug("%s: header not understood", cand.path, exc_info=True)
        msg = f"header not understood: {type(exc).__name__}: {exc}"
        result.errors.append(FileError(cand.path, cand.rel, msg))


def _index_rtstruct(ds: Dataset, cand: Candidate, names: tuple[str, ...],
                    result: IndexResult) -> None:
    """An RTSTRUCT becomes a derived object; an unreadable one an error naming the file."""
    try:
        result.derived.append(rtstruct_object(ds, cand, names))
    except Exception as exc:  # odd headers must cost this file only, with its name
        log.debug("%s: structure set not understood", cand.path, exc_info=True)
        result.errors.append(FileError(cand.path, cand.rel, "structure set not understood: "
                                       f"{type(exc).__name__}: {exc}"))


def _index_enhanced(fp: BinaryIO, size: int, cand: Candidate, names: tuple[str, ...],
                    result: IndexResult) -> bool:
    """Enhanced MR in explicit VR LE, read by :mod:`dicomvol.dicom.leanmf`; False: pydicom."""
    from dicomvol.dicom.leanmf import read_enhanced  # what the classic lean reader declined

    found = read_enhanced(fp)
    if found is None:
        return False
    try:
        frames = _fast_records(found, size, cand, names)
    except Exception:  # anything unexpected (errors too): pydicom decides, with its message
        log.debug("%s: lean enhanced path failed; using pydicom", cand.path, exc_info=True)
        return False
    if frames is None:
        return False
    result.frames.extend(frames)
    return True


def _index_lean(fp: BinaryIO, size: int, cand: Candidate, names: tuple[str, ...],
                result: IndexResult, head: bytes, meta: tuple[int | None, str, str]) -> bool:
    """The fast path on the file's ``head`` (``fp`` is just past it); False to let pydicom
    read the file instead."""
    found = read_lean(fp, size, names, head, meta)
    if found is None:
        return False
    try:
        frames = _fast_records(found, size, cand, names)
    except (HeaderError, PixelDataError) as exc:
        result.errors.append(FileError(cand.path, cand.rel, str(exc)))
        return True
    except Exception:  # anything unexpected: let pydicom read it
        log.debug("%s: lean header path failed; using pydicom", cand.path, exc_info=True)
        return False
    if frames is None:
        return False
    result.frames.extend(frames)
    return True


def _fast_records(found: tuple[Any, int, int, int], size: int, cand: Candidate,
                  names: tuple[str, ...]) -> list[FrameRecord] | None:
    """Records from a fast reader's (header, tag offset, value offset, length); None
    without a SOPInstanceUID (pydicom then reads the file)."""
    header, tag_offset, value_offset, length = found
    info = PixelInfo(tag_offset, value_offset, length, size - value_offset)
    if not header.get("SOPInstanceUID"):
        return None
    check_pixel_length(header, info)
    return frame_records(header, cand, info, False, names)

"""Independent exactness check of a written volume, using only pydicom and nibabel.

For every entry of the sidecar's ``SourceInstances`` the source frame is read
again with pydicom; its pixels (after its own rescale) must equal the volume's
slice, and its pixel positions (from its own IPP, IOP and PixelSpacing) must
map through the NIfTI affine onto the voxel indices (i, j, k) within 0.01 voxel.
None of dicomvol's geometry code is used here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom

#: The contract's tolerance for slice placement, in voxels.
VOXEL_TOLERANCE = 0.01
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _first(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def instance_uid(ds: Any) -> str:
    """SOPInstanceUID, or the file meta's MediaStorageSOPInstanceUID where the data set
    lost it (PS3.10: the same UID)."""
    uid = ds.get("SOPInstanceUID")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = ds.file_meta.get("MediaStorageSOPInstanceUID")
    return str(uid or "")


def frame_geometry(ds: Any, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(IPP, row dir, col dir, row spacing, col spacing) of one frame, 1-based."""
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    if pf is not None:
        item = pf[frame - 1]

        def group(kw: str) -> Any:
            return _first(item, kw) or _first(shared, kw)

        ipp = group("PlanePositionSequence").ImagePositionPatient
        iop = group("PlaneOrientationSequence").ImageOrientationPatient
        ps = group("PixelMeasuresSequence").PixelSpacing
    elif "ImagePositionPatient" not in ds and "DetectorInformationSequence" in ds:
        # NM reconstruction (PS3.3 C.8.4.11, C.8.4.15): the first slice's place in the
        # detector item; slice n at (n - 1) x SpacingBetweenSlices along row x column
        detector = ds.DetectorInformationSequence[0]
        iop = np.array([float(v) for v in detector.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        number = int(ds.SliceVector[frame - 1]) if "SliceVector" in ds else frame
        ipp = (np.array([float(v) for v in detector.ImagePositionPatient])
               + (number - 1) * float(ds.SpacingBetweenSlices) * normal)
        ps = ds.PixelSpacing
    else:
        ipp, iop, ps = ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    iop = np.array([float(v) for v in iop])
    return (np.array([float(v) for v in ipp]), iop[:3], iop[3:], float(ps[0]), float(ps[1]))


def _uih_grid(ds: Any) -> tuple[int, int, int, list[Any]] | None:
    """(slices, tiles across, rows of tiles, MRVFrameSequence items) of a UIH grid image
    ((0065,xx50), (0065,xx51) of creator "Image Private Header"), or None."""
    if not str(ds.get("Manufacturer", "")).upper().startswith("UI"):
        return None
    try:
        block = ds.private_block(0x0065, "Image Private Header")
        n = int(float(block[0x50].value))
        items = list(block[0x51].value)
    except (KeyError, ValueError):
        return None
    across = int(np.ceil(np.sqrt(n)))
    return n, across, -(-n // across), items


def tile_geometry(ds: Any, tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Geometry of one Siemens MOSAIC tile (1-based), from nibabel's MosaicWrapper; of a UIH
    grid tile, its MRVFrameSequence item's ImagePositionPatient."""
    import warnings

    uih = _uih_grid(ds)
    if uih is not None:
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        ps = [float(v) for v in ds.PixelSpacing]
        ipp = np.array([float(v) for v in uih[3][tile - 1].ImagePositionPatient])
        return ipp, iop[:3], iop[3:], ps[0], ps[1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

    wrapper = dicomwrappers.wrapper_from_data(ds)
    assert wrapper.is_mosaic, "Tile given for a file that is not a mosaic"
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    ps = [float(v) for v in ds.PixelSpacing]
    step = float(ds.get("SpacingBetweenSlices") or ds.SliceThickness)
    ipp = np.asarray(wrapper.image_position, dtype=float) + (tile - 1) * step * np.asarray(
        wrapper.slice_normal, dtype=float)
    return ipp, iop[:3], iop[3:], ps[0], ps[1]


def tile_values(ds: Any, tile: int) -> np.ndarray:
    """Modality values of one mosaic (or UIH grid) tile, shape (tile rows, tile columns)."""
    import warnings

    uih = _uih_grid(ds)
    if uih is not None:
        _, across, down, _ = uih
        rows, cols = int(ds.Rows) // down, int(ds.Columns) // across
        r, c = divmod(tile - 1, across)
        arr = ds.pixel_array[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols]
        return arr.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

    wrapper = dicomwrappers.wrapper_from_data(ds)
    data = np.asarray(wrapper.get_data(), dtype=np.float64)  # scaled, (rows, columns, tiles)
    return data[:, :, tile - 1]


#: What dicomvol documents for an image pixel attribute a file omits (dicom/frames.py); pydicom
#: refuses to decode without them.
PIXEL_DEFAULTS = (("SamplesPerPixel", 1), ("PhotometricInterpretation", "MONOCHROME2"))


def frame_values(ds: Any, frame: int) -> np.ndarray:
    """Modality values of one frame, shape (Rows, Columns)."""
    for keyword, default in PIXEL_DEFAULTS:
        if keyword not in ds:
            setattr(ds, keyword, default)
    if "BitsStored" not in ds and "BitsAllocated" in ds:
        ds.BitsStored = ds.BitsAllocated
    arr = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n > 1:
        arr = arr[frame - 1]
    if int(ds.get("SamplesPerPixel", 1) or 1) == 3:  # colour: packed as in rgb_packed
        return rgb_packed(arr)
    slope, inter = 1.0, 0.0
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    pvt = None
    if pf is not None:
        pvt = _first(pf[frame - 1], "PixelValueTransformationSequence") or _first(
            _first(ds, "SharedFunctionalGroupsSequence"), "PixelValueTransformationSequence")
    src = pvt if pvt is not None else ds
    if src.get("RescaleSlope") is not None:
        slope = float(src.RescaleSlope)
    if src.get("RescaleIntercept") is not None:
        inter = float(src.RescaleIntercept)
    return arr.astype(np.float64) * slope + inter


def rgb_packed(arr: np.ndarray) -> np.ndarray:
    """(..., 3) RGB values as one number each, R * 65536 + G * 256 + B (float64)."""
    rgb = np.asarray(arr, dtype=np.float64)
    out: np.ndarray = rgb[..., 0] * 65536.0 + rgb[..., 1] * 256.0 + rgb[..., 2]
    return out


def image_values(img: Any) -> np.ndarray:
    """A NIfTI's stored values as float64; RGB24 voxels packed as in :func:`rgb_packed`."""
    raw = np.asanyarray(img.dataobj)
    if raw.dtype.names:
        return rgb_packed(np.stack([raw[name] for name in raw.dtype.names], axis=-1))
    return np.asarray(raw, dtype=np.float64)


def resolve(file: str, roots: Sequence[Path]) -> Path:
    """The source file named relative to one of the input roots."""
    for root in roots:
        for candidate in (root / file, root.parent / file):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{file} not under {roots}")


def check_exact(image_path: Path, roots: Sequence[Path]) -> dict[str, float]:
    """Assert that a written volume is exact; returns the worst errors found."""
    img: Any = nib.load(str(image_path))
    sidecar = json.loads(Path(str(image_path).replace(".nii.gz", ".json")
                              .replace(".nii", ".json")).read_text())
    data = image_values(img)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    nx, ny, nz, nt = data.shape
    sources = sidecar["SourceInstances"]
    assert len(sources) == nz * nt, f"{image_path.name}: {len(sources)} sources for {data.shape}"
    lps = _LPS_TO_RAS @ img.get_sform()  # diag is its own inverse
    inv = np.linalg.inv(lps)
    worst_pos, worst_val = 0.0, 0.0
    cache: dict[Path, Any] = {}
    for n, src in enumerate(sources):
        k, t = n % nz, n // nz
        path = resolve(src["File"], roots)
        ds = cache.get(path)
        if ds is None:
            ds = pydicom.dcmread(path)
            cache = {path: ds}
        assert instance_uid(ds) == src["SOPInstanceUID"]
        tile = src.get("Tile")
        if tile is None:
            ipp, row, col, rs, cs = frame_geometry(ds, src["Frame"])
        else:
            ipp, row, col, rs, cs = tile_geometry(ds, tile)
        for i, j in ((0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1)):
            world = ipp + i * cs * row + j * rs * col
            index = inv @ np.r_[world, 1.0]
            err = float(np.max(np.abs(index[:3] - (i, j, k))))
            worst_pos = max(worst_pos, err)
        values = frame_values(ds, src["Frame"]) if tile is None else tile_values(ds, tile)
        assert values.shape == (ny, nx), f"{image_path.name}: slice {k} shape {values.shape}"
        diff = float(np.max(np.abs(values.T - data[:, :, k, t])))
        scale = max(1.0, float(np.max(np.abs(values))))
        worst_val = max(worst_val, diff / scale)
    assert worst_pos <= VOXEL_TOLERANCE, f"{image_path.name}: slice misplaced by {worst_pos} voxel"
    assert worst_val <= 1e-6, f"{image_path.name}: voxel values differ (rel {worst_val})"
    return {"position_error_voxels": worst_pos, "value_error_relative": worst_val}


def check_resampled(image_path: Path, roots: Sequence[Path]) -> dict[str, float]:
    """Assert that a resampled volume interpolates its sources correctly.

    The affine must be orthogonal (no shear). For every source frame named in
    ``SourceInstances`` whose plane lies within 1 % of the spacing of an output
    plane, every output voxel centre of that plane is mapped into the source
    frame (through the frame's own IPP, IOP and PixelSpacing) and the source is
    interpolated bilinearly there (scipy, independent of dicomvol). The output
    must equal it: exactly up to float32 when the plane coincides, and within
    the 1 % blend with the neighbouring slice otherwise. At least one source
    frame must be checked this way.
    """
    from scipy.ndimage import map_coordinates

    img: Any = nib.load(str(image_path))
    sidecar = json.loads(Path(str(image_path).replace(".nii.gz", ".json")
                              .replace(".nii", ".json")).read_text())
    assert sidecar["Resampled"] is True and sidecar.get("ResampleReason")
    lps = _LPS_TO_RAS @ img.get_sform()
    m = lps[:3, :3]
    gram = m.T @ m
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-5 * np.max(gram)), "sheared affine"
    data = np.asarray(img.dataobj, dtype=np.float64)
    nx, ny, nz = data.shape[:3]
    normal = m[:, 2] / np.linalg.norm(m[:, 2])
    spacing = float(np.linalg.norm(m[:, 2]))
    ii, jj = np.mgrid[0:nx, 0:ny]
    checked, worst = 0, 0.0
    for src in sidecar["SourceInstances"]:
        ds = pydicom.dcmread(resolve(src["File"], roots))
        ipp, row, col, rs, cs = frame_geometry(ds, src["Frame"])
        values = frame_values(ds, src["Frame"])
        k_float = float((np.linalg.inv(lps) @ np.r_[ipp, 1.0])[2])
        k = round(k_float)
        if not 0 <= k < nz or abs(k_float - k) > 0.01:
            continue
        world = (lps[:3, 3][:, None] + np.outer(m[:, 0], ii.ravel()) + np.outer(m[:, 1], jj.ravel())
                 + (m[:, 2] * k)[:, None])
        rel = world - ipp[:, None]
        rel -= np.outer(normal, normal @ rel)  # onto the source plane along the normal
        ci, cj = (row @ rel) / cs, (col @ rel) / rs
        ok = (ci >= 0) & (ci <= values.shape[1] - 1) & (cj >= 0) & (cj <= values.shape[0] - 1)
        if not ok.any():
            continue
        expected = map_coordinates(values, np.vstack([cj, ci])[:, ok], order=1)
        got = data[:, :, k].ravel()[ok]
        span = max(1.0, float(np.ptp(values)))
        err = float(np.max(np.abs(got - expected))) / span
        # A plane within 0.01 of a spacing of a slice is a copy of it (the contract's
        # exactness tolerance); float32 storage of values and affine leaves ~1e-4.
        bound = 1e-4
        assert err <= bound, (f"{image_path.name}: slice {src['File']} differs from its "
                              f"interpolation by {err:.4%} of range (bound {bound:.4%})")
        worst = max(worst, err)
        checked += 1
    assert checked, f"{image_path.name}: no source slice coincides with an output plane"
    assert spacing > 0
    return {"slices_checked": float(checked), "max_relative_error": worst}


def assert_accounted(root: Path, out: Path) -> dict[str, Any]:
    """The contract's accounting invariant for a conversion of ``root`` into ``out``
    (single-frame inputs).

    Every file under ``root`` is enumerated independently with pydicom. Each image frame
    (SOPInstanceUID, frame, file) must be in exactly one of: an output's SourceInstances, the
    report's ``skipped``, or (by file) the report's ``errors``. Files pydicom cannot parse must
    be in ``errors`` or ``ignored``. Nothing reported may name a frame that was never written.
    """
    report: dict[str, Any] = json.loads((out / "dicomvol_report.json").read_text())
    exact: list[tuple[str, int, str]] = []
    resampled: set[tuple[str, int, str]] = set()
    for volume in report["volumes"]:
        sidecar = json.loads((out / volume["Sidecar"]).read_text())
        keys = [(e["SOPInstanceUID"], e["Frame"], e["File"]) for e in sidecar["SourceInstances"]]
        assert keys, f"{volume['Path']}: an output without SourceInstances"
        if sidecar["Resampled"]:  # may share frames with the exact pieces it was made from
            assert sidecar.get("ResampleReason")
            resampled.update(keys)
        else:
            exact += keys
    assert len(exact) == len(set(exact)), "a frame is in two outputs (or twice in one)"
    used = set(exact) | resampled
    # Frame None means every frame of the instance; all files written here are single-frame.
    skipped = [(s["SOPInstanceUID"], 1 if s["Frame"] is None else s["Frame"], s["File"])
               for s in report["skipped"]]
    assert len(skipped) == len(set(skipped)), "a frame is skipped twice"
    assert all(s["Reason"] for s in report["skipped"])
    both = set(used) & set(skipped)
    assert not both, f"frames both written and skipped: {both}"
    errors = {e["File"]: e["Error"] for e in report["errors"]}
    assert all(errors.values()), "an error without a message"
    ignored = {i["File"] for i in report.get("ignored", [])}
    expected: set[tuple[str, int, str]] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            assert rel in errors or rel in ignored, f"{rel} is unreadable but not reported"
            continue
        if "Rows" not in ds:
            assert rel in ignored or rel in errors, f"{rel}: non-image not reported"
            continue
        key = (instance_uid(ds), 1, rel)
        expected.add(key)
        if rel in errors:
            assert key not in used, f"{rel} is in errors and also written"
            continue
        assert key in used or key in skipped, f"{key} is lost: in no output and not skipped"
    phantom = (set(used) | set(skipped)) - expected
    assert not phantom, f"reported frames that were never written: {phantom}"
    return report

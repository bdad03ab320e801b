"""NRRD / MetaImage writers and the SimpleITK bridge: values, LPS geometry, atomicity."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomvol.constants import OUTPUT_FORMATS
from dicomvol.errors import UsageError
from dicomvol.io import itk
from dicomvol.io.formats import extension, write_volume
from dicomvol.io.itk import (
    anatomical_orientation,
    stored_values,
    to_simpleitk,
    write_mha,
    write_nrrd,
)
from dicomvol.io.nifti import write_nifti
from dicomvol.model.volume import Volume

nrrd = pytest.importorskip("nrrd")
sitk = pytest.importorskip("SimpleITK")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


# ------------------------------------------------------------------- fixtures


def rotation(z_deg: float, x_deg: float, y_deg: float) -> np.ndarray:
    """A proper rotation, Rz @ Rx @ Ry: not symmetric for generic angles."""
    a, b, c = np.radians([z_deg, x_deg, y_deg])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    rot: np.ndarray = rz @ rx @ ry
    return rot


def make_affine(direction: np.ndarray, spacing: tuple[float, float, float],
                origin: tuple[float, float, float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing)
    affine[:3, 3] = origin
    return affine


OBLIQUE = rotation(30.0, 20.0, 10.0)
AXIAL_AFFINE = make_affine(np.eye(3), (0.78125, 0.78125, 2.5), (-200.0, -180.5, 37.25))
OBLIQUE_AFFINE = make_affine(OBLIQUE, (0.6, 0.9, 1.7), (12.5, -101.25, 48.0))


def _rng_ints(shape: tuple[int, ...], lo: int, hi: int, dtype: type) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + abs(lo))
    return np.asfortranarray(rng.integers(lo, hi, size=shape).astype(dtype))


def make_volumes() -> dict[str, Volume]:
    rng = np.random.default_rng(7)
    shape = (6, 5, 4)
    return {
        "axial_int16": Volume(_rng_ints(shape, -1024, 3000, np.int16), AXIAL_AFFINE),
        "oblique_int16": Volume(_rng_ints(shape, -500, 500, np.int16), OBLIQUE_AFFINE),
        "oblique_4d": Volume(_rng_ints((*shape, 3), 0, 4000, np.uint16), OBLIQUE_AFFINE),
        "ct_scaled": Volume(_rng_ints(shape, 0, 4096, np.uint16), AXIAL_AFFINE,
                            scl_slope=1.0, scl_inter=-1024.0),
        "scaled_int32": Volume(_rng_ints(shape, 0, 4000, np.uint16), OBLIQUE_AFFINE,
                               scl_slope=1000.0, scl_inter=0.0),
        "pet_scaled": Volume(_rng_ints(shape, 0, 32767, np.int16), OBLIQUE_AFFINE,
                             scl_slope=0.000123456, scl_inter=0.0),
        "float32": Volume(np.asfortranarray(rng.normal(size=shape).astype(np.float32)),
                          OBLIQUE_AFFINE),
        "scaled_4d": Volume(_rng_ints((*shape, 2), 0, 1000, np.int16), OBLIQUE_AFFINE,
                            scl_slope=2.5, scl_inter=-7.25),
    }


VOLUMES = make_volumes()


def sheared_volume() -> Volume:
    affine = AXIAL_AFFINE.copy()
    affine[1, 2] = 0.4  # the slice step leans along y: gantry tilt
    return Volume(_rng_ints((4, 4, 3), 0, 100, np.int16), affine, metadata={"Sheared": True})


def read_mha_header(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    end = raw.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    fields = {}
    for line in raw[:end].decode("ascii").splitlines():
        key, value = line.split(" = ", 1)
        fields[key] = value
    return fields


def floats(text: str) -> np.ndarray:
    return np.array([float(x) for x in text.split()])


def affine_from_mha(path: Path) -> np.ndarray:
    """Voxel -> LPS affine rebuilt from the MetaImage header text (3 spatial axes)."""
    h = read_mha_header(path)
    n = int(h["NDims"])
    matrix = floats(h["TransformMatrix"]).reshape(n, n).T  # written column by column
    affine = np.eye(4)
    affine[:3, :3] = matrix[:3, :3] * floats(h["ElementSpacing"])[:3]
    affine[:3, 3] = floats(h["Offset"])[:3]
    return affine


def affine_from_nrrd(header: dict) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(header["space directions"])[:3].T
    affine[:3, 3] = header["space origin"]
    return affine


def affine_from_sitk(image: object) -> np.ndarray:
    n = image.GetDimension()  # type: ignore[attr-defined]
    direction = np.array(image.GetDirection()).reshape(n, n)[:3, :3]  # type: ignore[attr-defined]
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())[:3]  # type: ignore[attr-defined]
    affine[:3, 3] = np.array(image.GetOrigin())[:3]  # type: ignore[attr-defined]
    return affine


def assert_values(stored: np.ndarray, volume: Volume) -> None:
    """Stored numbers are the modality values: exactly for integers, else to float32."""
    expected = volume.values
    if stored.dtype.kind in "iu":
        assert np.array_equal(stored, expected)
    else:
        np.testing.assert_allclose(stored, expected, rtol=1e-7, atol=0)
    assert np.array_equal(stored, stored_values(volume))


# ------------------------------------------------------------ lossless policy


def test_oblique_fixture_is_not_symmetric() -> None:
    assert np.abs(OBLIQUE - OBLIQUE.T).max() > 0.1
    assert np.allclose(OBLIQUE.T @ OBLIQUE, np.eye(3))


@pytest.mark.parametrize(("name", "dtype"), [
    ("axial_int16", np.int16), ("oblique_4d", np.uint16), ("ct_scaled", np.int16),
    ("scaled_int32", np.int32), ("pet_scaled", np.float32), ("float32", np.float32),
    ("scaled_4d", np.float32),
])
def test_stored_values_policy(name: str, dtype: type) -> None:
    volume = VOLUMES[name]
    stored = stored_values(volume)
    assert stored.dtype == np.dtype(dtype)
    assert stored.shape == volume.shape
    if volume.scl_slope == 1.0 and volume.scl_inter == 0.0:
        assert stored is volume.data  # unscaled: written as is, no copy
    assert_values(stored, volume)
    if volume.data.dtype.kind in "iu":  # raw integers recoverable
        raw = np.rint((stored.astype(np.float64) - volume.scl_inter) / volume.scl_slope)
        assert np.array_equal(raw, volume.data)


def test_stored_values_falls_back_to_float64_when_float32_is_lossy() -> None:
    data = np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4) * 1000003)
    volume = Volume(data, AXIAL_AFFINE, scl_slope=1.0, scl_inter=0.5)
    stored = stored_values(volume)
    assert stored.dtype == np.float64
    assert np.array_equal(stored, volume.values)


# ---------------------------------------------------------------------- NRRD


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_nrrd_roundtrip(tmp_path: Path, name: str, compress: bool) -> None:
    volume = VOLUMES[name]
    path = tmp_path / "v.nrrd"
    write_nrrd(volume, path, compress=compress)
    data, header = nrrd.read(str(path), index_order="F")
    assert data.shape == volume.shape
    assert_values(data, volume)
    assert header["space"] == "left-posterior-superior"
    assert header["encoding"] == ("gzip" if compress else "raw")
    directions = np.asarray(header["space directions"], dtype=float)
    np.testing.assert_allclose(directions[:3], volume.affine[:3, :3].T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(header["space origin"], volume.affine[:3, 3], rtol=0, atol=1e-12)
    if volume.data.ndim == 4:
        assert header["kinds"] == ["domain", "domain", "domain", "list"]
        assert np.isnan(directions[3]).all()
    else:
        assert header["kinds"] == ["domain", "domain", "domain"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nrrd"]


@pytest.mark.parametrize("name", ["axial_int16", "oblique_int16", "pet_scaled"])
def test_nrrd_read_by_itk(tmp_path: Path, name: str) -> None:
    volume = VOLUMES[name]
    path = tmp_path / "v.nrrd"
    write_nrrd(volume, path)
    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(affine_from_sitk(image), volume.affine, rtol=0, atol=1e-9)
    assert np.array_equal(sitk.GetArrayFromImage(image).T, stored_values(volume))


# ----------------------------------------------------------------- MetaImage


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_mha_roundtrip_with_simpleitk(tmp_path: Path, name: str, compress: bool) -> None:
    volume = VOLUMES[name]
    path = tmp_path / "v.mha"
    write_mha(volume, path, compress=compress)
    header = read_mha_header(path)
    assert header["CompressedData"] == str(compress)
    assert header["BinaryDataByteOrderMSB"] == "False"
    assert header["NDims"] == str(volume.data.ndim)
    assert ("CompressedDataSize" in header) == compress
    if compress:  # the size is that of the zlib stream following the header
        payload = path.read_bytes()[-int(header["CompressedDataSize"]):]
        assert len(zlib.decompress(payload)) == stored_values(volume).nbytes

    image = sitk.ReadImage(str(path))
    n = volume.data.ndim
    assert image.GetDimension() == n
    assert image.GetSize() == volume.shape
    array = sitk.GetArrayFromImage(image).T
    assert array.shape == volume.shape
    assert_values(array, volume)

    spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)
    direction = volume.affine[:3, :3] / spacing
    np.testing.assert_allclose(image.GetSpacing()[:3], spacing, rtol=0, atol=1e-12)
    np.testing.assert_allclose(image.GetOrigin()[:3], volume.affine[:3, 3], rtol=0, atol=1e-12)
    got = np.array(image.GetDirection()).reshape(n, n)
    np.testing.assert_allclose(got[:3, :3], direction, rtol=0, atol=1e-12)
    if n == 4:
        assert image.GetSpacing()[3] == 1.0
        assert image.GetOrigin()[3] == 0.0
        np.testing.assert_array_equal(got[3], [0, 0, 0, 1])
        np.testing.assert_array_equal(got[:, 3], [0, 0, 0, 1])
    np.testing.assert_allclose(affine_from_sitk(image), volume.affine, rtol=0, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mha"]


def test_mha_transform_matrix_is_column_by_column(tmp_path: Path) -> None:
    """Non-symmetric direction: a transposition would show as a different GetDirection()."""
    volume = VOLUMES["oblique_int16"]
    ours = tmp_path / "ours.mha"
    write_mha(volume, ours, compress=False)
    matrix = floats(read_mha_header(ours)["TransformMatrix"])
    np.testing.assert_allclose(matrix[:3], OBLIQUE[:, 0], atol=1e-12)  # axis i first
    np.testing.assert_allclose(matrix[3:6], OBLIQUE[:, 1], atol=1e-12)
    np.testing.assert_allclose(matrix[6:], OBLIQUE[:, 2], atol=1e-12)
    got = np.array(sitk.ReadImage(str(ours)).GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(got, OBLIQUE, atol=1e-12)
    assert not np.allclose(got, OBLIQUE.T, atol=1e-3)

    # ITK's own MetaImage writer agrees field by field.
    theirs = tmp_path / "theirs.mha"
    sitk.WriteImage(to_simpleitk(volume), str(theirs), False)
    ref = read_mha_header(theirs)
    mine = read_mha_header(ours)
    for key in ("TransformMatrix", "Offset", "ElementSpacing"):
        np.testing.assert_allclose(floats(mine[key]), floats(ref[key]), rtol=0, atol=1e-12)
    for key in ("NDims", "DimSize", "ElementType", "AnatomicalOrientation"):
        assert mine[key] == ref[key]


@pytest.mark.parametrize(("columns", "code"), [
    (np.eye(3), "RAI"),
    (np.array([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), "LSA"),  # ITK writes LSA for this one
    (OBLIQUE, "RAI"),
    (-np.eye(3), "LPS"),
])
def test_anatomical_orientation(columns: np.ndarray, code: str) -> None:
    assert anatomical_orientation(columns) == code


# ------------------------------------------------ the same world grid as NIfTI


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_same_world_grid_as_nifti(tmp_path: Path, name: str) -> None:
    volume = VOLUMES[name]
    write_nifti(volume, tmp_path / "v.nii.gz")
    write_mha(volume, tmp_path / "v.mha")
    write_nrrd(volume, tmp_path / "v.nrrd")
    ras = nib.load(tmp_path / "v.nii.gz").affine
    from_mha = affine_from_mha(tmp_path / "v.mha")
    from_nrrd = affine_from_nrrd(nrrd.read_header(str(tmp_path / "v.nrrd")))
    np.testing.assert_allclose(ras, LPS_TO_RAS @ from_mha, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ras, LPS_TO_RAS @ from_nrrd, rtol=0, atol=1e-6)
    # and the voxels agree
    nifti_values = np.asanyarray(nib.load(tmp_path / "v.nii.gz").dataobj)
    np.testing.assert_allclose(nifti_values, stored_values(volume), rtol=1e-6, atol=0)


# ------------------------------------------------------------------ SimpleITK


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_to_simpleitk_equals_reading_the_mha(tmp_path: Path, name: str) -> None:
    volume = VOLUMES[name]
    path = tmp_path / "v.mha"
    write_mha(volume, path)
    read = sitk.ReadImage(str(path))
    made = to_simpleitk(volume)
    assert made.GetPixelID() == read.GetPixelID()
    assert made.GetSize() == read.GetSize()
    assert made.GetSpacing() == pytest.approx(read.GetSpacing(), abs=1e-12)
    assert made.GetOrigin() == pytest.approx(read.GetOrigin(), abs=1e-12)
    assert made.GetDirection() == pytest.approx(read.GetDirection(), abs=1e-12)
    assert np.array_equal(sitk.GetArrayFromImage(made), sitk.GetArrayFromImage(read))
    if volume.data.ndim == 3:  # ITK indexes [i, j, k] like Volume.data
        assert made[1, 2, 3] == stored_values(volume)[1, 2, 3]


def test_to_simpleitk_without_simpleitk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # import raises ImportError
    with pytest.raises(UsageError, match="pip install SimpleITK"):
        to_simpleitk(VOLUMES["axial_int16"])


# ------------------------------------------------------------ refusals, files


@pytest.mark.parametrize("write", [write_nrrd, write_mha])
def test_sheared_volume_is_refused(tmp_path: Path, write: object) -> None:
    path = tmp_path / "v.out"
    with pytest.raises(UsageError, match="sheared"):
        write(sheared_volume(), path)  # type: ignore[operator]
    assert list(tmp_path.iterdir()) == []


def test_sheared_volume_to_simpleitk_is_refused() -> None:
    with pytest.raises(UsageError, match="sheared"):
        to_simpleitk(sheared_volume())


def test_non_orthonormal_without_flag_is_refused(tmp_path: Path) -> None:
    volume = sheared_volume()
    unflagged = Volume(volume.data, volume.affine)
    with pytest.raises(UsageError, match="sheared"):
        write_mha(unflagged, tmp_path / "v.mha")


def test_sheared_volume_still_writes_as_nifti(tmp_path: Path) -> None:
    write_volume(sheared_volume(), tmp_path / "v.nii.gz", "nifti")
    assert (tmp_path / "v.nii.gz").exists()


@pytest.mark.parametrize("fmt", ["nrrd", "mha"])
def test_failed_write_leaves_nothing_and_keeps_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    path = tmp_path / f"v{extension(fmt)}"
    path.write_bytes(b"old")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if fmt == "nrrd":
        monkeypatch.setattr(nrrd, "write", boom)
    else:
        monkeypatch.setattr(itk, "anatomical_orientation", boom)
    with pytest.raises(OSError, match="disk full"):
        write_volume(VOLUMES["axial_int16"], path, fmt)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == b"old"


@pytest.mark.parametrize("fmt", ["nrrd", "mha", "nifti"])
def test_overwrite_replaces_atomically(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"v{extension(fmt)}"
    path.write_bytes(b"old")
    write_volume(VOLUMES["oblique_int16"], path, fmt)
    assert path.read_bytes() != b"old"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_extensions() -> None:
    assert {f: extension(f) for f in OUTPUT_FORMATS} == {
        "nifti": ".nii.gz", "nrrd": ".nrrd", "mha": ".mha"}
    assert extension("nifti", compress=False) == ".nii"
    assert extension("mha", compress=False) == ".mha"
    with pytest.raises(UsageError):
        extension("dicom")


def test_complex_data_is_refused(tmp_path: Path) -> None:
    volume = Volume(np.zeros((2, 2, 2), dtype=np.complex64), AXIAL_AFFINE)
    with pytest.raises(UsageError):
        write_mha(volume, tmp_path / "v.mha")
    assert list(tmp_path.iterdir()) == []


_GZIP_PEAK_SCRIPT = """
import sys
from pathlib import Path
from dicomvol.io.nifti import gzip_writer
def hwm():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM'))
chunk = bytes(range(256)) * 512  # 128 KiB, as a slice
before = hwm()
with gzip_writer(Path(sys.argv[1]), int(sys.argv[2])) as fp:
    for k in range(160):  # 20 MiB
        fp.write(chunk)
print(hwm() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("threads", [1, 2])
def test_gzip_writer_round_trips_and_one_thread_holds_no_blocks(tmp_path: Path,
                                                               threads: int) -> None:
    """A job among many compresses in its own thread: its peak memory grows by well under
    igzip's threaded block queue (~9 MiB); every thread count writes the same payload."""
    import gzip
    import subprocess
    import sys

    out = tmp_path / f"x{threads}.gz"
    proc = subprocess.run([sys.executable, "-c", _GZIP_PEAK_SCRIPT, str(out), str(threads)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert gzip.decompress(out.read_bytes()) == bytes(range(256)) * 512 * 160
    if threads == 1:
        assert int(proc.stdout.strip()) < 4 * 1024  # KiB


def test_one_thread_gzip_is_the_same_bytes_whenever_written(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """No mtime and no (temporary) file name in the header: a re-run writes the same file."""
    import time

    from dicomvol.io.nifti import gzip_writer

    written = []
    for n, offset in enumerate((0.0, 1000.0)):
        now = time.time() + offset
        monkeypatch.setattr(time, "time", lambda now=now: now)
        path = tmp_path / f".x{n}.nii.gz.{n}.tmp"
        with gzip_writer(path, 1) as fp:
            fp.write(b"slice" * 10_000)
        written.append(path.read_bytes())
    assert written[0] == written[1]

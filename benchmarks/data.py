"""Deterministic benchmark data sets, built once and cached in ``benchmarks/data/``.

Each data set is a folder ``benchmarks/data/<name>`` (``<name>_quick`` for the small variant
used by ``run.py --quick``) holding only DICOM files, next to a ``<name>.complete.json`` marker
that records the spec it was built from. A folder without a marker, or with a marker whose spec
differs from the current one, is
rebuilt from scratch (into ``<name>.partial`` first, then renamed), so an interrupted build never
leaves a half-written data set behind.

Data sets
---------
ct_study
    One study, 3 series x 400 slices of 512 x 512 uncompressed CT (Explicit VR Little Endian,
    ~1,200 files, ~630 MB) made from the 134 real slices of ``ct_lung1/image`` in the shared
    corpus: slices are cycled, every file gets new Study/Series/SOPInstanceUIDs, a new
    ImagePositionPatient z (regular 3 mm steps), InstanceNumber and SliceLocation. All files of
    the study sit in one folder, written in shuffled order under random upper-case hex names
    without an extension.
many_small
    4,000 single-slice 256 x 256 MR files in one folder: 40 series x 100 slices written by
    :func:`dicomvol.testing.write_series` (synthetic content, random hex names, shuffled).
j2k_ct
    One series of 300 CT slices (cycled from the same real slices) re-encoded as JPEG 2000
    lossless with pylibjpeg-openjpeg.
archive
    Archive-shaped: 1,000 short series of 50 slices (50,000 files) in one tree of 100
    patient folders, each holding the shuffled files of 10 series under random names. Half
    the series are CT (the real ``ct_lung1`` slices cropped to 128 x 128 about the centre,
    headers as scanned), half MR (the real 64 x 64 GE slices of ``mr_4d_nih/20180918GE/
    mr_0004``). Per-file and per-series costs decide this case, as in an IDC collection.
study30
    One study of 30 short series (12 to 60 slices, CT 256 x 256 crops and MR 64 x 64 as
    above) in one folder, shuffled.

Everything is deterministic: UIDs are derived from fixed seeds (``pydicom.uid.generate_uid``
with ``entropy_srcs``), names and write order come from seeded generators, so two builds on two
machines produce the same files.

Usage: ``python benchmarks/data.py [--quick] [--only NAME] [--force]`` builds (or checks) the
data sets; ``run.py`` calls :func:`ensure` itself.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "data"
#: Bump to force a rebuild of every cached data set after a change of the builders.
BUILDER_VERSION = 1

#: UID root used for every generated UID (pydicom's own root; the suffix is a hash of the seed).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one cached data set contains."""

    name: str  # folder name under benchmarks/data (with _quick for the quick variant)
    kind: str  # builder: ct_study | many_small | j2k_ct
    series: int
    slices: int  # per series
    description: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return DATA_DIR / self.name

    @property
    def marker(self) -> Path:
        """Kept next to the folder, so the folder holds nothing but DICOM files."""
        return DATA_DIR / f"{self.name}.complete.json"

    @property
    def files(self) -> int:
        return self.series * self.slices

    def marker_payload(self) -> dict[str, Any]:
        return {"builder_version": BUILDER_VERSION, **asdict(self)}


def specs(quick: bool = False) -> dict[str, Spec]:
    """The data sets by base name (``ct_study``, ``many_small``, ``j2k_ct``)."""
    sfx = "_quick" if quick else ""
    ct_series, ct_slices = (3, 40) if quick else (3, 400)
    mr_series, mr_slices = (8, 25) if quick else (40, 100)
    j2k_slices = 40 if quick else 300
    archive_series, archive_slices = (40, 20) if quick else (1000, 50)
    return {
        "ct_study": Spec(
            f"ct_study{sfx}", "ct_study", ct_series, ct_slices,
            f"{ct_series} series x {ct_slices} slices, 512x512 CT, uncompressed, one folder",
            {"spacing_mm": 3.0, "seed": 1},
        ),
        "many_small": Spec(
            f"many_small{sfx}", "many_small", mr_series, mr_slices,
            f"{mr_series} series x {mr_slices} single-slice 256x256 MR files, one folder",
            {"shape": [256, 256, mr_slices], "seed": 2},
        ),
        "j2k_ct": Spec(
            f"j2k_ct{sfx}", "j2k_ct", 1, j2k_slices,
            f"1 series x {j2k_slices} slices, 512x512 CT, JPEG 2000 lossless",
            {"spacing_mm": 3.0, "seed": 3},
        ),
        "archive": Spec(
            f"archive{sfx}", "archive", archive_series, archive_slices,
            f"{archive_series} series x {archive_slices} slices (half CT 128x128 crops, half "
            "MR 64x64, real headers) in 100 patient folders, shuffled",
            {"seed": 4, "folders": 100 if not quick else 4, "ct_crop": 128},
        ),
        "study30": Spec(
            f"study30{sfx}", "study30", 30 if not quick else 6, 36,
            "one study of short series (12-60 slices, CT 256x256 crops and MR 64x64), one "
            "folder, shuffled",
            {"seed": 5, "ct_crop": 256, "min_slices": 12, "max_slices": 60},
        ),
    }


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def corpus_dir() -> Path:
    """The real CT slices: ``$DICOMVOL_CORPUS/ct_lung1/image`` or ``<repo>/../shared/corpus``."""
    env = os.environ.get("DICOMVOL_CORPUS")
    root = Path(env) if env else REPO.parent / "shared" / "corpus"
    path = root / "ct_lung1" / "image"
    if not path.is_dir():
        raise SystemExit(
            f"CT corpus not found at {path}: set DICOMVOL_CORPUS to the shared corpus folder"
        )
    return path


def det_uid(*parts: object) -> str:
    """A deterministic, valid UID derived from ``parts``.

    pydicom concatenates entropy sources without a separator, so ``(1, 23)`` and
    ``(12, 3)`` give the same UID: pass compound indices as one part (``"1/23"``).
    """
    import pydicom.uid

    return str(pydicom.uid.generate_uid(UID_PREFIX, entropy_srcs=[repr(p) for p in parts]))


def hex_names(n: int, seed: int) -> list[str]:
    """``n`` distinct random upper-case hex names (16 digits, no extension)."""
    rng = random.Random(seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = f"{rng.getrandbits(64):016X}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def load_real_ct() -> list[Any]:
    """The real CT slices (with pixel data), sorted by ascending z."""
    import pydicom

    files = sorted(p for p in corpus_dir().iterdir() if p.is_file())
    slices = [pydicom.dcmread(p) for p in files]
    slices = [ds for ds in slices if "PixelData" in ds and "ImagePositionPatient" in ds]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    if len(slices) < 2:
        raise SystemExit(f"too few CT slices with pixel data in {corpus_dir()}")
    return slices


def _restamp(ds: Any, *, study_uid: str, series_uid: str, for_uid: str, sop_uid: str,
             series_number: int, description: str, k: int, z: float) -> None:
    """Give a copy of a real slice its new identity and position (in place)."""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = k + 1
    x, y, _ = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, round(z, 4)]
    ds.SliceLocation = round(z, 4)


# --------------------------------------------------------------------------------------------
# Builders (each writes into an empty folder ``dest``)
# --------------------------------------------------------------------------------------------


def build_ct_study(spec: Spec, dest: Path) -> None:
    import pydicom

    real = load_real_ct()
    seed = int(spec.params["seed"])
    spacing = float(spec.params["spacing_mm"])
    z0 = float(real[0].ImagePositionPatient[2])
    study_uid = det_uid(spec.kind, seed, "study")
    for_uid = det_uid(spec.kind, seed, "for")
    jobs: list[tuple[int, int]] = [(s, k) for s in range(spec.series) for k in range(spec.slices)]
    names = hex_names(len(jobs), seed)
    order = list(range(len(jobs)))
    random.Random(seed + 1).shuffle(order)
    for idx in order:
        s, k = jobs[idx]
        # Cycle the real slices; each series starts at a different real slice.
        src = real[(k + 45 * s) % len(real)]
        ds = copy.deepcopy(src)
        _restamp(ds, study_uid=study_uid, series_uid=det_uid(spec.kind, seed, "series", s),
                 for_uid=for_uid, sop_uid=det_uid(spec.kind, seed, "sop", s, k),
                 series_number=s + 1, description=f"bench CT {s + 1}", k=k,
                 z=z0 + k * spacing)
        pydicom.dcmwrite(dest / names[idx], ds, enforce_file_format=True)


@contextlib.contextmanager
def _deterministic_generate_uid(seed: int) -> Iterator[None]:
    """Make ``pydicom.uid.generate_uid()`` (no entropy given) return a seeded sequence.

    ``write_series`` draws its SOPInstanceUIDs from ``generate_uid()``; patching the module
    attribute makes them reproducible without touching dicomvol.
    """
    import pydicom.uid

    original = pydicom.uid.generate_uid
    counter = iter(range(10**12))

    def patched(prefix: str | None = UID_PREFIX, entropy_srcs: list[str] | None = None
                ) -> pydicom.uid.UID:
        if entropy_srcs is None:
            entropy_srcs = [f"bench-{seed}-{next(counter)}"]
        return original(prefix if prefix is not None else UID_PREFIX, entropy_srcs=entropy_srcs)

    pydicom.uid.generate_uid = patched
    try:
        yield
    finally:
        pydicom.uid.generate_uid = original


def _many_small_series(args: tuple[str, int, int, int, str, str]) -> None:
    dest, i, slices, seed, study_uid, for_uid = args
    from dicomvol.testing import write_series

    with _deterministic_generate_uid(seed * 1000 + i):
        write_series(
            dest,
            shape=(256, 256, slices),
            pixel_spacing=(0.9, 0.9),
            slice_spacing=1.5,
            modality="MR",
            rescale=(1.0, 0.0),
            shuffle_seed=seed * 1000 + i,
            seed=seed * 1000 + i,
            series_instance_uid=det_uid("many_small", seed, "series", i),
            study_instance_uid=study_uid,
            frame_of_reference_uid=for_uid,
            series_number=i + 1,
            series_description=f"bench MR {i + 1}",
            patient_id="BENCH001",
        )


def build_many_small(spec: Spec, dest: Path) -> None:
    seed = int(spec.params["seed"])
    study_uid = det_uid(spec.kind, seed, "study")
    for_uid = det_uid(spec.kind, seed, "for")
    jobs = [(str(dest), i, spec.slices, seed, study_uid, for_uid) for i in range(spec.series)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_many_small_series, jobs))


_J2K_REAL: list[Any] = []


def _j2k_init() -> None:
    _J2K_REAL[:] = load_real_ct()


def _j2k_slice(args: tuple[str, int, str, str, str, int]) -> None:
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    path, seed, study_uid, series_uid, for_uid, k = args
    real = _J2K_REAL
    ds = copy.deepcopy(real[k % len(real)])
    z0 = float(real[0].ImagePositionPatient[2])
    _restamp(ds, study_uid=study_uid, series_uid=series_uid, for_uid=for_uid,
             sop_uid=det_uid("j2k_ct", seed, "sop", k), series_number=1,
             description="bench CT J2K", k=k, z=z0 + k * 3.0)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def build_j2k_ct(spec: Spec, dest: Path) -> None:
    seed = int(spec.params["seed"])
    study_uid = det_uid(spec.kind, seed, "study")
    series_uid = det_uid(spec.kind, seed, "series", 0)
    for_uid = det_uid(spec.kind, seed, "for")
    names = hex_names(spec.slices, seed)
    order = list(range(spec.slices))
    random.Random(seed + 1).shuffle(order)
    jobs = [(str(dest / names[k]), seed, study_uid, series_uid, for_uid, k) for k in order]
    # Encoding is slow (~0.1-0.3 s a slice): use every core. The write order is still the
    # shuffled one within each chunk; names are random anyway.
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, initializer=_j2k_init) as pool:
        list(pool.map(_j2k_slice, jobs, chunksize=8))


def corpus_root() -> Path:
    """The shared corpus (``$DICOMVOL_CORPUS`` or ``<repo>/../shared/corpus``)."""
    return corpus_dir().parent.parent


def load_real_mr() -> list[Any]:
    """One volume of real GE MR slices (64 x 64), sorted by ascending z."""
    import pydicom

    folder = corpus_root() / "mr_4d_nih" / "20180918GE" / "mr_0004"
    slices = []
    for path in sorted(folder.iterdir()):
        try:
            slices.append(pydicom.dcmread(path))
        except (pydicom.errors.InvalidDicomError, OSError):
            continue  # a README or other non-DICOM file
    slices = [ds for ds in slices if "PixelData" in ds and "ImagePositionPatient" in ds]
    first = min(int(ds.get("TemporalPositionIdentifier", 1) or 1) for ds in slices)
    slices = [ds for ds in slices if int(ds.get("TemporalPositionIdentifier", 1) or 1) == first]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return slices


def crop(ds: Any, size: int) -> Any:
    """A copy of a real slice cropped to ``size`` x ``size`` about its centre (geometry kept)."""
    import numpy as np

    out = copy.deepcopy(ds)
    rows, cols = int(ds.Rows), int(ds.Columns)
    if size >= min(rows, cols):
        return out
    r0, c0 = (rows - size) // 2, (cols - size) // 2
    arr = ds.pixel_array[r0:r0 + size, c0:c0 + size]
    row_dir = np.asarray(ds.ImageOrientationPatient[:3], dtype=float)
    col_dir = np.asarray(ds.ImageOrientationPatient[3:], dtype=float)
    ps = [float(v) for v in ds.PixelSpacing]
    ipp = (np.asarray(ds.ImagePositionPatient, dtype=float) + c0 * ps[1] * row_dir
           + r0 * ps[0] * col_dir)
    out.ImagePositionPatient = [round(float(v), 4) for v in ipp]
    out.Rows, out.Columns = size, size
    out.PixelData = np.ascontiguousarray(arr).tobytes()
    return out


_SHORT_REAL: dict[str, list[Any]] = {}


def _short_init(ct_crop: int) -> None:
    _SHORT_REAL["CT"] = [crop(ds, ct_crop) for ds in load_real_ct()]
    _SHORT_REAL["MR"] = load_real_mr()


def _short_series(args: tuple[str, str, int, int, int, str, str, str, int, int]) -> None:
    """Write one short series (CT or MR, from the real slices) into ``folder``, shuffled."""
    import pydicom

    folder, kind, seed, index, slices, study_uid, for_uid, patient, start, name_seed = args
    real = _SHORT_REAL[kind]
    spacing = float(getattr(real[0], "SpacingBetweenSlices", 0) or 0) or 3.0
    z0 = float(real[0].ImagePositionPatient[2])
    names = hex_names(slices, name_seed)
    series_uid = det_uid(kind, seed, "series", f"{index}/")
    order = list(range(slices))
    random.Random(name_seed).shuffle(order)
    for k in order:
        ds = copy.deepcopy(real[(start + k) % len(real)])
        _restamp(ds, study_uid=study_uid, series_uid=series_uid, for_uid=for_uid,
                 sop_uid=det_uid(kind, seed, "sop", f"{index}/{k}"),
                 series_number=index + 1,
                 description=f"bench {kind} {index + 1}", k=k, z=z0 + k * spacing)
        ds.PatientID = patient
        pydicom.dcmwrite(Path(folder) / names[k], ds, enforce_file_format=True)


def build_archive(spec: Spec, dest: Path) -> None:
    """1,000 short series in patient folders, 10 series of one patient mixed per folder."""
    seed = int(spec.params["seed"])
    folders = int(spec.params["folders"])
    per_folder = spec.series // folders
    jobs = []
    for i in range(spec.series):
        patient = i // per_folder
        folder = dest / f"P{patient:04d}"
        folder.mkdir(exist_ok=True)
        kind = "CT" if i % 2 == 0 else "MR"
        jobs.append((str(folder), kind, seed, i, spec.slices,
                     det_uid("archive", seed, "study", patient),
                     det_uid("archive", seed, "for", patient), f"BENCH{patient:04d}",
                     (7 * i) % 40, seed * 100_000 + i))
    _run_short(jobs, int(spec.params["ct_crop"]))


def build_study30(spec: Spec, dest: Path) -> None:
    """One study of short series of varying length in one folder."""
    seed = int(spec.params["seed"])
    rng = random.Random(seed)
    lo, hi = int(spec.params["min_slices"]), int(spec.params["max_slices"])
    lengths = [rng.randint(lo, hi) for _ in range(spec.series)]
    study_uid = det_uid("study30", seed, "study")
    for_uid = det_uid("study30", seed, "for")
    jobs = [(str(dest), "CT" if i % 3 else "MR", seed, i, n, study_uid, for_uid, "BENCH30",
             (11 * i) % 40, seed * 100_000 + i) for i, n in enumerate(lengths)]
    _run_short(jobs, int(spec.params["ct_crop"]))


def _run_short(jobs: list[Any], ct_crop: int) -> None:
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, initializer=_short_init,
                             initargs=(ct_crop,)) as pool:
        list(pool.map(_short_series, jobs, chunksize=4))


def expected_files(spec: Spec) -> int:
    """How many files a built data set holds (study30's series vary in length)."""
    if spec.kind == "study30":
        rng = random.Random(int(spec.params["seed"]))
        lo, hi = int(spec.params["min_slices"]), int(spec.params["max_slices"])
        return sum(rng.randint(lo, hi) for _ in range(spec.series))
    return spec.files


BUILDERS: dict[str, Callable[[Spec, Path], None]] = {
    "ct_study": build_ct_study,
    "many_small": build_many_small,
    "j2k_ct": build_j2k_ct,
    "archive": build_archive,
    "study30": build_study30,
}


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def is_current(spec: Spec) -> bool:
    try:
        current = json.loads(spec.marker.read_text()) == spec.marker_payload()
        return bool(current) and spec.path.is_dir()
    except (OSError, ValueError):
        return False


def ensure(spec: Spec, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Build ``spec`` unless an up-to-date copy is cached; returns its folder."""
    if not force and is_current(spec):
        return spec.path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = DATA_DIR / f"{spec.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    log(f"building {spec.name}: {spec.description} ...")
    t0 = time.perf_counter()
    BUILDERS[spec.kind](spec, partial)
    n = sum(1 for p in partial.rglob("*") if p.is_file())
    if n != expected_files(spec):
        raise RuntimeError(f"{spec.name}: built {n} files, expected {expected_files(spec)}")
    spec.marker.unlink(missing_ok=True)
    shutil.rmtree(spec.path, ignore_errors=True)
    partial.rename(spec.path)
    spec.marker.write_text(json.dumps(spec.marker_payload(), indent=2) + "\n")
    size = sum(p.stat().st_size for p in spec.path.rglob("*") if p.is_file()) / 2**20
    log(f"built {spec.name}: {n} files, {size:.0f} MiB in {time.perf_counter() - t0:.0f} s")
    return spec.path


def data_files(spec: Spec) -> list[Path]:
    """The DICOM files of a built data set (nested folders included)."""
    return [p for p in spec.path.rglob("*") if p.is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the benchmark data sets (cached).")
    ap.add_argument("--quick", action="store_true", help="the small variants")
    ap.add_argument("--only", action="append", choices=sorted(BUILDERS), help="one data set")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args(argv)
    for base, spec in specs(args.quick).items():
        if args.only and base not in args.only:
            continue
        path = ensure(spec, force=args.force)
        print(f"{spec.name}: {path} ({spec.description})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

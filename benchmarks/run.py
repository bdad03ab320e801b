#!/usr/bin/env python3
"""dicomvol benchmark suite: wall time, CPU time and peak memory against other converters.

Usage::

    python benchmarks/run.py                 # full data, 3 timed runs per cell (make bench)
    python benchmarks/run.py --quick         # small data, 1 timed run: a smoke test
    python benchmarks/run.py --only ct_study --only dicomvol --only dcm2niix
    python benchmarks/run.py --runs 5 --timeout 1200
    python benchmarks/run.py --rss           # the study30 peak-RSS rows of issue 15
    python benchmarks/run.py --rss --dcm2niix /path/to/dcm2niix   # from a dev venv

``--only`` takes data set names (ct_study, many_small, j2k_ct, archive, study30), tool names
(dicomvol, dicomvol-j1 (only when named), dicomvol-base, dcm2niix, dicom2nifti, sitk,
io-floor) or ``help`` (the ``dicomvol --help`` start-up time); names of one kind restrict that
kind only. Results go to
``benchmarks/results/latest.{json,md}``.

Two installs of dicomvol are measured side by side: ``dicomvol`` is the full install of the
interpreter running this script (``make bench``: ``.venv-bench``, ``pip install -e '.[all]'``
plus the baselines), ``dicomvol-base`` the base install in ``--base-venv`` (default
``.venv-bench-base``, ``pip install -e .``). ``io-floor`` is the physical reference: reading
every input file (``cat`` to /dev/null) and writing as many output bytes as dicomvol wrote
(``dd``), so the distance to the I/O limit is visible.

Every tool runs as a subprocess into a fresh, empty output folder. For each process the runner
gets ``struct rusage`` from ``os.wait4`` on the child's pid: CPU = ``ru_utime + ru_stime`` (the
child plus every descendant it waited for, e.g. dicomvol's worker processes), peak RSS =
``ru_maxrss`` (the largest single process in that tree), as GNU time (``/usr/bin/time``, which
the tool runs under when present) reports it for the tool it forks: the runner's own wait4 would
include the runner's resident size at spawn time (vfork + exec). A sampling thread also records
the peak of the summed PSS of the whole process tree (every 0.1 s from
``/proc/PID/smaps_rollup``), which is the honest memory figure for multi-process tools. OS
caches cannot be dropped here (no root required, no ``/proc/sys/vm/drop_caches``), so every
(data set, tool) pair gets one untimed warm-up run first and all numbers are **warm-cache** numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import data as bench_data  # noqa: E402  (benchmarks/data.py, next to this file)

# The tools of the interpreter running this script (make bench: .venv-bench).
BIN = Path(sys.executable).parent
PYTHON = BIN / "python" if (BIN / "python").exists() else Path(sys.executable)
RESULTS = HERE / "results"
SCRATCH = bench_data.DATA_DIR / "_scratch"

#: format name -> (-z flag, file extension)
FORMATS: dict[str, tuple[str, str]] = {"nii": ("n", ".nii"), "nii.gz": ("y", ".nii.gz")}
TOOL_ORDER = ("dicomvol", "dicomvol-j1", "dicomvol-qc", "dicomvol-base", "dcm2niix",
              "dicom2nifti", "sitk", "io-floor")
#: ``--rss``: the peak-RSS rows of issue 15 (study30, both formats, dicomvol with its default
#: -j and with -j 1 against dcm2niix), whatever the other options say about data and tools.
RSS_PRESET = ("study30", "dicomvol", "dicomvol-j1", "dcm2niix")
#: Tools measured only when named (--only, --rss).
OPT_IN_TOOLS = ("dicomvol-j1",)
DATASET_ORDER = ("ct_study", "many_small", "j2k_ct", "archive", "study30")
#: The base-install venv and the venv of the Python peers (``make bench`` builds both; the
#: peers live apart because dicom2nifti pulls in python-gdcm, which would change the JPEG 2000
#: decoder of a full dicomvol install).
BASE_VENV = REPO / ".venv-bench-base"
PEERS_VENV = REPO / ".venv-bench-peers"
REFERENCE = "dcm2niix"
#: Tools whose number of timed runs --baseline-runs may lower (they take minutes per run).
SLOW_BASELINES = ("dicom2nifti", "sitk")

DICOM2NIFTI_SCRIPT = (
    "import sys, logging, dicom2nifti\n"
    "logging.disable(logging.WARNING)\n"
    "dicom2nifti.convert_directory(sys.argv[1], sys.argv[2], "
    "compression=sys.argv[3] == 'y', reorient=False)\n"
)


@dataclass(frozen=True)
class Target:
    """A goal for dicomvol (issue 5), judged on the median of the full-size data."""

    dataset: str | None  # None: every data set
    fmt: str | None  # None: every format
    metric: str  # "wall_ratio" | "rss_ratio" | "qc_ratio"
    limit: float
    text: str


#: Targets of issue 15 (archive-scale cost), for the full install ("dicomvol").
TARGETS = (
    Target("ct_study", None, "wall_ratio", 0.5, "CT study wall <= 0.5x dcm2niix"),
    Target("many_small", None, "wall_ratio", 0.6, "4,000 small files wall <= 0.6x dcm2niix"),
    Target("archive", None, "wall_ratio", 0.6, "1,000 short series wall <= 0.6x dcm2niix"),
    Target("j2k_ct", None, "wall_ratio", 0.4, "JPEG 2000 wall <= 0.4x dcm2niix"),
    Target(None, None, "rss_ratio", 1.0, "peak RSS <= 1.0x dcm2niix"),
)
HELP_TARGET_S = 0.15
#: The tool whose rows the targets judge.
TARGET_TOOL = "dicomvol"
#: Issue 14: ``convert --qc`` (thumbnails + qc/index.html) costs at most this much wall time
#: more than ``convert`` on the CT study (ratio of medians, dicomvol-qc / dicomvol).
QC_TARGET = Target("ct_study", None, "qc_ratio", 1.10, "CT --qc wall <= 1.10x without --qc")


# --------------------------------------------------------------------------------------------
# Machine and tools
# --------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model(),
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "libraries": library_versions(),
    }


#: The libraries whose versions move dicomvol's numbers (numpy 2.4 added 5.4 MiB to the
#: resident size of every process that imports it: the study30 RSS target changed sides).
LIBRARIES = ("numpy", "pydicom", "nibabel", "isal", "pylibjpeg-openjpeg", "pyarrow")


def library_versions() -> dict[str, str | None]:
    """The installed versions of :data:`LIBRARIES` in this interpreter's environment (the
    full install; None where one is not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def source_state() -> dict[str, Any]:
    """The commit being measured and whether src/ has uncommitted changes."""
    def git(*a: str) -> str:
        try:
            proc = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "src_dirty_files": dirty}


def _py_version(module: str, dist: str, python: Path = PYTHON) -> tuple[bool, str]:
    """Whether the venv's python can import ``module``, and the distribution's version."""
    code = (f"import importlib.metadata as m, {module}\n"
            f"print(m.version({dist!r}))")
    try:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
        return False, last
    return True, proc.stdout.strip()


def find_pigz(dcm2niix: Path) -> str | None:
    """Where dcm2niix would find pigz: next to its executable, else on PATH."""
    beside = dcm2niix.parent / "pigz"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("pigz", path=child_env()["PATH"])


#: Bytecode cache of the Python tools (the environment may set PYTHONDONTWRITEBYTECODE; without
#: a cache every run would recompile dicomvol's sources, which is not a warm-cache number).
PYCACHE = bench_data.DATA_DIR / "pycache"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def pydicom_decoders() -> dict[str, list[str]]:
    """pydicom's available decoder plugins per compressed syntax used here, in the order tried.

    dicomvol (via ``ds.pixel_array``) uses the first one that works, so installing
    python-gdcm (a dependency of dicom2nifti) changes which JPEG 2000 decoder dicomvol runs.
    """
    code = ("import json\n"
            "from pydicom.pixels.decoders import JPEG2000LosslessDecoder as J\n"
            "print(json.dumps({'JPEG2000Lossless': list(J.available_plugins)}))")
    try:
        proc = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True,
                              timeout=120, env=child_env())
        return dict(json.loads(proc.stdout)) if proc.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}


@dataclass
class Tool:
    name: str
    available: bool
    version: str
    note: str
    build: Callable[[Path, Path, str], list[str]] = field(repr=False)

    def command(self, data: Path, out: Path, z: str) -> list[str]:
        return self.build(data, out, z)


def _extras(python: Path) -> str:
    """Which optional dependencies a venv has (pyarrow, distributed, fsspec, ...)."""
    code = ("import importlib.util as u\n"
            "print(','.join(m for m in ('pyarrow', 'distributed', 'fsspec', 's3fs', "
            "'SimpleITK', 'highdicom', 'tifffile', 'zarr', 'imagecodecs') "
            "if u.find_spec(m)))")
    try:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return proc.stdout.strip() or "none"


def discover_tools(base_venv: Path = BASE_VENV, peers_venv: Path = PEERS_VENV,
                   dcm2niix: Path | None = None) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    dicomvol = BIN / "dicomvol"
    ok, ver = _py_version("dicomvol", "dicomvol")
    tools["dicomvol"] = Tool(
        "dicomvol", ok and dicomvol.exists(), ver if ok else "",
        (f"full install ({sys.prefix}; extras: {_extras(PYTHON)}), default -j (all cores; "
         "small inputs in-process)" if ok else f"not importable: {ver}"),
        lambda d, o, z: [str(dicomvol), "convert", str(d), "-o", str(o), "-z", z, "-q"],
    )
    tools["dicomvol-j1"] = Tool(
        "dicomvol-j1", ok and dicomvol.exists(), ver if ok else "",
        "full install, -j 1: everything in one process (its peak RSS is the whole run's)",
        lambda d, o, z: [str(dicomvol), "convert", str(d), "-o", str(o), "-z", z, "-q",
                         "-j", "1"],
    )
    base = base_venv / "bin" / "dicomvol"
    tools["dicomvol-base"] = Tool(
        "dicomvol-base", base.exists(), ver if base.exists() else "",
        (f"base install ({base_venv}; extras: {_extras(base_venv / 'bin' / 'python')})"
         if base.exists() else f"no base install at {base_venv} (make bench builds it)"),
        lambda d, o, z: [str(base), "convert", str(d), "-o", str(o), "-z", z, "-q"],
    )
    tools["io-floor"] = Tool(
        "io-floor", True, "cat + dd",
        "read every input file (cat > /dev/null), write dicomvol's output bytes (dd)",
        lambda d, o, z: [],  # built per cell by io_floor_command (needs the output size)
    )
    tools["dicomvol-qc"] = Tool(
        "dicomvol-qc", ok and dicomvol.exists(), ver if ok else "",
        "full install, convert --qc: thumbnails in each job and qc/index.html (issue 14)",
        lambda d, o, z: [str(dicomvol), "convert", str(d), "-o", str(o), "-z", z, "-q", "--qc"],
    )
    dcm = dcm2niix or BIN / "dcm2niix"
    if dcm2niix is None and not dcm.exists():
        found = shutil.which("dcm2niix")
        dcm = Path(found) if found else dcm
    if dcm.exists():
        first = subprocess.run([str(dcm), "--version"], capture_output=True, text=True)
        lines = (first.stdout + first.stderr).strip().splitlines()
        version = lines[-1] if lines else "?"
        pigz = find_pigz(dcm)
        note = (f"-z y compresses with pigz ({pigz})" if pigz
                else "-z y compresses with its internal zlib (no pigz found)")
        tools["dcm2niix"] = Tool("dcm2niix", True, version, note,
                                 lambda d, o, z: [str(dcm), "-z", z, "-b", "y", "-o", str(o),
                                                  str(d)])
    else:
        tools["dcm2niix"] = Tool("dcm2niix", False, "", "dcm2niix not found",
                                 lambda d, o, z: [])
    peers = peers_venv / "bin" / "python"
    peers = peers if peers.exists() else PYTHON
    ok, ver = _py_version("dicom2nifti", "dicom2nifti", peers)
    tools["dicom2nifti"] = Tool(
        "dicom2nifti", ok, ver if ok else "",
        "convert_directory(reorient=False), one process" if ok else f"skipped: {ver}",
        lambda d, o, z: [str(peers), "-c", DICOM2NIFTI_SCRIPT, str(d), str(o), z],
    )
    ok, ver = _py_version("SimpleITK", "SimpleITK", peers)
    tools["sitk"] = Tool(
        "sitk", ok, ver if ok else "",
        "ImageSeriesReader per GDCM series ID + WriteImage" if ok else f"skipped: {ver}",
        lambda d, o, z: [str(peers), str(HERE / "sitk_convert.py"), str(d), str(o), z],
    )
    return tools


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            except OSError:
                continue
            kids.extend(int(x) for x in text.split())
    except OSError:
        pass
    return kids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of a process and all its descendants, sampled."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.supported = Path(f"/proc/{os.getpid()}/smaps_rollup").exists()
        self._stop_event = threading.Event()

    def run(self) -> None:
        if not self.supported:
            return
        while not self._stop_event.is_set():
            total, todo, seen = 0, [self.pid], set()
            while todo:
                p = todo.pop()
                if p in seen:
                    continue
                seen.add(p)
                total += _pss_kib(p)
                todo.extend(_children(p))
            self.peak_kib = max(self.peak_kib, total)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def cpu_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait: float, threshold: float = 0.3, window: float = 0.5) -> float | None:
    """Wait (at most ``max_wait`` s) until other processes use < ``threshold`` cores.

    Returns the background load (cores) of the last ``window``. Other work on a shared machine
    cannot be stopped from here; this only avoids starting a run in the middle of a burst.
    """
    deadline = time.monotonic() + max_wait
    load = None
    while True:
        a = cpu_busy_seconds()
        time.sleep(window)
        b = cpu_busy_seconds()
        if a is None or b is None:
            return None
        load = (b - a) / window
        if load < threshold or time.monotonic() >= deadline:
            return load


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    maxrss_mib: float
    tree_pss_mib: float | None
    returncode: int
    outputs: int
    output_mib: float = 0.0  # total size of the image files written (compression ratio)
    timed_out: bool = False
    log_tail: str = ""
    #: Cores used by everything else on the machine during the run (machine busy time from
    #: /proc/stat minus the tool's own CPU time, over the wall time); noise indicator.
    background_cores: float | None = None
    #: Background load just before the run (after the bounded quiet wait).
    background_before: float | None = None


def outputs_of(out: Path, ext: str) -> list[Path]:
    """The image files a tool wrote (``*.nii`` or ``*.nii.gz``; hidden temporaries excluded)."""
    return [p for p in out.rglob(f"*{ext}") if p.is_file() and not p.name.startswith(".")]


def measure(cmd: Sequence[str], out: Path | None, ext: str, timeout: float,
            sample_memory: bool = True, quiet_wait: float = 0.0) -> Sample:
    """Run ``cmd`` once; ``out`` (if given) is emptied first and counted afterwards."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    before = wait_for_quiet(quiet_wait) if quiet_wait > 0 else None
    SCRATCH.mkdir(parents=True, exist_ok=True)
    log_path = SCRATCH / "last_run.log"
    timed_out = threading.Event()
    with open(log_path, "wb") as log:
        busy0 = cpu_busy_seconds()
        t0 = time.perf_counter()
        rss_file = SCRATCH / "last_run.maxrss"
        rss_file.unlink(missing_ok=True)
        proc = subprocess.Popen([*peak_wrapper(rss_file), *cmd], stdin=subprocess.DEVNULL,
                                stdout=log,
                                stderr=subprocess.STDOUT, env=child_env(),
                                start_new_session=True)
        sampler = TreeSampler(proc.pid) if sample_memory else None
        if sampler is not None:
            sampler.start()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the child started above

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            wall = time.perf_counter() - t0
            busy1 = cpu_busy_seconds()
            timer.cancel()
            if sampler is not None:
                sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    tail = ""
    if proc.returncode != 0 or timed_out.is_set():
        tail = log_path.read_text(errors="replace")[-2000:]
    files = outputs_of(out, ext) if out is not None else []
    n_out = len(files)
    out_mib = sum(p.stat().st_size for p in files) / 2**20
    cpu = ru.ru_utime + ru.ru_stime
    background = (None if busy0 is None or busy1 is None or wall <= 0
                  else max(0.0, (busy1 - busy0 - cpu) / wall))
    return Sample(
        wall_s=wall,
        cpu_s=cpu,
        user_s=ru.ru_utime,
        sys_s=ru.ru_stime,
        maxrss_mib=tool_maxrss_kib(rss_file, ru.ru_maxrss) / 1024.0,
        tree_pss_mib=(sampler.peak_kib / 1024.0
                      if sampler is not None and sampler.supported and sampler.peak_kib
                      else None),
        returncode=proc.returncode,
        outputs=n_out,
        output_mib=out_mib,
        timed_out=timed_out.is_set(),
        log_tail=tail,
        background_cores=background,
        background_before=before,
    )


#: GNU time reports the ru_maxrss of the tool it forks (KiB). Without it the runner's own
#: wait4 is used, which on Linux includes the runner's resident size when it spawned the
#: child (vfork + exec hands the parent's high-water mark to the child: every tool then
#: reads at least the runner's ~46 MiB, as io-floor's cat and dd did).
GNU_TIME = Path("/usr/bin/time")


def peak_wrapper(rss_file: Path) -> list[str]:
    """The command prefix that records the tool's own peak RSS into ``rss_file``."""
    if GNU_TIME.is_file() and os.access(GNU_TIME, os.X_OK):
        return [str(GNU_TIME), "-f", "%M", "-o", str(rss_file)]
    return []


def tool_maxrss_kib(rss_file: Path, fallback_kib: int) -> float:
    """The tool's peak RSS in KiB from GNU time's file, else wait4's (see GNU_TIME)."""
    try:
        return float(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return float(fallback_kib)


def io_floor_command(data: Path, out: Path, mib: float) -> list[str]:
    """Read every input (``cat`` to /dev/null) and write ``mib`` MiB (``dd``): the I/O floor."""
    count = max(1, round(mib))
    script = (f'find "$1" -type f -print0 | xargs -0 cat > /dev/null && '
              f'dd if=/dev/zero of="$2/floor.nii" bs=1M count={count} status=none')
    return ["sh", "-c", script, "io-floor", str(data), str(out)]


def settle(out: Path | None) -> None:
    """Remove a run's outputs and flush dirty pages, so the next run does not pay for them."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    os.sync()


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    dataset: str
    fmt: str
    tool: str
    expected_outputs: int
    files: int = 0
    samples: list[Sample] = field(default_factory=list)
    wall_ratio: float | None = None
    cpu_ratio: float | None = None
    rss_ratio: float | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok_samples(self) -> list[Sample]:
        return [s for s in self.samples if s.returncode == 0 and not s.timed_out]

    def median(self, attr: str) -> float | None:
        vals = [getattr(s, attr) for s in self.ok_samples if getattr(s, attr) is not None]
        return statistics.median(vals) if vals else None

    @property
    def failed(self) -> bool:
        return not self.ok_samples

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "samples"}
        d["samples"] = [asdict(s) for s in self.samples]
        for attr in ("wall_s", "cpu_s", "user_s", "sys_s", "maxrss_mib", "tree_pss_mib",
                     "background_cores", "output_mib"):
            d[f"median_{attr}"] = self.median(attr)
        walls = [x.wall_s for x in self.ok_samples]
        d["min_wall_s"] = min(walls) if walls else None
        d["max_wall_s"] = max(walls) if walls else None
        d["outputs"] = self.samples[-1].outputs if self.samples else None
        d["failed"] = self.failed
        wall = self.median("wall_s")
        d["files_per_s"] = self.files / wall if wall else None
        d["ms_per_series"] = 1000 * wall / self.expected_outputs if wall and \
            self.expected_outputs else None
        return d


def evaluate(rows: list[Row]) -> None:
    ref = {(r.dataset, r.fmt): r for r in rows if r.tool == REFERENCE and not r.failed}
    for r in rows:
        base = ref.get((r.dataset, r.fmt))
        wall, rss = r.median("wall_s"), r.median("maxrss_mib")
        if base is not None and wall is not None and rss is not None:
            bw, br = base.median("wall_s"), base.median("maxrss_mib")
            bc, cpu = base.median("cpu_s"), r.median("cpu_s")
            r.wall_ratio = wall / bw if bw else None
            r.cpu_ratio = cpu / bc if bc and cpu is not None else None
            r.rss_ratio = rss / br if br else None
        if r.tool == "dicomvol-qc":
            _qc_target(r, rows)
        if r.tool != TARGET_TOOL:
            continue
        for t in TARGETS:
            if (t.dataset not in (None, r.dataset)) or (t.fmt not in (None, r.fmt)):
                continue
            value = r.wall_ratio if t.metric == "wall_ratio" else r.rss_ratio
            met = None if value is None or r.failed else value <= t.limit
            r.targets.append({"target": t.text, "metric": t.metric, "limit": t.limit,
                              "value": value, "met": met})


def _qc_target(r: Row, rows: list[Row]) -> None:
    """Judge ``convert --qc`` against plain ``convert`` on the same data and format."""
    t = QC_TARGET
    if t.dataset != r.dataset:
        return
    plain = next((x for x in rows if x.tool == "dicomvol" and x.dataset == r.dataset
                  and x.fmt == r.fmt and not x.failed), None)
    wall, base = r.median("wall_s"), plain.median("wall_s") if plain else None
    value = wall / base if wall is not None and base else None
    met = None if value is None or r.failed else value <= t.limit
    r.targets.append({"target": t.text, "metric": t.metric, "limit": t.limit,
                      "value": value, "met": met})


def fmt_num(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def target_cell(row: Row) -> str:
    parts = []
    for t in row.targets:
        what = {"wall_ratio": "wall", "rss_ratio": "RSS", "qc_ratio": "wall/no-qc"}[t["metric"]]
        state = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        parts.append(f"{what}<={t['limit']:g}x {state}")
    return "; ".join(parts)


TABLE_HEAD = ("dataset", "format", "tool", "wall s", "CPU s", "peak RSS MiB", "tree PSS MiB",
              "wall/dcm2niix", "CPU/dcm2niix", "RSS/dcm2niix", "files/s", "ms/series",
              "outputs", "out MiB", "bg cores", "target (issue 15)")


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in rows:
        if r.failed:
            reason = "timed out" if any(s.timed_out for s in r.samples) else (
                f"FAILED rc={r.samples[-1].returncode}" if r.samples else "not run")
            out.append((r.dataset, r.fmt, r.tool, reason, "-", "-", "-", "-", "-", "-", "-",
                        "-", str(r.samples[-1].outputs) if r.samples else "-", "-", "-",
                        target_cell(r)))
            continue
        outputs = str(r.ok_samples[-1].outputs)
        if r.ok_samples[-1].outputs != r.expected_outputs and r.tool != "io-floor":
            outputs += f" (expected {r.expected_outputs})"
        wall = r.median("wall_s") or 0.0
        rate = f"{r.files / wall:.0f}" if wall else "-"
        per_series = f"{1000 * wall / r.expected_outputs:.1f}" if wall else "-"
        out.append((
            r.dataset, r.fmt, r.tool,
            fmt_num(r.median("wall_s")), fmt_num(r.median("cpu_s")),
            fmt_num(r.median("maxrss_mib"), 0), fmt_num(r.median("tree_pss_mib"), 0),
            fmt_num(r.wall_ratio), fmt_num(r.cpu_ratio), fmt_num(r.rss_ratio), rate, per_series,
            outputs,
            fmt_num(r.median("output_mib"), 0), fmt_num(r.median("background_cores"), 1),
            target_cell(r),
        ))
    return out


def render_text(head: Sequence[str], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i])
              for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for b in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip())
    return "\n".join(lines)


def render_md(head: Sequence[str], body: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def measure_help(runs: int, timeout: float, quiet_wait: float) -> dict[str, Any]:
    """Median wall time of ``dicomvol --help`` (and of a bare interpreter, for context)."""
    res: dict[str, Any] = {}
    for key, cmd in (("dicomvol_help", [str(BIN / "dicomvol"), "--help"]),
                     ("python_startup", [str(PYTHON), "-c", "pass"]),
                     ("import_dicomvol", [str(PYTHON), "-c", "import dicomvol"])):
        measure(cmd, None, "", timeout, sample_memory=False)  # warm-up
        samples = [measure(cmd, None, "", timeout, sample_memory=False,
                           quiet_wait=min(quiet_wait, 3.0)) for _ in range(runs)]
        walls = [s.wall_s for s in samples]
        res[key] = {"median_wall_s": statistics.median(walls), "min_wall_s": min(walls),
                    "runs": runs, "returncode": samples[-1].returncode,
                    "median_maxrss_mib": statistics.median(s.maxrss_mib for s in samples),
                    "median_background_cores": statistics.median(
                        s.background_cores or 0.0 for s in samples)}
    res["target_s"] = HELP_TARGET_S
    res["met"] = res["dicomvol_help"]["median_wall_s"] <= HELP_TARGET_S
    return res


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small data variants and 1 timed run (a smoke test; ratios are "
                         "indicative only)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="restrict to a data set, a tool, or 'help' (repeatable)")
    ap.add_argument("--runs", type=int, default=None,
                    help="timed runs per cell (default 3, 1 with --quick); the median is "
                         "reported")
    ap.add_argument("--baseline-runs", type=int, default=None,
                    help="timed runs for the slow Python baselines (dicom2nifti, sitk); "
                         "default: same as --runs")
    ap.add_argument("--help-runs", type=int, default=10, help="runs of dicomvol --help")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds before one run is killed and marked timed out")
    ap.add_argument("--quiet-wait", type=float, default=5.0,
                    help="before each timed run, wait up to this many seconds for other "
                         "processes to use < 0.3 cores (0: do not wait)")
    ap.add_argument("--formats", default="nii,nii.gz", help="comma-separated: nii,nii.gz")
    ap.add_argument("--base-venv", type=Path, default=BASE_VENV,
                    help="venv of the base install measured as dicomvol-base "
                         "(default .venv-bench-base)")
    ap.add_argument("--peers-venv", type=Path, default=PEERS_VENV,
                    help="venv with dicom2nifti and SimpleITK (default .venv-bench-peers)")
    ap.add_argument("--dcm2niix", type=Path, default=None, metavar="PATH",
                    help="the dcm2niix binary (default: next to this interpreter, else PATH)")
    ap.add_argument("--rss", action="store_true",
                    help="the study30 peak-RSS rows of issue 15: --only study30 --only "
                         "dicomvol --only dicomvol-j1 --only dcm2niix (both formats)")
    ap.add_argument("--output", type=Path, default=RESULTS / "latest",
                    help="results path without extension (default benchmarks/results/latest)")
    args = ap.parse_args(argv)
    if args.rss:
        args.only = list(RSS_PRESET)
        args.formats = "nii,nii.gz"
    known = set(DATASET_ORDER) | set(TOOL_ORDER) | {"help"}
    for name in args.only:
        if name not in known:
            ap.error(f"--only {name}: expected one of {', '.join(sorted(known))}")
    args.runs = args.runs or (1 if args.quick else 3)
    args.baseline_runs = min(args.baseline_runs or args.runs, args.runs)
    args.formats = [f for f in args.formats.split(",") if f]
    for f in args.formats:
        if f not in FORMATS:
            ap.error(f"unknown format {f!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only)
    ds_sel, tool_sel = only & set(DATASET_ORDER), only & set(TOOL_ORDER)
    # No --only: everything. Otherwise data sets default to all when only tools are named,
    # tools default to all, and --help is timed only when "help" is named.
    datasets = [d for d in DATASET_ORDER
                if d in ds_sel or (not ds_sel and (tool_sel or not only))]
    tool_names = [t for t in TOOL_ORDER if t in tool_sel or (
        not tool_sel and t not in OPT_IN_TOOLS)]
    do_help = not only or "help" in only

    machine = machine_info()
    source = source_state()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    log(f"machine: {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"CPU: {machine['cpu_model']}, {machine['memory_gib']} GiB, {machine['platform']}")
    log(f"dicomvol source: commit {source['commit']}"
        + (f", {len(source['src_dirty_files'])} uncommitted file(s) in src/"
           if source["src_dirty_files"] else ", src/ clean"))
    la = machine["loadavg_at_start"]
    log(f"load average at start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
        + ("  (busy machine: wall times will be noisy; see the bg cores column)"
           if la[0] > 0.5 * (machine["usable_cores"] or 1) else ""))
    log(f"mode: {'quick' if args.quick else 'full'}; {args.runs} timed run(s) per cell, median "
        f"reported; WARM CACHE (one untimed warm-up run per tool and data set first; OS caches "
        f"are not dropped)")

    tools = discover_tools(args.base_venv, args.peers_venv, args.dcm2niix)
    for t in tools.values():
        state = f"version {t.version}" if t.available else "SKIPPED"
        log(f"tool {t.name}: {state}; {t.note}")
    active = [tools[n] for n in tool_names if tools[n].available]
    decoders = pydicom_decoders()
    for syntax, plugins in decoders.items():
        log(f"pydicom {syntax} decoders (first available is used): {', '.join(plugins)}")

    specs = bench_data.specs(args.quick)
    rows: list[Row] = []
    t_start = time.perf_counter()
    for ds_name in datasets:
        spec = specs[ds_name]
        path = bench_data.ensure(spec, log=log)
        log(f"\n== {spec.name}: {spec.description} "
            f"({len(bench_data.data_files(spec))} files)")
        n_files = len(bench_data.data_files(spec))
        ds_rows = {(t.name, f): Row(ds_name, f, t.name, spec.series, n_files)
                   for f in args.formats for t in active}
        for tool in active:  # warm-up: page cache, imports, dcm2niix binary
            if tool.name == "io-floor":
                continue
            z, ext = FORMATS[args.formats[0]]
            out = SCRATCH / "out"
            s = measure(tool.command(path, out, z), out, ext, args.timeout)
            settle(out)
            log(f"  warm-up {tool.name:<11} {s.wall_s:7.2f} s  rc={s.returncode}"
                + (" (timed out)" if s.timed_out else ""))
        for run in range(args.runs):
            for f in args.formats:
                z, ext = FORMATS[f]
                for tool in active:
                    row = ds_rows[(tool.name, f)]
                    # A tool that timed out once is not run again for this cell.
                    if any(x.timed_out for x in row.samples):
                        continue
                    if tool.name in SLOW_BASELINES and run >= args.baseline_runs:
                        continue
                    out = SCRATCH / "out"
                    if tool.name == "io-floor":
                        written = [x.output_mib for x in ds_rows.get(
                            ("dicomvol", f), ds_rows.get((REFERENCE, f), row)).ok_samples]
                        cmd = io_floor_command(path, out, statistics.median(written)
                                               if written else 1.0)
                        s = measure(cmd, out, ".nii", args.timeout, quiet_wait=args.quiet_wait)
                    else:
                        s = measure(tool.command(path, out, z), out, ext, args.timeout,
                                    quiet_wait=args.quiet_wait)
                    settle(out)
                    row.samples.append(s)
                    flag = "" if s.returncode == 0 else f"  rc={s.returncode}"
                    if s.timed_out:
                        flag += "  TIMED OUT"
                    pss = "-" if s.tree_pss_mib is None else f"{s.tree_pss_mib:.0f}"
                    bg = "-" if s.background_cores is None else f"{s.background_cores:.1f}"
                    log(f"  run {run + 1}/{args.runs} {f:<6} {tool.name:<11} "
                        f"wall {s.wall_s:7.2f} s  cpu {s.cpu_s:7.2f} s  "
                        f"rss {s.maxrss_mib:6.0f} MiB  tree pss {pss:>5} MiB  "
                        f"outputs {s.outputs} ({s.output_mib:.0f} MiB)  bg {bg} cores{flag}")
                    if s.returncode != 0 and s.log_tail:
                        log("    " + s.log_tail.strip().replace("\n", "\n    ")[-800:])
        for row in ds_rows.values():
            if row.tool.startswith("dicomvol") and not row.failed:
                got = row.ok_samples[-1].outputs
                if got != spec.series:
                    row.notes.append(f"CORRECTNESS: {got} outputs, expected {spec.series}")
            elif row.failed:
                row.notes.append("failed or timed out")
        rows.extend(ds_rows.values())
    evaluate(rows)

    help_res = None
    if do_help and tools["dicomvol"].available:
        log(f"\n== dicomvol --help ({args.help_runs} runs, median)")
        help_res = measure_help(args.help_runs, args.timeout, args.quiet_wait)
        h = help_res["dicomvol_help"]["median_wall_s"]
        log(f"  dicomvol --help: {h:.3f} s (target <= {HELP_TARGET_S} s: "
            f"{'met' if help_res['met'] else 'MISSED'}); python -c pass: "
            f"{help_res['python_startup']['median_wall_s']:.3f} s; import dicomvol: "
            f"{help_res['import_dicomvol']['median_wall_s']:.3f} s")

    elapsed = time.perf_counter() - t_start
    head, body = TABLE_HEAD, table_rows(rows)
    correctness = [f"{r.dataset} {r.fmt} {r.tool}: {n}" for r in rows for n in r.notes]
    summary_targets = [
        {"dataset": r.dataset, "format": r.fmt, **t} for r in rows for t in r.targets
    ]
    if help_res is not None:
        summary_targets.append({"dataset": None, "format": None,
                                "target": f"dicomvol --help <= {HELP_TARGET_S} s",
                                "metric": "help_wall_s", "limit": HELP_TARGET_S,
                                "value": help_res["dicomvol_help"]["median_wall_s"],
                                "met": help_res["met"]})

    notes = [
        "Warm-cache numbers: OS caches are not dropped; each tool ran once untimed per data "
        "set before the timed runs.",
        f"Medians over {args.runs} timed run(s) per cell"
        + (f" ({args.baseline_runs} for {', '.join(SLOW_BASELINES)})"
           if args.baseline_runs != args.runs else "")
        + "; CPU = user+sys of the tool and every "
        "descendant it waited for (os.wait4); peak RSS = ru_maxrss (largest single process); "
        "tree PSS = sampled peak (0.1 s) of the summed PSS of the whole process tree.",
        "bg cores = CPU used by other processes on the machine during the timed runs (median; "
        "machine busy time from /proc/stat minus the tool's CPU, over wall). Well above 0 "
        "means the wall times of that row were inflated by other work on the machine.",
        "Ratios are to dcm2niix on the same data set and format; targets apply to dicomvol.",
        f"dcm2niix: {tools['dcm2niix'].note}.",
        "pydicom JPEG 2000 decoders in the venv, in the order tried: "
        + (", ".join(decoders.get("JPEG2000Lossless", [])) or "unknown") + ".",
        "Python tools run with a bytecode cache (PYTHONPYCACHEPREFIX=benchmarks/data/pycache) "
        "so warm runs do not recompile sources.",
        f"dicomvol runs with its default -j (all {machine['usable_cores']} cores); dcm2niix "
        "is single-threaded (plus pigz if found); dicom2nifti and the SimpleITK script run in "
        "one process (their libraries may use threads: CPU > wall shows it).",
    ]
    if args.quick:
        notes.append("QUICK MODE: small data and one run; ratios and targets are indicative "
                     "only.")
    for t in tools.values():
        if not t.available:
            notes.append(f"{t.name} skipped: {t.note}")

    result: dict[str, Any] = {
        "started": started,
        "elapsed_s": elapsed,
        "mode": "quick" if args.quick else "full",
        "machine": machine,
        "source": source,
        "pydicom_decoders": decoders,
        "config": {"runs": args.runs, "baseline_runs": args.baseline_runs,
                   "quiet_wait_s": args.quiet_wait, "timeout_s": args.timeout,
                   "formats": args.formats,
                   "datasets": {d: asdict(specs[d]) for d in datasets},
                   "warm_cache": True},
        "tools": {t.name: {"available": t.available, "version": t.version, "note": t.note}
                  for t in tools.values()},
        "rows": [r.summary() for r in rows],
        "help": help_res,
        "targets": summary_targets,
        "correctness": correctness or ["ok: dicomvol wrote one volume per series everywhere"],
        "notes": notes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.output.with_suffix(".json")
    md_path = args.output.with_suffix(".md")
    json_path.write_text(json.dumps(result, indent=2) + "\n")

    md = [f"# dicomvol benchmark ({result['mode']}, {started})", "",
          f"Machine: {machine['cores']} cores ({machine['usable_cores']} usable), "
          f"{machine['cpu_model']}, {machine['memory_gib']} GiB RAM, {machine['platform']}, "
          f"Python {machine['python']}.", "",
          f"dicomvol source: commit {source['commit']}"
          + (f" + uncommitted changes in {', '.join(source['src_dirty_files'])}"
             if source["src_dirty_files"] else "") + ".", "",
          "Tools: " + "; ".join(f"{t.name} {t.version or '(skipped)'}" for t in tools.values()),
          "", "Libraries (full install): " + ", ".join(
              f"{k} {v or '(not installed)'}" for k, v in machine["libraries"].items()),
          "", render_md(head, body), ""]
    if help_res is not None:
        md += [f"`dicomvol --help`: {help_res['dicomvol_help']['median_wall_s']:.3f} s median "
               f"of {args.help_runs} (target <= {HELP_TARGET_S} s: "
               f"{'met' if help_res['met'] else 'MISSED'}); `python -c pass` "
               f"{help_res['python_startup']['median_wall_s']:.3f} s; `import dicomvol` "
               f"{help_res['import_dicomvol']['median_wall_s']:.3f} s.", ""]
    md += ["## Targets (issue 15, full install)", ""]
    md += [f"- {t['target']}"
           + (f" [{t['dataset']} {t['format']}]" if t["dataset"] else "")
           + f": {fmt_num(t['value'], 3)} -> "
           + {True: "met", False: "**MISSED**", None: "n/a"}[t["met"]]
           for t in summary_targets]
    md += ["", "## Correctness", ""] + [f"- {c}" for c in result["correctness"]]
    md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md_path.write_text("\n".join(md) + "\n")

    log("\n" + render_text(head, body))
    if help_res is not None:
        log(f"\ndicomvol --help: {help_res['dicomvol_help']['median_wall_s']:.3f} s "
            f"(target <= {HELP_TARGET_S} s: {'met' if help_res['met'] else 'MISSED'})")
    log("\ncorrectness: " + "; ".join(result["correctness"]))
    for n in notes:
        log(f"note: {n}")
    log(f"\nwrote {json_path} and {md_path} ({elapsed / 60:.1f} min)")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    return 1 if correctness else 0


if __name__ == "__main__":
    sys.exit(main())

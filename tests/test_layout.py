"""The package layout: imports follow the pipeline, no circles, small modules and functions.

Every ``import`` in ``src/dicomvol`` (module level, function level and
``TYPE_CHECKING`` blocks alike) is read with ``ast``. A module may import
modules of its own package and of packages on lower floors (the order in
``docs/ARCHITECTURE.md``); ``testing`` stands apart: only the CLI (for the
demo) imports it. There must be no import circle between modules, nor
between packages.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dicomvol"

#: Floors of the pipeline, lowest first; a package imports only packages on lower floors.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("_version", "_typing", "_lazy", "_gc", "constants", "errors", "options"),  # core
    ("model", "inputs"),
    ("dicom", "plan"),
    ("pixels", "metadata", "objects", "slide"),
    ("io",),
    ("report",),
    ("qc",),
    ("batch",),
    ("api",),
    ("__init__",),
    ("cli",),
    ("__main__",),  # python -m dicomvol: the CLI
)
#: The core modules import each other freely (circles among them are still failures).
CORE = set(FLOORS[0])
#: Who may import the apart-standing package ``testing`` (it may import any library floor).
TESTING_USERS = {"cli", "testing"}
#: Longest module (lines) and function body (lines, without its docstring).
MAX_MODULE_LINES = 520
MAX_FUNCTION_LINES = 80
#: A longer function says why in its docstring with this marker.
LONG_FUNCTION_MARKER = "Long:"


def _floor(package: str) -> int:
    for n, names in enumerate(FLOORS):
        if package in names:
            return n
    raise AssertionError(f"package {package!r} has no floor in FLOORS (add it, and to "
                         "docs/ARCHITECTURE.md)")


def _modules() -> dict[str, Path]:
    """dotted name -> file, for every module under src/dicomvol."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _package(module: str) -> str:
    """The top-level package (or core module) a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every dicomvol module ``path`` imports, with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        for name in names:
            if not name.startswith("dicomvol"):
                continue
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name, getattr(node, "lineno", 0)


def _graph() -> dict[str, set[tuple[str, int]]]:
    modules = _modules()
    known = set(modules)
    return {m: set(_imports(p, m, known)) for m, p in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_imports_follow_the_pipeline() -> None:
    wrong = []
    for module, targets in _graph().items():
        here = _package(module)
        for target, line in sorted(targets):
            there = _package(target)
            if there == here or target == "dicomvol" or (here in CORE and there in CORE):
                continue
            if there == "testing":
                if here not in TESTING_USERS:
                    wrong.append(f"{module}:{line} imports {target} (testing stands apart)")
                continue
            if here == "testing":
                continue
            if _floor(there) >= _floor(here):
                wrong.append(f"{module}:{line} imports {target}: {here} (floor "
                             f"{_floor(here)}) may only import lower floors ({there} is on "
                             f"floor {_floor(there)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles_between_modules() -> None:
    edges = {m: {t for t, _ in ts} for m, ts in _graph().items()}
    assert _cycles(edges) == []


def test_no_import_circles_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in _graph().items():
        for target, _ in targets:
            if _package(target) != _package(module) and target != "dicomvol":
                edges[_package(module)].add(_package(target))
    assert _cycles(dict(edges)) == []


def test_every_package_has_a_floor() -> None:
    for module in _modules():
        if module != "dicomvol" and _package(module) != "testing":
            _floor(_package(module))


def test_no_private_names_imported_across_modules() -> None:
    """``from dicomvol.x import _y`` is a private name crossing a module boundary."""
    wrong = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dicomvol"):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name not in ("__version__",):
                        wrong.append(f"{path.relative_to(SRC)}:{node.lineno} {alias.name}")
    assert not wrong, wrong


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES, (
        f"{path.name} has {len(source.splitlines())} lines; split it by concern")
    long = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            doc = ast.get_docstring(node) or ""
            first = body[1] if len(body) > 1 and doc else body[0]
            length = (node.end_lineno or node.lineno) - first.lineno + 1
            if length > MAX_FUNCTION_LINES and LONG_FUNCTION_MARKER not in doc:
                long.append(f"{node.name}: {length} lines")
    assert not long, f"{path.name}: {long} (split, or give the reason: '{LONG_FUNCTION_MARKER}')"

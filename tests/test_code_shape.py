"""The shape of the code, read from its syntax trees and import graph: small modules and functions,
each class declared once, and the dependency directions docs/architecture.md draws.

Imports are followed transitively through the product packages, including imports inside
functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("radassist", "dicom_node", "workers", "hl7_node")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

READ_SIDE = ("radassist.read", "radassist.web.routes.worklist", "radassist.web.routes.system",
             "radassist.web.routes.review", "radassist.web.routes.quality")
"""The read models and the routes that render pages from them."""
WRITE_SIDE = ("radassist.actions", "radassist.intake", "radassist.completion", "radassist.prefetch", "radassist.drafting",
              "radassist.outputs", "radassist.delivery", "radassist.db.transitions")
"""What changes the pipeline's state."""


def _files() -> Iterator[Path]:
    for package in PRODUCT:
        yield from sorted((REPO / package).rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _trees() -> dict[str, tuple[Path, ast.Module]]:
    return {_module(p): (p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p))) for p in _files()}


def _imported(module: str, tree: ast.Module) -> set[str]:
    """Product modules named by the module's import statements (``from a import b`` may name module a.b)."""
    known = _trees()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module if known[module][0].name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


@cache
def _graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(_imported(module, tree)) for module, (_, tree) in _trees().items()}


def _reachable(start: str) -> set[str]:
    graph, seen, todo = _graph(), set(), [start]
    while todo:
        for dependency in graph.get(todo.pop(), ()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def _under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _modules_under(prefixes: Iterable[str]) -> list[str]:
    return sorted(m for m in _trees() if _under(m, prefixes))


def test_the_graph_sees_the_packages() -> None:
    assert _modules_under(READ_SIDE) and _modules_under(WRITE_SIDE)
    assert "radassist.db.tables" in _reachable("radassist.read.worklist")  # the walk follows imports


def test_no_product_module_is_over_the_line_limit() -> None:
    long = {str(p.relative_to(REPO)): n for p, _ in _trees().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_product_function_is_over_the_line_limit() -> None:
    long = {}
    for path, tree in _trees().values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = lines
    assert long == {}


def test_no_class_is_declared_twice() -> None:
    declared = Counter(node.name for _, tree in _trees().values() for node in ast.walk(tree)
                       if isinstance(node, ast.ClassDef))
    assert sorted(name for name, n in declared.items() if n > 1) == []


@pytest.mark.parametrize("module", _modules_under(READ_SIDE))
def test_the_read_side_never_reaches_the_write_side(module: str) -> None:
    assert sorted(m for m in _reachable(module) if _under(m, WRITE_SIDE)) == []


@pytest.mark.parametrize("module", _modules_under(["radassist.web"]))
def test_the_web_app_never_reaches_the_workers(module: str) -> None:
    assert sorted(m for m in _reachable(module) if _under(m, ["workers"])) == []


def test_events_and_the_database_package_do_not_import_each_other() -> None:
    """The database package is the bottom layer: events write rows into it, never the reverse."""
    assert sorted(m for m in _modules_under(["radassist.db"]) if "radassist.events" in _graph()[m]) == []
    assert not any(_under(m, ["radassist.db"]) and not _under(m, ["radassist.db.tables", "radassist.db.base"])
                   for m in _reachable("radassist.events"))


def test_the_core_never_imports_a_process_package() -> None:
    """``radassist`` is the core; the listener, the workers and the inbound HL7 listener depend on it."""
    processes = ["dicom_node", "workers", "hl7_node"]
    offenders = {m: sorted(d for d in _graph()[m] if _under(d, processes))
                 for m in _modules_under(["radassist"]) if m != "radassist.cli"}
    assert {m: d for m, d in offenders.items() if d} == {}

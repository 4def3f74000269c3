"""Core's layering: its modules import each other without cycles, and never a plugin.

The import graph is read from the source with ``ast``: every ``import`` statement of every module
under ``core/src`` counts, at module level, inside functions (deferred imports still run) and
under ``if TYPE_CHECKING:`` (a cycle of type references is still a cycle a reader must follow).
"""

from __future__ import annotations

import ast
import graphlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_SRC = ROOT / "core" / "src"

ALLOWED_TYPE_ONLY = {("torchexec.hookspecs", "torchexec._registry")}
"""Type-only edges a cycle may use: the hook specification names ``ExecutorSpec`` (defined in
the registry, which reads the hook specifications) in an annotation."""


@dataclass(frozen=True)
class Import:
    """One imported module, as written in ``source``."""

    source: str
    target: str
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE_SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    # ``from pkg import mod`` imports the module pkg.mod when there is one
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _parse_imports(source: str, name: str, package: str) -> list[Import]:
    """Every module ``source`` (module ``name`` in ``package``) imports, wherever it does."""
    found: list[Import] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        child: ast.AST
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(Import(name, t, type_only) for t in _imported_names(node, package))
            return
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(ast.parse(source), False)
    return found


def _imports(path: Path) -> list[Import]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return _parse_imports(path.read_text(), name, package)


def _core_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(CORE_SRC.rglob("*.py"))}


def _plugin_packages() -> set[str]:
    return {p.name for p in ROOT.glob("plugins/*/src/*") if (p / "__init__.py").exists()}


Graph = dict[str, set[str]]


def _graph() -> tuple[Graph, dict[tuple[str, str], bool]]:
    """Per core module, the core modules it imports; per edge, whether it is type-only."""
    modules = _core_modules()
    graph: Graph = {name: set() for name in modules}
    type_only: dict[tuple[str, str], bool] = {}
    for name, path in modules.items():
        for imp in _imports(path):
            if imp.target in modules and imp.target != name:
                graph[name].add(imp.target)
                edge = (name, imp.target)
                type_only[edge] = type_only.get(edge, True) and imp.type_only
    return graph, type_only


def _a_cycle(graph: Graph) -> list[str]:
    """One import cycle of ``graph`` (``[a, b, a]``), or ``[]``."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(reversed(exc.args[1]))
    return []


def test_the_graph_sees_core() -> None:
    graph, _ = _graph()
    assert {"torchexec", "torchexec._registry", "torchexec.testing._kit"} <= set(graph)
    assert "torchexec.hookspecs" in graph["torchexec._registry"]
    assert "torchexec.testing._builder" in graph["torchexec.testing.catalog"]
    assert {"torchexec_aten", "torchexec_proxy", "torchexec_torchbind"} <= _plugin_packages()


def test_core_has_no_import_cycles() -> None:
    graph, type_only = _graph()
    for edge in ALLOWED_TYPE_ONLY:
        assert type_only.get(edge), f"{edge} is allowed only as a TYPE_CHECKING import"
    for source, target in ALLOWED_TYPE_ONLY:
        graph[source].discard(target)
    assert " -> ".join(_a_cycle(graph)) == ""


@pytest.mark.parametrize("path", sorted(CORE_SRC.rglob("*.py")), ids=_module_name)
def test_core_never_imports_a_plugin(path: Path) -> None:
    plugins = _plugin_packages()
    imported = {imp.target.split(".")[0] for imp in _imports(path)}
    assert imported & plugins == set()
    # nor names one in code it writes or imports by string (a reproduction script, importlib)
    pattern = re.compile(r"\b(" + "|".join(sorted(plugins)) + r")\b")
    assert pattern.findall(path.read_text()) == []


def test_the_parser_sees_every_kind_of_import() -> None:
    """Relative imports, imports inside functions and under TYPE_CHECKING all count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import _kit\n"
        "if TYPE_CHECKING:\n    import torchexec_proxy\n"
        "def f():\n    from ..testing.catalog import CATALOG\n"
    )
    found = _parse_imports(source, "torchexec.testing._probe", "torchexec.testing")
    targets = {(i.target, i.type_only) for i in found}
    assert ("torchexec.testing._kit", False) in targets
    assert ("torchexec_proxy", True) in targets
    assert ("torchexec.testing.catalog", False) in targets
    cycle = _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycle[0] == cycle[-1] and sorted(cycle[1:]) == ["a", "b", "c"]
    assert _a_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("folder", ["fuzzing", "benchmarks"])
def test_libraries_never_import_the_tests(folder: str) -> None:
    """The fuzzing library and the benchmarks stand below the test tree, not inside it."""
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths
    for path in paths:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found = _parse_imports(path.read_text(), name, name.rpartition(".")[0])
        assert [i.target for i in found if i.target.split(".")[0] == "tests"] == [], path

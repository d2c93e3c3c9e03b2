"""tandem's imports go one way: no cycle between modules, nor between packages.

Every import counts, a lazy one inside a function and a type-only one as much as the rest:
a lazy import is how a cycle hides, and a type-only one still ties two layers together.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

from helpers import REPO_ROOT

SRC = REPO_ROOT / "src"
Graph = Mapping[str, frozenset[str]]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / "tandem").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The tandem modules one import statement loads (``from tandem import x`` is ``x``)."""
    if isinstance(node, ast.Import):
        wanted = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per extra dot
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        wanted = [f"{base}.{alias.name}" for alias in node.names] + [base]
    out: set[str] = set()
    for dotted in wanted:
        target = dotted
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(f"{target}."):
            out.add(target)
    return out


def module_graph() -> Graph:
    """Each tandem module → the tandem modules it imports anywhere in its text."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, frozenset[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(name, path, node, known)
        graph[name] = frozenset(edges)
    return graph


def package_graph(graph: Graph) -> Graph:
    """The same edges between packages (``tandem.agents``, ``tandem.proc``, ...); a module
    of the top package stands for itself."""

    def unit(name: str) -> str:
        parts = name.split(".")
        packaged = len(parts) > 2 or (SRC / "tandem" / parts[-1]).is_dir()
        return ".".join(parts[:2]) if packaged else name

    merged: dict[str, set[str]] = {}
    for name, targets in graph.items():
        merged.setdefault(unit(name), set()).update(unit(t) for t in targets)
    return {k: frozenset(v - {k}) for k, v in merged.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = [stack.pop()]
            while part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other_however_indirectly() -> None:
    assert cycles(module_graph()) == []


def test_no_two_packages_import_each_other() -> None:
    assert cycles(package_graph(module_graph())) == []


def test_cycles_finds_a_ring_and_leaves_a_chain_alone() -> None:
    ring = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}
    assert cycles({**ring, "d": frozenset({"a"})}) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset()}) == []


def test_lazy_type_only_and_package_imports_are_all_edges() -> None:
    graph = module_graph()
    assert "tandem.commands.run" in graph["tandem.cli"]  # inside a function
    assert "tandem.state" in graph["tandem.config"]  # under TYPE_CHECKING
    assert "tandem.proc" in graph["tandem.git"]  # `from tandem import proc`
    assert "tandem.agents" in package_graph(graph)["tandem.commands"]

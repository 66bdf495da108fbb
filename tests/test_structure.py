"""Structural contracts of the package (issue 10): no import cycle among ganaug's modules, a short Trainer."""

from __future__ import annotations

import ast
from pathlib import Path

import ganaug

PACKAGE = Path(ganaug.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every ganaug module ``path`` imports, at the top or inside a function (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    # The package's __init__ re-exports lazily and the CLI sits on top of everything: an edge into either
    # from below is what would be a cycle, so they stay in the graph.
    return {name: imported_modules(path, known) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def without_package_init(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # ``ganaug/__init__`` maps public names to modules through importlib (a lazy table, no import
    # statement) and submodules import ``__version__`` from it: an edge to the package itself is not a cycle.
    return {k: v - {"ganaug"} for k, v in graph.items() if k != "ganaug"}


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_ganaug():
    graph = without_package_init(import_graph())
    assert "ganaug.train.export" in graph and "ganaug.train.checkpoint" in graph["ganaug.train.export"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_trainer_reads_on_one_screen():
    tree = ast.parse((PACKAGE / "train" / "trainer.py").read_text())
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert trainer.end_lineno - trainer.lineno + 1 < 200

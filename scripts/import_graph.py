#!/usr/bin/env python
"""The import graph of the project, as ``tests/test_layering.py`` checks it and
``docs/architecture.md`` shows it.

Every ``import`` and ``from ... import`` in ``deepetpicker/`` and ``gui/`` counts, also those
inside functions (they run when the function does); imports under ``if TYPE_CHECKING:`` do
not (they never run). ``from package import name`` counts as an import of the module
``package.name`` when that is a module, else of ``package``. A unit is a top-level module or
package (``deepetpicker.train``, ``deepetpicker.io``, ``gui``).

    python scripts/import_graph.py            # the units and what each imports
    python scripts/import_graph.py --write    # the same into docs/architecture.md
    python scripts/import_graph.py --check    # exit 1 when docs/architecture.md differs
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("deepetpicker", "gui")
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- import graph: begin -->", "<!-- import graph: end -->"
STAGES = ("preprocess", "train", "predict", "evaluate")
#: Units above the stages: they run the stages in order for a user.
ORCHESTRATORS = ("cli", "demo", "__main__", "copick_jobs")
#: The one import of the desktop application from the library: the ``gui`` command starts
#: it, inside the function that runs the command.
GUI_EXCEPTION = ("deepetpicker.cli.gui", "gui.app")


@dataclass
class Graph:
    """``edges``: module -> the modules it imports (both within ``packages``); ``private``:
    ``(module, imported module, name)`` for each ``_name`` imported from another module."""

    edges: dict = field(default_factory=dict)
    private: list = field(default_factory=list)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set:
    """The ids of the nodes under ``if TYPE_CHECKING:`` blocks."""
    skipped: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def build(root: Path = ROOT, packages: tuple = PACKAGES) -> Graph:
    """The import graph of ``packages`` under ``root``."""
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            files[_module_name(path, root)] = path
    modules = set(files)
    graph = Graph()
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = graph.edges.setdefault(name, set())
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _known(alias.name, modules)
                    if target and target != name:
                        found.add(target)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                if base is None:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in modules else _known(base, modules)
                    if target and target != name:
                        found.add(target)
                        if (alias.name.startswith("_") and not alias.name.startswith("__")
                                and target == _known(base, modules)):
                            graph.private.append((name, target, alias.name))
    return graph


def _absolute(node: ast.ImportFrom, package: str):
    if node.level == 0:
        return node.module
    parts = package.split(".")
    if node.level > 1:
        parts = parts[:-(node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _known(dotted: str, modules: set):
    """The longest prefix of ``dotted`` that is one of ``modules``, or None (not ours)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def unit_of(module: str) -> str:
    """``deepetpicker.train.job`` -> ``train``; ``gui.tabs.x`` -> ``gui``."""
    parts = module.split(".")
    if parts[0] != "deepetpicker":
        return parts[0]
    return parts[1] if len(parts) > 1 else "deepetpicker"


def unit_edges(graph: Graph) -> dict:
    """``{unit: {units it imports}}`` (imports inside a unit left out)."""
    edges: dict = {}
    for module, targets in graph.edges.items():
        unit = unit_of(module)
        found = edges.setdefault(unit, set())
        found.update(unit_of(t) for t in targets if unit_of(t) != unit)
    return edges


def cycles(edges: dict) -> list[str]:
    """Every import cycle of a graph ``{node: {nodes}}`` found by a depth-first walk, as
    ``a -> b -> a``."""
    state: dict = {}
    found: list[str] = []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def layer_violations(graph: Graph) -> list[str]:
    """Imports against the direction of the arrows: a stage or shared piece importing a
    stage, and the library importing the desktop application (beyond the ``gui``
    command's one import)."""
    wrong = []
    for module, targets in sorted(graph.edges.items()):
        unit = unit_of(module)
        for target in sorted(targets):
            other = unit_of(target)
            if other == unit:
                continue
            if other in STAGES and unit not in ORCHESTRATORS and unit != "gui":
                wrong.append(f"{module} -> {target} (a stage is imported only from above)")
            if other == "gui" and (module, target) != GUI_EXCEPTION:
                wrong.append(f"{module} -> {target} (the library never imports gui)")
    return wrong


def graph_markdown(graph: Graph) -> str:
    """The units and the units each imports, as the table in docs/architecture.md."""
    edges = unit_edges(graph)
    lines = ["| unit | imports |", "|---|---|"]
    for unit in sorted(edges):
        targets = ", ".join(f"`{t}`" for t in sorted(edges[unit])) or "nothing of ours"
        lines.append(f"| `{unit}` | {targets} |")
    return "\n".join(lines)


def _with_table(text: str, table: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/architecture.md")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/architecture.md shows another graph")
    args = parser.parse_args(argv)
    table = graph_markdown(build())
    if args.write or args.check:
        text = DOC.read_text(encoding="utf-8")
        updated = _with_table(text, table)
        if args.check:
            if updated != text:
                print(f"{DOC} does not show the import graph; run "
                      f"python scripts/import_graph.py --write")
                return 1
            return 0
        DOC.write_text(updated, encoding="utf-8")
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

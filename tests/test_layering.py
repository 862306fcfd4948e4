"""The direction of the arrows: stages never import each other, shared pieces never import a
stage, and no package of deepetpicker imports itself back through others (every import
counted, also those inside functions)."""

import ast
from pathlib import Path

import deepetpicker

PACKAGE = Path(deepetpicker.__file__).parent
STAGES = {"preprocess", "train", "infer", "evaluate"}
#: Above the stages: they run the stages in order for a user.
ORCHESTRATORS = {"cli", "demo", "__main__", "copick_jobs"}


def unit_imports() -> dict:
    """``{unit: {imported units}}`` where a unit is a top-level module or package of
    deepetpicker (``train``, ``io``, ``config``, ...)."""
    edges: dict = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("").parts
        unit = rel[0]
        found = edges.setdefault(unit, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "deepetpicker" and len(parts) > 1 and parts[1] != unit:
                    found.add(parts[1])
    return edges


def test_stages_do_not_import_each_other_and_shared_pieces_import_no_stage():
    edges = unit_imports()
    wrong = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                   if b in STAGES and a not in ORCHESTRATORS)
    assert wrong == []


def test_no_import_cycle_between_units():
    edges = unit_imports()
    state: dict = {}
    cycles = []

    def visit(unit, path):
        state[unit] = "open"
        for nxt in sorted(edges.get(unit, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[unit] = "done"

    for unit in sorted(edges):
        if unit not in state:
            visit(unit, [unit])
    assert cycles == []


def test_the_walk_sees_the_imports_it_should():
    edges = unit_imports()
    assert {"picking", "runtime", "matching", "model"} <= edges["train"]
    assert {"picking", "normalize", "runtime", "model"} <= edges["infer"]
    assert "gui" not in set().union(*edges.values())
    # a package is one unit: the imports of all of config's modules count for config
    assert {"io", "errors"} <= edges["config"]
    assert "config" in edges["model"]

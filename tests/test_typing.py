"""Every public function of the library and the application carries type hints: module-level
functions and the public methods of public classes name the type of each parameter (``self``
and ``cls`` aside; ``*args`` and ``**kwargs`` may stay open) and of their result."""

from __future__ import annotations

import ast
from pathlib import Path

import deepetpicker
import gui

ROOTS = [Path(deepetpicker.__file__).parent, Path(gui.__file__).parent]

#: Qt's and pyqtgraph's virtual methods that gui/ overrides under their own names: the toolkit
#: calls them with the arguments its signature fixes (events, model indexes, roles), so hints
#: would only repeat its documentation. Only these names are skipped, and only as methods.
TOOLKIT_OVERRIDES = frozenset({
    "closeEvent", "keyPressEvent", "leaveEvent", "resizeEvent", "wheelEvent",  # QWidget
    "mouseClickEvent", "mouseDragEvent", "paint",                     # pyqtgraph items
    "rowCount", "columnCount", "headerData", "data",                  # QAbstractTableModel
})


def _public(name: str) -> bool:
    return not name.startswith("_")


def _gaps(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    """What ``func`` leaves unannotated: its parameter names and ``return``."""
    args = func.args
    params = args.posonlyargs + args.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)
    if method and not static and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    gaps = [a.arg for a in params + args.kwonlyargs if a.annotation is None]
    if func.returns is None:
        gaps.append("return")
    return gaps


def unannotated(source: str, module: str, allowed: frozenset = TOOLKIT_OVERRIDES) -> list[str]:
    """``"module.name: what is missing"`` for each public function or public method of a
    public class in ``source`` that lacks a hint; methods named in ``allowed`` are skipped."""
    found = []

    def check(func: ast.AST, qualname: str, method: bool) -> None:
        gaps = _gaps(func, method)
        if gaps:
            found.append(f"{module}.{qualname}: {', '.join(gaps)}")

    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.parse(source).body:
        if isinstance(node, functions) and _public(node.name):
            check(node, node.name, method=False)
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            for item in node.body:
                if (isinstance(item, functions) and _public(item.name)
                        and item.name not in allowed):
                    check(item, f"{node.name}.{item.name}", method=True)
    return found


def test_the_check_finds_missing_hints_and_passes_complete_ones():
    source = '''
def whole(a: int, *args, b: str = "", **kwargs) -> None: ...
def no_result(a: int): ...
def open_param(a, b: int) -> int: ...
def _private(a): ...
def data(index): ...
class Thing:
    def method(self, x) -> None: ...
    @classmethod
    def make(cls, y: int) -> "Thing": ...
    @staticmethod
    def helper(self) -> None: ...
    def paint(self, painter, *args): ...
    def _hidden(self, z): ...
    def __init__(self, w): ...
class _Private:
    def method(self, x): ...
'''
    assert unannotated(source, "m") == [
        "m.no_result: return", "m.open_param: a", "m.data: index, return", "m.Thing.method: x",
        "m.Thing.helper: self"]


def test_every_public_function_has_type_hints():
    missing = []
    for root in ROOTS:
        for path in sorted(root.rglob("*.py")):
            module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
            missing += unannotated(path.read_text(encoding="utf-8"), module)
    assert missing == []

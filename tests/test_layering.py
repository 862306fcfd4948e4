"""The direction of the arrows (docs/architecture.md), checked on every import of
``deepetpicker/`` and ``gui/`` (also those inside functions; see scripts/import_graph.py):
stages never import each other, shared pieces never import a stage, the library never imports
the desktop application (but for the ``gui`` command's one import), no module imports itself
back through others, and no module takes another's private names."""

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


@pytest.fixture(scope="module")
def graphs():
    spec = importlib.util.spec_from_file_location("import_graph_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(graphs):
    return graphs.build()


def test_imports_follow_the_arrows(graphs, project):
    assert graphs.layer_violations(project) == []


def test_no_module_imports_itself_back_and_no_unit_either(graphs, project):
    assert graphs.cycles(project.edges) == []
    assert graphs.cycles(graphs.unit_edges(project)) == []


def test_no_private_name_is_imported_from_another_module(project):
    assert project.private == []


def test_the_walk_sees_the_imports_it_should(graphs, project):
    units = graphs.unit_edges(project)
    assert {"picking", "runtime", "matching", "model"} <= units["train"]
    assert {"picking", "normalize", "runtime", "model"} <= units["predict"]
    # a package is one unit: the imports of all of config's modules count for config
    assert {"io", "errors"} <= units["config"]
    assert "config" in units["model"]
    # the desktop application is seen, and the gui command's import is its one way in
    assert {"predict", "train", "config"} <= units["gui"]
    assert "gui.app" in project.edges["deepetpicker.cli.gui"]
    from_library = {(m, t) for m, ts in project.edges.items() for t in ts
                    if m.startswith("deepetpicker") and t.startswith("gui")}
    assert from_library == {graphs.GUI_EXCEPTION}


def _plant(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_planted_wrong_imports_are_each_reported(graphs, tmp_path):
    _plant(tmp_path, {
        "deepetpicker/__init__.py": "",
        "deepetpicker/train/__init__.py": "",
        "deepetpicker/train/job.py": """
            def run():
                from deepetpicker.predict.job import predict   # a stage importing a stage
            """,
        "deepetpicker/predict/__init__.py": "",
        "deepetpicker/predict/job.py": "def predict(): pass\n",
        "deepetpicker/picking/__init__.py": "from deepetpicker.train import job\n",
        "deepetpicker/io/__init__.py": "",
        "deepetpicker/io/a.py": """
            from typing import TYPE_CHECKING
            from deepetpicker.io.b import _hidden
            if TYPE_CHECKING:
                from deepetpicker.predict.job import predict   # never runs: not counted
            def show():
                import gui.window
            """,
        "deepetpicker/io/b.py": """
            def _hidden(): pass
            def use():
                from . import a
            """,
        "gui/__init__.py": "",
        "gui/window.py": "from deepetpicker.train.job import run\n",
    })
    graph = graphs.build(tmp_path)
    wrong = graphs.layer_violations(graph)
    assert "deepetpicker.train.job -> deepetpicker.predict.job (a stage is imported only from " \
           "above)" in wrong
    assert any(w.startswith("deepetpicker.picking -> deepetpicker.train.job") for w in wrong)
    assert any(w.startswith("deepetpicker.io.a -> gui.window") for w in wrong)
    assert not any(w.startswith("deepetpicker.io.a -> deepetpicker.predict") for w in wrong)
    assert not any(w.startswith("gui.") for w in wrong)        # the application is on top
    assert graphs.cycles(graph.edges) == ["deepetpicker.io.a -> deepetpicker.io.b -> "
                                          "deepetpicker.io.a"]
    assert graph.private == [("deepetpicker.io.a", "deepetpicker.io.b", "_hidden")]


def test_the_architecture_page_shows_this_import_graph(graphs):
    assert graphs.main(["--check"]) == 0, "run: python scripts/import_graph.py --write"

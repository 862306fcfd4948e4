"""The Preprocessing, Training and Inference tabs and the main window, driven through their
widgets on a small simulated dataset: fields, config files, the real jobs through the worker,
Stop, bad values, and closing while a job runs."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QApplication, QFileDialog

from deepetpicker.config import (
    LIGHT_F_MAPS,
    TrainConfig,
    load_config,
    load_preprocess_config,
    load_train_config,
    save_config,
)
from deepetpicker.io.formats import read_any
from deepetpicker.io.picks import read_picks
from deepetpicker.model.checkpoint import load_checkpoint
from deepetpicker.preprocess.job import preprocess
from deepetpicker.simulate import simulate_dataset
from deepetpicker.train.job import train
from gui.main_window import MainWindow
from gui.tabs.preprocess_tab import PreprocessTab
from gui.tabs.train_tab import TrainTab

REPO = Path(__file__).resolve().parents[1]
CLASSES = [{"name": "globule", "shape": "globule", "diameter": 8},
           {"name": "barrel", "shape": "barrel", "diameter": 12}]
FAST = dict(f_maps=list(LIGHT_F_MAPS), patch_size=16, padding_size=2, batch_size=4,
            max_epochs=2, device="cpu", num_workers=0, seed=0)


# --------------------------------------------------------------------------------------------
# Shared data: simulated once per module, preprocessed and trained once by the core
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Two simulated tomograms (32 x 64 x 64, two classes) and their preprocess config."""
    root = tmp_path_factory.mktemp("sim")
    config = simulate_dataset(root, n=2, shape=(32, 64, 64), classes=CLASSES, n_particles=8,
                              seed=0)
    return Path(config)


@pytest.fixture(scope="module")
def preprocessed(sim):
    preprocess(load_preprocess_config(sim))
    return sim


@pytest.fixture(scope="module")
def trained(preprocessed):
    """(train config path, best weights) of a 2-epoch run of the light network."""
    pre = load_preprocess_config(preprocessed)
    settings = dict(FAST, max_epochs=6, lr=0.01)  # enough to pick something
    cfg = TrainConfig.from_preprocess(pre, "0", "1", dset_name="core_run", **settings)
    path = save_config(cfg, cfg.configs_dir / "core_run.py")
    result = train(cfg)
    return path, result.best_checkpoint or result.last_checkpoint


def raw_counts(sim, stem):
    picks = read_picks(Path(sim).parent.parent / "raw" / f"{stem}.coords")
    return picks.counts(2)


def make_window(qtbot, settings=None):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1360, 860)
    return window


def wait_done(qtbot, panel, timeout=60000):
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)


def type_into(qtbot, widget, text):
    """Replace a line edit's or spin box's text by typing, then press Enter."""
    edit = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key_Delete)
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key_Return)


def patch_dialog(monkeypatch, name, value):
    monkeypatch.setattr(QFileDialog, name, staticmethod(lambda *a, **k: value))


def table_text(table):
    return [[table.item(r, c).text() if table.item(r, c) else ""
             for c in range(table.columnCount())] for r in range(table.rowCount())]


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
def fill_preprocess(qtbot, tab, sim, base):
    raw = str(Path(sim).parent.parent / "raw")
    type_into(qtbot, tab.dset_name, "gui_set")
    type_into(qtbot, tab.base_path.edit, str(base))
    type_into(qtbot, tab.coord_path.edit, raw)
    type_into(qtbot, tab.tomo_path.edit, raw)
    type_into(qtbot, tab.num_cls, "2")
    tab.label_type.setCurrentIndex(1)  # Ball
    type_into(qtbot, tab.label_diameter, "5")
    type_into(qtbot, tab.ocp_diameter, "8, 12")


def test_preprocess_fields_save_and_load_a_config(qtbot, dialogs, sim, tmp_path,
                                                  monkeypatch):
    tab = PreprocessTab()
    qtbot.addWidget(tab)
    fill_preprocess(qtbot, tab, sim, tmp_path / "base")
    # the validators refuse what cannot be a value
    qtbot.keyClicks(tab.ocp_diameter, "x;")
    qtbot.keyClicks(tab.dset_name, "/")
    assert tab.ocp_diameter.text() == "8, 12" and tab.dset_name.text() == "gui_set"
    type_into(qtbot, tab.num_cls, "0")
    assert tab.num_cls.value() == 2  # below the range: refused

    saved = tmp_path / "gui_set.py"
    patch_dialog(monkeypatch, "getSaveFileName", (str(saved), ""))
    qtbot.mouseClick(tab.save_button, Qt.LeftButton)
    assert saved.read_text().startswith("pre_config=")
    cfg = load_preprocess_config(saved)
    assert (cfg.dset_name, cfg.num_cls, cfg.label_type, cfg.label_diameter) == \
        ("gui_set", 2, "sphere", 5)
    assert cfg.ocp_diameter == [8, 12] and cfg.base_path == str(tmp_path / "base")

    other = PreprocessTab()
    qtbot.addWidget(other)
    patch_dialog(monkeypatch, "getOpenFileName", (str(saved), ""))
    qtbot.mouseClick(other.load_button, Qt.LeftButton)
    assert other.to_config().to_dict() == tab.to_config().to_dict()
    assert other.label_type.currentText() == "Ball" and other.ocp_diameter.text() == "8,12"
    assert not dialogs.shown


def test_preprocess_label_diameter_per_class_field(qtbot, dialogs, sim, tmp_path):
    tab = PreprocessTab()
    qtbot.addWidget(tab)
    fill_preprocess(qtbot, tab, sim, tmp_path / "base")
    assert tab.to_config().label_diameters is None and tab.label_diameter.isEnabled()
    qtbot.keyClicks(tab.label_diameters, "7;x")        # the validator refuses the rest
    assert tab.label_diameters.text() == "7"
    qtbot.keyClicks(tab.label_diameters, ", 5,")
    assert not tab.label_diameter.isEnabled()          # the per-class diameters decide
    cfg = tab.to_config()
    assert (cfg.label_diameters, cfg.label_diameter, cfg.label_name) == ([7, 5], 5, "sphere7-5")
    assert tab.save_config(tmp_path / "pre.py")
    saved = load_preprocess_config(tmp_path / "pre.py")
    assert (saved.label_diameters, saved.label_diameter) == ([7, 5], 5)

    other = PreprocessTab()
    qtbot.addWidget(other)
    assert other.load_config(tmp_path / "pre.py")
    assert other.label_diameters.text() == "7,5" and not other.label_diameter.isEnabled()
    assert other.to_config().to_dict() == cfg.to_dict()
    tab.label_diameters.clear()
    assert tab.label_diameter.isEnabled() and tab.to_config().label_name == "sphere5"
    assert not dialogs.shown


def test_original_config_files_round_trip_through_the_tabs(qtbot, dialogs, tmp_path):
    pre_src = REPO / "configs" / "SHREC_2021_preprocess.py"
    tab = PreprocessTab()
    qtbot.addWidget(tab)
    assert tab.load_config(pre_src)
    assert tab.num_cls.value() == 14
    assert tab.ocp_diameter.text() == "7,7,7,7,7,9,9,9,11,11,13,13,13,17"
    assert tab.save_config(tmp_path / "pre.py")
    keep = ("dset_name", "base_path", "coord_path", "tomo_path", "num_cls", "label_type",
            "label_diameter", "ocp_diameter", "norm_type", "coord_format", "tomo_format")
    a, b = load_preprocess_config(pre_src), load_preprocess_config(tmp_path / "pre.py")
    assert {k: getattr(a, k) for k in keep} == {k: getattr(b, k) for k in keep}

    train_src = REPO / "configs" / "SHREC_2021_train.py"
    ttab = TrainTab()
    qtbot.addWidget(ttab)
    assert ttab.load_config(train_src)  # the dataset is not on this machine: logged, no box
    assert "No dataset list yet" in ttab.panel.log_view.toPlainText()
    assert ttab.classes_label.text().startswith("14 ")
    assert ttab.save_config(tmp_path / "train.py") == tmp_path / "train.py"
    assert (tmp_path / "train.py").read_text().startswith("train_configs=")
    a, b = load_train_config(train_src), load_train_config(tmp_path / "train.py")
    for key in keep + ("train_set_ids", "val_set_ids", "batch_size", "patch_size",
                       "padding_size", "lr", "max_epochs", "seg_thresh", "gpu_ids"):
        assert getattr(a, key) == getattr(b, key), key
    assert not dialogs.shown


def test_training_start_weights_are_chosen_saved_and_loaded(qtbot, dialogs, sim, tmp_path,
                                                            monkeypatch):
    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.set_config(load_preprocess_config(sim))
    tab.train_ids.setText("0")
    tab.val_ids.setText("1")
    assert tab.to_config().init == "pretrained"            # the default, as in a config file
    tab.init.setCurrentIndex(tab.init.findData("scratch"))
    assert tab.to_config().init == "scratch"

    patch_dialog(monkeypatch, "getOpenFileName", ("", ""))  # cancelled: nothing changes
    qtbot.mouseClick(tab.init_button, Qt.LeftButton)
    assert tab.to_config().init == "scratch" and tab.init.count() == 2
    earlier = tmp_path / "earlier_best.pth"
    earlier.write_bytes(b"weights")
    patch_dialog(monkeypatch, "getOpenFileName", (str(earlier), ""))
    qtbot.mouseClick(tab.init_button, Qt.LeftButton)
    assert tab.to_config().init == str(earlier)
    assert tab.init.currentText() == f"checkpoint {earlier}"
    assert tab.save_config(tmp_path / "train.py")
    assert load_train_config(tmp_path / "train.py").init == str(earlier)

    saved = tab.to_config().to_dict()
    tab.set_start("scratch")                               # no second entry for a known one
    assert tab.init.count() == 3 and tab.to_config().init == "scratch"
    assert tab.load_config(tmp_path / "train.py")          # the file's start comes back
    assert tab.init.currentText() == f"checkpoint {earlier}" and tab.init.count() == 3
    assert tab.to_config().to_dict() == saved
    assert not dialogs.shown


def test_preprocessing_runs_and_lists_the_tomograms(qtbot, dialogs, sim, tmp_path):
    window = make_window(qtbot)
    tab = window.preprocess_tab
    fill_preprocess(qtbot, tab, sim, tmp_path / "base")
    events = []
    tab.panel.progress.connect(events.append)
    qtbot.mouseClick(tab.run_button, Qt.LeftButton)
    assert tab.panel.running and not tab.run_button.isEnabled()
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished" and not dialogs.shown
    counted = [e for e in events if e.total]
    assert counted and tab.panel.bar.maximum() == counted[-1].total
    assert tab.panel.bar.value() == tab.panel.bar.maximum() > 0
    assert tab.run_button.isEnabled()

    rows = table_text(tab.result_table)
    expected = []
    for i, stem in enumerate(("sim_00", "sim_01")):
        counts = raw_counts(sim, stem)
        expected.append([str(i), stem, str(sum(counts.values())), str(counts[1]),
                         str(counts[2])])
    assert rows == expected
    assert sum(int(r[2]) for r in rows) == 16
    base = tmp_path / "base"
    assert sorted(p.name for p in (base / "data_std").glob("*.mrc")) == ["sim_00.mrc",
                                                                          "sim_01.mrc"]
    assert load_preprocess_config(base / "configs" / "gui_set.py").num_cls == 2
    # the Training tab now offers this dataset
    assert table_text(window.train_tab.dataset_table) == expected
    assert window.train_tab.train_ids.text() == "0" and window.train_tab.val_ids.text() == "1"
    assert "2 tomograms normalised, 2 with picks" in tab.panel.log_view.toPlainText()


def test_bad_fields_show_an_error_and_the_app_keeps_working(qtbot, dialogs, sim,
                                                            tmp_path):
    window = make_window(qtbot)
    tab = window.preprocess_tab
    fill_preprocess(qtbot, tab, sim, tmp_path / "base")
    type_into(qtbot, tab.ocp_diameter, "8")  # one diameter for two classes
    assert not tab.run()
    kind, title, text = dialogs.shown[-1]
    assert kind == "critical" and title == "Check the settings"
    assert "Particle diameters (ocp)" in text and "2" in text
    assert not tab.panel.running

    type_into(qtbot, tab.ocp_diameter, "8,12")
    missing = tmp_path / "no_such_folder"
    type_into(qtbot, tab.tomo_path.edit, str(missing))
    qtbot.mouseClick(tab.run_button, Qt.LeftButton)
    assert str(missing) in dialogs.texts("critical")[-1]
    assert not tab.panel.running and not (tmp_path / "base" / "data_std").exists()

    # a training config with a patch size that is not a multiple of 8
    ttab = window.train_tab
    type_into(qtbot, ttab.patch_size, "20")
    assert ttab.patch_size.value() % 8 == 0 and ttab.patch_size.value() in (16, 24)
    bad = tmp_path / "bad_train.py"
    text = (REPO / "configs" / "EMPIAR_10045_train.py").read_text()
    bad.write_text(text.replace('"patch_size": 72', '"patch_size": 20'))
    assert not window.open_config(bad)
    assert "patch_size" in dialogs.texts("critical")[-1]
    assert "20" in dialogs.texts("critical")[-1]
    assert not ttab.start()  # no dataset loaded yet
    assert "load the preprocessing config" in dialogs.texts("critical")[-1]
    # a run name that would overwrite the dataset's preprocessing config is refused
    pre_config = tmp_path / "base" / "configs" / "gui_set.py"
    pre_config.parent.mkdir(parents=True)
    assert tab.save_config(pre_config)
    before = pre_config.read_text()
    assert ttab.load_config(pre_config)
    type_into(qtbot, ttab.dset_name, "gui_set")
    type_into(qtbot, ttab.train_ids, "0")
    type_into(qtbot, ttab.val_ids, "1")
    type_into(qtbot, ttab.padding_size, "2")
    assert not ttab.start()
    assert "would overwrite" in dialogs.texts("critical")[-1]
    assert pre_config.read_text() == before and not ttab.panel.running

    # inference without weights
    itab = window.infer_tab
    assert not itab.run()
    assert "Choose the trained weights" in dialogs.texts("critical")[-1]
    n = len(dialogs.shown)
    # ... and the window still works: the fixed settings run
    type_into(qtbot, tab.tomo_path.edit, str(Path(sim).parent.parent / "raw"))
    assert tab.run()
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished" and len(dialogs.shown) == n
    assert tab.result_table.rowCount() == 2


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def fill_training(qtbot, tab, epochs):
    type_into(qtbot, tab.dset_name, "gui_run")
    tab.model_box.setCurrentIndex(tab.model_box.findData("light"))
    type_into(qtbot, tab.patch_size, "16")
    type_into(qtbot, tab.padding_size, "2")
    type_into(qtbot, tab.batch_size, "4")
    type_into(qtbot, tab.max_epochs, str(epochs))
    tab.device.setCurrentText("cpu")
    for key in ("elastic", "rotate", "scale"):
        tab.augment[key].setChecked(False)


@pytest.mark.slow
def test_training_runs_plots_and_hands_over_to_inference(qtbot, dialogs, preprocessed,
                                                         tmp_path, monkeypatch):
    window = make_window(qtbot)
    assert window.open_config(preprocessed)
    tab = window.train_tab
    assert [r[:2] for r in table_text(tab.dataset_table)] == [["0", "sim_00"], ["1", "sim_01"]]
    fill_training(qtbot, tab, epochs=2)
    # choose the ids from the table as well
    tab.dataset_table.selectRow(1)
    qtbot.mouseClick(tab.to_val, Qt.LeftButton)
    assert tab.val_ids.text() == "1"

    saved = tmp_path / "gui_run.py"
    patch_dialog(monkeypatch, "getSaveFileName", (str(saved), ""))
    qtbot.mouseClick(tab.save_button, Qt.LeftButton)
    assert saved.read_text().startswith("train_configs=")
    cfg = load_train_config(saved)
    assert (cfg.patch_size, cfg.padding_size, cfg.batch_size, cfg.max_epochs) == (16, 2, 4, 2)
    assert list(cfg.f_maps) == LIGHT_F_MAPS and cfg.device == "cpu"
    assert cfg.augment["elastic"] == 0 and cfg.augment["mirror"] is True
    other = TrainTab()
    qtbot.addWidget(other)
    patch_dialog(monkeypatch, "getOpenFileName", (str(saved), ""))
    qtbot.mouseClick(other.load_button, Qt.LeftButton)
    assert other.to_config().to_dict() == tab.to_config().to_dict()

    steps = []
    tab.panel.progress.connect(lambda e: e.stage == "train" and steps.append(e))
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    assert not tab.train_button.isEnabled() and tab.panel.stop_button.isEnabled()
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished" and not dialogs.shown
    assert steps[-1].done == steps[-1].total > 1
    assert tab.panel.bar.maximum() == steps[-1].total == tab.panel.bar.value()

    run_dir = Path(cfg.base_path) / "runs" / "gui_run"
    history = load_checkpoint(run_dir / "last.pth")[1]["history"]
    x, y = tab.train_curve.getData()
    assert list(x) == [1, 2]
    assert list(y) == pytest.approx([row["train_loss"] for row in history])
    assert list(tab.f1_curve.getData()[0]) == [1, 2]
    assert list(tab.f1_curve.getData()[1]) == pytest.approx([row["loc_f1"] for row in history])
    assert list(tab.class_curve.getData()[1]) == pytest.approx(
        [row["class_f1"] for row in history])
    # the Inference tab is ready to use the new weights
    itab = window.infer_tab
    assert itab.config_field.text() == str(cfg.configs_dir / "gui_run.py")
    assert Path(itab.weights_field.text()).parent == run_dir
    assert itab.patch_size.value() == 16 and itab.pad_size.value() == 2


@pytest.mark.slow
def test_stop_ends_training_within_two_seconds_and_the_checkpoint_works(
        qtbot, dialogs, preprocessed, tmp_path):
    tab = TrainTab()
    qtbot.addWidget(tab)
    assert tab.load_config(preprocessed)
    fill_training(qtbot, tab, epochs=500)
    type_into(qtbot, tab.dset_name, "stopped_run")
    assert tab.start()
    qtbot.waitUntil(lambda: len(tab.history) >= 1, timeout=60000)
    assert tab.panel.running
    started = time.monotonic()
    qtbot.mouseClick(tab.panel.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not tab.panel.running, timeout=2000)
    assert time.monotonic() - started < 2.0
    assert tab.panel.last_outcome == "stopped" and not dialogs.shown
    assert "stopped" in tab.panel.label.text()
    assert tab.train_button.isEnabled()

    last = Path(tab.to_config().run_dir) / "last.pth"
    model, meta = load_checkpoint(last)
    assert meta["epoch"] >= 1 and len(meta["history"]) == meta["epoch"]
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 16, 16, 16))
    assert out.shape == (1, 3, 16, 16, 16) and torch.isfinite(out).all()

    # Resume continues from that epoch to the new end
    done = meta["epoch"]
    type_into(qtbot, tab.max_epochs, str(done + 1))
    assert tab.resume(last)
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished", dialogs.shown
    assert [row["epoch"] for row in tab.history][-1] == done + 1
    assert load_checkpoint(last)[1]["epoch"] == done + 1


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------
def test_inference_runs_lists_results_opens_them_and_converts(qtbot, dialogs, sim,
                                                              trained, tmp_path,
                                                              monkeypatch):
    config, weights = trained
    window = make_window(qtbot)
    window.show()
    qtbot.waitExposed(window)
    tab = window.infer_tab
    assert tab.set_inputs(config, weights)
    assert tab.patch_size.value() == 16 and tab.pad_size.value() == 2
    raw = Path(sim).parent.parent / "raw"
    tomos = [str(raw / "sim_00.mrc"), str(raw / "sim_01.mrc")]
    import gui.dialogs
    monkeypatch.setattr(gui.dialogs, "choose_tomogram_files", lambda *a, **k: [tomos[0]])
    qtbot.mouseClick(tab.add_files, Qt.LeftButton)
    assert tab.tomograms() == tomos[:1]
    # a folder adds the tomograms in it, each once
    patch_dialog(monkeypatch, "getExistingDirectory", str(raw))
    qtbot.mouseClick(tab.add_folder, Qt.LeftButton)
    assert tab.tomograms() == tomos
    patch_dialog(monkeypatch, "getExistingDirectory", str(tmp_path))
    qtbot.mouseClick(tab.add_folder, Qt.LeftButton)
    assert "holds no tomograms" in dialogs.texts("critical")[-1]
    dialogs.shown.clear()
    assert tab.tomograms() == tomos
    type_into(qtbot, tab.out_dir.edit, str(tmp_path / "picks"))
    type_into(qtbot, tab.t_lm, "0.05")
    tab.out_format.setCurrentIndex(tab.out_format.findData("star"))
    qtbot.mouseClick(tab.run_button, Qt.LeftButton)
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished" and not dialogs.shown
    assert tab.panel.bar.value() == tab.panel.bar.maximum() > 1

    rows = table_text(tab.results_table)
    assert [r[0] for r in rows] == ["sim_00", "sim_01"]
    assert [r[2] for r in rows] == ["sim_00.coords", "sim_01.coords"]
    rows = [(stem, text, tab.results_table.item(i, 2).toolTip())
            for i, (stem, text, _name) in enumerate(rows)]
    for stem, text, path in rows:
        picks = read_picks(path)
        assert Path(path) == tmp_path / "picks" / f"{stem}.coords"
        counts = picks.counts(2)
        assert text == f"{len(picks)} (class 1: {counts[1]}, class 2: {counts[2]})"
    assert all(len(read_picks(r[2])) > 0 for r in rows)
    assert list((tmp_path / "picks").glob("*.star"))

    # open the second result in the viewer
    tab.results_table.selectRow(1)
    assert tab.show_button.isEnabled()
    qtbot.mouseClick(tab.show_button, Qt.LeftButton)
    viewer = window.viewer_tab
    assert window.tabs.currentWidget() is viewer
    assert viewer.tomogram.path == Path(tomos[1])
    assert len(viewer.model) == len(read_picks(rows[1][2])) and viewer.model.has_scores
    # circles are drawn at the particle sizes the prediction used (from its sidecar)
    assert viewer.class_table.class_count() == 2
    assert [viewer.styles.diameter(c) for c in (1, 2)] == [8.0, 12.0]

    # convert the pick files to Dynamo tables
    patch_dialog(monkeypatch, "getOpenFileNames", ([rows[0][2], rows[1][2]], ""))
    qtbot.mouseClick(tab.convert_add, Qt.LeftButton)
    tab.convert_format.setCurrentIndex(tab.convert_format.findData("tbl"))
    type_into(qtbot, tab.convert_out.edit, str(tmp_path / "dynamo"))
    qtbot.mouseClick(tab.convert_button, Qt.LeftButton)
    written = sorted((tmp_path / "dynamo").glob("*.tbl"))
    assert written and not dialogs.shown
    total = sum(len(t) for p in written for t in read_any(p))
    assert total == sum(len(read_picks(r[2])) for r in rows)


def test_inference_with_weights_only_takes_the_settings_stored_in_them(qtbot, dialogs, sim,
                                                                       trained, tmp_path):
    import shutil

    _config, weights = trained
    mine = tmp_path / "weights" / "best.pth"  # predictions go beside the weights
    mine.parent.mkdir()
    shutil.copy(weights, mine)
    window = make_window(qtbot)
    tab = window.infer_tab
    assert not tab.config_field.text()
    tab.weights_field.setText(str(mine))
    assert not tab.run()  # nothing names the tomograms
    assert dialogs.texts("critical")[-1].startswith(
        "Add the tomograms to pick (Add files... or Add folder...): without a training config "
        "the weights best.pth")
    dialogs.shown.clear()
    raw = Path(sim).parent.parent / "raw"
    tab.add_tomograms([str(raw / "sim_00.mrc")])
    type_into(qtbot, tab.t_lm, "0.05")
    assert tab.run()
    wait_done(qtbot, tab.panel)
    assert tab.panel.last_outcome == "finished" and not dialogs.shown, dialogs.texts()
    picks = read_picks(tmp_path / "weights" / "predictions" / "sim_00.coords")
    assert len(picks) > 0
    assert table_text(tab.results_table)[0][:1] == ["sim_00"]


def test_inference_reports_a_bad_tomogram_and_picks_the_others(qtbot, dialogs, sim,
                                                               trained, tmp_path):
    config, weights = trained
    window = make_window(qtbot)
    tab = window.infer_tab
    tab.set_inputs(config, weights)
    bad = tmp_path / "broken.mrc"
    bad.write_bytes(b"not a tomogram")
    tab.add_tomograms([str(Path(sim).parent.parent / "raw" / "sim_00.mrc"), str(bad)])
    type_into(qtbot, tab.out_dir.edit, str(tmp_path / "out"))
    # the test-time augmentation checkbox reaches the job
    assert tab.job_arguments()[1]["tta"] is False
    tab.tta.setChecked(True)
    assert tab.job_arguments()[1]["tta"] is True
    tab.tta.setChecked(False)
    assert tab.job_arguments()[1]["picking"]["localize"] == "foreground"
    tab.localize.setCurrentIndex(tab.localize.findData("class"))
    assert tab.job_arguments()[1]["picking"]["localize"] == "class"
    # the thresholds tuned in training unless a minimum score is set (0 keeps every pick)
    assert "min_score" not in tab.job_arguments()[1]["picking"]
    assert tab.min_score.text() == "tuned"
    tab.min_score.setValue(0.0)
    assert tab.job_arguments()[1]["picking"]["min_score"] == 0.0
    tab.min_score.setValue(tab.min_score.minimum())
    tab.localize.setCurrentIndex(tab.localize.findData("class"))
    assert tab.run()
    wait_done(qtbot, tab.panel)
    assert [r[0] for r in table_text(tab.results_table)] == ["sim_00"]
    kind, title, text = dialogs.shown[-1]
    assert kind == "critical" and title == "Some tomograms were skipped"
    assert "broken.mrc" in text
    # weights that do not exist
    tab.weights_field.setText(str(tmp_path / "missing.pth"))
    assert not tab.run()
    assert "Checkpoint not found" in dialogs.texts("critical")[-1]


def test_stop_ends_inference_within_two_seconds_without_a_partial_pick_file(
        qtbot, dialogs, sim, trained, tmp_path):
    """The first tomogram's picks are written; Stop during the second one's scan ends the
    job within 2 s and leaves no pick file (nor sidecar) of it under its real name."""
    from deepetpicker.io.tomogram import write_tomogram

    config, weights = trained
    big = tmp_path / "big.mrc"  # ~3000 tiles of 16^3: many seconds of scanning on a CPU
    rng = np.random.default_rng(0)
    write_tomogram(big, rng.normal(size=(64, 256, 256)).astype(np.float32), voxel_size=10.0)
    window = make_window(qtbot)
    tab = window.infer_tab
    assert tab.set_inputs(config, weights)
    first = Path(sim).parent.parent / "raw" / "sim_00.mrc"
    tab.add_tomograms([str(first), str(big)])
    out = tmp_path / "picks"
    type_into(qtbot, tab.out_dir.edit, str(out))
    scans = []
    tab.panel.progress.connect(
        lambda e: e.stage == "scan" and e.item == "big" and scans.append(e))
    assert tab.run()
    qtbot.waitUntil(lambda: len(scans) >= 1 or not tab.panel.running, timeout=60000)
    assert tab.panel.running and (out / "sim_00.coords").is_file()
    assert scans[-1].done < scans[-1].total
    started = time.monotonic()
    qtbot.mouseClick(tab.panel.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not tab.panel.running, timeout=2000)
    assert time.monotonic() - started < 2.0
    assert tab.panel.last_outcome == "stopped" and not dialogs.shown
    assert tab.run_button.isEnabled()
    # the finished tomogram's outputs are intact, the stopped one left nothing behind
    assert sorted(p.name for p in out.iterdir()) == [
        ".deepetpicker-outputs.json", ".deepetpicker-outputs.lock", "sim_00.coords",
        "sim_00.coords.json"]
    assert len(read_picks(out / "sim_00.coords")) > 0
    # and the results table lists the tomogram finished before the stop
    assert tab.results_table.rowCount() == 1
    assert tab.results_table.item(0, 0).text() == "sim_00"
    assert tab.results_table.item(0, 1).text().startswith(
        str(len(read_picks(out / "sim_00.coords"))))


# --------------------------------------------------------------------------------------------
# Main window
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_closing_while_training_asks_then_stops_the_job(qtbot, dialogs, preprocessed,
                                                        settings):
    from PyQt5.QtWidgets import QMessageBox

    window = make_window(qtbot, settings)
    window.show()
    assert window.windowTitle().startswith("DeepETPicker ")
    window.open_config(preprocessed)
    tab = window.train_tab
    fill_training(qtbot, tab, epochs=500)
    type_into(qtbot, tab.dset_name, "closed_run")
    assert tab.start()
    qtbot.waitUntil(lambda: tab.panel.bar.maximum() > 1, timeout=30000)

    dialogs.answers = [QMessageBox.No]
    assert not window.close()
    assert window.isVisible() and tab.panel.running
    assert dialogs.shown[-1][1] == "Quit while a job runs?"
    assert "Training is still running" in dialogs.shown[-1][2]

    dialogs.answers = [QMessageBox.Yes]
    started = time.monotonic()
    assert window.close()
    assert time.monotonic() - started < 5.0
    assert not tab.panel.running and tab.panel.last_outcome == "stopped"
    QApplication.processEvents()


def test_open_config_dispatches_by_kind_and_reports_bad_files(qtbot, dialogs, trained,
                                                              tmp_path):
    window = make_window(qtbot)
    config, _weights = trained
    assert window.open_config(config)
    assert window.tabs.currentWidget() is window.train_tab
    assert window.train_tab.dset_name.text() == "core_run"
    # the finished run's curves are shown from its metrics log
    epochs, losses = window.train_tab.train_curve.getData()
    assert list(epochs) == [1, 2, 3, 4, 5, 6]
    history = load_checkpoint(Path(_weights).parent / "last.pth")[1]["history"]
    assert list(losses) == pytest.approx([row["train_loss"] for row in history])
    assert "Earlier run in" in window.train_tab.panel.log_view.toPlainText()
    assert window.infer_tab.config_field.text() == str(config)
    assert isinstance(load_config(config), TrainConfig)
    broken = tmp_path / "broken.py"
    broken.write_text("pre_config={'dset_name': 'x', 'num_cls': }")
    assert not window.open_config(broken)
    assert "broken.py" in dialogs.texts("critical")[-1]
    assert np.isfinite(window.train_tab.lr.value())


# --------------------------------------------------------------------------------------------
# Messages name the fields of the form
# --------------------------------------------------------------------------------------------
def test_a_bad_preprocessing_field_is_named_by_its_label(qtbot, dialogs, sim, tmp_path):
    """An empty base path is reported as the "Base path" field, not the config key."""
    window = make_window(qtbot)
    tab = window.preprocess_tab
    fill_preprocess(qtbot, tab, sim, tmp_path / "base")
    type_into(qtbot, tab.base_path.edit, "")
    assert not tab.run()
    kind, title, text = dialogs.shown[-1]
    assert kind == "critical" and title == "Check the settings"
    assert '"Base path"' in text and "fill in this field" in text, text
    assert "base_path" not in text and "in quotes" not in text
    assert not tab.save_config(tmp_path / "pre.py")
    assert '"Base path"' in dialogs.texts("critical")[-1]


def test_the_inference_log_names_the_min_score_field(qtbot, dialogs, sim, trained, tmp_path):
    """The job's line about the tuned thresholds names the form's "min score" field, not
    the command's ``--min-score``."""
    import shutil

    _config, weights = trained
    mine = tmp_path / "weights" / "best.pth"
    mine.parent.mkdir()
    shutil.copy(weights, mine)
    window = make_window(qtbot)
    tab = window.infer_tab
    tab.weights_field.setText(str(mine))
    tab.add_tomograms([str(Path(sim).parent.parent / "raw" / "sim_00.mrc")])
    assert tab.run()
    wait_done(qtbot, tab.panel)
    log = tab.panel.log_view.toPlainText()
    assert tab.panel.last_outcome == "finished", log
    assert '"Thresholds > min score"' in log, log
    assert "--min-score" not in log


def test_tomograms_found_lists_the_typed_folder_before_preprocessing(qtbot, dialogs, sim,
                                                                     tmp_path):
    """As soon as the Tomograms field names a folder, "Tomograms found" lists its
    tomograms (not preprocessed yet); a field that names no folder empties the list."""
    window = make_window(qtbot)
    tab = window.preprocess_tab
    assert tab.result_table.rowCount() == 0
    raw = Path(sim).parent.parent / "raw"
    type_into(qtbot, tab.tomo_path.edit, str(raw))
    rows = table_text(tab.result_table)
    assert [r[:3] for r in rows] == [["-", "sim_00", "not preprocessed yet"],
                                     ["-", "sim_01", "not preprocessed yet"]]
    type_into(qtbot, tab.tomo_path.edit, str(tmp_path / "no_such_folder"))
    assert tab.result_table.rowCount() == 0
    assert not dialogs.shown

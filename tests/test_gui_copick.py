"""Where the field's data lives, in the GUI: the Inference tab picks the runs of a copick project
(and takes a mask), the Particle Visualization tab opens a run's tomogram and picks from a
project, and shows a prediction mask as an overlay. Projects are made with copick's own API."""

import numpy as np
import pytest
from PyQt5.QtWidgets import QApplication

copick = pytest.importorskip("copick")

from deepetpicker.config import save_config  # noqa: E402
from deepetpicker.copick_jobs import CopickPredictResult  # noqa: E402
from deepetpicker.io.picks import read_picks  # noqa: E402
from deepetpicker.io.tomogram import write_tomogram  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.widgets.copick_dialog import CopickRunDialog  # noqa: E402

from test_copick import VOXEL, make_project  # noqa: E402


@pytest.fixture
def window(qtbot, settings, dialogs):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1360, 860)
    yield window
    window.viewer_tab.model.undo_stack.setClean()
    window.viewer_tab.model._unsaved_load = False


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture
def inputs(tiny_two_class, tmp_path):
    """(train config file, weights) of the tiny two-class network."""
    cfg, weights = tiny_two_class
    path = save_config(cfg, tmp_path / "train.py")
    return path, weights


def low_thresholds(tab):
    """Every local maximum becomes a pick (the tiny network is untrained)."""
    tab.t_seg.setValue(0.0)
    tab.t_lm.setValue(0.0)


def stored_points(config, run, user, session):
    """{object name: points (N, 3) in voxels} of the picks of ``user``/``session``."""
    found = copick.from_file(str(config)).get_run(run).get_picks(user_id=user,
                                                                session_id=session)
    return {p.pickable_object_name: p.numpy()[0] / VOXEL for p in found}


# --------------------------------------------------------------------------------------------
# Inference tab
# --------------------------------------------------------------------------------------------
def test_inference_tab_passes_the_copick_fields_to_predict_into_project(
        window, qtbot, project, inputs, tmp_path, monkeypatch, dialogs):
    import deepetpicker.copick_jobs as jobs

    config, _ = project
    calls = []

    def fake(cfg, **kwargs):
        calls.append((cfg, kwargs))
        result = CopickPredictResult(out_dir=tmp_path / "pred", user_id=kwargs["user_id"],
                                     session_id=kwargs["session_id"])
        result.written["TS_1"] = {"ribosome": 3, "proteasome": 2}
        result.outputs["TS_1"] = tmp_path / "pred" / "TS_1" / "wbp.coords"
        result.no_tomogram.append("TS_2")
        result.failed["TS_3"] = "broken tile"
        return result

    monkeypatch.setattr(jobs, "predict_into_project", fake)
    tab = window.infer_tab
    assert tab.set_inputs(*inputs)
    assert tab.source_pages.currentIndex() == 0
    assert tab.set_copick_project(config)
    assert tab.source_pages.currentIndex() == 1 and tab.uses_copick()
    assert tab.copick_tomo_type.currentText() == "wbp"       # offered from the project
    assert tab.copick_spacing.value() == pytest.approx(VOXEL)
    tab.copick_runs.setText("TS_1, TS_3 TS_2")
    tab.copick_user.setText("me")
    tab.copick_overwrite.setChecked(True)
    tab.mask_field.setText(str(tmp_path / "roi.mrc"))
    tab.add_tomograms([str(tmp_path / "ignored.mrc")])     # the file list is not used
    assert tab.run()
    qtbot.waitUntil(lambda: not tab.panel.running, timeout=30000)
    assert tab.panel.last_outcome == "finished"
    (cfg, kwargs), = calls
    assert cfg.num_cls == 2 and "tomograms" not in kwargs
    assert kwargs["copick_config"] == str(config) and kwargs["tomo_type"] == "wbp"
    assert kwargs["voxel_spacing"] == pytest.approx(VOXEL)
    assert kwargs["runs"] == ["TS_1", "TS_3", "TS_2"]
    assert (kwargs["user_id"], kwargs["session_id"]) == ("me", "0")   # session: the default
    assert kwargs["overwrite"] is True and kwargs["mask"] == str(tmp_path / "roi.mrc")
    assert kwargs["weights"] == str(inputs[1]) and kwargs["picking"]["t_seg"] == 0.5
    # per run where the picks went
    table = tab.results_table
    assert [table.horizontalHeaderItem(c).text() for c in range(3)] == ["run", "picks",
                                                                         "stored in"]
    rows = [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]
    assert rows == [["TS_1", "5 (ribosome: 3, proteasome: 2)", "copick me/0"],
                    ["TS_2", "-", "skipped: no tomogram"], ["TS_3", "-", "failed"]]
    assert "wbp.coords" in table.item(0, 2).toolTip()
    assert dialogs.shown[-1][1] == "Some runs were skipped" and "broken tile" in \
        dialogs.shown[-1][2]
    # a missing project config or tomogram type is named before anything runs
    calls.clear()
    tab.copick_tomo_type.setCurrentText("")
    assert not tab.run()
    assert "type of the tomograms" in dialogs.texts("critical")[-1] and not calls


def test_inference_tab_picks_a_copick_project_and_shows_a_run(window, qtbot, project, inputs,
                                                               tmp_path, dialogs):
    """The real job: picks land in the project under the chosen user and session, equal to
    the .coords copy listed, and a run opens in the viewer."""
    config, truth = project
    tab = window.infer_tab
    assert tab.set_inputs(*inputs)
    assert tab.set_copick_project(config)
    tab.copick_runs.setText("TS_3")
    tab.copick_session.setText("5")
    tab.device.setCurrentText("cpu")
    low_thresholds(tab)
    tab.out_dir.setText(str(tmp_path / "pred"))
    assert tab.run()
    qtbot.waitUntil(lambda: not tab.panel.running, timeout=120000)
    assert tab.panel.last_outcome == "finished", tab.panel.log_view.toPlainText()
    stored = stored_points(config, "TS_3", "deepetpicker", "5")
    assert sorted(stored) == ["proteasome", "ribosome"]
    coords = read_picks(tmp_path / "pred" / "TS_3" / "wbp.coords", num_cls=2)
    assert len(coords) > 0
    assert len(stored["ribosome"]) == int((coords.classes == 1).sum())
    assert len(stored["proteasome"]) == int((coords.classes == 2).sum())
    got = np.concatenate([stored["ribosome"], stored["proteasome"]])
    want = np.concatenate([coords.xyz[coords.classes == 1], coords.xyz[coords.classes == 2]])
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert tab.results_table.rowCount() == 1
    assert tab.results_table.item(0, 0).text() == "TS_3"
    assert tab.results_table.item(0, 1).text().startswith(f"{len(coords)} (")
    assert tab.results_table.item(0, 2).text() == "copick deepetpicker/5"
    # the run's tomogram (read in place) with the predicted picks, in the viewer
    tab.results_table.selectRow(0)
    assert tab.show_selected()
    viewer = window.viewer_tab
    assert viewer.tomogram.path.name == "wbp.zarr"
    assert viewer.tomogram.shape == truth["TS_3"][0].shape
    assert len(viewer.model) == len(coords)
    # a second run into the same user and session must be allowed first
    assert tab.run()
    qtbot.waitUntil(lambda: not tab.panel.running, timeout=120000)
    assert tab.panel.last_outcome == "failed"
    assert "already holds picks" in dialogs.texts("critical")[-1]


def test_the_mask_field_limits_the_picks_to_the_mask(window, qtbot, project, inputs, tmp_path,
                                                     dialogs):
    _config, truth = project
    volume = truth["TS_1"][0]
    tomo = tmp_path / "tomos" / "TS_1.mrc"
    write_tomogram(tomo, volume, VOXEL)
    mask = np.zeros(volume.shape, np.uint8)
    mask[:, :, : volume.shape[2] // 2] = 1                    # x below the middle
    write_tomogram(tmp_path / "roi.mrc", mask)
    tab = window.infer_tab
    assert tab.set_inputs(*inputs)
    tab.add_tomograms([str(tomo)])
    tab.device.setCurrentText("cpu")
    low_thresholds(tab)
    results = {}
    for name, mask_path in (("all", ""), ("masked", str(tmp_path / "roi.mrc"))):
        tab.mask_field.setText(mask_path)
        assert tab.job_arguments()[1]["mask"] == (mask_path or None)
        tab.out_dir.setText(str(tmp_path / name))
        assert tab.run()
        qtbot.waitUntil(lambda: not tab.panel.running, timeout=120000)
        assert tab.panel.last_outcome == "finished", tab.panel.log_view.toPlainText()
        results[name] = read_picks(tmp_path / name / "TS_1.coords")
    half = volume.shape[2] // 2
    everywhere, masked = results["all"], results["masked"]
    assert (everywhere.xyz[:, 0] >= half).any()                # picks outside without it
    assert len(masked) > 0 and (np.round(masked.xyz[:, 0]) < half).all()
    # inside the mask the picks are those of the unmasked run
    distance = np.linalg.norm(masked.xyz[:, None] - everywhere.xyz[None], axis=2)
    assert (distance.min(axis=1) < 1e-3).all()


# --------------------------------------------------------------------------------------------
# Particle Visualization tab
# --------------------------------------------------------------------------------------------
def test_viewer_opens_a_copick_run_with_its_picks_in_voxels(window, project, tmp_path,
                                                            dialogs):
    config, truth = project
    tab = window.viewer_tab
    assert tab.open_copick_run(config, "TS_1", "wbp", VOXEL, user_id="curator")
    volume, picks = truth["TS_1"]
    assert tab.tomogram.shape == volume.shape == (32, 64, 64)
    np.testing.assert_allclose(np.asarray(tab.tomogram.data[5]), volume[5])
    assert len(tab.model) == len(picks) == 5
    order_got, order_want = np.lexsort(tab.model.xyz.T), np.lexsort(picks.xyz.T)
    np.testing.assert_allclose(tab.model.xyz[order_got], picks.xyz[order_want], atol=1e-6)
    np.testing.assert_array_equal(tab.model.classes[order_got], picks.classes[order_want])
    # circles at the particles' sizes: 2 * radius / voxel spacing
    assert [tab.styles.diameter(c) for c in (1, 2)] == [24.0, 16.0]
    assert window.viewer_tab.document_title() == "TS_1/wbp.zarr - copick picks"
    assert not tab.model.dirty
    # one particle only
    assert tab.open_copick_run(config, "TS_1", "wbp", VOXEL, object_names=["proteasome"])
    assert set(tab.model.classes) == {2}
    assert len(tab.model) == int((picks.classes == 2).sum())
    # edited picks are saved and exported like any others
    tab.model.add(1, 10, 11, 12)
    assert tab.model.dirty
    assert tab.save_as(tmp_path / "edited.coords")
    saved = read_picks(tmp_path / "edited.coords")
    assert len(saved) == int((picks.classes == 2).sum()) + 1
    assert tab.save_as(tmp_path / "export" / "edited.star", fmt="star")
    assert list((tmp_path / "export").glob("*.star"))
    # a run without picks of that user, then mistakes named in the error
    assert tab.open_copick_run(config, "TS_3", "wbp", VOXEL, user_id="curator")
    assert len(tab.model) == 0 and tab.tomogram.shape == truth["TS_3"][0].shape
    assert not tab.open_copick_run(config, "TS_1", "denoised", VOXEL)
    assert "no 'denoised' tomogram" in dialogs.texts("critical")[-1]
    assert "wbp at 10 A" in dialogs.texts("critical")[-1]
    assert not tab.open_copick_run(config, "TS_9", "wbp", VOXEL)
    assert "no run named TS_9" in dialogs.texts("critical")[-1]
    assert tab.document.copick_run.name == "TS_3"           # nothing changed


def test_copick_dialog_offers_the_projects_runs_tomograms_and_pick_owners(qtbot, project):
    config, _ = project
    dialog = CopickRunDialog(config=str(config))
    qtbot.addWidget(dialog)
    runs = [dialog.run.itemText(i) for i in range(dialog.run.count())]
    assert runs == ["TS_1", "TS_2", "TS_3"]
    assert dialog.tomo_type.currentText() == "wbp"
    assert [dialog.object_name.itemText(i) for i in range(dialog.object_name.count())] == [
        "(all particles)", "ribosome", "proteasome"]
    assert dialog.user.findText("curator") >= 0 and dialog.session.findText("7") >= 0
    assert dialog.values() == {"config": str(config), "run": "TS_1", "tomo_type": "wbp",
                               "voxel_spacing": VOXEL, "user_id": None, "session_id": None,
                               "object_names": None}
    dialog.user.setCurrentText("curator")
    dialog.object_name.setCurrentText("ribosome")
    dialog.run.setCurrentText("TS_2")
    values = dialog.values()
    assert (values["run"], values["user_id"], values["object_names"]) == (
        "TS_2", "curator", ["ribosome"])
    # a config that is not a project says why
    broken = config.parent / "broken.json"
    broken.write_text("{not json")
    dialog.config.setText(str(broken))
    assert not dialog.read_project()
    assert "broken.json" in dialog.message.text()


def test_a_prediction_mask_opens_as_an_overlay(window, project, tmp_path, dialogs):
    """The mask given to prediction (same shape, non-zero = keep; MRC or .zarr) is drawn over
    the slices in one colour, inside only."""
    import zarr

    config, truth = project
    tab = window.viewer_tab
    assert tab.open_copick_run(config, "TS_1", "wbp", VOXEL)
    shape = truth["TS_1"][0].shape
    mask = np.zeros(shape, np.float32)
    mask[:, 10:30, 5:20] = 0.5                                  # any non-zero value is inside
    write_tomogram(tmp_path / "roi.mrc", mask)
    zarr.save_array(str(tmp_path / "roi.zarr"), (mask > 0).astype(np.uint8), chunks=(8, 16, 16))
    for path in (tmp_path / "roi.mrc", tmp_path / "roi.zarr"):
        assert tab.open_mask("mask", path), dialogs.shown
        item = tab.views.views["xy"].masks["mask"]
        assert item.isVisible() and tab.show_mask["mask"].isEnabled()
        rgba = item.image                                       # rows y, columns x
        assert rgba.shape == (shape[1], shape[2], 4)
        inside = rgba[..., 3] > 0
        assert inside[10:30, 5:20].all() and inside.sum() == 20 * 15
        assert tuple(rgba[15, 10, :3]) == (0, 200, 255)
        tab.show_mask["mask"].setChecked(False)
        assert not item.isVisible()
        tab.show_mask["mask"].setChecked(True)
    # the views of the other axes show it too
    assert tab.views.views["zy"].masks["mask"].isVisible()
    write_tomogram(tmp_path / "small.mrc", mask[:, :10])
    assert not tab.open_mask("mask", tmp_path / "small.mrc")
    assert "shape" in dialogs.texts("critical")[-1]
    QApplication.processEvents()

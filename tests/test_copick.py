"""copick projects: a project made with copick's own API becomes a dataset, and predictions go
back into it as copick picks equal to those of the same tomogram given as MRC."""

import json
from pathlib import Path

import numpy as np
import pytest

copick = pytest.importorskip("copick")

from deepetpicker.cli import main  # noqa: E402
from deepetpicker.config import TrainConfig, load_preprocess_config  # noqa: E402
from deepetpicker.copick_jobs import import_project, predict_into_project  # noqa: E402
from deepetpicker.errors import DeepETPickerError  # noqa: E402
from deepetpicker.io.copick_project import ProjectObject, class_objects  # noqa: E402
from deepetpicker.io.picks import read_picks  # noqa: E402
from deepetpicker.io.tomogram import write_tomogram  # noqa: E402
from deepetpicker.predict.job import predict  # noqa: E402
from deepetpicker.simulate import simulate_tomogram  # noqa: E402

VOXEL = 10.0
SHAPE = (32, 64, 64)
OBJECTS = [  # name, label, radius (Angstrom); the membrane is no particle
    {"name": "ribosome", "is_particle": True, "label": 1, "radius": 120.0},
    {"name": "proteasome", "is_particle": True, "label": 2, "radius": 80.0},
    {"name": "membrane", "is_particle": False, "label": 3},
]


def make_project(tmp_path: Path, runs=("TS_1", "TS_2", "TS_3"), picked=("TS_1", "TS_2")):
    """A file-system copick project: simulated tomograms (OME-Zarr written by copick) and the
    true particle centres as picks of user 'curator' (Angstrom) in the runs ``picked``."""
    config = tmp_path / "copick.json"
    config.write_text(json.dumps({
        "config_type": "filesystem", "name": "toy project", "pickable_objects": OBJECTS,
        "overlay_root": f"local://{tmp_path / 'overlay'}",
        "overlay_fs_args": {"auto_mkdir": True}}))
    root = copick.from_file(str(config))
    truth = {}
    for i, name in enumerate(runs):
        volume, picks, _ = simulate_tomogram(SHAPE, n_particles=5, classes=2, seed=i,
                                             voxel_size=VOXEL, ice_thickness=28)
        run = root.new_run(name)
        run.new_voxel_spacing(VOXEL).new_tomogram("wbp").from_numpy(volume)
        truth[name] = (volume, picks)
        if name in picked:
            for label, obj in ((1, "ribosome"), (2, "proteasome")):
                chosen = picks.classes == label
                target = run.new_picks(obj, "7", "curator")
                target.from_numpy(picks.xyz[chosen] * VOXEL)
    return config, truth


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_import_writes_coords_in_voxels_with_labels_and_a_config(project, tmp_path):
    config, truth = project
    out = tmp_path / "dataset"
    result = import_project(config, "wbp", VOXEL, "curator", out)
    assert sorted(result.counts) == ["TS_1", "TS_2"]
    assert result.no_picks == ["TS_3"] and result.no_tomogram == []
    for run in ("TS_1", "TS_2"):
        got = read_picks(out / "raw" / f"{run}.coords")
        want = truth[run][1]
        order_got = np.lexsort(got.xyz.T)
        order_want = np.lexsort(want.xyz.T)
        np.testing.assert_allclose(got.xyz[order_got], want.xyz[order_want], atol=1e-6)
        np.testing.assert_array_equal(got.classes[order_got], want.classes[order_want])
        assert (out / "raw" / f"{run}.zarr").is_dir()      # read in place
    assert not (out / "raw" / "TS_3.coords").exists()
    assert not any((out / "raw").glob("TS_3*"))
    pre = load_preprocess_config(result.config)
    assert result.config.parent == out / "configs"
    assert pre.num_cls == 2 and pre.class_names == ["ribosome", "proteasome"]
    assert pre.ocp_diameter == [24, 16]          # 2 * radius / voxel spacing
    assert pre.label_diameters == [15, 9] and pre.label_diameter == 9   # 24 > 2.5 x 9
    assert Path(pre.tomo_path) == out / "raw" and Path(pre.base_path) == out
    record = json.loads((out / "copick_import.json").read_text())
    assert record["runs_without_picks"] == ["TS_3"]
    # the class names reach a training config made from it
    assert TrainConfig.from_preprocess(pre, "0", "1").class_names == ["ribosome", "proteasome"]
    # importing the same picks again writes the same files; changed picks need --overwrite
    import_project(config, "wbp", VOXEL, "curator", out)
    run = copick.from_file(str(config)).get_run("TS_2")
    run.get_picks(object_name="ribosome", user_id="curator")[0].from_numpy(
        np.array([[100.0, 200.0, 150.0]]))
    with pytest.raises(DeepETPickerError, match="--overwrite"):
        import_project(config, "wbp", VOXEL, "curator", out)
    again = import_project(config, "wbp", VOXEL, "curator", out, overwrite=True)
    assert again.counts["TS_2"][1] == 1
    with pytest.raises(DeepETPickerError, match="no run named"):
        import_project(config, "wbp", VOXEL, "curator", out, runs=["TS_9"])


def test_import_preprocess_runs_on_the_imported_dataset(project, tmp_path):
    from deepetpicker.preprocess.job import preprocess

    config, _ = project
    result = import_project(config, "wbp", VOXEL, "curator", tmp_path / "ds", runs=["TS_1"])
    pre = load_preprocess_config(result.config)
    done = preprocess(pre)
    assert (Path(pre.base_path) / "data_std" / "TS_1.mrc").is_file()
    assert done is not None


def test_import_refuses_gaps_in_labels_and_missing_radius(tmp_path):
    objects = [{"name": "a", "is_particle": True, "label": 1, "radius": 50.0},
               {"name": "b", "is_particle": True, "label": 3, "radius": 50.0}]
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"config_type": "filesystem", "pickable_objects": objects,
                                  "overlay_root": f"local://{tmp_path / 'o'}"}))
    with pytest.raises(DeepETPickerError, match="without gaps"):
        import_project(config, "wbp", VOXEL, "u", tmp_path / "out")
    objects[1] = {"name": "b", "is_particle": True, "label": 2}
    config.write_text(json.dumps({"config_type": "filesystem", "pickable_objects": objects,
                                  "overlay_root": f"local://{tmp_path / 'o'}"}))
    with pytest.raises(DeepETPickerError, match="'b' has no radius"):
        import_project(config, "wbp", VOXEL, "u", tmp_path / "out")


def test_classes_go_to_objects_by_name_else_label():
    objects = [ProjectObject("ribosome", 1, 100.0), ProjectObject("proteasome", 2, 80.0)]
    assert class_objects(2, ["class1", "class2"], objects) == {1: "ribosome", 2: "proteasome"}
    assert class_objects(2, ["proteasome", "ribosome"], objects) == {1: "proteasome",
                                                                     2: "ribosome"}
    with pytest.raises(DeepETPickerError, match="no particle for class 3"):
        class_objects(3, None, objects)
    with pytest.raises(DeepETPickerError, match="both be written"):
        class_objects(2, ["ribosome", "class2"], [ProjectObject("ribosome", 2, 1.0)])


PICKING = {"t_seg": 0.0, "t_lm": 0.0, "min_score": 0.0}


def test_predict_into_project_equals_predicting_the_mrc(project, tiny_two_class, tmp_path):
    config, truth = project
    cfg, weights = tiny_two_class
    result = predict_into_project(cfg, weights, config, "wbp", VOXEL, runs=["TS_1", "TS_3"],
                                  out=tmp_path / "pred", picking=PICKING, device="cpu")
    assert sorted(result.written) == ["TS_1", "TS_3"]
    root = copick.from_file(str(config))
    for run_name in ("TS_1", "TS_3"):
        mrc = tmp_path / "mrc" / f"{run_name}.mrc"
        write_tomogram(mrc, truth[run_name][0], VOXEL)
        direct = predict(cfg, weights, tomograms=[mrc], out=tmp_path / "mrc_pred",
                         picking=PICKING, device="cpu")
        want = read_picks(direct.outputs[0], num_cls=2)
        assert len(want) > 0
        run = root.get_run(run_name)
        for label, obj in ((1, "ribosome"), (2, "proteasome")):
            stored = run.get_picks(object_name=obj, user_id="deepetpicker", session_id="0")
            assert len(stored) == 1                       # one file per object
            points, _ = stored[0].numpy()
            chosen = want.classes == label
            assert len(points) == chosen.sum() == result.written[run_name][obj]
            got_xyz = points / VOXEL
            order_got, order_want = np.lexsort(got_xyz.T), np.lexsort(want.xyz[chosen].T)
            np.testing.assert_allclose(got_xyz[order_got], want.xyz[chosen][order_want],
                                       atol=1e-3)
            np.testing.assert_allclose(stored[0].scores()[order_got],
                                       want.scores[chosen][order_want], atol=1e-9)
    # the user's own picks are untouched
    assert len(root.get_run("TS_1").get_picks(user_id="curator")) == 2
    # a second run needs --overwrite
    with pytest.raises(DeepETPickerError, match="--overwrite"):
        predict_into_project(cfg, weights, config, "wbp", VOXEL, runs=["TS_1"],
                             out=tmp_path / "pred", picking=PICKING, device="cpu")
    again = predict_into_project(cfg, weights, config, "wbp", VOXEL, runs=["TS_1"],
                                 out=tmp_path / "pred", picking=PICKING, device="cpu",
                                 overwrite=True)
    assert again.written["TS_1"] == result.written["TS_1"]


def test_cli_import_and_predict(project, tiny_two_class, tmp_path, capsys):
    config, _ = project
    cfg, weights = tiny_two_class
    out = tmp_path / "ds"
    assert main(["copick", "import", str(config), "--tomo-type", "wbp", "--voxel-spacing",
                 "10", "--user", "curator", "--session", "7", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "TS_3" in text and "deepetpicker preprocess" in text
    assert (out / "raw" / "TS_1.coords").is_file()
    from deepetpicker.config import save_config

    train = tmp_path / "train.py"
    save_config(cfg, train)
    argv = ["predict", str(train), "--weights", str(weights), "--copick", str(config),
            "--tomo-type", "wbp", "--voxel-spacing", "10", "--runs", "TS_2", "--t-seg", "0",
            "--t-lm", "0", "--min-score", "0", "--device", "cpu", "--session", "1",
            "--out", str(tmp_path / "pred")]
    assert main(argv) == 0
    run = copick.from_file(str(config)).get_run("TS_2")
    stored = run.get_picks(user_id="deepetpicker", session_id="1")
    assert sorted(p.pickable_object_name for p in stored) == ["proteasome", "ribosome"]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


def test_a_project_stored_elsewhere_is_read_chunk_by_chunk_into_mrc(project, tiny_two_class,
                                                                     tmp_path, monkeypatch):
    """Without a local .zarr path (a project on S3, the Data Portal...), the import copies the
    tomogram to MRC slab by slab and prediction picks a temporary copy."""
    import mrcfile

    from deepetpicker.io import copick_project

    config, truth = project
    cfg, weights = tiny_two_class
    monkeypatch.setattr(copick_project, "local_zarr_path", lambda tomogram: None)
    result = import_project(config, "wbp", VOXEL, "curator", tmp_path / "ds", runs=["TS_1"])
    assert result.tomograms["TS_1"] == tmp_path / "ds" / "raw" / "TS_1.mrc"
    with mrcfile.open(result.tomograms["TS_1"]) as mrc:
        np.testing.assert_array_equal(mrc.data, truth["TS_1"][0])
        assert float(mrc.voxel_size.x) == pytest.approx(VOXEL)
    done = predict_into_project(cfg, weights, config, "wbp", VOXEL, runs=["TS_1"],
                                out=tmp_path / "pred", picking=PICKING, device="cpu")
    assert not (tmp_path / "pred" / "TS_1" / ".copick-tomogram").exists()
    mrc_path = tmp_path / "mrc" / "TS_1.mrc"
    write_tomogram(mrc_path, truth["TS_1"][0], VOXEL)
    direct = predict(cfg, weights, tomograms=[mrc_path], out=tmp_path / "direct",
                     picking=PICKING, device="cpu")
    want = read_picks(direct.outputs[0], num_cls=2)
    assert sum(done.written["TS_1"].values()) == len(want) > 0


def test_without_copick_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    from deepetpicker.io.copick_project import open_project

    config = tmp_path / "c.json"
    config.write_text("{}")
    monkeypatch.setitem(sys.modules, "copick", None)
    with pytest.raises(DeepETPickerError, match=r"pip install 'deepetpicker\[copick\]'"):
        open_project(config)


@pytest.mark.slow
def test_import_preprocess_train_predict_into_the_project(project, tmp_path):
    """The whole way: the checkpoint trained on an imported project names its classes after
    the project's objects, and its picks land on those objects."""
    from deepetpicker.model import load_checkpoint
    from deepetpicker.preprocess.job import preprocess
    from deepetpicker.train.job import train

    from train_fixtures import train_config

    config, _ = project
    imported = import_project(config, "wbp", VOXEL, "curator", tmp_path / "ds")
    pre = load_preprocess_config(imported.config)
    preprocess(pre)
    cfg = train_config(pre, "0", "1", max_epochs=1)
    assert cfg.class_names == ["ribosome", "proteasome"]
    run = train(cfg)
    _, meta = load_checkpoint(run.last_checkpoint)
    assert meta["class_names"] == ["ribosome", "proteasome"]
    assert meta["label_diameters"] == [15, 9]          # one weak label per class, recorded
    result = predict_into_project(None, run.last_checkpoint, config, "wbp", VOXEL,
                                  runs=["TS_3"], out=tmp_path / "pred", picking=PICKING,
                                  device="cpu")
    coords = read_picks(result.outputs["TS_3"], num_cls=2)
    assert result.written["TS_3"] == {"ribosome": int((coords.classes == 1).sum()),
                                      "proteasome": int((coords.classes == 2).sum())}

"""The accuracy benchmark's table: means and spreads over seeds, parts of one benchmark
merged."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(bench, seed, runs, dog):
    return {"classes": json.loads(json.dumps(bench.CLASSES)), "shape": list(bench.SHAPE),
            "dog": {str(seed): dog},
            "runs": [dict(seed=seed, variant=v, steps=s, tta=t, f1=f, per_class=pc)
                     for v, s, t, f, pc in runs]}


def test_table_merges_parts_and_reports_mean_and_spread(bench, tmp_path, capsys):
    part0 = _record(bench, 0, [("scratch", 300, False, 0.6, [1.0, 0.0, 0.5, 0.9]),
                               ("pretrained", 300, False, 0.8, [1.0, 0.5, 0.5, 1.0])], 0.5)
    part1 = _record(bench, 1, [("scratch", 300, False, 0.8, [0.8, 0.2, 0.5, 0.7])], 0.7)
    again = _record(bench, 1, [("scratch", 300, False, 0.1, [0.0, 0.0, 0.0, 0.0])], 0.7)
    files = []
    for i, record in enumerate((part0, part1, again)):
        files.append(tmp_path / f"part{i}.json")
        files[-1].write_text(json.dumps(record))
    assert bench.main(["--table", *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2 seeds" in lines[0]
    scratch = next(line for line in lines if line.startswith("| scratch | 300 | no |"))
    # seeds 0 and 1: 0.6 and 0.8 (the repeated seed-1 run counts once); class F1: the mean of
    # each run's classes, 0.6 and 0.55
    assert "| 0.700 ± 0.100 | 0.575 ± 0.025 |" in scratch
    assert scratch.endswith("| 0.90 | 0.10 | 0.50 | 0.80 |")
    pretrained = next(line for line in lines if line.startswith("| pretrained |"))
    assert "0.800 ± 0.000 (1 seeds)" in pretrained
    assert lines[-1].startswith("| DoG blob detector") and "0.600 ± 0.100" in lines[-1]


def test_results_of_other_benchmarks_are_not_merged(bench):
    part = _record(bench, 0, [], 0.5)
    other = dict(part, shape=[1, 2, 3])
    with pytest.raises(SystemExit, match="cannot share a table"):
        bench.merge_records([part, other])
    relabelled = dict(part, labels=[7, 13, 11, 9])        # painted with another label rule
    with pytest.raises(SystemExit, match="weak labels"):
        bench.merge_records([dict(part, labels=[7, 7, 7, 7]), relabelled])


def test_the_published_tables_are_the_recorded_benchmarks(bench, capsys):
    """docs/accuracy.md and README's summary are what the recorded results print: every
    marked table there is up to date, and every results file has its table."""
    import importlib.util as util

    root = SCRIPT.parents[1]
    spec = util.spec_from_file_location("accuracy_tables", root / "scripts" /
                                        "accuracy_tables.py")
    tables = util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    assert tables.main(["--check"]) == 0, capsys.readouterr().err
    page = (root / "docs" / "accuracy.md").read_text()
    recorded = sorted(p.name for p in (root / "docs" / "benchmarks").glob("*.json"))
    for name in recorded:
        assert f"<!-- table: {name} -->" in page, name
        assert tables.table(name) in page, name
    readme = (root / "README.md").read_text()
    assert tables.summary() in readme
    labels = {name: json.loads((root / "docs" / "benchmarks" / name).read_text()).get("labels")
              for name in recorded}
    assert labels["accuracy.json"] == labels["class_labels.json"] == [7, 13, 11, 9]
    assert labels["shared_label.json"] == [9, 9, 9, 9]
    assert labels["accuracy_shared_label.json"] is None           # painted before recorded
    # the summary's rows: this version and the one before for each case
    assert "| 4 kinds, 10-22 voxels, one shared 9-voxel label | before |" in readme


@pytest.mark.parametrize("recorded, says", [(None, "unrecorded"),
                                            ([7, 7, 7, 7], r"\[7, 7, 7, 7\]")])
def test_resume_refuses_runs_painted_with_other_labels(bench, tmp_path, monkeypatch, recorded,
                                                        says):
    """``--resume`` never adds runs to a file whose runs were painted with other (or
    unrecorded) weak labels, and leaves that file as it was."""
    from types import SimpleNamespace

    old = _record(bench, 0, [("scratch", 300, False, 0.6, [1.0, 0.0, 0.5, 0.9])], 0.5)
    if recorded is not None:
        old["labels"] = recorded
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    painted = SimpleNamespace(label_diameters=[7, 13, 11, 9], label_diameter=7)
    monkeypatch.setattr(bench, "simulate", lambda out, seed, case: painted)
    monkeypatch.setattr(bench, "train_variant", lambda *a: pytest.fail("trained anyway"))
    with pytest.raises(SystemExit, match=says) as refused:
        bench.main(["--seeds", "0", "--steps", "300", "--variants", "scratch", "--resume",
                    "--json", str(path), "--out", str(tmp_path / "out")])
    assert str(path) in str(refused.value) and "[7, 13, 11, 9]" in str(refused.value)
    assert json.loads(path.read_text()) == old


@pytest.mark.slow
def test_resume_scores_a_finished_training_without_training_again(bench, tmp_path):
    """A training that ran to its last epoch with the same settings is taken by a resumed
    benchmark; a run with other settings is trained again."""
    from deepetpicker.train.job import train

    from train_fixtures import make_preprocessed, train_config

    pre, _ = make_preprocessed(tmp_path, n_tomos=2)
    cfg = train_config(pre, max_epochs=2)
    assert bench.finished_run(cfg) is None                   # nothing trained yet
    result = train(cfg)
    finished = bench.finished_run(cfg)
    assert finished["best_epoch"] == result.best_epoch and finished["minutes"] > 0
    assert finished["best"] == result.best_checkpoint
    assert bench.finished_run(train_config(pre, max_epochs=3)) is None   # more epochs asked
    assert bench.finished_run(train_config(pre, max_epochs=2, lr=0.02)) is None


def test_table_shows_the_localisation_f1_with_every_pick_kept_where_recorded(bench, capsys):
    record = _record(bench, 0, [("pretrained", 300, False, 0.7, [1.0, 0.0, 0.5, 1.0])], 0.5)
    record["runs"][0]["all"] = {"f1": 0.9}
    record["runs"].append(dict(record["runs"][0], variant="pretrained:before", f1=0.6,
                               class_f1=0.25))
    del record["runs"][1]["all"]
    bench.print_table(record)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("| localisation F1, every pick kept |")
    row = next(line for line in lines if line.startswith("| pretrained | 300 |"))
    assert "| 0.700 ± 0.000 | 0.625 ± 0.000 |" in row and row.endswith("| 0.900 |")
    before = next(line for line in lines if line.startswith("| pretrained:before |"))
    assert "| 0.600 ± 0.000 | 0.250 ± 0.000 |" in before and before.endswith("| 1.00 | |")

#!/usr/bin/env python
"""Detection-threshold rules compared on trainings that ``bench_accuracy.py`` finished.

For each run folder given (``OUT/CASE/seedN/data/runs/NAME``, a ``best.pth`` inside), the
network picks the validation tomogram and the two held-out ones with every pick kept. Each
rule then chooses per-class thresholds on the validation picks alone, and the held-out picks
those thresholds keep are scored by the occupancy rule (localisation F1, class F1):

* ``best``: the thresholds with the best validation localisation F1
  (``best_detection_thresholds(..., tolerance=0)``);
* ``one particle``: from there, lowered while the validation F1 stays within 1 / N of the
  best (N validation particles; the library's default);
* ``every pick``: no threshold (``--min-score 0``).

    python scripts/bench_thresholds.py OUT/shared_label/seed0/data/runs/pretrained_300
    python scripts/bench_thresholds.py RUN [RUN ...] --json rules.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_accuracy  # noqa: E402  (the benchmark whose trainings these are)

RULES = {"best": 0.0, "one particle": None, "every pick": "all"}


def compare(run_dir: Path) -> dict:
    """The held-out scores of each rule for the training in ``run_dir``."""
    from deepetpicker.io.picks import read_picks
    from deepetpicker.matching import best_detection_thresholds
    from deepetpicker.model.checkpoint import read_checkpoint
    from deepetpicker.picking.settings import apply_min_score
    from deepetpicker.predict.job import predict
    from deepetpicker.train.validation import MATCH_FRACTION

    _, pre, names = bench_accuracy.finished_training(run_dir)
    val, held_out = names[2], names[3:]
    out = run_dir / "threshold_rules"
    if not all((out / f"{t.stem}.coords").exists() for t in [val, *held_out]):
        predict(None, run_dir / "best.pth", tomograms=[val, *held_out], out=out,
                picking={"min_score": 0.0}, overwrite=True, force=True)
    meta = read_checkpoint(run_dir / "best.pth", "cpu")
    k = int(meta["config"]["num_cls"])
    radii = [float(d) / 2.0 for d in meta["diameters"]]
    truth = read_picks(Path(pre.coord_path) / f"{val.stem}{pre.coord_format}")
    picks = read_picks(out / f"{val.stem}.coords", num_cls=k)
    rows = {}
    for rule, tolerance in RULES.items():
        if tolerance == "all":
            thresholds = [0.0] * k
        else:
            thresholds = [c.threshold for c in best_detection_thresholds(
                [picks], [truth], radii, k, fraction=MATCH_FRACTION, tolerance=tolerance)]
        kept = [apply_min_score(read_picks(out / f"{t.stem}.coords", num_cls=k), thresholds, k)
                for t in held_out]
        run = bench_accuracy.scored_run(bench_accuracy.score_held_out(pre, kept, k))
        rows[rule] = dict(f1=run["f1"], class_f1=run["class_f1"],
                          thresholds=[round(t, 4) for t in thresholds])
    return rows


def print_table(record: dict) -> None:
    print("| run | " + " | ".join(f"{rule}: localisation F1" for rule in RULES)
          + " | one particle - every pick |")
    print("|---|" + "---|" * (len(RULES) + 1))
    for name, rows in record.items():
        print(f"| {name} | " + " | ".join(f"{rows[r]['f1']:.3f}" for r in RULES)
              + f" | {rows['one particle']['f1'] - rows['every pick']['f1']:+.3f} |")
    means = {r: statistics.fmean(rows[r]["f1"] for rows in record.values()) for r in RULES}
    worst = min(rows["one particle"]["f1"] - rows["every pick"]["f1"]
                for rows in record.values())
    print(f"| mean of {len(record)} | " + " | ".join(f"{means[r]:.3f}" for r in RULES)
          + f" | lowest {worst:+.3f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders holding best.pth")
    parser.add_argument("--json", type=Path, help="every number (read back with --table)")
    parser.add_argument("--table", action="store_true", help="print the --json file's table")
    args = parser.parse_args(argv)
    record = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    if not args.table:
        for run_dir in args.runs:
            name = bench_accuracy.finished_training(run_dir)[0]
            record[name] = compare(run_dir)
            print(name, json.dumps({r: round(v["f1"], 3) for r, v in record[name].items()}),
                  flush=True)
            if args.json:
                args.json.write_text(json.dumps(record, indent=1))
    print_table(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Accuracy per training budget on simulated data the network has not seen.

For each seed the script simulates a small dataset of particle kinds among vesicles and gold
(``--case``: ``class_labels``, four kinds of 10-20 voxels each with its own weak label;
``shared_label``, a globule, a barrel, a stalk and a dimer of 10-22 voxels with one 9-voxel
label for all, as the original program's users set it; ``similar``, four kinds of 14-20
voxels; ``many``, eight kinds): two tomograms to train on, one to validate on and two held
out. It then trains the light network at fixed numbers of optimiser steps (the demo's patch
size) in several variants and picks the held-out tomograms from their raw reconstructions:

* ``scratch``: random initial weights, no weight average, each class map searched on its own,
  every pick kept (the paper's way);
* ``ema_tuned``: random initial weights and this version's defaults: moving average of the
  weights, particles found on the summed class maps, score thresholds tuned per class on the
  validation tomogram;
* ``pretrained``: as ``ema_tuned`` but starting from the packaged pretrained light network
  (skipped when this installation has none).

``--set KEY=VALUE`` changes training settings of every variant (recorded under the variant's
name with ``--tag``). Each run is scored with the variant's rule and, for the variants that
tune thresholds, again with every pick kept (``--min-score 0``), optionally with test-time
augmentation, by the SHREC-2021 occupancy rule: localisation F1 (a particle found by any pick)
and the F1 of each class. A difference-of-Gaussians blob detector given the true number of
particles is the floor. Printed: one row per variant and budget with the mean and spread
(population standard deviation) over seeds of the localisation F1 and of the mean class F1,
each kind's class F1, and the localisation F1 with every pick kept. Every number goes to
``OUT/results.json`` after each run; ``--resume`` continues an interrupted benchmark (the runs
in that file are kept and a training that finished under OUT is scored without training it
again) and ``--table`` prints its table.

    python scripts/bench_accuracy.py --case shared_label --seeds 0 1 2 --steps 300 --no-tta
    python scripts/bench_accuracy.py --seeds 0 --steps 300 --variants scratch ema_tuned
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The particle kinds of the benchmark (name, simulator shape, diameter in voxels).
CLASSES = [dict(name="globule", shape="globule", diameter=10),
           dict(name="ring", shape="ring", diameter=20),
           dict(name="stalk", shape="stalk", diameter=18),
           dict(name="dimer", shape="rod", diameter=16)]
SHAPE = (64, 160, 160)
#: The data sets (``--case``): particle kinds, tomogram shape and weak labels (None: the
#: simulator's rule, one label per class where a class is much wider than the shared one;
#: a number: that one label for every class, as the original program's users set it).
CASES = {
    "class_labels": dict(classes=CLASSES, shape=SHAPE, label=None),
    "shared_label": dict(classes=[dict(name="globule", shape="globule", diameter=10),
                                  dict(name="barrel", shape="barrel", diameter=16),
                                  dict(name="stalk", shape="stalk", diameter=18),
                                  dict(name="dimer", shape="rod", diameter=22)],
                         shape=SHAPE, label=9),
    "similar": dict(classes=[dict(name="globule", shape="globule", diameter=14),
                             dict(name="barrel", shape="barrel", diameter=16),
                             dict(name="dimer", shape="rod", diameter=18),
                             dict(name="stalk", shape="stalk", diameter=20)],
                    shape=SHAPE, label=None),
    "many": dict(classes=[dict(name="small", shape="globule", diameter=8),
                          dict(name="globule", shape="globule", diameter=12),
                          dict(name="barrel", shape="barrel", diameter=16),
                          dict(name="dimer", shape="rod", diameter=18),
                          dict(name="stalk", shape="stalk", diameter=20),
                          dict(name="ring", shape="ring", diameter=20),
                          dict(name="shell", shape="shell", diameter=22),
                          dict(name="complex", shape="complex", diameter=24)],
                 shape=(64, 224, 224), label=None),
}
N_TOMOGRAMS = 5            # train on 0 and 1, validate on 2, hold out 3 and 4
PATCH, PAD, BATCH = 40, 6, 8
VARIANTS = ("scratch", "ema_tuned", "pretrained")


def simulate(out: Path, seed: int, case: str = "class_labels"):
    from dataclasses import replace

    from deepetpicker.config import load_preprocess_config
    from deepetpicker.preprocess.job import preprocess
    from deepetpicker.simulate import simulate_dataset

    spec = CASES[case]
    config = simulate_dataset(out, n=N_TOMOGRAMS, shape=spec["shape"], classes=spec["classes"],
                              seed=seed, reuse=True)
    pre = load_preprocess_config(config)
    if spec["label"] is not None:
        pre = replace(pre, label_diameter=int(spec["label"]), label_diameters=None)
    preprocess(pre)
    return pre


def train_variant(pre, variant: str, steps: int, seed: int, log, reuse: bool = False,
                  overrides: dict | None = None, name: str = ""):
    """Train one variant for about ``steps`` optimiser steps: ``(config, best.pth, steps
    done, minutes of training)``; ``overrides`` go on top of the variant's settings, ``name``
    names its run folder. With ``reuse`` a training with the same settings that
    finished in the run folder is taken instead of training again."""
    from deepetpicker.config import NETWORK_PRESETS, TrainConfig
    from deepetpicker.train.job import train

    settings = dict(dset_name=f"{name or variant}_{steps}", device="cpu", seed=seed,
                    patch_size=PATCH,
                    padding_size=PAD, batch_size=BATCH, lr=3e-3,
                    f_maps=list(NETWORK_PRESETS["light"]),
                    max_epochs=1)
    if variant == "scratch":
        settings.update(ema_decay=0.0, localize="class")
    if "init" in TrainConfig.__dataclass_fields__:
        settings["init"] = "pretrained" if variant == "pretrained" else "scratch"
    settings.update(overrides or {})
    probe = TrainConfig.from_preprocess(pre, [0, 1], [2], **settings)
    from deepetpicker.train.dataset import load_entries

    patches = sum(len(e.picks) for e in load_entries(probe, probe.train_set_ids,
                                                       "train_set_ids"))
    per_epoch = max(1, math.ceil(patches / BATCH))
    settings["max_epochs"] = max(1, round(steps / per_epoch))
    settings["val_every"] = max(1, settings["max_epochs"] // 8)
    cfg = TrainConfig.from_preprocess(pre, [0, 1], [2], **settings)
    n_steps = cfg.max_epochs * per_epoch
    finished = finished_run(cfg) if reuse else None
    if finished is not None:
        log(f"  {variant} {steps} steps: scoring the finished training in {cfg.run_dir} (best "
            f"epoch {finished['best_epoch']}, val F1 {finished['best_f1']:.3f})")
        return cfg, finished["best"], n_steps, finished["minutes"]
    t0 = time.monotonic()
    result = train(cfg)
    seconds = time.monotonic() - t0
    log(f"  {variant} {steps} steps ({cfg.max_epochs} epochs of {per_epoch}): best epoch "
        f"{result.best_epoch}, val F1 {result.best_f1:.3f}, {seconds:.0f} s")
    return cfg, result.best_checkpoint, n_steps, seconds / 60.0


def finished_run(cfg):
    """The summary (``best.pth`` path, best epoch and F1, minutes) of a training with exactly
    these settings that ran to its last epoch in ``cfg.run_dir`` (an interrupted benchmark
    scored it not yet, or not with and without TTA), or None: such a run is scored again
    rather than trained again."""
    from deepetpicker.errors import DeepETPickerError
    from deepetpicker.model.checkpoint import BEST, LAST, read_checkpoint

    run = Path(cfg.run_dir)
    if not ((run / LAST).is_file() and (run / BEST).is_file()):
        return None
    try:
        meta = read_checkpoint(run / LAST)
    except DeepETPickerError:
        return None
    if meta.get("config") != cfg.to_dict() or meta.get("epoch") != cfg.max_epochs:
        return None
    seconds = sum(row.get("epoch_time_s", 0.0) + row.get("val_time_s", 0.0)
                  for row in meta.get("history") or [])
    return {"best": run / BEST, "best_epoch": meta.get("best_epoch"),
            "best_f1": meta.get("best_f1") or 0.0, "minutes": seconds / 60.0}


def score(pre, cfg, weights, variant: str, tta: bool, out: Path, keep_all: bool = False):
    """Pick the held-out tomograms; pooled occupancy-rule scores. ``keep_all``: every pick
    kept (``--min-score 0``) instead of the variant's rule."""
    from deepetpicker.io.picks import read_picks
    from deepetpicker.predict.job import predict

    picking = {"min_score": 0.0} if variant == "scratch" or keep_all else {}
    result = predict(cfg, weights, tomograms=[raw for raw, _, _ in _held_out(pre)], out=out,
                     picking=picking, tta=tta, overwrite=True, force=True)
    return score_held_out(pre, [read_picks(path) for path in result.outputs],
                          int(cfg.num_cls))


def score_held_out(pre, tables, num_cls: int):
    """The pooled occupancy-rule scores of picks on the held-out tomograms (one table each,
    in the order of their names)."""
    from deepetpicker.evaluate.occupancy import evaluate_occupancy, pool_occupancy
    from deepetpicker.io.picks import read_picks
    from deepetpicker.io.tomogram import load_tomogram

    return pool_occupancy([evaluate_occupancy(table, read_picks(truth),
                                              load_tomogram(occupancy).data[...],
                                              num_cls=num_cls)
                           for table, (_, truth, occupancy) in zip(tables, _held_out(pre))])


def finished_training(run_dir: Path):
    """``(name, preprocess config, tomograms)`` of a training this benchmark finished in
    ``run_dir`` (``OUT/CASE/seedN/data/runs/NAME``): a name for tables, the dataset's config,
    and its tomograms in order (train, train, validate, held out, held out)."""
    from deepetpicker.config import load_preprocess_config

    parts = Path(run_dir).resolve().parts
    pre = load_preprocess_config(Path(run_dir).parents[1] / "configs" / "simulated.py")
    names = sorted(Path(pre.tomo_path).glob(f"*{pre.tomo_format}"))
    return f"{parts[-5]} seed {parts[-4].removeprefix('seed')} {parts[-1]}", pre, names


def scored_run(pooled) -> dict:
    """What a run records of its pooled scores: localisation F1, class F1 per class and their
    mean, picks, picks on background and particles hit more than once."""
    per_class = [c.f1 for c in pooled.per_class]
    present = [v for v, c in zip(per_class, pooled.per_class) if c.n_truth and v is not None]
    return dict(f1=pooled.f1, per_class=per_class,
                class_f1=statistics.fmean(present) if present else 0.0, picks=pooled.rr,
                background=pooled.fp, multiple_hits=pooled.mh)


def _held_out(pre):
    names = sorted(Path(pre.tomo_path).glob(f"*{pre.tomo_format}"))
    rows = []
    for raw in names[3:]:
        rows.append((raw, Path(pre.coord_path) / f"{raw.stem}{pre.coord_format}",
                     pre.ocp_dir / f"{raw.stem}.mrc"))
    return rows


def dog_floor(pre) -> float:
    """Localisation F1 of a difference-of-Gaussians blob detector told the true particle
    count, on the held-out tomograms: the best of a few blob sizes."""
    from scipy import ndimage

    from deepetpicker.evaluate.occupancy import evaluate_occupancy, pool_occupancy
    from deepetpicker.io.picks import Picks, read_picks
    from deepetpicker.io.tomogram import load_tomogram

    best = 0.0
    radii = sorted({float(d) / 2.0 for d in pre.ocp_diameter})
    for radius in radii:
        sigma = radius / math.sqrt(3.0)          # a ball of this radius answers most at sigma
        scored = []
        for raw, truth_path, occupancy in _held_out(pre):
            volume = np.asarray(load_tomogram(raw).data, np.float32)
            dark = -(volume - volume.mean()) / (volume.std() or 1.0)   # protein is dark
            dog = ndimage.gaussian_filter(dark, sigma) - ndimage.gaussian_filter(dark,
                                                                                 1.6 * sigma)
            size = max(3, int(2 * min(radii)) | 1)
            peaks = np.argwhere((dog == ndimage.maximum_filter(dog, size=size)) & (dog > 0))
            truth = read_picks(truth_path)
            order = np.argsort(-dog[tuple(peaks.T)])[:len(truth)]
            zyx = peaks[order].astype(float)
            picks = Picks(np.ones(len(zyx), int), zyx[:, ::-1], dog[tuple(peaks[order].T)])
            scored.append(evaluate_occupancy(picks, truth,
                                             np.asarray(load_tomogram(occupancy).data),
                                             num_cls=int(pre.num_cls)))
        best = max(best, pool_occupancy(scored).f1)
    return best


def _spread(values):
    return (statistics.fmean(values), statistics.pstdev(values)) if values else (math.nan, 0.0)


def run_key(run: dict) -> tuple:
    """What one scored run is of: seed, variant, steps asked for and TTA."""
    return run["seed"], run["variant"], run["steps"], run["tta"]


def merge_records(records: list) -> dict:
    """One record of several (the same benchmark run in parts); a run in two parts counts
    once."""
    merged = {"case": records[0].get("case", "class_labels"), "classes": records[0]["classes"],
              "shape": records[0]["shape"], "labels": records[0].get("labels"), "dog": {},
              "runs": []}
    seen = set()
    for record in records:
        if (record["classes"] != merged["classes"] or record["shape"] != merged["shape"]
                or record.get("labels") != merged["labels"]):
            raise SystemExit("These results come from benchmarks with other particle classes, "
                             "tomogram sizes or weak labels; they cannot share a table.")
        merged["dog"].update(record["dog"])
        for run in record["runs"]:
            key = run_key(run)
            if key not in seen:
                seen.add(key)
                merged["runs"].append(run)
    return merged


def _class_f1(run: dict) -> float:
    """The mean class F1 of a run (recorded, or from its per-class F1 in older records)."""
    if "class_f1" in run:
        return run["class_f1"]
    present = [v for v in run["per_class"] if v is not None]
    return statistics.fmean(present) if present else 0.0


def print_table(record: dict) -> None:
    """The README table: one row per variant, budget and TTA, mean ± spread over seeds of the
    localisation F1 and the mean class F1, the class F1 of each kind, and (where recorded) the
    localisation F1 with every pick kept."""
    names = [c["name"] for c in record["classes"]]
    rows: dict = {}
    for run in record["runs"]:
        rows.setdefault((run["variant"], run["steps"], run["tta"]), []).append(run)
    seeds = sorted({run["seed"] for run in record["runs"]} | set(map(int, record["dog"])))
    keep_all = any("all" in run for run in record["runs"])
    print(f"| variant | steps | TTA | localisation F1 (mean ± sd, {len(seeds)} seeds) | "
          f"class F1 | " + " | ".join(names) + " |"
          + (" localisation F1, every pick kept |" if keep_all else ""))
    print("|---|---|---|---|---|" + "---|" * len(names) + ("---|" if keep_all else ""))
    order = {v: i for i, v in enumerate(VARIANTS)}
    def place(key):        # budget, then the variant (its tagged versions after it), then TTA
        base, _, tag = key[0].partition(":")
        return key[1], order.get(base, len(order)), base, tag, key[2]

    for (variant, steps, tta) in sorted(rows, key=place):
        runs = rows[(variant, steps, tta)]
        mean, sd = _spread([r["f1"] for r in runs])
        cmean, csd = _spread([_class_f1(r) for r in runs])
        classes = [_spread([r["per_class"][i] or 0.0 for r in runs])[0]
                   for i in range(len(names))]
        note = "" if len(runs) == len(seeds) else f" ({len(runs)} seeds)"
        line = (f"| {variant} | {steps} | {'yes' if tta else 'no'} | {mean:.3f} ± {sd:.3f}{note} "
                f"| {cmean:.3f} ± {csd:.3f} | " + " | ".join(f"{v:.2f}" for v in classes) + " |")
        if keep_all:
            kept = [r["all"]["f1"] for r in runs if "all" in r]
            line += f" {_spread(kept)[0]:.3f} |" if kept else " |"
        print(line)
    mean, sd = _spread(list(record["dog"].values()))
    print(f"| DoG blob detector (true count given) | - | - | {mean:.3f} ± {sd:.3f} | |"
          + " |" * (len(names) + keep_all))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 900])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--no-tta", action="store_true", help="skip the runs with TTA")
    parser.add_argument("--case", choices=CASES, default="class_labels",
                        help="the data set: particle kinds and weak labels (default "
                             "class_labels)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="training settings on top of each variant's (JSON values), "
                             "e.g. class_loss_weight=0; give --tag with them")
    parser.add_argument("--tag", default="",
                        help="recorded after the variant's name, e.g. pretrained:TAG")
    parser.add_argument("--out", type=Path, default=Path("bench_accuracy_output"))
    parser.add_argument("--json", type=Path,
                        help="every number, rewritten after each run (default OUT/results.json)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the JSON file and do only the others; "
                             "score trainings that finished under --out instead of training "
                             "again")
    parser.add_argument("--table", nargs="*", type=Path, metavar="JSON",
                        help="print the table of these JSON files (default: the --json file), "
                             "merged, and stop: runs of one benchmark split over processes")
    args = parser.parse_args(argv)
    path = args.json or args.out / "results.json"
    if args.table is not None:
        print_table(merge_records([json.loads(p.read_text()) for p in args.table or [path]]))
        return 0

    import torch

    from deepetpicker.model.pretrained import packaged_weights

    torch.set_num_threads(max(1, torch.get_num_threads()))

    def log(text):
        print(text, flush=True)

    case = CASES[args.case]
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    record = {"case": args.case, "classes": case["classes"], "shape": list(case["shape"]),
              "dog": {}, "runs": []}
    if args.resume and path.exists():
        record = json.loads(path.read_text())
        if record.get("case", "class_labels") != args.case:
            raise SystemExit(f"{path} holds the case {record.get('case', 'class_labels')}, "
                             f"not {args.case}; give another --json.")
        log(f"{len(record['runs'])} runs already in {path}")

    def save():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))

    ttas = [False] if args.no_tta else [False, True]
    for seed in args.seeds:
        log(f"seed {seed}: simulating and preprocessing")
        base = args.out / args.case / f"seed{seed}"
        pre = simulate(base / "data", seed, args.case)
        labels = list(pre.label_diameters or [pre.label_diameter] * int(pre.num_cls))
        # runs recorded before the labels were, could have been painted with others
        known = record.get("labels", None if record["runs"] else labels)
        if known != labels:
            raise SystemExit(f"{path} holds runs with weak labels of "
                             f"{known or 'unrecorded'} voxels, this installation paints "
                             f"{labels}; give another --json.")
        record["labels"] = labels
        if str(seed) not in record["dog"]:
            record["dog"][str(seed)] = dog_floor(pre)
            save()
        log(f"  DoG floor (localisation F1, true count given): {record['dog'][str(seed)]:.3f}")
        for steps in args.steps:
            for variant in args.variants:
                if variant == "pretrained" and not packaged_weights().is_file():
                    log(f"  pretrained: {packaged_weights()} is not installed; skipped")
                    continue
                name = f"{variant}:{args.tag}" if args.tag else variant
                done = {run_key(run) for run in record["runs"]}
                todo = [tta for tta in ttas if (seed, name, steps, tta) not in done]
                if not todo:
                    continue
                cfg, weights, n_steps, minutes = train_variant(
                    pre, variant, steps, seed, log, reuse=args.resume, overrides=overrides,
                    name=name.replace(":", "_"))
                for tta in todo:
                    folder = base / f"{name.replace(':', '_')}_{steps}_{int(tta)}"
                    run = dict(seed=seed, variant=name, steps=steps, steps_done=n_steps,
                               tta=tta, train_minutes=round(minutes, 2), settings=overrides,
                               **scored_run(score(pre, cfg, weights, variant, tta, folder)))
                    if variant != "scratch":
                        run["all"] = scored_run(score(pre, cfg, weights, variant, tta,
                                                      folder.with_name(folder.name + "_all"),
                                                      keep_all=True))
                    record["runs"].append(run)
                    save()
                    log(f"  {name:10s} {steps:4d} steps tta={tta!s:5s}: localisation F1 "
                        f"{run['f1']:.3f}, class F1 {run['class_f1']:.3f} ("
                        + " ".join(f"{v or 0:.2f}" for v in run["per_class"])
                        + f"); {run['picks']} picks, {run['background']} on background, "
                          f"{run['multiple_hits']} particles hit more than once"
                        + (f"; every pick kept: localisation F1 {run['all']['f1']:.3f}, "
                           f"class F1 {run['all']['class_f1']:.3f}" if "all" in run else ""))
    print()
    print_table(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

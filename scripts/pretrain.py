#!/usr/bin/env python
"""Pretrain the light network to tell particles from background on varied simulated tomograms.

The weights it writes are what training starts from with ``init: pretrained`` (the default)
for the light network: copied into ``deepetpicker/model/pretrained/light.pth``, they give
every layer but the head a start that has already seen particles of many sizes and shapes at
many noise levels; the head is made new for the user's classes. docs/pretraining.md tells
the whole procedure.

Data: each training tomogram holds one to three particle species, each a random shape of
``deepetpicker.simulate.SHAPES`` (compact globules, multi-lobed complexes, elongated rods,
hollow barrels) with a diameter drawn between 6 and 40 voxels (log-uniform); crowding, small
untargeted proteins, membrane vesicles and gold beads vary per tomogram, and so do the
signal-to-noise ratio (0.02 to 0.5, log-uniform), the defocus and the tilt range (so the
missing wedge). Every particle is class 1, "particle". Its weak label is scaled to its own
size (``label_diameter_for`` of its species, about 60 % of the diameter), so that the
network learns what a particle is at every size instead of a fixed blob size; the user's own
training then teaches the head its label diameter. Validation tomograms hold one species
each, so that picks can be scored against a known diameter.

Training: the light network (one output channel), Dice loss, AdamW with a one-cycle schedule
over ``--steps`` steps, the project's patch sampler with its default augmentation. Every
``--save-every`` steps the state is saved (``OUT/state.pth``), the validation tomograms are
picked and scored (F1), and one line of the curve is printed and written to
``OUT/curve.csv``; ``--resume`` continues exactly from the last save. At the end the weights
go to ``--weights`` (default ``OUT/light.pth``), a DeepETPicker checkpoint whose
``pretraining`` entry records this script, its data settings, seed, steps and curve.

    python scripts/pretrain.py --out pretrain_run --steps 20000 --device cuda
    python scripts/pretrain.py --out pretrain_run --steps 20000 --resume     # continue
    python scripts/pretrain.py --out /tmp/smoke --tiny --steps 3             # smoke test
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

SCRIPT = "scripts/pretrain.py"
STATE = "state.pth"
CURVE = "curve.csv"
RECIPE = "recipe.json"


@dataclass(frozen=True)
class DataSettings:
    """What the simulated tomograms are made of (recorded in the weights)."""

    shape: tuple = (64, 128, 128)
    n_train: int = 64
    n_val: int = 6
    diameter: tuple = (6.0, 40.0)         # particle diameters, voxels (log-uniform)
    species: tuple = (1, 3)               # species per training tomogram
    shapes: tuple = ("complex", "barrel", "rod", "globule", "ring", "shell", "stalk")
    snr: tuple = (0.02, 0.5)              # log-uniform
    packing: tuple = (0.01, 0.12)         # share of the ice taken by particles (log-uniform)
    max_particles: int = 250
    crowders: tuple = (0.0, 1.5)          # small untargeted proteins per particle
    vesicles: tuple = (0, 3)
    gold: tuple = (0, 8)
    tilt_max: tuple = (40.0, 65.0)        # tilt range +-, degrees: the missing wedge varies
    defocus_um: tuple = (2.0, 6.0)
    voxel_size: float = 10.0


@dataclass(frozen=True)
class TrainSettings:
    """How the network is trained (recorded in the weights)."""

    patch: int = 64
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    background_fraction: float = 0.2
    pad: int = 12                         # validation scan overlap
    loss: str = "dice"


#: Small tomograms and patches for a smoke test of the whole script in seconds.
TINY_DATA = DataSettings(shape=(32, 48, 48), n_train=2, n_val=1, diameter=(6.0, 12.0),
                         max_particles=12, vesicles=(0, 1), gold=(0, 2))
TINY_TRAIN = TrainSettings(patch=16, batch=2, pad=2)


@dataclass
class Tomogram:
    """One simulated tomogram on disk and its particles."""

    stem: str
    data_path: Path
    label_path: Path
    diameters: list = field(default_factory=list)   # per species
    picks: object = None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the data, state, curve and weights")
    p.add_argument("--steps", type=int, default=20000, help="optimiser steps in all")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the training")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, "
                                                    "cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pth")
    p.add_argument("--save-every", type=int, default=500,
                   help="save, validate and print a line of the curve every N steps")
    p.add_argument("--stop-after", type=float, metavar="MINUTES",
                   help="stop at the first save after this many minutes (a session on a shared "
                        "CPU); --resume continues")
    p.add_argument("--weights", help="where the final weights go (default OUT/light.pth)")
    p.add_argument("--tiny", action="store_true", help="tiny data and patches (smoke test)")
    p.add_argument("--n-train", type=int, help="training tomograms (more on a GPU)")
    p.add_argument("--n-val", type=int, help="validation tomograms")
    p.add_argument("--patch", type=int, help="patch edge (multiple of 8)")
    p.add_argument("--batch", type=int, help="patches per step")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[DataSettings, TrainSettings]:
    data, train = (TINY_DATA, TINY_TRAIN) if args.tiny else (DataSettings(), TrainSettings())
    data = replace(data, **{k: v for k, v in (("n_train", args.n_train),
                                               ("n_val", args.n_val)) if v is not None})
    train = replace(train, **{k: v for k, v in (("patch", args.patch), ("batch", args.batch),
                                                ("lr", args.lr)) if v is not None})
    return data, train


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def _log_uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _draw_species(rng: np.random.Generator, data: DataSettings, n: int,
                  diameters: Optional[Sequence[float]] = None) -> list:
    from deepetpicker.simulate import ParticleClass

    species = []
    for i in range(n):
        d = diameters[i] if diameters is not None else _log_uniform(rng, data.diameter)
        shape = str(rng.choice(data.shapes))
        species.append(ParticleClass(f"{shape}{int(round(d))}", shape, float(round(d))))
    return species


def simulate_one(data: DataSettings, species: list, seed: int, snr: float, name: str):
    """One tomogram with these species; the particle count follows the drawn packing and is
    lowered until the particles fit. Returns ``(volume, picks, info, settings)``."""
    from deepetpicker.errors import DeepETPickerError
    from deepetpicker.simulate import simulate_tomogram

    rng = np.random.default_rng(seed)
    nz, ny, nx = data.shape
    ice = int(round(0.7 * nz))
    mean_volume = np.mean([np.pi / 6.0 * s.diameter ** 3 for s in species])
    packing = _log_uniform(rng, data.packing)
    n = int(np.clip(round(packing * ice * ny * nx / mean_volume), len(species),
                    data.max_particles))
    tilt = float(rng.uniform(*data.tilt_max))
    settings = {"snr": round(snr, 4), "tilt_range": [-round(tilt, 1), round(tilt, 1)],
                "defocus_um": round(float(rng.uniform(*data.defocus_um)), 2),
                "n_vesicles": int(rng.integers(data.vesicles[0], data.vesicles[1] + 1)),
                "n_gold": int(rng.integers(data.gold[0], data.gold[1] + 1))}
    crowders = float(rng.uniform(*data.crowders))
    while True:
        try:
            volume, picks, info = simulate_tomogram(
                data.shape, n_particles=n, classes=species, seed=seed, snr=settings["snr"],
                tilt_range=tuple(settings["tilt_range"]), defocus_um=settings["defocus_um"],
                voxel_size=data.voxel_size, n_crowders=int(round(crowders * n)),
                n_vesicles=settings["n_vesicles"], n_gold=settings["n_gold"], name=name)
            break
        except DeepETPickerError:
            if n <= len(species):
                raise
            n = max(len(species), int(n * 0.7))
    settings.update(n_particles=len(picks), n_crowders=int(info["crowders"]))
    return volume, picks, info, settings


def particle_labels(shape: Sequence[int], picks, species: list) -> np.ndarray:
    """Weak labels with every particle as class 1, each painted with the label diameter of
    its own species (:func:`deepetpicker.simulate.label_diameter_for`)."""
    from deepetpicker.io.picks import Picks
    from deepetpicker.preprocess.labels import paint_labels
    from deepetpicker.simulate import label_diameter_for

    labels = np.zeros(tuple(shape), np.uint8)
    for k, spec in enumerate(species, start=1):
        mine = picks.of_class(k)
        if len(mine):
            one = Picks(np.ones(len(mine), np.int64), mine.xyz)
            np.maximum(labels, paint_labels(shape, one, label_diameter_for([spec])), out=labels)
    return labels


def make_data(folder: Path, data: DataSettings, seed: int, log=print) -> tuple[list, list]:
    """The training and validation tomograms under ``folder``, simulated unless the folder
    already holds exactly these (recorded in ``recipe.json``)."""
    from deepetpicker.io.atomic import write_text_atomic
    from deepetpicker.io.picks import Picks, read_picks, write_picks
    from deepetpicker.io.tomogram import write_tomogram

    recipe = {"data": json.loads(json.dumps(asdict(data))), "seed": int(seed)}
    folder.mkdir(parents=True, exist_ok=True)
    recorded = None
    if (folder / RECIPE).is_file():
        recorded = json.loads((folder / RECIPE).read_text())
    if recorded is not None and recorded.get("recipe") == recipe:
        tomos = {"train": [], "val": []}
        for row in recorded["tomograms"]:
            picks = read_picks(folder / f"{row['stem']}.coords")
            tomos[row["split"]].append(Tomogram(row["stem"], folder / f"{row['stem']}.mrc",
                                                folder / f"{row['stem']}_labels.mrc",
                                                row["diameters"], picks))
        if all(t.data_path.is_file() and t.label_path.is_file()
               for t in tomos["train"] + tomos["val"]):
            log(f"Reusing the {len(tomos['train'])} + {len(tomos['val'])} simulated tomograms "
                f"in {folder}.")
            return tomos["train"], tomos["val"]
    t0 = time.monotonic()
    seeds = np.random.SeedSequence(seed).generate_state(data.n_train + data.n_val + 1)
    plan = np.random.default_rng(int(seeds[-1]))
    rows, tomos = [], {"train": [], "val": []}
    # validation: one species each, diameters spread over the range, SNR easy to hard
    val_d = np.exp(np.linspace(np.log(data.diameter[0]), np.log(data.diameter[1]), data.n_val))
    val_snr = np.exp(np.linspace(np.log(data.snr[1]), np.log(data.snr[0]), data.n_val))
    for i in range(data.n_train + data.n_val):
        split = "train" if i < data.n_train else "val"
        j = i if split == "train" else i - data.n_train
        stem = f"{split}_{j:03d}"
        if split == "train":
            species = _draw_species(plan, data, int(plan.integers(data.species[0],
                                                                  data.species[1] + 1)))
            snr = _log_uniform(plan, data.snr)
        else:
            species = _draw_species(plan, data, 1, [val_d[j]])
            snr = float(val_snr[j])
        volume, picks, info, settings = simulate_one(data, species, int(seeds[i]), snr, stem)
        labels = particle_labels(volume.shape, picks, species)
        write_tomogram(folder / f"{stem}.mrc", volume, voxel_size=data.voxel_size)
        write_tomogram(folder / f"{stem}_labels.mrc", labels, dtype=np.int8)
        one = Picks(np.ones(len(picks), np.int64), picks.xyz, tomo_name=stem)
        write_picks(folder / f"{stem}.coords", one)
        diameters = [s.diameter for s in species]
        tomos[split].append(Tomogram(stem, folder / f"{stem}.mrc",
                                     folder / f"{stem}_labels.mrc", diameters, one))
        rows.append({"stem": stem, "split": split, "seed": int(seeds[i]),
                     "species": [asdict(s) for s in species], "diameters": diameters,
                     **settings})
    write_text_atomic(folder / RECIPE, json.dumps({"recipe": recipe, "tomograms": rows},
                                                  indent=1))
    log(f"Simulated {data.n_train} training and {data.n_val} validation tomograms of shape "
        f"{tuple(data.shape)} in {time.monotonic() - t0:.1f} s ({folder}).")
    return tomos["train"], tomos["val"]


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def patch_dataset(tomos: list, train: TrainSettings, seed: int):
    from deepetpicker.config import DEFAULT_AUGMENT
    from deepetpicker.io.tomogram import tomogram_shape
    from deepetpicker.train.augment import AugmentSettings
    from deepetpicker.train.dataset import PatchDataset, TomoEntry

    entries = [TomoEntry(i, t.stem, t.data_path, t.label_path, t.data_path.with_suffix(".coords"),
                         tomogram_shape(t.data_path), t.picks) for i, t in enumerate(tomos)]
    return PatchDataset(entries, train.patch, 1,
                        augment=AugmentSettings.from_config(DEFAULT_AUGMENT),
                        background_fraction=train.background_fraction, seed=seed)


def epoch_batches(n_items: int, batch: int, seed: int, epoch: int) -> list:
    """The batches (lists of item indices) of one epoch, in order; depends only on the seed
    and the epoch, so a resumed run takes the same batches."""
    import torch

    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n_items, generator=generator).tolist()
    return [order[i:i + batch] for i in range(0, n_items, batch)]


def validate(net, tomos: list, train: TrainSettings, device) -> dict:
    """Pick the validation tomograms and score the picks: precision, recall, F1 (pooled)."""
    import torch

    from deepetpicker.io.tomogram import load_tomogram
    from deepetpicker.matching import evaluate_distance, pool_distance
    from deepetpicker.model.resunet import probabilities
    from deepetpicker.picking.settings import picks_from_scores
    from deepetpicker.picking.tiling import scan
    from deepetpicker.train.job import MATCH_FRACTION

    net.eval()
    amp = device.type == "cuda"

    def predict(batch):
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16,
                                             enabled=amp):
            return probabilities(net(batch.to(device)).float())

    results = []
    for t in tomos:
        volume = load_tomogram(t.data_path, mmap=True).data
        scores = scan(volume, predict, train.patch, train.pad, train.batch, num_classes=1)
        d = float(np.median(t.diameters))
        picks = picks_from_scores(scores, [d], tomo_name=t.stem)
        results.append(evaluate_distance(picks, t.picks, radii=[d / 2.0],
                                         fraction=MATCH_FRACTION, num_cls=1))
    pooled = pool_distance(results)
    return {"precision": pooled.precision, "recall": pooled.recall, "f1": pooled.f1 or 0.0}


def run(args: argparse.Namespace, log=print) -> Optional[Path]:
    """Pretrain as ``args`` say; returns the path of the final weights (None when stopped
    early by ``--stop-after``)."""
    import torch

    from deepetpicker.config import LIGHT_F_MAPS
    from deepetpicker.errors import DeepETPickerError
    from deepetpicker.model.checkpoint import read_checkpoint, save_checkpoint
    from deepetpicker.model.resunet import ResUNet3D, count_parameters
    from deepetpicker.runtime import resolve_device
    from deepetpicker.train.job import one_cycle, seed_everything
    from deepetpicker.train.losses import get_loss

    out = Path(args.out)
    data, train = settings_from(args)
    state_path = out / STATE
    if state_path.exists() and not args.resume:
        raise DeepETPickerError(f"{out} already holds a pretraining run ({state_path}); "
                                f"add --resume to continue it or choose another --out.")
    if args.resume and not state_path.is_file():
        raise DeepETPickerError(f"--resume: {state_path} not found; start without --resume.")
    if args.steps < 1 or args.save_every < 1:
        raise DeepETPickerError("--steps and --save-every must be at least 1.")
    settings = {"data": json.loads(json.dumps(asdict(data))),
                "training": asdict(train), "seed": int(args.seed)}
    saved = read_checkpoint(state_path, "cpu") if args.resume else None
    if saved is not None and saved.get("settings") != settings:
        raise DeepETPickerError(
            f"--resume: {state_path} was written with other settings "
            f"({saved.get('settings')}); resume with the same options (--seed, --tiny, "
            f"--n-train, --patch, ...).")
    device = resolve_device(args.device)
    amp = device.type == "cuda"
    seed_everything(args.seed)
    train_tomos, val_tomos = make_data(out / "data", data, args.seed, log)
    dataset = patch_dataset(train_tomos, train, args.seed)

    net = ResUNet3D(in_channels=1, num_classes=1, f_maps=LIGHT_F_MAPS).to_device(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.lr, betas=(0.9, 0.99),
                                  weight_decay=train.weight_decay)
    scheduler = one_cycle(optimizer, train.lr, args.steps)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_fn = get_loss(train.loss)
    step, curve, seconds = 0, [], 0.0
    if saved is not None:
        net.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(saved["optimizer"])
        step, curve = int(saved["step"]), list(saved["curve"])
        seconds = float(saved.get("seconds", 0.0))
        if saved["scheduler"].get("total_steps") == scheduler.total_steps:
            scheduler.load_state_dict(saved["scheduler"])
        else:   # --steps changed: the one-cycle schedule stretched to the new length
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            scheduler = one_cycle(optimizer, train.lr, args.steps)
            with warnings.catch_warnings():  # fast-forwarding, no optimiser steps to take
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(min(step, args.steps)):
                    scheduler.step()
        if amp and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        log(f"Resuming from {state_path} at step {step}.")
    steps_per_epoch = math.ceil(len(dataset) / train.batch)
    log(f"Pretraining the light network ({count_parameters(net):,} parameters) on {device}: "
        f"{len(dataset)} patches of {train.patch}^3 per epoch ({steps_per_epoch} steps of "
        f"{train.batch}), {args.steps} steps; the curve below is printed every "
        f"{args.save_every} steps.")

    def save_state() -> None:
        save_checkpoint(state_path, net, step=step, curve=curve, seconds=seconds,
                        settings=settings, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(),
                        scaler=scaler.state_dict() if amp else None)

    losses: list[float] = []
    t0 = session = time.monotonic()
    while step < args.steps:
        epoch, first = divmod(step, steps_per_epoch)
        dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), train.batch, args.seed, epoch)[first:]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches,
                                             num_workers=args.workers,
                                             pin_memory=device.type == "cuda")
        for images, targets in loader:
            net.train()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                logits = net(images.to(device, non_blocking=True))
            loss = loss_fn(logits, targets.to(device, non_blocking=True))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % args.save_every == 0 or step == args.steps:
                row = {"step": step, "loss": float(np.mean(losses)),
                       "lr": scheduler.get_last_lr()[0],
                       **validate(net, val_tomos, train, device)}
                seconds += time.monotonic() - t0
                t0 = time.monotonic()
                row["hours"] = round(seconds / 3600.0, 4)
                curve.append(row)
                losses = []
                save_state()
                write_curve(out / CURVE, curve)
                log(f"step {step}/{args.steps}: loss {row['loss']:.4f}, val precision "
                    f"{row['precision']:.3f}, recall {row['recall']:.3f}, F1 {row['f1']:.3f}"
                    f" ({seconds / 60.0:.1f} min)")
                if args.stop_after is not None and step < args.steps \
                        and time.monotonic() - session >= 60.0 * args.stop_after:
                    log(f"Stopped at step {step} after {args.stop_after:g} min; run again "
                        f"with --resume to continue.")
                    return None
            if step >= args.steps:
                break
    weights = Path(args.weights) if args.weights else out / "light.pth"
    last = curve[-1] if curve else {}
    provenance = {
        "script": SCRIPT, **settings, "steps": step,
        "options": {k: v for k, v in vars(args).items()
                    if k not in ("out", "weights", "resume", "stop_after")},
        "device": str(device),
        "torch": str(torch.__version__), "hours": round(seconds / 3600.0, 3),
        "final_loss": last.get("loss"), "final_f1": last.get("f1"), "curve": curve,
        "labels": "every particle class 1, weak label diameter label_diameter_for(its "
                  "species), about 60 % of its diameter",
    }
    weights.parent.mkdir(parents=True, exist_ok=True)
    net.eval()
    save_checkpoint(weights, net, class_names=["particle"],
                    diameters=[int(round(np.median(data.diameter)))],
                    patch_size=train.patch, pad_size=train.pad, seed=int(args.seed),
                    pretraining=provenance)
    log(f"Wrote the pretrained light network to {weights} (step {step}, loss "
        f"{last.get('loss', float('nan')):.4f}, val F1 {last.get('f1', float('nan')):.3f}).")
    return weights


def write_curve(path: Path, curve: list) -> None:
    from deepetpicker.io.atomic import write_text_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(curve[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(curve)
    write_text_atomic(path, buffer.getvalue())


def main(argv: Optional[Sequence[str]] = None) -> int:
    from deepetpicker.errors import DeepETPickerError

    args = parse_args(argv)
    try:
        run(args)
    except DeepETPickerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``deepetpicker train-config`` (a training config from a preprocess config) and
``deepetpicker train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepetpicker.cli.parser import add_command, add_train_mask, default_of
from deepetpicker.cli.progress import run_job, summary_of
from deepetpicker.config import LOSS_NAMES, NETWORK_PRESETS, TrainConfig
from deepetpicker.errors import DeepETPickerError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The parsers of ``train-config`` and ``train``."""
    _add_train_config_parser(subparsers)
    _add_train_parser(subparsers)


def _default(name: str) -> str:
    """A training config field's default, as the help shows it."""
    return default_of(TrainConfig, name)


def _add_train_config_parser(subparsers) -> None:
    p = add_command(subparsers, "train-config", "write a training config from a preprocess config",
                    ["deepetpicker train-config sample_data/configs/simulated.py --train-ids 0-1 "
                     "--val-ids 2 -o sample_data/configs/train.py",
                     "deepetpicker train-config pre.py --train-ids 0,2,4 --val-ids 5 --light "
                     "--epochs 100 -o train.py"])
    p.add_argument("pre_config", help="preprocess config file")
    p.add_argument("--train-ids", required=True, help='training tomogram ids, e.g. "0-7" or "0,2"')
    p.add_argument("--val-ids", required=True, help='validation tomogram ids, e.g. "8"')
    p.add_argument("-o", "--output", required=True, help="training config file to write")
    p.add_argument("--name", help="dataset/run name (default: from the preprocess config)")
    p.add_argument("--light", action="store_true",
                   help="the light network (channels "
                        + ",".join(map(str, NETWORK_PRESETS["light"])) + "), almost as accurate")
    p.add_argument("--batch-size", type=int, help="patches per training step "
                                                  f"(default: {_default('batch_size')})")
    p.add_argument("--patch-size", type=int, help="patch edge, a multiple of 8 "
                                                  f"(default: {_default('patch_size')})")
    p.add_argument("--pad-size", type=int,
                   help=f"overlap-tile pad (default: {_default('padding_size')})")
    p.add_argument("--lr", type=float, help="peak learning rate of the one-cycle schedule "
                                            f"(default: {_default('lr')})")
    p.add_argument("--epochs", type=int, help="training epochs, max_epochs "
                                              f"(default: {_default('max_epochs')})")
    p.add_argument("--loss", choices=list(LOSS_NAMES),
                   help=f"training loss (default: {_default('loss')})")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: "
                                    f"{_default('device')}, a GPU when there is one)")
    p.add_argument("--gpu-ids", help=f'GPU ids, e.g. "0,1" (default: {_default("gpu_ids")})')
    p.add_argument("--seed", type=int, help="random seed; the same seed repeats a CPU run "
                                            f"(default: {_default('seed')})")
    p.add_argument("--num-workers", type=int, help="processes preparing batches, 4-8 on a GPU "
                                                   f"(default: {_default('num_workers')}, the "
                                                   "training process itself)")
    add_train_mask(p, "(mask_path; default: none, the whole tomograms)")
    p.set_defaults(func=run_config)


def _add_train_parser(subparsers) -> None:
    p = add_command(subparsers, "train", "train the 3D-ResUNet from a training config",
                    ["deepetpicker train sample_data/configs/train.py",
                     "deepetpicker train train.py --resume sample_data/runs/simulated/last.pth "
                     "--epochs 80",
                     "torchrun --nproc_per_node=2 -m deepetpicker train train.py   # two GPUs"])
    p.add_argument("config", help="training config file (train_configs=...)")
    p.add_argument("--resume", help="last.pth of an earlier run to continue (default: start a "
                                    "new run)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's device)")
    p.add_argument("--epochs", type=int, help="override max_epochs (default: the config's)")
    add_train_mask(p, "(default: the config's mask_path)")
    p.set_defaults(func=run)


def run_config(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_preprocess_config, save_config, written_by_save_config
    from deepetpicker.io.outputs import check_output_folder
    from deepetpicker.train.dataset import check_dataset_ids, check_dataset_masks

    pre = load_preprocess_config(args.pre_config)
    overrides = {k: v for k, v in {
        "dset_name": args.name, "batch_size": args.batch_size, "patch_size": args.patch_size,
        "padding_size": args.pad_size, "lr": args.lr, "max_epochs": args.epochs,
        "device": args.device, "loss": args.loss, "seed": args.seed,
        "num_workers": args.num_workers, "mask_path": args.mask,
    }.items() if v is not None}
    if args.light:
        overrides["f_maps"] = list(NETWORK_PRESETS["light"])
        overrides.setdefault("model_name", "ResUNet")
    if args.gpu_ids is not None:
        overrides["gpu_ids"] = args.gpu_ids
    cfg = TrainConfig.from_preprocess(pre, args.train_ids, args.val_ids, **overrides)
    cfg.validate(check_paths=False)
    if not check_dataset_ids(cfg):
        print(f"note: {cfg.coord_path} holds no preprocessed dataset yet, so the tomogram ids "
              f"were not checked; preprocess before training.", file=sys.stderr)
    check_dataset_masks(cfg)
    output = Path(args.output)
    if output.exists():
        if output.resolve() == Path(args.pre_config).resolve():
            why = "is the preprocess config given, an input"
        elif not written_by_save_config(output):
            why = "holds settings DeepETPicker did not write (edited by hand?)"
        else:
            why = ""
        if why:
            raise DeepETPickerError(f"{output} exists and {why}; it is never replaced. Choose "
                                    f"another -o/--output file name.")
    check_output_folder(output.parent, "folder of the training config", "-o/--output")
    save_config(cfg, output)
    print(f"Training config written to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_train_config
    from deepetpicker.train.job import train

    cfg = load_train_config(args.config)
    if args.epochs is not None:
        cfg.max_epochs = args.epochs
    if args.mask is not None:
        cfg.mask_path = args.mask
    result = run_job(train, cfg, resume=args.resume, device=args.device)
    print(summary_of(result) or f"Training finished; checkpoints under {cfg.run_dir}")
    return 0

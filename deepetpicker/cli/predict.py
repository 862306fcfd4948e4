"""``deepetpicker predict``: pick particles in tomograms with trained weights (also those of
a copick project, with ``--copick``)."""

from __future__ import annotations

import argparse

from deepetpicker.cli.parser import (
    FORMAT_NAMES,
    add_command,
    add_copick_options,
    add_export_options,
    add_zarr_level,
    default_of,
    export_options,
)
from deepetpicker.cli.progress import run_job, summary_of
from deepetpicker.config import TrainConfig
from deepetpicker.errors import DeepETPickerError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "predict", "pick particles in tomograms with trained weights",
                    ["deepetpicker predict train.py --weights sample_data/runs/simulated/best.pth",
                     "deepetpicker predict --weights best.pth --tomograms /data/tomos --out picks "
                     "--format star"])
    p.add_argument("config", nargs="?",
                   help="training config file (default: the one saved in the checkpoint)")
    p.add_argument("--weights", required=True,
                   help="checkpoint: best.pth or last.pth of a run, or the original's .ckpt")
    p.add_argument("--tomograms", nargs="+", help="tomogram files or folders (default: the "
                                                  "config's dataset)")
    p.add_argument("--out", help="output folder (default: <base_path>/runs/<name>/predictions)")
    p.add_argument("--format", nargs="+", choices=FORMAT_NAMES,
                   help="also write these formats (default: .coords only; their conventions: "
                        "deepetpicker convert --help)")
    add_export_options(p, "the checkpoint's class names")
    p.add_argument("--pad-size", type=int, help="overlap-tile pad (default: the config's)")
    _add_picking_options(p)
    _add_run_options(p)
    p.add_argument("--copick", metavar="CONFIG",
                   help="pick the tomograms of this copick project (its config JSON) and store "
                        "the picks in it, one copick picks file per object; needs --tomo-type "
                        "and --voxel-spacing; .coords go to --out/<run> (default: "
                        "deepetpicker-predictions beside the config); --overwrite replaces "
                        "picks of the same user and session")
    add_copick_options(p, predicting=True)
    p.set_defaults(func=run)


def _add_picking_options(p: argparse.ArgumentParser) -> None:
    """How picks are found in the score maps."""
    p.add_argument("--t-seg", type=float,
                   help="segmentation threshold (default: the config's seg_thresh, "
                        f"{default_of(TrainConfig, 'seg_thresh')} unless set)")
    p.add_argument("--t-lm", type=float,
                   help="local-maximum threshold (default: the config's t_lm, "
                        f"{default_of(TrainConfig, 't_lm')} unless set)")
    p.add_argument("--t-dist", type=float, help="merge picks closer than this in voxels "
                                                "(default: ceil(d / 2) of each class's "
                                                "diameter)")
    p.add_argument("--min-score", type=float, nargs="+", metavar="S",
                   help="drop picks whose detection score is below this, one value or one per "
                        "class (default: the thresholds tuned per class for the best "
                        "localisation F1 on the validation tomograms during training, stored "
                        "in the checkpoint; 0 keeps every pick)")
    p.add_argument("--min-class-confidence", type=float, metavar="C",
                   help="drop picks whose class confidence (their class's share of the class "
                        "probabilities around them, in the sidecar) is below this (default: "
                        "keep them; a found particle is not dropped for an uncertain class)")
    p.add_argument("--localize", choices=["class", "foreground"],
                   help="class: search each class map on its own (the paper's rule); "
                        "foreground: find particles on all classes together, then give each "
                        "the most probable class (finds particles whose probability is split "
                        "over similar classes) (default: the config's localize, "
                        f"{default_of(TrainConfig, 'localize')} unless set)")
    p.add_argument("--diameters", type=float, nargs="+", metavar="D",
                   help="particle diameter per class in voxels (needed for the original "
                        "program's .ckpt without a config; overrides the config's; default: "
                        "the config's ocp_diameter)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """What is written and how the scan runs."""
    p.add_argument("--save-scores", action="store_true", help="also write score maps as MRC")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="the network's arithmetic on the CPU: bf16 runs about twice as fast "
                        "where the CPU does bfloat16 natively (AVX-512 BF16, AMX); auto takes "
                        "it there and fp32 elsewhere (default: fp32; on a GPU float16 mixed "
                        "precision unless fp32)")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the score maps over the 8 mirrorings "
                        "of z, y and x of every tile (as in training) before picking; 8 times "
                        "the scan time")
    p.add_argument("--tta-set", choices=["flips", "full"],
                   help="the transforms of --tta (and turns it on): flips, the 8 above; full, "
                        "those and their 90-degree turns in the XY plane, 16 transforms, 16 "
                        "times the scan time (a quarter turn moves a single-axis missing wedge "
                        "from x to y, which training does not show the network) (default: "
                        "flips)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs of an earlier run in --out (never your own files or "
                        "the inputs)")
    p.add_argument("--force", action="store_true",
                   help="pick again the tomograms already picked with the same weights and "
                        "settings (they are skipped otherwise)")
    p.add_argument("--batch-size", type=int, help="tiles per forward pass (default: the "
                                                  "config's batch_size on a GPU, 1-8 by "
                                                  "memory on the CPU)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's device)")
    add_zarr_level(p)
    p.add_argument("--mask", metavar="M",
                   help="region of interest: a volume of the tomogram's shape (MRC or .zarr, "
                        "non-zero = keep) or a folder of masks named like the tomograms; picks "
                        "outside it are dropped and tiles outside it are not run (default: "
                        "the whole tomogram)")

def run(args: argparse.Namespace) -> int:
    from deepetpicker.config import load_train_config
    from deepetpicker.predict.job import predict

    cfg = load_train_config(args.config) if args.config else None
    picking = {k: v for k, v in {"t_seg": args.t_seg, "t_lm": args.t_lm,
                                 "t_dist": args.t_dist, "localize": args.localize,
                                 "min_score": args.min_score,
                                 "min_class_confidence": args.min_class_confidence}.items()
               if v is not None}
    job, where = predict, {"tomograms": args.tomograms, "zarr_level": args.zarr_level}
    if args.copick:
        job, where = _copick_predict(args)
    elif any(v is not None for v in (args.tomo_type, args.voxel_spacing, args.runs, args.user,
                                     args.session)):
        raise DeepETPickerError("--tomo-type, --voxel-spacing, --runs, --user and --session "
                                "name a copick project's data: give the project with --copick.")
    result = run_job(job, cfg, args.weights, out=args.out, pad=args.pad_size,
                     save_scores=args.save_scores, formats=tuple(args.format or ()),
                     device=args.device, batch_size=args.batch_size, picking=picking,
                     export=export_options(args), diameters=args.diameters,
                     overwrite=args.overwrite, force=args.force, tta=args.tta_set or args.tta,
                     precision=args.precision,
                     mask=args.mask, **where)
    print(summary_of(result) or "Prediction finished")
    failed = getattr(result, "failed", None)
    return 1 if failed else 0


def _copick_predict(args: argparse.Namespace) -> tuple:
    """The job and its project options for ``predict --copick``."""
    from deepetpicker.copick_jobs import predict_into_project

    missing = [o for o, v in (("--tomo-type", args.tomo_type),
                              ("--voxel-spacing", args.voxel_spacing)) if v is None]
    if missing or args.tomograms or args.zarr_level is not None:
        raise DeepETPickerError(
            "--copick reads the tomograms of --tomo-type at --voxel-spacing from the project: "
            "give " + (" and ".join(missing) if missing else "no --tomograms or --zarr-level")
            + " with it.")
    given = {"user_id": args.user, "session_id": args.session}
    return predict_into_project, {"copick_config": args.copick, "tomo_type": args.tomo_type,
                                  "voxel_spacing": args.voxel_spacing, "runs": args.runs,
                                  **{k: v for k, v in given.items() if v is not None}}

"""The files of a training run under ``config.run_dir``: the checkpoints ``last.pth`` and
``best.pth``, the metrics ``metrics.csv`` and ``metrics.json`` (read back with
:func:`read_metrics`), and the earlier run's files moved aside by a fresh run."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.model.checkpoint import BEST, LAST, save_checkpoint
from deepetpicker.picking.settings import THRESHOLD_RULE
from deepetpicker.progress import Reporter

if TYPE_CHECKING:
    from deepetpicker.train.job import Trainer

LOG_CSV = "metrics.csv"
LOG_JSON = "metrics.json"


def checkpoint_meta(trainer: Trainer, epochs_done: int) -> dict:
    """Everything but the weights that a checkpoint holds after ``epochs_done`` epochs."""
    cfg = trainer.cfg
    names = cfg.class_names or (cfg.extra.get("class_names")
                                if isinstance(cfg.extra, dict) else None)
    if not (isinstance(names, list) and len(names) == cfg.num_cls):
        names = [f"class{c}" for c in range(1, cfg.num_cls + 1)]
    return {"epoch": epochs_done, "global_step": trainer.global_step, "config": cfg.to_dict(),
            "class_names": [str(n) for n in names],
            "diameters": [int(d) for d in cfg.ocp_diameter],
            "label_diameter": int(cfg.label_diameter),
            "label_diameters": ([int(d) for d in cfg.label_diameters]
                                if cfg.label_diameters else None),
            "patch_size": int(cfg.patch_size),
            "pad_size": int(cfg.padding_size), "seed": int(cfg.seed),
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict(),
            "scaler": trainer.scaler.state_dict() if trainer.amp else None,
            "history": trainer.history, "best_f1": trainer.best_f1,
            "best_epoch": trainer.best_epoch,
            "ema_decay": trainer.ema_decay, "score_thresholds": trainer.best_thresholds,
            "threshold_rule": THRESHOLD_RULE,
            "init": trainer.init_info}


def save_last(trainer: Trainer, path: Path, epochs_done: int) -> Path:
    """``last.pth``: the trained weights as ``state_dict`` and, with ``ema_decay`` > 0,
    their moving average as ``ema_state_dict``, with the optimiser and schedule: all a
    resume needs to continue on the same curve."""
    meta = checkpoint_meta(trainer, epochs_done)
    meta["weights"] = "trained"
    if trainer.ema_net is not None:
        meta["ema_state_dict"] = cpu_state(trainer.ema_net)
    return save_checkpoint(path, trainer.net, **meta)


def save_best(trainer: Trainer, path: Path, epochs_done: int) -> Path:
    """``best.pth``: the validated weights (the moving average when ``ema_decay`` > 0) as
    ``state_dict``, so inference reads them like any checkpoint; the trained weights go
    along as ``raw_state_dict`` so that a run can resume from this file too."""
    meta = checkpoint_meta(trainer, epochs_done)
    meta["weights"] = "trained"
    if trainer.ema_net is not None:
        meta["weights"] = "moving average"
        meta["raw_state_dict"] = cpu_state(trainer.net)
    return save_checkpoint(path, trainer.eval_net, **meta)


def write_logs(history: list, run_dir: Path) -> tuple[Path, Path]:
    """Write the history as CSV and JSON (atomically)."""
    columns: list[str] = []
    for row in history:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key))
                         for key in columns})
    csv_path, json_path = run_dir / LOG_CSV, run_dir / LOG_JSON
    write_text_atomic(csv_path, buffer.getvalue())
    write_text_atomic(json_path, json.dumps(history, indent=1))
    return csv_path, json_path


def read_metrics(run_dir: Union[str, Path]) -> list[dict[str, Any]]:
    """The epochs of the run in ``run_dir`` from its ``metrics.json``: one dict per epoch, as
    in :attr:`TrainResult.history` (``epoch`` an int; ``train_loss``, ``val_loss``, ``f1``, ...
    numbers or None). Empty when the folder holds no metrics (no run yet); a file that
    cannot be read raises :class:`DeepETPickerError` naming it."""
    path = Path(run_dir) / LOG_JSON
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise TypeError("not a list of epochs")
        epochs = []
        for row in rows:
            if isinstance(row, dict) and "epoch" in row:
                epochs.append({**row, "epoch": int(row["epoch"])})
    except (OSError, ValueError, TypeError) as exc:
        raise DeepETPickerError(
            f"Cannot read the metrics of the run in {path}: {exc}. The file is rewritten "
            f"after every epoch; train again (or resume) to replace it.") from None
    return epochs


def cpu_state(net: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def archive_previous(run_dir: Path, report: Reporter) -> None:
    """Move the files of an earlier run out of the way (a fresh run never overwrites them)."""
    found = [run_dir / name for name in (BEST, LAST, LOG_CSV, LOG_JSON)
             if (run_dir / name).exists()]
    if not found:
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = run_dir / "old" / stamp, 1
    while target.exists():
        target, n = run_dir / "old" / f"{stamp}-{n}", n + 1
    target.mkdir(parents=True)
    for path in found:
        shutil.move(str(path), str(target / path.name))
    report.log(f"Earlier files of this run folder were moved to {target} (use --resume "
               f"{run_dir / LAST} to continue a run instead).")

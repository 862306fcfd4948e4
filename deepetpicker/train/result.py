"""What a training run reports: the :class:`TrainResult`, the one line of each epoch, and
the rule that chooses ``best.pth`` among the validated epochs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from deepetpicker.picking.settings import format_thresholds

if TYPE_CHECKING:
    import torch


@dataclass
class TrainResult:
    """What a training run produced. ``history`` holds one dict per epoch (as in the logs);
    ``model`` is the network after the last epoch as validated (the moving average of the
    weights when ``ema_decay`` > 0; eval mode, on the training device)."""

    run_dir: Path
    last_checkpoint: Optional[Path]
    best_checkpoint: Optional[Path]
    best_f1: Optional[float]
    best_epoch: Optional[int]
    epochs: int
    history: list = field(default_factory=list)
    device: str = "cpu"
    log_csv: Optional[Path] = None
    log_json: Optional[Path] = None
    model: Optional[torch.nn.Module] = field(default=None, repr=False)
    score_thresholds: Optional[list[float]] = None

    def summary(self) -> str:
        """A few lines for the CLI."""
        last = self.history[-1] if self.history else {}
        best = "n/a" if self.best_f1 is None else f"{self.best_f1:.3f} (epoch {self.best_epoch})"
        row = best_row(self.history) or {}
        detail = (f" (localisation F1 {row['loc_f1']:.3f}, class F1 {row['class_f1']:.3f})"
                  if row.get("loc_f1") is not None and row.get("class_f1") is not None else "")
        lines = [f"Training finished after {self.epochs} epoch(s) on {self.device}.",
                 f"  last train loss {_fmt(last.get('train_loss'))}, best validation score "
                 f"{best}{detail}",
                 f"  best weights: {self.best_checkpoint}",
                 *([f"  detection thresholds tuned on validation (predict uses them): "
                    f"{format_thresholds(self.score_thresholds)}"]
                   if self.score_thresholds else []),
                 f"  last state:   {self.last_checkpoint}",
                 f"  metrics:      {self.log_csv}"]
        return "\n".join(lines)


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def selection_f1(row: dict) -> Optional[float]:
    """The validation score that chooses ``best.pth``: the mean of the localisation F1 and the
    class F1, both of the picks that the detection thresholds tuned on localisation keep
    (what prediction will give). No pick is dropped for its class there, so an epoch cannot
    gain by giving up found particles for purer classes. Rows written before use the F1 they
    chose by; None for an epoch that was not validated."""
    if row.get("loc_f1") is not None and row.get("class_f1") is not None:
        return (float(row["loc_f1"]) + float(row["class_f1"])) / 2.0
    value = row.get("f1_tuned", row.get("f1"))
    return None if value is None else float(value)


def best_row(history: list[dict]) -> Optional[dict]:
    """The epoch whose weights are ``best.pth``: the first with the highest
    :func:`selection_f1`; None when no epoch was validated."""
    scored = [row for row in history if selection_f1(row) is not None]
    return max(scored, key=selection_f1, default=None)


def epoch_line(row: dict, max_epochs: int, best: bool = False) -> str:
    """The one line that records a finished epoch (terminal, logs, the GUI's log), e.g.
    ``epoch 3/60: train loss 0.4123, val loss 0.3921, localisation F1 0.981 (every pick kept
    0.962), class F1 0.874 (best), 14.4 s (validation 2.1 s)``."""
    parts = [f"epoch {row['epoch']}/{max_epochs}: train loss {_fmt(row.get('train_loss'))}"]
    if row.get("loc_f1") is not None:
        parts.append(f"val loss {_fmt(row.get('val_loss'))}, localisation F1 "
                     f"{_fmt(row['loc_f1'], 3)} (every pick kept {_fmt(row.get('loc_f1_all'), 3)}),"
                     f" class F1 {_fmt(row.get('class_f1'), 3)}" + (" (best)" if best else ""))
    elif row.get("f1") is not None:
        parts.append(f"val loss {_fmt(row.get('val_loss'))}, precision "
                     f"{_fmt(row.get('precision'), 3)}, recall {_fmt(row.get('recall'), 3)}, "
                     f"F1 {_fmt(row['f1'], 3)}"
                     + (f" ({_fmt(row['f1_tuned'], 3)} with tuned score thresholds)"
                        if row.get("f1_tuned") is not None else "")
                     + (" (best)" if best else ""))
    seconds = float(row.get("epoch_time_s") or 0.0)
    if row.get("val_time_s") is not None:
        seconds += float(row["val_time_s"])
        parts.append(f"{_duration(seconds)} (validation {_duration(row['val_time_s'])})")
    else:
        parts.append(_duration(seconds))
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"

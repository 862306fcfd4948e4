"""Precision-recall curves: a threshold swept over the pick scores.

A pick counts as a true positive when it is the first pick (by score) on its particle, so every
point of the curve is the occupancy rule (or the greedy distance rule) applied to the picks
above that score. Results are :class:`PRCurve` objects; ``to_dict()`` gives the JSON form that
evaluation reports write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.evaluate.occupancy import lookup_map, pick_hits, skipped_class_ids
from deepetpicker.io.atomic import atomic_path, write_text_atomic
from deepetpicker.io.picks import Picks
from deepetpicker.matching import cumulative_hits, radii_per_class, ranked_hits
from deepetpicker.types import PathLike
from deepetpicker.values import PerClassValue


@dataclass
class CurvePoint:
    """One point of a curve: the picks with a score of at least ``threshold``."""

    threshold: float
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "precision": self.precision,
                "recall": self.recall, "F1": self.f1}


@dataclass
class PRCurve:
    """Precision and recall above each distinct score (high to low), one list entry per point.

    ``n_picks`` and ``tp`` count the picks and true positives above each threshold, ``ap`` is
    the average precision (the sum of precision times recall gained), ``best`` the point with
    the highest F1 (None without picks), ``dilated`` whether occupancy maps were dilated (None
    for the distance rule); ``csv`` and ``png`` are the files written (None when not).
    """

    thresholds: list[float]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    n_picks: list[int]
    tp: list[int]
    n_truth: int
    ap: float
    rule: str
    dilated: Optional[bool] = None
    csv: Optional[Path] = None
    png: Optional[Path] = None
    best: Optional[CurvePoint] = None

    def to_dict(self) -> dict:
        """The JSON form written in evaluation reports (file paths as text)."""
        return {"thresholds": self.thresholds, "precision": self.precision,
                "recall": self.recall, "f1": self.f1, "n_picks": self.n_picks, "tp": self.tp,
                "n_truth": self.n_truth, "AP": self.ap, "rule": self.rule,
                "dilated": self.dilated, "csv": _text(self.csv), "png": _text(self.png),
                "best": self.best.to_dict() if self.best is not None else None}


def _text(path: Optional[Path]) -> Optional[str]:
    return str(path) if path is not None else None


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (Picks, np.ndarray)):
        return [value]
    return list(value)


def first_hit_flags(pred: Picks, truth: Picks, lookup: Optional[np.ndarray],
                    radii: PerClassValue, fraction: float, class_id: Optional[int],
                    skip: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, int]:
    """Per pick (descending score): its score and whether it is the first on its particle.

    ``lookup``: the occupancy map ready for the lookup (already dilated when asked), or None
    for the distance rule; ``skip``: classes left out of the truth (occupancy rule only).
    """
    if pred.scores is None:
        raise DeepETPickerError(
            f"The picks of {pred.tomo_name or 'a tomogram'} have no scores; a precision-recall "
            f"curve needs a confidence score per pick (the 5th column of a .coords file).")
    if class_id is not None:
        pred = pred.of_class(class_id)
    order = np.argsort(-pred.scores, kind="stable")
    pred = pred.select(order)
    if lookup is not None:
        ids, _, _ = pick_hits(pred, lookup)
        counted = np.r_[False, ~np.isin(truth.classes, skip)]
        if class_id is not None:
            # only particles of this class count; picks on other classes are false
            counted &= np.r_[False, truth.classes == class_id]
        ids = np.where(counted[ids], ids, 0)
        n_true = int(counted.sum())
        new = np.zeros(len(ids), dtype=bool)
        _, first = np.unique(ids, return_index=True)
        new[first] = True
        new &= ids > 0
        return pred.scores, new, n_true
    k = max([1, int(pred.classes.max()) if len(pred) else 0,
             int(truth.classes.max()) if len(truth) else 0])
    radius = radii_per_class(radii, k)
    classes = [class_id] if class_id is not None else range(1, k + 1)
    ranked = [ranked_hits(pred.of_class(c), truth.of_class(c), fraction * radius[c - 1])
              for c in classes]
    n_true = sum(len(truth.of_class(c)) for c in classes)
    return (np.concatenate([s for s, _ in ranked]), np.concatenate([h for _, h in ranked]),
            n_true)



def pr_curve(pred: Union[Picks, Sequence[Picks]], truth: Union[Picks, Sequence[Picks]],
             occupancy: Union[None, np.ndarray, Sequence[np.ndarray]] = None,
             radii: PerClassValue = None, fraction: float = 0.5,
             out: Optional[PathLike] = None, class_id: Optional[int] = None,
             dilate: bool = True, title: str = "", skip_classes: Sequence[int] = ()
             ) -> PRCurve:
    """Precision and recall of the picks above each score threshold.

    ``pred``/``truth`` (and ``occupancy``): one tomogram's tables (and map) or equal-length
    lists of them, pooled into one curve. With occupancy maps a pick is a true positive when
    it is the first pick (by score) inside its particle (class-agnostic unless ``class_id``),
    looked up as :func:`~deepetpicker.evaluate.occupancy.evaluate_occupancy` does (``dilate``,
    ``skip_classes``); otherwise picks are matched greedily by score to same-class particles
    within ``fraction * radius`` (``radii`` per class). One point per distinct score, high to
    low. With ``out`` (a path without suffix) writes the ``csv`` there and a ``png`` plot when
    matplotlib is installed (``png`` None otherwise).
    """
    preds, truths = _as_list(pred), _as_list(truth)
    occs = _as_list(occupancy) if occupancy is not None else [None] * len(preds)
    if len(preds) != len(truths) or len(occs) != len(preds):
        raise DeepETPickerError(
            f"pr_curve got {len(preds)} prediction table(s), {len(truths)} truth table(s) and "
            f"{len(occs)} occupancy map(s); give one of each per tomogram.")
    if occupancy is None and radii is None:
        raise DeepETPickerError("pr_curve needs occupancy maps or particle radii to decide "
                                "which picks are right.")
    skip = skipped_class_ids(skip_classes)
    flags = []
    for p, t, o in zip(preds, truths, occs):
        lookup = lookup_map(o, t, dilate) if o is not None else None
        flags.append(first_hit_flags(p, t, lookup, radii, fraction, class_id, skip))
    if occupancy is None:
        return curve_from_flags(flags, "distance", out, title)
    return curve_from_flags(flags, "occupancy", out, title, dilated=dilate)


def curve_from_flags(per_tomogram: list, rule: str, out: Optional[PathLike] = None,
                     title: str = "", dilated: Optional[bool] = None) -> PRCurve:
    """The curve from each tomogram's ``(scores, first-hit flags, number of true particles)``."""
    n_true = sum(n for _, _, n in per_tomogram)
    cuts, n_picks, tp = cumulative_hits([s for s, _, _ in per_tomogram],
                                        [f for _, f, _ in per_tomogram])
    precision = tp / n_picks
    recall = tp / n_true if n_true else np.zeros(len(cuts))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    gained = np.diff(np.r_[0.0, recall])
    ap = float(np.sum(gained * precision)) if len(cuts) else 0.0
    curve = PRCurve(thresholds=cuts.tolist(), precision=precision.tolist(),
                    recall=recall.tolist(), f1=f1.tolist(), n_picks=n_picks.tolist(),
                    tp=tp.astype(int).tolist(), n_truth=int(n_true), ap=ap, rule=rule,
                    dilated=dilated)
    if len(cuts):
        b = int(np.argmax(f1))
        curve.best = CurvePoint(threshold=float(cuts[b]),
                                precision=float(precision[b]), recall=float(recall[b]),
                                f1=float(f1[b]))
    if out is not None:
        stem = Path(out)
        if stem.suffix.lower() in (".csv", ".png"):
            stem = stem.with_suffix("")
        curve.csv = _write_curve_csv(stem.with_name(stem.name + ".csv"), curve)
        curve.png = _plot_curve(stem.with_name(stem.name + ".png"), curve, title)
    return curve


def _write_curve_csv(path: Path, curve: PRCurve) -> Path:
    lines = ["threshold,precision,recall,f1,n_picks,tp"]
    for row in zip(curve.thresholds, curve.precision, curve.recall, curve.f1, curve.n_picks,
                   curve.tp):
        lines.append(",".join(format(v, ".6g") if isinstance(v, float) else str(v)
                              for v in row))
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _plot_curve(path: Path, curve: PRCurve, title: str) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 4.2), dpi=120)
    ax.plot(curve.recall, curve.precision, "-", color="tab:blue",
            label=f"AP = {curve.ap:.3f}")
    best = curve.best
    if best:
        ax.plot([best.recall], [best.precision], "o", color="tab:red",
                label=f"best F1 {best.f1:.3f} at score {best.threshold:.3g}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"precision-recall ({curve.rule} rule)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path

"""How good are the picks? Two matching rules, precision-recall curves, folder reports.

**Occupancy rule** (:func:`evaluate_occupancy`), as in the SHREC 2021 cryo-ET challenge's
evaluation script (``misc/eval.py`` of the challenge data; Gubins et al., "SHREC 2021:
Classification in cryo-electron tomograms"). By default it is that script's rule exactly:

1. the occupancy map of particle ids is dilated by one voxel: every voxel takes the largest id
   among itself and its six face neighbours (a maximum filter with the 6-connected cross;
   voxels beyond the volume add nothing). Where two particles touch or their dilations meet,
   the larger id wins, even on a voxel of the smaller particle;
2. each pick is rounded to the nearest voxel (halves to even, as Python's ``round``), then
   clamped into the volume; picks that needed clamping are counted as RO ("reported
   outside") and are still looked up, and measured, at the clamped voxel;
3. the pick hits the particle whose id the dilated map holds there (0: background, a false
   positive).

``dilate=False`` (``--no-dilate``) looks picks up in the map as it is. ``skip_classes`` leaves
classes out of the truth as the challenge left out 4V94 and vesicles: picks still land on those
particles (after the same dilation) but count neither as hits nor as false positives; they do
count among the picks reported (RR), so they lower the precision, as in the challenge.

With N true particles and RR picks ("results reported"):

- TP: particles hit at least once; FN = N - TP; FP: picks in the background;
- MH: particles hit more than once ("multiple hits"); the extra picks count neither as TP
  nor as FP, but they lower the precision;
- precision = TP / RR, recall = TP / N, F1 their harmonic mean, miss rate = 1 - recall;
- AD: the mean distance (voxels) from each hit particle's first pick (file order, at its
  rounded and clamped voxel) to its centre;
- classification: each true particle takes the class of its first pick (0 when not found, or
  when that pick's class is a skipped one);
  the confusion matrix counts true class (rows 1..K) against that class (columns 0..K), and
  the per-class precision, recall and F1 come from it, as in the challenge's tables (picks in
  the background do not enter them). Per class we also give ``pick_precision``,
  ``pick_recall`` and ``pick_F1``: the occupancy rule applied to that class's picks and
  particles alone, which does count background picks.

Where this differs from the script, on purpose: it clamps into the volume's own shape (the
script clamps to 0..511, the challenge's 512^3 tomograms); N counts the particles left after
every skipped class (the script subtracts the 4V94 particles from N but not the vesicles,
although it drops both from the counts of found and missed particles); and no pick raises an
error (the script stops on F1 when nothing is found, and on a particle whose first pick is
labelled "vesicle").

**Distance rule** (:func:`evaluate_distance`), as in the CZII cryo-ET benchmark: a pick matches
a true particle of the same class within ``fraction * radius`` of its centre, one to one. The
matching is optimal (Hungarian algorithm on each group of mutually reachable picks and
particles: the most matches, then the smallest total distance); ``matching="greedy"`` instead
lets picks in descending score order take the nearest free particle. Reported per class and
overall (counts summed over classes): precision, recall, F1 and F-beta (beta 4 by default,
which weighs recall 16 times as much as precision).

**Precision-recall curves** (:func:`pr_curve`) sweep a threshold over the pick scores; a pick
counts as a true positive when it is the first pick (by score) on its particle, so every point
of the curve is the occupancy rule (or greedy distance rule) applied to the picks above that
score.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path, write_text_atomic
from deepetpicker.io.picks import PICK_SUFFIXES, Picks, read_picks
from deepetpicker.matching import (_check_beta, _num_classes, _prf, _radii_per_class, _ratio,
                                   _tp_weighted_mean, evaluate_distance, match_by_distance,
                                   pool_distance)

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------------------------
# Occupancy maps
# --------------------------------------------------------------------------------------------
def _as_occupancy(occupancy, truth: Picks, source: str = "") -> np.ndarray:
    """The map as integer particle ids, checked against the truth table it belongs to."""
    occ = np.asarray(occupancy)
    where = source or "occupancy map"
    if occ.ndim != 3:
        raise DeepETPickerError(f"{where}: shape {occ.shape} is not a 3-D (z, y, x) occupancy "
                                f"map.")
    if occ.dtype.kind == "f":
        occ = np.rint(occ)
    dtype = np.int32 if len(truth) < 2 ** 31 - 1 else np.int64
    if occ.size:
        low, top = float(occ.min()), float(occ.max())
        if low < 0 or top > len(truth):
            bad = int(top) if top > len(truth) else int(low)
            raise DeepETPickerError(
                f"{where}: holds particle id {bad} but the truth table {truth.tomo_name!r} has "
                f"{len(truth)} particle(s) (ids 1..{len(truth)} in file order). The occupancy "
                f"map and the truth picks do not belong together; regenerate the map from these "
                f"picks (preprocessing writes data_ocp/).")
    occ = occ.astype(dtype, copy=False)
    _refuse_class_labels(occ, truth, where)
    return occ


def _refuse_class_labels(occ: np.ndarray, truth: Picks, where: str) -> None:
    """Stop when the map holds class ids (a weak-label volume) instead of particle ids.

    A label map holds only 0..K, and the voxel at each particle's centre holds that particle's
    class; an occupancy map holds the particle's row number there. Only particles whose class
    differs from their row number can tell the two apart.
    """
    n = len(truth)
    if n < 2 or not occ.size:
        return
    k = int(truth.classes.max())
    top = int(occ.max())
    if top == 0 or top > k:
        return
    centres = np.rint(truth.xyz[:, ::-1]).astype(np.int64)
    inside = ((centres >= 0) & (centres < np.asarray(occ.shape))).all(axis=1)
    values = np.zeros(n, dtype=np.int64)
    values[inside] = occ[tuple(centres[inside].T)]
    rows = np.arange(1, n + 1)
    telling = inside & (values > 0) & (truth.classes != rows)
    as_class = int(np.sum(telling & (values == truth.classes)))
    as_row = int(np.sum(telling & (values == rows)))
    if as_class and as_class > as_row:
        distinct = int(np.count_nonzero(np.bincount(occ.ravel(), minlength=top + 1)[1:]))
        raise DeepETPickerError(
            f"{where}: this looks like a class-label map (a weak-label volume), not an occupancy "
            f"map of particle ids: it holds {distinct} distinct id(s) (1..{top}) for {n} true "
            f"particles, and at {as_class} particle centre(s) it holds the particle's class "
            f"instead of its number. With class ids every particle of a class shares one id, "
            f"so picks cannot be told apart and F1 would be near 0. Give the occupancy maps "
            f"preprocessing writes to data_ocp/ (--occupancy <base>/data_ocp), not the label "
            f"folder.")


def dilate_occupancy(occupancy: np.ndarray) -> np.ndarray:
    """The SHREC 2021 script's one-voxel dilation of a map of particle ids.

    Each voxel takes the largest id among itself and its six face neighbours (a grey dilation
    with the 6-connected cross); voxels beyond the volume contribute nothing. Where two
    particles touch or their dilations meet the larger id wins, even on a voxel that belonged
    to the smaller particle. Returns a new array of the same dtype.
    """
    occ = np.asarray(occupancy)
    out = occ.copy()
    for axis in range(occ.ndim):
        head = [slice(None)] * occ.ndim
        tail = [slice(None)] * occ.ndim
        head[axis] = slice(None, -1)            # voxels 0..n-2 along this axis
        tail[axis] = slice(1, None)             # voxels 1..n-1
        head, tail = tuple(head), tuple(tail)
        np.maximum(out[head], occ[tail], out=out[head])   # the neighbour above
        np.maximum(out[tail], occ[head], out=out[tail])   # the neighbour below
    return out


def _lookup_map(occupancy, truth: Picks, dilate: bool, source: str = "") -> np.ndarray:
    occ = _as_occupancy(occupancy, truth, source)
    return dilate_occupancy(occ) if dilate else occ


def _skipped(skip_classes, num_cls: Optional[int] = None) -> tuple[int, ...]:
    """Validated class ids to leave out of the truth (sorted, unique)."""
    if skip_classes is None:
        return ()
    values = [skip_classes] if np.ndim(skip_classes) == 0 else list(skip_classes)
    out = []
    for v in values:
        if float(v) != int(float(v)) or int(float(v)) < 1:
            raise DeepETPickerError(
                f"skip class {v}: class ids are whole numbers from 1 (0 is background); give "
                f"the ids of the classes to leave out of the truth, e.g. --skip-classes 1 4.")
        if num_cls is not None and int(float(v)) > num_cls:
            raise DeepETPickerError(
                f"skip class {int(float(v))}: the dataset has {num_cls} class(es); give ids in "
                f"1..{num_cls}.")
        out.append(int(float(v)))
    return tuple(sorted(set(out)))


def _voxel_lookup(xyz: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Rounded, clamped (z, y, x) voxel indices and a flag for picks that needed clamping."""
    rounded = np.rint(xyz[:, ::-1]).astype(np.int64)
    upper = np.asarray(shape, dtype=np.int64) - 1
    clamped = np.clip(rounded, 0, upper)
    outside = (clamped != rounded).any(axis=1)
    return clamped, outside


# --------------------------------------------------------------------------------------------
# Occupancy rule (SHREC 2021)
# --------------------------------------------------------------------------------------------
def _class_entry(c: int, n_truth: int, n_pred: int, tp: int, fp: int, fn: int,
                 fp_background: int, pick_tp: int) -> dict:
    """One class's row: confusion-matrix counts and rates, plus its picks' own scores."""
    pick = _prf(pick_tp, n_pred, n_truth)
    return {"class": c, "n_truth": n_truth, "n_pred": n_pred, "TP": tp, "FP": fp, "FN": fn,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "F1": _ratio(2 * tp, 2 * tp + fp + fn), "FP_background": fp_background,
            "pick_TP": pick_tp, "pick_precision": pick["precision"],
            "pick_recall": pick["recall"], "pick_F1": pick["F1"]}


def _mean_f1(per_class: list[dict]) -> Optional[float]:
    present = [pc["F1"] for pc in per_class if pc["n_truth"] and pc["F1"] is not None]
    return float(np.mean(present)) if present else None


def _hits(pred: Picks, occ: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pick: the particle id it lands in (0 = background), its voxel, outside flag."""
    if not len(pred):
        return np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(0, bool)
    voxels, outside = _voxel_lookup(pred.xyz, occ.shape)
    ids = occ[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
    return ids, voxels, outside


def evaluate_occupancy(pred: Picks, truth: Picks, occupancy, num_cls: Optional[int] = None,
                       dilate: bool = True, skip_classes: Sequence[int] = ()) -> dict:
    """Score picks against an occupancy map of instance ids (SHREC 2021 rule, module doc).

    ``occupancy`` is ``(z, y, x)`` with 0 for background and ``i`` inside particle ``i`` (row
    ``i - 1`` of ``truth``). ``dilate`` (default) applies the challenge script's one-voxel
    dilation before the lookup; ``skip_classes`` leaves those classes out of the truth.
    Returns a JSON-ready dict: ``RR TP FP FN MH RO AD precision recall F1 miss_rate n_truth
    num_cls dilated skipped_classes skipped_hits`` (``skipped_hits``: picks that landed on
    particles of skipped classes), ``per_class`` (a list of dicts, one per class 1..K) and
    ``confusion`` (rows: true classes 1..K; columns: first-pick class 0..K, 0 = not found).
    """
    k = _num_classes(pred, truth, num_cls)
    skip = _skipped(skip_classes, num_cls)
    lookup = _lookup_map(occupancy, truth, dilate)
    return _score_occupancy(pred, truth, lookup, k, dilate, skip)


def _score_occupancy(pred: Picks, truth: Picks, lookup: np.ndarray, k: int, dilated: bool,
                     skip: tuple[int, ...]) -> dict:
    """The occupancy rule on a map that is ready for the lookup (dilated or not)."""
    n_all = len(truth)
    ids, voxels, outside = _hits(pred, lookup)
    kept = np.ones(n_all + 1, dtype=bool)            # index 0: background
    if skip:
        kept[1:] = ~np.isin(truth.classes, skip)
    on_skipped = ~kept[ids]
    counts = np.bincount(ids, minlength=n_all + 1)
    counts[1:][~kept[1:]] = 0                      # skipped particles are not in the truth
    n = int(kept[1:].sum())
    found = counts[1:] >= 1
    tp = int(found.sum())
    # first pick (in table order) on each particle
    first = np.full(n_all + 1, -1, dtype=np.int64)
    hit_ids, first_rows = np.unique(ids, return_index=True)
    first[hit_ids] = first_rows
    first = first[1:]
    if tp:
        hit_ids = np.nonzero(found)[0]
        dist = np.linalg.norm(voxels[first[hit_ids]][:, ::-1] - truth.xyz[hit_ids], axis=1)
        ad = float(dist.mean())
    else:
        ad = None
    result = {
        "rule": "occupancy", "tomo_name": pred.tomo_name or truth.tomo_name,
        "num_cls": k, "n_truth": n, "RR": len(pred), "TP": tp,
        "FP": int(np.sum(ids == 0)), "FN": n - tp, "MH": int(np.sum(counts[1:] > 1)),
        "RO": int(outside.sum()), "AD": ad, "dilated": bool(dilated),
        "skipped_classes": list(skip), "skipped_hits": int(on_skipped.sum()),
    }
    result.update(_prf(tp, len(pred), n))
    result["miss_rate"] = 1.0 - result["recall"] if n else 0.0

    # classification from each particle's first pick; a skipped class reads as not found
    first_class = np.where(first >= 0, pred.classes[np.maximum(first, 0)] if len(pred)
                           else 0, 0)
    if skip:
        first_class = np.where(np.isin(first_class, skip), 0, first_class)
    matrix = np.zeros((k, k + 1), dtype=np.int64)
    rows = kept[1:]
    if n:
        np.add.at(matrix, (truth.classes[rows] - 1, first_class[rows]), 1)
    per_class = []
    for c in range(1, k + 1):
        tp_c = int(matrix[c - 1, c])
        fp_c = int(matrix[:, c].sum() - tp_c)
        fn_c = int(matrix[c - 1].sum() - tp_c)
        mine = pred.classes == c
        true_c = (truth.classes == c) & rows
        hit_c = np.zeros(n_all + 1, dtype=bool)
        hit_c[ids[mine]] = True
        pick_tp = int(np.sum(hit_c[1:] & true_c))
        entry = _class_entry(c, int(true_c.sum()), int(mine.sum()), tp_c, fp_c, fn_c,
                             int(np.sum(mine & (ids == 0))), pick_tp)
        entry["skipped"] = c in skip
        per_class.append(entry)
    result["mean_class_F1"] = _mean_f1(per_class)
    result["per_class"] = per_class
    result["confusion"] = {"rows": "true class 1..K",
                           "columns": "class of the first pick 0..K (0: not found)",
                           "matrix": matrix.tolist()}
    return result


# --------------------------------------------------------------------------------------------
# Precision-recall curve
# --------------------------------------------------------------------------------------------
def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (Picks, np.ndarray)):
        return [value]
    return list(value)


def _first_hit_flags(pred: Picks, truth: Picks, lookup: Optional[np.ndarray], radii,
                     fraction: float, class_id: Optional[int], skip: tuple[int, ...] = ()
                     ) -> tuple[np.ndarray, np.ndarray, int]:
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
        ids, _, _ = _hits(pred, lookup)
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
    radius = _radii_per_class(radii, k)
    new = np.zeros(len(pred), dtype=bool)
    classes = [class_id] if class_id is not None else range(1, k + 1)
    n_true = 0
    for c in classes:
        rows = np.nonzero(pred.classes == c)[0]
        t = truth.of_class(c)
        n_true += len(t)
        pairs = match_by_distance(pred.xyz[rows], t.xyz, fraction * radius[c - 1],
                                  pred.scores[rows], matching="greedy")
        new[rows[[p for p, _, _ in pairs]]] = True
    return pred.scores, new, n_true


def pr_curve(pred, truth, occupancy=None, radii=None, fraction: float = 0.5,
             out: Optional[PathLike] = None, class_id: Optional[int] = None,
             dilate: bool = True, title: str = "", skip_classes: Sequence[int] = ()) -> dict:
    """Precision and recall of the picks above each score threshold.

    ``pred``/``truth`` (and ``occupancy``): one tomogram's tables (and map) or equal-length
    lists of them, pooled into one curve. With occupancy maps a pick is a true positive when
    it is the first pick (by score) inside its particle (class-agnostic unless ``class_id``),
    looked up as :func:`evaluate_occupancy` does (``dilate``, ``skip_classes``); otherwise
    picks are matched greedily by score to same-class particles within ``fraction * radius``
    (``radii`` per class). Returns ``thresholds, precision, recall, f1`` (lists, one
    point per distinct score, high to low), ``AP`` (average precision: sum of precision times
    recall gained), ``best`` (the threshold with the highest F1), ``dilated`` and, with
    ``out`` (a path without suffix), the ``csv`` written there and a ``png`` plot when
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
    skip = _skipped(skip_classes)
    flags = []
    for p, t, o in zip(preds, truths, occs):
        lookup = _lookup_map(o, t, dilate) if o is not None else None
        flags.append(_first_hit_flags(p, t, lookup, radii, fraction, class_id, skip))
    if occupancy is None:
        return _curve_from_flags(flags, "distance", out, title)
    return _curve_from_flags(flags, "occupancy", out, title, dilated=dilate)


def _curve_from_flags(per_tomogram: list, rule: str, out: Optional[PathLike] = None,
                      title: str = "", dilated: Optional[bool] = None) -> dict:
    """The curve from each tomogram's ``(scores, first-hit flags, number of true particles)``."""
    scores = [s for s, _, _ in per_tomogram]
    flags = [f for _, f, _ in per_tomogram]
    n_true = sum(n for _, _, n in per_tomogram)
    scores = np.concatenate(scores) if scores else np.zeros(0)
    flags = np.concatenate(flags) if flags else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, flags = scores[order], flags[order]
    tp = np.cumsum(flags)
    # one point per distinct score: the last pick with that score
    last = np.nonzero(np.r_[scores[1:] != scores[:-1], True])[0] if len(scores) else \
        np.zeros(0, np.int64)
    n_picks = last + 1
    precision = tp[last] / n_picks
    recall = tp[last] / n_true if n_true else np.zeros(len(last))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    gained = np.diff(np.r_[0.0, recall])
    ap = float(np.sum(gained * precision)) if len(last) else 0.0
    curve = {"thresholds": scores[last].tolist(), "precision": precision.tolist(),
             "recall": recall.tolist(), "f1": f1.tolist(), "n_picks": n_picks.tolist(),
             "tp": tp[last].astype(int).tolist(), "n_truth": int(n_true), "AP": ap,
             "rule": rule, "dilated": dilated, "csv": None, "png": None}
    if len(last):
        b = int(np.argmax(f1))
        curve["best"] = {"threshold": float(scores[last][b]), "precision": float(precision[b]),
                         "recall": float(recall[b]), "F1": float(f1[b])}
    else:
        curve["best"] = None
    if out is not None:
        stem = Path(out)
        if stem.suffix.lower() in (".csv", ".png"):
            stem = stem.with_suffix("")
        curve["csv"] = _write_curve_csv(stem.with_name(stem.name + ".csv"), curve)
        curve["png"] = _plot_curve(stem.with_name(stem.name + ".png"), curve, title)
    return curve


def _write_curve_csv(path: Path, curve: dict) -> Path:
    lines = ["threshold,precision,recall,f1,n_picks,tp"]
    for row in zip(curve["thresholds"], curve["precision"], curve["recall"], curve["f1"],
                   curve["n_picks"], curve["tp"]):
        lines.append(",".join(format(v, ".6g") if isinstance(v, float) else str(v)
                              for v in row))
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _plot_curve(path: Path, curve: dict, title: str) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 4.2), dpi=120)
    ax.plot(curve["recall"], curve["precision"], "-", color="tab:blue",
            label=f"AP = {curve['AP']:.3f}")
    best = curve.get("best")
    if best:
        ax.plot([best["recall"]], [best["precision"]], "o", color="tab:red",
                label=f"best F1 {best['F1']:.3f} at score {best['threshold']:.3g}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"precision-recall ({curve['rule']} rule)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------
def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_report(result: dict, class_names: Optional[Sequence[str]] = None) -> str:
    """A readable text table of one :func:`evaluate_occupancy` or :func:`evaluate_distance`
    result (or of a pooled one from :func:`evaluate_folder`)."""
    def name(c: int) -> str:
        return class_names[c - 1] if class_names and c <= len(class_names) else f"class {c}"

    lines = []
    label = f" ({result['tomo_name']})" if result.get("tomo_name") else ""
    if result.get("rule") == "occupancy":
        if result.get("dilated", False):
            how = "SHREC 2021, maps dilated by one voxel (6-connected) before the lookup"
        else:
            how = "plain lookup without dilation (--no-dilate; SHREC 2021 dilates first)"
        lines.append(f"Occupancy rule, {how}{label}")
        if result.get("skipped_classes"):
            lines.append(f"  left out of the truth: "
                         f"{', '.join(name(c) for c in result['skipped_classes'])}; "
                         f"{result['skipped_hits']} pick(s) on those particles count only in "
                         f"RR")
        lines.append("  RR     TP     FP     FN     MH    RO    AD     precision recall  F1")
        lines.append(f"  {result['RR']:<6} {result['TP']:<6} {result['FP']:<6} "
                     f"{result['FN']:<6} {result['MH']:<5} {result['RO']:<5} "
                     f"{_fmt(result['AD'], 2):<6} {_fmt(result['precision']):<9} "
                     f"{_fmt(result['recall']):<7} {_fmt(result['F1'])}")
        lines.append("")
        lines.append(f"  {'class':<14}{'truth':>6}{'picks':>7}{'F1':>8}{'pick P':>9}"
                     f"{'pick R':>8}{'pick F1':>9}")
        for pc in result["per_class"]:
            if pc.get("skipped"):
                lines.append(f"  {name(pc['class']):<14}{'-':>6}{pc['n_pred']:>7}  skipped")
                continue
            lines.append(f"  {name(pc['class']):<14}{pc['n_truth']:>6}{pc['n_pred']:>7}"
                         f"{_fmt(pc['F1']):>8}{_fmt(pc['pick_precision']):>9}"
                         f"{_fmt(pc['pick_recall']):>8}{_fmt(pc['pick_F1']):>9}")
        k = result["num_cls"]
        if k > 1:
            lines.append("")
            lines.append("  confusion (rows: true class; columns: class of the first pick, "
                         "0 = not found)")
            lines.append("        " + "".join(f"{c:>6}" for c in range(k + 1)))
            for c, row in enumerate(result["confusion"]["matrix"], start=1):
                lines.append(f"  {c:>4}  " + "".join(f"{v:>6}" for v in row))
    else:
        lines.append(f"Distance rule (within {result['fraction']:g} x radius, "
                     f"{result['matching']} one-to-one matching){label}")
        beta = result["beta"]
        lines.append(f"  {'class':<14}{'truth':>6}{'picks':>7}{'TP':>6}{'FP':>6}{'FN':>6}"
                     f"{'precision':>11}{'recall':>8}{'F1':>7}{f'F{beta:g}':>7}")
        rows = list(result["per_class"]) + [dict(result, **{"class": 0})]
        for pc in rows:
            label_c = "all" if pc["class"] == 0 else name(pc["class"])
            lines.append(f"  {label_c:<14}{pc['n_truth']:>6}{pc['n_pred']:>7}{pc['TP']:>6}"
                         f"{pc['FP']:>6}{pc['FN']:>6}{_fmt(pc['precision']):>11}"
                         f"{_fmt(pc['recall']):>8}{_fmt(pc['F1']):>7}"
                         f"{_fmt(pc['F_beta']):>7}")
    return "\n".join(lines)


def _pool_occupancy(results: list[dict]) -> dict:
    """Sum the counts of per-tomogram occupancy results and recompute the rates."""
    k = max(r["num_cls"] for r in results)
    total = {"rule": "occupancy", "tomo_name": "all tomograms", "num_cls": k,
             "dilated": results[0]["dilated"],
             "skipped_classes": results[0].get("skipped_classes", [])}
    for key in ("n_truth", "RR", "TP", "FP", "FN", "MH", "RO", "skipped_hits"):
        total[key] = int(sum(r[key] for r in results))
    total["AD"] = _tp_weighted_mean(results, "AD")
    total.update(_prf(total["TP"], total["RR"], total["n_truth"]))
    total["miss_rate"] = 1.0 - total["recall"] if total["n_truth"] else 0.0
    matrix = np.zeros((k, k + 1), dtype=np.int64)
    for r in results:
        m = np.asarray(r["confusion"]["matrix"], dtype=np.int64)
        matrix[:m.shape[0], :m.shape[1]] += m
    per_class = []
    for c in range(1, k + 1):
        rows = [pc for r in results for pc in r["per_class"] if pc["class"] == c]
        tp_c = int(matrix[c - 1, c])
        fp_c = int(matrix[:, c].sum() - tp_c)
        fn_c = int(matrix[c - 1].sum() - tp_c)
        entry = _class_entry(
            c, sum(pc["n_truth"] for pc in rows), sum(pc["n_pred"] for pc in rows), tp_c, fp_c,
            fn_c, sum(pc["FP_background"] for pc in rows), sum(pc["pick_TP"] for pc in rows))
        entry["skipped"] = c in total["skipped_classes"]
        per_class.append(entry)
    total["mean_class_F1"] = _mean_f1(per_class)
    total["per_class"] = per_class
    total["confusion"] = dict(results[0]["confusion"], matrix=matrix.tolist())
    return total


@dataclass
class FolderEvaluation:
    """What :func:`evaluate_folder` found: per-tomogram and pooled results, written files."""

    tomograms: list[str]
    occupancy: Optional[dict] = None
    distance: Optional[dict] = None
    per_tomogram: dict = field(default_factory=dict)
    curve: Optional[dict] = None
    unmatched: list[str] = field(default_factory=list)
    json_path: Optional[Path] = None
    table_path: Optional[Path] = None

    def as_dict(self) -> dict:
        return {"tomograms": self.tomograms, "occupancy": self.occupancy,
                "distance": self.distance, "per_tomogram": self.per_tomogram,
                "pr_curve": self.curve, "unmatched": self.unmatched}

    def summary(self) -> str:
        """The readable report: pooled tables, then where the files are."""
        parts = [f"Evaluated {len(self.tomograms)} tomogram(s): {', '.join(self.tomograms)}"]
        if self.unmatched:
            parts.append(f"Skipped (no matching truth file): {', '.join(self.unmatched)}")
        for result in (self.occupancy, self.distance):
            if result is not None:
                parts.append(format_report(result))
        if self.curve and self.curve.get("best"):
            b = self.curve["best"]
            parts.append(f"PR curve: AP {self.curve['AP']:.3f}; best F1 {b['F1']:.3f} at "
                         f"score >= {b['threshold']:.3g}")
        written = [p for p in (self.json_path, self.table_path,
                               self.curve and self.curve.get("csv"),
                               self.curve and self.curve.get("png")) if p]
        if written:
            parts.append("Written: " + ", ".join(str(p) for p in written))
        return "\n\n".join(parts)


def _pick_files(path: Path, what: str) -> dict[str, Path]:
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise DeepETPickerError(f"{what} not found: {path}")
    files = {}
    for p in sorted(path.iterdir()):
        if p.is_file() and p.suffix.lower() in PICK_SUFFIXES and not p.name.startswith("."):
            if p.stem in files:
                raise DeepETPickerError(
                    f"{path}: two pick files for {p.stem!r} ({files[p.stem].name}, {p.name}); "
                    f"keep one per tomogram.")
            files[p.stem] = p
    if not files:
        raise DeepETPickerError(
            f"No pick files (.coords, .txt, .csv) in {what.lower()} {path}.")
    return files


#: What :func:`evaluate_folder` writes in its ``out`` folder.
OUTPUT_FILES = ("evaluation.json", "evaluation.txt", "pr_curve.csv", "pr_curve.png")


def evaluate_folder(pred_dir: PathLike, truth_dir: PathLike,
                    occupancy_dir: Optional[PathLike] = None,
                    diameters: Optional[Sequence[float]] = None,
                    out: Optional[PathLike] = None, beta: float = 4.0, fraction: float = 0.5,
                    dilate: bool = True, num_cls: Optional[int] = None,
                    skip_classes: Sequence[int] = (), overwrite: bool = False
                    ) -> FolderEvaluation:
    """Evaluate every prediction file against the truth file with the same stem.

    ``pred_dir``/``truth_dir``: folders of ``.coords``/``.txt``/``.csv`` files (or one file
    each). With ``occupancy_dir`` (MRC maps of particle ids named by the same stem, as
    preprocessing writes ``data_ocp/``) the occupancy rule is applied, by default exactly as the
    SHREC 2021 script does (``dilate``; ``skip_classes`` leaves classes out of its truth); with
    ``diameters`` (per class, voxels) the distance rule too. Counts are pooled over tomograms.
    A precision-recall curve is computed when the predictions have scores. With ``out`` (a
    folder) writes ``evaluation.json``, ``evaluation.txt`` and ``pr_curve.csv``/``.png``;
    they never replace an input or a file DeepETPicker did not write, and replace those of
    an evaluation of other inputs only with ``overwrite`` (checked before any work).
    """
    from deepetpicker.io.outputs import OutputGuard, file_stamp
    from deepetpicker.io.tomogram import find_tomograms, load_tomogram

    _check_beta(beta)
    if not fraction > 0:
        raise DeepETPickerError(f"fraction = {fraction} must be positive (0.5 in the CZII "
                                f"benchmark: within half a radius).")
    skip = _skipped(skip_classes, num_cls)
    if occupancy_dir is None and not diameters:
        raise DeepETPickerError(
            "Nothing to evaluate with: give an occupancy folder (--occupancy, SHREC rule) "
            "and/or particle diameters per class (--diameters, distance rule).")
    if occupancy_dir is not None and not Path(occupancy_dir).exists():
        raise DeepETPickerError(
            f"Occupancy folder not found: {occupancy_dir}. Give the folder of occupancy maps "
            f"(particle ids) that preprocessing writes under the dataset's base path, "
            f"<base>/data_ocp/ (--occupancy).")
    preds = _pick_files(Path(pred_dir), "Prediction folder")
    truths = _pick_files(Path(truth_dir), "Truth folder")
    if Path(pred_dir).is_file() and Path(truth_dir).is_file():
        preds = {next(iter(truths)): Path(pred_dir)}          # two files: a pair, any names
    names = [s for s in preds if s in truths]
    unmatched = [s for s in preds if s not in truths]
    if not names:
        raise DeepETPickerError(
            f"No prediction file in {pred_dir} has a truth file with the same name in "
            f"{truth_dir} (predictions: {', '.join(sorted(preds)[:5])}; truth: "
            f"{', '.join(sorted(truths)[:5])}). Name them after the same tomogram.")
    occ_files = {}
    if occupancy_dir is not None:
        occ_files = {p.stem: p for p in find_tomograms(occupancy_dir)}
        missing = [s for s in names if s not in occ_files]
        if missing:
            raise DeepETPickerError(
                f"No occupancy map for {', '.join(missing)} in {occupancy_dir}; expected "
                f"{missing[0]}.mrc (run preprocessing, which writes data_ocp/).")
    radii = [d / 2 for d in diameters] if diameters else None
    guard = tag = None
    if out is not None:
        inputs = [*(preds[s] for s in names), *(truths[s] for s in names),
                  *(occ_files[s] for s in names if s in occ_files)]
        guard = OutputGuard(out, overwrite=overwrite, inputs=inputs)
        tag = json.dumps(["evaluate", [file_stamp(p) for p in inputs], diameters, beta,
                          fraction, dilate, num_cls, sorted(skip)], default=str)
        guard.check(OUTPUT_FILES, tag=tag)

    occ_results, dist_results, per_tomo = [], [], {}
    curve_flags = []             # per tomogram; the maps themselves are not kept
    for stem in names:
        truth = read_picks(truths[stem], num_cls=num_cls, tomo_name=stem)
        pred = read_picks(preds[stem], num_cls=num_cls, tomo_name=stem)
        entry = {"pred": str(preds[stem]), "truth": str(truths[stem])}
        lookup = None
        if occupancy_dir is not None:
            occ_path = occ_files[stem]
            k = _num_classes(pred, truth, num_cls, str(preds[stem]))
            lookup = _lookup_map(load_tomogram(occ_path, mmap=False).data, truth, dilate,
                                 str(occ_path))
            r = _score_occupancy(pred, truth, lookup, k, dilate, skip)
            occ_results.append(r)
            entry["occupancy"] = r
        if radii is not None:
            r = evaluate_distance(pred, truth, radii, fraction=fraction, beta=beta,
                                  num_cls=num_cls)
            dist_results.append(r)
            entry["distance"] = r
        per_tomo[stem] = entry
        if pred.scores is not None:
            curve_flags.append(_first_hit_flags(pred, truth, lookup, radii, fraction, None,
                                                skip))
        del lookup
    report = FolderEvaluation(tomograms=names, unmatched=unmatched, per_tomogram=per_tomo)
    if occ_results:
        report.occupancy = _pool_occupancy(occ_results)
    if dist_results:
        report.distance = pool_distance(dist_results)
    out_dir = Path(out) if out is not None else None
    if len(curve_flags) == len(names):
        report.curve = _curve_from_flags(
            curve_flags, "occupancy" if occupancy_dir is not None else "distance",
            out=out_dir / "pr_curve" if out_dir else None,
            dilated=dilate if occupancy_dir is not None else None)
    if out_dir is not None:
        report.json_path = out_dir / "evaluation.json"
        with atomic_path(report.json_path) as tmp:
            tmp.write_text(json.dumps(report.as_dict(), indent=2, default=_json_default),
                           encoding="utf-8")
        report.table_path = out_dir / "evaluation.txt"
        write_text_atomic(report.table_path, report.summary() + "\n")
        curve_files = [(report.curve or {}).get(k) for k in ("csv", "png")]
        guard.record([report.json_path, report.table_path, *filter(None, curve_files)],
                     tag=tag)
    return report


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

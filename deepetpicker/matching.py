"""The distance rule: one-to-one matching of picks to true particles within a fraction of the
particle radius, with precision, recall, F1 and F-beta per class and pooled over tomograms.

Training validation scores its picks with it and :mod:`deepetpicker.evaluate` reports it beside
the SHREC occupancy rule; the rule itself is described there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.values import per_class


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den else None


def _prf(tp: int, n_pred: int, n_true: int, beta: Optional[float] = None) -> dict:
    """precision, recall, F1 (and F-beta); 0 where nothing was predicted or nothing is true."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    out = {"precision": precision, "recall": recall, "F1": _fbeta(precision, recall, 1.0)}
    if beta is not None:
        out["F_beta"] = _fbeta(precision, recall, beta)
    return out


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    den = b2 * precision + recall
    return (1 + b2) * precision * recall / den if den > 0 else 0.0


def _num_classes(pred: Picks, truth: Picks, num_cls: Optional[int], source: str = "") -> int:
    top = max([0] + [int(t.classes.max()) for t in (pred, truth) if len(t)])
    if num_cls is None:
        return max(top, 1)
    for name, table in (("prediction", pred), ("truth", truth)):
        if len(table) and int(table.classes.max()) > num_cls:
            raise DeepETPickerError(
                f"{source or name}: class {int(table.classes.max())} in the {name} but the "
                f"dataset has {num_cls} class(es). Check num_cls or the class column.")
    return int(num_cls)


def _radii_per_class(radii, num_cls: int) -> np.ndarray:
    if radii is None:
        raise DeepETPickerError("The distance rule needs a particle radius (or diameter) per "
                                "class; give --diameters or an occupancy folder.")
    return np.asarray(per_class(radii, num_cls, "radius/diameter", positive=True),
                      dtype=np.float64)


def match_by_distance(pred_xyz: np.ndarray, true_xyz: np.ndarray, max_distance: float,
                      scores: Optional[np.ndarray] = None, matching: str = "optimal"
                      ) -> list[tuple[int, int, float]]:
    """One-to-one pairs ``(pick index, particle index, distance)`` within ``max_distance``.

    ``optimal``: the most pairs, then the smallest total distance (Hungarian algorithm on each
    connected group of candidate pairs). ``greedy``: picks in descending ``scores`` order
    (table order on ties) each take the nearest free particle.
    """
    from scipy.spatial import cKDTree

    pred_xyz = np.asarray(pred_xyz, np.float64).reshape(-1, 3)
    true_xyz = np.asarray(true_xyz, np.float64).reshape(-1, 3)
    if not len(pred_xyz) or not len(true_xyz):
        return []
    candidates = cKDTree(pred_xyz).sparse_distance_matrix(
        cKDTree(true_xyz), max_distance, output_type="ndarray")
    if not len(candidates):
        return []
    pi, ti, dist = candidates["i"], candidates["j"], candidates["v"]
    if matching == "greedy":
        return _greedy(pi, ti, dist, len(pred_xyz), scores)
    if matching != "optimal":
        raise ValueError(f"matching must be 'optimal' or 'greedy', not {matching!r}")
    return _optimal(pi, ti, dist, len(pred_xyz), len(true_xyz))


def _greedy(pi, ti, dist, n_pred, scores) -> list[tuple[int, int, float]]:
    scores = np.zeros(n_pred) if scores is None else np.asarray(scores, np.float64)
    by_pick = np.lexsort((dist, pi))          # candidates grouped by pick, nearest first
    pi, ti, dist = pi[by_pick], ti[by_pick], dist[by_pick]
    starts = np.searchsorted(pi, np.arange(n_pred + 1))
    taken = set()
    pairs = []
    for p in np.argsort(-scores, kind="stable"):
        for c in range(starts[p], starts[p + 1]):
            t = int(ti[c])
            if t not in taken:
                taken.add(t)
                pairs.append((int(p), t, float(dist[c])))
                break
    return pairs


def _optimal(pi, ti, dist, n_pred, n_true) -> list[tuple[int, int, float]]:
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = n_pred + n_true
    graph = coo_matrix((np.ones(len(pi)), (pi, n_pred + ti)), shape=(nodes, nodes))
    _, labels = connected_components(graph, directed=False)
    edge_group = labels[pi]
    order = np.argsort(edge_group, kind="stable")
    bounds = np.searchsorted(edge_group[order], np.unique(edge_group), side="left")
    bounds = list(bounds) + [len(order)]
    pairs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = order[a:b]
        p_ids, p_local = np.unique(pi[sel], return_inverse=True)
        t_ids, t_local = np.unique(ti[sel], return_inverse=True)
        big = (float(dist[sel].max()) + 1.0) * (min(len(p_ids), len(t_ids)) + 1)
        cost = np.full((len(p_ids), len(t_ids)), big)
        cost[p_local, t_local] = dist[sel]
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] < big:
                pairs.append((int(p_ids[r]), int(t_ids[c]), float(cost[r, c])))
    pairs.sort()
    return pairs


def evaluate_distance(pred: Picks, truth: Picks, radii, fraction: float = 0.5,
                      beta: float = 4.0, matching: str = "optimal",
                      num_cls: Optional[int] = None) -> dict:
    """Score picks by one-to-one matching to same-class particles within ``fraction * radius``.

    ``radii``: particle radius in voxels, one per class (sequence indexed by class - 1, dict
    by class id, or one number). Returns a JSON-ready dict with overall ``TP FP FN precision
    recall F1 F_beta`` (counts summed over classes), ``mean_distance`` of matched pairs,
    ``macro_F1`` and ``per_class`` (a list of dicts).
    """
    _check_beta(beta)
    k = _num_classes(pred, truth, num_cls)
    radius = _radii_per_class(radii, k)
    if not fraction > 0:
        raise DeepETPickerError(f"fraction = {fraction} must be positive (0.5 in the CZII "
                                f"benchmark: within half a radius).")
    per_class = []
    all_dist = []
    for c in range(1, k + 1):
        p = pred.of_class(c)
        t = truth.of_class(c)
        limit = fraction * radius[c - 1]
        pairs = match_by_distance(p.xyz, t.xyz, limit, p.scores, matching)
        tp = len(pairs)
        all_dist.extend(d for _, _, d in pairs)
        entry = {"class": c, "radius": float(radius[c - 1]), "max_distance": limit,
                 "n_truth": len(t), "n_pred": len(p), "TP": tp, "FP": len(p) - tp,
                 "FN": len(t) - tp}
        entry.update(_prf(tp, len(p), len(t), beta))
        entry["mean_distance"] = (float(np.mean([d for _, _, d in pairs])) if pairs
                                  else None)
        per_class.append(entry)
    tp = sum(e["TP"] for e in per_class)
    result = {"rule": "distance", "tomo_name": pred.tomo_name or truth.tomo_name,
              "num_cls": k, "fraction": float(fraction), "beta": float(beta),
              "matching": matching, "n_truth": len(truth), "n_pred": len(pred), "TP": tp,
              "FP": len(pred) - tp, "FN": len(truth) - tp}
    result.update(_prf(tp, len(pred), len(truth), beta))
    result["mean_distance"] = float(np.mean(all_dist)) if all_dist else None
    present = [e["F1"] for e in per_class if e["n_truth"]]
    result["macro_F1"] = float(np.mean(present)) if present else None
    result["per_class"] = per_class
    return result


def _tp_weighted_mean(results: list[dict], key: str) -> Optional[float]:
    """The mean of ``key`` over results that have it, each weighted by its true positives
    (a mean distance pooled over tomograms)."""
    pairs = [(r[key], r["TP"]) for r in results if r[key] is not None]
    return sum(v * t for v, t in pairs) / sum(t for _, t in pairs) if pairs else None


def pool_distance(results: list[dict]) -> dict:
    """One distance-rule result from several tomograms' (counts summed, then the ratios)."""
    k = max(r["num_cls"] for r in results)
    first = results[0]
    total = {"rule": "distance", "tomo_name": "all tomograms", "num_cls": k,
             "fraction": first["fraction"], "beta": first["beta"],
             "matching": first["matching"]}
    for key in ("n_truth", "n_pred", "TP", "FP", "FN"):
        total[key] = int(sum(r[key] for r in results))
    total.update(_prf(total["TP"], total["n_pred"], total["n_truth"], first["beta"]))
    total["mean_distance"] = _tp_weighted_mean(results, "mean_distance")
    per_class = []
    for c in range(1, k + 1):
        rows = [pc for r in results for pc in r["per_class"] if pc["class"] == c]
        entry = {"class": c, "radius": rows[0]["radius"], "max_distance": rows[0]["max_distance"]}
        for key in ("n_truth", "n_pred", "TP", "FP", "FN"):
            entry[key] = int(sum(pc[key] for pc in rows))
        entry.update(_prf(entry["TP"], entry["n_pred"], entry["n_truth"], first["beta"]))
        entry["mean_distance"] = _tp_weighted_mean(rows, "mean_distance")
        per_class.append(entry)
    present = [e["F1"] for e in per_class if e["n_truth"]]
    total["macro_F1"] = float(np.mean(present)) if present else None
    total["per_class"] = per_class
    return total


def _check_beta(beta: float) -> None:
    if not (isinstance(beta, (int, float)) and np.isfinite(beta) and beta > 0):
        shown = format(beta, "g") if isinstance(beta, (int, float)) else repr(beta)
        raise DeepETPickerError(
            f"beta = {shown}: F-beta needs a positive beta (it weighs recall beta^2 times as much "
            f"as precision); give e.g. --beta 4 (the CZII benchmark) or --beta 1 (F1).")


def ranked_hits(pred: Picks, truth: Picks, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The scores of one class's picks from high to low and, for each, whether it found a
    particle: picks take the nearest free particle within ``max_distance`` in descending score
    order, so the picks above any threshold are matched exactly as if they were all there were.
    """
    scores = (np.zeros(len(pred)) if pred.scores is None
              else np.asarray(pred.scores, np.float64))
    order = np.argsort(-scores, kind="stable")
    hits = np.zeros(len(pred), dtype=bool)
    for p, _, _ in match_by_distance(pred.xyz, truth.xyz, max_distance, scores, "greedy"):
        hits[p] = True
    return scores[order], hits[order]


@dataclass(frozen=True)
class ThresholdChoice:
    """The score threshold chosen for one class and what it gave (see
    :func:`best_score_thresholds`)."""

    cls: int
    threshold: float
    f1: float
    f1_all: float
    n_pred: int
    n_truth: int


def best_score_thresholds(preds: list[Picks], truths: list[Picks], radii, num_cls: int,
                          fraction: float = 0.5) -> list[ThresholdChoice]:
    """Per class, the score threshold that gives the best F1 over the given tomograms.

    ``preds``/``truths``: one table per tomogram, matched within ``fraction * radius`` of each
    class (``radii`` as in :func:`evaluate_distance`). Returns one dict per class: ``class``,
    ``threshold`` (picks scoring at least this are kept; halfway between the lowest kept and
    the highest dropped score; 0.0 when keeping every pick is best, or when the class has no
    picks or no particles), ``f1`` at that threshold, ``f1_all`` with every pick kept, and the
    counts ``n_pred`` (kept) and ``n_truth``, as :class:`ThresholdChoice` s.
    """
    radius = _radii_per_class(radii, num_cls)
    choices = []
    for c in range(1, num_cls + 1):
        ranked = [ranked_hits(p.of_class(c), t.of_class(c), fraction * radius[c - 1])
                  for p, t in zip(preds, truths)]
        n_truth = int(sum(len(t.of_class(c)) for t in truths))
        scores = np.concatenate([s for s, _ in ranked]) if ranked else np.zeros(0)
        hits = np.concatenate([h for _, h in ranked]) if ranked else np.zeros(0, bool)
        order = np.argsort(-scores, kind="stable")
        scores, hits = scores[order], hits[order]
        threshold, f1_best, f1_all, n_kept = 0.0, 0.0, 0.0, len(scores)
        if len(scores) and n_truth:
            tp = np.cumsum(hits)
            kept = np.arange(1, len(scores) + 1)
            f1 = 2.0 * tp / (kept + n_truth)
            # a cut can only fall between two different scores: the last of each run of ties
            last = np.r_[scores[1:] != scores[:-1], True]
            top = f1[last].max()
            # on equal F1 the lowest threshold (more picks, better recall) wins
            best = int(np.flatnonzero(last & (f1 >= top - 1e-12))[-1])
            f1_best, f1_all, n_kept = float(f1[best]), float(f1[-1]), best + 1
            if best + 1 < len(scores):
                threshold = float((scores[best] + scores[best + 1]) / 2.0)
        choices.append(ThresholdChoice(c, threshold, f1_best, f1_all, n_kept, n_truth))
    return choices
